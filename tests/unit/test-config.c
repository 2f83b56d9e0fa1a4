#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "core.h"

#define F "/etc/vpool/vpool.conf"

static int parse(struct vp_config *c, const char *text, struct vp_error *err)
{
        return vp_config_parse(c, F, text, strlen(text), err);
}

/* TEXT is refused with exactly MSG, and C keeps its defaults. */
static void refused(const char *text, const char *msg)
{
        struct vp_config c;
        struct vp_error err = { 0 };
        vp_config_init(&c);
        int r = parse(&c, text, &err);
        if (r >= 0)
                fail_msg("accepted: %s", text);
        if (!streq(err.msg, msg))
                fail_msg("for %s\n got: %s\nwant: %s", text, err.msg, msg);
        assert_int_equal(c.parallel, VP_CONF_DEFAULT_PARALLEL);
        assert_int_equal(c.shutdown_timeout, VP_CONF_DEFAULT_SHUTDOWN_TIMEOUT);
        assert_string_equal(c.v[VP_CONF_CATALOG].text, VP_DEFAULT_CATALOG);
        assert_int_equal(c.v[VP_CONF_CATALOG].origin, VP_CONF_DEFAULT);
        assert_null(c.v[VP_CONF_PROFILE].text);
        assert_null(c.path);
        assert_false(c.file_found);
        vp_config_free(&c);
}

static void test_defaults(void **state)
{
        (void)state;
        struct vp_config c;
        char b[128];
        vp_config_init(&c);
        assert_string_equal(c.v[VP_CONF_CATALOG].text, VP_DEFAULT_CATALOG);
        assert_null(c.v[VP_CONF_STORAGE].text);
        assert_null(c.v[VP_CONF_PROFILE].text);
        assert_string_equal(c.v[VP_CONF_PARALLEL].text, "8");
        assert_string_equal(c.v[VP_CONF_SHUTDOWN_TIMEOUT].text, "120");
        assert_int_equal(c.parallel, 8);
        assert_int_equal(c.shutdown_timeout, 120);
        for (int k = 0; k < VP_CONF_KEY_MAX; k++)
                assert_string_equal(vp_config_origin_text(&c, k, b, sizeof(b)), "default");
        vp_config_free(&c);
}

static void test_names(void **state)
{
        (void)state;
        assert_string_equal(vp_config_key_name(VP_CONF_SHUTDOWN_TIMEOUT), "shutdown_timeout");
        assert_string_equal(vp_config_env_name(VP_CONF_SHUTDOWN_TIMEOUT), "VPOOL_SHUTDOWN_TIMEOUT");
        assert_string_equal(vp_config_option_name(VP_CONF_SHUTDOWN_TIMEOUT), "--shutdown-timeout");
        assert_string_equal(vp_config_env_name(VP_CONF_CATALOG), "VPOOL_CATALOG");
        assert_string_equal(vp_config_env_name(VP_CONF_STORAGE), "VPOOL_STORAGE");
        assert_string_equal(vp_config_env_name(VP_CONF_PARALLEL), "VPOOL_PARALLEL");
        assert_string_equal(vp_config_env_name(VP_CONF_PROFILE), "VPOOL_PROFILE");
}

