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
          .subject = CLI_SUBJECT_VM, .minpos = 1, .maxpos = 1, .act = vm_start, .done = "started" },
        { .name = "stop", .fn = cli_act, .usage = "NAME [--timeout SEC] [--force]",
          .help = "Shut a VM down gracefully, waiting up to SEC (default 60) seconds;\n"
                  "with --force, power it off when it has not stopped by then.",
          .changes = true, .subject = CLI_SUBJECT_VM, .opts = CLI_OPTS(CLI_VALUE("timeout"), CLI_FLAG("force")),
          .minpos = 1, .maxpos = 1, .act = vm_stop, .done = "stopped" },
        { 0 },
};

const struct cli_noun cli_noun_vm = {
        .name = "vm", .help = "the VMs of pools", .summary = "The VMs of pools.", .verbs = verbs,
};

/* The elements of array A joined by commas. */
static char *join(struct json_object *a)
{
        _cleanup_free_ char *out = vp_strdup("");
        for (size_t i = 0; a && i < json_object_array_length(a); i++) {
                char *n = vp_strdupf("%s%s%s", out, i ? "," : "", json_object_get_string(json_object_array_get_idx(a, i)));
                free(out);
                out = n;
        }
        return TAKE_PTR(out);
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
        struct json_object *vms = NULL;
        int r = vp_vm_list(&ctx, pool, &vms, &err);
        vp_ctx_close(&ctx);
        if (r < 0)
                return cli_fail(&err);
        if (cli->json) {
                cli_print_json(vms);
                return 0;
        }
        struct cli_table t;
        table_init(&t, 7, "NAME", "ENV", "HOST", "STATE", "UUID", "MAC", "GEN");
        for (size_t i = 0; i < json_object_array_length(vms); i++) {
                struct json_object *v = json_object_array_get_idx(vms, i), *macs = NULL;
                json_object_object_get_ex(v, "macs", &macs);
                _cleanup_free_ char *mac = join(macs);
                table_add(&t, cli_str(v, "name"), *cli_str(v, "env") ? cli_str(v, "env") : NULL,
                          *cli_str(v, "host") ? cli_str(v, "host") : NULL, cli_str(v, "state"),
                          cli_str(v, "uuid"), mac, cli_str(v, "generation"));
        }
        table_print(&t);
        json_object_put(vms);
        return 0;
}

/* Every field of the VM's document, in its order, as "key: value"; a
 * field without a value is left out. */
static void vm_text(struct json_object *o)
{
        struct json_object_iterator it = json_object_iter_begin(o), end = json_object_iter_end(o);
        for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
                struct json_object *val = json_object_iter_peek_value(&it);
                char k[32];
                snprintf(k, sizeof(k), "%s:", json_object_iter_peek_name(&it));
                if (!val)
                        continue;
                if (json_object_is_type(val, json_type_array)) {
                        _cleanup_free_ char *list = join(val);
                        print_field(k, "%s", list);
                } else {
                        print_field(k, "%s", json_object_get_string(val));
                }
        }
}

static int vm_show(struct vp_cli *cli, const struct cli_args *a)
{
        return cli_show(cli, a, vp_vm_describe, vm_text);
}
