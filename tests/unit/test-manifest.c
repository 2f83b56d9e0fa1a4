#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "manifest.h"

static struct vp_manifest sample(void)
{
        struct vp_manifest m = { 0 };
        strcpy(m.pool, "desk");
        strcpy(m.vm, "desk-001");
        strcpy(m.owner, "vm:desk-001");
        m.generation = 7;
        strcpy(m.uuid, "5b7c3a52-8c1d-4f6e-9a0b-1c2d3e4f5a6b");
        strcpy(m.macs[0], "52:54:00:aa:bb:cc");
        m.nmacs = 1;
        strcpy(m.hostname, "desk-001");
        strcpy(m.master, "/srv/vpool/images/g.qcow2");
        strcpy(m.master_format, "qcow2");
        strcpy(m.overlay, "overlay.qcow2");
        return m;
}

static void test_roundtrip(void **state)
{
        struct vp_manifest m = sample(), back;
        struct vp_error err = { 0 };
        char *text = vp_manifest_to_json(&m);
        assert_int_equal(vp_manifest_parse(text, "t", &back, &err), 0);
        assert_memory_equal(&m, &back, sizeof(m));
        free(text);
}

static void test_file_roundtrip(void **state)
{
        char dir[] = "/tmp/vp-manifest-XXXXXX";
        assert_non_null(mkdtemp(dir));
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct vp_manifest m = sample(), back;
        struct vp_error err = { 0 };
        assert_int_equal(vp_manifest_write(fd, &m, &err), 0);
        assert_int_equal(vp_manifest_read(fd, dir, &back, &err), 0);
        assert_string_equal(back.owner, "vm:desk-001");
        m.generation = 8;
        strcpy(m.owner, "migration:12");
        assert_int_equal(vp_manifest_write(fd, &m, &err), 0);
        assert_int_equal(vp_manifest_read(fd, dir, &back, &err), 0);
        assert_int_equal(back.generation, 8);
        assert_string_equal(back.owner, "migration:12");
        /* A truncated manifest is damage, never an empty one. */
        int w = openat(fd, VP_MANIFEST_NAME, O_WRONLY | O_TRUNC | O_CLOEXEC);
        assert_true(w >= 0);
        assert_int_equal(write(w, "{\"version\": 1, \"po", 18), 18);
        close(w);
        assert_int_equal(vp_manifest_read(fd, dir, &back, &err), -EBADMSG);
        assert_non_null(strstr(err.msg, "damaged"));
        unlinkat(fd, VP_MANIFEST_NAME, 0);
        assert_int_equal(vp_manifest_read(fd, dir, &back, &err), -ENOENT);
        /* A symlink in place of the manifest is refused. */
        assert_int_equal(symlinkat("/etc/passwd", fd, VP_MANIFEST_NAME), 0);
        assert_true(vp_manifest_read(fd, dir, &back, &err) < 0);
        unlinkat(fd, VP_MANIFEST_NAME, 0);
        close(fd);
        rmdir(dir);
}

static void expect_bad(const char *from, const char *to)
{
        struct vp_manifest m = sample(), back;
        struct vp_error err = { 0 };
        char *text = vp_manifest_to_json(&m);
        char *p = strstr(text, from);
        assert_non_null(p);
        size_t fl = strlen(from), tl = strlen(to);
        char *out = calloc(1, strlen(text) + tl + 1);
        memcpy(out, text, (size_t)(p - text));
        strcat(out, to);
        strcat(out, p + fl);
        if (vp_manifest_parse(out, "t", &back, &err) != -EBADMSG)
                fail_msg("accepted: %s", out);
        free(out);
        free(text);
}

static void test_garbled(void **state)
{
        expect_bad("\"generation\": 7", "\"generation\": 0");
        expect_bad("\"generation\": 7", "\"generation\": \"7\"");
        expect_bad("\"owner\": \"vm:desk-001\"", "\"owner\": \"root\"");
        expect_bad("\"owner\": \"vm:desk-001\"", "\"owner\": \"vm:../x\"");
        expect_bad("\"pool\": \"desk\"", "\"pool\": \"de/sk\"");
        expect_bad("\"master\": \"/srv/vpool/images/g.qcow2\"", "\"master\": \"images/g.qcow2\"");
        expect_bad("\"master_format\": \"qcow2\"", "\"master_format\": \"vmdk\"");
        expect_bad("\"overlay\": \"overlay.qcow2\"", "\"overlay\": \"../../x\"");
        expect_bad("52:54:00:aa:bb:cc", "52:54:00:aa:bb");
        expect_bad("5b7c3a52-", "5b7c3a5Z-");
        expect_bad("\"version\": 1", "\"version\": 2");
        expect_bad("\"vm\": \"desk-001\",", "");

        struct vp_manifest back;
        struct vp_error err = { 0 };
        assert_int_equal(vp_manifest_parse("", "t", &back, &err), -EBADMSG);
        assert_int_equal(vp_manifest_parse("[]", "t", &back, &err), -EBADMSG);
        assert_int_equal(vp_manifest_parse("{}", "t", &back, &err), -EBADMSG);
        struct vp_manifest m = sample();
        char *text = vp_manifest_to_json(&m);
        char *two = calloc(1, strlen(text) * 2 + 1);
        strcat(two, text);
        strcat(two, text);
        assert_int_equal(vp_manifest_parse(two, "t", &back, &err), -EBADMSG);
        free(two);
        free(text);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_roundtrip),
                cmocka_unit_test(test_file_roundtrip),
                cmocka_unit_test(test_garbled),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