static void test_parse_all_keys(void **state)
{
        (void)state;
        struct vp_config c;
        struct vp_error err = { 0 };
        char b[128];
        vp_config_init(&c);
        int r = parse(&c,
                      "# vpool settings\n"
                      "\n"
                      "catalog = /srv/vpool/catalog.db\n"
                      "   storage=/mnt/shared/vpool   \n"
                      "\t# indented comment\n"
                      "parallel =4\n"
                      "shutdown_timeout= 0\r\n"
                      "profile = q35-virtio\n"
                      "   \t  \n"
                      "source_grace = 5\n"
                      "fence_timeout=90\n"
                      "listen = unix:/run/v.sock, https://[::1]:8443\n"
                      "tls_cert = /etc/vpool/cert.pem\n"
                      "tls_key = /etc/vpool/key.pem\n"
                      "rate_limit = 50\n"
                      "console = /srv/vpool/console\n"

                      "policy_interval = 3\n"
                      "leader_interval = 7\n"
                      "advertise = https://ctl1.example.org:8443\n",
                      &err);
        if (r < 0)
                fail_msg("%s", err.msg);
        assert_true(c.file_found);
        assert_string_equal(c.path, F);
        assert_string_equal(c.v[VP_CONF_CATALOG].text, "/srv/vpool/catalog.db");
        assert_string_equal(c.v[VP_CONF_STORAGE].text, "/mnt/shared/vpool");
        assert_string_equal(c.v[VP_CONF_PROFILE].text, "q35-virtio");
        assert_int_equal(c.parallel, 4);
        assert_int_equal(c.shutdown_timeout, 0);
        assert_int_equal(c.v[VP_CONF_CATALOG].line, 3);
        assert_int_equal(c.v[VP_CONF_STORAGE].line, 4);
        assert_int_equal(c.v[VP_CONF_PARALLEL].line, 6);
        assert_int_equal(c.v[VP_CONF_SHUTDOWN_TIMEOUT].line, 7);
        assert_int_equal(c.v[VP_CONF_PROFILE].line, 8);
        assert_int_equal(c.source_grace, 5);
        assert_int_equal(c.fence_timeout, 90);
        assert_string_equal(c.v[VP_CONF_LISTEN].text, "unix:/run/v.sock, https://[::1]:8443");
        assert_string_equal(c.v[VP_CONF_TLS_KEY].text, "/etc/vpool/key.pem");
        assert_int_equal(c.rate_limit, 50);
        assert_string_equal(c.v[VP_CONF_CONSOLE].text, "/srv/vpool/console");
        assert_int_equal(c.policy_interval, 3);
        assert_int_equal(c.leader_interval, 7);
        assert_string_equal(c.v[VP_CONF_ADVERTISE].text, "https://ctl1.example.org:8443");
        for (int k = 0; k < VP_CONF_KEY_MAX; k++)
                assert_int_equal(c.v[k].origin, VP_CONF_FILE);
        assert_string_equal(vp_config_origin_text(&c, VP_CONF_PARALLEL, b, sizeof(b)), F ":6");
        vp_config_free(&c);
}

static void test_parse_empty_and_partial(void **state)
{
        (void)state;
        struct vp_config c;
        struct vp_error err = { 0 };
        vp_config_init(&c);
        assert_int_equal(parse(&c, "", &err), 0);
        assert_true(c.file_found);
        assert_int_equal(c.parallel, 8);
        /* No newline at the end of the last line. */
        assert_int_equal(parse(&c, "# only parallel\nparallel = 16", &err), 0);
        assert_int_equal(c.parallel, 16);
        assert_int_equal(c.v[VP_CONF_PARALLEL].line, 2);
        assert_int_equal(c.v[VP_CONF_SHUTDOWN_TIMEOUT].origin, VP_CONF_DEFAULT);
        assert_int_equal(c.v[VP_CONF_CATALOG].origin, VP_CONF_DEFAULT);
        vp_config_free(&c);
}

static void test_parse_refused(void **state)
{
        (void)state;
        refused("paralel = 4\n", F ":1: unknown key 'paralel'");
        refused("# c\n\nparallel 4\n", F ":3: expected 'key = value', got 'parallel 4'");
        refused("parallel = 4 # four\n",
                F ":1: invalid parallelism '4 # four': expected a whole number");
        refused("parallel = abc\n", F ":1: invalid parallelism 'abc': expected a whole number");
        refused("parallel = 0\n", F ":1: parallelism '0' is out of range: must be between 1 and 256");
        refused("parallel = -3\n", F ":1: invalid parallelism '-3': expected a whole number");
        refused("parallel = 257\n", F ":1: parallelism '257' is out of range: must be between 1 and 256");
        refused("parallel = 99999999999999999999999\n",
                F ":1: parallelism '99999999999999999999999' is out of range: must be between 1 and 256");
        refused("shutdown_timeout = 86401\n",
                F ":1: shutdown timeout '86401' is out of range: must be between 0 and 86400");
        refused("parallel =\n", F ":1: empty value for 'parallel'");
        refused("= 4\n", F ":1: missing key before '='");
        refused("parallel = 2\nparallel = 3\n", F ":2: key 'parallel' is set twice (first on line 1)");
        refused("profile = ../etc\n",
                F ":1: invalid profile name '../etc': must be 1-63 characters of A-Z a-z 0-9 _ . - "
                "starting with a letter or digit");
        refused("catalog = catalog.db\n", F ":1: catalog path 'catalog.db' must be an absolute path");
        refused("storage = srv/vpool\n", F ":1: storage root 'srv/vpool' must be an absolute path");
        refused("PARALLEL = 4\n", F ":1: unknown key 'PARALLEL'");
        refused("leader_interval = 0\n", F ":1: leader interval '0' is out of range: must be between 1 and 3600");
        refused("advertise = https://a b\n", F ":1: the advertised address must be one word of printable ASCII");
        refused("[vpool]\n", F ":1: expected 'key = value', got '[vpool]'");
        /* All or nothing: a good line before a bad one is not applied. */
        refused("parallel = 4\ncatalog = /x.db\nbogus\n", F ":3: expected 'key = value', got 'bogus'");
}

