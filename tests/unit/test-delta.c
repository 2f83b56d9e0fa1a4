/* The hand-over of a user delta collection, against real files in a
 * storage root in a temporary directory: the renames and the manifest, a
 * redo, a crash between them, settling, refusals, and a full file system. */
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

/* A storage root in a temporary directory with one collection,
 * deltas/desk/desk-001, open as FD. */
struct coll {
        char root[64];
        struct vp_storage st;
        char path[128];            /* the collection, as errors name it */
        int fd;
        bool mounted;              /* a tmpfs of its own (test_enospc_keeps_manifest) */
};

/* manifest.json as vp_delta_create leaves it for a UEFI VM with a data disk. */
static const char manifest_json[] =
        "{ \"version\": 1, \"pool\": \"desk\", \"vm\": \"desk-001\", \"owner\": \"vm:desk-001\", \"generation\": 1,\n"
        "  \"identity\": { \"uuid\": \"5b7c3a52-8c1d-4f6e-9a0b-1c2d3e4f5a6b\", \"macs\": [ \"52:54:00:aa:bb:cc\" ],\n"
        "                \"hostname\": \"desk-001\" },\n"
        "  \"master\": \"/srv/vpool/images/g.qcow2\", \"master_format\": \"qcow2\",\n"
        "  \"overlay\": \"overlay.qcow2\", \"data_disk\": \"data.qcow2\", \"nvram\": \"nvram.fd\" }\n";

static void put(int dfd, const char *name, const char *text)
{
        struct vp_error err = { 0 };
        if (vp_write_file_atomic(dfd, name, text, strlen(text), 0644, &err) < 0)
                fail_msg("%s", err.msg);
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
        struct vp_manifest m;
        struct vp_error err = { 0 };
        if (vp_manifest_parse(manifest_json, "sample", &m, &err) < 0)
                fail_msg("%s", err.msg);
        return m;
}

/* The collection's files; each disk holds its own name, to tell them
 * apart after renames. */
static void populate(int dfd)
{
        put(dfd, VP_MANIFEST_NAME, manifest_json);
        put(dfd, "overlay.qcow2", "overlay");
        put(dfd, "data.qcow2", "data");
        put(dfd, "nvram.fd", "nvram");
}

static void open_collection(struct coll *c)
{
        struct vp_error err = { 0 };
        if (vp_delta_open(&c->st, "desk", "desk-001", &c->fd, &err) < 0)
                fail_msg("%s", err.msg);
}

static void make_collection(struct coll *c)
{
        _cleanup_free_ char *pool = vp_strdupf("%s/deltas/desk", c->root);
        assert_true(mkdir(pool, 0755) == 0 || errno == EEXIST);
        assert_int_equal(mkdir(c->path, 0755), 0);
        open_collection(c);
        populate(c->fd);
}

/* A collection as it was before the test touched it. */
static void remake_collection(struct coll *c)
{
        close(c->fd);
        assert_int_equal(vp_delta_remove(&c->st, "desk", "desk-001", NULL), 0);
        make_collection(c);
}

/* An empty storage root in a new temporary directory. */
static int make_storage(struct coll *c)
{
        strcpy(c->root, "/tmp/vp-test-delta-XXXXXX");
        if (!mkdtemp(c->root))
                return -errno;
        snprintf(c->path, sizeof(c->path), "%s/deltas/desk/desk-001", c->root);
        int k = vp_storage_init(c->root, NULL);
        return k < 0 ? k : vp_storage_open(c->root, &c->st, NULL);
}

static int setup(void **state)
{
        struct coll *c = calloc(1, sizeof(*c));
        if (!c || make_storage(c) < 0)
                return -1;
        make_collection(c);
        *state = c;
        return 0;
}

static int teardown(void **state)
{
        static const char *const layout[] = { "images", "deltas", "logs", "" };
        struct coll *c = *state;
        close(c->fd);
        if (c->mounted)
                umount2(c->path, MNT_DETACH);
        vp_delta_remove(&c->st, "desk", "desk-001", NULL);
        vp_storage_close(&c->st);
        for (size_t i = 0; i < ELEMENTSOF(layout); i++) {
                _cleanup_free_ char *dir = vp_strdupf("%s/%s", c->root, layout[i]);
                rmdir(dir);
        }
        free(c);
        return 0;
}

