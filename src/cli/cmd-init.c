#include "cli.h"

static int init_run(struct vp_cli *cli, const struct cli_args *a);

static const struct cli_verb init_verb = {
        .name = "init", .fn = init_run, .usage = "[--storage DIR]",
        .help = "Create the catalog (if needed) and the storage layout DIR/{images,deltas,logs}.\n"
                "DIR defaults to the configured storage root (VPOOL_STORAGE, or 'storage' in the\n"
                "configuration file). Idempotent; a catalog keeps the storage root it was initialized with.",
        .changes = true, .opts = CLI_OPTS(CLI_VALUE("storage")),
};

const struct cli_noun cli_noun_init = {
        .name = "init", .help = "create the catalog and the shared-storage layout", .self = &init_verb,
};

static int init_run(struct vp_cli *cli, const struct cli_args *a)
{
        const char *storage = cli_opt_or(a, "storage", cli->conf->v[VP_CONF_STORAGE].text);
        if (!storage)
                return cli_usage_error(cli, "missing --storage DIR (no storage root is configured)"), EXIT_USAGE;
        struct vp_error err = { 0 };
        if (vp_init(cli->catalog, storage, &err) < 0)
                return cli_fail(&err);
        /* Recorded once it worked: before, there may be no catalog to record in. */
        if (cli_history_start(cli) != 0)
                return 1;
        _cleanup_free_ char *label = vp_catalog_label(cli->catalog);
        if (cli->json) {
                struct json_object *o = json_object_new_object();
                json_object_object_add(o, "catalog", json_object_new_string(label));
                json_object_object_add(o, "storage", json_object_new_string(storage));
                cli_print_json(o);
        } else if (!cli->quiet) {
                printf("catalog %s ready, storage root %s\n", label, storage);
        }
        return 0;
}
