#include "storage.h"

#include <fcntl.h>
#include <stdio.h>
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"
#include "name.h"
#include "sha256.h"
#include "runcmd.h"

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

static int open_dir_at(int dirfd, const char *name, const char *label, struct vp_error *err)
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
                *fds[i] = open_dir_at(s.root_fd, subdirs[i], label, err);
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

int vp_delta_open(struct vp_storage *s, const char *pool, const char *vm, int *ret_fd,
                  struct vp_error *err)
{
        _cleanup_free_ char *label = vp_strdupf("%s/deltas/%s", s->root, pool);
        _cleanup_close_ int pfd = open_dir_at(s->deltas_fd, pool, label, err);
        if (pfd < 0)
                return pfd;
        _cleanup_free_ char *vlabel = vp_strdupf("%s/deltas/%s/%s", s->root, pool, vm);
        int fd = open_dir_at(pfd, vm, vlabel, err);
        if (fd < 0)
                return fd;
        *ret_fd = fd;
        return 0;
}

/* Remove the regular files of directory NAME in PARENT, then NAME itself. */
static int remove_collection(int parent, const char *name, const char *label, struct vp_error *err)
{
        int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                if (errno == ENOENT)
                        return 0;
                return vp_err(err, -errno, "cannot open '%s': %s", label, strerror(errno));
        }
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return vp_err(err, -errno, "cannot read '%s': %s", label, strerror(errno));
        }
        int r = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (S_ISDIR(st.st_mode)) {
                        r = vp_err(err, -ENOTEMPTY, "'%s' holds an unexpected directory '%s'", label, de->d_name);
                        continue;
                }
                if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT)
                        r = vp_err(err, -errno, "cannot remove '%s/%s': %s", label, de->d_name, strerror(errno));
        }
        if (r >= 0 && fsync(dirfd(d)) < 0)
                r = vp_err(err, -errno, "fsync '%s': %s", label, strerror(errno));
        closedir(d);
        if (r < 0)
                return r;
        if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                return vp_err(err, -errno, "cannot remove '%s': %s", label, strerror(errno));
        return vp_fsync_dir(parent, err);
}

int vp_delta_remove(struct vp_storage *s, const char *pool, const char *vm, struct vp_error *err)
{
        int pfd = openat(s->deltas_fd, pool, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (pfd < 0) {
                if (errno == ENOENT)
                        return 0;
                return vp_err(err, -errno, "cannot open '%s/deltas/%s': %s", s->root, pool, strerror(errno));
        }
        _cleanup_free_ char *label = vp_strdupf("%s/deltas/%s/%s", s->root, pool, vm);
        int r = remove_collection(pfd, vm, label, err);
        close(pfd);
        if (r < 0)
                return r;
        /* The pool directory goes with its last collection. */
        if (unlinkat(s->deltas_fd, pool, AT_REMOVEDIR) == 0)
                return vp_fsync_dir(s->deltas_fd, err);
        return 0;
}

static int run_qemu_img_create(const char *path, const char *backing, const char *backing_fmt,
                               uint64_t size, struct vp_error *err)
{
        char sizebuf[32];
        snprintf(sizebuf, sizeof(sizebuf), "%llu", (unsigned long long)size);
        if (backing) {
                const char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-b", backing,
                                       "-F", backing_fmt, path, NULL };
                return vp_spawn(argv, err);
        }
        const char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", path, sizebuf, NULL };
        return vp_spawn(argv, err);
}

