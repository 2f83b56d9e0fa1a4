#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "history.h"
#include "tmp-catalog.h"

static void check_join(const char *expect, int argc, char **argv, size_t max)
{
        char *s = vp_shell_join(argc, argv, max);
        assert_string_equal(s, expect);
        free(s);
}

static void test_shell_join(void **state)
{
        char *plain[] = { "vpool", "pool", "create", "p-1", "--size=3", "/var/tmp/x.qcow2" };
        check_join("vpool pool create p-1 --size=3 /var/tmp/x.qcow2", 6, plain, 4096);
        char *spaces[] = { "vpool", "image", "add", "a b", "it's", "" };
        check_join("vpool image add 'a b' 'it'\\''s' ''", 6, spaces, 4096);
        char *ctl[] = { "vpool", "vm", "start", "a\tb\x1b[2J'\\" };
        check_join("vpool vm start $'a\\x09b\\x1b[2J\\'\\\\'", 4, ctl, 4096);
        char *many[] = { "vpool", "pool", "create", "abcdefgh" };
        check_join("vpool pool ...", 4, many, 16);
}

static void check_since(const char *in, time_t now, const char *expect)
{
        char out[32];
        struct vp_error err = { 0 };
        assert_int_equal(vp_parse_since(in, now, out, &err), 0);
        assert_string_equal(out, expect);
}

static void check_bad_since(const char *in)
{
        char out[32];
        struct vp_error err = { 0 };
        assert_true(vp_parse_since(in, 0, out, &err) < 0);
        assert_non_null(strstr(err.msg, "time"));
}

static void test_since(void **state)
{
        time_t now = 1795773600; /* 2026-11-27T10:00:00Z */
        check_since("2026-11-27", now, "2026-11-27T00:00:00Z");
        check_since("2026-11-27T10:00:00", now, "2026-11-27T10:00:00Z");
        check_since("2026-11-27 09:30", now, "2026-11-27T09:30:00Z");
        check_since("2026-11-27T09:30:05Z", now, "2026-11-27T09:30:05Z");
        check_since("1h", now, "2026-11-27T09:00:00Z");
        check_since("90s", now, "2026-11-27T09:58:30Z");
        check_since("2d", now, "2026-11-25T10:00:00Z");
        check_since("1w", now, "2026-11-20T10:00:00Z");
        check_bad_since("");
        check_bad_since("yesterday");
        check_bad_since("2026-02-30");
        check_bad_since("2026-11-27T25:00");
        check_bad_since("2026-11-27T10:00:00+01:00");
        check_bad_since("-1h");
        check_bad_since("1y");
        check_bad_since("99999999999d");
}

static void add_step(struct vp_catalog *c, int64_t mig, const char *vm, const char *step, const char *at)
{
        struct vp_journal j = { .migration_id = mig, .vm_name = (char *)vm, .step = (char *)step, .generation = 2,
                                .detail = (char *)"", .at = (char *)at };
        struct vp_error err = { 0 };
        assert_int_equal(vp_row_insert(c, &vp_table_journal, &j, &err), 0);
}

static struct vp_history *command(const char *noun, const char *verb, const char *pool, int64_t mig)
{
        struct vp_history *h = calloc(1, sizeof(*h));
        vp_history_whoami(h);
        h->command = vp_strdupf("vpool %s %s %s", noun, verb, pool);
        h->noun = vp_strdup(noun);
        h->verb = vp_strdup(verb);
        h->subject = vp_strdup(pool);
        h->pool = vp_strdup(pool);
        h->vm = vp_strdup("");
        h->migration_id = mig;
        return h;
}

static void drop(struct vp_history *h)
{
        vp_row_clear(&vp_table_history, h);
        free(h);
}

