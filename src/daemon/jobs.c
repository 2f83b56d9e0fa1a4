#include "jobs.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "events.h"
#include "history.h"
#include "leader.h"
#include "migrate.h"
#include "view.h"

/* How long a request waits for its job to pass its checks (a migration's
 * preflight reads every host) before it is answered 202 anyway. */
#define ACCEPT_WAIT_S 60
/* Jobs kept for /v1/jobs once ended, the oldest dropped first. */
#define JOBS_KEPT 1024

struct vpd_jobs {
        pthread_mutex_t lock;
        pthread_cond_t changed;
        struct vpd_job **all;             /* by id, oldest first */
        size_t n, cap;
        int64_t next_id;
        size_t running;
        bool stopping;
};

int vpd_jobs_init(struct vpd *d)
{
        struct vpd_jobs *js = vp_xcalloc(1, sizeof(*js));
        pthread_mutex_init(&js->lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&js->changed, &ca);
        pthread_condattr_destroy(&ca);
        /* Ids that a restarted daemon does not hand out again. */
        js->next_id = (int64_t)time(NULL) * 1000;
        d->jobs = js;
        return 0;
}

static void job_free(struct vpd_job *j)
{
        json_object_put(j->args);
        free(j->data);
        free(j);
}

/* Wait for the running jobs to end (a migration in flight goes on to its
 * end; a daemon killed instead leaves it to the journal). */
void vpd_jobs_shutdown(struct vpd *d)
{
        struct vpd_jobs *js = d->jobs;
        if (!js)
                return;
        pthread_mutex_lock(&js->lock);
        js->stopping = true;
        while (js->running > 0)
                pthread_cond_wait(&js->changed, &js->lock);
        pthread_mutex_unlock(&js->lock);
        for (size_t i = 0; i < js->n; i++)
                job_free(js->all[i]);
        free(js->all);
        pthread_cond_destroy(&js->changed);
        pthread_mutex_destroy(&js->lock);
        free(js);
        d->jobs = NULL;
}

/* ---- the history rows of a job ---- */

/* A row as J's, of KIND ("noun.verb") on SUBJECT, begun on catalog C. */
static int64_t history_row(struct vpd_job *j, struct vp_catalog *c, const char *kind, const char *subject,
                           const char *pool, const char *vm, int64_t migration_id, const char *command)
{
        struct vp_history h = { 0 };
        struct vp_error err = { 0 };
        struct vp_actor actor = { .via = j->via };
        snprintf(actor.name, sizeof(actor.name), "%s", j->actor);
        vp_history_who(&h, &actor);
        h.command = vp_strdup(command);
        const char *dot = strchr(kind, '.');
        h.noun = vp_strdupf("%.*s", dot ? (int)(dot - kind) : (int)strlen(kind), kind);
        h.verb = vp_strdup(dot ? dot + 1 : "");
        h.subject = vp_strdup(subject);
        h.pool = vp_strdup(pool ? pool : "");
        h.vm = vp_strdup(vm ? vm : "");
        h.migration_id = migration_id;
        h.reason = vp_strdup(j->reason);
        int64_t id = 0;
        if (vp_history_begin(c, &h, &err) < 0)
                vpd_log(LOG_WARNING, "job %lld: cannot record it in the history: %s", (long long)j->id, err.msg);
        else
                id = h.id;
        vp_row_clear(&vp_table_history, &h);
        return id;
}

static void history_begin(struct vpd_job *j, struct vp_ctx *ctx)
{
        j->history_id = history_row(j, ctx->cat, j->kind, j->subject, j->pool, j->vm, j->migration_id, j->command);
}

/* End row ID on C with R's outcome; MIGRATION_ID, when not 0, recorded too. */
static void history_close(struct vpd_job *j, struct vp_catalog *c, int64_t id, int64_t migration_id, int r,
                          const char *error)
{
        struct vp_history h = { 0 };
        struct vp_error err = { 0 };
        if (!id || vp_row_get_id(c, &vp_table_history, id, &h, &err) < 0)
                return;
        if (migration_id && h.migration_id != migration_id) {
                h.migration_id = migration_id;
                vp_history_update(c, &h, NULL);
        }
        _cleanup_free_ char *outcome = r < 0 ? vp_strdupf("failed: %s", error) : vp_strdup("ok");
        if (vp_history_end(c, &h, outcome, &err) < 0)
                vpd_log(LOG_WARNING, "job %lld: cannot record its end: %s", (long long)j->id, err.msg);
        vp_row_clear(&vp_table_history, &h);
}

