#include "policy.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* The library's side of the policies: settings, window, wave (this
 * directory's policy.h is the daemon's). */
#include "../lib/policy.h"
#include "history.h"
#include "host.h"
#include "jobs.h"

/* What the policies remember from one look to the next. A host's mark
 * lives while it stays in maintenance, a pool's and a window's while their
 * retirement is there; a pending move's until its job ends. */
enum mark_kind { MARK_HOST, MARK_POOL, MARK_WINDOW };
enum mark_state {
        MARK_PENDING,          /* its job runs */
        MARK_DONE,
        MARK_FAILED,           /* left to the operator */
        MARK_TOLD,             /* failed, and the log said it is not tried again */
        MARK_REPORTED,         /* report mode: recorded once */
};

struct mark {
        enum mark_kind kind;
        int64_t key;           /* a host's id, or a retirement's */
        char pool[64];         /* MARK_POOL: the pool */
        enum mark_state state;
        int64_t job;
        bool kept;             /* still wanted at this look */
};

struct vpd_policy {
        struct vpd *d;
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t wake;
        bool stopping;
        /* Touched by the policies' thread alone. */
        struct mark *marks;
        size_t n, cap;
};

/* ---- marks ---- */

static struct mark *mark_find(struct vpd_policy *p, enum mark_kind kind, int64_t key, const char *pool)
{
        for (size_t i = 0; i < p->n; i++)
                if (p->marks[i].kind == kind && p->marks[i].key == key && streq(p->marks[i].pool, pool))
                        return &p->marks[i];
        return NULL;
}

static struct mark *mark_set(struct vpd_policy *p, enum mark_kind kind, int64_t key, const char *pool,
                             enum mark_state state, int64_t job)
{
        struct mark *m = mark_find(p, kind, key, pool);
        if (!m) {
                if (p->n == p->cap) {
                        p->cap = p->cap ? 2 * p->cap : 16;
                        struct mark *grown = realloc(p->marks, p->cap * sizeof(*p->marks));
                        if (!grown)
                                abort();
                        p->marks = grown;
                }
                m = &p->marks[p->n++];
                *m = (struct mark){ .kind = kind, .key = key };
                snprintf(m->pool, sizeof(m->pool), "%s", pool);
        }
        m->state = state;
        m->job = job;
        m->kept = true;
        return m;
}

static void mark_drop(struct vpd_policy *p, struct mark *m)
{
        *m = p->marks[--p->n];
}

/* Keep the marks of KEY (of host marks, or of a retirement's). */
static void marks_keep(struct vpd_policy *p, bool host, int64_t key)
{
        for (size_t i = 0; i < p->n; i++)
                if ((p->marks[i].kind == MARK_HOST) == host && p->marks[i].key == key)
                        p->marks[i].kept = true;
}

/* The moves begun at earlier looks that have ended since. A migration the
 * pool's lock refused before it began (another process works on the pool)
 * waits for the next look; any other failure is left to the operator. */
static void marks_follow(struct vpd_policy *p)
{
        for (size_t i = 0; i < p->n; i++) {
                struct mark *m = &p->marks[i];
                struct vpd_job_outcome o;
                if (m->state != MARK_PENDING)
                        continue;
                if (!vpd_job_outcome(p->d, m->job, &o) || o.state == VP_JOB_DONE) {
                        m->state = MARK_DONE;
                } else if (o.state == VP_JOB_FAILED && o.error_code == -EBUSY && !o.migration_id &&
                           m->kind == MARK_POOL) {
                        vpd_log(LOG_INFO, "policy retire: pool %s is busy (%s); tried again at the next look",
                                m->pool, o.error);
                        mark_drop(p, m);
                        i--;
                } else if (o.state == VP_JOB_FAILED) {
                        m->state = MARK_FAILED;
                        vpd_log(LOG_WARNING, "policy %s: job %lld failed: %s; not tried again until an operator acts",
                                m->kind == MARK_HOST ? VP_POLICY_MAINTENANCE : VP_POLICY_RETIRE, (long long)m->job,
                                o.error);
                }
        }
}

