#include "delta.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"
#include "model.h"
#include "name.h"

/* ---- the collection ------------------------------------------------------ */

#define UUID_LEN 36

/* The collection's directory name of VM of UUID into a malloc'd string. */
static char *dir_name(const char *vm, const char *uuid)
{
        return vp_strdupf("%s.%s", vm, uuid);
}

char *vp_delta_path(const struct vp_storage *s, const char *pool, const char *vm, const char *uuid)
{
        _cleanup_free_ char *dir = dir_name(vm, uuid);
        return vp_strdupf("%s/deltas/%s/%s", s->root, pool, dir);
}

const char *vp_delta_dir_of(const char *delta_path)
{
        const char *slash = strrchr(delta_path, '/');
        return slash ? slash + 1 : delta_path;
}

/* Whether U is a UUID as libvirt writes it: 8-4-4-4-12 lowercase hex. */
static bool uuid_ok(const char *u)
{
        for (int i = 0; i < UUID_LEN; i++) {
                bool dash = i == 8 || i == 13 || i == 18 || i == 23;
                if (dash ? u[i] != '-' : !((u[i] >= '0' && u[i] <= '9') || (u[i] >= 'a' && u[i] <= 'f')))
                        return false;
        }
        return u[UUID_LEN] == '\0';
}

int vp_delta_dir_parse(const char *dir, char vm[VP_NAME_MAX + 1], char uuid[37])
{
        size_t n = strlen(dir);
        size_t vl = n;
        uuid[0] = '\0';
        /* A VM's name never ends in a UUID (it ends in its index), so the
         * suffix tells a collection of today from one made before. */
        if (n > UUID_LEN + 1 && dir[n - UUID_LEN - 1] == '.' && uuid_ok(dir + n - UUID_LEN)) {
                vl = n - UUID_LEN - 1;
                memcpy(uuid, dir + vl + 1, UUID_LEN + 1);
        }
        if (vl > VP_NAME_MAX)
                return -EINVAL;
        memcpy(vm, dir, vl);
        vm[vl] = '\0';
        return vp_name_check("vm", vm, NULL);
}