static struct vp_manifest read_back(const struct coll *c)
{
        struct vp_manifest m;
        struct vp_error err = { 0 };
        if (vp_manifest_read(c->fd, c->path, &m, &err) < 0)
                fail_msg("%s", err.msg);
        return m;
}

static void assert_disks(const struct coll *c, const char *overlay, const char *data, const char *nvram)
{
        assert_content(c->fd, overlay, "overlay");
        assert_content(c->fd, data, "data");
        assert_content(c->fd, nvram, "nvram");
}

/* The collection holds NAMES and nothing else (no temp file of a durable
 * write, no disk under a second name) but the manifest's spare, which a
 * hand-over leaves by design. */
static void assert_entries(const struct coll *c, const char *const *names, size_t n)
{
        struct dirent **list;
        int found = scandirat(c->fd, ".", &list, NULL, alphasort);
        assert_true(found >= 0);
        size_t files = 0;
        for (int i = 0; i < found; i++) {
                const char *name = list[i]->d_name;
                if (!streq(name, ".") && !streq(name, "..") && !streq(name, VP_MANIFEST_SPARE)) {
                        size_t j = 0;
                        while (j < n && !streq(name, names[j]))
                                j++;
                        if (j == n)
                                fail_msg("unexpected '%s' in the collection", name);
                        files++;
                }
                free(list[i]);
        }
        free(list);
        assert_int_equal(files, n);
}

/* Hand the collection from the VM to migration 5 at generation 1, and see
 * it done: owner, generation and disk names of generation 2. */
static void assert_hands_to_migration(const struct coll *c)
{
        struct vp_error err = { 0 };
        struct vp_manifest m;
        if (vp_delta_hand_over(c->fd, c->path, VM, MIG, 1, 1, &m, &err) < 0)
                fail_msg("%s", err.msg);
        assert_string_equal(m.owner, MIG);
        assert_int_equal(m.generation, 2);
        struct vp_manifest back = read_back(c);
        assert_memory_equal(&back, &m, sizeof(m));
        assert_disks(c, "overlay.g2.qcow2", "data.g2.qcow2", "nvram.g2.fd");
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
        static const char *const after[] = { VP_MANIFEST_NAME, "overlay.g3.qcow2", "data.g3.qcow2", "nvram.g3.fd" };
        struct coll *c = *state;
        struct vp_error err = { 0 };
        struct vp_manifest m;
        struct stat before, now;

        assert_int_equal(fstatat(c->fd, "overlay.qcow2", &before, 0), 0);
        assert_hands_to_migration(c);
        assert_false(exists(c->fd, "overlay.qcow2"));
        /* A rename: the same inode, no byte copied. */
        assert_int_equal(fstatat(c->fd, "overlay.g2.qcow2", &now, 0), 0);
        assert_int_equal(before.st_ino, now.st_ino);

        /* And on to the VM again, one generation later. */
        assert_int_equal(vp_delta_hand_over(c->fd, c->path, MIG, VM, 2, 1, &m, &err), 0);
        assert_string_equal(m.owner, VM);
        assert_int_equal(m.generation, 3);
        assert_string_equal(m.overlay, "overlay.g3.qcow2");
        struct vp_manifest back = read_back(c);
        assert_memory_equal(&back, &m, sizeof(m));
        assert_disks(c, "overlay.g3.qcow2", "data.g3.qcow2", "nvram.g3.fd");
        assert_entries(c, after, ELEMENTSOF(after));
}

static void test_hand_over_redo(void **state)
{
        struct coll *c = *state;

        assert_hands_to_migration(c);
        /* The same hand-over again (a resume after it was made on storage
         * but before the catalog recorded it): nothing changes. */
        assert_hands_to_migration(c);
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

                if (i > 0)
                        remake_collection(c);
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
                assert_hands_to_migration(c);
        }
}