/* Forget what is no longer wanted; a pending move stays until it ends. */
static void marks_sweep(struct vpd_policy *p)
{
        for (size_t i = 0; i < p->n; i++) {
                if (!p->marks[i].kept && p->marks[i].state != MARK_PENDING)
                        mark_drop(p, &p->marks[i--]);
                else
                        p->marks[i].kept = false;
        }
}

/* ---- what a policy records without moving anything ---- */

/* A history row of policy ACTOR, ended at once: what it found or would do. */
static void record(struct vp_ctx *ctx, const char *actor, const char *noun, const char *verb, const char *subject,
                   const char *pool, const char *command, const char *reason)
{
        struct vp_actor a = { .via = VP_VIA_POLICY };
        snprintf(a.name, sizeof(a.name), "%s", actor);
        struct vp_history h = { 0 };
        struct vp_error err = { 0 };
        vp_history_who(&h, &a);
        h.command = vp_strdup(command);
        h.noun = vp_strdup(noun);
        h.verb = vp_strdup(verb);
        h.subject = vp_strdup(subject);
        h.pool = vp_strdup(pool ? pool : "");
        h.vm = vp_strdup("");
        h.reason = vp_strdup(reason);
        if (vp_history_begin(ctx->cat, &h, &err) < 0 || vp_history_end(ctx->cat, &h, "ok", &err) < 0)
                vpd_log(LOG_WARNING, "policy %s: cannot record '%s' in the history: %s", actor, command, err.msg);
        vp_row_clear(&vp_table_history, &h);
}

/* ---- a host in maintenance ---- */

/* Whether a pool with VMs on host HOST_ID has an unfinished migration (a
 * drain under way, or one left partial for the operator). */
static bool host_pools_busy(struct vp_ctx *ctx, int64_t host_id)
{
        struct vp_pool *pools = NULL;
        size_t n = 0;
        bool busy = vp_host_pools(ctx, host_id, &pools, &n, NULL) < 0;
        for (size_t i = 0; i < n && !busy; i++)
                busy = vp_pool_state_from_string(pools[i].state) != VP_POOL_ACTIVE;
        vp_rows_free(&vp_table_pool, pools, n);
        return busy;
}

static void look_host(struct vpd_policy *p, struct vp_ctx *ctx, const struct vp_env *e, const struct vp_host *h)
{
        if (!h->maintenance)
                return;
        marks_keep(p, true, h->id);
        enum vp_on_maintenance mode = vp_env_on_maintenance(e);
        char idbuf[24];
        int64_t nvms = 0;
        snprintf(idbuf, sizeof(idbuf), "%lld", (long long)h->id);
        if (mode == VP_ON_MAINTENANCE_NONE || vp_row_count(ctx->cat, &vp_table_vm, "host_id", idbuf, &nvms, NULL) < 0 ||
            nvms == 0)
                return;
        struct mark *m = mark_find(p, MARK_HOST, h->id, "");
        if ((m && m->state == MARK_PENDING) || vp_host_moving_off(ctx, e->name, h->name) ||
            host_pools_busy(ctx, h->id))
                return;
        char reason[256], command[256];
        snprintf(reason, sizeof(reason), "host %s of env %s in maintenance with %lld VM%s", h->name, e->name,
                 (long long)nvms, nvms == 1 ? "" : "s");
        if (mode == VP_ON_MAINTENANCE_REPORT) {
                if (m)
                        return;
                snprintf(command, sizeof(command), "vpoold (report): would drain host %s of env %s", h->name, e->name);
                vpd_log(LOG_INFO, "policy maintenance: %s; report mode: would drain it, moves nothing", reason);
                _cleanup_free_ char *why = vp_strdupf("%s; report mode: nothing moved", reason);
                _cleanup_free_ char *subject = vp_strdupf("%s/%s", e->name, h->name);
                record(ctx, VP_POLICY_MAINTENANCE, "host", "drain", subject, NULL, command, why);
                mark_set(p, MARK_HOST, h->id, "", MARK_REPORTED, 0);
                return;
        }
        if (m && m->state != MARK_REPORTED) {
                if (m->state != MARK_TOLD)
                        vpd_log(LOG_WARNING, "policy maintenance: %s after its drain; not drained again while it "
                                "stays in maintenance ('vpool env host drain %s %s' tries again)", reason, e->name,
                                h->name);
                m->state = MARK_TOLD;
                return;
        }
        struct vp_actor actor = { .via = VP_VIA_POLICY, .name = VP_POLICY_MAINTENANCE };
        int64_t job = vpd_policy_drain(p->d, e->name, h->name, &actor, reason);
        if (job) {
                vpd_log(LOG_INFO, "policy maintenance: %s; draining it (job %lld)", reason, (long long)job);
                mark_set(p, MARK_HOST, h->id, "", MARK_PENDING, job);
        }
}

