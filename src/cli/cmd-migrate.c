#include "cli.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "fence.h"
#include "migrate.h"
#include "name.h"
#include "parse.h"

static int mig_start(struct vp_cli *cli, const struct cli_args *a);
static int mig_list(struct vp_cli *cli, const struct cli_args *a);
static int mig_status(struct vp_cli *cli, const struct cli_args *a);
static int mig_resume(struct vp_cli *cli, const struct cli_args *a);
static int mig_abort(struct vp_cli *cli, const struct cli_args *a);

static const struct cli_verb verbs[] = {
        { .name = "start", .fn = mig_start,
          .usage = "POOL --to ENV [--profile PROF] [--parallel N] [--shutdown-timeout SEC] [--dry-run]\n"
                   "       [--source-fenced ENV] [--placement spread|pack] [--accept-nic-rename]",
          .help = "Move POOL to ENV (and to PROF's hardware): lock each VM's user delta, provision the VM\n"
                  "on ENV with the same identity, hand the delta over to it, start it if it ran.\n"
                  "Prints the migration id first. 'vpool migrate POOL ...' means the same.\n"
                  "A source env that does not answer is retried for source_grace seconds, then fenced by\n"
                  "its agent ('env set --fence-cmd'); --source-fenced ENV is the operator's word that\n"
                  "ENV, the pool's env, is powered off (recorded with who said it; refused if ENV\n"
                  "answers). Either way no delta is handed over while any process still holds a lock on\n"
                  "its disks.\n"
                  "--parallel (VMs at the hypervisors at once) and --shutdown-timeout default to the configured values,\n"
                  "8 and 120 s unless set (see 'vpool config show'). Each VM goes to the host of ENV that\n"
                  "placement picks (see 'pool create'; --placement spread, the default, or pack).\n"
                  "A move that changes the NIC's model or PCI address (machine type) of a guest whose\n"
                  "network is configured by interface name, as inspection found, is shown by --dry-run\n"
                  "and refused unless --accept-nic-rename.",
          .changes = true, .subject = CLI_SUBJECT_POOL,
          .opts = CLI_OPTS(CLI_VALUE("to"), CLI_VALUE("profile"), CLI_VALUE("parallel"), CLI_VALUE("shutdown-timeout"),
                           CLI_FLAG("dry-run"), CLI_VALUE("source-fenced"), CLI_VALUE("placement"),
                           CLI_FLAG("accept-nic-rename")),
          .minpos = 1, .maxpos = 1 },
        { .name = "list", .fn = mig_list, .usage = "",
          .help = "List migrations: id, pool, from, to, state, VMs done / total." },
        { .name = "status", .fn = mig_status, .usage = "ID [--watch]",
          .help = "Per VM: step reached, source and target, generation, error.\n"
                  "--watch follows a running migration (from any terminal) until it ends: progress on a\n"
                  "terminal, one JSON event per journal entry with --json; then the status. Exit code 0\n"
                  "when the migration is done, 1 when it ended otherwise (partial, aborted, interrupted).",
          .opts = CLI_OPTS(CLI_FLAG("watch")), .minpos = 1, .maxpos = 1 },
        { .name = "resume", .fn = mig_resume, .usage = "ID [--source-fenced ENV]",
          .help = "Finish an interrupted or partial migration from its journal. A VM whose disks some\n"
                  "process still locks waits; resume retries it.\n"
                  "--source-fenced ENV: the operator's word that ENV, a source that does not answer, is\n"
                  "powered off (see 'migrate start').", .changes = true,
          .subject = CLI_SUBJECT_MIGRATION, .opts = CLI_OPTS(CLI_VALUE("source-fenced")),
          .minpos = 1, .maxpos = 1 },
        { .name = "abort", .fn = mig_abort, .usage = "ID",
          .help = "Return every VM not yet handed over to its source, as it was.", .changes = true,
          .subject = CLI_SUBJECT_MIGRATION,
          .minpos = 1, .maxpos = 1 },
        { 0 },
};

const struct cli_noun cli_noun_migrate = {
        .name = "migrate", .help = "move a pool to another env and other hardware",
        .summary = "Move pools between environments and virtual hardware by handing over user deltas.\n"
                   "Usage also: vpool migrate POOL --to ENV [options] (same as 'migrate start').",
        .verbs = verbs, .implicit = "start",
};

/* ---- progress and events -------------------------------------------------- */

