#include "storage.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"
#include "sha256.h"

static const char *const subdirs[] = { "images", "deltas", "logs" };

static int check_root(const char *root, struct vp_error *err)
{
        if (!root || root[0] != '/')
                return vp_err(err, -EINVAL, "storage root '%s' must be an absolute path", root ? root : "");
        if (strlen(root) > 512)
                return vp_err(err, -ENAMETOOLONG, "storage root is too long");
        return 0;
}

int vp_storage_init(const char *root, struct vp_error *err)
{
        int r = check_root(root, err);
        if (r < 0)
                return r;
        if (mkdir(root, 0755) < 0 && errno != EEXIST)
                return vp_err(err, -errno, "cannot create storage root '%s': %s", root, strerror(errno));
        _cleanup_close_ int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return vp_err(err, -errno, "storage root '%s': %s", root, strerror(errno));
        for (size_t i = 0; i < ELEMENTSOF(subdirs); i++) {
                if (mkdirat(fd, subdirs[i], 0755) < 0 && errno != EEXIST)
                        return vp_err(err, -errno, "cannot create '%s/%s': %s", root, subdirs[i],
                                      strerror(errno));
                struct stat st;
                if (fstatat(fd, subdirs[i], &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
                        return vp_err(err, -ENOTDIR, "'%s/%s' is not a directory", root, subdirs[i]);
        }
        return vp_fsync_dir(fd, err);
}

int vp_storage_open_dir(int dirfd, const char *name, const char *label, struct vp_error *err)
{
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return vp_err(err, -errno, "'%s': %s", label,
                              errno == ELOOP || errno == ENOTDIR ? "not a directory (symbolic link?)"
                                                                 : strerror(errno));
        return fd;
}

int vp_storage_open(const char *root, struct vp_storage *ret, struct vp_error *err)
{
        int r = check_root(root, err);
        if (r < 0)
                return r;
        struct vp_storage s = { .root_fd = -1, .images_fd = -1, .deltas_fd = -1, .logs_fd = -1 };
        s.root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s.root_fd < 0)
                return vp_err(err, -errno, "storage root '%s': %s", root, strerror(errno));
        int *fds[] = { &s.images_fd, &s.deltas_fd, &s.logs_fd };
        for (size_t i = 0; i < ELEMENTSOF(subdirs); i++) {
                _cleanup_free_ char *label = vp_strdupf("%s/%s", root, subdirs[i]);
                *fds[i] = vp_storage_open_dir(s.root_fd, subdirs[i], label, err);
                if (*fds[i] < 0) {
                        r = *fds[i];
                        *fds[i] = -1;
                        s.root = NULL;
                        vp_storage_close(&s);
                        return r;
                }
        }
        s.root = vp_strdup(root);
        *ret = s;
        return 0;
}

void vp_storage_close(struct vp_storage *s)
{
        int *fds[] = { &s->root_fd, &s->images_fd, &s->deltas_fd, &s->logs_fd };
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                if (*fds[i] >= 0) {
                        close(*fds[i]);
                        *fds[i] = -1;
                }
        free(s->root);
        s->root = NULL;
}

static int copy_fd(int in, int out, struct vp_error *err)
{
        for (;;) {
                ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
                if (n == 0)
                        return 0;
                if (n > 0)
                        continue;
                if (errno == EINTR)
                        continue;
                if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
                        return vp_err(err, -errno, "copy failed: %s", strerror(errno));
                break;
        }
        /* Fall back to read/write where the kernel cannot copy between these files. */
        char buf[1 << 16];
        for (;;) {
                ssize_t n = read(in, buf, sizeof(buf));
                if (n == 0)
                        return 0;
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return vp_err(err, -errno, "read failed: %s", strerror(errno));
                }
                for (ssize_t off = 0; off < n;) {
                        ssize_t w = write(out, buf + off, (size_t)(n - off));
                        if (w < 0) {
                                if (errno == EINTR)
                                        continue;
                                return vp_err(err, -errno, "write failed: %s", strerror(errno));
                        }
                        off += w;
                }
        }
}

