#include "cli.h"

#include "fsck.h"

static int fsck_run(struct vp_cli *cli, const struct cli_args *a);

static const struct cli_verb fsck_verb = {
        .name = "fsck", .fn = fsck_run, .usage = "[--repair]",
        .help = "Check the invariants across the catalog, the manifests on shared storage and the\n"
                "domain lists of every host of every env: one owner per delta, at most one domain per\n"
                "delta and it its owner's, on the host the catalog records, generations agreeing,\n"
                "overlays backed by their pool's master only. A host that does not answer is reported\n"
                "and its domains are not checked. Exit code 0 when clean, 1 when a problem was found\n"
                "(each printed on its own line).\n"
                "--repair destroys and undefines stale domains (vpool's definitions of a VM that lives\n"
                "on another host now, as a host that was down during a migration keeps them) and\n"
                "nothing else; each under its pool's lock, only if the catalog, read again, still finds\n"
                "it stale (a pool another vpool process works on is left, said so) and only while the\n"
                "VM's own definition is on its recorded host; the exit code then tells whether problems\n"
                "remain. A repair is recorded in the history.",
        .opts = CLI_OPTS(CLI_FLAG("repair")),
};

const struct cli_noun cli_noun_fsck = {
        .name = "fsck", .help = "check the invariants across catalog, storage and every env", .self = &fsck_verb,
};

static int fsck_run(struct vp_cli *cli, const struct cli_args *a)
{
        bool repair = cli_flag(a, "repair");
        /* A check changes nothing; a repair is recorded. */
        cli->record = repair;
        cli->verb = repair ? "repair" : NULL;
        struct vp_ctx ctx;
        if (cli_open(cli, &ctx))
                return 1;
        struct vp_error err = { 0 };
        struct vp_fsck_report rep;
        int r = vp_fsck(&ctx, repair, &rep, &err);
        vp_ctx_close(&ctx);
        if (r < 0)
                return cli_fail(&err);
        size_t left = 0;
        for (size_t i = 0; i < rep.n; i++)
                left += !rep.problems[i].repaired;
        if (cli->json) {
                cli_print_json(vp_fsck_json(&rep, repair));
        } else {
                for (size_t i = 0; i < rep.n; i++)
                        printf("%s: %s: %s%s\n", rep.problems[i].kind, rep.problems[i].subject, rep.problems[i].detail,
                               rep.problems[i].repaired ? " (repaired: domain removed)" : "");
                if (!cli->quiet)
                        printf("fsck: %zu envs, %zu hosts, %zu domains, %zu deltas, %zu VMs checked: %s\n", rep.envs,
                               rep.hosts, rep.domains, rep.deltas, rep.vms,
                               left ? "PROBLEMS FOUND" : rep.n ? "repaired" : "clean");
        }
        bool clean = left == 0;
        if (!clean)
                cli_note_failure("%zu problem%s left", left, left == 1 ? "" : "s");
        vp_fsck_report_free(&rep);
        return clean ? 0 : 1;
}
