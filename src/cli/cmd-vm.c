#include "cli.h"

#include <string.h>

#include "name.h"
#include "parse.h"

static int vm_list(struct vp_cli *cli, const struct cli_args *a);
static int vm_show(struct vp_cli *cli, const struct cli_args *a);

static int vm_start(struct vp_ctx *ctx, const char *name, const struct cli_act_opts *o, struct vp_error *err)
{
        return vp_vm_start(ctx, name, err);
}

static int vm_stop(struct vp_ctx *ctx, const char *name, const struct cli_act_opts *o, struct vp_error *err)
{
        return vp_vm_stop(ctx, name, o->timeout, o->force, err);
}

static const struct cli_verb verbs[] = {
        { .name = "list", .fn = vm_list, .usage = "[--pool NAME]", .help = "List VMs with their live state.",
          .opts = CLI_OPTS(CLI_VALUE("pool")) },
        { .name = "show", .fn = vm_show, .usage = "NAME",
          .help = "Show one VM: identity, delta collection, owner, generation, state.", .minpos = 1, .maxpos = 1 },
        { .name = "start", .fn = cli_act, .usage = "NAME", .help = "Start a VM.", .changes = true,
          .minpos = 1, .maxpos = 1, .act = vm_start, .done = "started" },
        { .name = "stop", .fn = cli_act, .usage = "NAME [--timeout SEC] [--force]",
          .help = "Shut a VM down gracefully, waiting up to SEC (default 60) seconds;\n"
                  "with --force, power it off when it has not stopped by then.",
          .changes = true, .opts = CLI_OPTS(CLI_VALUE("timeout"), CLI_FLAG("force")), .minpos = 1, .maxpos = 1,
          .act = vm_stop, .done = "stopped" },
        { 0 },
};

const struct cli_noun cli_noun_vm = {
        .name = "vm", .help = "the VMs of pools", .summary = "The VMs of pools.", .verbs = verbs,
};

struct json_object *cli_vm_json(struct vp_ctx *ctx, const struct vp_vm *vm, bool with_state)
{
        struct vp_pool pool = { 0 };
        struct vp_env env = { 0 };
        vp_row_get_id(ctx->cat, &vp_table_pool, vm->pool_id, &pool, NULL);
        vp_row_get_id(ctx->cat, &vp_table_env, vm->env_id, &env, NULL);

        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(vm->name));
        json_object_object_add(o, "pool", json_object_new_string(pool.name ? pool.name : ""));
        json_object_object_add(o, "env", json_object_new_string(env.name ? env.name : ""));
        if (with_state)
                json_object_object_add(o, "state", json_object_new_string(vp_vm_state(ctx, vm)));
        json_object_object_add(o, "uuid", json_object_new_string(vm->uuid));
        struct json_object *macs = json_object_new_array();
        _cleanup_free_ char *mcopy = vp_strdup(vm->macs);
        char *save = NULL;
        for (char *m = strtok_r(mcopy, ",", &save); m; m = strtok_r(NULL, ",", &save))
                json_object_array_add(macs, json_object_new_string(m));
        json_object_object_add(o, "macs", macs);
        json_object_object_add(o, "hostname", json_object_new_string(vm->hostname));
        json_object_object_add(o, "delta_path", json_object_new_string(vm->delta_path));
        json_object_object_add(o, "owner", json_object_new_string(vm->owner));
        json_object_object_add(o, "generation", json_object_new_int64(vm->generation));

        /* What shared storage says, which is what fencing goes by. */
        int fd = -1;
        struct vp_manifest m;
        struct vp_error err = { 0 };
        if (pool.name && vp_delta_open(&ctx->st, pool.name, vm->name, &fd, &err) >= 0 &&
            vp_manifest_read(fd, vm->delta_path, &m, &err) >= 0) {
                json_object_object_add(o, "manifest_owner", json_object_new_string(m.owner));
                json_object_object_add(o, "manifest_generation", json_object_new_int64(m.generation));
        } else {
                json_object_object_add(o, "manifest_error", json_object_new_string(err.msg));
        }
        if (fd >= 0)
                close(fd);
        _cleanup_free_ char *log = vp_storage_log_path(&ctx->st, vm->name);
        json_object_object_add(o, "console_log", json_object_new_string(log));
        json_object_object_add(o, "created", json_object_new_string(vm->created));
        vp_row_clear(&vp_table_pool, &pool);
        vp_row_clear(&vp_table_env, &env);
        return o;
}