int vp_storage_import(struct vp_storage *s, const char *dest, const char *src,
                      enum vp_image_format format, struct vp_image_info *info, char sha256[65],
                      char **ret_path, struct vp_error *err)
{
        _cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (in < 0)
                return vp_err(err, -errno, "cannot open '%s': %s", src, strerror(errno));
        struct stat st;
        if (fstat(in, &st) < 0)
                return vp_err(err, -errno, "cannot stat '%s': %s", src, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return vp_err(err, -EINVAL, "'%s' is not a regular file", src);
        if (st.st_size == 0)
                return vp_err(err, -EINVAL, "'%s' is empty", src);

        struct vp_image_info pre = { 0 };
        int r;
        if (format != VP_FORMAT_UNKNOWN) {
                r = vp_image_probe(in, src, format, &pre, err);
                if (r < 0)
                        return r;
                r = vp_image_check_master(&pre, src, err);
                if (r < 0)
                        return r;
        }

        if (faccessat(s->images_fd, dest, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                return vp_err(err, -EEXIST, "'%s/images/%s' already exists", s->root, dest);

        _cleanup_close_ int check = -1;
        _cleanup_free_ char *tmp = vp_strdupf(".%s.importing", dest);
        unlinkat(s->images_fd, tmp, 0);
        _cleanup_close_ int out = openat(s->images_fd, tmp,
                                         O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (out < 0)
                return vp_err(err, -errno, "cannot create '%s/images/%s': %s", s->root, tmp, strerror(errno));

        r = copy_fd(in, out, err);
        if (r >= 0 && fsync(out) < 0)
                r = vp_err(err, -errno, "fsync failed: %s", strerror(errno));
        if (r >= 0 && fchmod(out, 0444) < 0)
                r = vp_err(err, -errno, "chmod failed: %s", strerror(errno));
        if (r < 0) {
                vp_err_prefix(err, "importing '%s'", src);
                goto fail;
        }

        /* The copy is what VMs will read: check and hash the copy, not the source. */
        check = openat(s->images_fd, tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (check < 0) {
                r = vp_err(err, -errno, "cannot reopen copy of '%s': %s", src, strerror(errno));
                goto fail;
        }
        struct vp_image_info post = { 0 };
        if (format != VP_FORMAT_UNKNOWN) {
                r = vp_image_probe(check, src, format, &post, err);
                if (r >= 0)
                        r = vp_image_check_master(&post, src, err);
                if (r < 0)
                        goto fail;
        } else {
                post.file_size = (uint64_t)st.st_size;
        }
        if (sha256) {
                r = vp_sha256_fd(check, sha256, err);
                if (r < 0)
                        goto fail;
        }
        if (renameat2(s->images_fd, tmp, s->images_fd, dest, RENAME_NOREPLACE) < 0) {
                r = vp_err(err, -errno, "cannot place '%s/images/%s': %s", s->root, dest, strerror(errno));
                goto fail;
        }
        r = vp_fsync_dir(s->images_fd, err);
        if (r < 0) {
                unlinkat(s->images_fd, dest, 0);
                return r;
        }
        if (info)
                *info = post;
        *ret_path = vp_strdupf("%s/images/%s", s->root, dest);
        return 0;
fail:
        unlinkat(s->images_fd, tmp, 0);
        return r;
}

int vp_storage_remove_image(struct vp_storage *s, const char *name, struct vp_error *err)
{
        if (unlinkat(s->images_fd, name, 0) < 0 && errno != ENOENT)
                return vp_err(err, -errno, "cannot remove '%s/images/%s': %s", s->root, name, strerror(errno));
        return vp_fsync_dir(s->images_fd, err);
}

int vp_storage_hash_image(struct vp_storage *s, const char *name, char sha256[65], struct vp_error *err)
{
        _cleanup_close_ int fd = openat(s->images_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return vp_err(err, -errno, "image file '%s/images/%s': %s", s->root, name,
                              errno == ELOOP ? "is a symbolic link" : strerror(errno));
        return vp_sha256_fd(fd, sha256, err);
}

int vp_storage_open_master(struct vp_storage *s, const char *path, const char *format, int *ret_fd,
                           struct vp_error *err)
{
        size_t rl = strlen(s->root);
        if (strncmp(path, s->root, rl) != 0 || strncmp(path + rl, "/images/", 8) != 0 || strchr(path + rl + 8, '/'))
                return vp_err(err, -EPERM, "master image '%s' is not under '%s/images'", path, s->root);
        _cleanup_close_ int fd = openat(s->images_fd, path + rl + 8, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return vp_err(err, -errno, "master image '%s': %s", path,
                              errno == ELOOP ? "is a symbolic link; refusing" : strerror(errno));
        struct vp_image_info info;
        int r = vp_image_probe(fd, path, vp_format_from_string(format), &info, err);
        if (r >= 0)
                r = vp_image_check_master(&info, path, err);
        if (r >= 0)
                *ret_fd = TAKE_FD(fd);
        return r;
}

int vp_storage_check_master(struct vp_storage *s, const char *path, const char *format, struct vp_error *err)
{
        int fd = -1;
        int r = vp_storage_open_master(s, path, format, &fd, err);
        if (r >= 0)
                close(fd);
        return r;
}

char *vp_storage_log_path(struct vp_storage *s, const char *vm)
{
        return vp_strdupf("%s/logs/%s.log", s->root, vm);
}

/* One step of PATH: NAME (the next component) in directory DFD; LAST says
 * whether it is the file itself. Returns 1 when LAST and NAME is absent. */
static int check_step(int dfd, const char *name, bool last, const char *path, struct vp_error *err)
{
        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT && last)
                        return 1;
                return vp_err(err, -errno, "'%s': %s", path, strerror(errno));
        }
        if (S_ISLNK(st.st_mode) && last)
                return vp_err(err, -ELOOP, "'%s' is a symbolic link; refusing", path);
        if (S_ISLNK(st.st_mode))
                return vp_err(err, -ELOOP, "'%s': '%s' on the way is a symbolic link; refusing", path, name);
        if (!last && !S_ISDIR(st.st_mode))
                return vp_err(err, -ENOTDIR, "'%s': '%s' on the way is not a directory; refusing", path, name);
        if (last && !S_ISREG(st.st_mode))
                return vp_err(err, -EPERM, "'%s' is not a regular file; refusing", path);
        return 0;
}

int vp_storage_check_file_at(int dfd, const char *name, const char *path, struct vp_error *err)
{
        int r = check_step(dfd, name, true, path, err);
        return r < 0 ? r : 0;
}

int vp_storage_check_file(struct vp_storage *s, const char *path, struct vp_error *err)
{
        size_t rl = strlen(s->root);
        if (!path || strncmp(path, s->root, rl) != 0 || path[rl] != '/')
                return vp_err(err, -EPERM, "'%s' is not under the storage root '%s'", path ? path : "", s->root);
        _cleanup_free_ char *rest = vp_strdup(path + rl + 1);
        _cleanup_close_ int dfd = fcntl(s->root_fd, F_DUPFD_CLOEXEC, 0);
        if (dfd < 0)
                return vp_err(err, -errno, "storage root '%s': %s", s->root, strerror(errno));
        char *save = NULL;
        for (char *name = strtok_r(rest, "/", &save); name; name = strtok_r(NULL, "/", &save)) {
                if (streq(name, ".") || streq(name, ".."))
                        return vp_err(err, -EPERM, "'%s' is not a plain path under the storage root; refusing", path);
                bool last = !save || !*save;
                int r = check_step(dfd, name, last, path, err);
                if (r != 0)
                        return r < 0 ? r : 0;
                if (last)
                        return 0;
                int next = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (next < 0)
                        return vp_err(err, -errno, "'%s': %s", path, strerror(errno));
                close(dfd);
                dfd = next;
        }
        return vp_err(err, -EISDIR, "'%s' names no file; refusing", path);
}
