#include "fileio.h"
#include "name.h"

#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#define TMP_ATTEMPTS 100

/* Six characters from [A-Za-z0-9]; getrandom rarely fails, and uniqueness
 * comes from O_EXCL, so a weak fallback is good enough. */
static void random_suffix(char out[7])
{
        static const char alphabet[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        uint8_t rnd[6];

        if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t) sizeof(rnd)) {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                uint64_t x = (uint64_t) ts.tv_nsec ^ ((uint64_t) ts.tv_sec << 20) ^
                             ((uint64_t) getpid() << 40) ^ (uint64_t) (uintptr_t) out;
                for (size_t i = 0; i < sizeof(rnd); i++) {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        rnd[i] = (uint8_t) x;
                }
        }
        for (size_t i = 0; i < sizeof(rnd); i++)
                out[i] = alphabet[rnd[i] % (sizeof(alphabet) - 1)];
        out[6] = '\0';
}

/* NAME must be one path component: O_NOFOLLOW guards only the last
 * component, and earlier ones would be resolved through symlinks. Callers
 * open subdirectories themselves with O_DIRECTORY|O_NOFOLLOW. */
static int check_plain_name(const char *name, struct vp_error *err)
{
        char shown[64];

        if (!name || !*name || strchr(name, '/') || streq(name, ".") || streq(name, ".."))
                return vp_err(err, -EINVAL, "invalid file name '%s'",
                              vp_printable(name ? name : "", shown, sizeof(shown)));
        return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
        const uint8_t *p = data;

        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EIO;
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

int vp_fsync_dir(int dirfd, struct vp_error *err)
{
        if (fsync(dirfd) < 0) {
                int r = -errno;
                return vp_err(err, r, "cannot sync directory: %s", strerror(-r));
        }
        return 0;
}

int vp_write_file_atomic(int dirfd, const char *name, const void *data, size_t len,
                         mode_t mode, struct vp_error *err)
{
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        char shown[128], suffix[7];
        const char *step;
        int r;

        r = check_plain_name(name, err);
        if (r < 0)
                return r;
        vp_printable(name, shown, sizeof(shown));
        if (len > 0 && !data)
                return vp_err(err, -EINVAL, "cannot write '%s': no data", shown);

        for (int i = 0; i < TMP_ATTEMPTS; i++) {
                random_suffix(suffix);
                free(tmp);
                tmp = vp_strdupf("%s.tmp.%s", name, suffix);
                fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                            mode);
                if (fd >= 0 || errno != EEXIST)
                        break;
        }
        if (fd < 0) {
                r = errno == EEXIST ? -EEXIST : -errno;
                return vp_err(err, r, "cannot create a temporary file for '%s': %s", shown,
                              strerror(-r));
        }

        /* Apply MODE exactly rather than whatever the umask leaves of it. */
        step = "set the mode of";
        if (fchmod(fd, mode) < 0) {
                r = -errno;
                goto fail;
        }
        step = "write";
        r = write_all(fd, data, len);
        if (r < 0)
                goto fail;
        step = "sync";
        if (fsync(fd) < 0) {
                r = -errno;
                goto fail;
        }
        step = "close";
        r = close(fd);
        fd = -1;
        if (r < 0 && errno != EINTR) {
                r = -errno;
                goto fail;
        }
        step = "replace";
        if (renameat(dirfd, tmp, dirfd, name) < 0) {
                r = -errno;
                goto fail;
        }

        /* NAME is in place now; only its durability is in question. */
        if (fsync(dirfd) < 0) {
                r = -errno;
                return vp_err(err, r, "cannot sync the directory of '%s': %s", shown,
                              strerror(-r));
        }
        return 0;

fail:
        unlinkat(dirfd, tmp, 0);
        return vp_err(err, r, "cannot %s '%s': %s", step, shown, strerror(-r));
}

