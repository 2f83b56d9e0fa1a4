/* vpool: move desktop pools between hypervisor environments by handing
 * over user deltas. This file holds the global options and the noun table. */
#include <locale.h>
#include <string.h>

#include "cli.h"
#include "vp-config.h"

static const struct {
        const char *name;
        int (*fn)(struct vp_cli *, int, char **);
        const char *help;
} nouns[] = {
        { "init", cmd_init, "create the catalog and the shared-storage layout" },
        { "env", cmd_env, "hypervisor environments (libvirt connections)" },
        { "image", cmd_image, "master images on shared storage" },
        { "profile", cmd_profile, "hardware profiles" },
        { "pool", cmd_pool, "pools of VMs from one master image" },
        { "vm", cmd_vm, "the VMs of pools" },
        { "migrate", cmd_migrate, "move a pool to another env and other hardware" },
        { "fsck", cmd_fsck, "check the invariants across catalog, storage and every env" },
        { "history", cmd_history, "who changed what, when, and how it ended" },
};

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: vpool [--catalog FILE] [--json] [--quiet] NOUN VERB [ARGS]\n\n"
                "Manage pools of VMs provisioned from one master image, each VM keeping its\n"
                "user's changes in a user delta collection on shared storage.\n\n"
                "Nouns:\n");
        for (size_t i = 0; i < ELEMENTSOF(nouns); i++)
                fprintf(out, "  %-8s %s\n", nouns[i].name, nouns[i].help);
        fprintf(out,
                "\nGlobal options:\n"
                "  --catalog FILE  catalog to use (default: $VPOOL_CATALOG or " VP_DEFAULT_CATALOG ")\n"
                "  --json          print one JSON document\n"
                "  --quiet         print only the result\n"
                "  --version       print the version\n"
                "  --help          show this help\n\n"
                "Run 'vpool NOUN --help' for its verbs.\n"
                "Exit codes: 0 success, 1 failure, 2 usage error.\n");
}

int main(int argc, char **argv)
{
        setlocale(LC_ALL, "C");
        /* The command line as typed, for the history: option parsing reorders argv. */
        char **typed = vp_xcalloc((size_t)argc + 1, sizeof(char *));
        memcpy(typed, argv, (size_t)argc * sizeof(char *));
        struct vp_cli cli = { .argc = argc, .argv = typed };
        cli.catalog = getenv("VPOOL_CATALOG");
        if (!cli.catalog || !*cli.catalog)
                cli.catalog = VP_DEFAULT_CATALOG;

        int i = 1;
        for (; i < argc && argv[i][0] == '-'; i++) {
                const char *a = argv[i];
                if (streq(a, "--help") || streq(a, "-h")) {
                        usage(stdout);
                        return 0;
                } else if (streq(a, "--version")) {
                        printf("vpool %s\n", VP_VERSION);
                        return 0;
                } else if (streq(a, "--json")) {
                        cli.json = true;
                } else if (streq(a, "--quiet") || streq(a, "-q")) {
                        cli.quiet = true;
                } else if (streq(a, "--catalog")) {
                        if (i + 1 >= argc) {
                                cli_usage_error(&cli, "option '--catalog' needs a value");
                                return EXIT_USAGE;
                        }
                        cli.catalog = argv[++i];
                } else if (strncmp(a, "--catalog=", 10) == 0) {
                        cli.catalog = a + 10;
                } else {
                        cli_usage_error(&cli, "unknown option '%s'", a);
                        return EXIT_USAGE;
                }
        }
        if (!*cli.catalog) {
                cli_usage_error(&cli, "empty catalog path");
                return EXIT_USAGE;
        }
        if (i >= argc) {
                usage(stderr);
                return EXIT_USAGE;
        }
        for (size_t k = 0; k < ELEMENTSOF(nouns); k++)
                if (streq(argv[i], nouns[k].name)) {
                        /* init, fsck and history are verbs of their own: they get their own name as argv[0]. */
                        bool whole = streq(nouns[k].name, "init") || streq(nouns[k].name, "fsck") ||
                                     streq(nouns[k].name, "history");
                        int r = nouns[k].fn(&cli, argc - i - (whole ? 0 : 1), argv + i + (whole ? 0 : 1));
                        fflush(stdout);
                        cli_history_finish(&cli, r);
                        free(typed);
                        return r;
                }
        cli_usage_error(&cli, "unknown noun '%s'", argv[i]);
        return EXIT_USAGE;
}
