/* The host-failure policy's pure parts: the policy as typed, the grace
 * period, and the arithmetic of when it acts and when it retries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "hostfail.h"

static void parses(const char *text, enum vp_host_failure action, const char *to)
{
        struct vp_host_failure_policy p = { .action = VP_HOST_FAILURE_MAX };
        struct vp_error err = { 0 };
        if (vp_host_failure_parse(text, &p, &err) < 0)
                fail_msg("'%s' refused: %s", text, err.msg);
        assert_int_equal(p.action, action);
        assert_string_equal(p.to_env, to);
        /* Shown as typed, and read back the same. */
        char *shown = vp_host_failure_show(&p);
        assert_string_equal(shown, text);
        free(shown);
}

static void refused(const char *text, const char *msg)
{
        struct vp_host_failure_policy p = { .action = VP_HOST_FAILURE_MAX, .to_env = "x" };
        struct vp_error err = { 0 };
        assert_int_equal(vp_host_failure_parse(text, &p, &err), -EINVAL);
        if (!strstr(err.msg, msg))
                fail_msg("'%s': message '%s' does not say '%s'", text ? text : "(null)", err.msg, msg);
        /* Untouched on failure. */
        assert_int_equal(p.action, VP_HOST_FAILURE_MAX);
        assert_string_equal(p.to_env, "x");
}

static void test_policy(void **state)
{
        (void)state;
        parses("none", VP_HOST_FAILURE_NONE, "");
        parses("report", VP_HOST_FAILURE_REPORT, "");
        parses("evacuate", VP_HOST_FAILURE_EVACUATE, "");
        parses("evacuate:west", VP_HOST_FAILURE_EVACUATE, "west");
        parses("evacuate:dc-2.b", VP_HOST_FAILURE_EVACUATE, "dc-2.b");
}

static void test_policy_refused(void **state)
{
        (void)state;
        const char *words = "give none, report, evacuate or evacuate:ENV";
        refused("", words);
        refused(NULL, words);
        refused("Evacuate", "unknown host-failure policy 'Evacuate'");
        refused("evacuate ", words);
        refused("report:west", "unknown host-failure policy 'report:west'");
        refused("evacuate:", "--on-host-failure evacuate:ENV");
        refused("evacuate:../x", "--on-host-failure evacuate:ENV");
        refused("evacuate:a:b", "--on-host-failure evacuate:ENV");
        refused("evacuate:a b", "--on-host-failure evacuate:ENV");
        refused("none\n", "unknown host-failure policy 'none\\x0a'");
}

static void test_env_row(void **state)
{
        (void)state;
        struct vp_host_failure_policy p;
        int64_t grace;
        /* A row from before schema 9 (no words) does nothing after the default grace. */
        struct vp_env old = { 0 };
        vp_env_host_failure(&old, &p, &grace);
        assert_int_equal(p.action, VP_HOST_FAILURE_NONE);
        assert_int_equal(grace, VP_HOST_FAILURE_GRACE);
        struct vp_env e = { .on_host_failure = (char *)"evacuate", .evacuate_to = (char *)"west", .grace = 45 };
        vp_env_host_failure(&e, &p, &grace);
        assert_int_equal(p.action, VP_HOST_FAILURE_EVACUATE);
        assert_string_equal(p.to_env, "west");
        assert_int_equal(grace, 45);
        /* A target kept from an earlier evacuate:ENV means nothing to report. */
        struct vp_env r = { .on_host_failure = (char *)"report", .evacuate_to = (char *)"west", .grace = 5 };
        vp_env_host_failure(&r, &p, &grace);
        assert_int_equal(p.action, VP_HOST_FAILURE_REPORT);
        assert_string_equal(p.to_env, "");
        struct vp_env bad = { .on_host_failure = (char *)"explode" };
        vp_env_host_failure(&bad, &p, &grace);
        assert_int_equal(p.action, VP_HOST_FAILURE_NONE);
}

static void test_grace(void **state)
{
        (void)state;
        struct vp_error err = { 0 };
        int64_t g = -1;
        assert_int_equal(vp_grace_parse("1", &g, &err), 0);
        assert_int_equal(g, 1);
        assert_int_equal(vp_grace_parse("86400", &g, &err), 0);
        assert_int_equal(g, 86400);
        static const char *const bad[] = { "0", "86401", "-5", "5s", "", "1.5", " 5", "99999999999999999999" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                g = -1;
                assert_true(vp_grace_parse(bad[i], &g, &err) < 0);
                assert_non_null(strstr(err.msg, "--grace"));
                assert_int_equal(g, -1);
        }
}

static void test_down_for(void **state)
{
        (void)state;
        struct tm tm = { .tm_year = 126, .tm_mon = 10, .tm_mday = 27, .tm_hour = 10, .tm_min = 0, .tm_sec = 45 };
        time_t now = timegm(&tm);
        assert_int_equal(vp_host_down_for("2026-11-27T10:00:00Z", now), 45);
        assert_int_equal(vp_host_down_for("2026-11-27T09:00:45Z", now), 3600);
        assert_int_equal(vp_host_down_for("2026-11-26T10:00:45Z", now), 86400);
        /* Answering, unreadable, or a mark from a clock set back. */
        assert_int_equal(vp_host_down_for("", now), -1);
        assert_int_equal(vp_host_down_for(NULL, now), -1);
        assert_int_equal(vp_host_down_for("yesterday", now), -1);
        assert_int_equal(vp_host_down_for("2026-11-27T10:00:00", now), -1);
        assert_int_equal(vp_host_down_for("2026-11-27T10:00:00Zjunk", now), -1);
        assert_int_equal(vp_host_down_for("2026-11-27T10:05:00Z", now), 0);
}

static void test_due(void **state)
{
        (void)state;
        /* Longer than the grace, not as long. */
        assert_false(vp_host_failure_due(60, 60));
        assert_true(vp_host_failure_due(61, 60));
        assert_false(vp_host_failure_due(0, 60));
        assert_false(vp_host_failure_due(-1, 0));
        assert_true(vp_host_failure_due(1, 0));
}

static void test_backoff(void **state)
{
        (void)state;
        static const int want[] = { 1, 2, 4, 8, 10, 10, 10 };
        for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++)
                assert_int_equal(vp_reconnect_backoff(i), want[i]);
        assert_int_equal(vp_reconnect_backoff(1000), 10);
        /* A failed evacuation: the grace, doubling, at most an hour. */
        assert_int_equal(vp_evacuate_retry_after(1, 60), 60);
        assert_int_equal(vp_evacuate_retry_after(2, 60), 120);
        assert_int_equal(vp_evacuate_retry_after(3, 60), 240);
        assert_int_equal(vp_evacuate_retry_after(7, 60), 3600);
        assert_int_equal(vp_evacuate_retry_after(4000000000u, 60), 3600);
        assert_int_equal(vp_evacuate_retry_after(1, 86400), 3600);
        assert_int_equal(vp_evacuate_retry_after(1, 0), 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_policy),  cmocka_unit_test(test_policy_refused),
                cmocka_unit_test(test_env_row), cmocka_unit_test(test_grace),
                cmocka_unit_test(test_down_for), cmocka_unit_test(test_due),
                cmocka_unit_test(test_backoff),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
