/* vpool history, and the recording of every command that changes something. */
#include "cli.h"

#include <string.h>

#include "name.h"

static int history_run(struct vp_cli *cli, const struct cli_args *a);

static const struct cli_verb history_verb = {
        .name = "history", .fn = history_run, .usage = "[--pool POOL] [--vm VM] [--since TIME]",
        .help = "Every change vpool made, oldest first: when, who (login name, and the sudo user behind\n"
                "root), the command as typed and how it ended (ok, failed: why, running, or interrupted\n"
                "when its process is gone). Each migration step of each VM, from the journal, appears\n"
                "under the command that ran it. --pool and --vm keep what concerns that pool or VM\n"
                "(a VM's own commands and steps, and the commands on its whole pool). TIME is a date\n"
                "(2026-11-27) or date and time (2026-11-27T10:00:00) in UTC, or an age (30m, 2h, 1d, 1w).\n"
                "Read-only verbs (list, show, status, fsck without --repair) are not recorded.",
        .opts = CLI_OPTS(CLI_VALUE("pool"), CLI_VALUE("vm"), CLI_VALUE("since")),
};

const struct cli_noun cli_noun_history = {
        .name = "history", .help = "who changed what, when, and how it ended", .self = &history_verb,
};

int cli_history_start(struct vp_cli *cli)
{
        struct vp_error err = { 0 };
        struct vp_history *h = &cli->hrow;
        int k = vp_catalog_open(cli->catalog, false, &cli->hist, &err);
        if (k >= 0) {
                vp_history_whoami(h);
                /* The program by its name, not by the path it was run from. */
                char **words = vp_xcalloc((size_t)cli->argc + 1, sizeof(char *));
                words[0] = (char *)"vpool";
                for (int i = 1; i < cli->argc; i++)
                        words[i] = cli->argv[i];
                h->command = vp_shell_join(cli->argc, words, 4096);
                free(words);
                h->noun = vp_strdup(cli->noun ? cli->noun : "");
                h->verb = vp_strdup(cli->verb ? cli->verb : "");
                /* Only a valid name is kept as the subject: anything else stays in the quoted command. */
                const char *s = cli->subject && vp_name_check("name", cli->subject, NULL) >= 0 ? cli->subject : "";
                h->subject = vp_strdup(s);
                const char *pool = "", *vm = "";
                struct vp_vm v = { 0 };
                struct vp_pool p = { 0 };
                struct vp_migration m = { 0 };
                if (*s && streq(h->noun, "pool")) {
                        pool = s;
                } else if (*s && streq(h->noun, "vm")) {
                        vm = s;
                        if (vp_row_get(cli->hist, &vp_table_vm, "name", s, &v, NULL) >= 0 &&
                            vp_row_get_id(cli->hist, &vp_table_pool, v.pool_id, &p, NULL) >= 0)
                                pool = p.name;
                } else if (*s && streq(h->noun, "migrate")) {
                        if (streq(h->verb, "start")) {
                                pool = s;
                        } else if (strspn(s, "0123456789") == strlen(s) && strlen(s) < 18) {
                                h->migration_id = strtoll(s, NULL, 10);
                                if (vp_row_get_id(cli->hist, &vp_table_migration, h->migration_id, &m, NULL) >= 0)
                                        pool = m.pool_name;
                        }
                }
                h->pool = vp_strdup(pool);
                h->vm = vp_strdup(vm);
                vp_row_clear(&vp_table_vm, &v);
                vp_row_clear(&vp_table_pool, &p);
                vp_row_clear(&vp_table_migration, &m);
                k = vp_history_begin(cli->hist, h, &err);
        }
        if (k < 0) {
                vp_err_prefix(&err, "cannot record the command in the history: ");
                if (cli->hist)
                        vp_catalog_close(cli->hist);
                cli->hist = NULL;
                vp_row_clear(&vp_table_history, h);
                return cli_fail(&err);
        }
        return 0;
}

void cli_history_migration(struct vp_cli *cli, int64_t id)
{
        if (!cli->hist || cli->hrow.migration_id)
                return;
        cli->hrow.migration_id = id;
        /* The journal names the migration too; a missed link costs only the
         * step-to-command attribution, which then goes by the pool. */
        vp_history_update(cli->hist, &cli->hrow, NULL);
}

void cli_history_finish(struct vp_cli *cli, int rc)
{
        if (!cli->hist)
                return;
        _cleanup_free_ char *outcome = NULL;
        if (rc == 0)
                outcome = vp_strdup("ok");
        else if (*cli_last_failure())
                outcome = vp_strdupf("failed: %s", cli_last_failure());
        else
                outcome = vp_strdupf("failed: exit code %d", rc);
        struct vp_error err = { 0 };
        if (vp_history_end(cli->hist, &cli->hrow, outcome, &err) < 0)
                fprintf(stderr, "vpool: cannot record the outcome in the history: %s\n", err.msg);
        vp_row_clear(&vp_table_history, &cli->hrow);
        vp_catalog_close(cli->hist);
        cli->hist = NULL;
}

/* ---- vpool history ------------------------------------------------------- */

static struct json_object *str_or_null(const char *s)
{
        return s && *s ? json_object_new_string(s) : NULL;
}

static char *step_outcome(const struct vp_journal *j)
{
        return streq(j->step, "error") ? vp_strdupf("failed: %s", j->detail) : vp_strdup("ok");
}