static void look_maintenance(struct vpd_policy *p, struct vp_ctx *ctx)
{
        struct vp_env *envs = NULL;
        size_t n = 0;
        if (vp_row_list(ctx->cat, &vp_table_env, NULL, NULL, (void **)&envs, &n, NULL) < 0)
                return;
        for (size_t i = 0; i < n; i++) {
                struct vp_host *hs = NULL;
                size_t nh = 0;
                if (vp_env_hosts(ctx, envs[i].id, &hs, &nh, NULL) < 0)
                        continue;
                for (size_t k = 0; k < nh; k++)
                        look_host(p, ctx, &envs[i], &hs[k]);
                vp_rows_free(&vp_table_host, hs, nh);
        }
        vp_rows_free(&vp_table_env, envs, n);
}

/* ---- an env retiring ---- */

/* The pools of RT's env as a wave sees them (names borrowed from POOLS). */
static void wave_pools(struct vpd_policy *p, struct vp_ctx *ctx, const struct vp_retirement *rt,
                       const struct vp_pool *pools, size_t n, struct vp_wave_pool *ret)
{
        for (size_t i = 0; i < n; i++) {
                bool moving = false, partial = false;
                const struct mark *m = mark_find(p, MARK_POOL, rt->id, pools[i].name);
                if (vp_pool_moves(ctx, &pools[i], &moving, &partial, NULL) < 0)
                        moving = true;
                ret[i] = (struct vp_wave_pool){
                        .name = pools[i].name,
                        .moving = moving || (m && m->state == MARK_PENDING),
                        .movable = !moving && !partial &&
                                   vp_pool_state_from_string(pools[i].state) == VP_POOL_ACTIVE,
                        .failed = m && m->state != MARK_PENDING && m->state != MARK_DONE,
                };
        }
}

/* How many waves of RT have begun: its migrations so far, WAVE to a wave. */
static size_t waves_begun(struct vp_ctx *ctx, const struct vp_retirement *rt)
{
        struct vp_migration *ms = NULL;
        size_t n = 0, moved = 0;
        char idbuf[24];
        snprintf(idbuf, sizeof(idbuf), "%lld", (long long)rt->env_id);
        if (vp_row_list(ctx->cat, &vp_table_migration, "from_env_id", idbuf, (void **)&ms, &n, NULL) < 0)
                return 0;
        for (size_t i = 0; i < n; i++)
                moved += ms[i].to_env_id == rt->to_env_id && strcmp(ms[i].created, rt->created) >= 0;
        vp_rows_free(&vp_table_migration, ms, n);
        return (moved + (size_t)rt->wave - 1) / (size_t)rt->wave;
}

/* Report mode: each pool the retirement would move, once, with its wave. */
static void report_waves(struct vpd_policy *p, struct vp_ctx *ctx, const struct vp_retirement *rt, const char *to,
                         const char *label, const struct vp_wave_pool *wp, size_t n)
{
        size_t *pick = vp_xcalloc(n ? n : 1, sizeof(*pick));
        size_t k = vp_wave_pick(wp, n, n, pick), wave = (size_t)rt->wave, waves = (k + wave - 1) / wave;
        for (size_t i = 0; i < k; i++) {
                const char *pool = wp[pick[i]].name;
                _cleanup_free_ char *in_wave = vp_strdupf("%s, wave %zu of %zu", label, i / wave + 1, waves);
                _cleanup_free_ char *why = vp_strdupf("%s; report mode: nothing moved", in_wave);
                _cleanup_free_ char *command = vp_strdupf("vpoold (report): would migrate pool %s to env %s", pool, to);
                vpd_log(LOG_INFO, "policy retire: %s: would migrate pool %s; report mode, moves nothing", in_wave, pool);
                record(ctx, VP_POLICY_RETIRE, "migration", "start", pool, pool, command, why);
                mark_set(p, MARK_POOL, rt->id, pool, MARK_REPORTED, 0);
        }
        free(pick);
}