static int vm_list(struct vp_cli *cli, const struct cli_args *a)
{
        const char *pool = cli_opt(a, "pool");
        struct vp_error err = { 0 };
        if (pool && vp_name_check("pool", pool, &err) < 0)
                return cli_fail(&err);
        struct vp_ctx ctx;
        if (cli_open(cli, &ctx))
                return 1;
        void *rows = NULL;
        size_t n = 0;
        struct vp_pool p = { 0 };
        int r = 0;
        if (pool) {
                r = vp_row_get(ctx.cat, &vp_table_pool, "name", pool, &p, &err);
                if (r >= 0) {
                        char idbuf[24];
                        snprintf(idbuf, sizeof(idbuf), "%lld", (long long)p.id);
                        r = vp_row_list(ctx.cat, &vp_table_vm, "pool_id", idbuf, &rows, &n, &err);
                }
        } else {
                r = vp_row_list(ctx.cat, &vp_table_vm, NULL, NULL, &rows, &n, &err);
        }
        vp_row_clear(&vp_table_pool, &p);
        if (r < 0) {
                vp_ctx_close(&ctx);
                return cli_fail(&err);
        }
        struct vp_vm *vms = rows;
        if (cli->json) {
                struct json_object *arr = json_object_new_array();
                for (size_t i = 0; i < n; i++)
                        json_object_array_add(arr, cli_vm_json(&ctx, &vms[i], true));
                cli_print_json(arr);
        } else {
                struct cli_table t;
                table_init(&t, 6, "NAME", "ENV", "STATE", "UUID", "MAC", "GEN");
                for (size_t i = 0; i < n; i++) {
                        struct vp_env env = { 0 };
                        vp_row_get_id(ctx.cat, &vp_table_env, vms[i].env_id, &env, NULL);
                        _cleanup_free_ char *gen = vp_strdupf("%lld", (long long)vms[i].generation);
                        table_add(&t, vms[i].name, env.name, vp_vm_state(&ctx, &vms[i]), vms[i].uuid, vms[i].macs, gen);
                        vp_row_clear(&vp_table_env, &env);
                }
                table_print(&t);
        }
        vp_rows_free(&vp_table_vm, rows, n);
        vp_ctx_close(&ctx);
        return 0;
}

static int vm_show(struct vp_cli *cli, const struct cli_args *a)
{
        struct vp_error err = { 0 };
        if (vp_name_check("vm", a->pos[0], &err) < 0)
                return cli_fail(&err);
        struct vp_ctx ctx;
        if (cli_open(cli, &ctx))
                return 1;
        struct vp_vm vm = { 0 };
        if (vp_row_get(ctx.cat, &vp_table_vm, "name", a->pos[0], &vm, &err) < 0) {
                vp_ctx_close(&ctx);
                return cli_fail(&err);
        }
        struct json_object *o = cli_vm_json(&ctx, &vm, true);
        if (cli->json) {
                cli_print_json(o);
        } else {
                struct json_object_iterator it = json_object_iter_begin(o), end = json_object_iter_end(o);
                for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
                        const char *key = json_object_iter_peek_name(&it);
                        struct json_object *val = json_object_iter_peek_value(&it);
                        char k[32];
                        snprintf(k, sizeof(k), "%s:", key);
                        if (json_object_is_type(val, json_type_array)) {
                                printf("%-20s ", k);
                                for (size_t i = 0; i < json_object_array_length(val); i++)
                                        printf("%s%s", i ? "," : "",
                                               json_object_get_string(json_object_array_get_idx(val, i)));
                                putchar('\n');
                        } else {
                                print_field(k, "%s", json_object_get_string(val));
                        }
                }
                json_object_put(o);
        }
        vp_row_clear(&vp_table_vm, &vm);
        vp_ctx_close(&ctx);
        return 0;
}
