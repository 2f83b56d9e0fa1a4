#include "cli.h"

#include "name.h"

static int image_add(struct vp_cli *cli, const struct cli_args *a);
static int image_list(struct vp_cli *cli, const struct cli_args *a);
static int image_show(struct vp_cli *cli, const struct cli_args *a);
static int image_verify(struct vp_cli *cli, const struct cli_args *a);

static int image_rm(struct vp_ctx *ctx, const char *name, const struct cli_act_opts *o, struct vp_error *err)
{
        return vp_image_rm(ctx, name, err);
}

static const struct cli_verb verbs[] = {
        { .name = "add", .fn = image_add,
          .usage = "NAME --file PATH [--format qcow2|raw] [--disk-buses LIST] [--nic-models LIST]\n"
                   "       [--firmware LIST] [--kernel FILE --initrd FILE --cmdline TEXT] [--no-inspect]",
          .help = "Place an image read-only under <storage>/images/ after checking its header; inspect its\n"
                  "guest with libguestfs (read-only, once per digest) and record its format, size, SHA-256\n"
                  "and the hardware its guest has drivers for: a declared bus, NIC model or firmware the\n"
                  "guest cannot use is refused, one left out is what inspection found. An image whose OS\n"
                  "inspection cannot read needs all three declared. --no-inspect, and --kernel (direct\n"
                  "boot), record the declaration as given (defaults: buses ide,sata,virtio,scsi;\n"
                  "NICs e1000,rtl8139,virtio; firmware bios).",
          .changes = true,
          .opts = CLI_OPTS(CLI_VALUE("file"), CLI_VALUE("format"), CLI_VALUE("disk-buses"), CLI_VALUE("nic-models"),
                           CLI_VALUE("firmware"), CLI_VALUE("kernel"), CLI_VALUE("initrd"), CLI_VALUE("cmdline"),
                           CLI_FLAG("no-inspect")),
          .minpos = 1, .maxpos = 1 },
        { .name = "list", .fn = image_list, .usage = "", .help = "List images." },
        { .name = "show", .fn = image_show, .usage = "NAME", .help = "Show one image.", .minpos = 1, .maxpos = 1 },
        { .name = "verify", .fn = image_verify, .usage = "NAME",
          .help = "Re-check the header and re-hash the stored image.", .minpos = 1, .maxpos = 1 },
        { .name = "rm", .fn = cli_act, .usage = "NAME", .help = "Remove an image (refused while a pool uses it).",
          .changes = true, .minpos = 1, .maxpos = 1, .act = image_rm, .done = "removed" },
        { 0 },
};

const struct cli_noun cli_noun_image = {
        .name = "image", .help = "master images on shared storage", .summary = "Master images on shared storage.",
        .verbs = verbs,
};

/* What inspection found, in the words of the refusals it leads to. */
static void inspection_text(struct json_object *o)
{
        struct json_object *rep, *missing, *net;
        if (!json_object_object_get_ex(o, "inspection", &rep) || !rep) {
                print_field("inspection:", "%s", "none (declared hardware)");
                return;
        }
        _cleanup_free_ char *summary = vp_inspect_summary(rep);
        print_field("inspection:", "%s, %.1fs", summary, json_object_get_double(json_object_object_get(rep, "seconds")));
        if (*cli_str(rep, "kernel"))
                print_field("  kernel:", "%s", cli_str(rep, "kernel"));
        if (json_object_object_get_ex(rep, "missing", &missing) && missing)
                for (size_t i = 0; i < json_object_array_length(missing); i++) {
                        struct json_object *m = json_object_array_get_idx(missing, i);
                        print_field("  cannot use:", "%s %s (no %s in %s)", cli_str(m, "kind"), cli_str(m, "hardware"),
                                    cli_str(m, "driver"), cli_str(m, "place"));
                }
        if (json_object_object_get_ex(rep, "network", &net) && net)
                print_field("  network:", "%s by %s%s%s", *cli_str(net, "tools") ? cli_str(net, "tools") : "none",
                            cli_str(net, "match"), *cli_str(net, "interfaces") ? " " : "", cli_str(net, "interfaces"));
}

