#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "parse.h"

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define TiB (UINT64_C(1) << 40)

static void size_ok(const char *s, uint64_t unit, uint64_t want)
{
        struct vp_error err = { 0 };
        uint64_t v = 0;
        int r = vp_parse_size("memory", s, unit, UINT64_MAX, &v, &err);
        if (r != 0)
                fail_msg("'%s' refused: %s", s, err.msg);
        assert_true(v == want);
}

static void size_bad(const char *s, int code)
{
        struct vp_error err = { 0 };
        uint64_t v = 12345;
        int r = vp_parse_size("memory", s, MiB, 64 * TiB, &v, &err);
        if (r != code)
                fail_msg("'%s': got %d (%s), want %d", s, r, err.msg, code);
        assert_int_equal(err.code, code);
        /* Names what was being parsed and the text, and leaves *ret alone. */
        assert_non_null(strstr(err.msg, "memory"));
        if (s && s[0] && !strchr(s, '\n'))
                assert_non_null(strstr(err.msg, s));
        assert_true(v == 12345);
}

static void test_size_suffixes(void **state)
{
        (void) state;
        size_ok("1", MiB, MiB);
        size_ok("512", MiB, 512 * MiB);
        size_ok("1", 1, 1);
        size_ok("4096B", MiB, 4096);
        size_ok("4096b", MiB, 4096);
        size_ok("1K", MiB, KiB);
        size_ok("1k", MiB, KiB);
        size_ok("1KiB", MiB, KiB);
        size_ok("2kib", MiB, 2 * KiB);
        size_ok("512M", 1, 512 * MiB);
        size_ok("512MiB", 1, 512 * MiB);
        size_ok("4G", 1, 4 * GiB);
        size_ok("4g", 1, 4 * GiB);
        size_ok("4GiB", 1, 4 * GiB);
        size_ok("2T", 1, 2 * TiB);
        size_ok("2TiB", 1, 2 * TiB);
        size_ok("007M", 1, 7 * MiB);
        size_ok("16777215T", 1, 16777215 * TiB);
}

static void test_size_refused(void **state)
{
        (void) state;
        size_bad("0", -EINVAL);
        size_bad("0G", -EINVAL);
        size_bad("", -EINVAL);
        size_bad(NULL, -EINVAL);
        size_bad("-1", -EINVAL);
        size_bad("-1G", -EINVAL);
        size_bad("+1G", -EINVAL);
        size_bad(" 1G", -EINVAL);
        size_bad("1G ", -EINVAL);
        size_bad("1.5G", -EINVAL);
        size_bad("1,5G", -EINVAL);
        size_bad("12X", -EINVAL);
        size_bad("1KB", -EINVAL);
        size_bad("1GB", -EINVAL);
        size_bad("1P", -EINVAL);
        size_bad("G", -EINVAL);
        size_bad("0x10", -EINVAL);
        size_bad("1e9", -EINVAL);
        size_bad("1\n", -EINVAL);
        size_bad("99999999999999999999T", -ERANGE);
        size_bad("99999999999999999999", -ERANGE);
        size_bad("18446744073709551615", -ERANGE); /* fits u64, but x MiB does not */
        size_bad("65T", -ERANGE);                  /* over MAX */
        size_bad("67108865M", -ERANGE);
}

static void test_size_messages(void **state)
{
        (void) state;
        struct vp_error err = { 0 };
        uint64_t v;

        vp_parse_size("memory", "1.5G", MiB, TiB, &v, &err);
        assert_string_equal(err.msg, "invalid memory '1.5G': fractions are not supported, use a smaller unit");
        vp_parse_size("memory", "12X", MiB, TiB, &v, &err);
        assert_string_equal(err.msg, "invalid memory '12X': unknown unit, use B, K, M, G or T");
        vp_parse_size("disk size", "2T", MiB, TiB, &v, &err);
        assert_string_equal(err.msg, "disk size '2T' is too large: the maximum is 1T");
        vp_parse_size("memory", "0", MiB, TiB, &v, &err);
        assert_string_equal(err.msg, "invalid memory '0': must be greater than zero");
        vp_parse_size("memory", "-1", MiB, TiB, &v, &err);
        assert_string_equal(err.msg, "invalid memory '-1': must not be negative");
        vp_parse_size("memory", "", MiB, TiB, &v, &err);
        assert_string_equal(err.msg, "invalid memory '': expected a size such as 512M or 4G");
        /* Control characters in the text are escaped, not echoed. */
        vp_parse_size("memory", "1\x1b[2J", MiB, TiB, &v, &err);
        assert_null(strchr(err.msg, '\x1b'));
        assert_non_null(strstr(err.msg, "\\x1b"));
}