static struct json_object *item_json(const struct vp_history_item *it)
{
        struct json_object *o = json_object_new_object();
        const struct vp_history *h = it->cmd;
        if (!it->step) {
                json_object_object_add(o, "type", json_object_new_string("command"));
                json_object_object_add(o, "id", json_object_new_int64(h->id));
                json_object_object_add(o, "at", json_object_new_string(h->at));
                json_object_object_add(o, "ended", str_or_null(h->ended));
                json_object_object_add(o, "user", json_object_new_string(h->user));
                json_object_object_add(o, "sudo_user", str_or_null(h->sudo_user));
                json_object_object_add(o, "host", json_object_new_string(h->host));
                json_object_object_add(o, "pid", json_object_new_int64(h->pid));
                json_object_object_add(o, "command", json_object_new_string(h->command));
                json_object_object_add(o, "noun", json_object_new_string(h->noun));
                json_object_object_add(o, "verb", str_or_null(h->verb));
                json_object_object_add(o, "subject", str_or_null(h->subject));
                json_object_object_add(o, "pool", str_or_null(h->pool));
                json_object_object_add(o, "vm", str_or_null(h->vm));
                json_object_object_add(o, "migration", h->migration_id ? json_object_new_int64(h->migration_id) : NULL);
                json_object_object_add(o, "outcome", json_object_new_string(vp_history_outcome(h)));
                return o;
        }
        const struct vp_journal *j = it->step;
        _cleanup_free_ char *outcome = step_outcome(j);
        json_object_object_add(o, "type", json_object_new_string("step"));
        json_object_object_add(o, "journal_id", json_object_new_int64(j->id));
        json_object_object_add(o, "at", json_object_new_string(j->at));
        json_object_object_add(o, "migration", json_object_new_int64(j->migration_id));
        json_object_object_add(o, "pool", str_or_null(it->pool));
        json_object_object_add(o, "vm", str_or_null(j->vm_name));
        json_object_object_add(o, "step", json_object_new_string(j->step));
        json_object_object_add(o, "generation", json_object_new_int64(j->generation));
        json_object_object_add(o, "detail", str_or_null(j->detail));
        json_object_object_add(o, "outcome", json_object_new_string(outcome));
        json_object_object_add(o, "command_id", h ? json_object_new_int64(h->id) : NULL);
        json_object_object_add(o, "user", h ? json_object_new_string(h->user) : NULL);
        json_object_object_add(o, "sudo_user", h ? str_or_null(h->sudo_user) : NULL);
        json_object_object_add(o, "command", h ? json_object_new_string(h->command) : NULL);
        return o;
}

static char *who(const struct vp_history *h)
{
        if (!h)
                return vp_strdup("-");
        if (*h->sudo_user && !streq(h->sudo_user, h->user))
                return vp_strdupf("%s as %s", h->sudo_user, h->user);
        return vp_strdup(h->user);
}

static void print_text(const struct vp_history_log *log)
{
        size_t uw = strlen("USER");
        for (size_t i = 0; i < log->n; i++) {
                _cleanup_free_ char *u = who(log->items[i].cmd);
                if (strlen(u) > uw)
                        uw = strlen(u);
        }
        /* TIME is 20 wide, OUTCOME 11 ("interrupted"). */
        int indent = 20 + 2 + (int)uw + 2 + 11 + 2;
        printf("%-20s  %-*s  %-11s  %s\n", "TIME", (int)uw, "USER", "OUTCOME", "COMMAND");
        for (size_t i = 0; i < log->n; i++) {
                const struct vp_history_item *it = &log->items[i];
                _cleanup_free_ char *u = who(it->cmd);
                if (!it->step) {
                        const char *out = vp_history_outcome(it->cmd);
                        bool failed = strncmp(out, "failed: ", 8) == 0;
                        printf("%-20s  %-*s  %-11s  %s\n", it->cmd->at, (int)uw, u, failed ? "failed" : out,
                               it->cmd->command);
                        if (failed)
                                printf("%*s  error: %s\n", indent, "", out + 8);
                        continue;
                }
                const struct vp_journal *j = it->step;
                bool failed = streq(j->step, "error");
                printf("%-20s  %-*s  %-11s    migration %lld", j->at, (int)uw, u, failed ? "failed" : "",
                       (long long)j->migration_id);
                if (!*j->vm_name)
                        printf(": pool %s %s\n", it->pool, j->step);
                else if (failed)
                        printf(": %s: %s\n", j->vm_name, j->detail);
                else
                        printf(": %s %s, generation %lld\n", j->vm_name, j->step, (long long)j->generation);
        }
}

static int history_run(struct vp_cli *cli, const struct cli_args *a)
{
        const char *pool = cli_opt(a, "pool"), *vm = cli_opt(a, "vm"), *since = cli_opt(a, "since");
        struct vp_error err = { 0 };
        char when[32];
        if ((pool && vp_name_check("pool", pool, &err) < 0) || (vm && vp_name_check("vm", vm, &err) < 0) ||
            (since && vp_parse_since(since, time(NULL), when, &err) < 0))
                return cli_fail(&err);
        _cleanup_(vp_catalog_closep) struct vp_catalog *c = NULL;
        if (vp_catalog_open(cli->catalog, false, &c, &err) < 0)
                return cli_fail(&err);
        struct vp_history_filter f = { .pool = pool, .vm = vm, .since = since ? when : NULL };
        struct vp_history_log log;
        if (vp_history_read(c, &f, &log, &err) < 0)
                return cli_fail(&err);
        if (cli->json) {
                struct json_object *arr = json_object_new_array();
                for (size_t i = 0; i < log.n; i++)
                        json_object_array_add(arr, item_json(&log.items[i]));
                cli_print_json(arr);
        } else {
                print_text(&log);
        }
        vp_history_log_free(&log);
        return 0;
}