/* Migrate the next wave of RT's pools, when the one before has ended. */
static void start_wave(struct vpd_policy *p, struct vp_ctx *ctx, const struct vp_retirement *rt, const char *to,
                       const char *profile, const char *label, const struct vp_wave_pool *wp, size_t n)
{
        size_t *pick = vp_xcalloc(n ? n : 1, sizeof(*pick));
        size_t k = vp_wave_pick(wp, n, (size_t)rt->wave, pick);
        size_t left = 0;
        for (size_t i = 0; i < n; i++)
                left += wp[i].movable && !wp[i].failed;
        size_t wave = waves_begun(ctx, rt) + 1, waves = wave - 1 + (left + (size_t)rt->wave - 1) / (size_t)rt->wave;
        struct vp_actor actor = { .via = VP_VIA_POLICY, .name = VP_POLICY_RETIRE };
        for (size_t i = 0; i < k; i++) {
                const char *pool = wp[pick[i]].name;
                _cleanup_free_ char *why = vp_strdupf("%s, wave %zu of %zu", label, wave, waves);
                int64_t job = vpd_policy_migrate(p->d, pool, to, profile, &actor, why);
                if (!job)
                        break;
                vpd_log(LOG_INFO, "policy retire: %s: migrating pool %s (job %lld)", why, pool, (long long)job);
                mark_set(p, MARK_POOL, rt->id, pool, MARK_PENDING, job);
        }
        free(pick);
}

/* RT's env holds no pool and nothing of it moves: its retirement is complete. */
static void complete(struct vp_ctx *ctx, struct vp_retirement *rt, const char *label)
{
        struct vp_error err = { 0 };
        if (vp_retirement_complete(ctx, rt, &err) < 0) {
                vpd_log(LOG_WARNING, "policy retire: env %s: cannot record its retirement complete: %s", rt->env,
                        err.msg);
                return;
        }
        _cleanup_free_ char *why = vp_strdupf("%s: it holds no pool any more", label);
        _cleanup_free_ char *command = vp_strdupf("vpoold: retirement of env %s complete", rt->env);
        vpd_log(LOG_INFO, "policy retire: %s; retirement complete", why);
        record(ctx, VP_POLICY_RETIRE, "env", "retire", rt->env, NULL, command, why);
}

static void look_retirement(struct vpd_policy *p, struct vp_ctx *ctx, struct vp_retirement *rt)
{
        marks_keep(p, false, rt->id);
        if (vp_retire_state_from_string(rt->state) != VP_RETIRE_RETIRING)
                return;
        struct vp_pool *pools = NULL;
        size_t n = 0;
        char idbuf[24];
        snprintf(idbuf, sizeof(idbuf), "%lld", (long long)rt->env_id);
        if (vp_row_list(ctx->cat, &vp_table_pool, "env_id", idbuf, (void **)&pools, &n, NULL) < 0)
                return;
        _cleanup_free_ char *label = vp_retirement_label(ctx, rt);
        struct vp_wave_pool *wp = vp_xcalloc(n ? n : 1, sizeof(*wp));
        wave_pools(p, ctx, rt, pools, n, wp);
        bool pending = false;
        for (size_t i = 0; i < p->n; i++)
                pending |= p->marks[i].kind == MARK_POOL && p->marks[i].key == rt->id &&
                           p->marks[i].state == MARK_PENDING;
        struct vp_window w = { .any = true };
        vp_window_parse(rt->time_window, &w, NULL);
        struct mark *outside = mark_find(p, MARK_WINDOW, rt->id, "");
        struct vp_env to = { 0 };
        struct vp_profile prof = { 0 };
        if (n == 0 && !pending) {
                complete(ctx, rt, label);
        } else if (!vp_window_contains(&w, vp_local_minute(time(NULL)))) {
                if (!outside)
                        vpd_log(LOG_INFO, "policy retire: %s: outside its window, no new wave starts", label);
                mark_set(p, MARK_WINDOW, rt->id, "", MARK_DONE, 0);
        } else if (vp_row_get_id(ctx->cat, &vp_table_env, rt->to_env_id, &to, NULL) >= 0 &&
                   (!rt->profile_id || vp_row_get_id(ctx->cat, &vp_table_profile, rt->profile_id, &prof, NULL) >= 0)) {
                if (outside)
                        mark_drop(p, outside);
                if (rt->report)
                        report_waves(p, ctx, rt, to.name, label, wp, n);
                else
                        start_wave(p, ctx, rt, to.name, prof.name, label, wp, n);
        }
        vp_row_clear(&vp_table_env, &to);
        vp_row_clear(&vp_table_profile, &prof);
        free(wp);
        vp_rows_free(&vp_table_pool, pools, n);
}

