/* The policies' pure parts (a window, a wave) and the settings' checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "catalog.h"
#include "hostfail.h"
#include "policy.h"
#include "tmp-catalog.h"

static int at(int h, int m)
{
        return h * 60 + m;
}

static void test_window_parse(void **state)
{
        struct vp_window w;
        struct vp_error err = { 0 };
        assert_int_equal(vp_window_parse("22:00-06:00", &w, &err), 0);
        assert_false(w.any);
        assert_int_equal(w.start, at(22, 0));
        assert_int_equal(w.end, at(6, 0));
        assert_int_equal(vp_window_parse("08:30-24:00", &w, &err), 0);
        assert_int_equal(w.end, 0);
        assert_int_equal(vp_window_parse(NULL, &w, &err), 0);
        assert_true(w.any);
        assert_int_equal(vp_window_parse("", &w, &err), 0);
        assert_true(w.any);
        static const char *const bad[] = {
                "22:00", "22:00-", "2:00-06:00", "22:00-6:00", "24:00-06:00", "22:60-06:00", "22:00-24:01",
                "22:00-06:00 ", " 22:00-06:00", "22-06", "ab:cd-ef:gh", "22:00_06:00", "22:00-06:00-07:00",
                "00:00-24:00x", "-1:00-06:00",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                err = (struct vp_error){ 0 };
                w = (struct vp_window){ .start = 7 };
                assert_int_equal(vp_window_parse(bad[i], &w, &err), -EINVAL);
                assert_non_null(strstr(err.msg, "invalid window"));
                assert_int_equal(w.start, 7);   /* untouched */
        }
        assert_int_equal(vp_window_parse("06:00-06:00", &w, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "ends where it starts"));
        assert_int_equal(vp_window_parse("00:00-24:00", &w, &err), -EINVAL);
        /* A control character is shown, not printed raw. */
        assert_int_equal(vp_window_parse("22:00\n06:00", &w, &err), -EINVAL);
        assert_null(strchr(err.msg, '\n'));
}

static void test_window_contains(void **state)
{
        struct vp_window w;
        assert_int_equal(vp_window_parse("22:00-06:00", &w, NULL), 0);
        assert_true(vp_window_contains(&w, at(22, 0)));     /* the start is in */
        assert_true(vp_window_contains(&w, at(23, 59)));
        assert_true(vp_window_contains(&w, at(0, 0)));      /* across midnight */
        assert_true(vp_window_contains(&w, at(5, 59)));
        assert_false(vp_window_contains(&w, at(6, 0)));     /* the end is out */
        assert_false(vp_window_contains(&w, at(12, 0)));
        assert_false(vp_window_contains(&w, at(21, 59)));
        assert_int_equal(vp_window_parse("09:15-17:45", &w, NULL), 0);
        assert_false(vp_window_contains(&w, at(9, 14)));
        assert_true(vp_window_contains(&w, at(9, 15)));
        assert_true(vp_window_contains(&w, at(17, 44)));
        assert_false(vp_window_contains(&w, at(17, 45)));
        assert_false(vp_window_contains(&w, at(0, 0)));
        assert_int_equal(vp_window_parse("18:00-24:00", &w, NULL), 0);
        assert_true(vp_window_contains(&w, at(23, 59)));
        assert_false(vp_window_contains(&w, at(0, 0)));
        assert_int_equal(vp_window_parse(NULL, &w, NULL), 0);
        for (int m = 0; m < 24 * 60; m += 7)
                assert_true(vp_window_contains(&w, m));
        /* The local minute is the local clock's: the epoch in UTC. */
        setenv("TZ", "UTC", 1);
        tzset();
        assert_int_equal(vp_local_minute(0), 0);
        assert_int_equal(vp_local_minute(3600 * 25 + 60 * 7), at(1, 7));
        setenv("TZ", "Asia/Kolkata", 1);
        tzset();
        assert_int_equal(vp_local_minute(0), at(5, 30));
        unsetenv("TZ");
        tzset();
}