static void test_merge(void **state)
{
        struct vp_catalog *c = NULL;
        struct vp_error err = { 0 };
        assert_int_equal(vp_catalog_open(path, true, &c, &err), 0);
        struct vp_migration m = { .pool_name = (char *)"p", .state = (char *)"running", .created = (char *)"x",
                                  .updated = (char *)"x" };
        /* Foreign keys: the migration row needs an env and a profile. */
        struct vp_env e = { .name = (char *)"a", .uri = (char *)"test:///default" };
        struct vp_profile p = { .name = (char *)"pr", .machine = (char *)"pc", .disk_bus = (char *)"ide",
                                .nic = (char *)"e1000" };
        assert_int_equal(vp_row_insert(c, &vp_table_env, &e, &err), 0);
        assert_int_equal(vp_row_insert(c, &vp_table_profile, &p, &err), 0);
        m.from_env_id = m.to_env_id = e.id;
        m.from_profile_id = m.to_profile_id = p.id;
        assert_int_equal(vp_row_insert(c, &vp_table_migration, &m, &err), 0);

        /* A create, a migration that dies after one step, its resume. */
        struct vp_history *create = command("pool", "create", "p", 0);
        assert_int_equal(vp_history_begin(c, create, &err), 0);
        assert_string_equal(vp_history_outcome(create), "running");
        assert_int_equal(vp_history_end(c, create, "ok", &err), 0);

        struct vp_history *start = command("migrate", "start", "p", 0);
        assert_int_equal(vp_history_begin(c, start, &err), 0);
        add_step(c, m.id, "", "allocated", "2026-11-27T10:00:01Z");
        start->migration_id = m.id;
        assert_int_equal(vp_history_update(c, start, &err), 0);
        add_step(c, m.id, "p-001", "stopping", "2026-11-27T10:00:02Z");
        /* Killed here: its row stays running, with a pid no process has. */
        pid_t child = fork();
        if (child == 0)
                _exit(0);
        waitpid(child, NULL, 0);
        start->pid = child;
        assert_int_equal(vp_history_update(c, start, &err), 0);

        struct vp_history *resume = command("migrate", "resume", "p", m.id);
        assert_int_equal(vp_history_begin(c, resume, &err), 0);
        add_step(c, m.id, "", "running", "2026-11-27T10:00:03Z");
        add_step(c, m.id, "p-001", "locked", "2026-11-27T10:00:04Z");
        add_step(c, m.id, "p-002", "error", "2026-11-27T10:00:05Z");
        assert_int_equal(vp_history_end(c, resume, "failed: partial", &err), 0);

        struct vp_history_log log;
        struct vp_history_filter all = { 0 };
        assert_int_equal(vp_history_read(c, &all, &log, &err), 0);
        static const char *const want[] = { "create", "start", "allocated", "stopping", "resume", "running", "locked", "error" };
        assert_int_equal(log.n, ELEMENTSOF(want));
        for (size_t i = 0; i < log.n; i++) {
                const struct vp_history_item *it = &log.items[i];
                assert_string_equal(it->step ? it->step->step : it->cmd->verb, want[i]);
                assert_string_equal(it->pool, "p");
        }
        /* Each step under the command that ran it. */
        assert_int_equal(log.items[2].cmd->id, start->id);
        assert_int_equal(log.items[3].cmd->id, start->id);
        assert_int_equal(log.items[6].cmd->id, resume->id);
        assert_string_equal(vp_history_outcome(log.items[1].cmd), "interrupted");
        assert_string_equal(vp_history_outcome(log.items[4].cmd), "failed: partial");
        vp_history_log_free(&log);

        struct vp_history_filter byvm = { .vm = "p-002" };
        assert_int_equal(vp_history_read(c, &byvm, &log, &err), 0);
        /* The pool's commands, the migration-wide entries and p-002's own step. */
        assert_int_equal(log.n, 6);
        assert_string_equal(log.items[5].step->step, "error");
        vp_history_log_free(&log);

        struct vp_history_filter other = { .pool = "q" };
        assert_int_equal(vp_history_read(c, &other, &log, &err), 0);
        assert_int_equal(log.n, 0);
        vp_history_log_free(&log);

        struct vp_history_filter late = { .since = "2026-11-27T10:00:04Z", .pool = "p" };
        assert_int_equal(vp_history_read(c, &late, &log, &err), 0);
        /* The commands ran now; of the steps, those from 10:00:04 on. */
        assert_int_equal(log.n, 5);
        assert_string_equal(log.items[3].step->step, "locked");
        vp_history_log_free(&log);
        struct vp_history_filter future = { .since = "2999-01-01T00:00:00Z" };
        assert_int_equal(vp_history_read(c, &future, &log, &err), 0);
        assert_int_equal(log.n, 0);
        vp_history_log_free(&log);

        drop(create);
        drop(start);
        drop(resume);
        vp_catalog_close(c);
}

/* Each command records through what it came and who: the CLI its login
 * name, the API its token's name, a policy its own; --via keeps those
 * and the steps they ran; an unknown via is refused. */
