#include "cli.h"

#include <string.h>

#include "fence.h"
#include "host.h"
#include "hostfail.h"
#include "migrate.h"
#include "name.h"
#include "parse.h"
#include "policy.h"

static int env_add(struct vp_cli *cli, const struct cli_args *a);
static int env_list(struct vp_cli *cli, const struct cli_args *a);
static int env_show(struct vp_cli *cli, const struct cli_args *a);
static int env_drain(struct vp_cli *cli, const struct cli_args *a);
static int env_set(struct vp_cli *cli, const struct cli_args *a);
static int env_retire(struct vp_cli *cli, const struct cli_args *a);
static int host_add(struct vp_cli *cli, const struct cli_args *a);
static int host_list(struct vp_cli *cli, const struct cli_args *a);
static int host_rm(struct vp_cli *cli, const struct cli_args *a);
static int host_resume(struct vp_cli *cli, const struct cli_args *a);
static int host_drain(struct vp_cli *cli, const struct cli_args *a);
static int host_maintenance(struct vp_cli *cli, const struct cli_args *a);

static const struct cli_verb host_verbs[] = {
        { .name = "add", .fn = host_add, .usage = "ENV URI [--name NAME]",
          .help = "Add a host to an env: it must answer, be of the env's architecture and offer its\n"
                  "domain type. Its name is the URI's host part unless --name is given.",
          .changes = true, .opts = CLI_OPTS(CLI_VALUE("name")), .minpos = 2, .maxpos = 2 },
        { .name = "list", .fn = host_list, .usage = "ENV",
          .help = "List an env's hosts: reachable or since when not, CPUs, memory and free memory,\n"
                  "domains defined and running, VMs vpool placed there, maintenance.",
          .minpos = 1, .maxpos = 1 },
        { .name = "rm", .fn = host_rm, .usage = "ENV HOST [--force]",
          .help = "Remove a host from an env. Refused while VMs are on it (drain it first), while an\n"
                  "unfinished migration uses it, and for the env's last host. --force removes it with\n"
                  "VMs on it: they stay recorded on no host ('vpool fsck' finds them).",
          .changes = true, .opts = CLI_OPTS(CLI_FLAG("force")), .minpos = 2, .maxpos = 2 },
        { .name = "drain", .fn = host_drain,
          .usage = "ENV HOST [--to HOST]... [--parallel N] [--shutdown-timeout SEC] [--placement spread|pack]\n"
                   "       [--cold]",
          .help = "Maintenance: put HOST in maintenance (no VM is placed there) and move its VMs to the\n"
                  "env's other hosts (only to the --to hosts when given), one migration per pool, with\n"
                  "their hardware unchanged. A running VM moves live (libvirt's live migration, peer to\n"
                  "peer; its disks stay where they are on shared storage) with its delta handed over as\n"
                  "in any migration; a VM that cannot move live, or every VM with --cold, moves cold.\n"
                  "'env host resume' ends the maintenance.",
          .changes = true, .minpos = 2, .maxpos = 2,
          .opts = CLI_OPTS(CLI_VALUES("to"), CLI_VALUE("parallel"), CLI_VALUE("shutdown-timeout"), CLI_VALUE("placement"),
                           CLI_FLAG("cold")) },
        { .name = "maintenance", .fn = host_maintenance, .usage = "ENV HOST",
          .help = "Put HOST in maintenance (no VM is placed there) and move nothing yourself: vpoold's\n"
                  "policy for the env ('env set --on-maintenance') drains it, reports what it would do,\n"
                  "or leaves its VMs where they are. 'env host resume' ends the maintenance.",
          .changes = true, .minpos = 2, .maxpos = 2 },
        { .name = "resume", .fn = host_resume, .usage = "ENV HOST",
          .help = "End a host's maintenance: VMs are placed on it again.", .changes = true,
          .minpos = 2, .maxpos = 2 },
        { 0 },
};

