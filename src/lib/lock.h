/* The per-pool operation lock: one vpool process at a time works on a
 * pool (creates, removes or migrates it). Below both provision and migrate,
 * which each take it. */
#pragma once
#include "core.h"

/* Take the lock of POOL: a lock on a file next to the catalog, or the
 * server's advisory lock of a PostgreSQL catalog, released when the process
 * dies. Returns 0 and *RET_FD (the caller's: closing it
 * releases the lock); -EBUSY when another process holds it. */
int vp_pool_lock(struct vp_ctx *ctx, const char *pool, int *ret_fd, struct vp_error *err);

/* Whether another process holds POOL's lock: 1 or 0, negative errno when
 * that cannot be told (the lock file unreadable). Takes no lock, so it
 * never makes a vp_pool_lock fail: what read-only verbs use. */
int vp_pool_lock_held(struct vp_ctx *ctx, const char *pool);

/* 0 while the lock FD (from vp_pool_lock) is held; -ENOLCK once it is
 * not: the session of a PostgreSQL catalog that held it ended (its server
 * restarted or dropped it), so another process may take the pool now. The
 * error says so, then what the caller stopped and how to go on (FMT). A
 * file's lock lasts until FD is closed: never lost. Waits for nothing. */
int vp_pool_lock_check(struct vp_ctx *ctx, int fd, struct vp_error *err, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