static void test_via(void **state)
{
        struct vp_catalog *c = NULL;
        struct vp_error err = { 0 };
        assert_int_equal(vp_catalog_open(path, true, &c, &err), 0);
        struct vp_history *cli = command("pool", "create", "p", 0);
        assert_string_equal(cli->via, "cli");
        assert_int_equal(vp_history_begin(c, cli, &err), 0);

        static const struct vp_actor api = { .via = VP_VIA_API, .name = "ci-bot" };
        static const struct vp_actor policy = { .via = VP_VIA_POLICY, .name = "host-failure" };
        static const struct vp_actor hostile = { .via = VP_VIA_API, .name = "a b\x1b[2J" };
        static const struct vp_actor *const actors[] = { &api, &policy, &hostile, NULL };
        struct vp_history rows[ELEMENTSOF(actors)];
        for (size_t i = 0; i < ELEMENTSOF(actors); i++) {
                struct vp_history *h = &rows[i];
                *h = (struct vp_history){ .command = vp_strdup("POST /v1/pools/p/start"), .noun = vp_strdup("pool"),
                                          .verb = vp_strdup("start"), .subject = vp_strdup("p"),
                                          .pool = vp_strdup("p"), .vm = vp_strdup("") };
                vp_history_who(h, actors[i]);
                assert_int_equal(vp_history_begin(c, h, &err), 0);
                assert_int_equal(vp_history_end(c, h, "ok", &err), 0);
        }
        assert_string_equal(rows[0].user, "ci-bot");
        assert_string_equal(rows[0].sudo_user, "");
        assert_string_equal(rows[0].via, "api");
        assert_int_equal(rows[0].pid, getpid());
        assert_string_equal(rows[1].user, "host-failure");
        assert_string_equal(rows[1].via, "policy");
        /* A name that is no plain word does not reach a terminal. */
        assert_string_equal(rows[2].user, "?");
        /* No actor: the command line's own row. */
        assert_string_equal(rows[3].user, cli->user);
        assert_string_equal(rows[3].via, "cli");

        static const struct {
                const char *via;
                size_t n;
        } want[] = { { NULL, 5 }, { "cli", 2 }, { "api", 2 }, { "policy", 1 } };
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                struct vp_history_log log;
                struct vp_history_filter f = { .via = want[i].via };
                assert_int_equal(vp_history_read(c, &f, &log, &err), 0);
                assert_int_equal(log.n, want[i].n);
                for (size_t k = 0; want[i].via && k < log.n; k++)
                        assert_string_equal(vp_via_to_string(vp_history_via(log.items[k].cmd)), want[i].via);
                vp_history_log_free(&log);
        }
        struct vp_history_log log;
        struct vp_history_filter bad = { .via = "ssh" };
        assert_int_equal(vp_history_read(c, &bad, &log, &err), -EINVAL);
        assert_string_equal(err.msg, "unknown via 'ssh' (cli, api, policy)");

        /* A row without via (written before schema 6) reads as cli. */
        free(cli->via);
        cli->via = NULL;
        assert_int_equal(vp_history_update(c, cli, &err), 0);
        struct vp_history_filter bycli = { .via = "cli" };
        assert_int_equal(vp_history_read(c, &bycli, &log, &err), 0);
        assert_int_equal(log.n, 2);
        assert_int_equal(log.items[0].cmd->id, cli->id);
        vp_history_log_free(&log);

        /* A name that fills its array, no NUL: read within it, cut to fit. */
        struct vp_actor *full = malloc(sizeof(*full));
        full->via = VP_VIA_API;
        memset(full->name, 'a', sizeof(full->name));
        struct vp_history fh = { 0 };
        vp_history_who(&fh, full);
        assert_int_equal(strlen(fh.user), sizeof(full->name) - 1);
        assert_int_equal(strspn(fh.user, "a"), sizeof(full->name) - 1);
        vp_row_clear(&vp_table_history, &fh);
        free(full);

        for (size_t i = 0; i < ELEMENTSOF(actors); i++)
                vp_row_clear(&vp_table_history, &rows[i]);
        drop(cli);
        vp_catalog_close(c);
}

/* The steps of the daemon's moves go under the job that ran them: a
 * migration (noun "migration"), a host's drain of several pools (noun
 * "host", or "env host" from the command line), as the CLI's own do. */