static void history_end(struct vpd_job *j, struct vp_ctx *ctx, int r)
{
        history_close(j, ctx->cat, j->history_id, j->migration_id, r, j->error);
}

int64_t vpd_job_history_add(struct vpd_job *j, const char *kind, const char *subject, const char *pool,
                            int64_t migration_id, const char *command)
{
        if (!j->hist)
                return 0;
        int64_t id = history_row(j, j->hist, kind, subject, pool, NULL, migration_id, command);
        pthread_mutex_lock(&j->d->jobs->lock);
        if (id && j->nchildren < ELEMENTSOF(j->children))
                j->children[j->nchildren++] = id;
        pthread_mutex_unlock(&j->d->jobs->lock);
        return id;
}

void vpd_job_history_done(struct vpd_job *j, int64_t id, int r, const char *error)
{
        if (j->hist)
                history_close(j, j->hist, id, 0, r, error);
}

/* Set the reason of row ID on C to J's. */
static void history_reason(struct vpd_job *j, struct vp_catalog *c, int64_t id)
{
        struct vp_history h = { 0 };
        if (id && vp_row_get_id(c, &vp_table_history, id, &h, NULL) >= 0) {
                free(h.reason);
                h.reason = vp_strdup(j->reason);
                vp_history_update(c, &h, NULL);
        }
        vp_row_clear(&vp_table_history, &h);
}

void vpd_job_set_reason(struct vpd_job *j, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        pthread_mutex_lock(&j->d->jobs->lock);
        vsnprintf(j->reason, sizeof(j->reason), fmt, ap);
        size_t n = j->nchildren;
        pthread_mutex_unlock(&j->d->jobs->lock);
        va_end(ap);
        if (!j->hist)
                return;
        history_reason(j, j->hist, j->history_id);
        for (size_t i = 0; i < n; i++)
                history_reason(j, j->hist, j->children[i]);
}

/* ---- running ---- */

void vpd_job_accept(struct vpd_job *j, int64_t migration_id)
{
        struct vpd_jobs *js = j->d->jobs;
        pthread_mutex_lock(&js->lock);
        j->accepted = true;
        bool learnt = migration_id && j->migration_id != migration_id;
        if (migration_id)
                j->migration_id = migration_id;
        pthread_cond_broadcast(&js->changed);
        pthread_mutex_unlock(&js->lock);
        /* The history row names its migration at once, on a connection of
         * its own (the migration's may be inside its transaction): a daemon
         * killed from here on finds the migration its own on restart. */
        if (learnt && j->hist && j->history_id) {
                struct vp_history h = { 0 };
                if (vp_row_get_id(j->hist, &vp_table_history, j->history_id, &h, NULL) >= 0) {
                        h.migration_id = migration_id;
                        vp_history_update(j->hist, &h, NULL);
                }
                vp_row_clear(&vp_table_history, &h);
        }
}

static void job_set_state(struct vpd_job *j, enum vp_job_state s, const struct vp_error *err)
{
        struct vpd_jobs *js = j->d->jobs;
        pthread_mutex_lock(&js->lock);
        j->state = s;
        if (s == VP_JOB_RUNNING)
                j->started = time(NULL);
        if (s == VP_JOB_DONE || s == VP_JOB_FAILED) {
                j->ended = time(NULL);
                js->running--;
        }
        if (err) {
                snprintf(j->error, sizeof(j->error), "%s", err->msg[0] ? err->msg : "failed");
                j->error_code = err->code;
        }
        pthread_cond_broadcast(&js->changed);
        pthread_mutex_unlock(&js->lock);
}