static const struct cli_noun host_noun = {
        .name = "env host", .help = "the hosts of an environment",
        .summary = "The hosts of an environment: libvirt connections, placement and maintenance.",
        .verbs = host_verbs,
};

static int env_rm(struct vp_ctx *ctx, const char *name, const struct cli_act_opts *o, struct vp_error *err)
{
        return vp_env_rm(ctx, name, err);
}

static const struct cli_verb verbs[] = {
        { .name = "add", .fn = env_add,
          .usage = "NAME --uri URI | --host [HOST=]URI... [--domain-type auto|kvm|qemu]\n"
                   "       [--fence-cmd 'PROG ARG...']",
          .help = "Register an environment of one host (--uri) or several (--host, once per host; a host\n"
                  "is named HOST, or by its URI's host part): connect to each and record its capabilities.\n"
                  "The first host's decide the domain type: auto (default) uses kvm only where libvirt\n"
                  "offers it and a probe guest boots under it; else qemu (TCG). Every host must answer.\n"
                  "--fence-cmd: the env's fence agent (see 'env set').",
          .changes = true,
          .opts = CLI_OPTS(CLI_VALUE("uri"), CLI_VALUES("host"), CLI_VALUE("domain-type"), CLI_VALUE("fence-cmd")),
          .minpos = 1, .maxpos = 1 },
        { .name = "set", .fn = env_set,
          .usage = "NAME [--fence-cmd 'PROG ARG...' | --no-fence-cmd] [--on-maintenance drain|report|none]\n"
                   "       [--on-host-failure none|report|evacuate|evacuate:ENV] [--grace SEC]",
          .help = "Change an env's settings (at least one; all are checked before any is changed).\n"
                  "--fence-cmd: the env's fence agent (--no-fence-cmd takes it away). When a host does\n"
                  "not answer (after source_grace seconds), a migration runs PROG with its ARGs (an argv:\n"
                  "no shell; quote a word with blanks in '...' or \"...\"; PROG an absolute path) and\n"
                  "VPOOL_FENCE_ENV, VPOOL_FENCE_URI and VPOOL_FENCE_HOST in its environment. Only exit\n"
                  "status 0 counts as \"powered off\"; it may take fence_timeout seconds. Journaled with\n"
                  "its output.\n"
                  "--on-maintenance: what vpoold does with a host of the env in maintenance that still\n"
                  "holds VMs: drain it (the default), report what it would do, or none.\n"
                  "--on-host-failure: what vpoold does with a host that does not answer for longer than\n"
                  "--grace SEC (default 60): none (the default), report (log and record in the history\n"
                  "what it would do), evacuate (run the fence agent, and once it powered the host off,\n"
                  "move the host's VMs cold to the env's other hosts, started there if they ran; the host\n"
                  "stays in maintenance) or evacuate:ENV (to env ENV, with the same profile). Without a\n"
                  "fence agent nothing is moved.",
          .changes = true,
          .opts = CLI_OPTS(CLI_VALUE("fence-cmd"), CLI_FLAG("no-fence-cmd"), CLI_VALUE("on-maintenance"),
                           CLI_VALUE("on-host-failure"), CLI_VALUE("grace")),
          .minpos = 1, .maxpos = 1 },
        { .name = "retire", .fn = env_retire,
          .usage = "NAME --to ENV [--profile PROF] [--window HH:MM-HH:MM] [--wave N] [--report]\n"
                   "       | NAME --cancel",
          .help = "Mark the env retiring: vpoold migrates its pools to ENV (with PROF, or each pool's own\n"
                  "profile), at most N pools at once (a wave, default 1), the next wave once the one\n"
                  "before has ended, and only inside the daily window (the controller's local time; it\n"
                  "may cross midnight; default any time). A move that fails is not tried again until\n"
                  "the env is retired again. Once the env holds no pool its retirement is complete.\n"
                  "--report: vpoold only logs and records what it would do. Asking again replaces the\n"
                  "settings; --cancel ends the retirement (a move under way finishes).",
          .changes = true,
          .opts = CLI_OPTS(CLI_VALUE("to"), CLI_VALUE("profile"), CLI_VALUE("window"), CLI_VALUE("wave"),
                           CLI_FLAG("report"), CLI_FLAG("cancel")),
          .minpos = 1, .maxpos = 1 },
        { .name = "list", .fn = env_list, .usage = "", .help = "List environments." },
        { .name = "show", .fn = env_show, .usage = "NAME", .help = "Show one environment.", .minpos = 1, .maxpos = 1 },
        { .name = "rm", .fn = cli_act, .usage = "NAME",
          .help = "Forget an environment (refused while a pool or an unfinished migration uses it).\n"
                  "Finished migrations keep its name.", .changes = true,
          .minpos = 1, .maxpos = 1, .act = env_rm, .done = "removed" },
        { .name = "host", .usage = "add|list|rm|drain|maintenance|resume ...", .help = "Manage the hosts of an environment.",
          .sub = &host_noun },
        { .name = "drain", .fn = env_drain,
          .usage = "NAME --to ENV [--profile PROF] [--parallel N] [--shutdown-timeout SEC]\n"
                   "       [--source-fenced NAME] [--placement spread|pack] [--accept-nic-rename]",
          .help = "Maintenance: migrate every pool on NAME to ENV, one migration each.\n"
                  "--source-fenced NAME: the operator's word that NAME, which does not answer, is\n"
                  "powered off (see 'migrate start'). --placement and --accept-nic-rename: as\n"
                  "for 'migrate start', for every pool.", .changes = true,
          .opts = CLI_OPTS(CLI_VALUE("to"), CLI_VALUE("profile"), CLI_VALUE("parallel"), CLI_VALUE("shutdown-timeout"),
                           CLI_VALUE("source-fenced"), CLI_VALUE("placement"), CLI_FLAG("accept-nic-rename")),
          .minpos = 1, .maxpos = 1 },
        { 0 },
};

