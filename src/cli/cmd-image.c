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
                   "       [--firmware LIST] [--kernel FILE --initrd FILE --cmdline TEXT]",
          .help = "Place an image read-only under <storage>/images/ after checking its header; record its\n"
                  "format, size, SHA-256 and the hardware its guest has drivers for\n"
                  "(defaults: buses ide,sata,virtio,scsi; NICs e1000,rtl8139,virtio; firmware bios).",
          .changes = true,
          .opts = CLI_OPTS(CLI_VALUE("file"), CLI_VALUE("format"), CLI_VALUE("disk-buses"), CLI_VALUE("nic-models"),
                           CLI_VALUE("firmware"), CLI_VALUE("kernel"), CLI_VALUE("initrd"), CLI_VALUE("cmdline")),
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
}

static int image_add(struct vp_cli *cli, const struct cli_args *a)
{
        struct vp_image_args ia = {
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
        vp_ctx_close(&ctx);
        if (r < 0)
                return cli_fail(&err);
        if (cli->json)
                cli_print_json(vp_image_json(&im));
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
