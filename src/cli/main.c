/* vpool: move desktop pools between hypervisor environments by handing
 * over user deltas. This file holds the global options and the noun table. */
#include <locale.h>
#include <string.h>

#include "cli.h"
#include "vp-config.h"

static const struct cli_noun *const nouns[] = {
        &cli_noun_init, &cli_noun_env, &cli_noun_image, &cli_noun_profile, &cli_noun_pool,
        &cli_noun_vm, &cli_noun_migrate, &cli_noun_fsck, &cli_noun_config, &cli_noun_history, &cli_noun_token, &cli_noun_catalog,
};

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: vpool [--config FILE] [--catalog FILE] [--json] [--quiet] NOUN VERB [ARGS]\n\n"
                "Manage pools of VMs provisioned from one master image, each VM keeping its\n"
                "user's changes in a user delta collection on shared storage.\n\n"
                "Nouns:\n");
        for (size_t i = 0; i < ELEMENTSOF(nouns); i++)
                fprintf(out, "  %-8s %s\n", nouns[i]->name, nouns[i]->help);
        fprintf(out,
                "\nGlobal options:\n"
                "  --config FILE   configuration file (default: $VPOOL_CONFIG or " VP_CONFIG_FILE ")\n"
                "  --catalog FILE  catalog to use: an SQLite file or a PostgreSQL URI (postgresql://...)\n"
                "                  or keyword string (default: $VPOOL_CATALOG, then the configuration\n"
                "                  file, then " VP_DEFAULT_CATALOG ")\n"
                "  --json          print one JSON document\n"
                "  --quiet         print only the result\n"
                "  --version       print the version\n"
                "  --help          show this help\n\n"
                "Run 'vpool NOUN --help' for its verbs; 'vpool config show' for the settings in effect.\n"
                "Exit codes: 0 success, 1 failure, 2 usage error.\n");
}

static const char *getenv_const(const char *name)
{
        return getenv(name);
}

/* Defaults, then the configuration file, then the environment, then the
 * global options: the first error stops everything before any verb runs. */
static int load_config(struct vp_cli *cli, struct vp_config *conf, const char *config_opt, const char *catalog_opt)
{
        struct vp_error err = { 0 };
        const char *path = VP_CONFIG_FILE, *env = getenv("VPOOL_CONFIG");
        cli->conf_origin = VP_CONF_DEFAULT;
        if (config_opt) {
                path = config_opt;
                cli->conf_origin = VP_CONF_CMDLINE;
        } else if (env && *env) {
                path = env;
                cli->conf_origin = VP_CONF_ENV;
        }
        vp_config_init(conf);
        /* A file the user named must exist; the default one need not. */
        if (vp_config_load(conf, path, config_opt || (env && *env), &err) < 0 ||
            vp_config_load_env(conf, getenv_const, &err) < 0 ||
            (catalog_opt && vp_config_set(conf, VP_CONF_CATALOG, catalog_opt, VP_CONF_CMDLINE, 0, &err) < 0))
                return cli_fail(&err);
        cli->conf = conf;
        cli->catalog = conf->v[VP_CONF_CATALOG].text;
        return 0;
}

int main(int argc, char **argv)
{
        setlocale(LC_ALL, "C");
        /* The command line as typed, for the history: option parsing reorders argv. */
        _cleanup_free_ char **typed = vp_xcalloc((size_t)argc + 1, sizeof(char *));
        memcpy(typed, argv, (size_t)argc * sizeof(char *));
        struct vp_cli cli = { .argc = argc, .argv = typed };
        const char *catalog = NULL, *config = NULL;

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
                } else if (streq(a, "--catalog") || streq(a, "--config")) {
                        if (i + 1 >= argc) {
                                cli_usage_error(&cli, "option '%s' needs a value", a);
                                return EXIT_USAGE;
                        }
                        *(streq(a, "--catalog") ? &catalog : &config) = argv[++i];
                } else if (strncmp(a, "--catalog=", 10) == 0) {
                        catalog = a + 10;
                } else if (strncmp(a, "--config=", 9) == 0) {
                        config = a + 9;
                } else {
                        cli_usage_error(&cli, "unknown option '%s'", a);
                        return EXIT_USAGE;
                }
        }
        if (catalog && !*catalog) {
                cli_usage_error(&cli, "empty catalog path");
                return EXIT_USAGE;
        }
        if (config && !*config) {
                cli_usage_error(&cli, "empty configuration file path");
                return EXIT_USAGE;
        }
        if (i >= argc) {
                usage(stderr);
                return EXIT_USAGE;
        }
        struct vp_config conf;
        if (load_config(&cli, &conf, config, catalog)) {
                vp_config_free(&conf);
                return 1;
        }
        int r = EXIT_USAGE;
        bool found = false;
        for (size_t k = 0; k < ELEMENTSOF(nouns) && !found; k++)
                if (streq(argv[i], nouns[k]->name)) {
                        found = true;
                        r = cli_run(&cli, nouns[k], argc - i, argv + i);
                        fflush(stdout);
                        cli_history_finish(&cli, r);
                }
        if (!found)
                cli_usage_error(&cli, "unknown noun '%s'", argv[i]);
        vp_config_free(&conf);
        return r;
}
