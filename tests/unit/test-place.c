/* Placement's choice, on hosts built by hand: no connection, no catalog. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "place.h"

#define MIB 1024
#define GIB (1024 * 1024)

/* A placer of env 'dc' over N hosts h0, h1, ... each eligible with FREE_KIB
 * free. */
static struct vp_placer placer(struct vp_place_host *h, size_t n, enum vp_placement how, int64_t free_kib)
{
        static const char *const names[] = { "h0", "h1", "h2", "h3" };
        assert_true(n <= ELEMENTSOF(names));
        for (size_t i = 0; i < n; i++) {
                memset(&h[i], 0, sizeof(h[i]));
                h[i].host.id = (int64_t)i + 1;
                h[i].host.name = (char *)names[i];
                h[i].eligible = true;
                h[i].free_kib = free_kib;
        }
        struct vp_placer pl = { .how = how, .h = h, .n = n };
        snprintf(pl.env, sizeof(pl.env), "dc");
        return pl;
}

/* 1000 VMs that are only defined spread over 3 equal hosts within one VM
 * of even, whatever their memory against the hosts' (they need none free). */
static void test_spread_even(void **state)
{
        (void)state;
        struct vp_place_host h[3];
        struct vp_placer pl = placer(h, 3, VP_PLACE_SPREAD, 4 * GIB);
        struct vp_error err = { 0 };
        for (int i = 0; i < 1000; i++)
                assert_true(vp_place(&pl, 512 * MIB, false, &err) >= 0);
        size_t lo = 1000, hi = 0;
        for (size_t i = 0; i < 3; i++) {
                lo = h[i].placed < lo ? h[i].placed : lo;
                hi = h[i].placed > hi ? h[i].placed : hi;
        }
        assert_int_equal(h[0].placed + h[1].placed + h[2].placed, 1000);
        assert_true(hi - lo <= 1);
        assert_int_equal(h[0].running_kib, 0);
}

/* Spread weighs what is left: a host with more free memory takes more,
 * until the others have as much left. */
static void test_spread_weighs_free(void **state)
{
        (void)state;
        struct vp_place_host h[2];
        struct vp_placer pl = placer(h, 2, VP_PLACE_SPREAD, 1 * GIB);
        h[1].free_kib = 3 * GIB;
        struct vp_error err = { 0 };
        for (int i = 0; i < 4; i++)
                assert_int_equal(vp_place(&pl, 512 * MIB, false, &err), 1);
        assert_int_equal(vp_place(&pl, 512 * MIB, false, &err), 0);
        assert_int_equal(h[1].placed_kib, 2 * GIB);
}

/* Pack fills the first host with running VMs while their memory is free
 * there, then the next; VMs only defined all go to the first. */
static void test_pack_fills_first(void **state)
{
        (void)state;
        struct vp_place_host h[3];
        struct vp_placer pl = placer(h, 3, VP_PLACE_PACK, 2 * GIB);
        struct vp_error err = { 0 };
        for (int i = 0; i < 4; i++)
                assert_int_equal(vp_place(&pl, 512 * MIB, true, &err), 0);
        assert_int_equal(vp_place(&pl, 512 * MIB, true, &err), 1);
        assert_int_equal(h[0].running_kib, 2 * GIB);
        assert_int_equal(h[1].placed, 1);

        pl = placer(h, 3, VP_PLACE_PACK, 2 * GIB);
        for (int i = 0; i < 100; i++)
                assert_int_equal(vp_place(&pl, 512 * MIB, false, &err), 0);
        assert_int_equal(h[1].placed + h[2].placed, 0);
}

/* A VM that will run needs its memory free on its host: a host without
 * room is passed over, even by pack, which would take it for one only
 * defined. */
static void test_running_needs_room(void **state)
{
        (void)state;
        struct vp_place_host h[2];
        placer(h, 2, VP_PLACE_PACK, 4 * GIB);
        h[0].free_kib = 512 * MIB;
        assert_int_equal(vp_place_pick(h, 2, VP_PLACE_PACK, 1 * GIB, false), 0);
        assert_int_equal(vp_place_pick(h, 2, VP_PLACE_PACK, 1 * GIB, true), 1);
        /* Room taken by VMs placed to run counts; defined ones do not. */
        h[1].running_kib = 3 * GIB + 512 * MIB;
        assert_int_equal(vp_place_pick(h, 2, VP_PLACE_SPREAD, 1 * GIB, true), -1);
        h[1].running_kib = 3 * GIB;
        h[1].placed_kib = 100 * GIB;
        assert_int_equal(vp_place_pick(h, 2, VP_PLACE_SPREAD, 1 * GIB, true), 1);
}

/* A host that is not eligible is never picked, however much it has free. */
static void test_ineligible_never(void **state)
{
        (void)state;
        struct vp_place_host h[3];
        struct vp_placer pl = placer(h, 3, VP_PLACE_SPREAD, 10 * GIB);
        h[1].eligible = false;
        h[1].free_kib = 1000 * GIB;
        struct vp_error err = { 0 };
        for (int i = 0; i < 50; i++)
                assert_int_not_equal(vp_place(&pl, 256 * MIB, i % 2 == 0, &err), 1);
        assert_int_equal(h[1].placed, 0);
        assert_int_equal(h[0].placed + h[2].placed, 50);
        for (enum vp_placement how = 0; how < VP_PLACEMENT_MAX; how++) {
                h[0].eligible = h[2].eligible = false;
                assert_int_equal(vp_place_pick(h, 3, how, 1, false), -1);
        }
}

/* Equal hosts: the first by name (the order given) takes the VM, for
 * either weighing; the same input gives the same choice. */
