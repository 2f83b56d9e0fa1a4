#include "migrate.h"

#include <malloc.h>
#include <pthread.h>
#include <string.h>

#include "fence.h"
#include <semaphore.h>
#include "history.h"
#include "host.h"
#include "lease.h"
#include "lock.h"
#include "name.h"
#include "place.h"

#define VP_DEFAULT_PARALLEL 8
/* The least time a live move gets (seconds), however short the shutdown
 * timeout. */
#define VP_LIVE_MIN_TIMEOUT 30

bool vp_migration_active(struct vp_ctx *ctx, int64_t id)
{
        struct vp_migration m = { 0 };
        if (vp_row_get_id(ctx->cat, &vp_table_migration, id, &m, NULL) < 0)
                return false;
        /* A probe, not the lock: a resume starting now must not find the
         * pool busy because someone looked. When it cannot be told, the
         * migration is not called interrupted. */
        int held = vp_pool_lock_held(ctx, m.pool_name);
        vp_row_clear(&vp_table_migration, &m);
        return held != 0;
}

static void set_pool_state(struct vp_pool *pool, enum vp_pool_state state)
{
        free(pool->state);
        pool->state = vp_strdup(vp_pool_state_to_string(state));
}

/* ---- the run: shared state of the worker threads ------------------------ */

/* A VM's step waiting to be committed (see record_step). */
struct step_rec {
        struct vp_migvm *mv;
        enum vp_step step;
        int64_t gen;
        const char *detail;
        const struct vp_vm *vm;
        bool done;
        int result;
        struct vp_error err;
        pthread_cond_t *wake;          /* its caller's, on the last step of a call: done, or lead */
        struct step_rec *next;
};

/* A source host's domains as listed when the run first needed one of them:
 * held handles, sorted by name, so a VM's source takes no look-up. */
struct host_domains {
        bool tried, listed;
        virDomainPtr *d;
        size_t n;
};

struct run {
        struct vp_ctx *ctx;
        struct vp_migration mig;
        struct vp_pool pool;
        struct vp_image im;
        struct vp_env *envs;
        size_t nenvs;
        struct vp_profile *profs;
        size_t nprofs;
        struct vp_host *hosts;         /* every host of every env */
        size_t nhosts;
        virConnectPtr *conns;          /* per host, NULL when not needed or unreachable */
        bool *fenced;                  /* per host: unreachable and declared powered off */
        bool *given_back;              /* per VM: an abort handed its delta back already */
        struct vp_fence *fences;       /* the migration's fence records so far */
        size_t nfences;
        const char *asserted;          /* the env the operator says is powered off, or NULL */
        const struct vp_fence *prefence; /* a fence the caller ran before the migration, or NULL */
        struct vp_migvm *mvs;
        size_t n;
        size_t next;
        size_t failures;
        bool aborting;
        int lockfd;                    /* the pool's lock (vp_pool_lock), checked before each step */
        bool schema_checked;           /* a target domain passed libvirt's schema check */
        bool image_checked;            /* vp_image_check_files passed for IM when the run began */
        struct host_domains *doms;     /* per host: its domains, listed once (source_domain) */
        sem_t hv_slots;                /* VMs at the hypervisors at once: --parallel (hv_take) */
        bool slots_ready;
        pthread_mutex_t doms_lock;
        pthread_mutex_t lock;          /* next, failures, the commit queue, events */
        pthread_mutex_t cat_lock;      /* the catalog connection */
        struct step_rec *queue;        /* steps waiting for the next commit */
        bool committing;               /* a worker is committing a batch */
        vp_migrate_event_fn ev;
        void *ud;
};

static struct vp_env *env_by_id(struct run *r, int64_t id)
{
        return vp_rows_find_id(&vp_table_env, r->envs, r->nenvs, id);
}

static struct vp_host *host_by_id(const struct run *r, int64_t id)
{
        return vp_rows_find_id(&vp_table_host, r->hosts, r->nhosts, id);
}

/* The first host of env ENV_ID: where a VM of a migration from before
 * hosts were recorded is. */
static struct vp_host *first_host_of(const struct run *r, int64_t env_id)
{
        struct vp_host *first = NULL;
        for (size_t i = 0; i < r->nhosts; i++)
                if (r->hosts[i].env_id == env_id && (!first || strcmp(r->hosts[i].name, first->name) < 0))
                        first = &r->hosts[i];
        return first;
}

/* The host MV left, and the one placement gave it. */
static struct vp_host *src_host(const struct run *r, const struct vp_migvm *mv)
{
        struct vp_host *h = mv->src_host_id ? host_by_id(r, mv->src_host_id) : NULL;
        return h ? h : first_host_of(r, mv->src_env_id);
}

static struct vp_host *dst_host(const struct run *r, const struct vp_migvm *mv)
{
        struct vp_host *h = mv->dst_host_id ? host_by_id(r, mv->dst_host_id) : NULL;
        return h ? h : first_host_of(r, r->mig.to_env_id);
}

static size_t host_index(const struct run *r, const struct vp_host *h)
{
        return (size_t)(h - r->hosts);
}

static virConnectPtr conn_of(const struct run *r, const struct vp_host *h)
{
        return h ? r->conns[host_index(r, h)] : NULL;
}

static struct vp_profile *prof_by_id(struct run *r, int64_t id)
{
        return vp_rows_find_id(&vp_table_profile, r->profs, r->nprofs, id);
}

static void run_clear(struct run *r)
{
        vp_row_clear(&vp_table_migration, &r->mig);
        vp_row_clear(&vp_table_pool, &r->pool);
        vp_row_clear(&vp_table_image, &r->im);
        vp_rows_free(&vp_table_env, r->envs, r->nenvs);
        vp_rows_free(&vp_table_profile, r->profs, r->nprofs);
        vp_rows_free(&vp_table_host, r->hosts, r->nhosts);
        for (size_t i = 0; r->doms && i < r->nhosts; i++) {
                for (size_t k = 0; k < r->doms[i].n; k++)
                        virDomainFree(r->doms[i].d[k]);
                free(r->doms[i].d);
        }
        free(r->doms);
        pthread_mutex_destroy(&r->doms_lock);
        if (r->slots_ready)
                sem_destroy(&r->hv_slots);
        free(r->conns);
        free(r->fenced);
        free(r->given_back);
        vp_rows_free(&vp_table_fence, r->fences, r->nfences);
        vp_rows_free(&vp_table_migvm, r->mvs, r->n);
        pthread_mutex_destroy(&r->lock);
        pthread_mutex_destroy(&r->cat_lock);
        memset(r, 0, sizeof(*r));
}

/* Whether a VM at step S still needs its source: a move until the source
 * has let go of the delta (a LIVE move's VM runs there through its lock,
 * and a move a killed run began is judged by what the source still runs),
 * an abort to give it back. */
static bool step_needs_source(enum vp_step s, bool aborting, bool live)
{
        if (aborting)
                return s == VP_STEP_STOPPING || s == VP_STEP_LOCKED || s == VP_STEP_PROVISIONED;
        return s == VP_STEP_PENDING || s == VP_STEP_STOPPING || (live && s == VP_STEP_LOCKED);
}

/* Whether an abort handed MV's delta back to its VM already without
 * recording it (the delta is the VM's, two or more generations past the
 * journal's: the unlock gives one, a hand-back two). A resume then finishes
 * that return rather than take the delta again: the source may run it. */
static bool delta_given_back(struct run *r, const struct vp_migvm *mv)
{
        enum vp_step s = vp_step_from_string(mv->step);
        if (s != VP_STEP_STOPPING && s != VP_STEP_LOCKED && s != VP_STEP_PROVISIONED)
                return false;
        struct vp_vm vm = { 0 };
        if (vp_row_get_id(r->ctx->cat, &vp_table_vm, mv->vm_id, &vm, NULL) < 0)
                return false;
        _cleanup_close_ int dfd = -1;
        struct vp_manifest m;
        char owner[VP_OWNER_MAX];
        vp_owner_vm(owner, vm.name);
        bool back = vp_delta_open(&r->ctx->st, r->pool.name, vp_delta_dir_of(vm.delta_path), &dfd, NULL) >= 0 &&
                    vp_manifest_read(dfd, vm.delta_path, &m, NULL) >= 0 && streq(m.owner, owner) &&
                    m.generation >= mv->generation + 2;
        vp_row_clear(&vp_table_vm, &vm);
        return back;
}

/* Whether any VM of the run needs source host H: to take its delta from
 * it, or, unless only TAKING counts, to give its delta back. */
static bool source_needed_by(const struct run *r, const struct vp_host *h, bool taking)
{
        for (size_t j = 0; j < r->n; j++) {
                bool giving = r->aborting || r->given_back[j];
                if (src_host(r, &r->mvs[j]) == h && (!taking || !giving) &&
                    step_needs_source(vp_step_from_string(r->mvs[j].step), giving, r->mvs[j].live))
                        return true;
        }
        return false;
}

static bool source_needed(const struct run *r, const struct vp_host *h)
{
        return source_needed_by(r, h, false);
}

/* Whether H is where a VM of the run goes. */
static bool target_host(const struct run *r, const struct vp_host *h)
{
        for (size_t j = 0; j < r->n; j++)
                if (dst_host(r, &r->mvs[j]) == h)
                        return true;
        return false;
}

/* Load what every step needs; connections come from the ctx cache, a
 * source only if a VM still needs it (after its grace period). Envs that
 * cannot be reached get a NULL connection; a VM that needs one fails. */
static int run_load(struct vp_ctx *ctx, int64_t id, bool aborting, struct run *r, struct vp_error *err)
{
        int k;
        memset(r, 0, sizeof(*r));
        r->aborting = aborting;
        r->lockfd = -1;
        pthread_mutex_init(&r->lock, NULL);
        pthread_mutex_init(&r->cat_lock, NULL);
        pthread_mutex_init(&r->doms_lock, NULL);
        r->ctx = ctx;
        void *rows;
        if ((k = vp_row_get_id(ctx->cat, &vp_table_migration, id, &r->mig, err)) < 0 ||
            (k = vp_row_get_id(ctx->cat, &vp_table_pool, r->mig.pool_id, &r->pool, err)) < 0 ||
            (k = vp_row_get_id(ctx->cat, &vp_table_image, r->pool.image_id, &r->im, err)) < 0)
                return k;
        if ((k = vp_row_list(ctx->cat, &vp_table_env, NULL, NULL, &rows, &r->nenvs, err)) < 0)
                return k;
        r->envs = rows;
        if ((k = vp_row_list(ctx->cat, &vp_table_profile, NULL, NULL, &rows, &r->nprofs, err)) < 0)
                return k;
        r->profs = rows;
        if ((k = vp_row_list(ctx->cat, &vp_table_host, NULL, NULL, &rows, &r->nhosts, err)) < 0)
                return k;
        r->hosts = rows;
        if ((k = vp_row_query(ctx->cat, &vp_table_migvm, "migration_id = ?1", id, &rows, &r->n, err)) < 0)
                return k;
        r->mvs = rows;
        if ((k = vp_row_query(ctx->cat, &vp_table_fence, "migration_id = ?1", id, &rows, &r->nfences, err)) < 0)
                return k;
        r->fences = rows;
        r->given_back = vp_xcalloc(r->n, sizeof(bool));
        for (size_t j = 0; j < r->n && !aborting; j++)
                r->given_back[j] = delta_given_back(r, &r->mvs[j]);
        r->conns = vp_xcalloc(r->nhosts ? r->nhosts : 1, sizeof(virConnectPtr));
        r->doms = vp_xcalloc(r->nhosts ? r->nhosts : 1, sizeof(struct host_domains));
        r->image_checked = vp_image_check_files(ctx, &r->im, NULL) >= 0;
        r->fenced = vp_xcalloc(r->nhosts ? r->nhosts : 1, sizeof(bool));
        for (size_t i = 0; i < r->nhosts; i++) {
                if (target_host(r, &r->hosts[i]))
                        vp_ctx_conn_host(ctx, &r->hosts[i], &r->conns[i], NULL);
                else if (source_needed(r, &r->hosts[i]))
                        vp_ctx_conn_host_source(ctx, &r->hosts[i], &r->conns[i], NULL);
        }
        return 0;
}

/* ---- VMs at the hypervisors ------------------------------------------------ */

/* --parallel bounds the VMs being worked on at the hypervisors at once
 * (stopped, undefined, defined, started, moved live): each takes one of the
 * run's slots for that work and gives it back before it waits on the disk
 * (its journal commit, its manifest), so more VMs than slots are in flight
 * and that wait overlaps the hypervisors' work. Whether this thread holds
 * a slot is its own state: a worker works on one VM at a time. */