static void *job_thread(void *arg)
{
        struct vpd_job *j = arg;
        struct vp_ctx ctx;
        struct vp_error err = { 0 };
        int r = vp_ctx_open(&ctx, j->d->conf.v[VP_CONF_CATALOG].text, &err);
        if (r >= 0) {
                ctx.source_grace = j->d->conf.source_grace;
                ctx.fence_timeout = j->d->conf.fence_timeout;
                ctx.actor.via = j->via;
                snprintf(ctx.actor.name, sizeof(ctx.actor.name), "%s", j->actor);
                job_set_state(j, VP_JOB_RUNNING, NULL);
                struct vp_error herr = { 0 };
                if (vp_catalog_open(j->d->conf.v[VP_CONF_CATALOG].text, false, &j->hist, &herr) < 0)
                        j->hist = NULL;
                history_begin(j, &ctx);
                char id[32];
                snprintf(id, sizeof(id), "%lld", (long long)j->id);
                vpd_event_job(j->d, ctx.cat, id, j->pool[0] ? j->pool : NULL,
                              vp_job_state_to_string(VP_JOB_RUNNING), j->kind);
                r = j->fn(j, &ctx, &err);
                if (r < 0)
                        snprintf(j->error, sizeof(j->error), "%s", err.msg[0] ? err.msg : "failed");
                history_end(j, &ctx, r);
                vp_catalog_close(j->hist);
                j->hist = NULL;
                vpd_event_job(j->d, ctx.cat, id, j->pool[0] ? j->pool : NULL,
                              vp_job_state_to_string(r < 0 ? VP_JOB_FAILED : VP_JOB_DONE),
                              r < 0 ? j->error : j->kind);
                vp_ctx_close(&ctx);
        }
        vpd_log(r < 0 ? LOG_WARNING : LOG_INFO, "job %lld (%s %s by %s): %s%s", (long long)j->id, j->kind,
                j->subject, j->actor, r < 0 ? "failed: " : "done", r < 0 ? j->error : "");
        job_set_state(j, r < 0 ? VP_JOB_FAILED : VP_JOB_DONE, r < 0 ? &err : NULL);
        return NULL;
}

/* Add J to the registry, dropping the oldest ended job when full. */
static void job_register(struct vpd_jobs *js, struct vpd_job *j)
{
        j->id = js->next_id++;
        if (js->n == JOBS_KEPT) {
                for (size_t i = 0; i < js->n; i++) {
                        struct vpd_job *old = js->all[i];
                        if (old->state == VP_JOB_DONE || old->state == VP_JOB_FAILED) {
                                job_free(old);
                                memmove(&js->all[i], &js->all[i + 1], (js->n - i - 1) * sizeof(*js->all));
                                js->n--;
                                break;
                        }
                }
        }
        if (js->n == js->cap) {
                js->cap = js->cap ? 2 * js->cap : 64;
                struct vpd_job **grown = realloc(js->all, js->cap * sizeof(*js->all));
                if (!grown)
                        abort();
                js->all = grown;
        }
        js->all[js->n++] = j;
        js->running++;
}

static struct json_object *job_json(const struct vpd_job *j)
{
        struct json_object *o = json_object_new_object();
        char when[32];
        json_object_object_add(o, "id", json_object_new_int64(j->id));
        json_object_object_add(o, "kind", json_object_new_string(j->kind));
        json_object_object_add(o, "subject", json_object_new_string(j->subject));
        json_object_object_add(o, "pool", j->pool[0] ? json_object_new_string(j->pool) : NULL);
        json_object_object_add(o, "actor", json_object_new_string(j->actor));
        json_object_object_add(o, "state", json_object_new_string(vp_job_state_to_string(j->state)));
        json_object_object_add(o, "migration", j->migration_id ? json_object_new_int64(j->migration_id) : NULL);
        json_object_object_add(o, "error", j->error[0] ? json_object_new_string(j->error) : NULL);
        time_t ts[] = { j->created, j->started, j->ended };
        const char *names[] = { "created", "started", "ended" };
        for (size_t i = 0; i < ELEMENTSOF(ts); i++) {
                if (ts[i])
                        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&(time_t){ ts[i] }));
                json_object_object_add(o, names[i], ts[i] ? json_object_new_string(when) : NULL);
        }
        char href[64];
        snprintf(href, sizeof(href), "/v1/jobs/%lld", (long long)j->id);
        json_object_object_add(o, "href", json_object_new_string(href));
        return o;
}

/* The command line of a job, for the history: method, path, body. */
static void job_command(struct vpd_job *j, const struct vpd_request *r)
{
        const char *body = j->args ? json_object_to_json_string_ext(j->args, JSON_C_TO_STRING_PLAIN) : NULL;
        snprintf(j->command, sizeof(j->command), "%s %s%s%s", r->method, r->path, body ? " " : "",
                 body ? body : "");
}

static struct vpd_job *job_new(struct vpd *d, const char *kind, const char *subject, const char *pool,
                               const char *vm, const char *actor, enum vp_via via, struct json_object *args,
                               void *data, vpd_job_fn fn)
{
        struct vpd_job *j = vp_xcalloc(1, sizeof(*j));
        snprintf(j->kind, sizeof(j->kind), "%s", kind);
        snprintf(j->subject, sizeof(j->subject), "%s", subject);
        snprintf(j->pool, sizeof(j->pool), "%s", pool ? pool : "");
        snprintf(j->vm, sizeof(j->vm), "%s", vm ? vm : "");
        snprintf(j->actor, sizeof(j->actor), "%s", actor);
        j->via = via;
        j->args = args;
        j->data = data;
        j->fn = fn;
        j->d = d;
        j->created = time(NULL);
        return j;
}