const struct cli_noun cli_noun_env = {
        .name = "env", .help = "hypervisor environments (clusters of libvirt hosts)",
        .summary = "Hypervisor environments: clusters of hosts, each a libvirt connection URI.", .verbs = verbs,
};

/* The hosts env add is given: --uri URI (one host, named by the URI's host
 * part or after the env), or --host [NAME=]URI once per host. */
static int env_add_hosts(struct vp_cli *cli, const struct cli_args *a, char **copies, struct vp_host_spec *specs,
                         size_t *ret_n, struct vp_error *err)
{
        const char *vals[CLI_MAX_REPEAT];
        size_t n = cli_opt_all(a, "host", vals);
        const char *uri = cli_opt(a, "uri");
        if (!uri && !n)
                return cli_usage_error(cli, "missing --uri URI or --host [HOST=]URI (once per host)");
        if (uri && n)
                return cli_usage_error(cli, "give --uri URI or --host [HOST=]URI, not both");
        if (uri) {
                specs[0] = (struct vp_host_spec){ .uri = uri };
                *ret_n = 1;
                return 0;
        }
        for (size_t i = 0; i < n; i++) {
                copies[i] = vp_strdup(vals[i]);
                int r = vp_host_spec_parse(copies[i], &specs[i], err);
                if (r < 0)
                        return r;
        }
        *ret_n = n;
        return 0;
}