int vp_delta_create(struct vp_storage *s, const struct vp_manifest *m, uint64_t data_disk_bytes,
                    char **ret_path, struct vp_error *err)
{
        int r;
        if ((r = vp_name_check("pool", m->pool, err)) < 0 || (r = vp_name_check("vm", m->vm, err)) < 0)
                return r;

        bool made_pool = false;
        if (mkdirat(s->deltas_fd, m->pool, 0755) == 0)
                made_pool = true;
        else if (errno != EEXIST)
                return vp_err(err, -errno, "cannot create '%s/deltas/%s': %s", s->root, m->pool, strerror(errno));
        _cleanup_free_ char *plabel = vp_strdupf("%s/deltas/%s", s->root, m->pool);
        _cleanup_close_ int pfd = open_dir_at(s->deltas_fd, m->pool, plabel, err);
        if (pfd < 0)
                return pfd;
        _cleanup_free_ char *path = vp_strdupf("%s/deltas/%s/%s", s->root, m->pool, m->vm);
        _cleanup_free_ char *overlay = vp_strdupf("%s/%s", path, m->overlay);
        _cleanup_close_ int vfd = -1;
        if (mkdirat(pfd, m->vm, 0755) < 0) {
                if (errno == EEXIST)
                        return vp_err(err, -EEXIST, "user delta collection '%s' already exists", path);
                return vp_err(err, -errno, "cannot create '%s': %s", path, strerror(errno));
        }
        vfd = open_dir_at(pfd, m->vm, path, err);
        if (vfd < 0) {
                r = vfd;
                goto fail;
        }

        r = run_qemu_img_create(overlay, m->master, m->master_format, 0, err);
        if (r < 0)
                goto fail;
        {
                _cleanup_close_ int ofd = openat(vfd, m->overlay, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                struct vp_image_info info;
                if (ofd < 0) {
                        r = vp_err(err, -errno, "cannot open '%s': %s", overlay, strerror(errno));
                        goto fail;
                }
                r = vp_image_probe(ofd, overlay, VP_FORMAT_QCOW2, &info, err);
                if (r >= 0)
                        r = vp_image_check_overlay(&info, overlay, m->master, m->master_format, err);
                if (r < 0)
                        goto fail;
                if (fsync(ofd) < 0) {
                        r = vp_err(err, -errno, "fsync '%s': %s", overlay, strerror(errno));
                        goto fail;
                }
        }
        if (data_disk_bytes && m->data_disk[0]) {
                _cleanup_free_ char *data = vp_strdupf("%s/%s", path, m->data_disk);
                r = run_qemu_img_create(data, NULL, NULL, data_disk_bytes, err);
                if (r < 0)
                        goto fail;
        }
        r = vp_manifest_write(vfd, m, err);
        if (r < 0)
                goto fail;
        r = vp_fsync_dir(pfd, err);
        if (r < 0)
                goto fail;
        if (made_pool && (r = vp_fsync_dir(s->deltas_fd, err)) < 0)
                goto fail;
        *ret_path = TAKE_PTR(path);
        return 0;
fail:
        {
                struct vp_error ignore;
                remove_collection(pfd, m->vm, path, &ignore);
                if (made_pool)
                        unlinkat(s->deltas_fd, m->pool, AT_REMOVEDIR);
        }
        return r;
}

static int check_disk(int vfd, const char *dir, const char *name, const char *master, const char *master_format,
                      struct vp_error *err)
{
        _cleanup_free_ char *path = vp_strdupf("%s/%s", dir, name);
        _cleanup_close_ int fd = openat(vfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return vp_err(err, -errno, "disk '%s': %s", path,
                              errno == ELOOP ? "is a symbolic link; refusing" : strerror(errno));
        struct vp_image_info info;
        int r = vp_image_probe(fd, path, VP_FORMAT_QCOW2, &info, err);
        if (r < 0)
                return r;
        if (master)
                return vp_image_check_overlay(&info, path, master, master_format, err);
        if (info.backing_file[0] || info.has_data_file)
                return vp_err(err, -EPERM, "disk '%s' must stand alone but has %s", path,
                              info.has_data_file ? "an external data file" : "a backing file");
        return 0;
}

int vp_delta_check(struct vp_storage *s, const char *pool, const char *vm, const char *master,
                   const char *master_format, struct vp_manifest *ret_m, struct vp_error *err)
{
        _cleanup_close_ int vfd = -1;
        _cleanup_free_ char *dir = vp_strdupf("%s/deltas/%s/%s", s->root, pool, vm);
        struct vp_manifest m;
        int r = vp_delta_open(s, pool, vm, &vfd, err);
        if (r < 0 || (r = vp_manifest_read(vfd, dir, &m, err)) < 0)
                return r;
        if (!streq(m.pool, pool) || !streq(m.vm, vm))
                return vp_err(err, -EBADMSG, "manifest '%s' names %s/%s", dir, m.pool, m.vm);
        if (!streq(m.master, master) || !streq(m.master_format, master_format))
                return vp_err(err, -EPERM, "delta '%s' names master '%s', its pool's is '%s'", dir, m.master, master);
        if ((r = check_disk(vfd, dir, m.overlay, master, master_format, err)) < 0)
                return r;
        if (m.data_disk[0] && (r = check_disk(vfd, dir, m.data_disk, NULL, NULL, err)) < 0)
                return r;
        if (ret_m)
                *ret_m = m;
        return 0;
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
