/* vp_storage_check_file: the paths vpool hands to libvirt, against real
 * files in a storage root in a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage.h"

struct root {
        char path[64];
        struct vp_storage st;
};

static int setup(void **state)
{
        struct root *r = calloc(1, sizeof(*r));
        if (!r)
                return -1;
        strcpy(r->path, "/tmp/vp-test-storage-XXXXXX");
        if (!mkdtemp(r->path) || vp_storage_init(r->path, NULL) < 0 ||
            vp_storage_open(r->path, &r->st, NULL) < 0)
                return -1;
        *state = r;
        return 0;
}

static int teardown(void **state)
{
        struct root *r = *state;
        _cleanup_free_ char *cmd = vp_strdupf("rm -rf '%s'", r->path);
        vp_storage_close(&r->st);
        int k = system(cmd);
        free(r);
        return k == 0 ? 0 : -1;
}

/* PATH (relative to the root) checked: 0, or the error whose message holds WANT. */
static void expect(struct root *r, const char *rel, int code, const char *want)
{
        _cleanup_free_ char *path = vp_strdupf("%s/%s", r->path, rel);
        struct vp_error err = { 0 };
        assert_int_equal(vp_storage_check_file(&r->st, path, &err), code);
        if (want)
                assert_non_null(strstr(err.msg, want));
}

static void touch(struct root *r, const char *rel)
{
        _cleanup_free_ char *path = vp_strdupf("%s/%s", r->path, rel);
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        close(fd);
}

static void link_to(struct root *r, const char *target, const char *rel)
{
        _cleanup_free_ char *path = vp_strdupf("%s/%s", r->path, rel);
        assert_int_equal(symlink(target, path), 0);
}

static void test_regular_or_absent_passes(void **state)
{
        struct root *r = *state;
        touch(r, "logs/desk-001.log");
        expect(r, "logs/desk-001.log", 0, NULL);
        /* A console log or variable store libvirt makes at the first start. */
        expect(r, "logs/desk-002.log", 0, NULL);
}

static void test_links_refused(void **state)
{
        struct root *r = *state;
        link_to(r, "/etc/passwd", "logs/desk-001.log");
        expect(r, "logs/desk-001.log", -ELOOP, "desk-001.log' is a symbolic link; refusing");
        /* Even to a regular file inside the root. */
        touch(r, "logs/real.log");
        link_to(r, "real.log", "logs/desk-002.log");
        expect(r, "logs/desk-002.log", -ELOOP, "is a symbolic link");
        /* A directory on the way. */
        _cleanup_free_ char *pool = vp_strdupf("%s/deltas/real", r->path);
        assert_int_equal(mkdir(pool, 0755), 0);
        link_to(r, "real", "deltas/desk");
        expect(r, "deltas/desk/nvram.fd", -ELOOP, "'desk' on the way is a symbolic link");
}

static void test_other_kinds_refused(void **state)
{
        struct root *r = *state;
        _cleanup_free_ char *dir = vp_strdupf("%s/logs/desk-001.log", r->path);
        assert_int_equal(mkdir(dir, 0755), 0);
        expect(r, "logs/desk-001.log", -EPERM, "desk-001.log' is not a regular file");
        touch(r, "deltas/file");
        expect(r, "deltas/file/nvram.fd", -ENOTDIR, "'file' on the way is not a directory");
        /* A missing directory on the way is not an absent file. */
        expect(r, "deltas/nope/nvram.fd", -ENOENT, NULL);
        expect(r, "deltas/../logs/x.log", -EPERM, "not a plain path");
        struct vp_error err = { 0 };
        assert_int_equal(vp_storage_check_file(&r->st, "/etc/passwd", &err), -EPERM);
        assert_non_null(strstr(err.msg, "is not under the storage root"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_regular_or_absent_passes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_links_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_other_kinds_refused, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
