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
          .usage = "NAME --image IMG --env ENV [--profile PROF] --size N [--data-disk SIZE] [--start]\n"
                   "       [--placement spread|pack]",
          .help = "Create N VMs NAME-001..NAME-N: for each a user delta collection (overlay of the master,\n"
                  "optional data disk, identity, manifest) and a persistent domain on a host of ENV. All or\n"
                  "nothing. PROF defaults to the configured profile (VPOOL_PROFILE, or 'profile' in the\n"
                  "configuration file). Placement takes the hosts that answer, are not in maintenance and\n"
                  "offer PROF's hardware, and gives each VM the one with the most (spread, the default) or\n"
                  "the least (pack) memory left after the VMs placed before it; with --start every host\n"
                  "must have the memory of the VMs it runs free.",
          .changes = true, .subject = CLI_SUBJECT_POOL,
          .opts = CLI_OPTS(CLI_VALUE("image"), CLI_VALUE("env"), CLI_VALUE("profile"), CLI_VALUE("size"),
                           CLI_VALUE("data-disk"), CLI_FLAG("start"), CLI_VALUE("placement")),
          .minpos = 1, .maxpos = 1 },
        { .name = "list", .fn = pool_list, .usage = "", .help = "List pools." },
        { .name = "show", .fn = pool_show, .usage = "NAME", .help = "Show a pool and its VMs.", .minpos = 1, .maxpos = 1 },
        { .name = "start", .fn = cli_act, .usage = "NAME", .help = "Start every VM of a pool.", .changes = true,
          .subject = CLI_SUBJECT_POOL, .minpos = 1, .maxpos = 1, .act = pool_start, .done = "started",
          .check_name = true },
        { .name = "stop", .fn = cli_act, .usage = "NAME [--timeout SEC] [--force]",
          .help = "Shut every VM of a pool down.", .changes = true, .subject = CLI_SUBJECT_POOL,
          .opts = CLI_OPTS(CLI_VALUE("timeout"), CLI_FLAG("force")), .minpos = 1, .maxpos = 1,
          .act = pool_stop, .done = "stopped", .check_name = true },
        { .name = "rm", .fn = cli_act, .usage = "NAME [--keep-deltas] [--force]",
          .help = "Undefine every VM and remove the pool; its delta collections too unless --keep-deltas.\n"
                  "Refused while a VM runs, unless --force.",
          .changes = true, .subject = CLI_SUBJECT_POOL, .opts = CLI_OPTS(CLI_FLAG("keep-deltas"), CLI_FLAG("force")),
          .minpos = 1, .maxpos = 1, .act = pool_rm, .done = "removed", .check_name = true },
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
        if (cli_parse_placement(a, &pa.placement, &err) < 0)
                return cli_fail(&err);
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

static int read_pools(struct vp_ctx *ctx, struct json_object **ret, struct vp_error *err)
{
        return vp_pool_list(ctx, NULL, ret, err);
}

static int pool_list(struct vp_cli *cli, const struct cli_args *a)
{
        static const struct cli_column cols[] = {
                { "NAME", "name", CLI_PLAIN }, { "IMAGE", "image", CLI_PLAIN }, { "ENV", "env", CLI_PLAIN },
                { "PROFILE", "profile", CLI_PLAIN }, { "SIZE", "size", CLI_PLAIN }, { "STATE", "state", CLI_PLAIN },
        };
        return cli_list(cli, read_pools, cols, ELEMENTSOF(cols));
}

static void pool_text(struct json_object *o)
{
        static const char *const keys[] = { "name", "image", "env", "profile", "size", "state", "created" };
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                char k[32];
                snprintf(k, sizeof(k), "%s:", keys[i]);
                print_field(k, "%s", cli_str(o, keys[i]));
        }
        struct json_object *vms;
        json_object_object_get_ex(o, "vms", &vms);
        printf("\n");
        struct cli_table t;
        table_init(&t, 5, "VM", "STATE", "UUID", "OWNER", "GEN");
        for (size_t i = 0; i < json_object_array_length(vms); i++) {
                struct json_object *v = json_object_array_get_idx(vms, i);
                table_add(&t, cli_str(v, "name"), cli_str(v, "state"), cli_str(v, "uuid"), cli_str(v, "owner"),
                          cli_str(v, "generation"));
        }
        table_print(&t);
}

static int pool_show(struct vp_cli *cli, const struct cli_args *a)
{
        return cli_show(cli, a, vp_pool_describe, pool_text);
}