static int env_add(struct vp_cli *cli, const struct cli_args *a)
{
        const char *dtype = cli_opt_or(a, "domain-type", "auto");
        char *copies[CLI_MAX_REPEAT] = { 0 };
        struct vp_host_spec specs[CLI_MAX_REPEAT];
        size_t n = 0;
        struct vp_error err = { 0 };
        int r = env_add_hosts(cli, a, copies, specs, &n, &err);
        if (r < 0) {
                for (size_t i = 0; i < CLI_MAX_REPEAT; i++)
                        free(copies[i]);
                return err.msg[0] ? cli_fail(&err) : EXIT_USAGE;
        }
        struct vp_ctx ctx;
        struct vp_env e = { 0 };
        const char *note = NULL;
        struct json_object *o = NULL;
        if (cli_open(cli, &ctx))
                r = -EIO;
        else {
                r = vp_env_add(&ctx, a->pos[0], specs, n, dtype, cli_opt(a, "fence-cmd"), &e, &note, &err);
                if (r >= 0 && cli->json)
                        r = vp_env_describe(&ctx, e.name, &o, &err);
                vp_ctx_close(&ctx);
                if (r < 0)
                        cli_fail(&err);
        }
        for (size_t i = 0; i < CLI_MAX_REPEAT; i++)
                free(copies[i]);
        if (r < 0) {
                vp_row_clear(&vp_table_env, &e);
                return 1;
        }
        if (cli->json)
                cli_print_json(o);
        else if (!cli->quiet)
                printf("env %s added: %zu host%s, %s, domain type %s%s%s%s\n", e.name, n, n == 1 ? "" : "s", e.arch,
                       vp_hv_pick_domain_type(e.domain_types), note ? " (" : "", note ? note : "", note ? ")" : "");
        vp_row_clear(&vp_table_env, &e);
        return 0;
}

/* An env verb that changes settings: ACT (with UD) on env NAME through an
 * open catalog, writing what it did into DONE; then the env's document with
 * --json, or "env NAME: DONE". Returns the exit code. */
typedef int (*env_act_fn)(struct vp_ctx *ctx, const char *name, const void *ud, char *done, size_t donesz,
                          struct vp_error *err);

static int env_change(struct vp_cli *cli, const char *name, env_act_fn act, const void *ud)
{
        struct vp_ctx ctx;
        if (cli_open(cli, &ctx))
                return 1;
        struct vp_error err = { 0 };
        struct json_object *o = NULL;
        char done[256] = "";
        int r = act(&ctx, name, ud, done, sizeof(done), &err);
        if (r >= 0 && cli->json)
                r = vp_env_describe(&ctx, name, &o, &err);
        vp_ctx_close(&ctx);
        if (r < 0)
                return cli_fail(&err);
        if (cli->json)
                cli_print_json(o);
        else if (!cli->quiet)
                printf("env %s: %s\n", name, done);
        return 0;
}

/* The settings env set was given (UD its arguments): the library checks
 * them all before it writes any. */
