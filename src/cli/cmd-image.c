#include "cli.h"

#include "name.h"

static int image_add(struct vp_cli *cli, int argc, char **argv);
static int image_list(struct vp_cli *cli, int argc, char **argv);
static int image_show(struct vp_cli *cli, int argc, char **argv);
static int image_verify(struct vp_cli *cli, int argc, char **argv);
static int image_rm(struct vp_cli *cli, int argc, char **argv);

static const struct cli_verb verbs[] = {
        { "add", image_add,
          "NAME --file PATH [--format qcow2|raw] [--disk-buses LIST] [--nic-models LIST]\n"
          "       [--firmware LIST] [--kernel FILE --initrd FILE --cmdline TEXT]",
          "Place an image read-only under <storage>/images/ after checking its header; record its\n"
          "format, size, SHA-256 and the hardware its guest has drivers for\n"
          "(defaults: buses ide,sata,virtio,scsi; NICs e1000,rtl8139,virtio; firmware bios).", true },
        { "list", image_list, "", "List images.", false },
        { "show", image_show, "NAME", "Show one image.", false },
        { "verify", image_verify, "NAME", "Re-check the header and re-hash the stored image.", false },
        { "rm", image_rm, "NAME", "Remove an image (refused while a pool uses it).", true },
        { 0 },
};

int cmd_image(struct vp_cli *cli, int argc, char **argv)
{
        return cli_dispatch(cli, "image", "Master images on shared storage.", verbs, argc, argv);
}

static void image_text(const struct vp_image *im)
{
        _cleanup_free_ char *vs = format_bytes(im->virtual_size);
        _cleanup_free_ char *fs = format_bytes(im->file_size);
        print_field("name:", "%s", im->name);
        print_field("path:", "%s", im->path);
        print_field("format:", "%s", im->format);
        print_field("virtual size:", "%s", vs);
        print_field("file size:", "%s", fs);
        print_field("sha256:", "%s", im->sha256);
        print_field("disk buses:", "%s", im->disk_buses);
        print_field("nic models:", "%s", im->nic_models);
        print_field("firmware:", "%s", im->firmwares);
        if (im->kernel && *im->kernel) {
                print_field("kernel:", "%s", im->kernel);
                print_field("initrd:", "%s", im->initrd);
                print_field("cmdline:", "%s", im->cmdline);
        }
        print_field("created:", "%s", im->created);
}

static int image_add(struct vp_cli *cli, int argc, char **argv)
{
        struct vp_image_args a = { 0 };
        const struct cli_opt opts[] = {
                { "file", &a.file, NULL }, { "format", &a.format, NULL },
                { "disk-buses", &a.disk_buses, NULL }, { "nic-models", &a.nic_models, NULL },
                { "firmware", &a.firmwares, NULL }, { "kernel", &a.kernel, NULL },
                { "initrd", &a.initrd, NULL }, { "cmdline", &a.cmdline, NULL }, { 0 },
        };
        char **pos;
        int npos;
        CLI_PARSE(cli, &verbs[0], argc, argv, opts, &pos, &npos, 1, 1);
        if (!a.file)
                return cli_usage_error(cli, "missing --file PATH"), EXIT_USAGE;
        a.name = pos[0];
        struct vp_error err = { 0 };
        if (vp_name_check("image", a.name, &err) < 0)
                return cli_fail(&err);
        struct vp_ctx ctx;
        if (cli_open(cli, &ctx))
                return 1;
        struct vp_image im = { 0 };
        int r = vp_image_add(&ctx, &a, &im, &err);
        vp_ctx_close(&ctx);
        if (r < 0)
                return cli_fail(&err);
        if (cli->json)
                cli_print_json(vp_row_to_json(&vp_table_image, &im));
        else if (!cli->quiet)
                printf("image %s added: %s, sha256 %s\n", im.name, im.path, im.sha256);
        vp_row_clear(&vp_table_image, &im);
        return 0;
}

static int image_list(struct vp_cli *cli, int argc, char **argv)
{
        static const struct cli_column cols[] = {
                { "NAME", "name", CLI_PLAIN }, { "FORMAT", "format", CLI_PLAIN },
                { "SIZE", "virtual_size", CLI_BYTES }, { "SHA256", "sha256", CLI_SHORT }, { "PATH", "path", CLI_PLAIN },
        };
        return cli_list(cli, &verbs[1], argc, argv, &vp_table_image, NULL, cols, ELEMENTSOF(cols));
}

static int get_image(struct vp_cli *cli, struct vp_ctx *ctx, const char *name, struct vp_image *im)
{
        struct vp_error err = { 0 };
        if (vp_name_check("image", name, &err) < 0)
                return cli_fail(&err);
        if (cli_open(cli, ctx))
                return 1;
        if (vp_row_get(ctx->cat, &vp_table_image, "name", name, im, &err) < 0) {
                vp_ctx_close(ctx);
                return cli_fail(&err);
        }
        return 0;
}

static int image_show(struct vp_cli *cli, int argc, char **argv)
{
        char **pos;
        int npos;
        CLI_PARSE(cli, &verbs[2], argc, argv, NULL, &pos, &npos, 1, 1);
        struct vp_ctx ctx;
        struct vp_image im = { 0 };
        if (get_image(cli, &ctx, pos[0], &im))
                return 1;
        if (cli->json)
                cli_print_json(vp_row_to_json(&vp_table_image, &im));
        else
                image_text(&im);
        vp_row_clear(&vp_table_image, &im);
        vp_ctx_close(&ctx);
        return 0;
}

static int image_verify(struct vp_cli *cli, int argc, char **argv)
{
        char **pos;
        int npos;
        CLI_PARSE(cli, &verbs[3], argc, argv, NULL, &pos, &npos, 1, 1);
        struct vp_ctx ctx;
        struct vp_image im = { 0 };
        if (get_image(cli, &ctx, pos[0], &im))
                return 1;
        struct vp_error err = { 0 };
        bool ok = false;
        char sha[65] = "";
        int r = vp_image_verify(&ctx, pos[0], &ok, sha, &err);
        vp_ctx_close(&ctx);
        if (r < 0) {
                vp_row_clear(&vp_table_image, &im);
                return cli_fail(&err);
        }
        if (cli->json) {
                struct json_object *o = json_object_new_object();
                json_object_object_add(o, "name", json_object_new_string(im.name));
                json_object_object_add(o, "ok", json_object_new_boolean(ok));
                json_object_object_add(o, "expected_sha256", json_object_new_string(im.sha256));
                json_object_object_add(o, "actual_sha256", json_object_new_string(sha));
                cli_print_json(o);
        } else if (ok) {
                if (!cli->quiet)
                        printf("image %s ok: sha256 %s\n", im.name, sha);
        } else {
                fprintf(stderr, "vpool: image '%s' does not match its record: sha256 %s, expected %s\n",
                        im.name, sha, im.sha256);
        }
        vp_row_clear(&vp_table_image, &im);
        return ok ? 0 : 1;
}

static int image_rm(struct vp_cli *cli, int argc, char **argv)
{
        char **pos;
        int npos;
        CLI_PARSE(cli, &verbs[4], argc, argv, NULL, &pos, &npos, 1, 1);
        struct vp_ctx ctx;
        if (cli_open(cli, &ctx))
                return 1;
        struct vp_error err = { 0 };
        int r = vp_image_rm(&ctx, pos[0], &err);
        vp_ctx_close(&ctx);
        if (r < 0)
                return cli_fail(&err);
        if (!cli->quiet && !cli->json)
                printf("image %s removed\n", pos[0]);
        return 0;
}
