#include "cli.h"

#include <string.h>
#include <time.h>

#include "name.h"
#include "parse.h"

static int pool_create(struct vp_cli *cli, const struct cli_args *a);
static int pool_list(struct vp_cli *cli, const struct cli_args *a);
static int pool_show(struct vp_cli *cli, const struct cli_args *a);

static int pool_start(struct vp_ctx *ctx, const char *name, const struct cli_act_opts *o, struct vp_error *err)
{
        return vp_pool_start(ctx, name, err);
}

static int pool_stop(struct vp_ctx *ctx, const char *name, const struct cli_act_opts *o, struct vp_error *err)
{
        return vp_pool_stop(ctx, name, o->timeout, o->force, err);
}

static int pool_rm(struct vp_ctx *ctx, const char *name, const struct cli_act_opts *o, struct vp_error *err)
{
        return vp_pool_rm(ctx, name, o->keep_deltas, o->force, err);
}

static const struct cli_verb verbs[] = {
        { .name = "create", .fn = pool_create,
          .usage = "NAME --image IMG --env ENV [--profile PROF] --size N [--data-disk SIZE] [--start]",
          .help = "Create N VMs NAME-001..NAME-N: for each a user delta collection (overlay of the master,\n"
                  "optional data disk, identity, manifest) and a persistent domain on ENV. All or nothing.\n"
                  "PROF defaults to the configured profile (VPOOL_PROFILE, or 'profile' in the configuration file).",
          .changes = true,
          .opts = CLI_OPTS(CLI_VALUE("image"), CLI_VALUE("env"), CLI_VALUE("profile"), CLI_VALUE("size"),
                           CLI_VALUE("data-disk"), CLI_FLAG("start")),
          .minpos = 1, .maxpos = 1 },
        { .name = "list", .fn = pool_list, .usage = "", .help = "List pools." },
        { .name = "show", .fn = pool_show, .usage = "NAME", .help = "Show a pool and its VMs.", .minpos = 1, .maxpos = 1 },
        { .name = "start", .fn = cli_act, .usage = "NAME", .help = "Start every VM of a pool.", .changes = true,
          .minpos = 1, .maxpos = 1, .act = pool_start, .done = "started", .check_name = true },
        { .name = "stop", .fn = cli_act, .usage = "NAME [--timeout SEC] [--force]",
          .help = "Shut every VM of a pool down.", .changes = true,
          .opts = CLI_OPTS(CLI_VALUE("timeout"), CLI_FLAG("force")), .minpos = 1, .maxpos = 1,
          .act = pool_stop, .done = "stopped", .check_name = true },
        { .name = "rm", .fn = cli_act, .usage = "NAME [--keep-deltas] [--force]",
          .help = "Undefine every VM and remove the pool; its delta collections too unless --keep-deltas.\n"
                  "Refused while a VM runs, unless --force.",
          .changes = true, .opts = CLI_OPTS(CLI_FLAG("keep-deltas"), CLI_FLAG("force")), .minpos = 1, .maxpos = 1,
          .act = pool_rm, .done = "removed", .check_name = true },
        { 0 },
};

const struct cli_noun cli_noun_pool = {
        .name = "pool", .help = "pools of VMs from one master image",
        .summary = "Pools of VMs from one master image.", .verbs = verbs,
};

struct progress {
        bool tty;
        struct timespec start;
};

static void progress_cb(void *ud, const char *vm, const char *step, size_t done, size_t total)
{
        struct progress *p = ud;
        if (!p->tty)
                return;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double el = (double)(now.tv_sec - p->start.tv_sec) + (double)(now.tv_nsec - p->start.tv_nsec) / 1e9;
        double eta = done ? el / (double)done * (double)(total - done) : 0;
        fprintf(stderr, "\r\033[K%s %zu/%zu (%s)  %.1fs elapsed, ~%.0fs left", step, done, total, vm, el, eta);
        if (done == total)
                fputc('\n', stderr);
}

static int pool_create(struct vp_cli *cli, const struct cli_args *a)
{
        const char *image = cli_opt(a, "image"), *env = cli_opt(a, "env"), *size = cli_opt(a, "size");
        const char *data = cli_opt(a, "data-disk");
        const char *profile = cli_opt_or(a, "profile", cli->conf->v[VP_CONF_PROFILE].text);
        bool start = cli_flag(a, "start");
        const char *missing = !image ? "--image" : !env ? "--env"
                : !profile ? "--profile (no default profile is configured)" : !size ? "--size" : NULL;
        if (missing)
                return cli_usage_error(cli, "missing %s", missing), EXIT_USAGE;
        struct vp_error err = { 0 };
        uint64_t n, dd = 0;
        if (vp_name_check("pool", a->pos[0], &err) < 0 || vp_parse_uint("pool size", size, 1, 9999, &n, &err) < 0 ||
            (data && vp_parse_size("data disk size", data, 1024 * 1024, 16ULL << 40, &dd, &err) < 0))
                return cli_fail(&err);
        struct vp_pool_args pa = {
                .name = a->pos[0], .image = image, .env = env, .profile = profile, .size = (int64_t)n,
                .data_disk_bytes = dd, .start = start,
        };
        struct vp_ctx ctx;
        if (cli_open(cli, &ctx))
                return 1;
        struct progress p = { .tty = !cli->quiet && !cli->json && isatty(STDERR_FILENO) };
        clock_gettime(CLOCK_MONOTONIC, &p.start);
        int r = vp_pool_create(&ctx, &pa, progress_cb, &p, &err);
        if (r < 0) {
                vp_ctx_close(&ctx);
                return cli_fail(&err);
        }
        if (cli->json) {
                struct json_object *o = json_object_new_object();
                json_object_object_add(o, "pool", json_object_new_string(pa.name));
                json_object_object_add(o, "size", json_object_new_int64(pa.size));
                json_object_object_add(o, "started", json_object_new_boolean(start));
                cli_print_json(o);
        } else if (!cli->quiet) {
                printf("pool %s created: %lld VMs on env %s%s\n", pa.name, (long long)pa.size, env,
                       start ? ", started" : "");
        }
        vp_ctx_close(&ctx);
        return 0;
}