static void test_ties_first(void **state)
{
        (void)state;
        struct vp_place_host h[3];
        placer(h, 3, VP_PLACE_SPREAD, 2 * GIB);
        for (enum vp_placement how = 0; how < VP_PLACEMENT_MAX; how++) {
                assert_int_equal(vp_place_pick(h, 3, how, 1 * GIB, true), 0);
                assert_int_equal(vp_place_pick(h, 3, how, 1 * GIB, true), 0);
        }
        h[0].eligible = false;
        assert_int_equal(vp_place_pick(h, 3, VP_PLACE_SPREAD, 1 * GIB, false), 1);
        assert_int_equal(vp_place_pick(h, 3, VP_PLACE_PACK, 1 * GIB, false), 1);
        assert_int_equal(vp_place_pick(h, 0, VP_PLACE_SPREAD, 1, false), -1);
}

/* Too little memory in the env as a whole: the refusal names what is
 * asked, what the usable hosts have, and how many VMs that holds. */
static void test_check_shortfall(void **state)
{
        (void)state;
        struct vp_place_host h[3];
        struct vp_placer pl = placer(h, 3, VP_PLACE_SPREAD, 2 * GIB + 512 * MIB);
        h[2].eligible = false;
        snprintf(h[2].why, sizeof(h[2].why), "host 'h2' is in maintenance");
        struct vp_error err = { 0 };
        assert_int_equal(vp_placer_check(&pl, 4, 1 * GIB, &err), 0);
        assert_int_equal(vp_placer_check(&pl, 5, 1 * GIB, &err), -ENOSPC);
        assert_string_equal(err.msg, "env 'dc' cannot hold 5 running VMs of 1024 MiB: its 2 usable hosts have "
                                     "5120 MiB free, room for 4 of them");
        h[1].eligible = false;
        assert_int_equal(vp_placer_check(&pl, 3, 1 * GIB, &err), -ENOSPC);
        assert_non_null(strstr(err.msg, "cannot hold 3 running VMs of 1024 MiB"));
        assert_non_null(strstr(err.msg, "2560 MiB free, room for 2 of them"));
        /* VMs that are only defined need no free memory. */
        assert_int_equal(vp_placer_check(&pl, 0, 100 * GIB, &err), 0);
}

/* No usable host: the refusal gives each host's reason. */
static void test_check_none_eligible(void **state)
{
        (void)state;
        struct vp_place_host h[2];
        struct vp_placer pl = placer(h, 2, VP_PLACE_SPREAD, 2 * GIB);
        h[0].eligible = h[1].eligible = false;
        snprintf(h[0].why, sizeof(h[0].why), "host 'h0' is in maintenance");
        snprintf(h[1].why, sizeof(h[1].why), "host 'h1': cannot connect to 'qemu+tls://h1/system'");
        struct vp_error err = { 0 };
        assert_int_equal(vp_placer_check(&pl, 0, 1 * GIB, &err), -EOPNOTSUPP);
        assert_string_equal(err.msg, "no host of env 'dc' can take the VMs: host 'h0' is in maintenance; "
                                     "host 'h1': cannot connect to 'qemu+tls://h1/system'");
        assert_int_equal(vp_place(&pl, 1 * GIB, false, &err), -EOPNOTSUPP);
        assert_non_null(strstr(err.msg, "host 'h0' is in maintenance"));
        pl.n = 0;
        assert_int_equal(vp_placer_check(&pl, 1, 1 * GIB, &err), -EOPNOTSUPP);
        assert_string_equal(err.msg, "no host of env 'dc' can take the VMs: it has no host");
        /* Every host's reason, however long, in one bounded message. */
        struct vp_place_host many[4];
        pl = placer(many, 4, VP_PLACE_SPREAD, 0);
        for (size_t i = 0; i < 4; i++) {
                many[i].eligible = false;
                memset(many[i].why, 'x', sizeof(many[i].why) - 1);
                many[i].why[sizeof(many[i].why) - 1] = '\0';
        }
        assert_int_equal(vp_placer_check(&pl, 0, 1, &err), -EOPNOTSUPP);
        assert_true(strlen(err.msg) < sizeof(err.msg));
}

/* The env could hold the VMs when placement began, yet the hosts filled
 * up one VM at a time: the last that does not fit is refused by name. */
static void test_place_full(void **state)
{
        (void)state;
        struct vp_place_host h[2];
        struct vp_placer pl = placer(h, 2, VP_PLACE_SPREAD, 1 * GIB + 512 * MIB);
        struct vp_error err = { 0 };
        assert_true(vp_place(&pl, 1 * GIB, true, &err) >= 0);
        assert_true(vp_place(&pl, 1 * GIB, true, &err) >= 0);
        assert_int_equal(h[0].placed, 1);
        assert_int_equal(h[1].placed, 1);
        assert_int_equal(vp_place(&pl, 1 * GIB, true, &err), -ENOSPC);
        assert_string_equal(err.msg, "no host of env 'dc' has 1024 MiB free for one more running VM");
        /* One only defined still goes. */
        assert_true(vp_place(&pl, 1 * GIB, false, &err) >= 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_spread_even),
                cmocka_unit_test(test_spread_weighs_free),
                cmocka_unit_test(test_pack_fills_first),
                cmocka_unit_test(test_running_needs_room),
                cmocka_unit_test(test_ineligible_never),
                cmocka_unit_test(test_ties_first),
                cmocka_unit_test(test_check_shortfall),
                cmocka_unit_test(test_check_none_eligible),
                cmocka_unit_test(test_place_full),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
