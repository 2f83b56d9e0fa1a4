/* The per-pool operation lock: one vpool process at a time works on a
 * pool (creates, removes or migrates it). Below both provision and migrate,
 * which each take it. */
#pragma once
#include "core.h"

/* Take the lock of POOL: a flock on a file next to the catalog, released
 * when the process dies. Returns 0 and *RET_FD (the caller's: closing it
 * releases the lock); -EBUSY when another process holds it. */
int vp_pool_lock(struct vp_ctx *ctx, const char *pool, int *ret_fd, struct vp_error *err);
