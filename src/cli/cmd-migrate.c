#include "cli.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

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
                   "       [--source-fenced]",
          .help = "Move POOL to ENV (and to PROF's hardware): lock each VM's user delta, provision the VM\n"
                  "on ENV with the same identity, hand the delta over to it, start it if it ran.\n"
                  "Prints the migration id first. 'vpool migrate POOL ...' means the same.\n"
                  "--source-fenced: the operator vouches that source envs that do not answer are powered\n"
                  "off; their VMs are handed over without a shutdown (QEMU's image lock still keeps a\n"
                  "target from starting while a source process holds the disk).\n"
                  "--parallel (VMs at once) and --shutdown-timeout default to the configured values,\n"
                  "8 and 120 s unless set (see 'vpool config show').",
          .changes = true,
          .opts = CLI_OPTS(CLI_VALUE("to"), CLI_VALUE("profile"), CLI_VALUE("parallel"), CLI_VALUE("shutdown-timeout"),
                           CLI_FLAG("dry-run"), CLI_FLAG("source-fenced")),
          .minpos = 1, .maxpos = 1 },
        { .name = "list", .fn = mig_list, .usage = "",
          .help = "List migrations: id, pool, from, to, state, VMs done / total." },
        { .name = "status", .fn = mig_status, .usage = "ID [--watch]",
          .help = "Per VM: step reached, source and target, generation, error.\n"
                  "--watch follows a running migration (from any terminal) until it ends: progress on a\n"
                  "terminal, one JSON event per journal entry with --json; then the status. Exit code 0\n"
                  "when the migration is done, 1 when it ended otherwise (partial, aborted, interrupted).",
          .opts = CLI_OPTS(CLI_FLAG("watch")), .minpos = 1, .maxpos = 1 },
        { .name = "resume", .fn = mig_resume, .usage = "ID",
          .help = "Finish an interrupted or partial migration from its journal.", .changes = true,
          .minpos = 1, .maxpos = 1 },
        { .name = "abort", .fn = mig_abort, .usage = "ID",
          .help = "Return every VM not yet handed over to its source, as it was.", .changes = true,
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
        size_t counts[8];          /* VMs per step reached */
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

/* One event of the --json stream: the same object live and under --watch. */
static struct json_object *event_json(int64_t id, const char *vm, const char *step, double t, int64_t gen,
                                      const char *error)
{
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "migration", json_object_new_int64(id));
        json_object_object_add(o, "vm", vm && *vm ? json_object_new_string(vm) : NULL);
        json_object_object_add(o, "step", json_object_new_string(step));
        json_object_object_add(o, "time", json_object_new_double(t));
        json_object_object_add(o, "generation", json_object_new_int64(gen));
        json_object_object_add(o, "error", error ? json_object_new_string(error) : NULL);
        return o;
}

static void print_line(struct json_object *o)
{
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        fflush(stdout);
        json_object_put(o);
}

/* The progress line on a terminal: VMs past each step, failures, time spent
 * and, once a VM of this run finished, what remains at that pace. */
static void draw_progress(const char *prefix, const size_t reached[4], size_t returned, size_t total, size_t failures,
                          double el, size_t done_in_run)
{
        size_t done = reached[3];
        fprintf(stderr, "\r\033[K%slocked %zu  provisioned %zu  handed over %zu  done %zu/%zu  ", prefix, reached[0],
                reached[1], reached[2], done, total);
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
        pthread_mutex_lock(&p->lock);
        if (p->json) {
                print_line(event_json(id, vm, step, elapsed(p), gen, error));
        } else if (!vm && streq(step, "allocated")) {
                /* The id first, so a script (or a person) can resume it. */
                printf("migration %lld\n", (long long)id);
                fflush(stdout);
        }
        if (!vm && streq(step, "allocated"))
                cli_history_migration(p->cli, id);
        if (vm) {
                static const char *const order[] = { "stopping", "locked", "provisioned", "handed_over", "done", "returned" };
                if (error)
                        p->failures++;
                else
                        for (size_t i = 0; i < ELEMENTSOF(order); i++)
                                if (streq(step, order[i]))
                                        p->counts[i]++;
        }
        if (p->tty && !p->json) {
                const size_t reached[4] = { p->counts[1], p->counts[2], p->counts[3], p->counts[4] };
                draw_progress("", reached, p->counts[5], p->total, p->failures, elapsed(p),
                              p->counts[4] + p->counts[5] - p->ended_before);
        }
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
        struct cli_table t;
        table_init(&t, 4, "VM", "SOURCE", "TARGET", "STATE");
        for (size_t i = 0; i < pl->nvms; i++) {
                _cleanup_free_ char *src = vp_strdupf("%s/%s", pl->vms[i].from_env, pl->vms[i].vm);
                _cleanup_free_ char *dst = vp_strdupf("%s/%s", pl->vms[i].to_env, pl->vms[i].vm);
                table_add(&t, pl->vms[i].vm, src, dst,
                          pl->vms[i].unreachable ? "unreachable (fenced)" : pl->vms[i].running ? "running" : "stopped");
        }
        table_print(&t);
}

