/* The host-failure policy (evacuate.h). The watcher's thread decides, the
 * evacuation runs as a job of its own. What the policy knows of each host
 * lives here: which outage (the host's unreachable mark) it acted on, an
 * evacuation running, failures to retry after a backoff. A daemon killed
 * half-way knows none of it on restart: the migrations it began are
 * resumed from the journal (vpd_jobs_resume_left), and a host still down
 * past its grace has its remaining pools evacuated again. */
#include "evacuate.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "history.h"
#include "host.h"
#include "hostfail.h"
#include "jobs.h"
#include "watch.h"

/* What the policy did about one host. */
struct hoststate {
        int64_t host_id;
        char outage[32];                  /* the unreachable mark last acted on */
        bool done;                        /* this outage is decided: reported, or nothing left to move */
        bool running;                     /* an evacuation of the host runs */
        unsigned failures;                /* evacuations of this outage that failed */
        int64_t grace;                    /* its env's, for the retries' backoff */
        time_t retry_at;
};

struct vpd_evac {
        pthread_mutex_t lock;             /* every state's running, done, failures, retry_at */
        struct hoststate *v;
        size_t n;
        time_t last_tick;
};

int vpd_evacuate_init(struct vpd *d)
{
        struct vpd_evac *ev = vp_xcalloc(1, sizeof(*ev));
        pthread_mutex_init(&ev->lock, NULL);
        d->evac = ev;
        return 0;
}

void vpd_evacuate_free(struct vpd *d)
{
        struct vpd_evac *ev = d->evac;
        if (!ev)
                return;
        pthread_mutex_destroy(&ev->lock);
        free(ev->v);
        free(ev);
        d->evac = NULL;
}

/* Host ID's state (made when new); called with the lock held. */
static struct hoststate *state_of(struct vpd_evac *ev, int64_t id)
{
        for (size_t i = 0; i < ev->n; i++)
                if (ev->v[i].host_id == id)
                        return &ev->v[i];
        struct hoststate *grown = realloc(ev->v, (ev->n + 1) * sizeof(*grown));
        if (!grown)
                abort();
        ev->v = grown;
        ev->v[ev->n] = (struct hoststate){ .host_id = id };
        return &ev->v[ev->n++];
}

/* A decision that starts no job, in the history as the policy's: COMMAND
 * with REASON, ended at once with OUTCOME (NULL: ok). */
static void record(struct vp_ctx *ctx, const char *subject, const char *verb, const char *command, const char *reason,
                   const char *failure)
{
        struct vp_history h = { 0 };
        struct vp_error err = { 0 };
        struct vp_actor actor = { .via = VP_VIA_POLICY };
        snprintf(actor.name, sizeof(actor.name), "%s", VPD_POLICY_HOST_FAILURE);
        vp_history_who(&h, &actor);
        h.command = vp_strdup(command);
        h.noun = vp_strdup("host");
        h.verb = vp_strdup(verb);
        h.subject = vp_strdup(subject);
        h.pool = vp_strdup("");
        h.vm = vp_strdup("");
        h.reason = vp_strdup(reason);
        _cleanup_free_ char *outcome = failure ? vp_strdupf("failed: %s", failure) : vp_strdup("ok");
        if (vp_history_begin(ctx->cat, &h, &err) < 0 || vp_history_end(ctx->cat, &h, outcome, &err) < 0)
                vpd_log(LOG_WARNING, "%s: cannot record it in the history: %s", VPD_POLICY_HOST_FAILURE, err.msg);
        vp_row_clear(&vp_table_history, &h);
}

/* ---- the evacuation job ---- */

struct evac_job {
        int64_t host_id;
        char env[64], host[64];
};

/* One pool's migration, as the job follows it. */
struct pool_run {
        struct vpd_job *j;
        const struct vp_evac_plan *plan;
        const char *pool;
        int64_t history_id;
};

static void on_migration(void *ud, int64_t migration_id, const char *vm, const char *step, int64_t generation,
                         const char *error)
{
        (void)generation;
        (void)error;
        struct pool_run *pr = ud;
        if (vm || !streq(step, VP_JOURNAL_ALLOCATED) || pr->history_id)
                return;
        /* Recorded as the job's own the moment it exists: a daemon killed
         * from here on resumes it. */
        char command[512];
        snprintf(command, sizeof(command), "vpoold: migrate %s --to %s, its VMs on host %s only (%s policy)",
                 pr->pool, pr->plan->to_env, pr->plan->host, VPD_POLICY_HOST_FAILURE);
        pr->history_id = vpd_job_history_add(pr->j, "migration.start", pr->pool, pr->pool, migration_id, command);
}