/* Register J and start its thread; called with the registry locked.
 * False (J freed) when the daemon stops. */
static bool job_start(struct vpd_jobs *js, struct vpd_job *j)
{
        /* Under the registry's lock: a leader that lost its lock flips its
         * role first, then counts the jobs here (leader.c). */
        if (js->stopping || !vpd_leader_acting(j->d)) {
                job_free(j);
                return false;
        }
        job_register(js, j);
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, job_thread, j) != 0) {
                js->running--;
                j->state = VP_JOB_FAILED;
                snprintf(j->error, sizeof(j->error), "no thread for the job");
        }
        pthread_attr_destroy(&attr);
        return true;
}

bool vpd_job_run_policy(struct vpd *d, const char *kind, const char *subject, const char *pool, const char *actor,
                        const char *command, const char *reason, void *data, vpd_job_fn fn)
{
        struct vpd_job *j = job_new(d, kind, subject, pool, NULL, actor, VP_VIA_POLICY, NULL, data, fn);
        snprintf(j->command, sizeof(j->command), "%s", command);
        snprintf(j->reason, sizeof(j->reason), "%s", reason ? reason : "");
        pthread_mutex_lock(&d->jobs->lock);
        bool started = job_start(d->jobs, j);
        pthread_mutex_unlock(&d->jobs->lock);
        return started;
}

