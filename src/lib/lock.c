#include "lock.h"

#include <fcntl.h>
#include <string.h>
#include <sys/file.h>

#include "name.h"

int vp_pool_lock(struct vp_ctx *ctx, const char *pool, int *ret_fd, struct vp_error *err)
{
        int r = vp_name_check("pool", pool, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *path = vp_strdupf("%s.pool-%s.lock", ctx->catalog_path, pool);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return vp_err(err, -errno, "cannot open lock '%s': %s", path, strerror(errno));
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int e = errno;
                close(fd);
                if (e == EWOULDBLOCK)
                        return vp_err(err, -EBUSY, "pool '%s' is busy: another vpool process is working on it", pool);
                return vp_err(err, -e, "cannot lock '%s': %s", path, strerror(e));
        }
        *ret_fd = fd;
        return 0;
}