/* Killed while writing the manifest: every disk renamed, a temp of the new
 * manifest left. An abort hands back a delta whose manifest never changed
 * and so writes none; its settle alone must leave the collection as it was. */
static void test_killed_manifest_write_settled(void **state)
{
        struct coll *c = *state;
        struct vp_error err = { 0 };
        struct vp_manifest m;
        static const char *const before[] = { "manifest.json", "overlay.qcow2", "data.qcow2", "nvram.fd" };

        hand_over_killed_at(c, "migrate.renamed:3");
        put(c->fd, "manifest.json.tmp.4242", "{\"pool\":");
        assert_int_equal(vp_delta_settle(c->fd, c->path, &m, &err), 0);
        assert_string_equal(m.owner, VM);
        assert_int_equal(m.generation, 1);
        assert_entries(c, before, ELEMENTSOF(before));
        assert_disks(c, m.overlay, m.data_disk, m.nvram);
}

static void test_crash_after_manifest(void **state)
{
        struct coll *c = *state;

        hand_over_killed_at(c, "migrate.manifest-to-migration:1");
        assert_int_equal(read_back(c).generation, 2);
        /* The redo recognises a hand-over already made. */
        assert_hands_to_migration(c);
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

/* A UEFI VM that never booted has no variable store yet (libvirt makes it
 * at the first start): the hand-overs go through, the manifest names the
 * store of each new generation, and none appears. */
static void test_absent_nvram_handed_over(void **state)
{
        static const char *const after[] = { VP_MANIFEST_NAME, "overlay.g3.qcow2", "data.g3.qcow2" };
        struct coll *c = *state;
        struct vp_error err = { 0 };
        struct vp_manifest m;

        assert_int_equal(unlinkat(c->fd, "nvram.fd", 0), 0);
        assert_int_equal(vp_delta_settle(c->fd, c->path, &m, &err), 0);
        assert_int_equal(vp_delta_hand_over(c->fd, c->path, VM, MIG, 1, 1, &m, &err), 0);
        assert_string_equal(m.nvram, "nvram.g2.fd");
        assert_int_equal(vp_delta_hand_over(c->fd, c->path, MIG, VM, 2, 1, &m, &err), 0);
        assert_string_equal(m.owner, VM);
        assert_int_equal(m.generation, 3);
        assert_string_equal(read_back(c).nvram, "nvram.g3.fd");
        assert_entries(c, after, ELEMENTSOF(after));

        /* Killed after the renames of the next hand-over: settled back,
         * the store still absent. */
        assert_int_equal(vp_delta_hand_over(c->fd, c->path, VM, MIG, 3, 1, &m, &err), 0);
        assert_int_equal(renameat(c->fd, "overlay.g4.qcow2", c->fd, "overlay.g5.qcow2"), 0);
        assert_int_equal(vp_delta_settle(c->fd, c->path, &m, &err), 0);
        assert_true(exists(c->fd, "overlay.g4.qcow2"));
        assert_false(exists(c->fd, "nvram.g4.fd"));
}

/* The overlay and data disk may never be absent: a hand-over is refused
 * rather than record a disk that is gone. */
static void test_absent_overlay_refused(void **state)
{
        struct coll *c = *state;
        struct vp_error err = { 0 };
        struct vp_manifest m;

        assert_int_equal(unlinkat(c->fd, "data.qcow2", 0), 0);
        assert_int_equal(vp_delta_hand_over(c->fd, c->path, VM, MIG, 1, 1, &m, &err), -ENOENT);
        assert_non_null(strstr(err.msg, "disk 'data.qcow2' is missing"));
        assert_int_equal(read_back(c).generation, 1);
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

/* The collection again, on a tmpfs of SIZE of its own. */
static void remake_on_small_tmpfs(struct coll *c, const char *size)
{
        close(c->fd);
        if (mount("tmpfs", c->path, "tmpfs", MS_NOSUID | MS_NODEV, size) < 0)
                fail_msg("cannot mount a tmpfs on '%s': %s", c->path, strerror(errno));
        c->mounted = true;
        open_collection(c);
        populate(c->fd);
}

/* Write to NAME until the file system is full. */
static void fill(int dfd, const char *name)
{
        static char block[4096];
        int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        while (write(fd, block, sizeof(block)) > 0)
                ;
        assert_int_equal(errno, ENOSPC);
        /* Whatever fits of a smaller write, too: not a byte is left. */
        while (write(fd, block, 1) > 0)
                ;
        close(fd);
}

static void test_enospc_keeps_manifest(void **state)
{
        static const char *const before_names[] = { VP_MANIFEST_NAME, "overlay.qcow2", "data.qcow2", "nvram.fd",
                                                    "filler" };
        struct coll *c = *state;
        struct vp_error err = { 0 };
        struct vp_manifest m;

        remake_on_small_tmpfs(c, "size=256k");
        struct vp_manifest before = read_back(c);
        fill(c->fd, "filler");

        assert_int_equal(vp_delta_hand_over(c->fd, c->path, VM, MIG, 1, 1, &m, &err), -ENOSPC);
        /* The manifest is the one before, whole. */
        struct vp_manifest after = read_back(c);
        assert_memory_equal(&after, &before, sizeof(before));

        /* Settled, the disks carry the names that manifest gives them, and
         * the failed write left no temp file. */
        assert_int_equal(vp_delta_settle(c->fd, c->path, &m, &err), 0);
        assert_disks(c, "overlay.qcow2", "data.qcow2", "nvram.fd");
        assert_entries(c, before_names, ELEMENTSOF(before_names));

        /* With room again, the hand-over goes through. */
        assert_int_equal(unlinkat(c->fd, "filler", 0), 0);
        assert_hands_to_migration(c);
}

/* A collection's directory carries its VM's UUID, so two incarnations of
 * a VM name never share a path; a directory of a collection made before
 * UUIDs were in the name still parses, as the VM's name alone. */

/* Whether NAME and OTHER are one file (two names of one inode). */
static bool same_file(int dfd, const char *name, const char *other)
{
        struct stat a, b;
        return fstatat(dfd, name, &a, AT_SYMLINK_NOFOLLOW) == 0 && fstatat(dfd, other, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
               a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

/* A live move's lock takes the delta over without renaming a disk (QEMU
 * reopens them by their names as the move ends); the names linked ahead
 * for the target are the unlock's, and the unlock leaves only them. */
static void test_live_take_over_and_unlock(void **state)
{
        struct coll *c = *state;
        struct vp_error err = { 0 };
        struct vp_manifest m;
        assert_int_equal(vp_delta_take_over(c->fd, c->path, VM, MIG, 1, &m, &err), 0);
        assert_string_equal(m.owner, MIG);
        assert_int_equal(m.generation, 2);
        assert_string_equal(m.overlay, "overlay.qcow2");
        assert_true(exists(c->fd, "overlay.qcow2") && exists(c->fd, "data.qcow2") && exists(c->fd, "nvram.fd"));
        assert_int_equal(vp_delta_link_names(c->fd, c->path, &m, 3, &err), 0);
        assert_true(same_file(c->fd, "overlay.qcow2", "overlay.g3.qcow2"));
        assert_true(same_file(c->fd, "data.qcow2", "data.g3.qcow2"));
        assert_true(same_file(c->fd, "nvram.fd", "nvram.g3.fd"));
        /* Linking again is done already. */
        assert_int_equal(vp_delta_link_names(c->fd, c->path, &m, 3, &err), 0);
        assert_int_equal(vp_delta_hand_over(c->fd, c->path, MIG, VM, 2, 1, &m, &err), 0);
        assert_int_equal(m.generation, 3);
        assert_string_equal(m.overlay, "overlay.g3.qcow2");
        assert_false(exists(c->fd, "overlay.qcow2") || exists(c->fd, "data.qcow2") || exists(c->fd, "nvram.fd"));
        assert_content(c->fd, "overlay.g3.qcow2", "overlay");
        assert_content(c->fd, "data.g3.qcow2", "data");
}

/* A live move that did not happen takes its names back: only second names
 * of the delta's own disks go; a file of that name that is another file
 * is refused when linking and left alone when unlinking. */
static void test_live_links_undone(void **state)
{
        struct coll *c = *state;
        struct vp_error err = { 0 };
        struct vp_manifest m;
        assert_int_equal(vp_delta_take_over(c->fd, c->path, VM, MIG, 1, &m, &err), 0);
        put(c->fd, "data.g3.qcow2", "someone else's");
        assert_int_equal(vp_delta_link_names(c->fd, c->path, &m, 3, &err), -EEXIST);
        assert_non_null(strstr(err.msg, "data.g3.qcow2"));
        assert_int_equal(vp_delta_unlink_names(c->fd, c->path, &m, 3, &err), 0);
        assert_false(exists(c->fd, "overlay.g3.qcow2"));
        assert_content(c->fd, "data.g3.qcow2", "someone else's");
        assert_true(exists(c->fd, "overlay.qcow2") && exists(c->fd, "data.qcow2"));
}

static void test_dir_names(void **state)
{
        (void)state;
        static const char u1[] = "5b7c3a52-8c1d-4f6e-9a0b-1c2d3e4f5a6b", u2[] = "0a7c3a52-8c1d-4f6e-9a0b-1c2d3e4f5a6b";
        struct vp_storage st = { .root = (char *)"/srv/vpool" };
        _cleanup_free_ char *p1 = vp_delta_path(&st, "desk", "desk-001", u1);
        _cleanup_free_ char *p2 = vp_delta_path(&st, "desk", "desk-001", u2);
        assert_string_equal(p1, "/srv/vpool/deltas/desk/desk-001.5b7c3a52-8c1d-4f6e-9a0b-1c2d3e4f5a6b");
        assert_string_not_equal(p1, p2);
        assert_string_equal(vp_delta_dir_of(p1), "desk-001.5b7c3a52-8c1d-4f6e-9a0b-1c2d3e4f5a6b");

        char vm[VP_NAME_MAX + 1], uuid[37];
        assert_int_equal(vp_delta_dir_parse(vp_delta_dir_of(p1), vm, uuid), 0);
        assert_string_equal(vm, "desk-001");
        assert_string_equal(uuid, u1);
        assert_int_equal(vp_delta_dir_parse("desk-001", vm, uuid), 0);
        assert_string_equal(vm, "desk-001");
        assert_string_equal(uuid, "");
        /* Not a UUID after the dot: a name like any other. */
        assert_int_equal(vp_delta_dir_parse("desk.1.0", vm, uuid), 0);
        assert_string_equal(vm, "desk.1.0");
        assert_string_equal(uuid, "");
        static const char *const bad[] = { "..", ".hidden", "a/b", ".5b7c3a52-8c1d-4f6e-9a0b-1c2d3e4f5a6b",
                                           "-x.5b7c3a52-8c1d-4f6e-9a0b-1c2d3e4f5a6b", "" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(vp_delta_dir_parse(bad[i], vm, uuid), -EINVAL);
}

/* With "enospc", the case that needs a file system of its own: exit 77
 * (a skip, saying why) where it cannot have one. Meson's TAP reading counts
 * cmocka's skip as a failure, hence a test program run of its own. */
int main(int argc, char **argv)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_handed_manifest),
                cmocka_unit_test(test_dir_names),
                cmocka_unit_test_setup_teardown(test_hand_over_renames, setup, teardown),
                cmocka_unit_test_setup_teardown(test_live_take_over_and_unlock, setup, teardown),
                cmocka_unit_test_setup_teardown(test_live_links_undone, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hand_over_redo, setup, teardown),
                cmocka_unit_test_setup_teardown(test_crash_between_rename_and_manifest, setup, teardown),
                cmocka_unit_test_setup_teardown(test_killed_manifest_write_settled, setup, teardown),
                cmocka_unit_test_setup_teardown(test_crash_after_manifest, setup, teardown),
                cmocka_unit_test_setup_teardown(test_settle_two_candidates_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stale_owner_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_absent_nvram_handed_over, setup, teardown),
                cmocka_unit_test_setup_teardown(test_absent_overlay_refused, setup, teardown),
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