int vp_delta_open(struct vp_storage *s, const char *pool, const char *dir, int *ret_fd,
                  struct vp_error *err)
{
        _cleanup_free_ char *label = vp_strdupf("%s/deltas/%s", s->root, pool);
        _cleanup_close_ int pfd = vp_storage_open_dir(s->deltas_fd, pool, label, err);
        if (pfd < 0)
                return pfd;
        _cleanup_free_ char *vlabel = vp_strdupf("%s/deltas/%s/%s", s->root, pool, dir);
        int fd = vp_storage_open_dir(pfd, dir, vlabel, err);
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

int vp_delta_remove(struct vp_storage *s, const char *pool, const char *dir, struct vp_error *err)
{
        int pfd = openat(s->deltas_fd, pool, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (pfd < 0) {
                if (errno == ENOENT)
                        return 0;
                return vp_err(err, -errno, "cannot open '%s/deltas/%s': %s", s->root, pool, strerror(errno));
        }
        _cleanup_free_ char *label = vp_strdupf("%s/deltas/%s/%s", s->root, pool, dir);
        int r = remove_collection(pfd, dir, label, err);
        close(pfd);
        if (r < 0)
                return r;
        /* The pool directory goes with its last collection. */
        if (unlinkat(s->deltas_fd, pool, AT_REMOVEDIR) == 0)
                return vp_fsync_dir(s->deltas_fd, err);
        return 0;
}

int vp_delta_create(struct vp_storage *s, const struct vp_manifest *m, uint64_t master_bytes,
                    uint64_t data_disk_bytes, char **ret_path, struct vp_error *err)
{
        int r;
        if ((r = vp_name_check("pool", m->pool, err)) < 0 || (r = vp_name_check("vm", m->vm, err)) < 0)
                return r;
        if (!uuid_ok(m->uuid))
                return vp_err(err, -EINVAL, "vm '%s': invalid UUID '%s'", m->vm, m->uuid);
        _cleanup_free_ char *dir = dir_name(m->vm, m->uuid);

        bool made_pool = false;
        if (mkdirat(s->deltas_fd, m->pool, 0755) == 0)
                made_pool = true;
        else if (errno != EEXIST)
                return vp_err(err, -errno, "cannot create '%s/deltas/%s': %s", s->root, m->pool, strerror(errno));
        _cleanup_free_ char *plabel = vp_strdupf("%s/deltas/%s", s->root, m->pool);
        _cleanup_close_ int pfd = vp_storage_open_dir(s->deltas_fd, m->pool, plabel, err);
        if (pfd < 0)
                return pfd;
        _cleanup_free_ char *path = vp_strdupf("%s/deltas/%s/%s", s->root, m->pool, dir);
        _cleanup_free_ char *overlay = vp_strdupf("%s/%s", path, m->overlay);
        _cleanup_close_ int vfd = -1;
        if (mkdirat(pfd, dir, 0755) < 0) {
                if (errno == EEXIST)
                        return vp_err(err, -EEXIST, "user delta collection '%s' already exists", path);
                return vp_err(err, -errno, "cannot create '%s': %s", path, strerror(errno));
        }
        vfd = vp_storage_open_dir(pfd, dir, path, err);
        if (vfd < 0) {
                r = vfd;
                goto fail;
        }

        r = vp_qcow2_create(vfd, m->overlay, overlay, master_bytes, m->master, m->master_format, err);
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
        }
        if (data_disk_bytes && m->data_disk[0]) {
                _cleanup_free_ char *data = vp_strdupf("%s/%s", path, m->data_disk);
                r = vp_qcow2_create(vfd, m->data_disk, data, data_disk_bytes, NULL, NULL, err);
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
                remove_collection(pfd, dir, path, &ignore);
                if (made_pool)
                        unlinkat(s->deltas_fd, m->pool, AT_REMOVEDIR);
        }
        return r;
}

/* ---- disk names ---------------------------------------------------------- */

/* BASE.gGEN.EXT into NAME: the name a disk takes at generation GEN. */
static void disk_name_at(char *name, size_t namesz, const char *base, const char *ext, int64_t gen)
{
        snprintf(name, namesz, "%s.g%lld.%s", base, (long long)gen, ext);
}

/* Whether NAME is BASE.EXT or BASE.gN.EXT. */
static bool disk_name_of(const char *name, const char *base, const char *ext)
{
        size_t bl = strlen(base), el = strlen(ext), nl = strlen(name);
        if (nl < bl + el + 1 || strncmp(name, base, bl) != 0 || name[bl] != '.' ||
            !streq(name + nl - el, ext) || name[nl - el - 1] != '.')
                return false;
        if (nl == bl + 1 + el)
                return true;
        const char *g = name + bl + 1;
        if (*g++ != 'g' || g >= name + nl - el - 1)
                return false;
        for (; g < name + nl - el - 1; g++)
                if (*g < '0' || *g > '9')
                        return false;
        return true;
}

/* The files of kind BASE/EXT in the collection DFD other than NAME: how
 * many, and the last one found into FOUND. */
static int other_candidates(int dfd, const char *label, const char *name, const char *base, const char *ext,
                            char found[256], struct vp_error *err)
{
        int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d) {
                if (fd >= 0)
                        close(fd);
                return vp_err(err, -errno, "cannot read '%s': %s", label, strerror(errno));
        }
        found[0] = '\0';
        int n = 0;
        struct dirent *de;
        while ((de = readdir(d)))
                if (!streq(de->d_name, name) && disk_name_of(de->d_name, base, ext) && strlen(de->d_name) < 256) {
                        snprintf(found, 256, "%s", de->d_name);
                        n++;
                }
        closedir(d);
        return n;
}

/* The UEFI variable store is the one disk that may be absent: libvirt
 * makes it at a UEFI VM's first start, from the template of the firmware
 * it picks on that host, at the path the domain names. A VM that never
 * booted has none, and its hand-overs have nothing to rename. */
