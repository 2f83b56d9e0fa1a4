/* The lease check against real files and real locks: a child process takes
 * the locks QEMU takes on an image it opens (open file description read
 * locks on single bytes past 100), and the check names the disk and the
 * child; once the child is gone the disks are free. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lease.h"

struct dir {
        char path[64];
        int fd;
        struct vp_manifest m;
};

static void touch(int dfd, const char *name)
{
        int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "x", 1), 1);
        close(fd);
}

static int setup(void **state)
{
        struct dir *d = calloc(1, sizeof(*d));
        snprintf(d->path, sizeof(d->path), "/tmp/vpool-lease.XXXXXX");
        assert_non_null(mkdtemp(d->path));
        d->fd = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(d->fd >= 0);
        strcpy(d->m.overlay, "overlay.g2.qcow2");
        strcpy(d->m.data_disk, "data.g2.qcow2");
        strcpy(d->m.nvram, "nvram.g2.fd");
        touch(d->fd, d->m.overlay);
        touch(d->fd, d->m.data_disk);
        touch(d->fd, d->m.nvram);
        *state = d;
        return 0;
}

static int teardown(void **state)
{
        struct dir *d = *state;
        unlinkat(d->fd, d->m.overlay, 0);
        unlinkat(d->fd, d->m.data_disk, 0);
        unlinkat(d->fd, d->m.nvram, 0);
        close(d->fd);
        rmdir(d->path);
        free(d);
        return 0;
}

/* A child that opens NAME and holds a read lock on byte OFFSET, as QEMU
 * does, until killed. Returns once the lock is taken. */
static pid_t hold(int dfd, const char *name, off_t offset, int lock_cmd)
{
        int ready[2];
        assert_int_equal(pipe(ready), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int fd = openat(dfd, name, O_RDWR);
                struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = offset, .l_len = 1 };
                if (fd < 0 || fcntl(fd, lock_cmd, &fl) < 0)
                        _exit(1);
                if (write(ready[1], "k", 1) != 1)
                        _exit(1);
                pause();
                _exit(0);
        }
        close(ready[1]);
        char c;
        assert_int_equal(read(ready[0], &c, 1), 1);
        close(ready[0]);
        return pid;
}

static void release(pid_t pid)
{
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
}

static void test_free_disks(void **state)
{
        struct dir *d = *state;
        struct vp_error err = { 0 };
        assert_int_equal(vp_lease_check(d->fd, d->path, &d->m, &err), 0);
}

static void test_held_overlay_names_disk_and_holder(void **state)
{
        struct dir *d = *state;
        pid_t pid = hold(d->fd, d->m.overlay, 100, F_OFD_SETLK);
        struct vp_error err = { 0 };
        assert_int_equal(vp_lease_check(d->fd, d->path, &d->m, &err), -EBUSY);
        char want[64];
        snprintf(want, sizeof(want), "pid %d (", (int)pid);
        assert_non_null(strstr(err.msg, "disk 'overlay.g2.qcow2'"));
        assert_non_null(strstr(err.msg, want));
        release(pid);
        assert_int_equal(vp_lease_check(d->fd, d->path, &d->m, &err), 0);
}

/* Locks follow the inode: a holder that opened the disk under its old
 * name still holds it once a hand-over renamed it. */
static void test_lock_follows_rename(void **state)
{
        struct dir *d = *state;
        pid_t pid = hold(d->fd, d->m.nvram, 203, F_OFD_SETLK);
        assert_int_equal(renameat(d->fd, d->m.nvram, d->fd, "nvram.g3.fd"), 0);
        strcpy(d->m.nvram, "nvram.g3.fd");
        struct vp_error err = { 0 };
        assert_int_equal(vp_lease_check(d->fd, d->path, &d->m, &err), -EBUSY);
        assert_non_null(strstr(err.msg, "disk 'nvram.g3.fd'"));
        release(pid);
}

/* Classic process-associated locks (libvirt's lockd takes those) count
 * as well. */
static void test_posix_lock_counts(void **state)
{
        struct dir *d = *state;
        pid_t pid = hold(d->fd, d->m.data_disk, 0, F_SETLK);
        struct vp_error err = { 0 };
        assert_int_equal(vp_lease_check(d->fd, d->path, &d->m, &err), -EBUSY);
        assert_non_null(strstr(err.msg, "disk 'data.g2.qcow2'"));
        release(pid);
        assert_int_equal(vp_lease_check(d->fd, d->path, &d->m, &err), 0);
}

/* An open file without a lock is no lease (a reader such as a backup). */
static void test_open_without_lock_is_free(void **state)
{
        struct dir *d = *state;
        int fd = openat(d->fd, d->m.overlay, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        struct vp_error err = { 0 };
        assert_int_equal(vp_lease_check(d->fd, d->path, &d->m, &err), 0);
        close(fd);
}

/* A disk the manifest does not name, or that does not exist, holds nothing. */
static void test_absent_disks(void **state)
{
        struct dir *d = *state;
        struct vp_manifest m = d->m;
        m.data_disk[0] = '\0';
        strcpy(m.nvram, "nvram.g9.fd");
        struct vp_error err = { 0 };
        assert_int_equal(vp_lease_check(d->fd, d->path, &m, &err), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_free_disks, setup, teardown),
                cmocka_unit_test_setup_teardown(test_held_overlay_names_disk_and_holder, setup, teardown),
                cmocka_unit_test_setup_teardown(test_lock_follows_rename, setup, teardown),
                cmocka_unit_test_setup_teardown(test_posix_lock_counts, setup, teardown),
                cmocka_unit_test_setup_teardown(test_open_without_lock_is_free, setup, teardown),
                cmocka_unit_test_setup_teardown(test_absent_disks, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