static void image_text(struct json_object *o)
{
        _cleanup_free_ char *vs = format_bytes(cli_int(o, "virtual_size"));
        _cleanup_free_ char *fs = format_bytes(cli_int(o, "file_size"));
        print_field("name:", "%s", cli_str(o, "name"));
        print_field("path:", "%s", cli_str(o, "path"));
        print_field("format:", "%s", cli_str(o, "format"));
        print_field("virtual size:", "%s", vs);
        print_field("file size:", "%s", fs);
        print_field("sha256:", "%s", cli_str(o, "sha256"));
        print_field("disk buses:", "%s", cli_str(o, "disk_buses"));
        print_field("nic models:", "%s", cli_str(o, "nic_models"));
        print_field("firmware:", "%s", cli_str(o, "firmwares"));
        if (*cli_str(o, "kernel")) {
                print_field("kernel:", "%s", cli_str(o, "kernel"));
                print_field("initrd:", "%s", cli_str(o, "initrd"));
                print_field("cmdline:", "%s", cli_str(o, "cmdline"));
        }
        print_field("created:", "%s", cli_str(o, "created"));
        inspection_text(o);
}

/* The appliance gives no progress of its own while it starts (most of an
 * inspection under TCG): a spinner with the stage and the seconds. */
static void inspect_progress(void *ud, const char *stage, unsigned elapsed)
{
        static const char spin[] = "|/-\\";
        fprintf(stderr, "\r\033[K%c inspecting %s: %s (%us)", spin[elapsed % 4], (const char *)ud, stage, elapsed);
}

static int image_add(struct vp_cli *cli, const struct cli_args *a)
{
        _cleanup_free_ char *warning = NULL;
        bool tty = !cli->quiet && !cli->json && isatty(STDERR_FILENO);
        struct vp_image_args ia = {
                .no_inspect = cli_flag(a, "no-inspect"), .ret_warning = &warning,
                .progress = tty ? inspect_progress : NULL, .progress_ud = (void *)a->pos[0],
                .name = a->pos[0], .file = cli_opt(a, "file"), .format = cli_opt(a, "format"),
                .disk_buses = cli_opt(a, "disk-buses"), .nic_models = cli_opt(a, "nic-models"),
                .firmwares = cli_opt(a, "firmware"), .kernel = cli_opt(a, "kernel"), .initrd = cli_opt(a, "initrd"),
                .cmdline = cli_opt(a, "cmdline"),
        };
        if (!ia.file)
                return cli_usage_error(cli, "missing --file PATH"), EXIT_USAGE;
        struct vp_error err = { 0 };
        if (vp_name_check("image", ia.name, &err) < 0)
                return cli_fail(&err);
        struct vp_ctx ctx;
        if (cli_open(cli, &ctx))
                return 1;
        struct vp_image im = { 0 };
        int r = vp_image_add(&ctx, &ia, &im, &err);
        if (tty)
                fputs("\r\033[K", stderr);
        struct json_object *o = NULL;
        if (r >= 0 && cli->json)
                r = vp_image_describe(&ctx, im.name, &o, &err);
        vp_ctx_close(&ctx);
        if (r < 0) {
                vp_row_clear(&vp_table_image, &im);
                return cli_fail(&err);
        }
        if (warning)
                fprintf(stderr, "vpool: warning: %s\n", warning);
        if (cli->json)
                cli_print_json(o);
        else if (!cli->quiet)
                printf("image %s added: %s, sha256 %s\n", im.name, im.path, im.sha256);
        vp_row_clear(&vp_table_image, &im);
        return 0;
}

static int image_list(struct vp_cli *cli, const struct cli_args *a)
{
        static const struct cli_column cols[] = {
                { "NAME", "name", CLI_PLAIN }, { "FORMAT", "format", CLI_PLAIN },
                { "SIZE", "virtual_size", CLI_BYTES }, { "SHA256", "sha256", CLI_SHORT }, { "PATH", "path", CLI_PLAIN },
        };
        return cli_list(cli, vp_image_list, cols, ELEMENTSOF(cols));
}

static int image_show(struct vp_cli *cli, const struct cli_args *a)
{
        return cli_show(cli, a, vp_image_describe, image_text);
}

static int image_verify(struct vp_cli *cli, const struct cli_args *a)
{
        struct json_object *o = NULL;
        int r = cli_read(cli, a->pos[0], vp_image_check, &o);
        if (r)
                return r;
        struct json_object *ok_field;
        bool ok = json_object_object_get_ex(o, "ok", &ok_field) && json_object_get_boolean(ok_field);
        if (cli->json) {
                cli_print_json(o);
                return ok ? 0 : 1;
        }
        if (ok) {
                if (!cli->quiet)
                        printf("image %s ok: sha256 %s\n", cli_str(o, "name"), cli_str(o, "actual_sha256"));
        } else {
                fprintf(stderr, "vpool: image '%s' does not match its record: sha256 %s, expected %s\n",
                        cli_str(o, "name"), cli_str(o, "actual_sha256"), cli_str(o, "expected_sha256"));
        }
        json_object_put(o);
        return ok ? 0 : 1;
}
