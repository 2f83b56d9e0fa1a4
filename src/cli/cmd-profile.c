#include "cli.h"

#include "name.h"
#include "parse.h"

static int profile_add(struct vp_cli *cli, const struct cli_args *a);
static int profile_list(struct vp_cli *cli, const struct cli_args *a);
static int profile_show(struct vp_cli *cli, const struct cli_args *a);

static int profile_rm(struct vp_ctx *ctx, const char *name, const struct cli_act_opts *o, struct vp_error *err)
{
        return vp_profile_rm(ctx, name, err);
}

static const struct cli_verb verbs[] = {
        { .name = "add", .fn = profile_add,
          .usage = "NAME --machine pc|q35 --disk-bus ide|sata|virtio|scsi --nic e1000|rtl8139|virtio|none\n"
                   "       --vcpus N --memory SIZE [--firmware bios|uefi] [--cpu MODE]",
          .help = "Define the virtual hardware a pool's VMs get. SIZE takes K, M, G suffixes (plain: MiB);\n"
                  "MODE is host-passthrough, host-model or maximum (default: the hypervisor's).",
          .changes = true,
          .opts = CLI_OPTS(CLI_VALUE("machine"), CLI_VALUE("disk-bus"), CLI_VALUE("nic"), CLI_VALUE("vcpus"),
                           CLI_VALUE("memory"), CLI_VALUE("firmware"), CLI_VALUE("cpu")),
          .minpos = 1, .maxpos = 1 },
        { .name = "list", .fn = profile_list, .usage = "", .help = "List profiles." },
        { .name = "show", .fn = profile_show, .usage = "NAME", .help = "Show one profile.", .minpos = 1, .maxpos = 1 },
        { .name = "rm", .fn = cli_act, .usage = "NAME", .help = "Remove a profile (refused while a pool or an unfinished migration uses it).\n"
                  "Finished migrations keep its name.",
          .changes = true, .minpos = 1, .maxpos = 1, .act = profile_rm, .done = "removed" },
        { 0 },
};

const struct cli_noun cli_noun_profile = {
        .name = "profile", .help = "hardware profiles", .summary = "Hardware profiles.", .verbs = verbs,
};

static int profile_add(struct vp_cli *cli, const struct cli_args *a)
{
        const char *machine = cli_opt(a, "machine"), *bus = cli_opt(a, "disk-bus"), *nic = cli_opt(a, "nic");
        const char *vcpus = cli_opt(a, "vcpus"), *memory = cli_opt(a, "memory");
        const char *firmware = cli_opt(a, "firmware"), *cpu = cli_opt(a, "cpu");
        const char *missing = !machine ? "--machine" : !bus ? "--disk-bus" : !nic ? "--nic"
                            : !vcpus ? "--vcpus" : !memory ? "--memory" : NULL;
        if (missing)
                return cli_usage_error(cli, "missing %s", missing), EXIT_USAGE;
        struct vp_error err = { 0 };
        uint64_t nv, mem;
        if (vp_name_check("profile", a->pos[0], &err) < 0 ||
            vp_parse_uint("vCPU count", vcpus, 1, VP_PROFILE_VCPUS_MAX, &nv, &err) < 0 ||
            vp_parse_size("memory", memory, 1024 * 1024, (uint64_t)VP_PROFILE_MEMORY_MIB_MAX << 20, &mem, &err) < 0)
                return cli_fail(&err);
        if (mem % (1024 * 1024))
                return vp_err(&err, -EINVAL, "memory '%s' is not a whole number of MiB", memory), cli_fail(&err);
        struct vp_profile p = {
                .name = a->pos[0], .machine = (char *)machine, .disk_bus = (char *)bus, .nic = (char *)nic,
                .vcpus = (int64_t)nv, .memory_mib = (int64_t)(mem >> 20), .firmware = (char *)firmware,
                .cpu_mode = (char *)cpu,
        };
        struct vp_ctx ctx;
        if (cli_open(cli, &ctx))
                return 1;
        int r = vp_profile_add(&ctx, &p, &err);
        vp_ctx_close(&ctx);
        if (r < 0) {
                free(p.created);
                return cli_fail(&err);
        }
        if (cli->json)
                cli_print_json(vp_profile_json(&p));
        else if (!cli->quiet)
                printf("profile %s added: %s, %s disk, %s NIC, %lld vCPU, %lld MiB, %s\n", p.name, p.machine,
                       p.disk_bus, p.nic, (long long)p.vcpus, (long long)p.memory_mib, p.firmware);
        free(p.created);
        return 0;
}

static int profile_list(struct vp_cli *cli, const struct cli_args *a)
{
        static const struct cli_column cols[] = {
                { "NAME", "name", CLI_PLAIN }, { "MACHINE", "machine", CLI_PLAIN }, { "DISK", "disk_bus", CLI_PLAIN },
                { "NIC", "nic", CLI_PLAIN }, { "VCPUS", "vcpus", CLI_PLAIN }, { "MEMORY_MIB", "memory_mib", CLI_PLAIN },
                { "FIRMWARE", "firmware", CLI_PLAIN }, { "CPU", "cpu_mode", CLI_PLAIN },
        };
        return cli_list(cli, vp_profile_list, cols, ELEMENTSOF(cols));
}

static void profile_text(struct json_object *o)
{
        print_field("name:", "%s", cli_str(o, "name"));
        print_field("machine:", "%s", cli_str(o, "machine"));
        print_field("disk bus:", "%s", cli_str(o, "disk_bus"));
        print_field("nic:", "%s", cli_str(o, "nic"));
        print_field("vcpus:", "%s", cli_str(o, "vcpus"));
        print_field("memory:", "%s MiB", cli_str(o, "memory_mib"));
        print_field("firmware:", "%s", cli_str(o, "firmware"));
        print_field("cpu mode:", "%s", *cli_str(o, "cpu_mode") ? cli_str(o, "cpu_mode") : "(hypervisor default)");
        print_field("created:", "%s", cli_str(o, "created"));
}

static int profile_show(struct vp_cli *cli, const struct cli_args *a)
{
        return cli_show(cli, a, vp_profile_describe, profile_text);
}
