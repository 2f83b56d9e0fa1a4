/* The hand-over of a user delta collection, against real files in a
 * temporary directory: the renames and the manifest, a redo, a crash
 * between them, settling, refusals, and a full file system. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "delta.h"
#include "fileio.h"

#define VM "vm:desk-001"
#define MIG "migration:5"

struct coll {
        char path[64];
        int fd;
        bool mounted;              /* a tmpfs of its own (test_enospc) */
};

static void put(int dfd, const char *name, const char *text)
{
        int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
}

static bool exists(int dfd, const char *name)
{
        return faccessat(dfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

/* The content of NAME, which must be short. */
static void assert_content(int dfd, const char *name, const char *text)
{
        char *buf = NULL;
        assert_int_equal(vp_read_file_at(dfd, name, 4096, &buf, NULL, NULL), 0);
        assert_string_equal(buf, text);
        free(buf);
}

static struct vp_manifest sample(void)
{
        struct vp_manifest m = { 0 };
        strcpy(m.pool, "desk");
        strcpy(m.vm, "desk-001");
        strcpy(m.owner, VM);
        m.generation = 1;
        strcpy(m.uuid, "5b7c3a52-8c1d-4f6e-9a0b-1c2d3e4f5a6b");
        strcpy(m.macs[0], "52:54:00:aa:bb:cc");
        m.nmacs = 1;
        strcpy(m.hostname, "desk-001");
        strcpy(m.master, "/srv/vpool/images/g.qcow2");
        strcpy(m.master_format, "qcow2");
        strcpy(m.overlay, "overlay.qcow2");
        strcpy(m.data_disk, "data.qcow2");
        strcpy(m.nvram, "nvram.fd");
        return m;
}

/* A collection as vp_delta_create leaves it, for a UEFI VM with a data
 * disk; each disk holds its own name, to tell them apart after renames. */
static void populate(int dfd)
{
        struct vp_manifest m = sample();
        assert_int_equal(vp_manifest_write(dfd, &m, NULL), 0);
        put(dfd, "overlay.qcow2", "overlay");
        put(dfd, "data.qcow2", "data");
        put(dfd, "nvram.fd", "nvram");
}

static void remove_all(int dfd)
{
        DIR *d = fdopendir(dup(dfd));
        struct dirent *de;
        assert_non_null(d);
        rewinddir(d);
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
}

static int setup_dir(struct coll *c)
{
        strcpy(c->path, "/tmp/vp-test-delta-XXXXXX");
        if (!mkdtemp(c->path))
                return -1;
        c->fd = open(c->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return c->fd < 0 ? -1 : 0;
}

static int setup(void **state)
{
        struct coll *c = calloc(1, sizeof(*c));
        if (!c || setup_dir(c) < 0)
                return -1;
        populate(c->fd);
        *state = c;
        return 0;
}

static int teardown(void **state)
{
        struct coll *c = *state;
        remove_all(c->fd);
        close(c->fd);
        if (c->mounted)
                umount2(c->path, MNT_DETACH);
        rmdir(c->path);
        free(c);
        return 0;
}

static struct vp_manifest read_back(const struct coll *c)
{
        struct vp_manifest m;
        struct vp_error err = { 0 };
        int k = vp_manifest_read(c->fd, c->path, &m, &err);
        if (k < 0)
                fail_msg("%s", err.msg);
        return m;
}

static void assert_disks(const struct coll *c, const char *overlay, const char *data, const char *nvram)
{
        assert_content(c->fd, overlay, "overlay");
        assert_content(c->fd, data, "data");
        assert_content(c->fd, nvram, "nvram");
}

/* Names ending in .tmp.XXXXXX left by an interrupted durable write. */
static int count_temp_files(int dfd)
{
        DIR *d = fdopendir(dup(dfd));
        struct dirent *de;
        int n = 0;
        assert_non_null(d);
        rewinddir(d);
        while ((de = readdir(d)))
                if (strstr(de->d_name, ".tmp."))
                        n++;
        closedir(d);
        return n;
}

static void test_handed_manifest(void **state)
{
        (void)state;
        struct vp_manifest m = sample();
        vp_delta_handed_manifest(&m, MIG, 1);
        assert_string_equal(m.owner, MIG);
        assert_int_equal(m.generation, 2);
        assert_string_equal(m.overlay, "overlay.g2.qcow2");
        assert_string_equal(m.data_disk, "data.g2.qcow2");
        assert_string_equal(m.nvram, "nvram.g2.fd");

        /* Disks a VM does not have stay absent. */
        m = sample();
        m.data_disk[0] = m.nvram[0] = '\0';
        vp_delta_handed_manifest(&m, VM, 2);
        assert_int_equal(m.generation, 3);
        assert_string_equal(m.overlay, "overlay.g3.qcow2");
        assert_string_equal(m.data_disk, "");
        assert_string_equal(m.nvram, "");
}

static void test_hand_over_renames(void **state)
{
        struct coll *c = *state;
        struct vp_error err = { 0 };
        struct vp_manifest m;
        struct stat before, after;

        assert_int_equal(fstatat(c->fd, "overlay.qcow2", &before, 0), 0);
        assert_int_equal(vp_delta_hand_over(c->fd, c->path, VM, MIG, 1, 1, &m, &err), 0);
        assert_string_equal(m.owner, MIG);
        assert_int_equal(m.generation, 2);
        assert_string_equal(m.overlay, "overlay.g2.qcow2");
        assert_disks(c, "overlay.g2.qcow2", "data.g2.qcow2", "nvram.g2.fd");
        assert_false(exists(c->fd, "overlay.qcow2"));
        assert_false(exists(c->fd, "data.qcow2"));
        assert_false(exists(c->fd, "nvram.fd"));
        /* A rename: the same inode, no byte copied. */
        assert_int_equal(fstatat(c->fd, "overlay.g2.qcow2", &after, 0), 0);
        assert_int_equal(before.st_ino, after.st_ino);

        struct vp_manifest back = read_back(c);
        assert_memory_equal(&back, &m, sizeof(m));

        /* And on to the VM again, one generation later. */
        assert_int_equal(vp_delta_hand_over(c->fd, c->path, MIG, VM, 2, 1, &m, &err), 0);
        assert_string_equal(m.owner, VM);
        assert_int_equal(m.generation, 3);
        assert_disks(c, "overlay.g3.qcow2", "data.g3.qcow2", "nvram.g3.fd");
        assert_false(exists(c->fd, "overlay.g2.qcow2"));
        back = read_back(c);
        assert_memory_equal(&back, &m, sizeof(m));
        assert_int_equal(count_temp_files(c->fd), 0);
}

static void test_hand_over_redo(void **state)
{
        struct coll *c = *state;
        struct vp_error err = { 0 };
        struct vp_manifest m, again;

        assert_int_equal(vp_delta_hand_over(c->fd, c->path, VM, MIG, 1, 1, &m, &err), 0);
        /* The same hand-over again (a resume after it was recorded on
         * storage but not in the catalog): nothing changes. */
        assert_int_equal(vp_delta_hand_over(c->fd, c->path, VM, MIG, 1, 1, &again, &err), 0);
        assert_memory_equal(&again, &m, sizeof(m));
        assert_int_equal(read_back(c).generation, 2);
        assert_disks(c, "overlay.g2.qcow2", "data.g2.qcow2", "nvram.g2.fd");
}

/* Run the hand-over VM → MIG in a child killed at fault point POINT. */
static void hand_over_killed_at(const struct coll *c, const char *point)
{
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct vp_manifest m;
                setenv("VPOOL_FAULT", point, 1);
                vp_delta_hand_over(c->fd, c->path, VM, MIG, 1, 1, &m, NULL);
                _exit(0);   /* not reached when the point kills */
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGKILL);
}

static void test_crash_between_rename_and_manifest(void **state)
{
        struct coll *c = *state;
        static const char *const points[] = { "migrate.renamed:1", "migrate.renamed:2", "migrate.renamed:3" };

        for (size_t i = 0; i < ELEMENTSOF(points); i++) {
                struct vp_error err = { 0 };
                struct vp_manifest m;

                remove_all(c->fd);
                populate(c->fd);
                hand_over_killed_at(c, points[i]);
                /* Killed after its I+1 renames: the manifest still names
                 * the old disks, the first of them is gone. */
                m = read_back(c);
                assert_string_equal(m.owner, VM);
                assert_int_equal(m.generation, 1);
                assert_false(exists(c->fd, "overlay.qcow2"));
                assert_true(exists(c->fd, "overlay.g2.qcow2"));

                /* Settled: every disk the manifest names exists again. */
                assert_int_equal(vp_delta_settle(c->fd, c->path, &m, &err), 0);
                assert_int_equal(m.generation, 1);
                assert_disks(c, m.overlay, m.data_disk, m.nvram);
                assert_false(exists(c->fd, "overlay.g2.qcow2"));

                /* And the hand-over done again completes. */
                assert_int_equal(vp_delta_hand_over(c->fd, c->path, VM, MIG, 1, 1, &m, &err), 0);
                assert_int_equal(m.generation, 2);
                assert_disks(c, "overlay.g2.qcow2", "data.g2.qcow2", "nvram.g2.fd");
        }
}

static void test_crash_after_manifest(void **state)
{
        struct coll *c = *state;
        struct vp_error err = { 0 };
        struct vp_manifest m;

        hand_over_killed_at(c, "migrate.manifest-to-migration:1");
        assert_int_equal(read_back(c).generation, 2);
        /* The redo recognises a hand-over already made. */
        assert_int_equal(vp_delta_hand_over(c->fd, c->path, VM, MIG, 1, 1, &m, &err), 0);
        assert_string_equal(m.owner, MIG);
        assert_int_equal(m.generation, 2);
        assert_disks(c, "overlay.g2.qcow2", "data.g2.qcow2", "nvram.g2.fd");
}

static void test_settle_two_candidates_refused(void **state)
{
        struct coll *c = *state;
        struct vp_error err = { 0 };
        struct vp_manifest m;

        assert_int_equal(renameat(c->fd, "overlay.qcow2", c->fd, "overlay.g2.qcow2"), 0);
        put(c->fd, "overlay.g3.qcow2", "other");
        assert_int_equal(vp_delta_settle(c->fd, c->path, &m, &err), -ENOENT);
        assert_non_null(strstr(err.msg, "disk 'overlay.qcow2' is missing and several candidates exist"));
        /* Neither candidate was taken; the hand-over is refused the same way. */
        assert_false(exists(c->fd, "overlay.qcow2"));
        assert_content(c->fd, "overlay.g2.qcow2", "overlay");
        assert_content(c->fd, "overlay.g3.qcow2", "other");
        assert_int_equal(vp_delta_hand_over(c->fd, c->path, VM, MIG, 1, 1, &m, &err), -ENOENT);
        assert_int_equal(read_back(c).generation, 1);

        /* No candidate at all: missing, said as such. */
        unlinkat(c->fd, "overlay.g2.qcow2", 0);
        unlinkat(c->fd, "overlay.g3.qcow2", 0);
        assert_int_equal(vp_delta_settle(c->fd, c->path, &m, &err), -ENOENT);
        assert_non_null(strstr(err.msg, "disk 'overlay.qcow2' is missing"));
        assert_null(strstr(err.msg, "candidates"));
}

static void test_stale_owner_refused(void **state)
{
        struct coll *c = *state;
        struct vp_error err = { 0 };
        struct vp_manifest m;

        /* Migration 5 took it and gave it back; then migration 7 took it. */
        assert_int_equal(vp_delta_hand_over(c->fd, c->path, VM, MIG, 1, 1, &m, &err), 0);
        assert_int_equal(vp_delta_hand_over(c->fd, c->path, MIG, VM, 2, 1, &m, &err), 0);
        assert_int_equal(vp_delta_hand_over(c->fd, c->path, VM, "migration:7", 3, 1, &m, &err), 0);
        assert_int_equal(m.generation, 4);

        /* Migration 5, stale, cannot hand it to the VM, */
        assert_int_equal(vp_delta_hand_over(c->fd, c->path, MIG, VM, 2, 1, &m, &err), -EPERM);
        assert_non_null(strstr(err.msg, "is owned by 'migration:7' at generation 4, not by 'migration:5'"));
        /* nor can the VM, which no longer holds it. */
        assert_int_equal(vp_delta_hand_over(c->fd, c->path, VM, MIG, 3, 1, &m, &err), -EPERM);
        m = read_back(c);
        assert_string_equal(m.owner, "migration:7");
        assert_int_equal(m.generation, 4);
        assert_disks(c, "overlay.g4.qcow2", "data.g4.qcow2", "nvram.g4.fd");
}

/* A mount namespace of this process's own, where the tmpfs of
 * test_enospc_keeps_manifest hides nothing of the machine's. NULL, or why
 * there cannot be one. */
static const char *private_mounts(void)
{
        static char why[160];
        if (geteuid() != 0)
                return "needs root to mount a tmpfs in a private mount namespace";
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
                snprintf(why, sizeof(why), "cannot make a private mount namespace: %s", strerror(errno));
                return why;
        }
        return NULL;
}

/* Mount a tmpfs of SIZE over C's directory. */
static void mount_small_tmpfs(struct coll *c, const char *size)
{
        remove_all(c->fd);
        if (mount("tmpfs", c->path, "tmpfs", MS_NOSUID | MS_NODEV, size) < 0)
                fail_msg("cannot mount a tmpfs on '%s': %s", c->path, strerror(errno));
        c->mounted = true;
        close(c->fd);
        c->fd = open(c->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(c->fd >= 0);
}

/* Write to NAME until the file system is full. */
static void fill(int dfd, const char *name)
{
        static char block[4096];
        int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        ssize_t w;
        while ((w = write(fd, block, sizeof(block))) > 0)
                ;
        assert_int_equal(errno, ENOSPC);
        /* Whatever fits of a smaller write, too: not a byte is left. */
        while (write(fd, block, 1) > 0)
                ;
        close(fd);
}

static void test_enospc_keeps_manifest(void **state)
{
        struct coll *c = *state;
        struct vp_error err = { 0 };
        struct vp_manifest m;

        mount_small_tmpfs(c, "size=256k");
        populate(c->fd);
        struct vp_manifest before = read_back(c);
        fill(c->fd, "filler");

        assert_int_equal(vp_delta_hand_over(c->fd, c->path, VM, MIG, 1, 1, &m, &err), -ENOSPC);
        /* The manifest is the one before, whole, and no temp file is left. */
        struct vp_manifest after = read_back(c);
        assert_memory_equal(&after, &before, sizeof(before));
        assert_int_equal(count_temp_files(c->fd), 0);

        /* Settled, the disks carry the names that manifest gives them. */
        assert_int_equal(vp_delta_settle(c->fd, c->path, &m, &err), 0);
        assert_disks(c, "overlay.qcow2", "data.qcow2", "nvram.fd");
        assert_false(exists(c->fd, "overlay.g2.qcow2"));
        assert_false(exists(c->fd, "data.g2.qcow2"));
        assert_false(exists(c->fd, "nvram.g2.fd"));

        /* With room again, the hand-over goes through. */
        assert_int_equal(unlinkat(c->fd, "filler", 0), 0);
        assert_int_equal(vp_delta_hand_over(c->fd, c->path, VM, MIG, 1, 1, &m, &err), 0);
        assert_int_equal(read_back(c).generation, 2);
        assert_disks(c, "overlay.g2.qcow2", "data.g2.qcow2", "nvram.g2.fd");
}

/* With "enospc", the case that needs a file system of its own: exit 77
 * (a skip, saying why) where it cannot have one. Meson's TAP reading counts
 * cmocka's skip as a failure, hence a test program run of its own. */
int main(int argc, char **argv)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_handed_manifest),
                cmocka_unit_test_setup_teardown(test_hand_over_renames, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hand_over_redo, setup, teardown),
                cmocka_unit_test_setup_teardown(test_crash_between_rename_and_manifest, setup, teardown),
                cmocka_unit_test_setup_teardown(test_crash_after_manifest, setup, teardown),
                cmocka_unit_test_setup_teardown(test_settle_two_candidates_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stale_owner_refused, setup, teardown),
        };
        const struct CMUnitTest enospc_tests[] = {
                cmocka_unit_test_setup_teardown(test_enospc_keeps_manifest, setup, teardown),
        };
        if (argc < 2 || !streq(argv[1], "enospc"))
                return cmocka_run_group_tests(tests, NULL, NULL);
        const char *why = private_mounts();
        if (why) {
                printf("1..0 # SKIP test_enospc_keeps_manifest %s\n", why);
                return 77;
        }
        return cmocka_run_group_tests(enospc_tests, NULL, NULL);
}