/* Move every pool of PLAN off its host, sequentially (placement sees what
 * the last one took). Returns 0 when all moved, else the first failure. */
static int move_pools(struct vpd_job *j, struct vp_ctx *ctx, const struct vp_evac_plan *plan, const struct vp_fence *f,
                      struct vp_error *err)
{
        int first = 0;
        size_t moved = 0;
        for (size_t i = 0; i < plan->npools; i++) {
                struct pool_run pr = { .j = j, .plan = plan, .pool = plan->pools[i] };
                struct vp_error perr = { 0 };
                int64_t id = 0;
                int r = vp_evac_pool(ctx, plan, plan->pools[i], f, on_migration, &pr, &id, &perr);
                if (pr.history_id)
                        vpd_job_history_done(j, pr.history_id, r, perr.msg);
                if (r < 0) {
                        vpd_log(LOG_WARNING, "%s: pool %s not moved off host %s: %s", VPD_POLICY_HOST_FAILURE,
                                plan->pools[i], plan->host, perr.msg);
                        if (!first) {
                                first = r;
                                *err = perr;
                        }
                        continue;
                }
                moved++;
                vpd_log(LOG_INFO, "%s: pool %s moved off host %s (migration %lld)", VPD_POLICY_HOST_FAILURE,
                        plan->pools[i], plan->host, (long long)id);
        }
        if (first)
                vp_err_prefix(err, "%zu of %zu pools moved; pool '%s'", moved, plan->npools,
                              plan->pools[moved < plan->npools ? moved : 0]);
        return first;
}

/* The job's end, in the host's state: done, or to be tried again. */
static void job_ended(struct vpd *d, int64_t host_id, int r)
{
        struct vpd_evac *ev = d->evac;
        pthread_mutex_lock(&ev->lock);
        struct hoststate *st = state_of(ev, host_id);
        st->running = false;
        if (r >= 0 || r == -EAGAIN) {
                st->done = r >= 0;
                st->failures = 0;
        } else {
                st->failures++;
                st->retry_at = time(NULL) + vp_evacuate_retry_after(st->failures, st->grace);
        }
        pthread_mutex_unlock(&ev->lock);
}

static int run_evacuate(struct vpd_job *j, struct vp_ctx *ctx, struct vp_error *err)
{
        const struct evac_job *ej = j->data;
        struct vp_env e = { 0 };
        struct vp_host h = { 0 };
        struct vp_evac_plan plan = { 0 };
        struct vp_fence f = { 0 };
        int k = vp_env_host_get(ctx, ej->env, ej->host, &e, &h, err);
        if (k >= 0)
                k = vp_evac_plan_load(ctx, &e, &h, time(NULL), &plan, err);
        vpd_job_accept(j, 0);
        if (k >= 0) {
                _cleanup_free_ char *reason = vp_evac_plan_reason(&plan);
                vpd_job_set_reason(j, "%s", reason);
                k = vp_evac_fence(ctx, &plan, &f, err);
                _cleanup_free_ char *how = f.method ? vp_evac_fence_outcome(&f) : NULL;
                if (how)
                        vpd_job_set_reason(j, "%s; %s", reason, how);
                else if (k == -EAGAIN)
                        vpd_job_set_reason(j, "%s; it answers again", reason);
                if (k >= 0) {
                        vpd_log(LOG_WARNING, "%s: %s; %s: moving %zu VMs of %zu pools to env %s",
                                VPD_POLICY_HOST_FAILURE, reason, how, plan.nvms, plan.npools, plan.to_env);
                        k = move_pools(j, ctx, &plan, &f, err);
                }
        }
        job_ended(j->d, ej->host_id, k);
        vp_row_clear(&vp_table_fence, &f);
        vp_evac_plan_free(&plan);
        vp_row_clear(&vp_table_env, &e);
        vp_row_clear(&vp_table_host, &h);
        return k;
}

/* ---- deciding ---- */

/* Report, or refuse for want of a fence agent: logged and recorded once per outage. */
static void decide_without_job(struct vp_ctx *ctx, const struct vp_evac_plan *p, bool report)
{
        _cleanup_free_ char *reason = vp_evac_plan_reason(p), *what = vp_evac_plan_what(p, report);
        _cleanup_free_ char *subject = vp_strdupf("%s/%s", p->env, p->host);
        _cleanup_free_ char *full = vp_strdupf("%s; %s%s", reason, report ? "report only: " : "", what);
        _cleanup_free_ char *command = vp_strdupf("vpoold: %s policy %s: host %s of env %s", VPD_POLICY_HOST_FAILURE,
                                                  report ? "report" : "evacuate", p->host, p->env);
        vpd_log(LOG_WARNING, "%s: %s", VPD_POLICY_HOST_FAILURE, full);
        record(ctx, subject, report ? "report" : "evacuate", command, full, report ? NULL : what);
}

