/* SHA-256 (FIPS 180-4), used to identify master images. */
#pragma once
#include "util.h"

struct vp_sha256 {
        uint32_t h[8];
        uint64_t len;
        uint8_t buf[64];
        size_t fill;
};

void vp_sha256_init(struct vp_sha256 *s);
void vp_sha256_update(struct vp_sha256 *s, const void *data, size_t n);
/* Writes 64 lowercase hex digits and a NUL into HEX. */
void vp_sha256_final_hex(struct vp_sha256 *s, char hex[65]);

/* Hash a whole open file from offset 0 with pread. Returns 0 or -errno. */
int vp_sha256_fd(int fd, char hex[65], struct vp_error *err);
