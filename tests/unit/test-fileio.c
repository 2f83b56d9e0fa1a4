#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fileio.h"

struct dir {
        char path[64];
        int fd;
};

static void remove_tree_at(int dfd)
{
        DIR *d = fdopendir(dfd);
        struct dirent *de;

        assert_non_null(d);
        /* DFD may be a dup sharing its offset with a descriptor already read. */
        rewinddir(d);
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (unlinkat(dirfd(d), de->d_name, 0) == 0)
                        continue;
                int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub >= 0) {
                        remove_tree_at(sub);
                        unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
                }
        }
        closedir(d);
}

static int setup(void **state)
{
        struct dir *d = calloc(1, sizeof(*d));

        if (!d)
                return -1;
        strcpy(d->path, "/tmp/vp-test-fileio-XXXXXX");
        if (!mkdtemp(d->path))
                return -1;
        d->fd = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (d->fd < 0)
                return -1;
        *state = d;
        return 0;
}

static int teardown(void **state)
{
        struct dir *d = *state;

        remove_tree_at(dup(d->fd));
        close(d->fd);
        rmdir(d->path);
        free(d);
        return 0;
}

/* Number of entries in the directory whose name contains ".tmp.". */
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

static void put(int dfd, const char *name, const char *content)
{
        int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, content, strlen(content)), (ssize_t) strlen(content));
        close(fd);
}

static void assert_content(int dfd, const char *name, const char *want)
{
        char *buf = NULL;
        size_t len = 0;
        struct vp_error err = { 0 };

        int r = vp_read_file_at(dfd, name, 1 << 20, &buf, &len, &err);
        if (r < 0)
                fail_msg("reading '%s': %s", name, err.msg);
        assert_int_equal(len, strlen(want));
        assert_string_equal(buf, want);
        free(buf);
}