static void test_wave_pick(void **state)
{
        struct vp_wave_pool pools[] = {
                { .name = "p5", .movable = true }, { .name = "p1", .movable = true }, { .name = "p3", .movable = true },
                { .name = "p2", .movable = true, .failed = true }, { .name = "p4", .movable = false },
                { .name = "p0", .movable = true },
        };
        size_t n = sizeof(pools) / sizeof(pools[0]), pick[6];
        /* By name, failed and unmovable ones left out, at most the wave. */
        assert_int_equal(vp_wave_pick(pools, n, 2, pick), 2);
        assert_string_equal(pools[pick[0]].name, "p0");
        assert_string_equal(pools[pick[1]].name, "p1");
        assert_int_equal(vp_wave_pick(pools, n, 10, pick), 4);
        assert_string_equal(pools[pick[2]].name, "p3");
        assert_string_equal(pools[pick[3]].name, "p5");
        /* Nothing new while one moves: the wave before has not ended. */
        pools[4].moving = true;
        assert_int_equal(vp_wave_pick(pools, n, 2, pick), 0);
        pools[4].moving = false;
        /* The last wave holds what is left. */
        for (size_t i = 0; i < n; i++)
                pools[i].failed = i != 2;
        assert_int_equal(vp_wave_pick(pools, n, 3, pick), 1);
        assert_string_equal(pools[pick[0]].name, "p3");
        assert_int_equal(vp_wave_pick(pools, 0, 3, pick), 0);
}

/* A catalog with envs e1, e2, e3 and profile p1. */
static struct vp_catalog *catalog_with_envs(struct vp_ctx *ctx)
{
        struct vp_error err = { 0 };
        unlink(path);
        assert_int_equal(vp_catalog_open(path, true, &ctx->cat, &err), 0);
        static const char *const names[] = { "e1", "e2", "e3" };
        for (size_t i = 0; i < 3; i++) {
                struct vp_env e = { .name = (char *)names[i], .uri = (char *)"test:///default",
                                    .created = (char *)"2026-01-01T00:00:00Z" };
                assert_int_equal(vp_row_insert(ctx->cat, &vp_table_env, &e, &err), 0);
        }
        struct vp_profile p = { .name = (char *)"p1", .machine = (char *)"pc", .disk_bus = (char *)"ide",
                                .nic = (char *)"e1000", .firmware = (char *)"bios" };
        assert_int_equal(vp_row_insert(ctx->cat, &vp_table_profile, &p, &err), 0);
        return ctx->cat;
}

static int64_t retirements(struct vp_ctx *ctx)
{
        int64_t n = -1;
        assert_int_equal(vp_row_count(ctx->cat, &vp_table_retirement, NULL, NULL, &n, NULL), 0);
        return n;
}

