#include "cli.h"

#include "name.h"
#include "parse.h"

static int profile_add(struct vp_cli *cli, int argc, char **argv);
static int profile_list(struct vp_cli *cli, int argc, char **argv);
static int profile_show(struct vp_cli *cli, int argc, char **argv);
static int profile_rm(struct vp_cli *cli, int argc, char **argv);

static const struct cli_verb verbs[] = {
        { "add", profile_add,
          "NAME --machine pc|q35 --disk-bus ide|sata|virtio|scsi --nic e1000|rtl8139|virtio|none\n"
          "       --vcpus N --memory SIZE [--firmware bios|uefi] [--cpu MODE]",
          "Define the virtual hardware a pool's VMs get. SIZE takes K, M, G suffixes (plain: MiB);\n"
          "MODE is host-passthrough, host-model or maximum (default: the hypervisor's).", true },
        { "list", profile_list, "", "List profiles.", false },
        { "show", profile_show, "NAME", "Show one profile.", false },
        { "rm", profile_rm, "NAME", "Remove a profile (refused while a pool uses it).", true },
        { 0 },
};

int cmd_profile(struct vp_cli *cli, int argc, char **argv)
{
        return cli_dispatch(cli, "profile", "Hardware profiles.", verbs, argc, argv);
}

static int profile_add(struct vp_cli *cli, int argc, char **argv)
{
        const char *machine = NULL, *bus = NULL, *nic = NULL, *vcpus = NULL, *memory = NULL;
        const char *firmware = "bios", *cpu = "";
        const struct cli_opt opts[] = {
                { "machine", &machine, NULL }, { "disk-bus", &bus, NULL }, { "nic", &nic, NULL },
                { "vcpus", &vcpus, NULL }, { "memory", &memory, NULL }, { "firmware", &firmware, NULL },
                { "cpu", &cpu, NULL }, { 0 },
        };
        char **pos;
        int npos;
        CLI_PARSE(cli, &verbs[0], argc, argv, opts, &pos, &npos, 1, 1);
        const char *missing = !machine ? "--machine" : !bus ? "--disk-bus" : !nic ? "--nic"
                            : !vcpus ? "--vcpus" : !memory ? "--memory" : NULL;
        if (missing)
                return cli_usage_error(cli, "missing %s", missing), EXIT_USAGE;
        struct vp_error err = { 0 };
        uint64_t nv, mem;
        if (vp_name_check("profile", pos[0], &err) < 0 ||
            vp_parse_uint("vCPU count", vcpus, 1, 255, &nv, &err) < 0 ||
            vp_parse_size("memory", memory, 1024 * 1024, 4ULL << 40, &mem, &err) < 0)
                return cli_fail(&err);
        if (mem % (1024 * 1024))
                return vp_err(&err, -EINVAL, "memory '%s' is not a whole number of MiB", memory), cli_fail(&err);
        struct vp_profile p = {
                .name = pos[0], .machine = (char *)machine, .disk_bus = (char *)bus, .nic = (char *)nic,
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
                cli_print_json(vp_row_to_json(&vp_table_profile, &p));
        else if (!cli->quiet)
                printf("profile %s added: %s, %s disk, %s NIC, %lld vCPU, %lld MiB, %s\n", p.name, p.machine,
                       p.disk_bus, p.nic, (long long)p.vcpus, (long long)p.memory_mib, p.firmware);
        free(p.created);
        return 0;
}

static int profile_list(struct vp_cli *cli, int argc, char **argv)
{
        static const struct cli_column cols[] = {
                { "NAME", "name", CLI_PLAIN }, { "MACHINE", "machine", CLI_PLAIN }, { "DISK", "disk_bus", CLI_PLAIN },
                { "NIC", "nic", CLI_PLAIN }, { "VCPUS", "vcpus", CLI_PLAIN }, { "MEMORY_MIB", "memory_mib", CLI_PLAIN },
                { "FIRMWARE", "firmware", CLI_PLAIN }, { "CPU", "cpu_mode", CLI_PLAIN },
        };
        return cli_list(cli, &verbs[1], argc, argv, &vp_table_profile, NULL, cols, ELEMENTSOF(cols));
}

static int profile_show(struct vp_cli *cli, int argc, char **argv)
{
        char **pos;
        int npos;
        CLI_PARSE(cli, &verbs[2], argc, argv, NULL, &pos, &npos, 1, 1);
        struct vp_error err = { 0 };
        if (vp_name_check("profile", pos[0], &err) < 0)
                return cli_fail(&err);
        struct vp_ctx ctx;
        if (cli_open(cli, &ctx))
                return 1;
        struct vp_profile p = { 0 };
        int r = vp_row_get(ctx.cat, &vp_table_profile, "name", pos[0], &p, &err);
        vp_ctx_close(&ctx);
        if (r < 0)
                return cli_fail(&err);
        if (cli->json) {
                cli_print_json(vp_row_to_json(&vp_table_profile, &p));
        } else {
                print_field("name:", "%s", p.name);
                print_field("machine:", "%s", p.machine);
                print_field("disk bus:", "%s", p.disk_bus);
                print_field("nic:", "%s", p.nic);
                print_field("vcpus:", "%lld", (long long)p.vcpus);
                print_field("memory:", "%lld MiB", (long long)p.memory_mib);
                print_field("firmware:", "%s", p.firmware);
                print_field("cpu mode:", "%s", *p.cpu_mode ? p.cpu_mode : "(hypervisor default)");
                print_field("created:", "%s", p.created);
        }
        vp_row_clear(&vp_table_profile, &p);
        return 0;
}

static int profile_rm(struct vp_cli *cli, int argc, char **argv)
{
        char **pos;
        int npos;
        CLI_PARSE(cli, &verbs[3], argc, argv, NULL, &pos, &npos, 1, 1);
        struct vp_ctx ctx;
        if (cli_open(cli, &ctx))
                return 1;
        struct vp_error err = { 0 };
        int r = vp_profile_rm(&ctx, pos[0], &err);
        vp_ctx_close(&ctx);
        if (r < 0)
                return cli_fail(&err);
        if (!cli->quiet && !cli->json)
                printf("profile %s removed\n", pos[0]);
        return 0;
}