static void test_write_creates(void **state)
{
        struct dir *d = *state;
        struct vp_error err = { 0 };
        struct stat st;
        mode_t old = umask(077);

        assert_int_equal(vp_write_file_atomic(d->fd, "manifest.json", "{}\n", 3, 0644, &err), 0);
        umask(old);
        assert_content(d->fd, "manifest.json", "{}\n");
        assert_int_equal(fstatat(d->fd, "manifest.json", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(S_ISREG(st.st_mode));
        /* MODE is applied exactly, not filtered through the umask. */
        assert_int_equal(st.st_mode & 07777, 0644);
        assert_int_equal(count_temp_files(d->fd), 0);
}

static void test_write_replaces(void **state)
{
        struct dir *d = *state;
        struct vp_error err = { 0 };
        struct stat before, after;

        put(d->fd, "state", "old content that is longer than the new one\n");
        assert_int_equal(fstatat(d->fd, "state", &before, 0), 0);
        assert_int_equal(vp_write_file_atomic(d->fd, "state", "new\n", 4, 0600, &err), 0);
        assert_content(d->fd, "state", "new\n");
        /* Replaced by rename, not rewritten in place. */
        assert_int_equal(fstatat(d->fd, "state", &after, 0), 0);
        assert_true(before.st_ino != after.st_ino);
        assert_int_equal(count_temp_files(d->fd), 0);

        /* Empty content is fine. */
        assert_int_equal(vp_write_file_atomic(d->fd, "state", NULL, 0, 0600, &err), 0);
        assert_content(d->fd, "state", "");
}

static void test_write_over_symlink_replaces_link(void **state)
{
        struct dir *d = *state;
        struct vp_error err = { 0 };
        struct stat st;

        put(d->fd, "target", "precious\n");
        assert_int_equal(symlinkat("target", d->fd, "link"), 0);
        assert_int_equal(vp_write_file_atomic(d->fd, "link", "x", 1, 0644, &err), 0);
        /* The link itself was replaced; what it pointed to is untouched. */
        assert_int_equal(fstatat(d->fd, "link", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_content(d->fd, "target", "precious\n");
        assert_content(d->fd, "link", "x");
}

static void test_write_onto_directory_fails_clean(void **state)
{
        struct dir *d = *state;
        struct vp_error err = { 0 };
        struct stat st;
        int r;

        assert_int_equal(mkdirat(d->fd, "taken", 0755), 0);
        put(d->fd, "taken/inside", "keep\n");
        r = vp_write_file_atomic(d->fd, "taken", "data", 4, 0644, &err);
        assert_true(r < 0);
        assert_int_equal(err.code, r);
        assert_non_null(strstr(err.msg, "'taken'"));
        assert_int_equal(count_temp_files(d->fd), 0);
        assert_int_equal(fstatat(d->fd, "taken", &st, 0), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(fstatat(d->fd, "taken/inside", &st, 0), 0);
        assert_int_equal(st.st_size, 5);
}

static void test_write_failure_after_create_removes_temp(void **state)
{
        struct dir *d = *state;
        struct vp_error err = { 0 };
        struct rlimit old, small;
        static char big[64 * 1024];
        void (*old_handler)(int);
        int r;

        put(d->fd, "conf", "original\n");

        /* Make the write itself fail with EFBIG once the temp file exists. */
        assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
        small = old;
        small.rlim_cur = 4096;
        old_handler = signal(SIGXFSZ, SIG_IGN);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
        memset(big, 'z', sizeof(big));
        r = vp_write_file_atomic(d->fd, "conf", big, sizeof(big), 0644, &err);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
        signal(SIGXFSZ, old_handler);

        assert_int_equal(r, -EFBIG);
        assert_non_null(strstr(err.msg, "cannot write 'conf'"));
        assert_int_equal(count_temp_files(d->fd), 0);
        assert_content(d->fd, "conf", "original\n");
}

static void test_write_bad_dirfd_and_names(void **state)
{
        struct dir *d = *state;
        struct vp_error err = { 0 };
        int filefd;

        assert_int_equal(vp_write_file_atomic(-1, "x", "a", 1, 0644, &err), -EBADF);
        assert_non_null(strstr(err.msg, "'x'"));

        put(d->fd, "plain", "p");
        filefd = openat(d->fd, "plain", O_RDONLY | O_CLOEXEC);
        assert_true(filefd >= 0);
        assert_int_equal(vp_write_file_atomic(filefd, "x", "a", 1, 0644, &err), -ENOTDIR);
        close(filefd);

        assert_int_equal(vp_write_file_atomic(d->fd, "a/b", "a", 1, 0644, &err), -EINVAL);
        assert_int_equal(vp_write_file_atomic(d->fd, "", "a", 1, 0644, &err), -EINVAL);
        assert_int_equal(vp_write_file_atomic(d->fd, "..", "a", 1, 0644, &err), -EINVAL);
        assert_int_equal(vp_write_file_atomic(d->fd, NULL, "a", 1, 0644, &err), -EINVAL);
        assert_int_equal(count_temp_files(d->fd), 0);
}

/* The recycled write: the new content under NAME, the old one kept as the
 * spare, whose inode the next write takes: no inode made after the first
 * two writes. */
static void test_recycle_swaps_inodes(void **state)
{
        struct dir *d = *state;
        struct vp_error err = { 0 };
        struct stat a, b, c;

        assert_int_equal(vp_write_file_recycle(d->fd, "m", ".spare", "one\n", 4, 0644, &err), 0);
        assert_content(d->fd, "m", "one\n");
        assert_int_equal(fstatat(d->fd, "m", &a, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(a.st_mode & 07777, 0644);
        assert_int_equal(vp_write_file_recycle(d->fd, "m", ".spare", "a longer two\n", 13, 0644, &err), 0);
        assert_content(d->fd, "m", "a longer two\n");
        assert_content(d->fd, ".spare", "one\n");
        assert_int_equal(fstatat(d->fd, ".spare", &b, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(a.st_ino == b.st_ino);
        assert_int_equal(fstatat(d->fd, "m", &b, AT_SYMLINK_NOFOLLOW), 0);
        /* The spare is rewritten from its start and cut to the new size. */
        assert_int_equal(vp_write_file_recycle(d->fd, "m", ".spare", "3\n", 2, 0644, &err), 0);
        assert_content(d->fd, "m", "3\n");
        assert_int_equal(fstatat(d->fd, "m", &c, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(c.st_ino == a.st_ino);
        assert_int_equal(fstatat(d->fd, ".spare", &c, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(c.st_ino == b.st_ino);
        assert_int_equal(count_temp_files(d->fd), 0);
}

/* A spare that is a hard link of another file, a symbolic link or not a
 * file is never written through: a fresh temp file takes its place in the
 * write, and what the odd spare names keeps its content. */
static void test_recycle_refuses_odd_spare(void **state)
{
        struct dir *d = *state;
        struct vp_error err = { 0 };

        put(d->fd, "disk", "precious\n");
        assert_int_equal(linkat(d->fd, "disk", d->fd, ".spare", 0), 0);
        assert_int_equal(vp_write_file_recycle(d->fd, "m", ".spare", "x\n", 2, 0644, &err), 0);
        assert_content(d->fd, "m", "x\n");
        assert_content(d->fd, "disk", "precious\n");
        assert_content(d->fd, ".spare", "precious\n");
        assert_int_equal(unlinkat(d->fd, ".spare", 0), 0);

        assert_int_equal(symlinkat("disk", d->fd, ".spare"), 0);
        assert_int_equal(vp_write_file_recycle(d->fd, "m", ".spare", "y\n", 2, 0644, &err), 0);
        assert_content(d->fd, "m", "y\n");
        assert_content(d->fd, "disk", "precious\n");
        assert_int_equal(unlinkat(d->fd, ".spare", 0), 0);

        assert_int_equal(mkfifoat(d->fd, ".spare", 0644), 0);
        assert_int_equal(vp_write_file_recycle(d->fd, "m", ".spare", "z\n", 2, 0644, &err), 0);
        assert_content(d->fd, "m", "z\n");
        assert_int_equal(count_temp_files(d->fd), 0);

        assert_int_equal(vp_write_file_recycle(d->fd, "m", "a/b", "z\n", 2, 0644, &err), -EINVAL);
        assert_int_equal(vp_write_file_recycle(d->fd, "..", ".spare", "z\n", 2, 0644, &err), -EINVAL);
}

/* Returns 0 when a write into the read-only directory RO fails cleanly. */
static int write_into_read_only(int ro)
{
        struct vp_error err = { 0 };

        if (vp_write_file_atomic(ro, "x", "a", 1, 0644, &err) != -EACCES)
                return 1;
        if (!strstr(err.msg, "'x'"))
                return 2;
        if (faccessat(ro, "x", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                return 3;
        return 0;
}

static void test_write_read_only_dir(void **state)
{
        struct dir *d = *state;
        int ro, status;

        assert_int_equal(mkdirat(d->fd, "ro", 0555), 0);
        ro = openat(d->fd, "ro", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(ro >= 0);

        if (geteuid() != 0) {
                assert_int_equal(write_into_read_only(ro), 0);
        } else {
                /* Root ignores directory permissions: try as nobody. The
                 * test harness skips are reported as failures by Meson's TAP
                 * parser, so do not skip. */
                pid_t pid = fork();
                assert_true(pid >= 0);
                if (pid == 0) {
                        if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
                                _exit(10);
                        _exit(write_into_read_only(ro));
                }
                assert_int_equal(waitpid(pid, &status, 0), pid);
                assert_true(WIFEXITED(status));
                assert_int_equal(WEXITSTATUS(status), 0);
        }
        assert_int_equal(count_temp_files(ro), 0);
        close(ro);
        /* Writable again, so that the fixture's teardown can empty it. */
        assert_int_equal(fchmodat(d->fd, "ro", 0755, 0), 0);
}

static void test_read_basic(void **state)
{
        struct dir *d = *state;
        struct vp_error err = { 0 };
        char *buf = NULL;
        size_t len = 99;

        put(d->fd, "empty", "");
        assert_int_equal(vp_read_file_at(d->fd, "empty", 10, &buf, &len, &err), 0);
        assert_int_equal(len, 0);
        assert_string_equal(buf, "");
        free(buf);

        /* Exactly MAX is allowed, one more is not. */
        put(d->fd, "ten", "0123456789");
        assert_int_equal(vp_read_file_at(d->fd, "ten", 10, &buf, NULL, &err), 0);
        assert_string_equal(buf, "0123456789");
        free(buf);

        buf = (char *) 0x1;
        assert_int_equal(vp_read_file_at(d->fd, "ten", 9, &buf, &len, &err), -EFBIG);
        assert_non_null(strstr(err.msg, "'ten' is too large"));
        assert_true(buf == (char *) 0x1);

        assert_int_equal(vp_read_file_at(d->fd, "missing", 10, &buf, &len, &err), -ENOENT);
        assert_non_null(strstr(err.msg, "'missing'"));

        /* One path component only: O_NOFOLLOW would not guard the others. */
        assert_int_equal(mkdirat(d->fd, "sub", 0755), 0);
        put(d->fd, "sub/f", "x");
        assert_int_equal(vp_read_file_at(d->fd, "sub/f", 10, &buf, &len, &err), -EINVAL);
        assert_int_equal(vp_read_file_at(d->fd, "..", 10, &buf, &len, &err), -EINVAL);
        assert_int_equal(vp_read_file_at(d->fd, "", 10, &buf, &len, &err), -EINVAL);
        assert_int_equal(vp_read_file_at(d->fd, NULL, 10, &buf, &len, &err), -EINVAL);
        assert_true(buf == (char *) 0x1);
}

static void test_read_larger_file(void **state)
{
        struct dir *d = *state;
        struct vp_error err = { 0 };
        size_t n = 300000, len = 0;
        char *content = malloc(n + 1), *buf = NULL;

        assert_non_null(content);
        for (size_t i = 0; i < n; i++)
                content[i] = (char) ('a' + i % 26);
        content[n] = '\0';
        put(d->fd, "big", content);
        assert_int_equal(vp_read_file_at(d->fd, "big", n, &buf, &len, &err), 0);
        assert_int_equal(len, n);
        assert_memory_equal(buf, content, n);
        assert_int_equal(buf[n], '\0');
        free(buf);
        assert_int_equal(vp_read_file_at(d->fd, "big", n - 1, &buf, &len, &err), -EFBIG);
        free(content);
}

static void test_read_refuses_symlink(void **state)
{
        struct dir *d = *state;
        struct vp_error err = { 0 };
        char *buf = NULL;

        put(d->fd, "real", "data");
        assert_int_equal(symlinkat("real", d->fd, "link"), 0);
        assert_int_equal(symlinkat("/etc/shadow", d->fd, "evil"), 0);
        assert_int_equal(vp_read_file_at(d->fd, "link", 100, &buf, NULL, &err), -ELOOP);
        assert_string_equal(err.msg, "'link' is a symbolic link");
        assert_int_equal(vp_read_file_at(d->fd, "evil", 100, &buf, NULL, &err), -ELOOP);
        assert_null(buf);
}

static void test_read_refuses_non_regular(void **state)
{
        struct dir *d = *state;
        struct vp_error err = { 0 };
        char *buf = NULL;

        assert_int_equal(mkdirat(d->fd, "sub", 0755), 0);
        assert_int_equal(vp_read_file_at(d->fd, "sub", 100, &buf, NULL, &err), -EISDIR);
        assert_string_equal(err.msg, "'sub' is not a regular file");

        /* A FIFO must neither block the open nor be read. */
        assert_int_equal(mkfifoat(d->fd, "fifo", 0644), 0);
        assert_int_equal(vp_read_file_at(d->fd, "fifo", 100, &buf, NULL, &err), -EINVAL);
        assert_string_equal(err.msg, "'fifo' is not a regular file");

        int devnull = open("/dev", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(devnull >= 0);
        assert_int_equal(vp_read_file_at(devnull, "null", 100, &buf, NULL, &err), -EINVAL);
        close(devnull);
        assert_null(buf);
}

static void test_fsync_dir(void **state)
{
        struct dir *d = *state;
        struct vp_error err = { 0 };

        assert_int_equal(vp_fsync_dir(d->fd, &err), 0);
        assert_int_equal(vp_fsync_dir(-1, &err), -EBADF);
        assert_int_equal(err.code, -EBADF);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_write_creates, setup, teardown),
                cmocka_unit_test_setup_teardown(test_write_replaces, setup, teardown),
                cmocka_unit_test_setup_teardown(test_write_over_symlink_replaces_link, setup, teardown),
                cmocka_unit_test_setup_teardown(test_write_onto_directory_fails_clean, setup, teardown),
                cmocka_unit_test_setup_teardown(test_write_failure_after_create_removes_temp, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_write_bad_dirfd_and_names, setup, teardown),
                cmocka_unit_test_setup_teardown(test_write_read_only_dir, setup, teardown),
                cmocka_unit_test_setup_teardown(test_recycle_swaps_inodes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_recycle_refuses_odd_spare, setup, teardown),
                cmocka_unit_test_setup_teardown(test_read_basic, setup, teardown),
                cmocka_unit_test_setup_teardown(test_read_larger_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_read_refuses_symlink, setup, teardown),
                cmocka_unit_test_setup_teardown(test_read_refuses_non_regular, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fsync_dir, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
