/* vpool history, and the recording of every command that changes something. */
#include "cli.h"

#include <string.h>

#include "name.h"

static int history_run(struct vp_cli *cli, const struct cli_args *a);

static const struct cli_verb history_verb = {
        .name = "history", .fn = history_run, .usage = "[--pool POOL] [--vm VM] [--since TIME] [--via cli|api|policy]",
        .help = "Every change vpool made, oldest first: when, who (login name, and the sudo user behind\n"
                "root; through the API the token's name, or the policy's), through what (cli, api,\n"
                "policy), the command as typed and how it ended (ok, failed: why, running, or\n"
                "interrupted when its process is gone). Each migration step of each VM, from the\n"
                "journal, appears under the command that ran it. --pool and --vm keep what concerns\n"
                "that pool or VM (a VM's own commands and steps, and the commands on its whole pool);\n"
                "--via what came that way (and the steps it ran). TIME is a date (2026-11-27) or date\n"
                "and time (2026-11-27T10:00:00) in UTC, or an age (30m, 2h, 1d, 1w).\n"
                "Read-only verbs (list, show, status, fsck without --repair) are not recorded.",
        .opts = CLI_OPTS(CLI_VALUE("pool"), CLI_VALUE("vm"), CLI_VALUE("since"), CLI_VALUE("via")),
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
                const char *vm = "";
                _cleanup_free_ char *pool = NULL;
                if (*s && cli->subject_kind == CLI_SUBJECT_POOL) {
                        pool = vp_strdup(s);
                } else if (*s && cli->subject_kind == CLI_SUBJECT_VM) {
                        vm = s;
                        vp_vm_pool_name(cli->hist, s, &pool, NULL);
                } else if (*s && cli->subject_kind == CLI_SUBJECT_MIGRATION && strspn(s, "0123456789") == strlen(s) &&
                           strlen(s) < 18) {
                        h->migration_id = strtoll(s, NULL, 10);
                        vp_migration_pool_name(cli->hist, h->migration_id, &pool, NULL);
                }
                h->pool = vp_strdup(pool ? pool : "");
                h->vm = vp_strdup(vm);
                k = vp_history_begin(cli->hist, h, &err);
        }
        if (k < 0) {
                /* A user who may only read the catalog is told so plainly. */
                if (k != -EROFS)
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
        /* TIME is 20 wide, VIA 6 ("policy"), OUTCOME 11 ("interrupted"). */
        int indent = 20 + 2 + (int)uw + 2 + 6 + 2 + 11 + 2;
        printf("%-20s  %-*s  %-6s  %-11s  %s\n", "TIME", (int)uw, "USER", "VIA", "OUTCOME", "COMMAND");
        for (size_t i = 0; i < log->n; i++) {
                const struct vp_history_item *it = &log->items[i];
                _cleanup_free_ char *u = who(it->cmd);
                const char *via = it->cmd ? vp_via_to_string(vp_history_via(it->cmd)) : "-";
                if (!it->step) {
                        const char *out = vp_history_outcome(it->cmd);
                        bool failed = strncmp(out, "failed: ", 8) == 0;
                        printf("%-20s  %-*s  %-6s  %-11s  %s\n", it->cmd->at, (int)uw, u, via,
                               failed ? "failed" : out, it->cmd->command);
                        if (it->cmd->reason && *it->cmd->reason)
                                printf("%*s  reason: %s\n", indent, "", it->cmd->reason);
                        if (failed)
                                printf("%*s  error: %s\n", indent, "", out + 8);
                        continue;
                }
                const struct vp_journal *j = it->step;
                bool failed = streq(j->step, VP_JOURNAL_ERROR);
                printf("%-20s  %-*s  %-6s  %-11s    migration %lld", j->at, (int)uw, u, via, failed ? "failed" : "",
                       (long long)j->migration_id);
                if (!*j->vm_name)
                        printf(": pool %s %s%s%s\n", it->pool, j->step, *j->detail ? ": " : "", j->detail);
                else if (failed)
                        printf(": %s: %s\n", j->vm_name, j->detail);
                else
                        printf(": %s %s, generation %lld\n", j->vm_name, j->step, (long long)j->generation);
        }
}

static int history_run(struct vp_cli *cli, const struct cli_args *a)
{
        const char *pool = cli_opt(a, "pool"), *vm = cli_opt(a, "vm"), *since = cli_opt(a, "since");
        const char *via = cli_opt(a, "via");
        struct vp_error err = { 0 };
        char when[32], pb[64];
        if ((pool && vp_name_check("pool", pool, &err) < 0) || (vm && vp_name_check("vm", vm, &err) < 0) ||
            (since && vp_parse_since(since, time(NULL), when, &err) < 0))
                return cli_fail(&err);
        if (via && vp_via_from_string(via) < 0) {
                _cleanup_free_ char *all = vp_via_list(", ");
                vp_err(&err, -EINVAL, "unknown via '%s' (%s)", vp_printable(via, pb, sizeof(pb)), all);
                return cli_fail(&err);
        }
        _cleanup_(vp_catalog_closep) struct vp_catalog *c = NULL;
        if (vp_catalog_open_read(cli->catalog, &c, &err) < 0)
                return cli_fail(&err);
        struct vp_history_filter f = { .pool = pool, .vm = vm, .since = since ? when : NULL, .via = via };
        struct vp_history_log log;
        if (vp_history_read(c, &f, &log, &err) < 0)
                return cli_fail(&err);
        if (cli->json) {
                cli_print_json(vp_history_json(&log));
        } else {
                print_text(&log);
        }
        vp_history_log_free(&log);
        return 0;
}