static void test_size_max_boundary(void **state)
{
        (void) state;
        uint64_t v = 0;

        assert_int_equal(vp_parse_size("disk", "1T", GiB, TiB, &v, NULL), 0);
        assert_true(v == TiB);
        assert_int_equal(vp_parse_size("disk", "1024", GiB, TiB, &v, NULL), 0);
        assert_true(v == TiB);
        assert_int_equal(vp_parse_size("disk", "1025", GiB, TiB, &v, NULL), -ERANGE);
        assert_int_equal(vp_parse_size("disk", "1099511627777B", GiB, TiB, &v, NULL), -ERANGE);
        assert_int_equal(vp_parse_size("disk", "18446744073709551615B", 1, UINT64_MAX, &v, NULL), 0);
        assert_true(v == UINT64_MAX);
        assert_int_equal(vp_parse_size("disk", "18446744073709551616B", 1, UINT64_MAX, &v, NULL),
                         -ERANGE);
}

static void test_size_unit_required(void **state)
{
        (void) state;
        uint64_t v = 0;
        struct vp_error err = { 0 };

        assert_int_equal(vp_parse_size("size", "10", 0, TiB, &v, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "suffix"));
        assert_int_equal(vp_parse_size("size", "10M", 0, TiB, &v, &err), 0);
        assert_true(v == 10 * MiB);
}

static void test_uint(void **state)
{
        (void) state;
        struct vp_error err = { 0 };
        uint64_t v = 7;

        assert_int_equal(vp_parse_uint("vcpus", "4", 1, 64, &v, &err), 0);
        assert_true(v == 4);
        assert_int_equal(vp_parse_uint("vcpus", "1", 1, 64, &v, &err), 0);
        assert_int_equal(vp_parse_uint("vcpus", "64", 1, 64, &v, &err), 0);
        assert_true(v == 64);
        assert_int_equal(vp_parse_uint("port", "0", 0, 10, &v, &err), 0);
        assert_true(v == 0);

        v = 7;
        assert_int_equal(vp_parse_uint("vcpus", "0", 1, 64, &v, &err), -ERANGE);
        assert_string_equal(err.msg, "vcpus '0' is out of range: must be between 1 and 64");
        assert_int_equal(vp_parse_uint("vcpus", "65", 1, 64, &v, &err), -ERANGE);
        assert_int_equal(vp_parse_uint("vcpus", "99999999999999999999", 1, 64, &v, &err), -ERANGE);
        assert_int_equal(vp_parse_uint("vcpus", "-1", 1, 64, &v, &err), -EINVAL);
        assert_string_equal(err.msg, "invalid vcpus '-1': expected a whole number");
        assert_int_equal(vp_parse_uint("vcpus", "", 1, 64, &v, &err), -EINVAL);
        assert_int_equal(vp_parse_uint("vcpus", NULL, 1, 64, &v, &err), -EINVAL);
        assert_int_equal(vp_parse_uint("vcpus", "4x", 1, 64, &v, &err), -EINVAL);
        assert_int_equal(vp_parse_uint("vcpus", "4 ", 1, 64, &v, &err), -EINVAL);
        assert_int_equal(vp_parse_uint("vcpus", "1.0", 1, 64, &v, &err), -EINVAL);
        assert_int_equal(vp_parse_uint("vcpus", "+4", 1, 64, &v, &err), -EINVAL);
        assert_int_equal(vp_parse_uint("vcpus", "4G", 1, 64, &v, &err), -EINVAL);
        assert_true(v == 7);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_size_suffixes),
                cmocka_unit_test(test_size_refused),
                cmocka_unit_test(test_size_messages),
                cmocka_unit_test(test_size_max_boundary),
                cmocka_unit_test(test_size_unit_required),
                cmocka_unit_test(test_uint),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