static void test_daemon_steps(void **state)
{
        struct vp_catalog *c = NULL;
        struct vp_error err = { 0 };
        assert_int_equal(vp_catalog_open(path, true, &c, &err), 0);
        struct vp_env e = { .name = (char *)"a", .uri = (char *)"test:///default" };
        struct vp_profile p = { .name = (char *)"pr", .machine = (char *)"pc", .disk_bus = (char *)"ide",
                                .nic = (char *)"e1000" };
        assert_int_equal(vp_row_insert(c, &vp_table_env, &e, &err), 0);
        assert_int_equal(vp_row_insert(c, &vp_table_profile, &p, &err), 0);
        struct vp_migration m[3];
        static const char *const pools[] = { "p", "q", "r" };
        for (size_t i = 0; i < 3; i++) {
                m[i] = (struct vp_migration){ .pool_name = (char *)pools[i], .state = (char *)"done",
                                              .created = (char *)"x", .updated = (char *)"x", .from_env_id = e.id,
                                              .to_env_id = e.id, .from_profile_id = p.id, .to_profile_id = p.id };
                assert_int_equal(vp_row_insert(c, &vp_table_migration, &m[i], &err), 0);
        }
        /* A job of the API or a policy migrating p. */
        struct vp_history *job = command("migration", "start", "p", m[0].id);
        assert_int_equal(vp_history_begin(c, job, &err), 0);
        add_step(c, m[0].id, "p-001", "done", "2026-11-27T10:00:01Z");
        assert_int_equal(vp_history_end(c, job, "ok", &err), 0);
        /* A policy's drain of host h1, pools q then r: it names the last. */
        struct vp_history *drain = command("host", "drain", "", 0);
        assert_int_equal(vp_history_begin(c, drain, &err), 0);
        add_step(c, m[1].id, "q-001", "done", "2026-11-27T10:00:02Z");
        drain->migration_id = m[2].id;
        assert_int_equal(vp_history_update(c, drain, &err), 0);
        add_step(c, m[2].id, "r-001", "done", "2026-11-27T10:00:03Z");
        assert_int_equal(vp_history_end(c, drain, "ok", &err), 0);
        /* The command line's drain of a host, pool r again. */
        struct vp_history *cli = command("env host", "drain", "", 0);
        assert_int_equal(vp_history_begin(c, cli, &err), 0);
        add_step(c, m[2].id, "r-001", "done", "2026-11-27T10:00:04Z");
        assert_int_equal(vp_history_end(c, cli, "ok", &err), 0);

        struct vp_history_log log;
        struct vp_history_filter all = { 0 };
        assert_int_equal(vp_history_read(c, &all, &log, &err), 0);
        int64_t want[] = { job->id, drain->id, drain->id, cli->id };
        size_t k = 0;
        for (size_t i = 0; i < log.n; i++) {
                if (!log.items[i].step)
                        continue;
                assert_true(k < ELEMENTSOF(want));
                assert_non_null(log.items[i].cmd);
                assert_int_equal(log.items[i].cmd->id, want[k++]);
        }
        assert_int_equal(k, ELEMENTSOF(want));
        vp_history_log_free(&log);
        drop(job);
        drop(drain);
        drop(cli);
        vp_catalog_close(c);
}

/* A catalog made before the history table existed gets it on open. */
static void test_old_catalog(void **state)
{
        struct vp_catalog *c = NULL;
        struct vp_error err = { 0 };
        assert_int_equal(vp_catalog_open(path, true, &c, &err), 0);
        vp_catalog_close(c);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "sqlite3 '%s' 'DROP INDEX history_at; DROP TABLE history;'", path);
        assert_int_equal(system(cmd), 0);
        c = NULL;
        assert_int_equal(vp_catalog_open(path, false, &c, &err), 0);
        assert_true(vp_catalog_has_table(c, "history"));
        struct vp_history *h = command("image", "add", "gold", 0);
        assert_int_equal(vp_history_begin(c, h, &err), 0);
        drop(h);
        vp_catalog_close(c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_shell_join),
                cmocka_unit_test(test_since),
                cmocka_unit_test_setup_teardown(test_merge, setup, teardown),
                cmocka_unit_test_setup_teardown(test_via, setup, teardown),
                cmocka_unit_test_setup_teardown(test_daemon_steps, setup, teardown),
                cmocka_unit_test_setup_teardown(test_old_catalog, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
