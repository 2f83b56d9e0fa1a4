/* A host as the operator names it: "[NAME=]URI", and the name a URI gives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

/* ARG parsed: its name (NULL for none) and URI. */
static void assert_spec(const char *arg, const char *name, const char *uri)
{
        char buf[256];
        struct vp_host_spec s;
        struct vp_error err = { 0 };
        snprintf(buf, sizeof(buf), "%s", arg);
        assert_int_equal(vp_host_spec_parse(buf, &s, &err), 0);
        if (name)
                assert_string_equal(s.name, name);
        else
                assert_null(s.name);
        assert_string_equal(s.uri, uri);
}

static void test_spec_parse(void **state)
{
        (void)state;
        assert_spec("node1=qemu+tls://h/system", "node1", "qemu+tls://h/system");
        assert_spec("qemu+tls://h/system", NULL, "qemu+tls://h/system");
        /* A '=' of the URI's query is no name: it comes after the scheme. */
        assert_spec("qemu+unix:///system?socket=/run/libvirt/a.sock", NULL,
                    "qemu+unix:///system?socket=/run/libvirt/a.sock");
        assert_spec("qemu+tls://h/system?pkipath=/etc/pki/vpool&no_verify=0", NULL,
                    "qemu+tls://h/system?pkipath=/etc/pki/vpool&no_verify=0");
        /* Named, with a query of its own: the first '=' splits. */
        assert_spec("a.b-1=qemu+unix:///system?socket=/s", "a.b-1", "qemu+unix:///system?socket=/s");
}

/* A name that fails the name check is refused, the argument left whole. */
static void test_spec_bad_name(void **state)
{
        (void)state;
        static const char *const bad[] = { "bad name=qemu:///system", "=qemu:///system", "-x=qemu:///system",
                                           "a/b=qemu:///system" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char buf[64];
                struct vp_host_spec s = { 0 };
                struct vp_error err = { 0 };
                snprintf(buf, sizeof(buf), "%s", bad[i]);
                assert_int_equal(vp_host_spec_parse(buf, &s, &err), -EINVAL);
                assert_non_null(strstr(err.msg, "invalid host name"));
                assert_string_equal(buf, bad[i]);
        }
}

/* URI's default host name, DEFAULT_NAME given when it names none. */
static void assert_default(const char *uri, const char *default_name, const char *want)
{
        char *name = NULL;
        struct vp_error err = { 0 };
        assert_int_equal(vp_host_default_name(uri, default_name, &name, &err), 0);
        assert_string_equal(name, want);
        free(name);
}

static void test_default_name(void **state)
{
        (void)state;
        assert_default("qemu+tls://node1.example.com/system", NULL, "node1.example.com");
        assert_default("qemu+ssh://root@node2/system", NULL, "node2");
        assert_default("qemu+ssh://root@node2:2222/system?keyfile=/k", NULL, "node2");
        assert_default("qemu+tls://10.0.0.5:16514/system", NULL, "10.0.0.5");
        assert_default("qemu+tls://node3", NULL, "node3");
        assert_default("qemu+tls://node4?pkipath=/p", NULL, "node4");
        /* No host part: the default, when one is given. */
        assert_default("qemu:///system", "dc1", "dc1");
        assert_default("qemu+unix:///system?socket=/run/a.sock", "dc1", "dc1");
        /* A host part is taken over the default. */
        assert_default("qemu+tls://node5/system", "dc1", "node5");
}

static void test_default_name_refused(void **state)
{
        (void)state;
        char *name = NULL;
        struct vp_error err = { 0 };
        assert_int_equal(vp_host_default_name("qemu:///system", NULL, &name, &err), -EINVAL);
        assert_string_equal(err.msg, "URI 'qemu:///system' names no host; name the host (NAME=URI or --name NAME)");
        assert_int_equal(vp_host_default_name("test:///default", NULL, &name, &err), -EINVAL);
        /* An IPv6 address is no name vpool takes (':'): the host is named. */
        assert_int_equal(vp_host_default_name("qemu+tls://[fd00::1]:16514/system", NULL, &name, &err), -EINVAL);
        assert_string_equal(err.msg, "the host part of 'qemu+tls://[fd00::1]:16514/system' is no host name vpool "
                                     "accepts; name the host (NAME=URI or --name NAME)");
        assert_int_equal(vp_host_default_name("qemu+tls://[fd00::1]/system", "dc1", &name, &err), -EINVAL);
        assert_null(name);
}

/* A peer's URI is the host's without the controller's own certificates;
 * every other parameter stays, in order. */
static void test_peer_uri(void **state)
{
        static const char *const cases[][2] = {
                { "qemu+tls://127.0.0.3/system?pkipath=/var/lib/pki/client", "qemu+tls://127.0.0.3/system" },
                { "qemu+tls://h/system?no_tty=1&pkipath=/p&keyfile=/k", "qemu+tls://h/system?no_tty=1&keyfile=/k" },
                { "qemu+unix:///system?socket=/run/h/libvirt-sock", "qemu+unix:///system?socket=/run/h/libvirt-sock" },
                { "qemu+ssh://root@h/system", "qemu+ssh://root@h/system" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char *got = vp_host_peer_uri(cases[i][0]);
                assert_string_equal(got, cases[i][1]);
                free(got);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_spec_parse),
                cmocka_unit_test(test_spec_bad_name),
                cmocka_unit_test(test_default_name),
                cmocka_unit_test(test_default_name_refused),
                cmocka_unit_test(test_peer_uri),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