static void look_retirements(struct vpd_policy *p, struct vp_ctx *ctx)
{
        struct vp_retirement *rts = NULL;
        size_t n = 0;
        if (vp_row_list(ctx->cat, &vp_table_retirement, NULL, NULL, (void **)&rts, &n, NULL) < 0)
                return;
        for (size_t i = 0; i < n; i++)
                look_retirement(p, ctx, &rts[i]);
        vp_rows_free(&vp_table_retirement, rts, n);
}

/* ---- the thread ---- */

/* One look at the catalog through the thread's own ctx, opened at the first
 * look that can (hosts are asked nothing here: the moves' jobs connect to
 * them). */
static void look(struct vpd_policy *p, struct vp_ctx *ctx, bool *open)
{
        struct vp_error err = { 0 };
        if (!*open && vp_ctx_open(ctx, p->d->conf.v[VP_CONF_CATALOG].text, &err) < 0) {
                vpd_log(LOG_WARNING, "policies: cannot open the catalog: %s", err.msg);
                return;
        }
        *open = true;
        marks_follow(p);
        look_maintenance(p, ctx);
        look_retirements(p, ctx);
        marks_sweep(p);
}

static void *policy_thread(void *arg)
{
        struct vpd_policy *p = arg;
        struct vp_ctx ctx;
        bool open = false;
        pthread_mutex_lock(&p->lock);
        while (!p->stopping) {
                pthread_mutex_unlock(&p->lock);
                look(p, &ctx, &open);
                pthread_mutex_lock(&p->lock);
                struct timespec until;
                clock_gettime(CLOCK_MONOTONIC, &until);
                until.tv_sec += p->d->conf.policy_interval;
                while (!p->stopping && pthread_cond_timedwait(&p->wake, &p->lock, &until) == 0)
                        ;
        }
        pthread_mutex_unlock(&p->lock);
        if (open)
                vp_ctx_close(&ctx);
        return NULL;
}

int vpd_policy_start(struct vpd *d, struct vp_error *err)
{
        struct vpd_policy *p = vp_xcalloc(1, sizeof(*p));
        p->d = d;
        pthread_mutex_init(&p->lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&p->wake, &ca);
        pthread_condattr_destroy(&ca);
        int e = pthread_create(&p->thread, NULL, policy_thread, p);
        if (e != 0) {
                pthread_cond_destroy(&p->wake);
                pthread_mutex_destroy(&p->lock);
                free(p);
                return vp_err(err, -e, "cannot start the policies' thread: %s", strerror(e));
        }
        d->policy = p;
        return 0;
}

void vpd_policy_stop(struct vpd *d)
{
        struct vpd_policy *p = d->policy;
        if (!p)
                return;
        pthread_mutex_lock(&p->lock);
        p->stopping = true;
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->thread, NULL);
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->lock);
        free(p->marks);
        free(p);
        d->policy = NULL;
}
