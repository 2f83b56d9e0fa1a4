/* Fence agents: the argv an operator types, and running one for real —
 * what it is told, what it says, and that only exit 0 counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fence.h"

static void split_is(const char *text, const char *want)
{
        char *json = NULL;
        struct vp_error err = { 0 };
        if (vp_fence_cmd_split(text, &json, &err) < 0)
                fail_msg("%s: %s", text, err.msg);
        assert_string_equal(json, want);
        /* What show prints splits back to the same argv. */
        char *shown = vp_fence_cmd_show(json), *again = NULL;
        assert_non_null(shown);
        assert_int_equal(vp_fence_cmd_split(shown, &again, &err), 0);
        assert_string_equal(again, json);
        free(shown);
        free(again);
        free(json);
}

static void test_split(void **state)
{
        split_is("/usr/sbin/fence_ipmilan", "[\"/usr/sbin/fence_ipmilan\"]");
        split_is("  /bin/x   -a\t--b=c  ", "[\"/bin/x\",\"-a\",\"--b=c\"]");
        split_is("/bin/x 'a b' \"c d\" e'f g'h", "[\"/bin/x\",\"a b\",\"c d\",\"ef gh\"]");
        split_is("/bin/x \"it's\" '' 'say \"hi\"'", "[\"/bin/x\",\"it's\",\"\",\"say \\\"hi\\\"\"]");
        split_is("/bin/x $HOME ;rm *", "[\"/bin/x\",\"$HOME\",\";rm\",\"*\"]");
}

static void refused(const char *text, const char *why)
{
        char *json = NULL;
        struct vp_error err = { 0 };
        assert_true(vp_fence_cmd_parse(text, &json, &err) < 0);
        assert_null(json);
        if (!strstr(err.msg, why))
                fail_msg("'%s': '%s' does not say '%s'", text, err.msg, why);
}

static void test_refused(void **state)
{
        refused("", "no program");
        refused("   ", "no program");
        refused("'' -x", "no program");
        refused("/bin/true 'open", "not closed");
        refused("/bin/true \"open", "not closed");
        refused("/bin/true\nreboot", "control characters");
        refused("true", "absolute path");
        refused("/nonexistent/agent", "No such file");
        refused("/etc/passwd", "not an executable file");
        refused("/tmp", "not an executable file");
        char many[200] = "/bin/true";
        for (int i = 0; i < VP_FENCE_ARGS_MAX; i++)
                strcat(many, " a");
        refused(many, "more than");
        char *json = NULL;
        struct vp_error err = { 0 };
        assert_int_equal(vp_fence_cmd_parse("/bin/true --ok", &json, &err), 0);
        free(json);
}

/* An agent script in a temporary directory; its path in *RET. */
static void agent(const char *body, char ret[64])
{
        snprintf(ret, 64, "/tmp/vpool-fence.XXXXXX");
        int fd = mkstemp(ret);
        assert_true(fd >= 0);
        dprintf(fd, "#!/bin/sh\n%s\n", body);
        fchmod(fd, 0755);
        close(fd);
}

static struct vp_fence run(const char *path, const char *args, int timeout)
{
        char text[256];
        snprintf(text, sizeof(text), "%s %s", path, args);
        char *json = NULL;
        struct vp_error err = { 0 };
        if (vp_fence_cmd_parse(text, &json, &err) < 0)
                fail_msg("%s", err.msg);
        struct vp_env e = { .name = (char *)"dc1", .uri = (char *)"qemu+tls://host7.example/system",
                            .fence_cmd = json };
        struct vp_fence f = { 0 };
        assert_int_equal(vp_fence_run(&e, "h1", e.uri, timeout, &f, &err), 0);
        free(json);
        return f;
}

static void fence_clear(struct vp_fence *f)
{
        free(f->method);
        free(f->command);
        free(f->output);
}

static void test_run_success_and_its_environment(void **state)
{
        char p[64];
        agent("echo \"off: $VPOOL_FENCE_ENV $VPOOL_FENCE_HOST $VPOOL_FENCE_URI [$1] [$2]\"; echo err >&2", p);
        struct vp_fence f = run(p, "--plug 'port 3'", 10);
        assert_true(f.fenced);
        assert_int_equal(f.exit_status, 0);
        assert_string_equal(f.method, "agent");
        assert_string_equal(f.output, "off: dc1 host7.example qemu+tls://host7.example/system [--plug] [port 3]\nerr");
        fence_clear(&f);
        unlink(p);
}

static void test_run_failure(void **state)
{
        char p[64];
        agent("echo 'BMC unreachable'; exit 3", p);
        struct vp_fence f = run(p, "", 10);
        assert_false(f.fenced);
        assert_int_equal(f.exit_status, 3);
        assert_string_equal(f.output, "BMC unreachable");
        fence_clear(&f);
        unlink(p);
}

/* An agent that hangs is killed with what it started, and fenced nothing. */
static void test_run_timeout(void **state)
{
        char p[64];
        agent("echo trying; sleep 30 & sleep 30", p);
        struct vp_fence f = run(p, "", 1);
        assert_false(f.fenced);
        assert_int_equal(f.exit_status, -1);
        assert_non_null(strstr(f.output, "trying"));
        assert_non_null(strstr(f.output, "no answer within 1 s"));
        fence_clear(&f);
        unlink(p);
}

static void test_run_signal_and_long_output(void **state)
{
        char p[64];
        agent("i=0; while [ $i -lt 2000 ]; do echo \"line $i\"; i=$((i+1)); done; kill -9 $$", p);
        struct vp_fence f = run(p, "", 10);
        assert_false(f.fenced);
        assert_int_equal(f.exit_status, -1);
        assert_true(strlen(f.output) <= VP_FENCE_OUTPUT_MAX);
        assert_non_null(strstr(f.output, "line 1999"));
        assert_null(strstr(f.output, "line 0\n"));
        fence_clear(&f);
        unlink(p);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_split),
                cmocka_unit_test(test_refused),
                cmocka_unit_test(test_run_success_and_its_environment),
                cmocka_unit_test(test_run_failure),
                cmocka_unit_test(test_run_timeout),
                cmocka_unit_test(test_run_signal_and_long_output),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