static struct json_object *plan_json(const struct vp_plan *pl)
{
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "pool", json_object_new_string(pl->pool));
        json_object_object_add(o, "from_env", json_object_new_string(pl->from_env));
        json_object_object_add(o, "to_env", json_object_new_string(pl->to_env));
        json_object_object_add(o, "from_profile", json_object_new_string(pl->from_profile));
        json_object_object_add(o, "to_profile", json_object_new_string(pl->to_profile));
        struct json_object *d = json_object_new_array();
        for (int i = 0; i < pl->ndiffs; i++)
                json_object_array_add(d, json_object_new_string(pl->diffs[i]));
        json_object_object_add(o, "hardware_changes", d);
        json_object_object_add(o, "memory_needed_mib", json_object_new_int64(pl->memory_needed_mib));
        json_object_object_add(o, "memory_free_mib", json_object_new_int64(pl->memory_free_mib));
        struct json_object *a = json_object_new_array();
        for (size_t i = 0; i < pl->nvms; i++) {
                struct json_object *v = json_object_new_object();
                json_object_object_add(v, "vm", json_object_new_string(pl->vms[i].vm));
                json_object_object_add(v, "source_env", json_object_new_string(pl->vms[i].from_env));
                json_object_object_add(v, "target_env", json_object_new_string(pl->vms[i].to_env));
                json_object_object_add(v, "running", json_object_new_boolean(pl->vms[i].running));
                json_object_array_add(a, v);
        }
        json_object_object_add(o, "vms", a);
        return o;
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
        progress_init(&p, cli, 0);
        struct vp_pool pool = { 0 };
        if (vp_row_get(ctx.cat, &vp_table_pool, "name", a->pool, &pool, NULL) >= 0) {
                p.total = (size_t)pool.size;
                vp_row_clear(&vp_table_pool, &pool);
        }
        int r = vp_migrate(&ctx, a, &plan, &id, on_event, &p, &err);
        progress_end(&p);
        if (r < 0 && id == 0) {
                vp_plan_free(&plan);
                vp_ctx_close(&ctx);
                return cli_fail(&err);
        }
        if (a->dry_run) {
                if (cli->json)
                        cli_print_json(plan_json(&plan));
                else
                        print_plan(&plan);
        } else if (r < 0) {
                if (cli->json) {
                        struct json_object *o = json_object_new_object();
                        json_object_object_add(o, "migration", json_object_new_int64(id));
                        json_object_object_add(o, "state", json_object_new_string("partial"));
                        json_object_object_add(o, "error", json_object_new_string(err.msg));
                        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
                        json_object_put(o);
                }
                vp_plan_free(&plan);
                vp_ctx_close(&ctx);
                return cli_fail(&err);
        } else if (cli->json) {
                struct json_object *o = json_object_new_object();
                json_object_object_add(o, "migration", json_object_new_int64(id));
                json_object_object_add(o, "state", json_object_new_string("done"));
                json_object_object_add(o, "vms", json_object_new_int64((int64_t)plan.nvms));
                puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
                json_object_put(o);
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
                                     .source_fenced = cli_flag(a, "source-fenced") };
        if (vp_name_check("pool", m.pool, &err) < 0 || vp_name_check("env", to, &err) < 0 ||
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

/* The name of row ID of T (its second column), or "?" when it is gone. */
static const char *row_name(struct vp_ctx *ctx, const struct vp_table *t, int64_t id, char *buf, size_t n)
{
        void *row = vp_xcalloc(1, t->size);
        if (vp_row_get_id(ctx->cat, t, id, row, NULL) < 0)
                snprintf(buf, n, "?");
        else
                snprintf(buf, n, "%s", *(char **)((char *)row + t->cols[1].offset));
        vp_row_clear(t, row);
        free(row);
        return buf;
}

static const char *env_name(struct vp_ctx *ctx, int64_t id, char *buf, size_t n)
{
        return row_name(ctx, &vp_table_env, id, buf, n);
}

static const char *profile_name(struct vp_ctx *ctx, int64_t id, char *buf, size_t n)
{
        return row_name(ctx, &vp_table_profile, id, buf, n);
}

/* A migration still "running" that no process works on was interrupted. */
static const char *effective_state(struct vp_ctx *ctx, const struct vp_migration *m)
{
        if (streq(m->state, "running") && !vp_migration_active(ctx, m->id))
                return "interrupted";
        return m->state;
}

static struct json_object *migration_json(struct vp_ctx *ctx, const struct vp_migration *m, bool with_vms)
{
        char b1[64], b2[64], b3[64], b4[64];
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_int64(m->id));
        json_object_object_add(o, "pool", json_object_new_string(m->pool_name));
        json_object_object_add(o, "from", json_object_new_string(env_name(ctx, m->from_env_id, b1, sizeof(b1))));
        json_object_object_add(o, "to", json_object_new_string(env_name(ctx, m->to_env_id, b2, sizeof(b2))));
        json_object_object_add(o, "from_profile",
                               json_object_new_string(profile_name(ctx, m->from_profile_id, b3, sizeof(b3))));
        json_object_object_add(o, "to_profile",
                               json_object_new_string(profile_name(ctx, m->to_profile_id, b4, sizeof(b4))));
        json_object_object_add(o, "state", json_object_new_string(effective_state(ctx, m)));
        json_object_object_add(o, "parallel", json_object_new_int64(m->parallel));
        json_object_object_add(o, "shutdown_timeout", json_object_new_int64(m->shutdown_timeout));
        void *rows = NULL;
        size_t n = 0, done = 0;
        vp_row_query(ctx->cat, &vp_table_migvm, "migration_id = ?1", m->id, &rows, &n, NULL);
        struct vp_migvm *mv = rows;
        struct json_object *a = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
                if (streq(mv[i].step, "done"))
                        done++;
                if (!with_vms)
                        continue;
                struct json_object *v = json_object_new_object();
                json_object_object_add(v, "vm", json_object_new_string(mv[i].vm_name));
                json_object_object_add(v, "step", json_object_new_string(mv[i].step));
                json_object_object_add(v, "source", json_object_new_string(env_name(ctx, mv[i].src_env_id, b1, sizeof(b1))));
                json_object_object_add(v, "target", json_object_new_string(env_name(ctx, m->to_env_id, b2, sizeof(b2))));
                json_object_object_add(v, "source_running", json_object_new_boolean(mv[i].source_running));
                json_object_object_add(v, "generation", json_object_new_int64(mv[i].generation));
                json_object_object_add(v, "error", json_object_new_string(mv[i].error));
                json_object_object_add(v, "updated", json_object_new_string(mv[i].updated));
                json_object_array_add(a, v);
        }
        vp_rows_free(&vp_table_migvm, rows, n);
        json_object_object_add(o, "done", json_object_new_int64((int64_t)done));
        json_object_object_add(o, "total", json_object_new_int64((int64_t)n));
        json_object_object_add(o, "created", json_object_new_string(m->created));
        json_object_object_add(o, "updated", json_object_new_string(m->updated));
        if (with_vms)
                json_object_object_add(o, "vms", a);
        else
                json_object_put(a);
        return o;
}

