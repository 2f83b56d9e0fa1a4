#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "name.h"

static void accept(const char *name)
{
        struct vp_error err = { 0 };
        int r = vp_name_check("pool", name, &err);
        if (r != 0)
                fail_msg("'%s' refused: %s", name, err.msg);
        assert_int_equal(err.code, 0);
}

static void refuse(const char *name)
{
        struct vp_error err = { 0 };
        assert_int_equal(vp_name_check("pool", name, &err), -EINVAL);
        assert_int_equal(err.code, -EINVAL);
        assert_non_null(strstr(err.msg, "pool"));
        /* One line, and nothing unprintable leaks into it. */
        for (const char *p = err.msg; *p; p++)
                assert_true((unsigned char) *p >= 0x20 && (unsigned char) *p < 0x7f);
}

static void test_valid(void **state)
{
        (void) state;
        char longest[VP_NAME_MAX + 1];

        accept("a");
        accept("Z");
        accept("0");
        accept("web-01");
        accept("db_primary.v2");
        accept("a..b");
        accept("9-");
        memset(longest, 'x', VP_NAME_MAX);
        longest[VP_NAME_MAX] = '\0';
        accept(longest);
}

static void test_invalid(void **state)
{
        (void) state;
        char too_long[VP_NAME_MAX + 2];

        refuse("");
        refuse(".");
        refuse("..");
        refuse("../x");
        refuse("a/b");
        refuse("/abs");
        refuse("-rf");
        refuse("_x");
        refuse(".hidden");
        refuse("a b");
        refuse("a\nb");
        refuse("caf\xc3\xa9");
        refuse("x;rm");
        refuse("a'b");
        refuse("a\\b");
        refuse("tab\t");
        memset(too_long, 'x', VP_NAME_MAX + 1);
        too_long[VP_NAME_MAX + 1] = '\0';
        refuse(too_long);
}

static void test_null(void **state)
{
        (void) state;
        struct vp_error err = { 0 };

        assert_int_equal(vp_name_check("env", NULL, &err), -EINVAL);
        assert_string_equal(err.msg, "no env name given");
        /* A NULL error pointer is allowed. */
        assert_int_equal(vp_name_check("env", "../", NULL), -EINVAL);
        assert_int_equal(vp_name_check("env", "ok", NULL), 0);
}

static void test_message(void **state)
{
        (void) state;
        struct vp_error err = { 0 };

        vp_name_check("pool", "../x", &err);
        assert_string_equal(err.msg,
                            "invalid pool name '../x': must be 1-63 characters of A-Z a-z 0-9 _ . - "
                            "starting with a letter or digit");

        vp_name_check("env", "a\x1b[31mred", &err);
        assert_non_null(strstr(err.msg, "'a\\x1b[31mred'"));

        vp_name_check("env", "", &err);
        assert_non_null(strstr(err.msg, "invalid env name ''"));
}

static void test_message_long_name_shortened(void **state)
{
        (void) state;
        struct vp_error err = { 0 };
        char big[4096];

        memset(big, 'q', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        vp_name_check("pool", big, &err);
        assert_non_null(strstr(err.msg, "...'"));
        assert_true(strlen(err.msg) < 200);
}

static void test_printable(void **state)
{
        (void) state;
        char buf[48];

        assert_string_equal(vp_printable("plain", buf, sizeof(buf)), "plain");
        assert_string_equal(vp_printable("", buf, sizeof(buf)), "");
        assert_string_equal(vp_printable(NULL, buf, sizeof(buf)), "(null)");
        assert_string_equal(vp_printable("a\tb\x7f\xff", buf, sizeof(buf)), "a\\x09b\\x7f\\xff");
        assert_string_equal(vp_printable("it's", buf, sizeof(buf)), "it\\x27s");
        assert_string_equal(vp_printable("a\\b", buf, sizeof(buf)), "a\\x5cb");

        /* Exactly fits: 47 characters plus NUL, no ellipsis. */
        char s47[48];
        memset(s47, 'a', 47);
        s47[47] = '\0';
        assert_string_equal(vp_printable(s47, buf, sizeof(buf)), s47);

        /* One more and it is shortened, within the buffer. */
        char s48[49];
        memset(s48, 'a', 48);
        s48[48] = '\0';
        vp_printable(s48, buf, sizeof(buf));
        assert_true(strlen(buf) < sizeof(buf));
        assert_string_equal(buf + strlen(buf) - 3, "...");

        /* An escape is never cut in half. */
        char esc[64];
        memset(esc, '\x01', sizeof(esc) - 1);
        esc[sizeof(esc) - 1] = '\0';
        vp_printable(esc, buf, sizeof(buf));
        size_t n = strlen(buf);
        assert_string_equal(buf + n - 3, "...");
        assert_int_equal((n - 3) % 4, 0);

        /* Tiny buffers stay NUL-terminated. */
        char tiny[3];
        vp_printable("abcdef", tiny, sizeof(tiny));
        assert_true(strlen(tiny) < sizeof(tiny));
        char one[1];
        assert_string_equal(vp_printable("abc", one, sizeof(one)), "");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid),
                cmocka_unit_test(test_invalid),
                cmocka_unit_test(test_null),
                cmocka_unit_test(test_message),
                cmocka_unit_test(test_message_long_name_shortened),
                cmocka_unit_test(test_printable),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