static void test_retire_refused(void **state)
{
        struct vp_ctx ctx = { 0 };
        struct vp_error err = { 0 };
        catalog_with_envs(&ctx);
        static const struct {
                struct vp_retire_args a;
                int code;
                const char *msg;
        } bad[] = {
                { { .env = "e1", .to = "e1", .wave = 1 }, -EINVAL, "cannot retire env 'e1' to itself" },
                { { .env = "e1", .to = "nope", .wave = 1 }, -ENOENT, "unknown env 'nope'" },
                { { .env = "nope", .to = "e2", .wave = 1 }, -ENOENT, "unknown env 'nope'" },
                { { .env = "e1", .to = "e2", .profile = "nope", .wave = 1 }, -ENOENT, "unknown profile 'nope'" },
                { { .env = "e1", .to = "e2", .window = "25:00-01:00", .wave = 1 }, -EINVAL, "invalid window" },
                { { .env = "e1", .to = "e2", .wave = 0 }, -ERANGE, "invalid wave 0" },
                { { .env = "e1", .to = "e2", .wave = VP_RETIRE_WAVE_MAX + 1 }, -ERANGE, "invalid wave 257" },
                { { .env = "../e1", .to = "e2", .wave = 1 }, -EINVAL, "env" },
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                err = (struct vp_error){ 0 };
                assert_int_equal(vp_env_retire(&ctx, &bad[i].a, &err), bad[i].code);
                assert_non_null(strstr(err.msg, bad[i].msg));
                assert_int_equal(retirements(&ctx), 0);
        }
        struct vp_retire_args ok = { .env = "e1", .to = "e2", .profile = "p1", .window = "22:00-06:00", .wave = 3 };
        assert_int_equal(vp_env_retire(&ctx, &ok, &err), 0);
        /* No chains: e2 takes e1's pools, e1 is retiring. */
        struct vp_retire_args chain = { .env = "e2", .to = "e3", .wave = 1 };
        assert_int_equal(vp_env_retire(&ctx, &chain, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "env 'e1' is retiring to env 'e2'"));
        struct vp_retire_args into = { .env = "e3", .to = "e1", .wave = 1 };
        assert_int_equal(vp_env_retire(&ctx, &into, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "env 'e1' is itself retiring"));
        assert_int_equal(retirements(&ctx), 1);
        /* Asked again: the new settings, one row, with an id of its own
         * (the daemon starts it afresh). */
        struct vp_retirement rt = { 0 };
        assert_int_equal(vp_retirement_of(&ctx, 1, &rt, &err), 0);
        int64_t first = rt.id;
        vp_row_clear(&vp_table_retirement, &rt);
        ok = (struct vp_retire_args){ .env = "e1", .to = "e3", .wave = 2, .report = true };
        assert_int_equal(vp_env_retire(&ctx, &ok, &err), 0);
        assert_int_equal(retirements(&ctx), 1);
        assert_int_equal(vp_retirement_of(&ctx, 1, &rt, &err), 0);
        assert_true(rt.id > first);
        assert_int_equal(rt.to_env_id, 3);
        assert_int_equal(rt.profile_id, 0);
        assert_string_equal(rt.time_window, "");
        assert_int_equal(rt.wave, 2);
        assert_int_equal(rt.report, 1);
        assert_string_equal(rt.state, "retiring");
        _cleanup_free_ char *label = vp_retirement_label(&ctx, &rt);
        assert_string_equal(label, "env e1 retiring to e3, window any time");
        vp_row_clear(&vp_table_retirement, &rt);
        /* Cancelled, then nothing left to cancel. */
        assert_int_equal(vp_env_unretire(&ctx, "e1", &err), 0);
        assert_int_equal(retirements(&ctx), 0);
        assert_int_equal(vp_env_unretire(&ctx, "e1", &err), -ENOENT);
        assert_string_equal(err.msg, "env 'e1' is not retiring");
        vp_catalog_close(ctx.cat);
}

static void test_on_maintenance(void **state)
{
        struct vp_ctx ctx = { 0 };
        struct vp_error err = { 0 };
        catalog_with_envs(&ctx);
        struct vp_env e = { 0 };
        assert_int_equal(vp_row_get_id(ctx.cat, &vp_table_env, 1, &e, &err), 0);
        assert_int_equal(vp_env_on_maintenance(&e), VP_ON_MAINTENANCE_DRAIN);
        vp_row_clear(&vp_table_env, &e);
        assert_int_equal(vp_env_set(&ctx, "e1", &(struct vp_env_settings){ .on_maintenance = "report" }, &err), 0);
        assert_int_equal(vp_env_set(&ctx, "e1", &(struct vp_env_settings){ .on_maintenance = "evacuate" }, &err),
                         -EINVAL);
        assert_string_equal(err.msg, "invalid --on-maintenance 'evacuate': expected one of drain, report, none");
        /* Checked with the others before any is written. */
        assert_int_equal(vp_env_set(&ctx, "e1", &(struct vp_env_settings){ .on_maintenance = "none", .grace = "0" },
                                    &err), -ERANGE);
        assert_int_equal(vp_env_set(&ctx, "e1", &(struct vp_env_settings){ 0 }, &err), -EINVAL);
        assert_string_equal(err.msg, "nothing to set for env 'e1'");
        assert_int_equal(vp_env_set(&ctx, "nope", &(struct vp_env_settings){ .on_maintenance = "none" }, &err),
                         -ENOENT);
        assert_int_equal(vp_row_get_id(ctx.cat, &vp_table_env, 1, &e, &err), 0);
        assert_int_equal(vp_env_on_maintenance(&e), VP_ON_MAINTENANCE_REPORT);
        vp_row_clear(&vp_table_env, &e);
        vp_catalog_close(ctx.cat);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_window_parse),
                cmocka_unit_test(test_window_contains),
                cmocka_unit_test(test_wave_pick),
                cmocka_unit_test(test_retire_refused),
                cmocka_unit_test(test_on_maintenance),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