static int env_set_apply(struct vp_ctx *ctx, const char *env, const void *ud, char *done, size_t donesz,
                         struct vp_error *err)
{
        const struct cli_args *a = ud;
        const char *maint = cli_opt(a, "on-maintenance");
        struct vp_env_settings set = {
                .fence_cmd = cli_opt(a, "fence-cmd"), .no_fence_cmd = cli_flag(a, "no-fence-cmd"),
                .on_maintenance = maint, .on_host_failure = cli_opt(a, "on-host-failure"), .grace = cli_opt(a, "grace"),
        };
        int r = vp_env_set(ctx, env, &set, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *on_maint = maint ? vp_strdupf("on maintenance %s", maint) : NULL;
        size_t n = 0, off = 0;
        const char *parts[3] = { 0 };
        if (set.fence_cmd || set.no_fence_cmd)
                parts[n++] = set.fence_cmd ? "fence agent set" : "no fence agent";
        if (maint)
                parts[n++] = on_maint;
        if (set.on_host_failure || set.grace)
                parts[n++] = "host failure policy set";
        for (size_t i = 0; i < n && off < donesz; i++)
                off += (size_t)snprintf(done + off, donesz - off, "%s%s", i ? ", " : "", parts[i]);
        return 0;
}

static int env_set(struct vp_cli *cli, const struct cli_args *a)
{
        bool fence = cli_opt(a, "fence-cmd"), none = cli_flag(a, "no-fence-cmd");
        if (fence && none)
                return cli_usage_error(cli, "give either --fence-cmd 'PROG ARG...' or --no-fence-cmd"), EXIT_USAGE;
        if (!fence && !none && !cli_opt(a, "on-maintenance") && !cli_opt(a, "on-host-failure") && !cli_opt(a, "grace"))
                return cli_usage_error(cli, "nothing to set: give --fence-cmd, --no-fence-cmd, --on-maintenance, "
                                       "--on-host-failure or --grace"), EXIT_USAGE;
        return env_change(cli, a->pos[0], env_set_apply, a);
}

static int unretire(struct vp_ctx *ctx, const char *env, const void *ud, char *done, size_t donesz,
                    struct vp_error *err)
{
        snprintf(done, donesz, "retirement cancelled");
        return vp_env_unretire(ctx, env, err);
}

static int retire(struct vp_ctx *ctx, const char *env, const void *ud, char *done, size_t donesz,
                  struct vp_error *err)
{
        const struct vp_retire_args *ra = ud;
        snprintf(done, donesz, "retiring to %s, waves of %lld pool%s, %s%s%s", ra->to, (long long)ra->wave,
                 ra->wave == 1 ? "" : "s", ra->window ? "window " : "any time", ra->window ? ra->window : "",
                 ra->report ? " (report only: vpoold moves nothing)" : "");
        return vp_env_retire(ctx, ra, err);
}

static int env_retire(struct vp_cli *cli, const struct cli_args *a)
{
        static const char *const settings[] = { "to", "profile", "window", "wave" };
        if (cli_flag(a, "cancel")) {
                /* --cancel alone: nothing else goes with it. */
                for (size_t i = 0; i < ELEMENTSOF(settings); i++)
                        if (cli_opt(a, settings[i]))
                                return cli_usage_error(cli, "--cancel takes no --%s", settings[i]), EXIT_USAGE;
                if (cli_flag(a, "report"))
                        return cli_usage_error(cli, "--cancel takes no --report"), EXIT_USAGE;
                return env_change(cli, a->pos[0], unretire, NULL);
        }
        struct vp_retire_args ra = { .env = a->pos[0], .to = cli_opt(a, "to"), .profile = cli_opt(a, "profile"),
                                     .window = cli_opt(a, "window"), .wave = 1, .report = cli_flag(a, "report") };
        if (!ra.to)
                return cli_usage_error(cli, "missing --to ENV (or --cancel)"), EXIT_USAGE;
        struct vp_error err = { 0 };
        uint64_t wave = 1;
        if (cli_opt(a, "wave") && vp_parse_uint("wave", cli_opt(a, "wave"), 1, VP_RETIRE_WAVE_MAX, &wave, &err) < 0)
                return cli_fail(&err);
        ra.wave = (int64_t)wave;
        return env_change(cli, a->pos[0], retire, &ra);
}

/* A retirement in a few words, for the list: "to e2 (retiring)", "" when none. */
static char *retirement_text(struct json_object *o)
{
        struct json_object *rt = NULL;
        if (!json_object_object_get_ex(o, "retirement", &rt) || !rt)
                return vp_strdup("");
        return vp_strdupf("to %s (%s%s)", cli_name(rt, "to"), cli_str(rt, "state"),
                          json_object_get_boolean(json_object_object_get(rt, "report")) ? ", report only" : "");
}

static int env_list(struct vp_cli *cli, const struct cli_args *a)
{
        static const struct cli_column cols[] = {
                { "NAME", "name", CLI_PLAIN }, { "HOSTS", "host_count", CLI_PLAIN }, { "ARCH", "arch", CLI_PLAIN },
                { "TYPES", "domain_types", CLI_PLAIN }, { "CPUS", "cpus", CLI_PLAIN },
                { "MEMORY", "memory_kib", CLI_KIB }, { "RETIREMENT", "retiring", CLI_PLAIN },
        };
        struct vp_ctx ctx;
        if (cli_open(cli, &ctx))
                return 1;
        struct vp_error err = { 0 };
        struct json_object *envs = NULL;
        int r = vp_env_list(&ctx, &envs, &err);
        vp_ctx_close(&ctx);
        if (r < 0)
                return cli_fail(&err);
        if (cli->json) {
                cli_print_json(envs);
                return 0;
        }
        /* The table's column in words, beside the document's object. */
        for (size_t i = 0; i < json_object_array_length(envs); i++) {
                struct json_object *e = json_object_array_get_idx(envs, i);
                _cleanup_free_ char *t = retirement_text(e);
                json_object_object_add(e, "retiring", *t ? json_object_new_string(t) : NULL);
        }
        cli_print_table(envs, cols, ELEMENTSOF(cols));
        json_object_put(envs);
        return 0;
}

/* The fence agent as the operator typed it, or "none". */
static void print_fence(const char *label, struct json_object *o)
{
        struct json_object *f = NULL;
        json_object_object_get_ex(o, "fence_cmd", &f);
        _cleanup_free_ char *shown = f ? vp_fence_cmd_show(json_object_to_json_string(f)) : NULL;
        print_field(label, "%s", shown ? shown : "none");
}

/* The retirement: where to, how, and since when; "none". */
static void print_retirement(const char *label, struct json_object *o)
{
        struct json_object *rt = NULL;
        if (!json_object_object_get_ex(o, "retirement", &rt) || !rt) {
                print_field(label, "none");
                return;
        }
        const char *profile = cli_str(rt, "profile"), *window = cli_str(rt, "window");
        print_field(label, "to %s%s%s, waves of %lld, %s%s, %s since %s%s%s%s", cli_name(rt, "to"),
                    *profile ? " with profile " : "", profile, (long long)cli_int(rt, "wave"),
                    *window ? "window " : "any time", window, cli_str(rt, "state"), cli_str(rt, "since"),
                    *cli_str(rt, "completed") ? ", complete since " : "", cli_str(rt, "completed"),
                    json_object_get_boolean(json_object_object_get(rt, "report")) ? " (report only)" : "");
}

/* The policy as typed, and after how long it acts. */
static void print_host_failure(const char *label, struct json_object *o)
{
        struct json_object *to = NULL;
        json_object_object_get_ex(o, "evacuate_to", &to);
        print_field(label, "%s%s%s (after %lld s)", cli_str(o, "on_host_failure"), to ? ":" : "",
                    to ? json_object_get_string(to) : "", (long long)cli_int(o, "grace"));
}

static void print_hosts(struct json_object *hosts)
{
        static const struct cli_column cols[] = {
                { "NAME", "name", CLI_PLAIN }, { "REACHABLE", "reachable", CLI_YESNO },
                { "SINCE", "unreachable_since", CLI_PLAIN }, { "MAINT", "maintenance", CLI_YESNO },
                { "CPUS", "cpus", CLI_PLAIN }, { "MEMORY", "memory_kib", CLI_KIB },
                { "FREE", "memory_free_kib", CLI_KIB }, { "DEFINED", "domains_defined", CLI_PLAIN },
                { "RUNNING", "domains_running", CLI_PLAIN }, { "VMS", "vm_count", CLI_PLAIN },
                { "URI", "uri", CLI_PLAIN },
        };
        cli_print_table(hosts, cols, ELEMENTSOF(cols));
}

/* An env's document as text: its fields, then its hosts. */
static void env_text(struct json_object *o)
{
        static const struct {
                const char *label, *key;
        } fields[] = {
                { "name:", "name" }, { "arch:", "arch" },
                { "domain types:", "domain_types" },
                { "disk buses:", "disk_buses" }, { "nic models:", "nic_models" }, { "firmwares:", "firmwares" },
                { "machines:", "machines" }, { "pools:", "pool_count" }, { "created:", "created" },
                { "fence agent:", "fence_cmd" }, { "on maintenance:", "on_maintenance" },
                { "on host failure:", "on_host_failure" }, { "retirement:", "retirement" },
        };
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                if (streq(fields[i].key, "memory_kib"))
                        print_field(fields[i].label, "%lld MiB", (long long)(cli_int(o, fields[i].key) / 1024));
                else if (streq(fields[i].key, "fence_cmd"))
                        print_fence(fields[i].label, o);
                else if (streq(fields[i].key, "retirement"))
                        print_retirement(fields[i].label, o);
                else if (streq(fields[i].key, "on_host_failure"))
                        print_host_failure(fields[i].label, o);
                else
                        print_field(fields[i].label, "%s", cli_str(o, fields[i].key));
        }
        struct json_object *hosts = NULL;
        json_object_object_get_ex(o, "hosts", &hosts);
        printf("\nhosts:\n");
        if (hosts)
                print_hosts(hosts);
}