struct progress {
        struct vp_cli *cli;
        bool tty;
        bool json;
        struct timespec start;
        size_t total;
        size_t reached[VP_STEP_MAX];   /* VMs per step reached */
        size_t failures;
        size_t ended_before;       /* VMs done or returned before this run (resume, abort) */
        pthread_mutex_t lock;
};

static double elapsed(const struct progress *p)
{
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        return (double)(now.tv_sec - p->start.tv_sec) + (double)(now.tv_nsec - p->start.tv_nsec) / 1e9;
}

/* One JSON document on one line: an event of the stream, or its outcome. */
static void print_line(struct json_object *o)
{
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        fflush(stdout);
        json_object_put(o);
}

/* The last line of a run's event stream: how migration ID ended (STATE),
 * its VMs done and in all as the catalog now says, ERROR. */
static void print_outcome(struct vp_ctx *ctx, int64_t id, const char *state, const char *error)
{
        struct vp_migration_progress pr;
        bool known = vp_migration_progress(ctx, id, &pr, NULL) >= 0;
        print_line(vp_migration_outcome_json(id, state, known ? (int64_t)pr.reached[VP_STEP_DONE] : -1,
                                             known ? (int64_t)pr.total : -1, error));
}

/* The progress line on a terminal: VMs past each step, failures, time spent
 * and, once a VM of this run finished, what remains at that pace. */
static void draw_progress(const char *prefix, const size_t reached[VP_STEP_MAX], size_t total, size_t failures,
                          double el, size_t done_in_run)
{
        size_t done = reached[VP_STEP_DONE], returned = reached[VP_STEP_RETURNED];
        fprintf(stderr, "\r\033[K%slocked %zu  provisioned %zu  handed over %zu  done %zu/%zu  ", prefix,
                reached[VP_STEP_LOCKED], reached[VP_STEP_PROVISIONED], reached[VP_STEP_HANDED_OVER], done, total);
        if (returned)
                fprintf(stderr, "returned %zu  ", returned);
        fprintf(stderr, "failed %zu  %.0fs elapsed", failures, el);
        if (done_in_run && done + returned < total)
                fprintf(stderr, ", ~%.0fs left", el / (double)done_in_run * (double)(total - done - returned));
        else if (done + returned < total)
                fprintf(stderr, ", estimating");
        fflush(stderr);
}

static void on_event(void *ud, int64_t id, const char *vm, const char *step, int64_t gen, const char *error)
{
        struct progress *p = ud;
        bool allocated = !vm && streq(step, VP_JOURNAL_ALLOCATED);
        pthread_mutex_lock(&p->lock);
        if (p->json) {
                print_line(vp_migration_event_json(id, vm, step, elapsed(p), gen, error));
        } else if (allocated) {
                /* The id first, so a script (or a person) can resume it. */
                printf("migration %lld\n", (long long)id);
                fflush(stdout);
        }
        if (allocated)
                cli_history_migration(p->cli, id);
        if (vm) {
                enum vp_step s = vp_step_from_string(step);
                if (error)
                        p->failures++;
                else if (s >= 0)
                        p->reached[s]++;
        }
        if (p->tty && !p->json)
                draw_progress("", p->reached, p->total, p->failures, elapsed(p),
                              p->reached[VP_STEP_DONE] + p->reached[VP_STEP_RETURNED] - p->ended_before);
        /* A VM's failure is news in any mode: the run goes on without it. */
        if (error && !p->json)
                fprintf(stderr, "%svpool: %s\n", p->tty ? "\r\033[K" : "", error);
        pthread_mutex_unlock(&p->lock);
}

static void progress_init(struct progress *p, struct vp_cli *cli, size_t total)
{
        memset(p, 0, sizeof(*p));
        p->cli = cli;
        p->json = cli->json;
        p->tty = !cli->quiet && isatty(STDERR_FILENO);
        p->total = total;
        pthread_mutex_init(&p->lock, NULL);
        clock_gettime(CLOCK_MONOTONIC, &p->start);
}

static void progress_end(struct progress *p)
{
        if (p->tty && !p->json)
                fputc('\n', stderr);
        pthread_mutex_destroy(&p->lock);
}

/* ---- verbs ------------------------------------------------------------------ */