static const char *js(struct json_object *o, const char *k)
{
        struct json_object *v;
        return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

static struct json_object *migration_row_json(struct vp_ctx *ctx, const void *row)
{
        struct json_object *o = migration_json(ctx, row, false);
        char done[48];
        snprintf(done, sizeof(done), "%s/%s", js(o, "done"), js(o, "total"));
        json_object_object_add(o, "progress", json_object_new_string(done));
        return o;
}

static int mig_list(struct vp_cli *cli, const struct cli_args *a)
{
        static const struct cli_column cols[] = {
                { "ID", "id", CLI_PLAIN }, { "POOL", "pool", CLI_PLAIN }, { "FROM", "from", CLI_PLAIN },
                { "TO", "to", CLI_PLAIN }, { "STATE", "state", CLI_PLAIN }, { "DONE", "progress", CLI_PLAIN },
        };
        return cli_list(cli, &vp_table_migration, migration_row_json, cols, ELEMENTSOF(cols));
}

static void print_status(struct vp_cli *cli, struct vp_ctx *ctx, const struct vp_migration *m)
{
        struct json_object *o = migration_json(ctx, m, true);
        if (cli->json) {
                cli_print_json(o);
                return;
        }
        printf("migration %s: pool %s from %s (%s) to %s (%s): %s, %s/%s VMs done\n", js(o, "id"), js(o, "pool"),
               js(o, "from"), js(o, "from_profile"), js(o, "to"), js(o, "to_profile"), js(o, "state"),
               js(o, "done"), js(o, "total"));
        struct json_object *vms;
        json_object_object_get_ex(o, "vms", &vms);
        struct cli_table t;
        table_init(&t, 6, "VM", "STEP", "SOURCE", "TARGET", "GEN", "ERROR");
        for (size_t i = 0; i < json_object_array_length(vms); i++) {
                struct json_object *v = json_object_array_get_idx(vms, i);
                _cleanup_free_ char *src = vp_strdupf("%s/%s", js(v, "source"), js(v, "vm"));
                _cleanup_free_ char *dst = vp_strdupf("%s/%s", js(v, "target"), js(v, "vm"));
                table_add(&t, js(v, "vm"), js(v, "step"), src, dst, js(v, "generation"),
                          *js(v, "error") ? js(v, "error") : "-");
        }
        table_print(&t);
        json_object_put(o);
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
        w->vm_step[2 * w->nvm + 1] = vp_strdup(step ? step : "pending");
        return w->vm_step[2 * w->nvm++ + 1];
}

static void watch_entry(struct vp_cli *cli, struct watch *w, const struct vp_journal *j)
{
        w->last = j->id;
        const char *step = j->step, *error = NULL;
        if (!*j->vm_name) {
                if (streq(j->step, "allocated") || streq(j->step, "running")) {
                        w->run_start = iso_time(j->at);
                        w->ended_before_run = w->ended;
                }
        } else if (streq(j->step, "error")) {
                /* The live stream reports a failure at the step the VM had reached. */
                step = last_step(w, j->vm_name, NULL);
                error = j->detail;
        } else {
                last_step(w, j->vm_name, j->step);
                if (streq(j->step, "done") || streq(j->step, "returned"))
                        w->ended++;
        }
        if (cli->json) {
                time_t at = iso_time(j->at);
                double t = at && w->created && at >= w->created ? (double)(at - w->created) : 0;
                print_line(event_json(w->id, j->vm_name, step, t, j->generation, error));
        }
}

static void watch_draw(struct vp_ctx *ctx, struct watch *w)
{
        void *rows = NULL;
        size_t n = 0;
        if (vp_row_query(ctx->cat, &vp_table_migvm, "migration_id = ?1", w->id, &rows, &n, NULL) < 0)
                return;
        static const char *const order[] = { "locked", "provisioned", "handed_over", "done" };
        size_t reached[4] = { 0 }, returned = 0, failures = 0;
        const struct vp_migvm *mv = rows;
        for (size_t i = 0; i < n; i++) {
                if (*mv[i].error)
                        failures++;
                if (streq(mv[i].step, "returned"))
                        returned++;
                /* Steps come in order: a VM past a step has reached it. */
                bool past = false;
                for (size_t s = ELEMENTSOF(order); s-- > 0;) {
                        past = past || streq(mv[i].step, order[s]);
                        if (past)
                                reached[s]++;
                }
        }
        vp_rows_free(&vp_table_migvm, rows, n);
        char prefix[48];
        snprintf(prefix, sizeof(prefix), "migration %lld: ", (long long)w->id);
        time_t now = time(NULL);
        double el = w->run_start && now >= w->run_start ? (double)(now - w->run_start) : 0;
        draw_progress(prefix, reached, returned, n, failures, el, w->ended - w->ended_before_run);
}

/* Follow migration ID until no process works on it any more. Its exit code:
 * 0 when the migration is done, 1 otherwise. */
static int mig_watch(struct vp_cli *cli, struct vp_ctx *ctx, int64_t id)
{
        struct vp_error err = { 0 };
        struct watch w = { .id = id };
        bool tty = !cli->quiet && !cli->json && isatty(STDERR_FILENO);
        _cleanup_free_ char *where = vp_strdupf("migration_id = %lld AND id > ?1", (long long)id);
        struct timespec checked = { 0 };
        struct vp_migration m = { 0 };
        int rc = -1;
        while (rc < 0) {
                vp_row_clear(&vp_table_migration, &m);
                /* The state before the journal: a final state commits with its
                 * journal entry, so every entry up to it is read below. */
                if (vp_row_get_id(ctx->cat, &vp_table_migration, id, &m, &err) < 0) {
                        rc = cli_fail(&err);
                        break;
                }
                if (!w.created)
                        w.created = iso_time(m.created);
                void *rows = NULL;
                size_t n = 0;
                if (vp_row_query(ctx->cat, &vp_table_journal, where, w.last, &rows, &n, &err) < 0) {
                        rc = cli_fail(&err);
                        break;
                }
                for (size_t i = 0; i < n; i++)
                        watch_entry(cli, &w, &((struct vp_journal *)rows)[i]);
                vp_rows_free(&vp_table_journal, rows, n);

                bool over = !streq(m.state, "running");
                if (!over && n == 0) {
                        /* A "running" migration nobody runs was interrupted; asked at
                         * most once a second, since asking takes the pool lock briefly. */
                        struct timespec now;
                        clock_gettime(CLOCK_MONOTONIC, &now);
                        if (checked.tv_sec == 0 || now.tv_sec - checked.tv_sec >= 1) {
                                checked = now;
                                over = !vp_migration_active(ctx, id);
                        }
                }
                if (over) {
                        if (tty)
                                fputc('\n', stderr);
                        if (cli->json) {
                                struct json_object *o = migration_json(ctx, &m, false);
                                struct json_object *f = json_object_new_object();
                                json_object_object_add(f, "migration", json_object_new_int64(id));
                                json_object_object_add(f, "state", json_object_new_string(js(o, "state")));
                                json_object_object_add(f, "done", json_object_new_int64(atoll(js(o, "done"))));
                                json_object_object_add(f, "vms", json_object_new_int64(atoll(js(o, "total"))));
                                json_object_put(o);
                                print_line(f);
                        } else {
                                print_status(cli, ctx, &m);
                        }
                        rc = streq(effective_state(ctx, &m), "done") ? 0 : 1;
                        if (rc)
                                cli_note_failure("migration %lld ended %s", (long long)id, effective_state(ctx, &m));
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
        struct vp_migration m = { 0 };
        if (vp_row_get_id(ctx.cat, &vp_table_migration, id, &m, &err) < 0) {
                vp_ctx_close(&ctx);
                vp_err(&err, -ENOENT, "unknown migration %lld", (long long)id);
                return cli_fail(&err);
        }
        int rc = 0;
        if (watch)
                rc = mig_watch(cli, &ctx, id);
        else
                print_status(cli, &ctx, &m);
        vp_row_clear(&vp_table_migration, &m);
        vp_ctx_close(&ctx);
        return rc;
}

static int mig_continue(struct vp_cli *cli, const struct cli_args *a, bool abort_it)
{
        struct vp_error err = { 0 };
        int64_t id;
        if (parse_id(a->pos[0], &id, &err) < 0)
                return cli_fail(&err);
        struct vp_ctx ctx;
        if (cli_open(cli, &ctx))
                return 1;
        struct progress p;
        struct vp_migration m = { 0 };
        progress_init(&p, cli, 0);
        if (vp_row_get_id(ctx.cat, &vp_table_migration, id, &m, NULL) >= 0)
                p.total = (size_t)m.total;
        /* A resumed run starts where the last one stopped: count what its VMs reached. */
        void *rows = NULL;
        size_t n = 0;
        if (vp_row_query(ctx.cat, &vp_table_migvm, "migration_id = ?1", id, &rows, &n, NULL) >= 0) {
                static const char *const order[] = { "stopping", "locked", "provisioned", "handed_over", "done" };
                const struct vp_migvm *mv = rows;
                for (size_t i = 0; i < n; i++) {
                        bool past = false;
                        for (size_t k = ELEMENTSOF(order); k-- > 0;) {
                                past = past || streq(mv[i].step, order[k]);
                                p.counts[k] += past;
                        }
                        p.counts[5] += streq(mv[i].step, "returned");
                }
                p.ended_before = p.counts[4] + p.counts[5];
                vp_rows_free(&vp_table_migvm, rows, n);
        }
        vp_row_clear(&vp_table_migration, &m);
        int r = abort_it ? vp_migrate_abort(&ctx, id, on_event, &p, &err) : vp_migrate_resume(&ctx, id, on_event, &p, &err);
        progress_end(&p);
        vp_ctx_close(&ctx);
        if (r < 0)
                return cli_fail(&err);
        if (cli->json) {
                printf("{\"migration\":%lld,\"state\":\"%s\"}\n", (long long)id, abort_it ? "aborted" : "done");
        } else if (!cli->quiet) {
                printf("migration %lld %s\n", (long long)id, abort_it ? "aborted: every VM not handed over is back on its source" : "done");
        }
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