static void test_parse_hostile_bytes(void **state)
{
        (void)state;
        struct vp_config c;
        struct vp_error err = { 0 };
        vp_config_init(&c);
        static const char nul[] = "parallel = 4\nprofile = a\0b\n";
        assert_true(vp_config_parse(&c, F, nul, sizeof(nul) - 1, &err) < 0);
        assert_string_equal(err.msg, F ":2: NUL byte in line");
        assert_int_equal(c.parallel, 8);

        /* An escape sequence is shown escaped, never sent to the terminal. */
        assert_true(parse(&c, "\033[2Jx = 1\n", &err) < 0);
        assert_null(strchr(err.msg, '\033'));
        assert_non_null(strstr(err.msg, F ":1: unknown key '"));

        assert_true(parse(&c, "storage = /a\tb\n", &err) < 0);
        assert_non_null(strstr(err.msg, "control characters"));

        size_t n = VP_CONF_MAX_LINE + 100;
        char *big = vp_xcalloc(1, n + 1);
        memset(big, 'a', n);
        assert_true(parse(&c, big, &err) < 0);
        assert_string_equal(err.msg, F ":1: line is longer than 4096 bytes");
        free(big);
        vp_config_free(&c);
}

static const char *fake_env(const char *name)
{
        if (streq(name, "VPOOL_PARALLEL"))
                return "3";
        if (streq(name, "VPOOL_PROFILE"))
                return "pc-ide";
        if (streq(name, "VPOOL_STORAGE"))
                return "";
        return NULL;
}

static const char *bad_env(const char *name)
{
        if (streq(name, "VPOOL_SHUTDOWN_TIMEOUT"))
                return "soon";
        if (streq(name, "VPOOL_PARALLEL"))
                return "5";
        return NULL;
}

static void test_precedence(void **state)
{
        (void)state;
        struct vp_config c;
        struct vp_error err = { 0 };
        char b[128];
        vp_config_init(&c);
        assert_int_equal(parse(&c, "parallel = 4\nshutdown_timeout = 30\nprofile = q35\nstorage = /srv/s\n", &err), 0);
        /* The environment over the file; an empty variable is unset. */
        assert_int_equal(vp_config_load_env(&c, fake_env, &err), 0);
        assert_int_equal(c.parallel, 3);
        assert_string_equal(vp_config_origin_text(&c, VP_CONF_PARALLEL, b, sizeof(b)), "environment VPOOL_PARALLEL");
        assert_string_equal(c.v[VP_CONF_PROFILE].text, "pc-ide");
        assert_int_equal(c.shutdown_timeout, 30);
        assert_string_equal(vp_config_origin_text(&c, VP_CONF_SHUTDOWN_TIMEOUT, b, sizeof(b)), F ":2");
        assert_string_equal(c.v[VP_CONF_STORAGE].text, "/srv/s");
        assert_string_equal(vp_config_origin_text(&c, VP_CONF_CATALOG, b, sizeof(b)), "default");
        /* The command line over both; relative paths are fine there. */
        assert_int_equal(vp_config_set(&c, VP_CONF_PARALLEL, "2", VP_CONF_CMDLINE, 0, &err), 0);
        assert_int_equal(vp_config_set(&c, VP_CONF_CATALOG, "cat.db", VP_CONF_CMDLINE, 0, &err), 0);
        assert_int_equal(c.parallel, 2);
        assert_string_equal(vp_config_origin_text(&c, VP_CONF_PARALLEL, b, sizeof(b)), "command line");
        assert_string_equal(c.v[VP_CONF_CATALOG].text, "cat.db");
        /* A bad command-line value leaves the previous one. */
        assert_true(vp_config_set(&c, VP_CONF_PARALLEL, "0", VP_CONF_CMDLINE, 0, &err) < 0);
        assert_int_equal(c.parallel, 2);
        vp_config_free(&c);

        /* A bad variable names itself, and none of the environment applies. */
        vp_config_init(&c);
        assert_true(vp_config_load_env(&c, bad_env, &err) < 0);
        assert_string_equal(err.msg, "environment variable VPOOL_SHUTDOWN_TIMEOUT: invalid shutdown timeout 'soon': "
                                     "expected a whole number");
        assert_int_equal(c.parallel, 8);
        assert_int_equal(c.v[VP_CONF_PARALLEL].origin, VP_CONF_DEFAULT);
        vp_config_free(&c);
}