static void print_plan(const struct vp_plan *pl)
{
        printf("plan: pool %s from env %s (profile %s) to env %s (profile %s)\n", pl->pool, pl->from_env,
               pl->from_profile, pl->to_env, pl->to_profile);
        if (pl->ndiffs == 0)
                printf("hardware: unchanged\n");
        for (int i = 0; i < pl->ndiffs; i++)
                printf("hardware: %s\n", pl->diffs[i]);
        printf("memory: %lld MiB needed on %s for running VMs, %lld MiB free\n", (long long)pl->memory_needed_mib,
               pl->to_env, (long long)pl->memory_free_mib);
        if (*pl->nic_rename)
                printf("network: %s (refused without --accept-nic-rename)\n", pl->nic_rename);
        struct cli_table t;
        table_init(&t, 4, "VM", "SOURCE ENV/HOST", "TARGET ENV/HOST", "STATE");
        for (size_t i = 0; i < pl->nvms; i++) {
                const struct vp_plan_vm *v = &pl->vms[i];
                _cleanup_free_ char *src = vp_strdupf("%s/%s%s", v->from_env, v->from_host, *v->from_host ? "" : "?");
                _cleanup_free_ char *dst = vp_strdupf("%s/%s", v->to_env, v->to_host);
                table_add(&t, pl->vms[i].vm, src, dst,
                          pl->vms[i].unreachable ? "unreachable (fenced)" : pl->vms[i].running ? "running" : "stopped");
        }
        table_print(&t);
}

/* The VMs of pool NAME, as the catalog says before the run: the progress
 * line's total (0 when it cannot tell). */
static size_t pool_size(struct vp_ctx *ctx, const char *name)
{
        struct json_object *pools = NULL;
        size_t n = 0;
        if (vp_pool_list(ctx, &(struct vp_pool_filter){ .name = name }, &pools, NULL) < 0)
                return 0;
        if (json_object_array_length(pools) == 1)
                n = (size_t)cli_int(json_object_array_get_idx(pools, 0), "size");
        json_object_put(pools);
        return n;
}

int cli_run_migrate(struct vp_cli *cli, const struct vp_migrate_args *a)
{
        struct vp_ctx ctx;
        if (cli_open(cli, &ctx))
                return 1;
        struct vp_error err = { 0 };
        struct vp_plan plan;
        struct progress p;
        int64_t id = 0;
        progress_init(&p, cli, pool_size(&ctx, a->pool));
        int r = vp_migrate(&ctx, a, &plan, &id, on_event, &p, &err);
        progress_end(&p);
        if (r < 0 && id == 0) {
                vp_plan_free(&plan);
                vp_ctx_close(&ctx);
                return cli_fail(&err);
        }
        if (a->dry_run) {
                if (cli->json)
                        cli_print_json(vp_plan_json(&plan));
                else
                        print_plan(&plan);
        } else if (r < 0) {
                if (cli->json)
                        print_outcome(&ctx, id, vp_migration_state_to_string(VP_MIGRATION_PARTIAL), err.msg);
                vp_plan_free(&plan);
                vp_ctx_close(&ctx);
                return cli_fail(&err);
        } else if (cli->json) {
                print_outcome(&ctx, id, vp_migration_state_to_string(VP_MIGRATION_DONE), NULL);
        } else if (!cli->quiet) {
                printf("migration %lld done: pool %s, %zu VMs now on env %s with profile %s\n", (long long)id,
                       plan.pool, plan.nvms, plan.to_env, plan.to_profile);
        }
        vp_plan_free(&plan);
        vp_ctx_close(&ctx);
        return 0;
}

int cli_parse_migrate_opts(struct vp_cli *cli, const struct cli_args *a, struct vp_migrate_args *m,
                           struct vp_error *err)
{
        const char *parallel = cli_opt(a, "parallel"), *timeout = cli_opt(a, "shutdown-timeout");
        uint64_t v;
        m->parallel = cli->conf->parallel;
        m->shutdown_timeout = cli->conf->shutdown_timeout;
        if (cli_parse_placement(a, &m->placement, err) < 0)
                return -EINVAL;
        if (parallel) {
                if (vp_parse_uint("parallelism", parallel, 1, 256, &v, err) < 0)
                        return -EINVAL;
                m->parallel = (int)v;
        }
        if (timeout) {
                if (vp_parse_uint("shutdown timeout", timeout, 0, 86400, &v, err) < 0)
                        return -EINVAL;
                m->shutdown_timeout = (int)v;
        }
        return 0;
}