void vpd_job_submit(struct vpd_request *r, struct vpd_reply *rep, const char *kind, const char *subject,
                    const char *pool, const char *vm, struct json_object *args, void *data, vpd_job_fn fn)
{
        struct vpd_jobs *js = r->d->jobs;
        struct vpd_job *j = job_new(r->d, kind, subject, pool, vm, r->actor, r->via, args, data, fn);
        job_command(j, r);
        pthread_mutex_lock(&js->lock);
        bool stopping = js->stopping;
        if (!job_start(js, j)) {
                pthread_mutex_unlock(&js->lock);
                if (stopping)
                        vpd_problem(rep, 503, NULL, "vpoold is stopping; ask again once it is back");
                else
                        vpd_leader_refuse(r->d, rep);
                return;
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += ACCEPT_WAIT_S;
        while (!j->accepted && j->state != VP_JOB_DONE && j->state != VP_JOB_FAILED)
                if (pthread_cond_timedwait(&js->changed, &js->lock, &until) != 0)
                        break;
        bool refused = j->state == VP_JOB_FAILED && !j->accepted;
        struct vp_error err = { .code = j->error_code };
        snprintf(err.msg, sizeof(err.msg), "%s", j->error);
        struct json_object *doc = refused ? NULL : job_json(j);
        int64_t id = j->id, mig = j->migration_id;
        pthread_mutex_unlock(&js->lock);
        if (refused) {
                vpd_problem_err(rep, &err);
                return;
        }
        vpd_reply_json(rep, 202, doc);
        if (mig)
                snprintf(rep->location, sizeof(rep->location), "/v1/migrations/%lld", (long long)mig);
        else
                snprintf(rep->location, sizeof(rep->location), "/v1/jobs/%lld", (long long)id);
}

int64_t vpd_job_run(struct vpd *d, const char *kind, const char *subject, const char *pool,
                    const struct vp_actor *actor, const char *command, const char *reason, void *data, vpd_job_fn fn)
{
        struct vpd_job *j = job_new(d, kind, subject, pool, NULL, actor->name, actor->via, NULL, data, fn);
        snprintf(j->command, sizeof(j->command), "%s", command);
        snprintf(j->reason, sizeof(j->reason), "%s", reason ? reason : "");
        pthread_mutex_lock(&d->jobs->lock);
        int64_t id = job_start(d->jobs, j) ? j->id : 0;
        pthread_mutex_unlock(&d->jobs->lock);
        return id;
}

bool vpd_job_outcome(struct vpd *d, int64_t id, struct vpd_job_outcome *ret)
{
        struct vpd_jobs *js = d->jobs;
        bool found = false;
        pthread_mutex_lock(&js->lock);
        for (size_t i = 0; i < js->n && !found; i++) {
                const struct vpd_job *j = js->all[i];
                if (j->id != id)
                        continue;
                found = true;
                *ret = (struct vpd_job_outcome){ .state = j->state, .error_code = j->error_code,
                                                 .migration_id = j->migration_id };
                snprintf(ret->error, sizeof(ret->error), "%s", j->error);
        }
        pthread_mutex_unlock(&js->lock);
        return found;
}

/* ---- on start: what a killed daemon left ---- */

static int run_resume_left(struct vpd_job *j, struct vp_ctx *ctx, struct vp_error *err)
{
        int64_t id = *(int64_t *)j->data;
        vpd_job_accept(j, id);
        return vp_migrate_resume(ctx, id, NULL, NULL, NULL, err);
}

/* Whether migration ID was begun through the API or a policy: the daemon's
 * to finish (one begun by the CLI stays the operator's). */
static bool begun_by_daemon(struct vp_ctx *ctx, int64_t id)
{
        char idtext[32];
        snprintf(idtext, sizeof(idtext), "%lld", (long long)id);
        struct vp_history *hs = NULL;
        size_t n = 0;
        bool ours = false;
        if (vp_row_list(ctx->cat, &vp_table_history, "migration_id", idtext, (void **)&hs, &n, NULL) < 0)
                return false;
        for (size_t i = 0; i < n && !ours; i++)
                ours = vp_history_via(&hs[i]) != VP_VIA_CLI;
        vp_rows_free(&vp_table_history, hs, n);
        return ours;
}

size_t vpd_jobs_running(struct vpd *d)
{
        pthread_mutex_lock(&d->jobs->lock);
        size_t n = d->jobs->running;
        pthread_mutex_unlock(&d->jobs->lock);
        return n;
}

void vpd_jobs_resume_left(struct vpd *d, const char *why)
{
        struct vp_ctx ctx;
        struct vp_error err = { 0 };
        if (vp_ctx_open(&ctx, d->conf.v[VP_CONF_CATALOG].text, &err) < 0) {
                vpd_log(LOG_ERR, "cannot look for interrupted migrations: %s", err.msg);
                return;
        }
        struct vp_migration *ms = NULL;
        size_t n = 0;
        if (vp_row_list(ctx.cat, &vp_table_migration, NULL, NULL, (void **)&ms, &n, &err) < 0)
                vpd_log(LOG_ERR, "cannot look for interrupted migrations: %s", err.msg);
        for (size_t i = 0; i < n; i++) {
                if (vp_migration_effective_state(&ctx, &ms[i]) != VP_MIGRATION_INTERRUPTED ||
                    !begun_by_daemon(&ctx, ms[i].id))
                        continue;
                int64_t *id = vp_xcalloc(1, sizeof(*id));
                *id = ms[i].id;
                char subject[32], command[128];
                snprintf(subject, sizeof(subject), "%lld", (long long)*id);
                snprintf(command, sizeof(command), "vpoold: resume migration %s, %s", subject, why);
                vpd_log(LOG_INFO, "resuming migration %s of pool %s, %s", subject, ms[i].pool_name, why);
                vpd_job_run_policy(d, "migration.resume", subject, ms[i].pool_name, "vpoold", command, why, id,
                                   run_resume_left);
        }
        vp_rows_free(&vp_table_migration, ms, n);
        vp_ctx_close(&ctx);
}

/* ---- reading jobs ---- */

void vpd_get_jobs(struct vpd_request *r, struct vpd_reply *rep)
{
        struct vpd_jobs *js = r->d->jobs;
        struct json_object *a = json_object_new_array();
        pthread_mutex_lock(&js->lock);
        for (size_t i = js->n; i-- > 0;)
                json_object_array_add(a, job_json(js->all[i]));
        pthread_mutex_unlock(&js->lock);
        vpd_list_reply(r, rep, a);
}

void vpd_get_job(struct vpd_request *r, struct vpd_reply *rep)
{
        int64_t id;
        if (!vpd_param_id(r, rep, "job id", &id))
                return;
        struct vpd_jobs *js = r->d->jobs;
        struct json_object *o = NULL;
        pthread_mutex_lock(&js->lock);
        for (size_t i = 0; i < js->n && !o; i++)
                if (js->all[i]->id == id)
                        o = job_json(js->all[i]);
        pthread_mutex_unlock(&js->lock);
        if (!o) {
                vpd_problem(rep, 404, NULL, "unknown job %lld", (long long)id);
                return;
        }
        vpd_reply_json(rep, 200, o);
}