static bool may_be_absent(const char *base)
{
        return streq(base, "nvram");
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

/* The UEFI variable store NAME is a regular file, or absent (never
 * booted) with no other store beside it: one a settle would take for it,
 * or several it would refuse. Which one is the user's is not for vpool to
 * guess. */
static int check_nvram(int vfd, const char *dir, const char *name, struct vp_error *err)
{
        _cleanup_free_ char *path = vp_strdupf("%s/%s", dir, name);
        struct stat st;
        if (fstatat(vfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                if (S_ISLNK(st.st_mode))
                        return vp_err(err, -ELOOP, "disk '%s': is a symbolic link; refusing", path);
                if (!S_ISREG(st.st_mode))
                        return vp_err(err, -EPERM, "disk '%s' is not a regular file; refusing", path);
                return 0;
        }
        if (errno != ENOENT)
                return vp_err(err, -errno, "disk '%s': %s", path, strerror(errno));
        char found[256];
        int n = other_candidates(vfd, dir, name, "nvram", "fd", found, err);
        if (n > 0)
                return vp_err(err, -EEXIST, "delta '%s': UEFI variable store '%s' is missing but '%s' is there; "
                              "rename the VM's own store to '%s' or remove the stray", dir, name, found, name);
        return n;
}

/* vp_delta_check on the open collection VFD (at PATH), whose manifest M
 * was just read. */
static int check_open(int vfd, const char *path, const char *pool, const char *dir, const struct vp_manifest *m,
                      const char *master, const char *master_format, struct vp_error *err)
{
        char vm[VP_NAME_MAX + 1], uuid[37];
        int r;
        if (vp_delta_dir_parse(dir, vm, uuid) < 0)
                return vp_err(err, -EINVAL, "'%s' is not a user delta collection", path);
        if (!streq(m->pool, pool) || !streq(m->vm, vm) || (uuid[0] && !streq(m->uuid, uuid)))
                return vp_err(err, -EBADMSG, "manifest '%s' names %s/%s (UUID %s)", path, m->pool, m->vm, m->uuid);
        if (!streq(m->master, master) || !streq(m->master_format, master_format))
                return vp_err(err, -EPERM, "delta '%s' names master '%s', its pool's is '%s'", path, m->master, master);
        if ((r = check_disk(vfd, path, m->overlay, master, master_format, err)) < 0)
                return r;
        if (m->data_disk[0] && (r = check_disk(vfd, path, m->data_disk, NULL, NULL, err)) < 0)
                return r;
        if (m->nvram[0] && (r = check_nvram(vfd, path, m->nvram, err)) < 0)
                return r;
        return 0;
}

int vp_delta_check(struct vp_storage *s, const char *pool, const char *dir, const char *master,
                   const char *master_format, struct vp_manifest *ret_m, struct vp_error *err)
{
        _cleanup_close_ int vfd = -1;
        _cleanup_free_ char *path = vp_strdupf("%s/deltas/%s/%s", s->root, pool, dir);
        struct vp_manifest m;
        char vm[VP_NAME_MAX + 1], uuid[37];
        if (vp_delta_dir_parse(dir, vm, uuid) < 0)
                return vp_err(err, -EINVAL, "'%s' is not a user delta collection", path);
        int r = vp_delta_open(s, pool, dir, &vfd, err);
        if (r < 0 || (r = vp_manifest_read(vfd, path, &m, err)) < 0 ||
            (r = check_open(vfd, path, pool, dir, &m, master, master_format, err)) < 0)
                return r;
        if (ret_m)
                *ret_m = m;
        return 0;
}

int vp_delta_check_settled(int dfd, const char *label, const char *pool, const struct vp_manifest *m,
                           const char *master, const char *master_format, struct vp_error *err)
{
        return check_open(dfd, label, pool, vp_delta_dir_of(label), m, master, master_format, err);
}

/* ---- the hand-over --------------------------------------------------------- */

void vp_delta_handed_manifest(struct vp_manifest *m, const char *to, int64_t bump)
{
        snprintf(m->owner, sizeof(m->owner), "%s", to);
        m->generation += bump;
        vp_delta_names_at(m, m->generation);
}

void vp_delta_names_at(struct vp_manifest *m, int64_t gen)
{
        static const struct {
                size_t off;
                const char *base, *ext;
        } disks[] = {
                { offsetof(struct vp_manifest, overlay), "overlay", "qcow2" },
                { offsetof(struct vp_manifest, data_disk), "data", "qcow2" },
                { offsetof(struct vp_manifest, nvram), "nvram", "fd" },
        };
        for (size_t i = 0; i < ELEMENTSOF(disks); i++) {
                char *name = (char *)m + disks[i].off;
                if (!name[0])
                        continue;
                if (gen <= 1)
                        snprintf(name, sizeof(m->overlay), "%s.%s", disks[i].base, disks[i].ext);
                else
                        disk_name_at(name, sizeof(m->overlay), disks[i].base, disks[i].ext, gen);
        }
}

/* Each disk of M: its kind, its name in M and its name at a generation. */
struct disk_pair {
        const char *base;
        const char *now;
        char at[64];
};

static size_t disk_pairs(const struct vp_manifest *m, int64_t gen, struct disk_pair out[3])
{
        struct vp_manifest next = *m;
        vp_delta_names_at(&next, gen);
        const char *now[3] = { m->overlay, m->data_disk, m->nvram }, *at[3] = { next.overlay, next.data_disk, next.nvram };
        static const char *const base[3] = { "overlay", "data", "nvram" };
        size_t n = 0;
        for (size_t i = 0; i < 3; i++)
                if (now[i][0]) {
                        out[n].base = base[i];
                        out[n].now = now[i];
                        snprintf(out[n].at, sizeof(out[n].at), "%s", at[i]);
                        n++;
                }
        return n;
}

int vp_delta_link_names(int dfd, const char *label, const struct vp_manifest *m, int64_t gen, struct vp_error *err)
{
        struct disk_pair d[3];
        size_t n = disk_pairs(m, gen, d);
        for (size_t i = 0; i < n; i++) {
                struct stat a, b;
                if (fstatat(dfd, d[i].now, &a, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT && may_be_absent(d[i].base))
                                continue;
                        return vp_err(err, -errno, "'%s/%s': %s", label, d[i].now, strerror(errno));
                }
                if (fstatat(dfd, d[i].at, &b, AT_SYMLINK_NOFOLLOW) == 0) {
                        if (a.st_dev == b.st_dev && a.st_ino == b.st_ino)
                                continue;
                        return vp_err(err, -EEXIST, "'%s/%s' exists and is not '%s'; refusing to replace it", label,
                                      d[i].at, d[i].now);
                }
                if (linkat(dfd, d[i].now, dfd, d[i].at, 0) < 0)
                        return vp_err(err, -errno, "cannot link '%s/%s' as '%s': %s", label, d[i].now, d[i].at,
                                      strerror(errno));
        }
        if (n && fsync(dfd) < 0)
                return vp_err(err, -errno, "fsync '%s': %s", label, strerror(errno));
        return 0;
}

int vp_delta_unlink_names(int dfd, const char *label, const struct vp_manifest *m, int64_t gen, struct vp_error *err)
{
        struct disk_pair d[3];
        size_t n = disk_pairs(m, gen, d);
        for (size_t i = 0; i < n; i++) {
                struct stat a, b;
                if (streq(d[i].now, d[i].at) || fstatat(dfd, d[i].at, &b, AT_SYMLINK_NOFOLLOW) < 0 ||
                    fstatat(dfd, d[i].now, &a, AT_SYMLINK_NOFOLLOW) < 0 || a.st_dev != b.st_dev ||
                    a.st_ino != b.st_ino)
                        continue;
                if (unlinkat(dfd, d[i].at, 0) < 0)
                        return vp_err(err, -errno, "cannot remove '%s/%s': %s", label, d[i].at, strerror(errno));
        }
        if (n && fsync(dfd) < 0)
                return vp_err(err, -errno, "fsync '%s': %s", label, strerror(errno));
        return 0;
}

/* Rename FROM to TO in the collection. Done before is done; a disk that
 * may be absent (BASE) and is, stays absent. Made durable by the manifest's
 * write, which syncs the same folder right after: a crash before that
 * leaves the names either way, and vp_delta_settle makes them what the
 * manifest says. */
static int rename_disk(int dfd, const char *label, const char *from, const char *to, const char *base,
                       struct vp_error *err)
{
        if (!from[0] || streq(from, to))
                return 0;
        /* Both names on one inode (a live move linked the new name ahead):
         * rename(2) would leave both; the old name goes. */
        struct stat sf, stt;
        if (fstatat(dfd, from, &sf, AT_SYMLINK_NOFOLLOW) == 0 && fstatat(dfd, to, &stt, AT_SYMLINK_NOFOLLOW) == 0 &&
            sf.st_dev == stt.st_dev && sf.st_ino == stt.st_ino) {
                if (unlinkat(dfd, from, 0) < 0)
                        return vp_err(err, -errno, "cannot remove '%s/%s': %s", label, from, strerror(errno));
        } else if (renameat(dfd, from, dfd, to) < 0) {
                struct stat st;
                if (errno != ENOENT)
                        return vp_err(err, -errno, "cannot rename '%s/%s': %s", label, from, strerror(errno));
                if (fstatat(dfd, to, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (may_be_absent(base))
                                return 0;
                        return vp_err(err, -ENOENT, "cannot rename '%s/%s': %s", label, from, strerror(ENOENT));
                }
        }
        vp_fault_point("migrate.renamed");
        return 0;
}

/* The manifest is the truth about the disks' names: a hand-over that died
 * (or ran out of space) after renaming but before the manifest took the new
 * names has its renames undone here, so what the manifest says exists. */
static int settle_disk(int dfd, const char *label, const char *name, const char *base, const char *ext,
                       struct vp_error *err)
{
        if (!name[0] || faccessat(dfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                return 0;
        char found[256];
        int n = other_candidates(dfd, label, name, base, ext, found, err);
        if (n < 0 || (n == 0 && may_be_absent(base)))
                return n < 0 ? n : 0;
        if (n != 1)
                return vp_err(err, -ENOENT, "delta '%s': disk '%s' is missing%s", label, name,
                              n > 1 ? " and several candidates exist" : "");
        if (renameat(dfd, found, dfd, name) < 0 || fsync(dfd) < 0)
                return vp_err(err, -errno, "cannot rename '%s/%s' back: %s", label, found, strerror(errno));
        return 0;
}

static int settle_disks(int dfd, const char *label, const struct vp_manifest *m, struct vp_error *err)
{
        int k;
        if ((k = settle_disk(dfd, label, m->overlay, "overlay", "qcow2", err)) < 0 ||
            (k = settle_disk(dfd, label, m->data_disk, "data", "qcow2", err)) < 0)
                return k;
        return settle_disk(dfd, label, m->nvram, "nvram", "fd", err);
}

int vp_delta_settle(int dfd, const char *label, struct vp_manifest *ret_m, struct vp_error *err)
{
        struct vp_manifest m;
        int k = vp_manifest_read(dfd, label, &m, err);
        if (k < 0 || (k = settle_disks(dfd, label, &m, err)) < 0)
                return k;
        /* A hand-over killed while writing the manifest may not be redone
         * (an abort hands back a delta whose manifest never changed): its
         * temp goes here. */
        vp_manifest_sweep_temps(dfd);
        *ret_m = m;
        return 0;
}

/* vp_delta_hand_over, and, unless RENAME, the disks keep their names. */
static int hand_over(int dfd, const char *label, const struct vp_manifest *settled, const char *from, const char *to,
                     int64_t after_gen, int64_t bump, bool rename, struct vp_manifest *ret_m, struct vp_error *err)
{
        struct vp_manifest m;
        int k = 0;
        if (settled)
                m = *settled;
        else if ((k = vp_delta_settle(dfd, label, &m, err)) < 0)
                return k;
        if (streq(m.owner, to) && m.generation > after_gen) {
                *ret_m = m;
                return 0;
        }
        if (!streq(m.owner, from))
                return vp_err(err, -EPERM, "delta '%s' is owned by '%s' at generation %lld, not by '%s'; refusing",
                              label, m.owner, (long long)m.generation, from);
        struct vp_manifest next = m;
        snprintf(next.owner, sizeof(next.owner), "%s", to);
        next.generation += bump;
        if (rename)
                vp_delta_names_at(&next, next.generation);
        /* The disks take names carrying the new generation: any definition
         * made for an older one (a stale host's domain) points at a file
         * that no longer exists and cannot start. Renames keep the inodes:
         * no byte moves. Files first, manifest last; a crash between is
         * redone, since a rename already made is recognised. */
        if ((k = rename_disk(dfd, label, m.overlay, next.overlay, "overlay", err)) < 0 ||
            (k = rename_disk(dfd, label, m.data_disk, next.data_disk, "data", err)) < 0 ||
            (k = rename_disk(dfd, label, m.nvram, next.nvram, "nvram", err)) < 0 ||
            (k = vp_manifest_write(dfd, &next, err)) < 0)
                return k;
        vp_fault_point(vp_owner_is_vm(to) ? "migrate.manifest-to-vm" : "migrate.manifest-to-migration");
        *ret_m = next;
        return 0;
}

int vp_delta_hand_over(int dfd, const char *label, const char *from, const char *to, int64_t after_gen,
                       int64_t bump, struct vp_manifest *ret_m, struct vp_error *err)
{
        return hand_over(dfd, label, NULL, from, to, after_gen, bump, true, ret_m, err);
}

int vp_delta_hand_over_settled(int dfd, const char *label, const struct vp_manifest *settled, const char *from,
                               const char *to, int64_t after_gen, int64_t bump, struct vp_manifest *ret_m,
                               struct vp_error *err)
{
        return hand_over(dfd, label, settled, from, to, after_gen, bump, true, ret_m, err);
}

int vp_delta_take_over(int dfd, const char *label, const char *from, const char *to, int64_t after_gen,
                       struct vp_manifest *ret_m, struct vp_error *err)
{
        return hand_over(dfd, label, NULL, from, to, after_gen, 1, false, ret_m, err);
}