static int env_show(struct vp_cli *cli, const struct cli_args *a)
{
        return cli_show(cli, a, vp_env_describe, env_text);
}

static int env_drain(struct vp_cli *cli, const struct cli_args *a)
{
        const char *to = cli_opt(a, "to"), *profile = cli_opt(a, "profile");
        if (!to)
                return cli_usage_error(cli, "missing --to ENV"), EXIT_USAGE;
        struct vp_error err = { 0 };
        struct vp_migrate_args m = { .to_env = to, .profile = profile, .source_fenced = cli_opt(a, "source-fenced"),
                                     .accept_nic_rename = cli_flag(a, "accept-nic-rename") };
        if (m.source_fenced && !streq(m.source_fenced, a->pos[0]))
                return cli_usage_error(cli, "--source-fenced must name the env drained"), EXIT_USAGE;
        if (vp_name_check("env", a->pos[0], &err) < 0 || vp_name_check("env", to, &err) < 0 ||
            (profile && vp_name_check("profile", profile, &err) < 0) ||
            cli_parse_migrate_opts(cli, a, &m, &err) < 0)
                return cli_fail(&err);
        if (streq(a->pos[0], to))
                return vp_err(&err, -EINVAL, "cannot drain env '%s' onto itself", to), cli_fail(&err);

        /* The pools to move, read once: each migration then runs on its own. */
        struct vp_ctx ctx;
        if (cli_open(cli, &ctx))
                return 1;
        struct json_object *pools = NULL, *dst = NULL;
        int r = vp_pool_list(&ctx, &(struct vp_pool_filter){ .env = a->pos[0] }, &pools, &err);
        if (r >= 0)
                r = vp_env_describe(&ctx, to, &dst, &err);
        vp_ctx_close(&ctx);
        json_object_put(dst);
        if (r < 0) {
                json_object_put(pools);
                return cli_fail(&err);
        }
        size_t n = json_object_array_length(pools);
        char **names = vp_xcalloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++)
                names[i] = vp_strdup(cli_str(json_object_array_get_idx(pools, i), "name"));
        json_object_put(pools);

        if (n == 0 && !cli->quiet && !cli->json)
                printf("env %s hosts no pool; nothing to drain\n", a->pos[0]);
        int rc = 0;
        for (size_t i = 0; i < n; i++) {
                m.pool = names[i];
                if (cli_run_migrate(cli, &m) != 0)
                        rc = 1;
                free(names[i]);
        }
        free(names);
        return rc;
}