static int mig_start(struct vp_cli *cli, const struct cli_args *a)
{
        const char *to = cli_opt(a, "to"), *profile = cli_opt(a, "profile");
        bool dry = cli_flag(a, "dry-run");
        /* Reached by dispatch or as "vpool migrate POOL": a dry run changes nothing. */
        cli->record = !dry;
        if (!to)
                return cli_usage_error(cli, "missing --to ENV"), EXIT_USAGE;
        struct vp_error err = { 0 };
        struct vp_migrate_args m = { .pool = a->pos[0], .to_env = to, .profile = profile, .dry_run = dry,
                                     .source_fenced = cli_opt(a, "source-fenced"),
                                     .accept_nic_rename = cli_flag(a, "accept-nic-rename") };
        if (vp_name_check("pool", m.pool, &err) < 0 || vp_name_check("env", to, &err) < 0 ||
            (m.source_fenced && vp_name_check("env", m.source_fenced, &err) < 0) ||
            (profile && vp_name_check("profile", profile, &err) < 0) ||
            cli_parse_migrate_opts(cli, a, &m, &err) < 0)
                return cli_fail(&err);
        return cli_run_migrate(cli, &m);
}

static int parse_id(const char *s, int64_t *ret, struct vp_error *err)
{
        uint64_t v;
        if (vp_parse_uint("migration id", s, 1, INT64_MAX, &v, err) < 0)
                return -EINVAL;
        *ret = (int64_t)v;
        return 0;
}

static int mig_list(struct vp_cli *cli, const struct cli_args *a)
{
        static const struct cli_column cols[] = {
                { "ID", "id", CLI_PLAIN }, { "POOL", "pool", CLI_PLAIN }, { "FROM", "from", CLI_GONE },
                { "TO", "to", CLI_GONE }, { "STATE", "state", CLI_PLAIN }, { "DONE", "done", CLI_OF_TOTAL },
        };
        return cli_list(cli, vp_migration_list, cols, ELEMENTSOF(cols));
}

/* Each fence of the status O: how the env was declared off, or not, and
 * the agent's output indented below. */
static void print_fences(struct json_object *o)
{
        struct json_object *fences = NULL;
        json_object_object_get_ex(o, "fences", &fences);
        for (size_t i = 0; i < json_object_array_length(fences); i++) {
                struct json_object *f = json_object_array_get_idx(fences, i), *cmd = NULL;
                const char *env = cli_str(f, "env");
                bool fenced = json_object_get_boolean(json_object_object_get(f, "fenced"));
                if (!json_object_object_get_ex(f, "command", &cmd) || !cmd) {
                        printf("fence: env %s declared powered off by the operator (%s) at %s\n", env,
                               cli_str(f, "asserted_by"), cli_str(f, "at"));
                        continue;
                }
                _cleanup_free_ char *shown = vp_fence_cmd_show(json_object_to_json_string(cmd));
                printf("fence: env %s, agent '%s' at %s: exit %s, %s\n", env, shown ? shown : "?", cli_str(f, "at"),
                       cli_str(f, "exit_status"), fenced ? "powered off" : "NOT fenced");
                const char *out = cli_str(f, "output");
                for (const char *line = out; *line;) {
                        size_t len = strcspn(line, "\n");
                        printf("  %.*s\n", (int)len, line);
                        line += len + (line[len] == '\n');
                }
        }
}

static int print_status(struct vp_cli *cli, struct vp_ctx *ctx, int64_t id)
{
        struct vp_error err = { 0 };
        struct json_object *o = NULL;
        if (vp_migration_status(ctx, id, &o, &err) < 0)
                return cli_fail(&err);
        if (cli->json) {
                cli_print_json(o);
                return 0;
        }
        printf("migration %s: pool %s from %s (%s) to %s (%s): %s, %s/%s VMs done\n", cli_str(o, "id"),
               cli_str(o, "pool"), cli_name(o, "from"), cli_name(o, "from_profile"), cli_name(o, "to"),
               cli_name(o, "to_profile"), cli_str(o, "state"), cli_str(o, "done"), cli_str(o, "total"));
        struct json_object *vms;
        json_object_object_get_ex(o, "vms", &vms);
        struct cli_table t;
        table_init(&t, 6, "VM", "STEP", "SOURCE ENV/HOST", "TARGET ENV/HOST", "GEN", "ERROR");
        for (size_t i = 0; i < json_object_array_length(vms); i++) {
                struct json_object *v = json_object_array_get_idx(vms, i);
                _cleanup_free_ char *src = vp_strdupf("%s/%s", cli_name(v, "source"), cli_name(v, "source_host"));
                _cleanup_free_ char *dst = vp_strdupf("%s/%s", cli_name(v, "target"), cli_name(v, "target_host"));
                table_add(&t, cli_str(v, "vm"), cli_str(v, "step"), src, dst, cli_str(v, "generation"),
                          *cli_str(v, "error") ? cli_str(v, "error") : "-");
        }
        table_print(&t);
        print_fences(o);
        json_object_put(o);
        return 0;
}