int vp_read_file_at(int dirfd, const char *name, size_t max, char **ret, size_t *ret_len,
                    struct vp_error *err)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        char shown[128];
        struct stat st;
        size_t cap, len = 0;
        int r;

        r = check_plain_name(name, err);
        if (r < 0)
                return r;
        vp_printable(name, shown, sizeof(shown));

        /* O_NONBLOCK keeps a FIFO planted under NAME from blocking the open;
         * the S_ISREG check below then refuses it. */
        fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                r = -errno;
                if (r == -ELOOP)
                        return vp_err(err, r, "'%s' is a symbolic link", shown);
                return vp_err(err, r, "cannot open '%s': %s", shown, strerror(-r));
        }
        if (fstat(fd, &st) < 0) {
                r = -errno;
                return vp_err(err, r, "cannot stat '%s': %s", shown, strerror(-r));
        }
        if (!S_ISREG(st.st_mode))
                return vp_err(err, S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL,
                              "'%s' is not a regular file", shown);
        if ((uint64_t) st.st_size > max)
                return vp_err(err, -EFBIG, "'%s' is too large (%jd bytes, at most %zu allowed)",
                              shown, (intmax_t) st.st_size, max);

        /* The size may change under us; read until EOF but never past MAX. */
        cap = (size_t) st.st_size + 1;
        buf = malloc(cap);
        if (!buf)
                return vp_err(err, -ENOMEM, "cannot read '%s': out of memory", shown);
        for (;;) {
                if (len + 1 == cap) {
                        if (len > max)
                                break;
                        /* Room for one byte past MAX, to notice the excess. */
                        size_t limit = max > SIZE_MAX - 2 ? SIZE_MAX : max + 2;
                        size_t ncap = cap < 2048 ? 4096 : cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
                        if (ncap > limit)
                                ncap = limit;
                        char *nbuf = realloc(buf, ncap);
                        if (!nbuf)
                                return vp_err(err, -ENOMEM, "cannot read '%s': out of memory",
                                              shown);
                        buf = nbuf;
                        cap = ncap;
                }
                ssize_t n = read(fd, buf + len, cap - 1 - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        return vp_err(err, r, "cannot read '%s': %s", shown, strerror(-r));
                }
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        if (len > max)
                return vp_err(err, -EFBIG, "'%s' is too large (more than %zu bytes allowed)",
                              shown, max);
        buf[len] = '\0';

        /* Not TAKE_PTR: statement expressions trip -Wpedantic. */
        *ret = buf;
        buf = NULL;
        if (ret_len)
                *ret_len = len;
        return 0;
}

/* The spare of vp_write_file_recycle, opened for rewriting: an existing
 * regular file with no other name (a hard link planted there must not have
 * its other name's content rewritten), or a new one. -ENOTUNIQ for one that
 * is not fit: the caller falls back to a fresh temp file. */
static int open_spare(int dirfd, const char *spare, mode_t mode, struct stat *ret_st)
{
        int fd = openat(dirfd, spare, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0 && errno == ENOENT) {
                fd = openat(dirfd, spare, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
                if (fd >= 0 && fchmod(fd, mode) < 0) {
                        int r = -errno;
                        close(fd);
                        unlinkat(dirfd, spare, 0);
                        return r;
                }
        }
        if (fd < 0)
                return -ENOTUNIQ;
        if (fstat(fd, ret_st) < 0 || !S_ISREG(ret_st->st_mode) || ret_st->st_nlink != 1 ||
            (ret_st->st_mode & 07777) != mode) {
                close(fd);
                return -ENOTUNIQ;
        }
        return fd;
}

int vp_write_file_recycle(int dirfd, const char *name, const char *spare, const void *data, size_t len,
                          mode_t mode, struct vp_error *err)
{
        _cleanup_close_ int fd = -1;
        char shown[128];
        struct stat st;
        const char *step;
        int r;

        if ((r = check_plain_name(name, err)) < 0 || (r = check_plain_name(spare, err)) < 0)
                return r;
        vp_printable(name, shown, sizeof(shown));
        if (len > 0 && !data)
                return vp_err(err, -EINVAL, "cannot write '%s': no data", shown);
        fd = open_spare(dirfd, spare, mode, &st);
        if (fd == -ENOTUNIQ)
                return vp_write_file_atomic(dirfd, name, data, len, mode, err);
        if (fd < 0) {
                r = fd;
                fd = -1;
                return vp_err(err, r, "cannot create a temporary file for '%s': %s", shown, strerror(-r));
        }

        /* Rewritten from its start (just opened: offset 0) and cut to
         * size: the blocks it has are reused. Nothing reads the spare, so
         * a crash halfway harms nothing; the next write starts it again. */
        step = "write";
        if ((r = write_all(fd, data, len)) < 0)
                goto fail;
        if ((uint64_t)st.st_size != len && ftruncate(fd, (off_t)len) < 0) {
                r = -errno;
                goto fail;
        }
        /* The content and its size, all a reader needs; the times may
         * lag. */
        step = "sync";
        if (fdatasync(fd) < 0) {
                r = -errno;
                goto fail;
        }

        /* NAME takes the new inode, the spare the old one for the next
         * write. A filesystem without exchange (NFS) or a first write (no
         * NAME yet) renames, as vp_write_file_atomic does. */
        step = "replace";
        if (renameat2(dirfd, spare, dirfd, name, RENAME_EXCHANGE) < 0) {
                if ((errno != ENOENT && errno != EINVAL && errno != ENOSYS) || renameat(dirfd, spare, dirfd, name) < 0) {
                        r = -errno;
                        goto fail;
                }
        }
        if (fsync(dirfd) < 0) {
                r = -errno;
                return vp_err(err, r, "cannot sync the directory of '%s': %s", shown, strerror(-r));
        }
        return 0;

fail:
        unlinkat(dirfd, spare, 0);
        return vp_err(err, r, "cannot %s '%s': %s", step, shown, strerror(-r));
}