static struct json_object *pool_json(struct vp_ctx *ctx, const struct vp_pool *p, bool with_vms)
{
        struct vp_image im = { 0 };
        struct vp_env env = { 0 };
        struct vp_profile prof = { 0 };
        vp_row_get_id(ctx->cat, &vp_table_image, p->image_id, &im, NULL);
        vp_row_get_id(ctx->cat, &vp_table_env, p->env_id, &env, NULL);
        vp_row_get_id(ctx->cat, &vp_table_profile, p->profile_id, &prof, NULL);
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(p->name));
        json_object_object_add(o, "image", json_object_new_string(im.name ? im.name : ""));
        json_object_object_add(o, "env", json_object_new_string(env.name ? env.name : ""));
        json_object_object_add(o, "profile", json_object_new_string(prof.name ? prof.name : ""));
        json_object_object_add(o, "size", json_object_new_int64(p->size));
        json_object_object_add(o, "data_disk_bytes", json_object_new_int64(p->data_disk_bytes));
        json_object_object_add(o, "state", json_object_new_string(p->state));
        json_object_object_add(o, "created", json_object_new_string(p->created));
        if (with_vms) {
                char idbuf[24];
                void *rows = NULL;
                size_t n = 0;
                snprintf(idbuf, sizeof(idbuf), "%lld", (long long)p->id);
                struct json_object *a = json_object_new_array();
                if (vp_row_list(ctx->cat, &vp_table_vm, "pool_id", idbuf, &rows, &n, NULL) >= 0) {
                        struct vp_vm *vms = rows;
                        for (size_t i = 0; i < n; i++)
                                json_object_array_add(a, cli_vm_json(ctx, &vms[i], true));
                        vp_rows_free(&vp_table_vm, rows, n);
                }
                json_object_object_add(o, "vms", a);
        }
        vp_row_clear(&vp_table_image, &im);
        vp_row_clear(&vp_table_env, &env);
        vp_row_clear(&vp_table_profile, &prof);
        return o;
}

static const char *jstr(struct json_object *o, const char *key)
{
        struct json_object *v;
        return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "";
}

static struct json_object *pool_row_json(struct vp_ctx *ctx, const void *row)
{
        return pool_json(ctx, row, false);
}

static int pool_list(struct vp_cli *cli, const struct cli_args *a)
{
        static const struct cli_column cols[] = {
                { "NAME", "name", CLI_PLAIN }, { "IMAGE", "image", CLI_PLAIN }, { "ENV", "env", CLI_PLAIN },
                { "PROFILE", "profile", CLI_PLAIN }, { "SIZE", "size", CLI_PLAIN }, { "STATE", "state", CLI_PLAIN },
        };
        return cli_list(cli, &vp_table_pool, pool_row_json, cols, ELEMENTSOF(cols));
}

static int pool_show(struct vp_cli *cli, const struct cli_args *a)
{
        struct vp_error err = { 0 };
        if (vp_name_check("pool", a->pos[0], &err) < 0)
                return cli_fail(&err);
        struct vp_ctx ctx;
        if (cli_open(cli, &ctx))
                return 1;
        struct vp_pool p = { 0 };
        if (vp_row_get(ctx.cat, &vp_table_pool, "name", a->pos[0], &p, &err) < 0) {
                vp_ctx_close(&ctx);
                return cli_fail(&err);
        }
        struct json_object *o = pool_json(&ctx, &p, true);
        if (cli->json) {
                cli_print_json(o);
        } else {
                static const char *const keys[] = { "name", "image", "env", "profile", "size", "state", "created" };
                for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                        char k[32];
                        snprintf(k, sizeof(k), "%s:", keys[i]);
                        print_field(k, "%s", jstr(o, keys[i]));
                }
                struct json_object *vms;
                json_object_object_get_ex(o, "vms", &vms);
                printf("\n");
                struct cli_table t;
                table_init(&t, 5, "VM", "STATE", "UUID", "OWNER", "GEN");
                for (size_t i = 0; i < json_object_array_length(vms); i++) {
                        struct json_object *v = json_object_array_get_idx(vms, i);
                        table_add(&t, jstr(v, "name"), jstr(v, "state"), jstr(v, "uuid"), jstr(v, "owner"),
                                  jstr(v, "generation"));
                }
                table_print(&t);
                json_object_put(o);
        }
        vp_row_clear(&vp_table_pool, &p);
        vp_ctx_close(&ctx);
        return 0;
}