static _Thread_local bool slot_held;

static void hv_take(struct run *r)
{
        if (slot_held || !r->slots_ready)
                return;
        while (sem_wait(&r->hv_slots) < 0 && errno == EINTR)
                ;
        slot_held = true;
}

static void hv_give(struct run *r)
{
        if (!slot_held)
                return;
        sem_post(&r->hv_slots);
        slot_held = false;
}

static void emit(struct run *r, const char *vm, const char *step, int64_t gen, const char *error)
{
        if (r->ev)
                r->ev(r->ud, r->mig.id, vm, step, gen, error);
}

/* What a step changes in its VM's migration row, and in the VM's row when
 * it rewrites that (a hand-over: owner and generation, and where it is). */
static const char *const step_cols[] = { "step", "source_running", "live", "generation", "error", "updated", NULL };
static const char *const vm_step_cols[] = { "env_id", "profile_id", "host_id", "owner", "generation", NULL };

/* Commit BATCH (a list of steps of different VMs) in one transaction: each
 * VM's row, its journal entry and, where given, its VM row. All or none. */
static int commit_batch(struct run *r, struct step_rec *batch, struct vp_error *err)
{
        struct vp_catalog *c = r->ctx->cat;
        char *now = vp_now_iso();
        pthread_mutex_lock(&r->cat_lock);
        int k = vp_catalog_begin_whole(c, err);
        for (struct step_rec *q = batch; q && k >= 0; q = q->next) {
                char *step = (char *)vp_step_to_string(q->step);
                struct vp_migvm row = *q->mv;
                row.step = step;
                row.error = (char *)"";
                row.updated = now;
                row.generation = q->gen;
                struct vp_journal j = {
                        .migration_id = r->mig.id, .vm_name = q->mv->vm_name, .step = step,
                        .generation = q->gen, .detail = (char *)(q->detail ? q->detail : ""), .at = now,
                };
                if ((k = vp_row_update_cols(c, &vp_table_migvm, &row, step_cols, err)) >= 0 &&
                    (k = vp_row_insert(c, &vp_table_journal, &j, err)) >= 0 && q->vm)
                        k = vp_row_update_cols(c, &vp_table_vm, q->vm, vm_step_cols, err);
        }
        if (k >= 0)
                k = vp_catalog_commit(c, err);
        if (k < 0)
                vp_catalog_rollback(c);
        pthread_mutex_unlock(&r->cat_lock);
        for (struct step_rec *q = batch; q && k >= 0; q = q->next) {
                struct vp_migvm *mv = q->mv;
                free(mv->step);
                free(mv->error);
                free(mv->updated);
                mv->step = vp_strdup(vp_step_to_string(q->step));
                mv->error = vp_strdup("");
                mv->updated = vp_strdup(now);
                mv->generation = q->gen;
        }
        free(now);
        return k;
}

/* Commit RECS (N steps, in order) in one transaction, before the next step
 * begins; returns once that transaction is on disk. Steps of several
 * workers share a transaction (a group commit): while one worker commits,
 * the others queue their steps, and one of them, woken when that commit
 * ends, commits the queue as the next batch. Each VM still waits for its
 * own steps to be durable. A waiter is woken only for its own steps or to
 * lead: with dozens of VMs in flight, waking them all at each commit was
 * most of the work. */
static int record_steps(struct run *r, struct step_rec *recs, size_t n, struct vp_error *err)
{
        hv_give(r);
        pthread_cond_t wake;
        pthread_cond_init(&wake, NULL);
        struct step_rec *me = &recs[n - 1];
        me->wake = &wake;
        pthread_mutex_lock(&r->lock);
        for (size_t i = 0; i < n; i++) {
                recs[i].next = r->queue;
                r->queue = &recs[i];
        }
        while (!me->done) {
                if (r->committing) {
                        pthread_cond_wait(&wake, &r->lock);
                        continue;
                }
                /* Lead: take the whole queue, oldest first. */
                struct step_rec *batch = NULL;
                while (r->queue) {
                        struct step_rec *q = r->queue;
                        r->queue = q->next;
                        q->next = batch;
                        batch = q;
                }
                r->committing = true;
                pthread_mutex_unlock(&r->lock);
                struct vp_error berr = { 0 };
                int k = commit_batch(r, batch, &berr);
                pthread_mutex_lock(&r->lock);
                r->committing = false;
                for (struct step_rec *q = batch, *next; q; q = next) {
                        next = q->next;
                        q->result = k;
                        q->err = berr;
                        if (k >= 0) {
                                const char *name = vp_step_to_string(q->step);
                                emit(r, q->mv->vm_name, name, q->gen, NULL);
                                char point[64];
                                snprintf(point, sizeof(point), "migrate.%s", name);
                                vp_fault_point(point);
                        }
                        q->done = true;
                        if (q->wake && q != me)
                                pthread_cond_signal(q->wake);
                }
                /* The last call queued (its last step is on top) leads next. */
                if (r->queue)
                        pthread_cond_signal(r->queue->wake);
        }
        pthread_mutex_unlock(&r->lock);
        pthread_cond_destroy(&wake);
        if (me->result < 0 && err)
                *err = me->err;
        return me->result;
}

/* Record that MV reached STEP (and rewrite VM's row when given), in one
 * transaction with its journal entry (see record_steps). */
static int record_step(struct run *r, struct vp_migvm *mv, enum vp_step step, int64_t gen,
                       const char *detail, const struct vp_vm *vm, struct vp_error *err)
{
        struct step_rec me = { .mv = mv, .step = step, .gen = gen, .detail = detail, .vm = vm };
        return record_steps(r, &me, 1, err);
}

static void record_error(struct run *r, struct vp_migvm *mv, const char *msg)
{
        pthread_mutex_lock(&r->lock);
        pthread_mutex_lock(&r->cat_lock);
        struct vp_catalog *c = r->ctx->cat;
        free(mv->error);
        mv->error = vp_strdup(msg);
        free(mv->updated);
        mv->updated = vp_now_iso();
        struct vp_journal j = {
                .migration_id = r->mig.id, .vm_name = mv->vm_name, .step = (char *)VP_JOURNAL_ERROR,
                .generation = mv->generation, .detail = (char *)msg, .at = mv->updated,
        };
        if (vp_catalog_begin(c, NULL) >= 0 && vp_row_update(c, &vp_table_migvm, mv, NULL) >= 0 &&
            vp_row_insert(c, &vp_table_journal, &j, NULL) >= 0)
                vp_catalog_commit(c, NULL);
        else
                vp_catalog_rollback(c);
        pthread_mutex_unlock(&r->cat_lock);
        r->failures++;
        emit(r, mv->vm_name, mv->step, mv->generation, msg);
        pthread_mutex_unlock(&r->lock);
}

static int load_vm_locked(struct run *r, int64_t id, struct vp_vm *vm, struct vp_error *err)
{
        pthread_mutex_lock(&r->cat_lock);
        int k = vp_row_get_id(r->ctx->cat, &vp_table_vm, id, vm, err);
        pthread_mutex_unlock(&r->cat_lock);
        return k;
}

/* Define XML on CONN. The domains of one run share their shape, so only
 * until one has passed libvirt's schema check, costly on the daemon's side,
 * is the check asked for. */
static int define_domain(struct run *r, virConnectPtr conn, const char *xml, struct vp_error *err)
{
        pthread_mutex_lock(&r->lock);
        bool validate = !r->schema_checked;
        pthread_mutex_unlock(&r->lock);
        int k = vp_hv_define(conn, xml, validate, err);
        if (k >= 0 && validate) {
                pthread_mutex_lock(&r->lock);
                r->schema_checked = true;
                pthread_mutex_unlock(&r->lock);
        }
        return k;
}

static int need_conn(struct run *r, const struct vp_host *h, virConnectPtr *ret, struct vp_error *err)
{
        *ret = conn_of(r, h);
        if (*ret)
                return 0;
        struct vp_env *e = h ? env_by_id(r, h->env_id) : NULL;
        _cleanup_free_ char *who = vp_host_label(e ? e->name : "?", h ? h->name : NULL);
        return vp_err(err, -EHOSTUNREACH, "%s is unreachable", who);
}

/* ---- sources that do not answer: fenced or waited for ------------------- */

/* A fence of host H of env E this migration already recorded as
 * successful: a host powered off stays off until it answers again. A
 * fence recorded before hosts were (no host name) covered its env. */
static bool fenced_before(const struct run *r, const struct vp_env *e, const struct vp_host *h)
{
        for (size_t i = 0; i < r->nfences; i++)
                if (r->fences[i].fenced && streq(r->fences[i].env_name, e->name) &&
                    (!r->fences[i].host_name || !*r->fences[i].host_name || streq(r->fences[i].host_name, h->name)))
                        return true;
        return false;
}

/* What the journal says of fence F. */
static char *fence_detail(const struct vp_fence *f)
{
        _cleanup_free_ char *who = vp_host_label(f->env_name, f->host_name);
        if (vp_fence_method_from_string(f->method) == VP_FENCE_OPERATOR)
                return vp_strdupf("%s declared powered off by the operator (%s)", who, f->output);
        _cleanup_free_ char *cmd = vp_fence_cmd_show(f->command);
        if (f->exit_status < 0)
                return vp_strdupf("%s: fence agent '%s' did not exit normally: not fenced, its VMs wait", who,
                                  cmd ? cmd : "?");
        return vp_strdupf("%s: fence agent '%s' exited %lld: %s", who, cmd ? cmd : "?", (long long)f->exit_status,
                          f->fenced ? "powered off" : "not fenced, its VMs wait");
}

/* Record fence F of this migration, with its journal entry, durably. */
static int record_fence(struct run *r, struct vp_fence *f, struct vp_error *err)
{
        struct vp_catalog *c = r->ctx->cat;
        _cleanup_free_ char *now = vp_now_iso();
        _cleanup_free_ char *detail = fence_detail(f);
        f->migration_id = r->mig.id;
        f->at = vp_strdup(now);
        struct vp_journal j = { .migration_id = r->mig.id, .vm_name = (char *)"", .step = (char *)VP_JOURNAL_FENCE,
                                .detail = detail, .at = now };
        pthread_mutex_lock(&r->cat_lock);
        int k = vp_catalog_begin(c, err);
        if (k >= 0 && (k = vp_row_insert(c, &vp_table_fence, f, err)) >= 0 &&
            (k = vp_row_insert(c, &vp_table_journal, &j, err)) >= 0)
                k = vp_catalog_commit(c, err);
        if (k < 0)
                vp_catalog_rollback(c);
        pthread_mutex_unlock(&r->cat_lock);
        if (k >= 0)
                emit(r, NULL, VP_JOURNAL_FENCE, 0, f->fenced ? NULL : detail);
        return k;
}

/* The operator's word that env E is off, with who gave it. */
static void operator_fence(const struct vp_env *e, struct vp_fence *f)
{
        struct vp_history who = { 0 };
        vp_history_whoami(&who);
        f->method = vp_strdup(vp_fence_method_to_string(VP_FENCE_OPERATOR));
        f->command = vp_strdup("");
        f->output = *who.sudo_user ? vp_strdupf("%s, through sudo by %s", who.user, who.sudo_user)
                                   : vp_strdup(who.user);
        f->fenced = 1;
        vp_row_clear(&vp_table_history, &who);
}

/* Unreachable source host H, needed by a VM: declared powered off by the
 * operator (for its env), or by its env's fence agent, or by an earlier
 * fence of this migration. Anything else leaves its VMs waiting. */