/* False when the daemon stops (no job then). */
static bool start_job(struct vpd *d, const struct vp_evac_plan *p, int64_t host_id)
{
        struct evac_job *ej = vp_xcalloc(1, sizeof(*ej));
        ej->host_id = host_id;
        snprintf(ej->env, sizeof(ej->env), "%s", p->env);
        snprintf(ej->host, sizeof(ej->host), "%s", p->host);
        _cleanup_free_ char *subject = vp_strdupf("%s/%s", p->env, p->host);
        _cleanup_free_ char *command = vp_strdupf("vpoold: %s policy evacuate: host %s of env %s to env %s",
                                                  VPD_POLICY_HOST_FAILURE, p->host, p->env, p->to_env);
        _cleanup_free_ char *reason = vp_evac_plan_reason(p);
        vpd_log(LOG_WARNING, "%s: %s: evacuating it", VPD_POLICY_HOST_FAILURE, reason);
        return vpd_job_run_policy(d, "host.evacuate", subject, NULL, VPD_POLICY_HOST_FAILURE, command, reason, ej,
                                  run_evacuate);
}

/* What to do about host H of env E now, its state ST (the lock held). */
static void consider(struct vpd *d, struct vp_ctx *ctx, const struct vp_env *e, const struct vp_host *h,
                     struct hoststate *st, time_t now)
{
        struct vp_host_failure_policy pol;
        int64_t grace;
        vp_env_host_failure(e, &pol, &grace);
        bool down = vpd_watch_host(d, h->id) == VPD_HOST_DOWN && h->unreachable && *h->unreachable;
        if (!down) {
                /* Back (or never lost): the next outage starts afresh. */
                if (!st->running)
                        *st = (struct hoststate){ .host_id = h->id };
                return;
        }
        if (st->running || pol.action == VP_HOST_FAILURE_NONE ||
            !vp_host_failure_due(vp_host_down_for(h->unreachable, now), grace))
                return;
        if (!streq(st->outage, h->unreachable)) {
                *st = (struct hoststate){ .host_id = h->id };
                snprintf(st->outage, sizeof(st->outage), "%s", h->unreachable);
        }
        st->grace = grace;
        if (st->done || (st->failures && now < st->retry_at))
                return;
        struct vp_evac_plan p;
        struct vp_error err = { 0 };
        if (vp_evac_plan_load(ctx, e, h, now, &p, &err) < 0) {
                vpd_log(LOG_WARNING, "%s: host %s of env %s: %s", VPD_POLICY_HOST_FAILURE, h->name, e->name, err.msg);
                return;
        }
        if (!p.npools) {
                /* Pools held by their unfinished migrations are for those to
                 * finish (resumed from the journal): looked at again later. */
                st->done = !p.nbusy;
                if (st->done) {
                        _cleanup_free_ char *reason = vp_evac_plan_reason(&p);
                        vpd_log(LOG_INFO, "%s: %s; no VM to move", VPD_POLICY_HOST_FAILURE, reason);
                }
        } else if (pol.action == VP_HOST_FAILURE_REPORT || !p.fence_cmd) {
                decide_without_job(ctx, &p, pol.action == VP_HOST_FAILURE_REPORT);
                st->done = true;
        } else {
                st->running = start_job(d, &p, h->id);
        }
        vp_evac_plan_free(&p);
}

void vpd_evacuate_tick(struct vpd *d, struct vp_ctx *ctx)
{
        struct vpd_evac *ev = d->evac;
        time_t now = time(NULL);
        if (!ev || now == ev->last_tick)
                return;
        ev->last_tick = now;
        struct vp_env *es = NULL;
        size_t ne = 0;
        if (vp_row_list(ctx->cat, &vp_table_env, NULL, NULL, (void **)&es, &ne, NULL) < 0)
                return;
        for (size_t i = 0; i < ne; i++) {
                struct vp_host *hs = NULL;
                size_t nh = 0;
                if (vp_env_hosts(ctx, es[i].id, &hs, &nh, NULL) < 0)
                        continue;
                /* Under the lock throughout: a job's end (job_ended) waits
                 * for the decision, never the other way round. */
                pthread_mutex_lock(&ev->lock);
                for (size_t k = 0; k < nh; k++)
                        consider(d, ctx, &es[i], &hs[k], state_of(ev, hs[k].id), now);
                pthread_mutex_unlock(&ev->lock);
                vp_rows_free(&vp_table_host, hs, nh);
        }
        vp_rows_free(&vp_table_env, es, ne);
}