/* ---- env host ------------------------------------------------------------- */

static int host_add(struct vp_cli *cli, const struct cli_args *a)
{
        struct vp_host_spec spec = { .name = cli_opt(a, "name"), .uri = a->pos[1] };
        struct vp_error err = { 0 };
        if (vp_name_check("env", a->pos[0], &err) < 0 || (spec.name && vp_name_check("host", spec.name, &err) < 0))
                return cli_fail(&err);
        struct vp_ctx ctx;
        if (cli_open(cli, &ctx))
                return 1;
        struct vp_host h = { 0 };
        struct json_object *o = NULL;
        int r = vp_env_host_add(&ctx, a->pos[0], &spec, &h, &err);
        if (r >= 0 && cli->json)
                r = vp_env_hosts_describe(&ctx, a->pos[0], true, &o, &err);
        vp_ctx_close(&ctx);
        if (r < 0) {
                vp_row_clear(&vp_table_host, &h);
                return cli_fail(&err);
        }
        if (cli->json)
                cli_print_json(o);
        else if (!cli->quiet)
                printf("host %s added to env %s: %lld CPUs, %lld MiB\n", h.name, a->pos[0], (long long)h.cpus,
                       (long long)(h.memory_kib / 1024));
        vp_row_clear(&vp_table_host, &h);
        return 0;
}

