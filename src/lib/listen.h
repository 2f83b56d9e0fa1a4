/* Where vpoold listens: the `listen` setting, a comma-separated list of
 * unix:/PATH, https://ADDR:PORT and (loopback only) http://ADDR:PORT.
 * Addresses are numeric (IPv4, or IPv6 in brackets): a listener never
 * depends on name resolution. */
#pragma once
#include <stdint.h>
#include "util.h"

enum vp_listen_kind {
        VP_LISTEN_UNIX,
        VP_LISTEN_HTTPS,
        VP_LISTEN_HTTP,
};

/* The longest unix socket path (sun_path less its NUL). */
#define VP_LISTEN_PATH_MAX 107
/* How many listeners one daemon takes. */
#define VP_LISTEN_MAX 8

struct vp_listen {
        enum vp_listen_kind kind;
        char path[VP_LISTEN_PATH_MAX + 1];   /* unix */
        char addr[48];                       /* http(s): numeric, without brackets */
        bool ipv6;
        uint16_t port;
        bool loopback;
        char text[160];                      /* as written, for messages */
};

/* Parse TEXT into *RET (malloc'd, *N entries). Refused, naming the item:
 * an empty item, an unknown scheme, a relative or overlong socket path,
 * control characters, an address that is not numeric, a port outside
 * 1..65535, plain http on an address that is not loopback, the same
 * listener twice, more than VP_LISTEN_MAX. */
int vp_listen_parse(const char *text, struct vp_listen **ret, size_t *n, struct vp_error *err);
