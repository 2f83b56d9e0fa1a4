#include "cli.h"

#include "vp-config.h"

static int config_show(struct vp_cli *cli, const struct cli_args *a);

static const struct cli_verb verbs[] = {
        { .name = "show", .fn = config_show,
          .usage = "[--catalog FILE] [--storage DIR] [--parallel N] [--shutdown-timeout SEC] [--profile PROF]\n"
                   "       [--source-grace SEC] [--fence-timeout SEC] [--listen LISTENERS] [--tls-cert FILE]\n"
                   "       [--tls-key FILE] [--rate-limit N] [--console DIR]"
                   " [--policy-interval SEC]\n"
                   "       [--leader-interval SEC] [--advertise ADDRESS]",
          .help = "Print each setting in effect and its source: default, FILE:LINE, environment VAR or\n"
                  "command line. The options stand for those of init, migrate, pool create and vpoold.\n"
                  "The file is --config FILE, $VPOOL_CONFIG or " VP_CONFIG_FILE ".",
          .opts = CLI_OPTS(CLI_VALUE("catalog"), CLI_VALUE("storage"), CLI_VALUE("parallel"),
                           CLI_VALUE("shutdown-timeout"), CLI_VALUE("profile"), CLI_VALUE("source-grace"),
                           CLI_VALUE("fence-timeout"), CLI_VALUE("listen"), CLI_VALUE("tls-cert"),
                           CLI_VALUE("tls-key"), CLI_VALUE("rate-limit"), CLI_VALUE("console"),
                           CLI_VALUE("policy-interval"), CLI_VALUE("leader-interval"), CLI_VALUE("advertise")) },
        { 0 },
};

const struct cli_noun cli_noun_config = {
        .name = "config", .help = "the effective settings and where each came from",
        .summary = "The settings in effect: defaults, configuration file, environment, options.", .verbs = verbs,
};

/* The option of config show that stands for each setting. */
static const char *const key_options[VP_CONF_KEY_MAX] = {
        [VP_CONF_CATALOG] = "catalog", [VP_CONF_STORAGE] = "storage", [VP_CONF_PARALLEL] = "parallel",
        [VP_CONF_SHUTDOWN_TIMEOUT] = "shutdown-timeout", [VP_CONF_PROFILE] = "profile",
        [VP_CONF_SOURCE_GRACE] = "source-grace", [VP_CONF_FENCE_TIMEOUT] = "fence-timeout",
        [VP_CONF_LISTEN] = "listen", [VP_CONF_TLS_CERT] = "tls-cert", [VP_CONF_TLS_KEY] = "tls-key",
        [VP_CONF_RATE_LIMIT] = "rate-limit", [VP_CONF_CONSOLE] = "console",
        [VP_CONF_POLICY_INTERVAL] = "policy-interval", [VP_CONF_LEADER_INTERVAL] = "leader-interval",
        [VP_CONF_ADVERTISE] = "advertise",
};

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
        else if (k == VP_CONF_SOURCE_GRACE)
                json_object_object_add(o, "value", json_object_new_int(c->source_grace));
        else if (k == VP_CONF_FENCE_TIMEOUT)
                json_object_object_add(o, "value", json_object_new_int(c->fence_timeout));
        else if (k == VP_CONF_RATE_LIMIT)
                json_object_object_add(o, "value", json_object_new_int(c->rate_limit));
        else if (k == VP_CONF_POLICY_INTERVAL)
                json_object_object_add(o, "value", json_object_new_int(c->policy_interval));
        else if (k == VP_CONF_LEADER_INTERVAL)
                json_object_object_add(o, "value", json_object_new_int(c->leader_interval));
        else if (k == VP_CONF_CATALOG) {
                _cleanup_free_ char *label = vp_catalog_label(v->text);
                json_object_object_add(o, "value", json_object_new_string(label));
        } else
                json_object_object_add(o, "value", json_object_new_string(v->text));
        json_object_object_add(o, "source", json_object_new_string(origins[v->origin]));
        bool file = v->origin == VP_CONF_FILE, env = v->origin == VP_CONF_ENV;
        json_object_object_add(o, "file", file ? json_object_new_string(c->path) : NULL);
        json_object_object_add(o, "line", file ? json_object_new_int((int)v->line) : NULL);
        json_object_object_add(o, "variable", env ? json_object_new_string(vp_config_env_name(k)) : NULL);
        return o;
}

static int config_show(struct vp_cli *cli, const struct cli_args *a)
{
        struct vp_config *c = cli->conf;
        struct vp_error err = { 0 };
        for (int k = 0; k < VP_CONF_KEY_MAX; k++)
                if (cli_opt(a, key_options[k]) &&
                    vp_config_set(c, k, cli_opt(a, key_options[k]), VP_CONF_CMDLINE, 0, &err) < 0)
                        return cli_fail(&err);

        if (cli->json) {
                struct json_object *o = json_object_new_object(), *f = json_object_new_object();
                json_object_object_add(f, "path", json_object_new_string(c->path));
                json_object_object_add(f, "found", json_object_new_boolean(c->file_found));
                json_object_object_add(f, "source", json_object_new_string(origins[cli->conf_origin]));
                json_object_object_add(f, "variable",
                                       cli->conf_origin == VP_CONF_ENV ? json_object_new_string("VPOOL_CONFIG") : NULL);
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
                /* A PostgreSQL catalog's password is never shown. */
                _cleanup_free_ char *label = k == VP_CONF_CATALOG && c->v[k].text ? vp_catalog_label(c->v[k].text) : NULL;
                table_add(&t, vp_config_key_name(k), label ? label : c->v[k].text,
                          vp_config_origin_text(c, k, where, sizeof(where)));
        }
        table_print(&t);
        return 0;
}