static void test_load_file(void **state)
{
        (void)state;
        char dir[] = "/tmp/vp-config-XXXXXX";
        assert_non_null(mkdtemp(dir));
        char *path = vp_strdupf("%s/vpool.conf", dir);
        struct vp_config c;
        struct vp_error err = { 0 };

        /* Missing: fine unless the user named the file. */
        vp_config_init(&c);
        assert_int_equal(vp_config_load(&c, path, false, &err), 0);
        assert_false(c.file_found);
        assert_string_equal(c.path, path);
        assert_true(vp_config_load(&c, path, true, &err) < 0);
        assert_non_null(strstr(err.msg, "cannot read configuration file"));
        assert_non_null(strstr(err.msg, "No such file"));

        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        static const char text[] = "# test\nparallel = 12\n";
        assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
        close(fd);
        assert_int_equal(vp_config_load(&c, path, true, &err), 0);
        assert_true(c.file_found);
        assert_int_equal(c.parallel, 12);
        assert_int_equal(c.v[VP_CONF_PARALLEL].line, 2);
        vp_config_free(&c);

        /* A directory, and a file too large to be a configuration. */
        vp_config_init(&c);
        assert_int_equal(vp_config_load(&c, dir, true, &err), -EISDIR);
        fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        assert_true(fd >= 0);
        char *big = vp_xcalloc(1, VP_CONF_MAX_SIZE + 1);
        memset(big, '\n', VP_CONF_MAX_SIZE + 1);
        assert_int_equal(write(fd, big, VP_CONF_MAX_SIZE + 1), VP_CONF_MAX_SIZE + 1);
        close(fd);
        free(big);
        assert_int_equal(vp_config_load(&c, path, false, &err), -EFBIG);
        assert_int_equal(c.parallel, 8);
        vp_config_free(&c);

        unlink(path);
        rmdir(dir);
        free(path);
}

/* The shipped etc/vpool.conf parses as it is, and with every setting
 * uncommented it states the built-in defaults. */
static void test_shipped_file(void **state)
{
        (void)state;
        const char *top = getenv("VP_SOURCE_ROOT");
        assert_non_null(top);
        char *path = vp_strdupf("%s/etc/vpool.conf", top);
        struct vp_config c;
        struct vp_error err = { 0 };
        vp_config_init(&c);
        if (vp_config_load(&c, path, true, &err) < 0)
                fail_msg("%s", err.msg);
        for (int k = 0; k < VP_CONF_KEY_MAX; k++)
                assert_int_equal(c.v[k].origin, VP_CONF_DEFAULT);

        FILE *f = fopen(path, "re");
        assert_non_null(f);
        char *text = vp_xcalloc(1, VP_CONF_MAX_SIZE);
        size_t len = 0;
        char line[512];
        int uncommented = 0;
        while (fgets(line, sizeof(line), f)) {
                /* "#key = value" is a setting; "# words" is prose. */
                const char *l = line;
                if (line[0] == '#' && line[1] >= 'a' && line[1] <= 'z') {
                        l = line + 1;
                        uncommented++;
                }
                size_t n = strlen(l);
                assert_true(len + n < VP_CONF_MAX_SIZE);
                memcpy(text + len, l, n);
                len += n;
        }
        fclose(f);
        assert_int_equal(uncommented, VP_CONF_KEY_MAX);
        if (vp_config_parse(&c, path, text, len, &err) < 0)
                fail_msg("%s", err.msg);
        assert_string_equal(c.v[VP_CONF_CATALOG].text, VP_DEFAULT_CATALOG);
        assert_int_equal(c.parallel, VP_CONF_DEFAULT_PARALLEL);
        assert_int_equal(c.shutdown_timeout, VP_CONF_DEFAULT_SHUTDOWN_TIMEOUT);
        assert_int_equal(c.source_grace, VP_CONF_DEFAULT_SOURCE_GRACE);
        assert_int_equal(c.fence_timeout, VP_CONF_DEFAULT_FENCE_TIMEOUT);
        assert_string_equal(c.v[VP_CONF_LISTEN].text, VP_DEFAULT_LISTEN);
        assert_int_equal(c.rate_limit, VP_CONF_DEFAULT_RATE_LIMIT);
        assert_int_equal(c.policy_interval, VP_CONF_DEFAULT_POLICY_INTERVAL);
        for (int k = 0; k < VP_CONF_KEY_MAX; k++)
                assert_int_equal(c.v[k].origin, VP_CONF_FILE);
        free(text);
        free(path);
        vp_config_free(&c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_parse_all_keys),
                cmocka_unit_test(test_parse_empty_and_partial),
                cmocka_unit_test(test_parse_refused),
                cmocka_unit_test(test_parse_hostile_bytes),
                cmocka_unit_test(test_precedence),
                cmocka_unit_test(test_load_file),
                cmocka_unit_test(test_shipped_file),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