static int fence_host(struct run *r, const struct vp_host *h, struct vp_error *err)
{
        const struct vp_env *e = env_by_id(r, h->env_id);
        if (!e)
                return 0;
        if (fenced_before(r, e, h)) {
                r->fenced[host_index(r, h)] = true;
                return 0;
        }
        struct vp_fence f = { .env_name = vp_strdup(e->name), .host_name = vp_strdup(h->name) };
        const struct vp_fence *pre = r->prefence;
        int k = 0;
        if (r->asserted && streq(r->asserted, e->name)) {
                operator_fence(e, &f);
        } else if (pre && pre->env_name && pre->host_name && streq(pre->env_name, e->name) &&
                   streq(pre->host_name, h->name)) {
                f.method = vp_strdup(pre->method);
                f.command = vp_strdup(pre->command);
                f.exit_status = pre->exit_status;
                f.output = vp_strdup(pre->output);
                f.fenced = pre->fenced;
        } else if (e->fence_cmd && *e->fence_cmd) {
                struct vp_error ferr = { 0 };
                /* An agent that cannot even run fenced nothing: that is
                 * its outcome, recorded like any other. */
                if (vp_fence_run(e, h->name, h->uri, r->ctx->fence_timeout, &f, &ferr) < 0) {
                        vp_row_clear(&vp_table_fence, &f);
                        f = (struct vp_fence){ .env_name = vp_strdup(e->name), .host_name = vp_strdup(h->name),
                                               .method = vp_strdup(vp_fence_method_to_string(VP_FENCE_AGENT)),
                                               .command = vp_strdup(e->fence_cmd), .exit_status = -1,
                                               .output = vp_strdup(ferr.msg) };
                }
        } else {
                goto out;
        }
        if ((k = record_fence(r, &f, err)) >= 0)
                r->fenced[host_index(r, h)] = f.fenced;
out:
        vp_row_clear(&vp_table_fence, &f);
        return k;
}

/* The operator's word applies to one env that is a source of this
 * migration and does not answer; never to a host that answers. */
static int check_asserted(struct run *r, struct vp_error *err)
{
        if (!r->asserted)
                return 0;
        const struct vp_env *e = vp_rows_find_name(&vp_table_env, r->envs, r->nenvs, r->asserted);
        bool source = false, silent = false;
        for (size_t j = 0; e && j < r->n; j++) {
                const struct vp_host *h = src_host(r, &r->mvs[j]);
                if (!h || h->env_id != e->id)
                        continue;
                source = true;
                silent = silent || (!conn_of(r, h) && source_needed(r, h));
        }
        if (!source)
                return vp_err(err, -EINVAL, "env '%s' is not a source of migration %lld; --source-fenced names the "
                              "unreachable source", r->asserted, (long long)r->mig.id);
        if (!silent)
                return vp_err(err, -EINVAL, "env '%s' answers: --source-fenced is only for an env that does not "
                              "(its VMs are stopped there as usual)", r->asserted);
        return 0;
}

/* Every source env a VM needs to take its delta from that does not
 * answer is fenced, if it can be, before any VM moves. (One that a VM
 * needs to give its delta back to is waited for, never fenced.) */
static int fence_sources(struct run *r, struct vp_error *err)
{
        int k = 0;
        for (size_t i = 0; i < r->nhosts && k >= 0; i++)
                if (!r->conns[i] && !target_host(r, &r->hosts[i]) && source_needed_by(r, &r->hosts[i], true))
                        k = fence_host(r, &r->hosts[i], err);
        return k;
}

/* ---- one VM: its move, or its return by an abort -------------------------- */

/* What every step of one VM works with, filled once by job_load and the
 * connect of its direction (move_connect, return_connect). */
struct vm_job {
        struct run *r;
        struct vp_migvm *mv;
        struct vp_vm vm;               /* its catalog row; a hand-over rewrites it */
        int dfd;                       /* its user delta collection */
        char vm_owner[VP_OWNER_MAX];   /* the owner tokens of the VM and of the migration */
        char mig_owner[VP_OWNER_MAX];
        struct vp_env *src, *dst;
        struct vp_host *sh, *dh;       /* the host it leaves, the host it goes to */
        struct vp_profile *sp, *dp;
        virConnectPtr sc, dc;          /* NULL where not needed (or fenced, unreachable) */
        bool fenced;                   /* the source did not answer and was declared powered off */
        bool defined;                  /* this run defined the target's domain (no need to look for it) */
        bool locked;                   /* this run locked the delta: LOCKED_M is its manifest since */
        struct vp_manifest locked_m;
};

/* A step function takes the VM from the step it is at to the next and
 * records that step; it returns 0 once the step is durable. */
typedef int (*step_fn)(struct vm_job *j, struct vp_error *err);

static enum vp_step job_step(const struct vm_job *j)
{
        return vp_step_from_string(j->mv->step);
}

static int job_load(struct run *r, struct vp_migvm *mv, struct vm_job *j, struct vp_error *err)
{
        *j = (struct vm_job){ .r = r, .mv = mv, .dfd = -1 };
        int k = load_vm_locked(r, mv->vm_id, &j->vm, err);
        if (k < 0)
                return k;
        vp_owner_vm(j->vm_owner, j->vm.name);
        vp_owner_migration(j->mig_owner, r->mig.id);
        j->src = env_by_id(r, mv->src_env_id);
        j->dst = env_by_id(r, r->mig.to_env_id);
        j->sh = src_host(r, mv);
        j->dh = dst_host(r, mv);
        j->sp = prof_by_id(r, mv->src_profile_id);
        j->dp = prof_by_id(r, r->mig.to_profile_id);
        return 0;
}

static void job_clear(struct vm_job *j)
{
        hv_give(j->r);
        vp_closep(&j->dfd);
        vp_row_clear(&vp_table_vm, &j->vm);
}

static int job_open_delta(struct vm_job *j, struct vp_error *err)
{
        return vp_delta_open(&j->r->ctx->st, j->r->pool.name, vp_delta_dir_of(j->vm.delta_path), &j->dfd, err);
}

/* The VM row follows the manifest M a hand-over left. */
static void job_take_owner(struct vm_job *j, const struct vp_manifest *m)
{
        free(j->vm.owner);
        j->vm.owner = vp_strdup(m->owner);
        j->vm.generation = m->generation;
}

static const step_fn move_steps[VP_STEP_MAX];

/* Run STEPS from the step the VM is at until one has no function: each
 * records its step before the next begins. A step that recorded nothing
 * ends the run rather than repeat. */
static int run_steps(struct vm_job *j, const step_fn steps[VP_STEP_MAX], struct vp_error *err)
{
        for (;;) {
                enum vp_step s = job_step(j);
                if (s < 0 || s >= VP_STEP_MAX || !steps[s])
                        return 0;
                /* No step without the pool's lock: lost, another process
                 * may be working on the pool now. */
                int k = vp_pool_lock_check(j->r->ctx, j->r->lockfd, err,
                                           "stopped at step %s so that no other process works on the pool "
                                           "alongside; 'vpool migrate %s %lld' goes on", vp_step_to_string(s),
                                           j->r->aborting ? "abort" : "resume", (long long)j->r->mig.id);
                if (k < 0)
                        return k;
                /* A move's steps take a slot where they reach a hypervisor;
                 * the rarer returns take one for each step. */
                if (steps != move_steps)
                        hv_take(j->r);
                k = steps[s](j, err);
                if (k < 0 || job_step(j) == s)
                        return k;
        }
}

/* A running VM that stays in its env with its hardware moves live (below). */
static int live_lock(struct vm_job *j, struct vp_error *err);
static int live_move(struct vm_job *j, struct vp_error *err);
static int live_unlock(struct vm_job *j, struct vp_error *err);

static int cmp_domain_name(const void *a, const void *b)
{
        return strcmp(virDomainGetName(*(virDomainPtr const *)a), virDomainGetName(*(virDomainPtr const *)b));
}

/* J's domain on its source host, from that host's list, made on the first
 * call (one call to libvirt for all its VMs): 1 with *RET the domain or
 * NULL when the host had none of that name; 0 when the list could not be
 * had (the caller looks the domain up itself). */
