#include "lock.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>

#include "name.h"

/* The whole file, for fcntl's open file description locks. */
static struct flock whole_file(short type)
{
        return (struct flock){ .l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
}

static char *lock_path(struct vp_ctx *ctx, const char *pool)
{
        return vp_strdupf("%s.pool-%s.lock", ctx->catalog_path, pool);
}

/* How long a PostgreSQL catalog's pool lock is waited for while another
 * session holds it: enough for the server to end a killed process's. */
#define POOL_LOCK_HOLDER_GONE_MS 1000

/* The name of POOL's lock in a PostgreSQL catalog. */
static char *lock_name(const char *pool)
{
        return vp_strdupf("vpool pool %s", pool);
}

int vp_pool_lock(struct vp_ctx *ctx, const char *pool, int *ret_fd, struct vp_error *err)
{
        int r = vp_name_check("pool", pool, err);
        if (r < 0)
                return r;
        /* A PostgreSQL catalog is shared by controllers on several machines:
         * the lock is the server's, not a file's. */
        if (vp_catalog_is_pg(ctx->catalog_path)) {
                _cleanup_free_ char *name = lock_name(pool);
                /* A holder killed a moment ago keeps the lock until the
                 * server sees its socket closed, where a file lock goes
                 * with the process: waited for that long, no longer, so a
                 * resume right after a crash finds the pool free. */
                r = vp_catalog_lock(ctx->cat, name, POOL_LOCK_HOLDER_GONE_MS, ret_fd, err);
                if (r == -EBUSY)
                        return vp_err(err, -EBUSY, "pool '%s' is busy: another vpool process is working on it", pool);
                return r;
        }
        _cleanup_free_ char *path = lock_path(ctx, pool);
        /* Readable by all: a reader who may not write the catalog still
         * probes whether the pool is being worked on (vp_pool_lock_held). */
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return vp_err(err, -errno, "cannot open lock '%s': %s", path, strerror(errno));
        /* Two locks, both released when the process dies: the flock is the
         * one vpools before the probe took; the open file description lock
         * is the one a reader can test without taking anything. */
        struct flock fl = whole_file(F_WRLCK);
        if (flock(fd, LOCK_EX | LOCK_NB) < 0 || fcntl(fd, F_OFD_SETLK, &fl) < 0) {
                int e = errno;
                close(fd);
                if (e == EWOULDBLOCK || e == EAGAIN || e == EACCES)
                        return vp_err(err, -EBUSY, "pool '%s' is busy: another vpool process is working on it", pool);
                return vp_err(err, -e, "cannot lock '%s': %s", path, strerror(e));
        }
        *ret_fd = fd;
        return 0;
}

int vp_pool_lock_held(struct vp_ctx *ctx, const char *pool)
{
        if (vp_name_check("pool", pool, NULL) < 0)
                return -EINVAL;
        if (vp_catalog_is_pg(ctx->catalog_path)) {
                _cleanup_free_ char *name = lock_name(pool);
                return vp_catalog_lock_held(ctx->cat, name);
        }
        _cleanup_free_ char *path = lock_path(ctx, pool);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        /* F_OFD_GETLK only asks: a writer taking the lock at this moment
         * never finds it held by a reader. */
        struct flock fl = whole_file(F_WRLCK);
        if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
                return -errno;
        return fl.l_type != F_UNLCK;
}

int vp_pool_lock_check(struct vp_ctx *ctx, int fd, struct vp_error *err, const char *fmt, ...)
{
        if (fd < 0 || !vp_catalog_is_pg(ctx->catalog_path) || !vp_catalog_lock_lost(fd, 0))
                return 0;
        char then[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(then, sizeof(then), fmt, ap);
        va_end(ap);
        return vp_err(err, -ENOLCK, "the pool's lock was lost (the catalog's server ended the session that held it): %s",
                      then);
}
