#include "cli.h"

#include "vp-config.h"

static int config_show(struct vp_cli *cli, int argc, char **argv);

static const struct cli_verb verbs[] = {
        { "show", config_show,
          "[--catalog FILE] [--storage DIR] [--parallel N] [--shutdown-timeout SEC] [--profile PROF]",
          "Print each setting in effect and its source: default, FILE:LINE, environment VAR or\n"
          "command line. The options stand for those of init, migrate and pool create. The file\n"
          "is --config FILE, $VPOOL_CONFIG or " VP_CONFIG_FILE ".", false },
        { 0 },
};

int cmd_config(struct vp_cli *cli, int argc, char **argv)
{
        return cli_dispatch(cli, "config", "The settings in effect: defaults, configuration file, environment, options.",
                            verbs, argc, argv);
}

static const char *const origins[] = {
        [VP_CONF_DEFAULT] = "default", [VP_CONF_FILE] = "file",
        [VP_CONF_ENV] = "environment", [VP_CONF_CMDLINE] = "command line",
};

static struct json_object *value_json(const struct vp_config *c, enum vp_conf_key k)
{
        const struct vp_conf_value *v = &c->v[k];
        struct json_object *o = json_object_new_object();
        if (!v->text)
                json_object_object_add(o, "value", NULL);
        else if (k == VP_CONF_PARALLEL)
                json_object_object_add(o, "value", json_object_new_int(c->parallel));
        else if (k == VP_CONF_SHUTDOWN_TIMEOUT)
                json_object_object_add(o, "value", json_object_new_int(c->shutdown_timeout));
        else
                json_object_object_add(o, "value", json_object_new_string(v->text));
        json_object_object_add(o, "source", json_object_new_string(origins[v->origin]));
        if (v->origin == VP_CONF_FILE) {
                json_object_object_add(o, "file", json_object_new_string(c->path));
                json_object_object_add(o, "line", json_object_new_int((int)v->line));
        } else if (v->origin == VP_CONF_ENV) {
                json_object_object_add(o, "variable", json_object_new_string(vp_config_env_name(k)));
        }
        return o;
}

static int config_show(struct vp_cli *cli, int argc, char **argv)
{
        const char *given[VP_CONF_KEY_MAX] = { 0 };
        const struct cli_opt opts[] = {
                { "catalog", &given[VP_CONF_CATALOG], NULL }, { "storage", &given[VP_CONF_STORAGE], NULL },
                { "parallel", &given[VP_CONF_PARALLEL], NULL },
                { "shutdown-timeout", &given[VP_CONF_SHUTDOWN_TIMEOUT], NULL },
                { "profile", &given[VP_CONF_PROFILE], NULL }, { 0 },
        };
        char **pos;
        int npos;
        CLI_PARSE(cli, &verbs[0], argc, argv, opts, &pos, &npos, 0, 0);
        struct vp_config *c = cli->conf;
        struct vp_error err = { 0 };
        for (int k = 0; k < VP_CONF_KEY_MAX; k++)
                if (given[k] && vp_config_set(c, k, given[k], VP_CONF_CMDLINE, 0, &err) < 0)
                        return cli_fail(&err);

        if (cli->json) {
                struct json_object *o = json_object_new_object(), *f = json_object_new_object();
                json_object_object_add(f, "path", json_object_new_string(c->path));
                json_object_object_add(f, "found", json_object_new_boolean(c->file_found));
                json_object_object_add(f, "source", json_object_new_string(origins[cli->conf_origin]));
                if (cli->conf_origin == VP_CONF_ENV)
                        json_object_object_add(f, "variable", json_object_new_string("VPOOL_CONFIG"));
                json_object_object_add(o, "config_file", f);
                for (int k = 0; k < VP_CONF_KEY_MAX; k++)
                        json_object_object_add(o, vp_config_key_name(k), value_json(c, k));
                cli_print_json(o);
                return 0;
        }
        static const char *const named[] = {
                [VP_CONF_DEFAULT] = "", [VP_CONF_ENV] = ", named by environment VPOOL_CONFIG",
                [VP_CONF_CMDLINE] = ", named by --config",
        };
        printf("config file: %s (%s%s)\n", c->path, c->file_found ? "read" : "not found",
               cli->conf_origin == VP_CONF_FILE ? "" : named[cli->conf_origin]);
        struct cli_table t;
        table_init(&t, 3, "KEY", "VALUE", "SOURCE");
        for (int k = 0; k < VP_CONF_KEY_MAX; k++) {
                char where[1200];
                table_add(&t, vp_config_key_name(k), c->v[k].text, vp_config_origin_text(c, k, where, sizeof(where)));
        }
        table_print(&t);
        return 0;
}