/* ---- migrate status --watch -------------------------------------------------- */

static time_t iso_time(const char *s)
{
        struct tm tm = { 0 };
        const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;
        return end && !*end ? timegm(&tm) : 0;
}

/* What a watcher learned from the journal so far. */
struct watch {
        int64_t id;
        int64_t last;              /* last journal id read */
        time_t created;            /* the migration's allocation: event times count from it */
        time_t run_start;          /* the current run (allocation or latest resume or abort) */
        size_t ended;              /* VMs done or returned so far */
        size_t ended_before_run;
        char **vm_step;            /* pairs: VM name, the last step it reached */
        size_t nvm;
};

static const char *last_step(struct watch *w, const char *vm, const char *step)
{
        for (size_t i = 0; i < w->nvm; i++)
                if (streq(w->vm_step[2 * i], vm)) {
                        if (step) {
                                free(w->vm_step[2 * i + 1]);
                                w->vm_step[2 * i + 1] = vp_strdup(step);
                        }
                        return w->vm_step[2 * i + 1];
                }
        char **n = realloc(w->vm_step, (w->nvm + 1) * 2 * sizeof(char *));
        if (!n)
                abort();
        w->vm_step = n;
        w->vm_step[2 * w->nvm] = vp_strdup(vm);
        w->vm_step[2 * w->nvm + 1] = vp_strdup(step ? step : vp_step_to_string(VP_STEP_PENDING));
        return w->vm_step[2 * w->nvm++ + 1];
}

static void watch_entry(struct vp_cli *cli, struct watch *w, const struct vp_journal *j)
{
        w->last = j->id;
        const char *step = j->step, *error = NULL;
        if (!*j->vm_name) {
                /* The migration's own entries: its allocation, and a run starting (resume, abort). */
                if (streq(j->step, VP_JOURNAL_ALLOCATED) ||
                    vp_migration_state_from_string(j->step) == VP_MIGRATION_RUNNING) {
                        w->run_start = iso_time(j->at);
                        w->ended_before_run = w->ended;
                }
        } else if (streq(j->step, VP_JOURNAL_ERROR)) {
                /* The live stream reports a failure at the step the VM had reached. */
                step = last_step(w, j->vm_name, NULL);
                error = j->detail;
        } else {
                last_step(w, j->vm_name, j->step);
                if (vp_step_ended(vp_step_from_string(j->step)))
                        w->ended++;
        }
        if (cli->json) {
                time_t at = iso_time(j->at);
                double t = at && w->created && at >= w->created ? (double)(at - w->created) : 0;
                print_line(vp_migration_event_json(w->id, j->vm_name, step, t, j->generation, error));
        }
}

static void watch_draw(struct vp_ctx *ctx, struct watch *w)
{
        struct vp_migration_progress pr;
        if (vp_migration_progress(ctx, w->id, &pr, NULL) < 0)
                return;
        char prefix[48];
        snprintf(prefix, sizeof(prefix), "migration %lld: ", (long long)w->id);
        time_t now = time(NULL);
        double el = w->run_start && now >= w->run_start ? (double)(now - w->run_start) : 0;
        draw_progress(prefix, pr.reached, pr.total, pr.failed, el, w->ended - w->ended_before_run);
}

/* Whether migration M (as stored) is over for a watcher: no longer
 * running, or running with no process working on it; asked at most once a
 * second (*CHECKED), since asking takes the pool lock briefly. */
static bool watch_over(struct vp_ctx *ctx, const struct vp_migration *m, bool news, struct timespec *checked)
{
        if (vp_migration_state_from_string(m->state) != VP_MIGRATION_RUNNING)
                return true;
        if (news)
                return false;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (checked->tv_sec != 0 && now.tv_sec - checked->tv_sec < 1)
                return false;
        *checked = now;
        return !vp_migration_active(ctx, m->id);
}

/* Follow migration ID until no process works on it any more. Its exit code:
 * 0 when the migration is done, 1 otherwise. */
