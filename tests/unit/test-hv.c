/* The hypervisor layer against libvirt's own test driver (test:///default,
 * in-process: one running domain "test"). What a real host cannot be made
 * to do on demand, answer virDomainIsActive with an error as a dropped
 * connection does, this program plays by defining virDomainIsActive
 * itself: the library's calls reach it first, and it hands every other
 * call to libvirt's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <dlfcn.h>
#include <string.h>

#include "hv.h"

static bool is_active_fails;

int virDomainIsActive(virDomainPtr dom)
{
        static int (*real)(virDomainPtr);
        if (!real) {
                /* POSIX's way to take a function from dlsym. */
                void *sym = dlsym(RTLD_NEXT, "virDomainIsActive");
                memcpy(&real, &sym, sizeof(real));
        }
        return is_active_fails ? -1 : real(dom);
}

static virConnectPtr conn;

static int setup(void **state)
{
        (void)state;
        vp_hv_init();
        conn = virConnectOpen("test:///default");
        return conn ? 0 : -1;
}

static int teardown(void **state)
{
        (void)state;
        virConnectClose(conn);
        return 0;
}

/* The test domain's own answer, bypassing the failing one. */
static bool test_domain_runs(void)
{
        is_active_fails = false;
        virDomainPtr d = virDomainLookupByName(conn, "test");
        assert_non_null(d);
        int a = virDomainIsActive(d);
        virDomainFree(d);
        return a == 1;
}

static bool test_domain_persistent(void)
{
        virDomainPtr d = virDomainLookupByName(conn, "test");
        if (!d)
                return false;
        int p = virDomainIsPersistent(d);
        virDomainFree(d);
        return p == 1;
}

/* An unknown answer is "maybe running": stop does not report a domain
 * stopped that it could not see stop. */
static void test_stop_unknown_state(void **state)
{
        (void)state;
        struct vp_error err = { 0 };
        assert_true(test_domain_runs());
        is_active_fails = true;
        assert_int_equal(vp_hv_stop(conn, "test", 0, false, &err), -EIO);
        assert_non_null(strstr(err.msg, "cannot tell whether domain 'test' runs"));
        assert_true(test_domain_runs());
}

/* Nor does undefine remove the definition of a domain that may run. */
static void test_undefine_unknown_state(void **state)
{
        (void)state;
        struct vp_error err = { 0 };
        is_active_fails = true;
        assert_int_equal(vp_hv_undefine(conn, "test", false, &err), -EIO);
        assert_non_null(strstr(err.msg, "cannot tell whether domain 'test' runs"));
        assert_true(test_domain_persistent());
        is_active_fails = true;
        assert_int_equal(vp_hv_undefine(conn, "test", true, &err), -EIO);
        assert_true(test_domain_runs());
        assert_true(test_domain_persistent());
}

/* A definite answer still works both ways. (The test driver refuses the
 * flags undefine passes, so a definite undefine is not shown here.) */
static void test_definite_answers(void **state)
{
        (void)state;
        struct vp_error err = { 0 };
        is_active_fails = false;
        assert_int_equal(vp_hv_undefine(conn, "test", false, &err), -EBUSY);
        assert_int_equal(vp_hv_stop(conn, "test", 0, true, &err), 0);
        assert_false(test_domain_runs());
        assert_int_equal(vp_hv_stop(conn, "test", 0, false, &err), 0);
}

/* QEMU's image lock failure, and only it, is told apart from other start
 * failures, whatever words ("block", "-blockdev", a name) they carry. */
static void test_image_lock_error(void **state)
{
        (void)state;
        assert_true(vp_hv_image_lock_error("internal error: qemu unexpectedly closed the monitor: "
                                           "qemu-system-x86_64: -blockdev {\"node-name\":\"libvirt-2-format\"}: "
                                           "Failed to get \"write\" lock\nIs another process using the image "
                                           "[/s/deltas/p/p-001/overlay.qcow2]?"));
        assert_false(vp_hv_image_lock_error("internal error: process exited while connecting to monitor: "
                                            "qemu-system-x86_64: -blockdev {\"driver\":\"file\"}: Could not open "
                                            "'/s/deltas/block/block-001/overlay.qcow2': Permission denied"));
        assert_false(vp_hv_image_lock_error("Cannot check QEMU binary /nonexistent: No such file or directory"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_stop_unknown_state),
                cmocka_unit_test(test_undefine_unknown_state),
                cmocka_unit_test(test_definite_answers),
                cmocka_unit_test(test_image_lock_error),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