static int source_domain(struct vm_job *j, virDomainPtr *ret)
{
        struct run *r = j->r;
        virConnectPtr c = j->sh ? conn_of(r, j->sh) : NULL;
        if (!c)
                return 0;
        struct host_domains *hd = &r->doms[host_index(r, j->sh)];
        pthread_mutex_lock(&r->doms_lock);
        if (!hd->tried) {
                hd->tried = true;
                virDomainPtr *list = NULL;
                int n = virConnectListAllDomains(c, &list, 0);
                if (n >= 0) {
                        qsort(list, (size_t)n, sizeof(*list), cmp_domain_name);
                        hd->d = list;
                        hd->n = (size_t)n;
                        hd->listed = true;
                }
        }
        pthread_mutex_unlock(&r->doms_lock);
        if (!hd->listed)
                return 0;
        *ret = NULL;
        size_t lo = 0, hi = hd->n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c2 = strcmp(virDomainGetName(hd->d[mid]), j->vm.name);
                if (c2 == 0) {
                        *ret = hd->d[mid];
                        break;
                }
                if (c2 < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return 1;
}

/* pending → stopping. Whether the source runs is remembered before the
 * shutdown: the target starts only if the source ran; an unreachable
 * fenced source counts as running. */
static int move_note_source(struct vm_job *j, struct vp_error *err)
{
        bool running = j->fenced;
        virDomainPtr d = NULL;
        hv_take(j->r);
        if (!j->fenced && source_domain(j, &d) > 0) {
                /* As listed: a domain that runs has an id. */
                running = d && virDomainGetID(d) != (unsigned int)-1;
        } else if (!j->fenced) {
                enum vp_vm_state state;
                int k = vp_hv_domain_state(j->sc, j->vm.name, &state, err);
                if (k < 0)
                        return k;
                running = vp_vm_state_active(state);
        }
        j->mv->source_running = running;
        return record_step(j->r, j->mv, VP_STEP_STOPPING, j->mv->generation,
                           j->fenced ? "source unreachable, fenced"
                                     : running ? "source running" : "source not running", NULL, err);
}

/* The source stops and loses its definition: through the domain listed
 * when the run began where there is one, else looked up by name. A VM
 * started behind vpool's back since it was noted as not running ran
 * after all: its target starts. */
static int end_source(struct vm_job *j, struct vp_error *err)
{
        virDomainPtr d = NULL;
        int timeout = (int)j->r->mig.shutdown_timeout;
        int k;
        hv_take(j->r);
        if (source_domain(j, &d) > 0 && d) {
                bool ran = false;
                if ((k = vp_hv_retire(d, j->vm.name, timeout, &ran, err)) < 0)
                        return k;
                if (ran)
                        j->mv->source_running = true;
                vp_fault_point("migrate.source-stopped");
                vp_fault_point("migrate.source-undefined");
                return 0;
        }
        k = vp_hv_stop(j->sc, j->vm.name, timeout, true, err);
        if (k < 0 && k != -ENOENT)
                return k;
        vp_fault_point("migrate.source-stopped");
        if ((k = vp_hv_undefine(j->sc, j->vm.name, true, err)) < 0)
                return k;
        vp_fault_point("migrate.source-undefined");
        return 0;
}

/* stopping → locked. The source stops, loses its definition, and the
 * migration takes the delta over at a new generation. */
static int move_lock(struct vm_job *j, struct vp_error *err)
{
        if (j->mv->live && !j->fenced)
                return live_lock(j, err);
        int k;
        if (!j->fenced && (k = end_source(j, err)) < 0)
                return k;
        hv_give(j->r);
        struct vp_manifest m;
        if ((k = vp_delta_hand_over(j->dfd, j->vm.delta_path, j->vm_owner, j->mig_owner, j->mv->generation, 1, &m,
                                    err)) < 0)
                return k;
        job_take_owner(j, &m);
        j->locked = true;
        j->locked_m = m;
        return record_step(j->r, j->mv, VP_STEP_LOCKED, m.generation, NULL, &j->vm, err);
}

/* locked → provisioned. The target's domain, with the VM's identity and
 * the new hardware. Its disks carry the names the unlock will give them;
 * until then no such file exists, so it cannot start and holds nothing,
 * and the unlock is the rename alone. DETAIL goes to the journal. */
static int provision_cold(struct vm_job *j, const char *detail, struct vp_error *err)
{
        struct run *r = j->r;
        struct vp_manifest m;
        /* Locked by this run a step ago, under the pool's lock: the manifest
         * is the one it wrote. */
        int k = 0;
        if (j->locked)
                m = j->locked_m;
        else if ((k = vp_manifest_read(j->dfd, j->vm.delta_path, &m, err)) < 0)
                return k;
        struct vp_manifest unlocked = m;
        vp_delta_handed_manifest(&unlocked, j->vm_owner, 1);
        _cleanup_free_ char *xml = r->image_checked
                ? vp_vm_xml_own(r->ctx, j->dst, &r->im, j->dp, &unlocked, j->vm.delta_path, j->dfd, err)
                : vp_vm_xml(r->ctx, j->dst, &r->im, j->dp, &unlocked, j->vm.delta_path, err);
        if (!xml)
                return err ? err->code : -EINVAL;
        hv_take(r);
        if ((k = define_domain(r, j->dc, xml, err)) < 0)
                return k;
        j->defined = true;
        return record_step(r, j->mv, VP_STEP_PROVISIONED, m.generation, detail, NULL, err);
}

static int move_provision(struct vm_job *j, struct vp_error *err)
{
        return j->mv->live ? live_move(j, err) : provision_cold(j, NULL, err);
}

/* No process may hold the delta's disks when it changes hands. Held, the
 * VM waits where it is: running the migration's verb again (resume or
 * abort) retries. */
static int lease_check(struct vm_job *j, const struct vp_manifest *m, struct vp_error *err)
{
        int k = vp_lease_check(j->dfd, j->vm.delta_path, m, err);
        if (k == -EBUSY) {
                size_t n = strlen(err->msg);
                snprintf(err->msg + n, sizeof(err->msg) - n, "; 'vpool migrate %s %lld' retries once it is gone",
                         j->r->aborting ? "abort" : "resume", (long long)j->r->mig.id);
        }
        return k;
}

/* The delta to the target VM alone: its disks pass the checks again, and
 * no process anywhere may still hold them (a source that was only
 * unreachable, or wrongly said to be fenced) unless LEASED_BY_TARGET (a
 * live move gave them to the target's QEMU), right before they take the
 * names its domain has. Held, the VM waits at provisioned; resume retries. */
static int unlock(struct vm_job *j, bool leased_by_target, const char *detail, struct vp_error *err)
{
        struct run *r = j->r;
        struct vp_manifest m;
        int k;
        if ((k = vp_delta_settle(j->dfd, j->vm.delta_path, &m, err)) < 0 ||
            (k = vp_delta_check_settled(j->dfd, j->vm.delta_path, r->pool.name, &m, r->im.path, r->im.format,
                                        err)) < 0 ||
            (!leased_by_target && (k = lease_check(j, &m, err)) < 0) ||
            (k = vp_delta_hand_over_settled(j->dfd, j->vm.delta_path, &m, j->mig_owner, j->vm_owner,
                                            j->mv->generation, 1, &m, err)) < 0)
                return k;
        job_take_owner(j, &m);
        j->vm.env_id = j->dst->id;
        j->vm.profile_id = j->dp->id;
        j->vm.host_id = j->dh ? j->dh->id : 0;
        struct step_rec recs[2] = {
                { .mv = j->mv, .step = VP_STEP_HANDED_OVER, .gen = m.generation, .detail = detail, .vm = &j->vm },
                { .mv = j->mv, .step = VP_STEP_DONE, .gen = m.generation },
        };
        /* A target that will not start (its source did not run) and that
         * this run defined a step ago is done once handed over: nothing
         * happens between the two steps, so one commit records both. */
        bool idle = !j->mv->live && !j->mv->source_running && j->defined;
        return record_steps(r, recs, idle ? 2 : 1, err);
}

/* provisioned → handed_over. */
static int move_unlock(struct vm_job *j, struct vp_error *err)
{
        return j->mv->live ? live_unlock(j, err) : unlock(j, false, NULL, err);
}

/* The checks every start makes (vp_vm_check_start), on the run's master,
 * whose row they may restamp: under the catalog's lock. */
static int job_check_start(struct vm_job *j, struct vp_error *err)
{
        pthread_mutex_lock(&j->r->cat_lock);
        int k = vp_vm_check_start(j->r->ctx, &j->r->im, j->r->pool.name, j->vm.name, j->vm.delta_path, err);
        pthread_mutex_unlock(&j->r->cat_lock);
        return k;
}

/* The target's definition of a handed-over VM, made again from the
 * catalog and the manifest when it was lost (undefined by hand, a target
 * host reinstalled): no other verb defines it, so without this the VM
 * could never start again. A domain of its name with another UUID is
 * someone else's and is refused, never replaced. */
static int move_ensure_target(struct vm_job *j, struct vp_error *err)
{
        struct run *r = j->r;
        char uuid[VIR_UUID_STRING_BUFLEN];
        struct vp_error lerr = { 0 };
        int k = vp_hv_uuid(j->dc, j->vm.name, uuid, &lerr);
        if (k >= 0 && !streq(uuid, j->vm.uuid))
                return vp_err(err, -EEXIST, "env '%s' has a domain named '%s' with UUID %s, not the VM's %s; "
                              "refusing to replace it", j->dst->name, j->vm.name, uuid, j->vm.uuid);
        if (k != -ENOENT) {
                if (k < 0)
                        *err = lerr;
                return k;
        }
        struct vp_manifest m;
        if ((k = vp_delta_settle(j->dfd, j->vm.delta_path, &m, err)) < 0)
                return k;
        if (!streq(m.owner, j->vm_owner) || m.generation != j->mv->generation)
                return vp_err(err, -EPERM, "delta '%s' is owned by '%s' at generation %lld, not by '%s' at %lld; "
                              "refusing to define its domain again", j->vm.delta_path, m.owner,
                              (long long)m.generation, j->vm_owner, (long long)j->mv->generation);
        _cleanup_free_ char *xml = vp_vm_xml(r->ctx, j->dst, &r->im, j->dp, &m, j->vm.delta_path, err);
        if (!xml)
                return err->code ? err->code : -EINVAL;
        return define_domain(r, j->dc, xml, err);
}

/* handed_over → done: the target starts if the source ran. */
static int move_start(struct vm_job *j, struct vp_error *err)
{
        struct vp_migvm *mv = j->mv;
        enum vp_vm_state st = VP_VM_UNKNOWN;
        if (mv->live || !j->defined || mv->source_running)
                hv_take(j->r);
        /* Moved live, it runs on the target already. */
        if (mv->live && vp_hv_domain_state(j->dc, j->vm.name, &st, NULL) >= 0 && vp_vm_state_active(st))
                return record_step(j->r, mv, VP_STEP_DONE, mv->generation, "running (moved live)", NULL, err);
        /* Defined by this run a step ago, it is there; a resumed run
         * makes sure. */
        int k = j->defined ? 0 : move_ensure_target(j, err);
        if (k < 0 || (mv->source_running && (k = job_check_start(j, err)) < 0))
                return k;
        if (mv->source_running && (k = vp_hv_start(j->dc, j->vm.name, err)) < 0) {
                /* QEMU locks its images: a source process still alive on a
                 * host that was only unreachable keeps it. Any other failure
                 * is reported as libvirt gave it. */
                if (k == -EBUSY) {
                        char cause[sizeof(err->msg)];
                        snprintf(cause, sizeof(cause), "%s", err->msg);
                        vp_err(err, -EBUSY, "its disk is locked by another QEMU process (%s): the source may still "
                               "run it; stop that process (power the host off), then 'vpool migrate resume %lld'",
                               cause, (long long)j->r->mig.id);
                }
                return k;
        }
        return record_step(j->r, mv, VP_STEP_DONE, mv->generation, mv->source_running ? "started" : NULL, NULL, err);
}

/* ---- a live move: a running VM to another host of its env ----------------- */

/* stopping → locked, live. The migration takes the delta over at a new
 * generation while the VM runs on, its disks keeping their names: QEMU
 * opens a disk again by its name as the move ends on the source. The one
 * writer left is that QEMU process, which the move hands to the target;
 * the names change at the unlock. */
static int live_lock(struct vm_job *j, struct vp_error *err)
{
        struct vp_manifest m;
        int k = vp_delta_take_over(j->dfd, j->vm.delta_path, j->vm_owner, j->mig_owner, j->mv->generation, &m, err);
        if (k < 0)
                return k;
        job_take_owner(j, &m);
        return record_step(j->r, j->mv, VP_STEP_LOCKED, m.generation, "live", &j->vm, err);
}

/* A VM that cannot move live moves cold from where it is: its source
 * stopped (forced after the shutdown timeout) and undefined, the names the
 * live move linked ahead removed, the target defined. WHY says why. */
static int live_fallback(struct vm_job *j, const struct vp_manifest *m, const char *why, struct vp_error *err)
{
        int k;
        /* Never under a target that runs it: the names it opened are the
         * ones a cold move would take away. */
        enum vp_vm_state st = VP_VM_UNDEFINED;
        char uuid[VIR_UUID_STRING_BUFLEN];
        if (vp_hv_domain_state(j->dc, j->vm.name, &st, NULL) >= 0 && vp_vm_state_active(st) &&
            vp_hv_uuid(j->dc, j->vm.name, uuid, NULL) >= 0 && streq(uuid, j->vm.uuid))
                return vp_err(err, -EBUSY, "vm '%s' runs on host '%s' (%s) while its live move is unfinished: "
                              "'vpool migrate resume %lld' once libvirt's move there has ended", j->vm.name,
                              j->dh ? j->dh->name : "?", vp_vm_state_to_string(st), (long long)j->r->mig.id);
        if (j->sc) {
                k = vp_hv_stop(j->sc, j->vm.name, (int)j->r->mig.shutdown_timeout, true, err);
                if ((k < 0 && k != -ENOENT) || (k = vp_hv_undefine(j->sc, j->vm.name, true, err)) < 0)
                        return k;
        }
        if ((k = vp_delta_unlink_names(j->dfd, j->vm.delta_path, m, m->generation + 1, err)) < 0)
                return k;
        j->mv->live = 0;
        _cleanup_free_ char *detail = vp_strdupf("moved cold: %s", why);
        return provision_cold(j, detail, err);
}

/* Whether the target runs the VM already: a move that completed before
 * its step was recorded. A move a killed run started may still be under
 * way in libvirtd (peer to peer, the source's daemon drives it, and the
 * target's domain waits paused until it ends): both end first. Landed means
 * running on the target (an incoming migration's domain is there paused)
 * and gone from the source. */
static bool live_landed(struct vm_job *j)
{
        int timeout = j->r->mig.shutdown_timeout > VP_LIVE_MIN_TIMEOUT ? (int)j->r->mig.shutdown_timeout
                                                                       : VP_LIVE_MIN_TIMEOUT;
        if ((j->sc && !vp_hv_job_wait(j->sc, j->vm.name, timeout)) || !vp_hv_incoming_wait(j->dc, j->vm.name, timeout))
                return false;
        enum vp_vm_state st = VP_VM_UNKNOWN, src = VP_VM_UNDEFINED;
        char uuid[VIR_UUID_STRING_BUFLEN];
        if (j->sc && vp_hv_domain_state(j->sc, j->vm.name, &src, NULL) < 0)
                return false;
        return vp_hv_domain_state(j->dc, j->vm.name, &st, NULL) >= 0 && st == VP_VM_RUNNING &&
               !vp_vm_state_active(src) && vp_hv_uuid(j->dc, j->vm.name, uuid, NULL) >= 0 &&
               streq(uuid, j->vm.uuid);
}

/* locked → provisioned, live: the disks get the unlock's names ahead (hard
 * links), and libvirt moves the running domain to the target peer to peer,
 * opening them there, while the source's QEMU keeps the inodes it has.
 * Should that fail, libvirt leaves the VM running on the source and it
 * moves cold instead. */
static int live_move(struct vm_job *j, struct vp_error *err)
{
        struct run *r = j->r;
        hv_take(r);
        struct vp_manifest m;
        int k = vp_delta_settle(j->dfd, j->vm.delta_path, &m, err);
        if (k < 0)
                return k;
        if (live_landed(j))
                return record_step(r, j->mv, VP_STEP_PROVISIONED, m.generation, "moved live", NULL, err);
        if (j->sc && (k = vp_hv_clear_incoming(j->sc, j->dc, j->vm.name, j->vm.uuid, err)) < 0)
                return k;
        enum vp_vm_state st = VP_VM_UNKNOWN;
        if (!j->sc || vp_hv_domain_state(j->sc, j->vm.name, &st, NULL) < 0 || !vp_vm_state_active(st))
                return live_fallback(j, &m, "it no longer runs on its source", err);
        if ((k = vp_delta_link_names(j->dfd, j->vm.delta_path, &m, m.generation + 1, err)) < 0)
                return k;
        /* The source runs the disks under their names; the target opens
         * the unlock's. */
        struct vp_manifest next = m;
        vp_delta_names_at(&next, m.generation + 1);
        const char *from[3] = { m.overlay, m.data_disk, m.nvram }, *to[3] = { next.overlay, next.data_disk, next.nvram };
        char fp[3][4096], tp[3][4096];
        struct vp_domxml_move moves[3];
        size_t n = 0;
        for (size_t i = 0; i < 3; i++)
                if (from[i][0]) {
                        snprintf(fp[n], sizeof(fp[n]), "%s/%s", j->vm.delta_path, from[i]);
                        snprintf(tp[n], sizeof(tp[n]), "%s/%s", j->vm.delta_path, to[i]);
                        moves[n] = (struct vp_domxml_move){ fp[n], tp[n] };
                        n++;
                }
        _cleanup_free_ char *peer = vp_host_peer_uri(j->dh->uri);
        /* A move is bounded as a shutdown is: past it, the VM stays on
         * its source and moves cold. */
        int timeout = r->mig.shutdown_timeout > VP_LIVE_MIN_TIMEOUT ? (int)r->mig.shutdown_timeout : VP_LIVE_MIN_TIMEOUT;
        struct vp_hv_live how = { .dst_uri = peer, .moves = moves, .nmoves = n, .generation = m.generation + 1,
                                  .timeout_sec = timeout };
        struct vp_hv_live_stats stats = { .downtime_ms = -1 };
        struct vp_error lerr = { 0 };
        if (vp_hv_migrate_live(j->sc, j->dc, j->vm.name, &how, &stats, &lerr) < 0)
                return live_landed(j) ? record_step(r, j->mv, VP_STEP_PROVISIONED, m.generation, "moved live", NULL, err)
                                      : live_fallback(j, &m, lerr.msg, err);
        vp_fault_point("migrate.moved-live");
        _cleanup_free_ char *detail = stats.downtime_ms >= 0
                ? vp_strdupf("moved live to host '%s', downtime %lld ms", j->dh->name, (long long)stats.downtime_ms)
                : vp_strdupf("moved live to host '%s'", j->dh->name);
        return record_step(r, j->mv, VP_STEP_PROVISIONED, m.generation, detail, NULL, err);
}

/* provisioned → handed_over, live: the target's QEMU holds the disks under
 * the unlock's names already (the move gave them to it, and no other
 * process may: the source's stopped with the move); the names of the
 * migration's generation go, and the delta is the VM's again. */
static int live_unlock(struct vm_job *j, struct vp_error *err)
{
        hv_take(j->r);
        if (live_landed(j))
                return unlock(j, true, "live", err);
        /* Moved, then shut down (or killed) before this step: its
         * definition is there, and no process may hold the disks now. */
        char uuid[VIR_UUID_STRING_BUFLEN];
        if (vp_hv_uuid(j->dc, j->vm.name, uuid, NULL) >= 0 && streq(uuid, j->vm.uuid))
                return unlock(j, false, "live, no longer running", err);
        return vp_err(err, -EIO, "host '%s' has no domain of vm '%s' after its live move; 'vpool migrate abort "
                      "%lld' returns it to its source", j->dh ? j->dh->name : "?", j->vm.name, (long long)j->r->mig.id);
}

/* What a move does at each step to reach the next; done has nothing left. */
static const step_fn move_steps[VP_STEP_MAX] = {
        [VP_STEP_PENDING] = move_note_source,
        [VP_STEP_STOPPING] = move_lock,
        [VP_STEP_LOCKED] = move_provision,
        [VP_STEP_PROVISIONED] = move_unlock,
        [VP_STEP_HANDED_OVER] = move_start,
};

/* A move always needs the target, and its source while the step needs it
 * (step_needs_source). A fenced source (powered off, by its agent or the
 * operator's word) is passed by. */
static int move_connect(struct vm_job *j, struct vp_error *err)
{
        int k = need_conn(j->r, j->dh, &j->dc, err);
        if (k < 0)
                return k;
        if (!step_needs_source(job_step(j), false, j->mv->live))
                return 0;
        if ((k = need_conn(j->r, j->sh, &j->sc, err)) < 0) {
                if (!j->sh || !j->r->fenced[host_index(j->r, j->sh)]) {
                        _cleanup_free_ char *who = vp_host_label(j->src->name, j->sh ? j->sh->name : NULL);
                        return vp_err(err, k, "%s does not answer and is not fenced: vm '%s' may still run there; "
                                      "'vpool migrate resume %lld --source-fenced %s' once that host is powered "
                                      "off, or give the env a fence agent", who, j->vm.name, (long long)j->r->mig.id,
                                      j->src->name);
                }
                j->fenced = true;
        }
        return 0;
}

/* A step that failed because a host stopped answering under it names the
 * host: libvirt's own words ("client socket is closed") do not. */
static void name_lost_host(const struct vm_job *j, struct vp_error *err)
{
        if (j->sc && j->sh && virConnectIsAlive(j->sc) == 0)
                vp_err_prefix(err, "host '%s' of env '%s' stopped answering", j->sh->name,
                              j->src ? j->src->name : "?");
        else if (j->dc && j->dh && virConnectIsAlive(j->dc) == 0)
                vp_err_prefix(err, "host '%s' of env '%s' stopped answering", j->dh->name,
                              j->dst ? j->dst->name : "?");
}

/* Load MV's job, open its delta, CONNECT as its direction needs, and run
 * STEPS. Errors past the load name the VM, and a host lost under it. */
static int run_job(struct run *r, struct vp_migvm *mv, int (*connect)(struct vm_job *j, struct vp_error *err),
                   const step_fn steps[VP_STEP_MAX], struct vp_error *err)
{
        struct vm_job j;
        int k = job_load(r, mv, &j, err);
        if (k < 0)
                return k;
        if ((k = job_open_delta(&j, err)) >= 0 && (k = connect(&j, err)) >= 0)
                k = run_steps(&j, steps, err);
        if (k < 0)
                name_lost_host(&j, err);
        job_clear(&j);
        if (k < 0)
                vp_err_prefix(err, "vm '%s'", mv->vm_name);
        return k;
}

static int return_connect(struct vm_job *j, struct vp_error *err);
static const step_fn return_steps[VP_STEP_MAX];

/* A VM moves on from its step, unless an abort gave its delta back: then
 * the return is what is finished. */
static int move_vm(struct run *r, struct vp_migvm *mv, struct vp_error *err)
{
        if (r->given_back[mv - r->mvs])
                return run_job(r, mv, return_connect, return_steps, err);
        return run_job(r, mv, move_connect, move_steps, err);
}

/* The target's domain goes first, so nothing but the source can hold the
 * delta afterwards; only vpool's own definition of this VM goes: the
 * VM's UUID, and <metadata> of its pool at the generation move_provision
 * gives it (the migration's, plus the unlock's one). At stopping vpool
 * defined nothing there; at locked it may have, just before a crash. A
 * domain of the same name that is not that one is someone else's and
 * stays. An unreachable target keeps ours for fsck --repair. */
static int return_drop_target(struct vm_job *j, struct vp_error *err)
{
        if (!j->dc || job_step(j) == VP_STEP_STOPPING)
                return 0;
        int k = vp_hv_undefine_own(j->dc, j->vm.name, j->vm.uuid, j->r->pool.name, j->mv->generation + 1, err);
        return k < 0 ? k : 0;
}

/* The delta back to the VM: *M its manifest then. */
static int return_reclaim(struct vm_job *j, struct vp_manifest *m, struct vp_error *err)
{
        const char *label = j->vm.delta_path;
        int k = vp_delta_settle(j->dfd, label, m, err);
        if (k < 0)
                return k;
        /* The provisioned domain names the disks of the generation after
         * the migration's, and may outlive this on a target that did not
         * answer: the delta comes back one generation later, under names no
         * domain was given. Handed to the VM already at the unlock's
         * generation (the step not yet recorded), it takes new names the
         * same way. Past that generation an earlier abort gave it back
         * already, and its source may run it again: nothing to hand over. */
        bool unlocked = streq(m->owner, j->vm_owner) && job_step(j) == VP_STEP_PROVISIONED &&
                        m->generation == j->mv->generation + 1;
        if (streq(m->owner, j->mig_owner)) {
                if ((k = lease_check(j, m, err)) >= 0)
                        k = vp_delta_hand_over(j->dfd, label, j->mig_owner, j->vm_owner, j->mv->generation, 2, m, err);
        } else if (unlocked) {
                if ((k = lease_check(j, m, err)) >= 0)
                        k = vp_delta_hand_over(j->dfd, label, j->vm_owner, j->vm_owner, m->generation, 1, m, err);
        }
        if (k < 0)
                return k;
        if (!streq(m->owner, j->vm_owner))
                return vp_err(err, -EPERM, "delta '%s' is owned by '%s'; refusing", label, m->owner);
        return 0;
}

/* The source's domain again, as it was, started if it ran: checked as
 * every start is, before it is defined. */
static int return_restore(struct vm_job *j, const struct vp_manifest *m, struct vp_error *err)
{
        struct run *r = j->r;
        struct vp_migvm *mv = j->mv;
        int k;
        if (mv->source_running && (k = job_check_start(j, err)) < 0)
                return k;
        _cleanup_free_ char *xml = vp_vm_xml(r->ctx, j->src, &r->im, j->sp, m, j->vm.delta_path, err);
        if (!xml)
                return err ? err->code : -EINVAL;
        if ((k = vp_hv_define(j->sc, xml, true, err)) < 0 ||
            (mv->source_running && (k = vp_hv_start(j->sc, j->vm.name, err)) < 0))
                return k;
        vp_fault_point("migrate.source-restored");
        job_take_owner(j, m);
        j->vm.env_id = j->src->id;
        j->vm.profile_id = j->sp->id;
        j->vm.host_id = j->sh ? j->sh->id : 0;
        return record_step(r, mv, VP_STEP_RETURNED, m->generation, mv->source_running ? "started on source" : NULL,
                           &j->vm, err);
}

/* A live move caught half way runs the VM still, on its source (locked)
 * or, moved, on the target (provisioned): it shuts down there (forced
 * after the shutdown timeout) before its delta goes back, and the names
 * linked ahead for the target go. */
static int return_live(struct vm_job *j, struct vp_error *err)
{
        if (!j->mv->live)
                return 0;
        virConnectPtr c = job_step(j) == VP_STEP_PROVISIONED ? j->dc : j->sc;
        int k = c ? vp_hv_stop(c, j->vm.name, (int)j->r->mig.shutdown_timeout, true, err) : 0;
        if (k < 0 && k != -ENOENT)
                return k;
        struct vp_manifest m;
        if ((k = vp_delta_settle(j->dfd, j->vm.delta_path, &m, err)) < 0)
                return k;
        return vp_delta_unlink_names(j->dfd, j->vm.delta_path, &m, m.generation + 1, err);
}

/* stopping, locked or provisioned → returned. */
static int return_delta(struct vm_job *j, struct vp_error *err)
{
        struct vp_manifest m;
        int k;
        if ((k = return_live(j, err)) < 0 || (k = return_drop_target(j, err)) < 0 ||
            (k = return_reclaim(j, &m, err)) < 0)
                return k;
        return return_restore(j, &m, err);
}

/* What an abort does at each step: stopping, locked or provisioned, the VM
 * comes back; handed over (or already returned) it stays where it is. */
static const step_fn return_steps[VP_STEP_MAX] = {
        [VP_STEP_STOPPING] = return_delta,
        [VP_STEP_LOCKED] = return_delta,
        [VP_STEP_PROVISIONED] = return_delta,
};

/* Handed over (or done) before the abort, the VM stays on the target: its
 * definition there is made again if it was lost (as resume would), so
 * that 'vpool vm start' can start it once the migration is aborted. A
 * target that does not answer is left as it is. */
static int return_keep(struct vm_job *j, struct vp_error *err)
{
        return j->dc ? move_ensure_target(j, err) : 0;
}

static const step_fn keep_steps[VP_STEP_MAX] = {
        [VP_STEP_HANDED_OVER] = return_keep,
        [VP_STEP_DONE] = return_keep,
};

static int keep_connect(struct vm_job *j, struct vp_error *err)
{
        (void)err;
        j->dc = conn_of(j->r, j->dh);
        return 0;
}

/* A return needs the source; the target only if it answers. */
static int return_connect(struct vm_job *j, struct vp_error *err)
{
        j->dc = conn_of(j->r, j->dh);
        return need_conn(j->r, j->sh, &j->sc, err);
}

/* An abort: a VM not yet handed over returns to its source as it was; one
 * still pending had nothing changed. */
static int return_vm(struct run *r, struct vp_migvm *mv, struct vp_error *err)
{
        enum vp_step s = vp_step_from_string(mv->step);
        if (s == VP_STEP_PENDING)
                return record_step(r, mv, VP_STEP_RETURNED, mv->generation, "nothing had changed", NULL, err);
        if (s == VP_STEP_HANDED_OVER || s == VP_STEP_DONE)
                return run_job(r, mv, keep_connect, keep_steps, err);
        if (s < 0 || s >= VP_STEP_MAX || !return_steps[s])
                return 0;
        return run_job(r, mv, return_connect, return_steps, err);
}

/* ---- the run ------------------------------------------------------------- */

static void *worker(void *arg)
{
        struct run *r = arg;
        for (;;) {
                pthread_mutex_lock(&r->lock);
                size_t i = r->next++;
                pthread_mutex_unlock(&r->lock);
                if (i >= r->n)
                        break;
                struct vp_migvm *mv = &r->mvs[i];
                struct vp_error err = { 0 };
                int k = r->aborting ? return_vm(r, mv, &err) : move_vm(r, mv, &err);
                if (k < 0)
                        record_error(r, mv, err.msg);
        }
        return NULL;
}

/* VMs in flight for each hypervisor slot: a cold move spends about two
 * thirds of each VM's time on its journal and manifest writes. */
#define IN_FLIGHT_PER_SLOT 3

static void run_workers(struct run *r)
{
        size_t slots = r->mig.parallel > 0 ? (size_t)r->mig.parallel : VP_DEFAULT_PARALLEL;
        /* One slot moves one VM at a time, start to end, in order. */
        size_t nt = slots > 1 ? slots * IN_FLIGHT_PER_SLOT : 1;
        if (nt > r->n)
                nt = r->n;
        if (nt <= 1) {
                worker(r);
                return;
        }
        r->slots_ready = sem_init(&r->hv_slots, 0, (unsigned)slots) == 0;
        /* Each worker allocates in an arena of its own, and by default
         * every VM's last free hands the arena's top back to the kernel
         * (madvise), whose page table flush interrupts the other CPUs; the
         * next VM faults the pages in again. Kept up to this much, a
         * worker's few hundred KiB stay mapped (a cluster move of 1000
         * VMs: about 5 % less CPU, 2 % less wall time). */
        mallopt(M_TRIM_THRESHOLD, 64 << 20);

        pthread_t *t = vp_xcalloc(nt, sizeof(pthread_t));
        size_t started = 0;
        for (; started < nt; started++)
                if (pthread_create(&t[started], NULL, worker, r) != 0)
                        break;
        if (started == 0)
                worker(r);
        for (size_t i = 0; i < started; i++)
                pthread_join(t[i], NULL);
        free(t);
}

/* The migration takes STATE (journaled under that word, with DETAIL) and,
 * when given, POOL's row is rewritten, in one transaction. */
static int set_states_noted(struct run *r, enum vp_migration_state state, const struct vp_pool *pool,
                            const char *detail, struct vp_error *err)
{
        struct vp_catalog *c = r->ctx->cat;
        const char *word = vp_migration_state_to_string(state);
        free(r->mig.state);
        r->mig.state = vp_strdup(word);
        free(r->mig.updated);
        r->mig.updated = vp_now_iso();
        struct vp_journal j = {
                .migration_id = r->mig.id, .vm_name = (char *)"", .step = (char *)word,
                .detail = (char *)detail, .at = r->mig.updated,
        };
        int k = vp_catalog_begin(c, err);
        if (k >= 0 && (k = vp_row_update(c, &vp_table_migration, &r->mig, err)) >= 0 &&
            (k = vp_row_insert(c, &vp_table_journal, &j, err)) >= 0 &&
            (!pool || (k = vp_row_update(c, &vp_table_pool, pool, err)) >= 0))
                k = vp_catalog_commit(c, err);
        if (k < 0)
                vp_catalog_rollback(c);
        return k;
}

static int set_states(struct run *r, enum vp_migration_state state, const struct vp_pool *pool,
                      struct vp_error *err)
{
        return set_states_noted(r, state, pool, "", err);
}

/* Before the source is retired it must keep no domain of the pool. A
 * source that does not answer is not asked. */
static int check_source_empty(struct run *r, struct vp_error *err)
{
        int k = 0;
        for (size_t i = 0; i < r->nhosts && k >= 0; i++) {
                const struct vp_host *h = &r->hosts[i];
                bool left_here = false;
                for (size_t j = 0; j < r->n && !left_here; j++)
                        left_here = src_host(r, &r->mvs[j]) == h && dst_host(r, &r->mvs[j]) != h;
                if (!left_here)
                        continue;
                /* No VM needed this source in this run (they were all past
                 * it): it is asked now, once, without a grace period. */
                virConnectPtr sc = r->conns[i];
                if (!sc && !source_needed(r, h))
                        vp_ctx_conn_host(r->ctx, h, &sc, NULL);
                struct vp_hv_states left;
                if (!sc || vp_hv_states_load(sc, &left, NULL) < 0)
                        continue;
                const struct vp_env *e = env_by_id(r, h->env_id);
                for (size_t j = 0; j < r->n && k >= 0; j++)
                        if (src_host(r, &r->mvs[j]) == h && dst_host(r, &r->mvs[j]) != h &&
                            vp_hv_states_find(&left, r->mvs[j].vm_name)) {
                                _cleanup_free_ char *who = vp_host_label(e ? e->name : "?", h->name);
                                k = vp_err(err, -EEXIST, "%s still holds domain '%s'", who, r->mvs[j].vm_name);
                        }
                vp_hv_states_free(&left);
        }
        return k;
}

/* Every VM landed but the source cannot be retired: the migration stays
 * unfinished (partial, not running), and the error says what is left
 * (WHY, check_source_empty's) and what finishes it. */
static int retire_failed(struct run *r, const char *why, int code, struct vp_error *err)
{
        _cleanup_free_ char *left = vp_strdup(why);
        struct vp_error ignore;
        set_states(r, VP_MIGRATION_PARTIAL, NULL, &ignore);
        long long id = (long long)r->mig.id;
        return vp_err(err, code, "migration %lld partial: every VM moved, but %s, so the source is not retired; "
                      "remove that domain ('vpool fsck --repair' removes a definition vpool left), then "
                      "'vpool migrate resume %lld' finishes it", id, left, id);
}

/* Run (or resume) every VM, then retire the source when all landed. */
static int run_migration(struct run *r, struct vp_error *err)
{
        int k = fence_sources(r, err);
        if (k < 0)
                return k;
        run_workers(r);
        size_t done = 0;
        for (size_t i = 0; i < r->n; i++)
                if (vp_step_from_string(r->mvs[i].step) == VP_STEP_DONE)
                        done++;
        if (done < r->n) {
                k = set_states(r, VP_MIGRATION_PARTIAL, NULL, err);
                if (k < 0)
                        return k;
                return vp_err(err, -EAGAIN, "migration %lld partial: %zu of %zu VMs moved; 'vpool migrate status %lld' "
                              "shows why, 'vpool migrate resume %lld' retries", (long long)r->mig.id, done, r->n,
                              (long long)r->mig.id, (long long)r->mig.id);
        }
        struct vp_error why = { 0 };
        if ((k = check_source_empty(r, &why)) < 0)
                return retire_failed(r, why.msg, k, err);
        r->pool.env_id = r->mig.to_env_id;
        r->pool.profile_id = r->mig.to_profile_id;
        set_pool_state(&r->pool, VP_POOL_ACTIVE);
        return set_states(r, VP_MIGRATION_DONE, &r->pool, err);
}

/* A resumed migration runs again from each VM's step. */
static int resume_run(struct run *r, struct vp_error *err)
{
        int k = check_asserted(r, err);
        if (k < 0)
                return k;
        struct vp_error ignore;
        set_states(r, VP_MIGRATION_RUNNING, NULL, &ignore);
        return run_migration(r, err);
}

/* An abort returns every VM not yet handed over to its source; the pool is
 * active again once all have, recorded where its VMs are. VMs handed over
 * before the abort stay on the target: all of them there, the pool is
 * there too, with the target's profile. Some there and some returned, the
 * pool stays recorded on the source, and the journal's entry says how
 * many are on the target and which migration gathers them. */
static int abort_run(struct run *r, struct vp_error *err)
{
        run_workers(r);
        if (r->failures) {
                struct vp_error ignore;
                set_states(r, VP_MIGRATION_PARTIAL, NULL, &ignore);
                return vp_err(err, -EAGAIN, "abort of migration %lld incomplete: %zu VMs could not be "
                              "returned; 'vpool migrate status %lld' shows why", (long long)r->mig.id,
                              r->failures, (long long)r->mig.id);
        }
        size_t stayed = 0;
        for (size_t i = 0; i < r->n; i++)
                if (vp_step_reached(vp_step_from_string(r->mvs[i].step), VP_STEP_HANDED_OVER))
                        stayed++;
        _cleanup_free_ char *note = NULL;
        if (stayed == r->n) {
                r->pool.env_id = r->mig.to_env_id;
                r->pool.profile_id = r->mig.to_profile_id;
        } else if (stayed) {
                const struct vp_env *to = env_by_id(r, r->mig.to_env_id);
                const struct vp_profile *dp = prof_by_id(r, r->mig.to_profile_id);
                const char *env = to ? to->name : "?", *prof = dp ? dp->name : "?";
                note = vp_strdupf("%zu of %zu VMs stay on env '%s' (handed over before the abort); "
                                  "'vpool migrate %s --to %s --profile %s' gathers the pool there", stayed, r->n,
                                  env, r->pool.name, env, prof);
        }
        set_pool_state(&r->pool, VP_POOL_ACTIVE);
        return set_states_noted(r, VP_MIGRATION_ABORTED, &r->pool, note ? note : "", err);
}

/* Load migration ID from the catalog and run FN over it: an abort when
 * ABORTING, ASSERTED the env the operator says is powered off (or NULL). */
static int run_loaded(struct vp_ctx *ctx, int64_t id, int lockfd, bool aborting, const char *asserted,
                      const struct vp_fence *prefence, int (*fn)(struct run *r, struct vp_error *err),
                      vp_migrate_event_fn ev, void *ud, struct vp_error *err)
{
        struct run r;
        int k = run_load(ctx, id, aborting, &r, err);
        if (k >= 0) {
                r.lockfd = lockfd;
                r.ev = ev;
                r.ud = ud;
                r.asserted = asserted;
                r.prefence = prefence;
                k = fn(&r, err);
        }
        run_clear(&r);
        return k;
}

/* ---- preflight and plan ------------------------------------------------- */

void vp_plan_free(struct vp_plan *plan)
{
        free(plan->vms);
        free(plan->hosts);
        memset(plan, 0, sizeof(*plan));
}

static void diff(struct vp_plan *p, const char *what, const char *a, const char *b)
{
        if (!streq(a, b) && p->ndiffs < (int)ELEMENTSOF(p->diffs))
                snprintf(p->diffs[p->ndiffs++], sizeof(p->diffs[0]), "%s: %s -> %s", what, a, b);
}

/* The oldest unfinished migration of pool POOL_ID into *RET_ID, 0 when none. */
static int unfinished_migration(struct vp_ctx *ctx, int64_t pool_id, int64_t *ret_id, struct vp_error *err)
{
        void *rows = NULL;
        size_t n = 0;
        int k = vp_row_query(ctx->cat, &vp_table_migration, "pool_id = ?1", pool_id, &rows, &n, err);
        if (k < 0)
                return k;
        const struct vp_migration *migs = rows;
        *ret_id = 0;
        for (size_t i = 0; i < n && !*ret_id; i++)
                if (vp_migration_state_unfinished(vp_migration_state_from_string(migs[i].state)))
                        *ret_id = migs[i].id;
        vp_rows_free(&vp_table_migration, rows, n);
        return 0;
}

static int check_args(const struct vp_migrate_args *a, struct vp_error *err)
{
        int k;
        if ((k = vp_name_check("pool", a->pool, err)) < 0 || (k = vp_name_check("env", a->to_env, err)) < 0 ||
            (a->profile && (k = vp_name_check("profile", a->profile, err)) < 0))
                return k;
        if (a->parallel < 0 || a->parallel > 256)
                return vp_err(err, -EINVAL, "--parallel must be between 1 and 256");
        if (a->shutdown_timeout < 0 || a->shutdown_timeout > 86400)
                return vp_err(err, -EINVAL, "--shutdown-timeout must be between 0 and 86400 seconds");
        return 0;
}

/* Take POOL's lock. When another process holds it, the error names the
 * migration that process runs, when there is one. */
static int lock_pool(struct vp_ctx *ctx, const char *pool, int *ret_fd, struct vp_error *err)
{
        int k = vp_pool_lock(ctx, pool, ret_fd, err);
        if (k != -EBUSY)
                return k;
        struct vp_pool p = { 0 };
        int64_t other = 0;
        if (vp_row_get(ctx->cat, &vp_table_pool, "name", pool, &p, NULL) >= 0 &&
            unfinished_migration(ctx, p.id, &other, NULL) >= 0 && other)
                vp_err(err, -EBUSY, "pool '%s' is busy: migration %lld is running in another vpool process", pool,
                       (long long)other);
        vp_row_clear(&vp_table_pool, &p);
        return k;
}

/* What a migration refers to, loaded once by the preflight. */
struct refs {
        struct vp_pool pool;
        struct vp_image im;
        bool restamped;                /* the master, found unchanged, has a new stamp to store */
        bool image_checked;            /* vp_image_check_files passed for IM */
        struct vp_env from, to;
        struct vp_host from_host;      /* only the VMs on this host move (a host's drain); id 0: all */
        struct vp_profile sp, dp;      /* the source's profile, the target's */
        struct vp_placer pl;           /* the target's hosts */
        struct vp_vm *vms;
        int64_t *dst_hosts;            /* per VM: the host placement gave it */
        size_t n;
};

static void refs_clear(struct refs *f)
{
        vp_rows_free(&vp_table_vm, f->vms, f->n);
        free(f->dst_hosts);
        vp_placer_free(&f->pl);
        vp_row_clear(&vp_table_host, &f->from_host);
        vp_row_clear(&vp_table_pool, &f->pool);
        vp_row_clear(&vp_table_image, &f->im);
        vp_row_clear(&vp_table_env, &f->from);
        vp_row_clear(&vp_table_env, &f->to);
        vp_row_clear(&vp_table_profile, &f->sp);
        vp_row_clear(&vp_table_profile, &f->dp);
}

/* The rows A names. Refused: a pool with an unfinished migration, and a
 * migration that would change nothing. */
static int load_refs(struct vp_ctx *ctx, const struct vp_migrate_args *a, struct refs *f, struct vp_error *err)
{
        struct vp_catalog *c = ctx->cat;
        int64_t busy = 0;
        int k;
        if ((k = vp_row_get(c, &vp_table_pool, "name", a->pool, &f->pool, err)) < 0 ||
            (k = unfinished_migration(ctx, f->pool.id, &busy, err)) < 0)
                return k;
        if (busy)
                return vp_err(err, -EBUSY, "pool '%s' has an unfinished migration %lld; resume or abort it first",
                              a->pool, (long long)busy);
        if ((k = vp_row_get_id(c, &vp_table_image, f->pool.image_id, &f->im, err)) < 0 ||
            (k = vp_row_get_id(c, &vp_table_env, f->pool.env_id, &f->from, err)) < 0 ||
            (k = vp_row_get_id(c, &vp_table_profile, f->pool.profile_id, &f->sp, err)) < 0 ||
            (k = vp_row_get(c, &vp_table_env, "name", a->to_env, &f->to, err)) < 0)
                return k;
        if (a->profile)
                k = vp_row_get(c, &vp_table_profile, "name", a->profile, &f->dp, err);
        else
                k = vp_row_get_id(c, &vp_table_profile, f->pool.profile_id, &f->dp, err);
        if (k < 0)
                return k;
        if (a->from_host && (k = vp_env_host_get(ctx, f->from.name, a->from_host, NULL, &f->from_host, err)) < 0)
                return k;
        if (f->from.id == f->to.id && f->sp.id == f->dp.id && !a->from_host)
                return vp_err(err, -EINVAL, "pool '%s' already runs on env '%s' with profile '%s'; nothing to migrate",
                              a->pool, f->to.name, f->dp.name);
        return 0;
}

/* The target can run the pool: the master declares drivers for the new
 * hardware and holds what was recorded; the target's hypervisor offers
 * that hardware. */
static int check_target(struct vp_ctx *ctx, const struct vp_migrate_args *a, struct refs *f, struct vp_error *err)
{
        int k;
        if (a->source_fenced && !streq(a->source_fenced, f->from.name))
                return vp_err(err, -EINVAL, "--source-fenced names env '%s', but pool '%s' is on env '%s'",
                              a->source_fenced, a->pool, f->from.name);
        if ((k = vp_inspect_check_profile(ctx->cat, &f->im, &f->dp, err)) < 0 ||
            (k = vp_check_image_supports(&f->im, &f->dp, err)) < 0)
                return k;
        if ((k = vp_image_check_unchanged(ctx, &f->im, &f->restamped, err)) < 0) {
                vp_err_prefix(err, "pool '%s'", a->pool);
                return k;
        }
        struct vp_place_filter pf = { .exclude = f->from_host.id, .only = a->to_hosts, .nonly = a->nto_hosts };
        return vp_placer_init(ctx, &f->to, &f->dp, a->placement, &pf, &f->pl, err);
}

static int load_vms(struct vp_ctx *ctx, struct refs *f, struct vp_error *err)
{
        char idbuf[24];
        snprintf(idbuf, sizeof(idbuf), "%lld", (long long)f->pool.id);
        void *rows;
        size_t n = 0;
        int k = vp_row_list(ctx->cat, &vp_table_vm, "pool_id", idbuf, &rows, &n, err);
        if (k < 0)
                return k;
        f->vms = rows;
        f->n = n;
        /* A host's drain moves the VMs on that host only. */
        if (f->from_host.id) {
                size_t kept = 0;
                for (size_t i = 0; i < n; i++) {
                        if (f->vms[i].host_id == f->from_host.id)
                                f->vms[kept++] = f->vms[i];
                        else
                                vp_row_clear(&vp_table_vm, &f->vms[i]);
                }
                f->n = kept;
        }
        f->dst_hosts = vp_xcalloc(f->n ? f->n : 1, sizeof(int64_t));
        return 0;
}

/* The plan's names, and what changes in the virtual hardware. */
static void plan_describe(struct vp_plan *plan, const struct refs *f)
{
        const struct vp_profile *sp = &f->sp, *dp = &f->dp;
        snprintf(plan->pool, sizeof(plan->pool), "%s", f->pool.name);
        snprintf(plan->from_env, sizeof(plan->from_env), "%s", f->from.name);
        snprintf(plan->to_env, sizeof(plan->to_env), "%s", f->to.name);
        snprintf(plan->from_profile, sizeof(plan->from_profile), "%s", sp->name);
        snprintf(plan->to_profile, sizeof(plan->to_profile), "%s", dp->name);
        diff(plan, "machine", sp->machine, dp->machine);
        diff(plan, "disk bus", sp->disk_bus, dp->disk_bus);
        diff(plan, "NIC", sp->nic, dp->nic);
        diff(plan, "firmware", sp->firmware, dp->firmware);
        char a1[32], b1[32];
        snprintf(a1, sizeof(a1), "%lld", (long long)sp->vcpus);
        snprintf(b1, sizeof(b1), "%lld", (long long)dp->vcpus);
        diff(plan, "vCPUs", a1, b1);
        snprintf(a1, sizeof(a1), "%lld MiB", (long long)sp->memory_mib);
        snprintf(b1, sizeof(b1), "%lld MiB", (long long)dp->memory_mib);
        diff(plan, "memory", a1, b1);
        diff(plan, "CPU mode", *sp->cpu_mode ? sp->cpu_mode : "default", *dp->cpu_mode ? dp->cpu_mode : "default");
}

/* A guest whose network is configured by interface name loses it when the
 * move renames its NIC: the plan says so, and only the operator's
 * --accept-nic-rename lets a real run go on. */
static int check_nic_rename(struct vp_ctx *ctx, const struct vp_migrate_args *a, const struct refs *f,
                            struct vp_plan *plan, struct vp_error *err)
{
        _cleanup_free_ char *note = vp_inspect_nic_rename(ctx->cat, &f->im, &f->sp, &f->dp);
        if (!note)
                return 0;
        snprintf(plan->nic_rename, sizeof(plan->nic_rename), "%s", note);
        if (a->dry_run || a->accept_nic_rename)
                return 0;
        return vp_err(err, -EOPNOTSUPP, "pool '%s': %s; --accept-nic-rename moves it anyway", f->pool.name, note);
}

/* The domains of each source host: read once, not once per VM. */
struct domains {
        struct vp_hv_states *source;   /* per host, in the order of CONNS */
        virConnectPtr *conns;          /* the hosts read so far (the ctx's connections) */
        size_t n;
};

/* The domains of the host of CONN, read on first use. */
static int host_domains(struct domains *d, virConnectPtr conn, const struct vp_hv_states **ret, struct vp_error *err)
{
        for (size_t i = 0; i < d->n; i++)
                if (d->conns[i] == conn) {
                        *ret = &d->source[i];
                        return 0;
                }
        struct vp_hv_states s;
        int k = vp_hv_states_load(conn, &s, err);
        if (k < 0)
                return k;
        d->source = realloc(d->source, (d->n + 1) * sizeof(*d->source));
        d->conns = realloc(d->conns, (d->n + 1) * sizeof(*d->conns));
        if (!d->source || !d->conns)
                abort();
        d->source[d->n] = s;
        d->conns[d->n] = conn;
        *ret = &d->source[d->n++];
        return 0;
}

static void domains_free(struct domains *d)
{
        for (size_t i = 0; i < d->n; i++)
                vp_hv_states_free(&d->source[i]);
        free(d->source);
        free(d->conns);
}

/* VM's state on its host VH of env VE into *RET_STATE. A host that does
 * not answer (after its grace period) refuses the migration, unless it can
 * be fenced: the operator says its env is powered off, or the env has a
 * fence agent to run once the migration is allocated. Then the VM counts as
 * running, unreachable. The operator's word never applies to a host that
 * answers. */
static int source_state(struct vp_ctx *ctx, const struct vp_migrate_args *a, const struct vp_env *ve,
                        const struct vp_host *vh, const struct vp_vm *vm, struct domains *d, struct vp_plan_vm *pv,
                        enum vp_vm_state *ret_state, struct vp_error *err)
{
        struct vp_error cerr = { 0 };
        virConnectPtr vc;
        bool asserted = a->source_fenced && streq(a->source_fenced, ve->name);
        int k = vh->id ? vp_ctx_conn_host_source(ctx, vh, &vc, &cerr) : vp_ctx_conn_source(ctx, ve, &vc, &cerr);
        if (k < 0 && (asserted || (ve->fence_cmd && *ve->fence_cmd))) {
                pv->unreachable = true;
                return 0;
        }
        if (k < 0)
                return vp_err(err, k, "%s; vm '%s' may still run there and hold its delta, so it is not handed "
                              "over. If that host is powered off, retry with --source-fenced %s, or give the env "
                              "a fence agent ('vpool env set %s --fence-cmd PROG')",
                              cerr.msg, vm->name, ve->name, ve->name);
        if (asserted)
                return vp_err(err, -EINVAL, "env '%s' answers: --source-fenced is only for an env that does not "
                              "(its VMs are stopped there as usual)", ve->name);
        const struct vp_hv_states *doms;
        if ((k = host_domains(d, vc, &doms, err)) < 0)
                return k;
        const struct vp_hv_domstate *ds = vp_hv_states_find(doms, vm->name);
        *ret_state = !ds ? VP_VM_UNDEFINED : ds->active ? VP_VM_RUNNING : VP_VM_SHUT_OFF;
        return 0;
}

/* Every delta must be cleanly held by its VM before any is touched, and
 * every file its domains will name pass the checks their define makes: a
 * refusal after the source stopped would leave the VM on neither side. */
static int check_vm_delta(struct vp_ctx *ctx, const struct refs *f, const struct vp_vm *vm, struct vp_error *err)
{
        struct vp_manifest m;
        char owner[VP_OWNER_MAX];
        vp_owner_vm(owner, vm->name);
        int k = vp_delta_check(&ctx->st, f->pool.name, vp_delta_dir_of(vm->delta_path), f->im.path, f->im.format,
                               &m, err);
        if (k >= 0)
                k = f->image_checked ? vp_vm_check_own_files(ctx, &f->im, &m, vm->delta_path, err)
                                     : vp_vm_check_files(ctx, &f->im, &m, vm->delta_path, err);
        if (k >= 0 && (!streq(m.owner, owner) || m.generation != vm->generation))
                k = vp_err(err, -EPERM, "delta of vm '%s' is owned by '%s' at generation %lld, the catalog "
                           "says '%s' at %lld; run 'vpool fsck'", vm->name, m.owner, (long long)m.generation,
                           vm->owner, (long long)vm->generation);
        return k;
}

/* VM's line of the plan *PV, once its host answered (or is fenced) and
 * its delta is its own. */
/* The envs and hosts of the catalog, read once for the preflight of every
 * VM (a round trip each per VM otherwise, on a catalog server). */
struct known {
        struct vp_env *envs;
        struct vp_host *hosts;
        size_t nenvs, nhosts;
};

static int known_load(struct vp_ctx *ctx, struct known *kn, struct vp_error *err)
{
        int k = vp_row_list(ctx->cat, &vp_table_env, NULL, NULL, (void **)&kn->envs, &kn->nenvs, err);
        return k < 0 ? k : vp_row_list(ctx->cat, &vp_table_host, NULL, NULL, (void **)&kn->hosts, &kn->nhosts, err);
}

static void known_free(struct known *kn)
{
        vp_rows_free(&vp_table_env, kn->envs, kn->nenvs);
        vp_rows_free(&vp_table_host, kn->hosts, kn->nhosts);
}

static int preflight_vm(struct vp_ctx *ctx, const struct vp_migrate_args *a, const struct refs *f,
                        const struct known *kn, const struct vp_vm *vm, struct domains *d, struct vp_plan_vm *pv,
                        struct vp_error *err)
{
        static const struct vp_host no_host = { 0 };
        enum vp_vm_state state = VP_VM_UNKNOWN;
        const struct vp_env *ve = vp_rows_find_id(&vp_table_env, kn->envs, kn->nenvs, vm->env_id);
        if (!ve)
                return vp_err(err, -ENOENT, "vm '%s': its env (id %lld) is not in the catalog", vm->name,
                              (long long)vm->env_id);
        const struct vp_host *vh = vm->host_id ? vp_rows_find_id(&vp_table_host, kn->hosts, kn->nhosts, vm->host_id)
                                               : NULL;
        if (!vh)
                vh = &no_host;
        int k = source_state(ctx, a, ve, vh, vm, d, pv, &state, err);
        if (k >= 0)
                k = check_vm_delta(ctx, f, vm, err);
        snprintf(pv->vm, sizeof(pv->vm), "%s", vm->name);
        snprintf(pv->from_env, sizeof(pv->from_env), "%s", ve->name);
        snprintf(pv->from_host, sizeof(pv->from_host), "%s", vh->name ? vh->name : "");
        snprintf(pv->to_env, sizeof(pv->to_env), "%s", f->to.name);
        if (k >= 0)
                pv->running = state == VP_VM_RUNNING || pv->unreachable;
        return k;
}

/* Each host of the target as placement left it, for the plan. */
static void plan_hosts(const struct vp_placer *pl, struct vp_plan *plan)
{
        plan->hosts = vp_xcalloc(pl->n ? pl->n : 1, sizeof(*plan->hosts));
        plan->nhosts = pl->n;
        for (size_t h = 0; h < pl->n; h++) {
                struct vp_plan_host *ph = &plan->hosts[h];
                snprintf(ph->name, sizeof(ph->name), "%s", pl->h[h].host.name);
                snprintf(ph->why, sizeof(ph->why), "%s", pl->h[h].eligible ? "" : pl->h[h].why);
                ph->eligible = pl->h[h].eligible;
                ph->memory_free_mib = pl->h[h].free_kib >> 10;
                ph->memory_needed_mib = pl->h[h].running_kib >> 10;
                ph->vms = (int64_t)pl->h[h].placed;
        }
}

/* The host of the target each VM goes to, in the pool's order: it must
 * have no other domain of the VM's name (its own, on the host it stays on,
 * is replaced by the move). */
static int place_vms(struct refs *f, struct vp_plan *plan, struct vp_error *err)
{
        size_t nrunning = 0;
        for (size_t i = 0; i < f->n; i++)
                nrunning += plan->vms[i].running;
        int64_t mem_kib = f->dp.memory_mib << 10;
        int k = vp_placer_check(&f->pl, nrunning, mem_kib, err);
        plan->memory_needed_mib = (int64_t)nrunning * f->dp.memory_mib;
        for (size_t h = 0; h < f->pl.n; h++)
                if (f->pl.h[h].eligible)
                        plan->memory_free_mib += f->pl.h[h].free_kib >> 10;
        struct vp_hv_states *doms = vp_xcalloc(f->pl.n ? f->pl.n : 1, sizeof(*doms));
        bool *loaded = vp_xcalloc(f->pl.n ? f->pl.n : 1, sizeof(bool));
        for (size_t i = 0; i < f->n && k >= 0; i++) {
                int h = vp_place(&f->pl, mem_kib, plan->vms[i].running, err);
                if (h < 0) {
                        k = h;
                        break;
                }
                struct vp_place_host *ph = &f->pl.h[h];
                f->dst_hosts[i] = ph->host.id;
                snprintf(plan->vms[i].to_host, sizeof(plan->vms[i].to_host), "%s", ph->host.name);
                if (!loaded[h] && (k = vp_hv_states_load(ph->conn, &doms[h], err)) < 0)
                        break;
                loaded[h] = true;
                if (ph->host.id != f->vms[i].host_id && vp_hv_states_find(&doms[h], f->vms[i].name)) {
                        _cleanup_free_ char *who = vp_host_label(f->to.name, ph->host.name);
                        k = vp_err(err, -EEXIST, "%s already has a domain named '%s'", who, f->vms[i].name);
                }
        }
        for (size_t h = 0; h < f->pl.n; h++)
                if (loaded[h])
                        vp_hv_states_free(&doms[h]);
        free(doms);
        free(loaded);
        plan_hosts(&f->pl, plan);
        return k;
}

/* Every VM's line of the plan, and the host each goes to. */
static int plan_vms(struct vp_ctx *ctx, const struct vp_migrate_args *a, struct refs *f, struct vp_plan *plan,
                    struct vp_error *err)
{
        struct domains d = { 0 };
        plan->vms = vp_xcalloc(f->n ? f->n : 1, sizeof(*plan->vms));
        plan->nvms = f->n;
        int k = 0;
        /* Checked once here, the image's files are not checked again for
         * each VM; if they fail, each VM says so. */
        f->image_checked = vp_image_check_files(ctx, &f->im, NULL) >= 0;
        struct known kn = { 0 };
        k = known_load(ctx, &kn, err);
        for (size_t i = 0; i < f->n && k >= 0; i++)
                k = preflight_vm(ctx, a, f, &kn, &f->vms[i], &d, &plan->vms[i], err);
        known_free(&kn);
        domains_free(&d);
        if (k >= 0)
                k = place_vms(f, plan, err);
        return k;
}

/* Allocate: the migration (the target pool's env and profile) and a
 * journal row per VM, in one transaction that also marks the pool
 * migrating. *RET_ID the migration's. */
/* Whether VM I of the plan moves live: it runs, stays in its env with its
 * hardware, changes host, and live moves were asked for. */
static bool moves_live(const struct vp_migrate_args *a, const struct refs *f, const struct vp_plan *plan, size_t i)
{
        return a->live && f->from.id == f->to.id && f->sp.id == f->dp.id && plan->vms[i].running &&
               !plan->vms[i].unreachable && f->vms[i].host_id && f->vms[i].host_id != f->dst_hosts[i];
}

static int allocate(struct vp_ctx *ctx, const struct vp_migrate_args *a, struct refs *f, const struct vp_plan *plan,
                    int64_t *ret_id, struct vp_error *err)
{
        struct vp_catalog *c = ctx->cat;
        _cleanup_free_ char *now = vp_now_iso();
        struct vp_migration mig = {
                .pool_id = f->pool.id, .pool_name = f->pool.name, .from_env_id = f->from.id, .to_env_id = f->to.id,
                .from_profile_id = f->sp.id, .to_profile_id = f->dp.id,
                .state = (char *)vp_migration_state_to_string(VP_MIGRATION_RUNNING),
                .parallel = a->parallel ? a->parallel : VP_DEFAULT_PARALLEL,
                .shutdown_timeout = a->shutdown_timeout, .source_fenced = a->source_fenced != NULL,
                .total = (int64_t)f->n, .created = now, .updated = now,
        };
        int k = vp_catalog_begin(c, err);
        if (k < 0)
                return k;
        k = vp_row_insert(c, &vp_table_migration, &mig, err);
        for (size_t i = 0; i < f->n && k >= 0; i++) {
                const struct vp_vm *vm = &f->vms[i];
                struct vp_migvm mv = {
                        .migration_id = mig.id, .vm_id = vm->id, .vm_name = vm->name,
                        .step = (char *)vp_step_to_string(VP_STEP_PENDING), .src_env_id = vm->env_id,
                        .src_profile_id = vm->profile_id, .src_host_id = vm->host_id, .dst_host_id = f->dst_hosts[i],
                        .live = moves_live(a, f, plan, i),
                        .generation = vm->generation,
                        .error = (char *)"", .updated = now,
                };
                k = vp_row_insert(c, &vp_table_migvm, &mv, err);
        }
        if (k >= 0) {
                struct vp_journal j = { .migration_id = mig.id, .vm_name = (char *)"",
                                        .step = (char *)VP_JOURNAL_ALLOCATED, .detail = (char *)"", .at = now };
                set_pool_state(&f->pool, VP_POOL_MIGRATING);
                /* A master found unchanged under a new stamp keeps it. */
                if ((k = vp_row_insert(c, &vp_table_journal, &j, err)) >= 0 &&
                    (k = vp_row_update(c, &vp_table_pool, &f->pool, err)) >= 0 &&
                    (!f->restamped || (k = vp_row_update(c, &vp_table_image, &f->im, err)) >= 0))
                        k = vp_catalog_commit(c, err);
        }
        if (k < 0) {
                vp_catalog_rollback(c);
                return k;
        }
        *ret_id = mig.id;
        return 0;
}

int vp_migrate(struct vp_ctx *ctx, const struct vp_migrate_args *a, struct vp_plan *plan,
               int64_t *ret_id, vp_migrate_event_fn ev, void *ud, struct vp_error *err)
{
        memset(plan, 0, sizeof(*plan));
        int k = check_args(a, err);
        if (k < 0)
                return k;
        _cleanup_close_ int lockfd = -1;
        if (!a->dry_run && (k = lock_pool(ctx, a->pool, &lockfd, err)) < 0)
                return k;

        struct refs f = { 0 };
        if ((k = load_refs(ctx, a, &f, err)) < 0 || (k = check_target(ctx, a, &f, err)) < 0 ||
            (k = load_vms(ctx, &f, err)) < 0)
                goto out;
        plan_describe(plan, &f);
        if ((k = check_nic_rename(ctx, a, &f, plan, err)) < 0)
                goto out;
        if ((k = plan_vms(ctx, a, &f, plan, err)) < 0 || a->dry_run)
                goto out;
        if ((k = allocate(ctx, a, &f, plan, ret_id, err)) < 0)
                goto out;
        if (ev)
                ev(ud, *ret_id, NULL, VP_JOURNAL_ALLOCATED, 0, NULL);
        k = run_loaded(ctx, *ret_id, lockfd, false, a->source_fenced, a->fenced, run_migration, ev, ud, err);
out:
        refs_clear(&f);
        return k;
}

/* Lock the pool of migration ID, which must not be finished. */
static int lock_migration(struct vp_ctx *ctx, int64_t id, int *ret_fd, struct vp_error *err)
{
        struct vp_migration mig = { 0 };
        int k = vp_row_get_id(ctx->cat, &vp_table_migration, id, &mig, err);
        if (k < 0)
                return vp_err(err, -ENOENT, "unknown migration %lld", (long long)id);
        enum vp_migration_state s = vp_migration_state_from_string(mig.state);
        if (s == VP_MIGRATION_DONE || s == VP_MIGRATION_ABORTED)
                k = vp_err(err, -EALREADY, "migration %lld is already %s", (long long)id, mig.state);
        else
                k = vp_pool_lock(ctx, mig.pool_name, ret_fd, err);
        vp_row_clear(&vp_table_migration, &mig);
        return k;
}

int vp_migrate_resume(struct vp_ctx *ctx, int64_t id, const char *source_fenced, vp_migrate_event_fn ev, void *ud,
                      struct vp_error *err)
{
        _cleanup_close_ int lockfd = -1;
        int k = lock_migration(ctx, id, &lockfd, err);
        return k < 0 ? k : run_loaded(ctx, id, lockfd, false, source_fenced, NULL, resume_run, ev, ud, err);
}

int vp_migrate_abort(struct vp_ctx *ctx, int64_t id, vp_migrate_event_fn ev, void *ud, struct vp_error *err)
{
        _cleanup_close_ int lockfd = -1;
        int k = lock_migration(ctx, id, &lockfd, err);
        return k < 0 ? k : run_loaded(ctx, id, lockfd, true, NULL, NULL, abort_run, ev, ud, err);
}