static int mig_watch(struct vp_cli *cli, struct vp_ctx *ctx, int64_t id)
{
        struct vp_error err = { 0 };
        struct watch w = { .id = id };
        bool tty = !cli->quiet && !cli->json && isatty(STDERR_FILENO);
        struct timespec checked = { 0 };
        struct vp_migration m = { 0 };
        int rc = -1;
        while (rc < 0) {
                vp_row_clear(&vp_table_migration, &m);
                /* The state before the journal: a final state commits with its
                 * journal entry, so every entry up to it is read below. */
                if (vp_migration_get(ctx, id, &m, &err) < 0) {
                        rc = cli_fail(&err);
                        break;
                }
                if (!w.created)
                        w.created = iso_time(m.created);
                struct vp_journal *rows = NULL;
                size_t n = 0;
                if (vp_migration_journal_since(ctx, id, w.last, &rows, &n, &err) < 0) {
                        rc = cli_fail(&err);
                        break;
                }
                for (size_t i = 0; i < n; i++)
                        watch_entry(cli, &w, &rows[i]);
                vp_rows_free(&vp_table_journal, rows, n);

                if (watch_over(ctx, &m, n > 0, &checked)) {
                        if (tty)
                                fputc('\n', stderr);
                        enum vp_migration_state s = vp_migration_effective_state(ctx, &m);
                        const char *state = s >= 0 ? vp_migration_state_to_string(s) : m.state;
                        if (cli->json)
                                print_outcome(ctx, id, state, NULL);
                        else
                                print_status(cli, ctx, id);
                        rc = s == VP_MIGRATION_DONE ? 0 : 1;
                        if (rc)
                                cli_note_failure("migration %lld ended %s", (long long)id, state);
                        break;
                }
                if (tty)
                        watch_draw(ctx, &w);
                nanosleep(&(struct timespec){ .tv_nsec = 200 * 1000 * 1000 }, NULL);
        }
        vp_row_clear(&vp_table_migration, &m);
        for (size_t i = 0; i < 2 * w.nvm; i++)
                free(w.vm_step[i]);
        free(w.vm_step);
        return rc;
}

static int mig_status(struct vp_cli *cli, const struct cli_args *a)
{
        bool watch = cli_flag(a, "watch");
        struct vp_error err = { 0 };
        int64_t id;
        if (parse_id(a->pos[0], &id, &err) < 0)
                return cli_fail(&err);
        struct vp_ctx ctx;
        if (cli_open(cli, &ctx))
                return 1;
        int rc = watch ? mig_watch(cli, &ctx, id) : print_status(cli, &ctx, id);
        vp_ctx_close(&ctx);
        return rc;
}

static int mig_continue(struct vp_cli *cli, const struct cli_args *a, bool abort_it)
{
        struct vp_error err = { 0 };
        int64_t id;
        const char *fenced = abort_it ? NULL : cli_opt(a, "source-fenced");
        if (parse_id(a->pos[0], &id, &err) < 0 || (fenced && vp_name_check("env", fenced, &err) < 0))
                return cli_fail(&err);
        struct vp_ctx ctx;
        if (cli_open(cli, &ctx))
                return 1;
        struct progress p;
        struct vp_migration_progress pr;
        progress_init(&p, cli, 0);
        /* A resumed run starts where the last one stopped: count what its VMs reached. */
        if (vp_migration_progress(&ctx, id, &pr, NULL) >= 0) {
                p.total = pr.total;
                memcpy(p.reached, pr.reached, sizeof(p.reached));
                p.ended_before = pr.reached[VP_STEP_DONE] + pr.reached[VP_STEP_RETURNED];
        }
        int r = abort_it ? vp_migrate_abort(&ctx, id, on_event, &p, &err)
                         : vp_migrate_resume(&ctx, id, fenced, on_event, &p, &err);
        progress_end(&p);
        if (r >= 0 && cli->json)
                print_outcome(&ctx, id, vp_migration_state_to_string(abort_it ? VP_MIGRATION_ABORTED : VP_MIGRATION_DONE),
                              NULL);
        vp_ctx_close(&ctx);
        if (r < 0)
                return cli_fail(&err);
        if (!cli->json && !cli->quiet)
                printf("migration %lld %s\n", (long long)id,
                       abort_it ? "aborted: every VM not handed over is back on its source" : "done");
        return 0;
}

static int mig_resume(struct vp_cli *cli, const struct cli_args *a)
{
        return mig_continue(cli, a, false);
}

static int mig_abort(struct vp_cli *cli, const struct cli_args *a)
{
        return mig_continue(cli, a, true);
}
