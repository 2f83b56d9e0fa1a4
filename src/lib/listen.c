#include "listen.h"

#include <arpa/inet.h>
#include <string.h>

#include "name.h"
#include "parse.h"

static bool has_control(const char *s, size_t len)
{
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                        return true;
        return false;
}

static bool addr_is_loopback(const struct vp_listen *l)
{
        if (l->ipv6) {
                struct in6_addr a6;
                return inet_pton(AF_INET6, l->addr, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
        }
        struct in_addr a4;
        return inet_pton(AF_INET, l->addr, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

/* HOSTPORT ("127.0.0.1:8443", "[::1]:8443") into L. */
static int parse_hostport(const char *hp, struct vp_listen *l, struct vp_error *err)
{
        const char *colon;
        size_t alen;
        const char *a = hp;
        if (hp[0] == '[') {
                const char *close = strchr(hp, ']');
                if (!close || close[1] != ':')
                        return vp_err(err, -EINVAL, "listener '%s': expected [IPV6]:PORT", l->text);
                a = hp + 1;
                alen = (size_t)(close - a);
                colon = close + 1;
                l->ipv6 = true;
        } else {
                colon = strrchr(hp, ':');
                if (!colon)
                        return vp_err(err, -EINVAL, "listener '%s': expected ADDRESS:PORT", l->text);
                alen = (size_t)(colon - hp);
        }
        if (alen == 0 || alen >= sizeof(l->addr))
                return vp_err(err, -EINVAL, "listener '%s': missing or overlong address", l->text);
        memcpy(l->addr, a, alen);
        l->addr[alen] = 0;
        unsigned char buf[sizeof(struct in6_addr)];
        if (inet_pton(l->ipv6 ? AF_INET6 : AF_INET, l->addr, buf) != 1)
                return vp_err(err, -EINVAL, "listener '%s': '%s' is not a numeric %s address", l->text, l->addr,
                              l->ipv6 ? "IPv6" : "IPv4");
        uint64_t port;
        struct vp_error perr = { 0 };
        if (vp_parse_uint("port", colon + 1, 1, 65535, &port, &perr) < 0)
                return vp_err(err, -EINVAL, "listener '%s': %s", l->text, perr.msg);
        l->port = (uint16_t)port;
        l->loopback = addr_is_loopback(l);
        return 0;
}

static int parse_item(const char *s, size_t len, struct vp_listen *l, struct vp_error *err)
{
        char pb[64];
        memset(l, 0, sizeof(*l));
        if (len >= sizeof(l->text))
                return vp_err(err, -EINVAL, "listener '%.40s...' is too long", vp_printable(s, pb, sizeof(pb)));
        memcpy(l->text, s, len);
        if (has_control(s, len))
                return vp_err(err, -EINVAL, "listener '%s': control characters are not allowed",
                              vp_printable(l->text, pb, sizeof(pb)));
        if (strncmp(l->text, "unix:", 5) == 0) {
                const char *p = l->text + 5;
                l->kind = VP_LISTEN_UNIX;
                if (p[0] != '/')
                        return vp_err(err, -EINVAL, "listener '%s': the socket needs an absolute path", l->text);
                if (strlen(p) > VP_LISTEN_PATH_MAX)
                        return vp_err(err, -EINVAL, "listener '%s': a socket path has at most %d bytes", l->text,
                                      VP_LISTEN_PATH_MAX);
                strcpy(l->path, p);
                return 0;
        }
        const char *rest;
        if (strncmp(l->text, "https://", 8) == 0) {
                l->kind = VP_LISTEN_HTTPS;
                rest = l->text + 8;
        } else if (strncmp(l->text, "http://", 7) == 0) {
                l->kind = VP_LISTEN_HTTP;
                rest = l->text + 7;
        } else {
                return vp_err(err, -EINVAL, "listener '%s': expected unix:/PATH, https://ADDRESS:PORT or "
                              "http://ADDRESS:PORT", l->text);
        }
        int r = parse_hostport(rest, l, err);
        if (r < 0)
                return r;
        if (l->kind == VP_LISTEN_HTTP && !l->loopback)
                return vp_err(err, -EINVAL, "listener '%s': plain http only on a loopback address; use https://",
                              l->text);
        return 0;
}

static bool same_listener(const struct vp_listen *a, const struct vp_listen *b)
{
        if (a->kind == VP_LISTEN_UNIX || b->kind == VP_LISTEN_UNIX)
                return a->kind == b->kind && streq(a->path, b->path);
        return a->port == b->port && streq(a->addr, b->addr);
}

int vp_listen_parse(const char *text, struct vp_listen **ret, size_t *n, struct vp_error *err)
{
        struct vp_listen *ls = vp_xcalloc(VP_LISTEN_MAX, sizeof(*ls));
        size_t count = 0;
        int r = 0;
        for (const char *p = text;; p++) {
                const char *end = strchr(p, ',');
                size_t len = end ? (size_t)(end - p) : strlen(p);
                while (len && (*p == ' ' || *p == '\t'))
                        p++, len--;
                while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
                        len--;
                if (len == 0) {
                        char pb[64];
                        r = vp_err(err, -EINVAL, "empty listener in '%s'", vp_printable(text, pb, sizeof(pb)));
                        break;
                }
                if (count == VP_LISTEN_MAX) {
                        r = vp_err(err, -EINVAL, "more than %d listeners", VP_LISTEN_MAX);
                        break;
                }
                if ((r = parse_item(p, len, &ls[count], err)) < 0)
                        break;
                for (size_t i = 0; i < count && r >= 0; i++)
                        if (same_listener(&ls[i], &ls[count]))
                                r = vp_err(err, -EINVAL, "listener '%s' is given twice", ls[count].text);
                if (r < 0)
                        break;
                count++;
                if (!end)
                        break;
                p = end;
        }
        if (r < 0) {
                free(ls);
                return r;
        }
        *ret = ls;
        *n = count;
        return 0;
}