static int hosts_live(struct vp_ctx *ctx, const char *env, struct json_object **ret, struct vp_error *err)
{
        return vp_env_hosts_describe(ctx, env, true, ret, err);
}

static int host_list(struct vp_cli *cli, const struct cli_args *a)
{
        return cli_show(cli, a, hosts_live, print_hosts);
}

/* A verb on host pos[1] of env pos[0] that prints "host HOST DONE". */
static int host_act(struct vp_cli *cli, const struct cli_args *a,
                    int (*act)(struct vp_ctx *ctx, const char *env, const char *host, bool flag, struct vp_error *err),
                    bool flag, const char *done)
{
        struct vp_error err = { 0 };
        if (vp_name_check("env", a->pos[0], &err) < 0 || vp_name_check("host", a->pos[1], &err) < 0)
                return cli_fail(&err);
        struct vp_ctx ctx;
        if (cli_open(cli, &ctx))
                return 1;
        int r = act(&ctx, a->pos[0], a->pos[1], flag, &err);
        vp_ctx_close(&ctx);
        if (r < 0)
                return cli_fail(&err);
        /* With --json it prints nothing, as every verb that only acts. */
        if (!cli->quiet && !cli->json)
                printf("host %s of env %s %s\n", a->pos[1], a->pos[0], done);
        return 0;
}

static int host_rm(struct vp_cli *cli, const struct cli_args *a)
{
        return host_act(cli, a, vp_env_host_rm, cli_flag(a, "force"), "removed");
}

static int host_resume(struct vp_cli *cli, const struct cli_args *a)
{
        return host_act(cli, a, vp_env_host_set_maintenance, false, "out of maintenance");
}

static int host_maintenance(struct vp_cli *cli, const struct cli_args *a)
{
        return host_act(cli, a, vp_env_host_set_maintenance, true, "in maintenance");
}

static int host_drain(struct vp_cli *cli, const struct cli_args *a)
{
        const char *to[CLI_MAX_REPEAT];
        size_t nto = cli_opt_all(a, "to", to);
        struct vp_error err = { 0 };
        struct vp_migrate_args m = { .to_env = a->pos[0], .from_host = a->pos[1], .to_hosts = to, .nto_hosts = nto,
                                     .live = !cli_flag(a, "cold") };
        if (vp_name_check("env", a->pos[0], &err) < 0 || vp_name_check("host", a->pos[1], &err) < 0 ||
            cli_parse_migrate_opts(cli, a, &m, &err) < 0)
                return cli_fail(&err);

        struct vp_ctx ctx;
        if (cli_open(cli, &ctx))
                return 1;
        char **pools = NULL;
        size_t n = 0;
        int r = vp_env_host_drain_begin(&ctx, a->pos[0], a->pos[1], to, nto, &pools, &n, &err);
        vp_ctx_close(&ctx);
        if (r < 0)
                return cli_fail(&err);
        if (!cli->quiet && !cli->json)
                printf("host %s of env %s in maintenance%s\n", a->pos[1], a->pos[0],
                       n ? "" : "; it holds no VM of any pool");
        int rc = 0;
        for (size_t i = 0; i < n; i++) {
                m.pool = pools[i];
                if (cli_run_migrate(cli, &m) != 0)
                        rc = 1;
                free(pools[i]);
        }
        free(pools);
        return rc;
}
