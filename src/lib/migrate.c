#include "migrate.h"

#include <pthread.h>
#include <string.h>

#include "lock.h"
#include "name.h"

#define VP_DEFAULT_PARALLEL 8

/* Steps in the order a VM goes through them; "returned" ends an abort. */
static const char *const steps[] = { "pending", "stopping", "locked", "provisioned", "handed_over", "done" };

static int step_index(const char *s)
{
        for (size_t i = 0; i < ELEMENTSOF(steps); i++)
                if (streq(s, steps[i]))
                        return (int)i;
        return -1;
}

bool vp_migration_active(struct vp_ctx *ctx, int64_t id)
{
        struct vp_migration m = { 0 };
        if (vp_row_get_id(ctx->cat, &vp_table_migration, id, &m, NULL) < 0)
                return false;
        int fd = -1;
        int r = vp_pool_lock(ctx, m.pool_name, &fd, NULL);
        vp_row_clear(&vp_table_migration, &m);
        if (r >= 0)
                close(fd);
        return r == -EBUSY;
}

static int unfinished_migration(struct vp_ctx *ctx, int64_t pool_id, int64_t *ret_id, struct vp_error *err);

/* ---- the run: shared state of the worker threads ------------------------ */

/* A VM's step waiting to be committed (see record_step). */
struct step_rec {
        struct vp_migvm *mv;
        const char *step;
        int64_t gen;
        const char *detail;
        const struct vp_vm *vm;
        bool done;
        int result;
        struct vp_error err;
        struct step_rec *next;
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
        virConnectPtr *conns;          /* per env, NULL when not needed */
        struct vp_migvm *mvs;
        size_t n;
        size_t next;
        size_t failures;
        bool aborting;
        bool schema_checked;           /* a target domain passed libvirt's schema check */
        pthread_mutex_t lock;          /* next, failures, the commit queue, events */
        pthread_mutex_t cat_lock;      /* the catalog connection */
        pthread_cond_t committed;
        struct step_rec *queue;        /* steps waiting for the next commit */
        bool committing;               /* a worker is committing a batch */
        vp_migrate_event_fn ev;
        void *ud;
};

static struct vp_env *env_by_id(struct run *r, int64_t id)
{
        for (size_t i = 0; i < r->nenvs; i++)
                if (r->envs[i].id == id)
                        return &r->envs[i];
        return NULL;
}

static virConnectPtr conn_by_id(struct run *r, int64_t id)
{
        for (size_t i = 0; i < r->nenvs; i++)
                if (r->envs[i].id == id)
                        return r->conns[i];
        return NULL;
}

static struct vp_profile *prof_by_id(struct run *r, int64_t id)
{
        for (size_t i = 0; i < r->nprofs; i++)
                if (r->profs[i].id == id)
                        return &r->profs[i];
        return NULL;
}

static void run_clear(struct run *r)
{
        vp_row_clear(&vp_table_migration, &r->mig);
        vp_row_clear(&vp_table_pool, &r->pool);
        vp_row_clear(&vp_table_image, &r->im);
        vp_rows_free(&vp_table_env, r->envs, r->nenvs);
        vp_rows_free(&vp_table_profile, r->profs, r->nprofs);
        free(r->conns);
        vp_rows_free(&vp_table_migvm, r->mvs, r->n);
        pthread_mutex_destroy(&r->lock);
        pthread_mutex_destroy(&r->cat_lock);
        pthread_cond_destroy(&r->committed);
        memset(r, 0, sizeof(*r));
}

/* Load what every step needs; connections come from the ctx cache. Envs
 * that cannot be reached get a NULL connection; a VM that needs one fails. */
static int run_load(struct vp_ctx *ctx, int64_t id, struct run *r, struct vp_error *err)
{
        int k;
        memset(r, 0, sizeof(*r));
        pthread_mutex_init(&r->lock, NULL);
        pthread_mutex_init(&r->cat_lock, NULL);
        pthread_cond_init(&r->committed, NULL);
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
        if ((k = vp_row_query(ctx->cat, &vp_table_migvm, "migration_id = ?1", id, &rows, &r->n, err)) < 0)
                return k;
        r->mvs = rows;
        r->conns = vp_xcalloc(r->nenvs, sizeof(virConnectPtr));
        for (size_t i = 0; i < r->nenvs; i++) {
                bool needed = r->envs[i].id == r->mig.to_env_id;
                for (size_t j = 0; j < r->n && !needed; j++)
                        needed = r->mvs[j].src_env_id == r->envs[i].id;
                if (needed)
                        vp_ctx_conn(ctx, &r->envs[i], &r->conns[i], NULL);
        }
        return 0;
}

static void emit(struct run *r, const char *vm, const char *step, int64_t gen, const char *error)
{
        if (r->ev)
                r->ev(r->ud, r->mig.id, vm, step, gen, error);
}

/* Commit BATCH (a list of steps of different VMs) in one transaction: each
 * VM's row, its journal entry and, where given, its VM row. All or none. */
static int commit_batch(struct run *r, struct step_rec *batch, struct vp_error *err)
{
        struct vp_catalog *c = r->ctx->cat;
        char *now = vp_now_iso();
        pthread_mutex_lock(&r->cat_lock);
        int k = vp_catalog_begin(c, err);
        for (struct step_rec *q = batch; q && k >= 0; q = q->next) {
                struct vp_migvm row = *q->mv;
                row.step = (char *)q->step;
                row.error = (char *)"";
                row.updated = now;
                row.generation = q->gen;
                struct vp_journal j = {
                        .migration_id = r->mig.id, .vm_name = q->mv->vm_name, .step = (char *)q->step,
                        .generation = q->gen, .detail = (char *)(q->detail ? q->detail : ""), .at = now,
                };
                if ((k = vp_row_update(c, &vp_table_migvm, &row, err)) >= 0 &&
                    (k = vp_row_insert(c, &vp_table_journal, &j, err)) >= 0 && q->vm)
                        k = vp_row_update(c, &vp_table_vm, q->vm, err);
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
                mv->step = vp_strdup(q->step);
                mv->error = vp_strdup("");
                mv->updated = vp_strdup(now);
                mv->generation = q->gen;
        }
        free(now);
        return k;
}

/* Record that MV reached STEP (and rewrite VM's row when given), in one
 * transaction with its journal entry, before the next step begins; returns
 * once that transaction is on disk. Steps of several workers share a
 * transaction (a group commit): while one worker commits, the others queue
 * their steps, and the first of them to wake commits the queue as the next
 * batch. Each VM still waits for its own step to be durable. */
static int record_step(struct run *r, struct vp_migvm *mv, const char *step, int64_t gen,
                       const char *detail, const struct vp_vm *vm, struct vp_error *err)
{
        struct step_rec me = { .mv = mv, .step = step, .gen = gen, .detail = detail, .vm = vm };
        pthread_mutex_lock(&r->lock);
        me.next = r->queue;
        r->queue = &me;
        while (!me.done) {
                if (r->committing) {
                        pthread_cond_wait(&r->committed, &r->lock);
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
                                emit(r, q->mv->vm_name, q->step, q->gen, NULL);
                                char point[64];
                                snprintf(point, sizeof(point), "migrate.%s", q->step);
                                vp_fault_point(point);
                        }
                        q->done = true;
                }
                pthread_cond_broadcast(&r->committed);
        }
        pthread_mutex_unlock(&r->lock);
        if (me.result < 0 && err)
                *err = me.err;
        return me.result;
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
                .migration_id = r->mig.id, .vm_name = mv->vm_name, .step = (char *)"error",
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

static int need_conn(struct run *r, int64_t env_id, virConnectPtr *ret, struct vp_error *err)
{
        *ret = conn_by_id(r, env_id);
        if (*ret)
                return 0;
        struct vp_env *e = env_by_id(r, env_id);
        return vp_err(err, -EHOSTUNREACH, "env '%s' is unreachable", e ? e->name : "?");
}

static bool mv_needs_source(const struct vp_migvm *mv)
{
        return streq(mv->step, "pending") || streq(mv->step, "stopping");
}

static int move_vm(struct run *r, struct vp_migvm *mv, struct vp_error *err)
{
        struct vp_vm vm = { 0 };
        int k = load_vm_locked(r, mv->vm_id, &vm, err);
        if (k < 0)
                return k;
        _cleanup_close_ int dfd = -1;
        struct vp_manifest m;
        char vm_owner[96], mig_owner[96];
        snprintf(vm_owner, sizeof(vm_owner), "vm:%s", vm.name);
        snprintf(mig_owner, sizeof(mig_owner), "migration:%lld", (long long)r->mig.id);
        struct vp_env *dst = env_by_id(r, r->mig.to_env_id);
        struct vp_profile *dp = prof_by_id(r, r->mig.to_profile_id);
        virConnectPtr sc = NULL, dc = NULL;
        char *xml = NULL;

        if ((k = vp_delta_open(&r->ctx->st, r->pool.name, vm.name, &dfd, err)) < 0 ||
            (k = need_conn(r, dst->id, &dc, err)) < 0)
                goto out;
        /* Only a step that needs the source asks for it: a fenced source
         * (powered off, the operator said so) is passed by. */
        bool fenced = false;
        if (mv_needs_source(mv) && (k = need_conn(r, mv->src_env_id, &sc, err)) < 0) {
                if (!r->mig.source_fenced)
                        goto out;
                fenced = true;
                k = 0;
        }

        if (streq(mv->step, "pending")) {
                const char *state = "unknown";
                if (!fenced && (k = vp_hv_state(sc, vm.name, &state, err)) < 0)
                        goto out;
                /* Remembered before the shutdown: the target starts only if the
                 * source ran; an unreachable fenced source counts as running. */
                mv->source_running = fenced || streq(state, "running") || streq(state, "paused");
                k = record_step(r, mv, "stopping", mv->generation,
                                fenced ? "source unreachable, fenced by the operator"
                                       : mv->source_running ? "source running" : "source not running", NULL, err);
                if (k < 0)
                        goto out;
        }
        if (streq(mv->step, "stopping")) {
                /* Lock: the source stops, loses its definition, and the
                 * migration takes the delta over at a new generation. */
                if (!fenced) {
                        k = vp_hv_stop(sc, vm.name, (int)r->mig.shutdown_timeout, true, err);
                        if (k < 0 && k != -ENOENT)
                                goto out;
                        vp_fault_point("migrate.source-stopped");
                        if ((k = vp_hv_undefine(sc, vm.name, true, err)) < 0)
                                goto out;
                        vp_fault_point("migrate.source-undefined");
                }
                if ((k = vp_delta_hand_over(dfd, vm.delta_path, vm_owner, mig_owner, mv->generation, 1, &m, err)) < 0)
                        goto out;
                free(vm.owner);
                vm.owner = vp_strdup(m.owner);
                vm.generation = m.generation;
                if ((k = record_step(r, mv, "locked", m.generation, NULL, &vm, err)) < 0)
                        goto out;
        }
        if (streq(mv->step, "locked")) {
                /* Provision: the target's domain, with the VM's identity and the
                 * new hardware. Its disks carry the names the unlock will give
                 * them; until then no such file exists, so it cannot start and
                 * holds nothing, and the unlock is the rename alone. */
                if ((k = vp_manifest_read(dfd, vm.delta_path, &m, err)) < 0)
                        goto out;
                struct vp_manifest unlocked = m;
                vp_delta_handed_manifest(&unlocked, vm_owner, 1);
                if (!(xml = vp_vm_xml(r->ctx, dst, &r->im, dp, &unlocked, vm.delta_path, err))) {
                        k = err ? err->code : -EINVAL;
                        goto out;
                }
                if ((k = define_domain(r, dc, xml, err)) < 0)
                        goto out;
                free(xml);
                xml = NULL;
                if ((k = record_step(r, mv, "provisioned", m.generation, NULL, NULL, err)) < 0)
                        goto out;
        }
        if (streq(mv->step, "provisioned")) {
                /* Unlock to the target VM alone: its disks pass the checks
                 * again right before they take the names its domain has. */
                if ((k = vp_delta_settle(dfd, vm.delta_path, &m, err)) < 0 ||
                    (k = vp_delta_check(&r->ctx->st, r->pool.name, vm.name, r->im.path, r->im.format, NULL, err)) < 0)
                        goto out;
                if ((k = vp_delta_hand_over(dfd, vm.delta_path, mig_owner, vm_owner, mv->generation, 1, &m, err)) < 0)
                        goto out;
                free(vm.owner);
                vm.owner = vp_strdup(m.owner);
                vm.generation = m.generation;
                vm.env_id = dst->id;
                vm.profile_id = dp->id;
                if ((k = record_step(r, mv, "handed_over", m.generation, NULL, &vm, err)) < 0)
                        goto out;
        }
        if (streq(mv->step, "handed_over")) {
                if (mv->source_running && (k = vp_hv_start(dc, vm.name, err)) < 0) {
                        /* QEMU locks its images: a source process still alive
                         * on a host that was only unreachable keeps it. */
                        if (strstr(err->msg, "lock"))
                                vp_err(err, -EBUSY, "its disk is locked by another QEMU process: the source still runs "
                                       "it and is not fenced; stop that process (power the host off), then "
                                       "'vpool migrate resume %lld'", (long long)r->mig.id);
                        goto out;
                }
                k = record_step(r, mv, "done", mv->generation, mv->source_running ? "started" : NULL, NULL, err);
        }
out:
        free(xml);
        vp_row_clear(&vp_table_vm, &vm);
        if (k < 0)
                vp_err_prefix(err, "vm '%s'", mv->vm_name);
        return k;
}

static int return_vm(struct run *r, struct vp_migvm *mv, struct vp_error *err)
{
        int idx = step_index(mv->step);
        if (idx < 0 || idx >= step_index("handed_over"))
                return 0;   /* handed over, or already returned: stays where it is */
        if (idx == 0)
                return record_step(r, mv, "returned", mv->generation, "nothing had changed", NULL, err);

        struct vp_vm vm = { 0 };
        int k = load_vm_locked(r, mv->vm_id, &vm, err);
        if (k < 0)
                return k;
        _cleanup_close_ int dfd = -1;
        struct vp_manifest m;
        char vm_owner[96], mig_owner[96];
        snprintf(vm_owner, sizeof(vm_owner), "vm:%s", vm.name);
        snprintf(mig_owner, sizeof(mig_owner), "migration:%lld", (long long)r->mig.id);
        struct vp_env *src = env_by_id(r, mv->src_env_id);
        struct vp_profile *sp = prof_by_id(r, mv->src_profile_id);
        virConnectPtr sc = NULL, dc = NULL;
        char *xml = NULL;

        if ((k = vp_delta_open(&r->ctx->st, r->pool.name, vm.name, &dfd, err)) < 0 ||
            (k = need_conn(r, src->id, &sc, err)) < 0)
                goto out;
        /* The target's domain goes first, so nothing but the source can
         * hold the delta afterwards. An unreachable target keeps it for
         * fsck --repair. On the same env, a VM that had not been stopped
         * yet keeps running. */
        dc = conn_by_id(r, r->mig.to_env_id);
        if (dc && !(src->id == r->mig.to_env_id && idx == step_index("stopping")) &&
            (k = vp_hv_undefine(dc, vm.name, true, err)) < 0)
                goto out;
        if ((k = vp_delta_settle(dfd, vm.delta_path, &m, err)) < 0)
                goto out;
        /* The provisioned domain names the disks of the generation after
         * the migration's, and may outlive this on a target that did not
         * answer: the delta comes back one generation later, under names no
         * domain was given. Handed to the VM already (the step not yet
         * recorded), it takes new names the same way. */
        if (streq(m.owner, mig_owner))
                k = vp_delta_hand_over(dfd, vm.delta_path, mig_owner, vm_owner, mv->generation, 2, &m, err);
        else if (streq(m.owner, vm_owner) && m.generation > mv->generation)
                k = vp_delta_hand_over(dfd, vm.delta_path, vm_owner, vm_owner, m.generation, 1, &m, err);
        if (k < 0)
                goto out;
        if (!streq(m.owner, vm_owner)) {
                k = vp_err(err, -EPERM, "delta '%s' is owned by '%s'; refusing", vm.delta_path, m.owner);
                goto out;
        }
        if (!(xml = vp_vm_xml(r->ctx, src, &r->im, sp, &m, vm.delta_path, err))) {
                k = err ? err->code : -EINVAL;
                goto out;
        }
        if ((k = vp_hv_define(sc, xml, true, err)) < 0)
                goto out;
        if (mv->source_running && (k = vp_hv_start(sc, vm.name, err)) < 0)
                goto out;
        free(vm.owner);
        vm.owner = vp_strdup(m.owner);
        vm.generation = m.generation;
        vm.env_id = src->id;
        vm.profile_id = sp->id;
        k = record_step(r, mv, "returned", m.generation, mv->source_running ? "started on source" : NULL, &vm, err);
out:
        free(xml);
        vp_row_clear(&vp_table_vm, &vm);
        if (k < 0)
                vp_err_prefix(err, "vm '%s'", mv->vm_name);
        return k;
}

static void *worker(void *arg)
{
        struct run *r = arg;
        for (;;) {
                pthread_mutex_lock(&r->lock);
                size_t i = r->next++;
                pthread_mutex_unlock(&r->lock);
                if (i >= r->n)
                        return NULL;
                struct vp_migvm *mv = &r->mvs[i];
                struct vp_error err = { 0 };
                int k = r->aborting ? return_vm(r, mv, &err) : move_vm(r, mv, &err);
                if (k < 0)
                        record_error(r, mv, err.msg);
        }
}

static void run_workers(struct run *r)
{
        size_t nt = r->mig.parallel > 0 ? (size_t)r->mig.parallel : VP_DEFAULT_PARALLEL;
        if (nt > r->n)
                nt = r->n;
        if (nt <= 1) {
                worker(r);
                return;
        }
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

static int set_states(struct run *r, const char *mig_state, const struct vp_pool *pool, struct vp_error *err)
{
        struct vp_catalog *c = r->ctx->cat;
        free(r->mig.state);
        r->mig.state = vp_strdup(mig_state);
        free(r->mig.updated);
        r->mig.updated = vp_now_iso();
        struct vp_journal j = {
                .migration_id = r->mig.id, .vm_name = (char *)"", .step = (char *)mig_state,
                .detail = (char *)"", .at = r->mig.updated,
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

/* Run (or resume) every VM, then retire the source when all landed. */
static int run_migration(struct run *r, struct vp_error *err)
{
        run_workers(r);
        size_t done = 0;
        for (size_t i = 0; i < r->n; i++)
                if (streq(r->mvs[i].step, "done"))
                        done++;
        if (done < r->n) {
                int k = set_states(r, "partial", NULL, err);
                if (k < 0)
                        return k;
                return vp_err(err, -EAGAIN, "migration %lld partial: %zu of %zu VMs moved; 'vpool migrate status %lld' "
                              "shows why, 'vpool migrate resume %lld' retries", (long long)r->mig.id, done, r->n,
                              (long long)r->mig.id, (long long)r->mig.id);
        }
        /* Retire: the source keeps no domain of the pool. */
        virConnectPtr sc = conn_by_id(r, r->mig.from_env_id);
        if (r->mig.from_env_id != r->mig.to_env_id && sc) {
                struct vp_hv_states left;
                if (vp_hv_states_load(sc, &left, NULL) >= 0) {
                        for (size_t i = 0; i < r->n; i++)
                                if (vp_hv_states_find(&left, r->mvs[i].vm_name)) {
                                        vp_hv_states_free(&left);
                                        return vp_err(err, -EEXIST, "env still holds domain '%s' after the migration",
                                                      r->mvs[i].vm_name);
                                }
                        vp_hv_states_free(&left);
                }
        }
        r->pool.env_id = r->mig.to_env_id;
        r->pool.profile_id = r->mig.to_profile_id;
        free(r->pool.state);
        r->pool.state = vp_strdup("active");
        return set_states(r, "done", &r->pool, err);
}

/* ---- preflight and plan ------------------------------------------------- */

void vp_plan_free(struct vp_plan *plan)
{
        free(plan->vms);
        memset(plan, 0, sizeof(*plan));
}

static void diff(struct vp_plan *p, const char *what, const char *a, const char *b)
{
        if (!streq(a, b) && p->ndiffs < (int)ELEMENTSOF(p->diffs))
                snprintf(p->diffs[p->ndiffs++], sizeof(p->diffs[0]), "%s: %s -> %s", what, a, b);
}

static int unfinished_migration(struct vp_ctx *ctx, int64_t pool_id, int64_t *ret_id, struct vp_error *err)
{
        void *rows = NULL;
        size_t n = 0;
        int k = vp_row_query(ctx->cat, &vp_table_migration, "pool_id = ?1 AND state IN ('running', 'partial')",
                             pool_id, &rows, &n, err);
        if (k < 0)
                return k;
        *ret_id = n ? ((struct vp_migration *)rows)[0].id : 0;
        vp_rows_free(&vp_table_migration, rows, n);
        return 0;
}

int vp_migrate(struct vp_ctx *ctx, const struct vp_migrate_args *a, struct vp_plan *plan,
               int64_t *ret_id, vp_migrate_event_fn ev, void *ud, struct vp_error *err)
{
        int k;
        memset(plan, 0, sizeof(*plan));
        if ((k = vp_name_check("pool", a->pool, err)) < 0 || (k = vp_name_check("env", a->to_env, err)) < 0 ||
            (a->profile && (k = vp_name_check("profile", a->profile, err)) < 0))
                return k;
        if (a->parallel < 0 || a->parallel > 256)
                return vp_err(err, -EINVAL, "--parallel must be between 1 and 256");
        if (a->shutdown_timeout < 0 || a->shutdown_timeout > 86400)
                return vp_err(err, -EINVAL, "--shutdown-timeout must be between 0 and 86400 seconds");

        struct vp_hv_states tstates = { 0 }, sstates = { 0 };
        bool restamped = false;
        int64_t sstates_env = -1;
        _cleanup_close_ int lockfd = -1;
        if (!a->dry_run && (k = vp_pool_lock(ctx, a->pool, &lockfd, err)) < 0) {
                /* Name the migration the other process runs, when there is one. */
                struct vp_pool p = { 0 };
                int64_t other = 0;
                if (k == -EBUSY && vp_row_get(ctx->cat, &vp_table_pool, "name", a->pool, &p, NULL) >= 0 &&
                    unfinished_migration(ctx, p.id, &other, NULL) >= 0 && other)
                        vp_err(err, -EBUSY, "pool '%s' is busy: migration %lld is running in another vpool process",
                               a->pool, (long long)other);
                vp_row_clear(&vp_table_pool, &p);
                return k;
        }

        struct vp_pool pool = { 0 };
        struct vp_image im = { 0 };
        struct vp_env from = { 0 }, to = { 0 };
        struct vp_profile sp = { 0 }, dp = { 0 };
        struct vp_vm *vms = NULL;
        size_t n = 0;
        virConnectPtr dc;
        int64_t busy = 0;
        char idbuf[24];

        if ((k = vp_row_get(ctx->cat, &vp_table_pool, "name", a->pool, &pool, err)) < 0)
                goto out;
        if ((k = unfinished_migration(ctx, pool.id, &busy, err)) < 0)
                goto out;
        if (busy) {
                k = vp_err(err, -EBUSY, "pool '%s' has an unfinished migration %lld; resume or abort it first",
                           a->pool, (long long)busy);
                goto out;
        }
        if ((k = vp_row_get_id(ctx->cat, &vp_table_image, pool.image_id, &im, err)) < 0 ||
            (k = vp_row_get_id(ctx->cat, &vp_table_env, pool.env_id, &from, err)) < 0 ||
            (k = vp_row_get_id(ctx->cat, &vp_table_profile, pool.profile_id, &sp, err)) < 0 ||
            (k = vp_row_get(ctx->cat, &vp_table_env, "name", a->to_env, &to, err)) < 0)
                goto out;
        if (a->profile)
                k = vp_row_get(ctx->cat, &vp_table_profile, "name", a->profile, &dp, err);
        else
                k = vp_row_get_id(ctx->cat, &vp_table_profile, pool.profile_id, &dp, err);
        if (k < 0)
                goto out;
        if (from.id == to.id && sp.id == dp.id) {
                k = vp_err(err, -EINVAL, "pool '%s' already runs on env '%s' with profile '%s'; nothing to migrate",
                           a->pool, to.name, dp.name);
                goto out;
        }
        if ((k = vp_check_image_supports(&im, &dp, err)) < 0)
                goto out;
        if ((k = vp_image_check_unchanged(ctx, &im, &restamped, err)) < 0) {
                vp_err_prefix(err, "pool '%s'", a->pool);
                goto out;
        }
        if ((k = vp_ctx_conn(ctx, &to, &dc, err)) < 0)
                goto out;
        if ((k = vp_hv_check_hardware(dc, to.name, to.arch, vp_hv_pick_domain_type(to.domain_types), dp.machine,
                                      dp.disk_bus, dp.nic, dp.firmware, err)) < 0)
                goto out;

        snprintf(idbuf, sizeof(idbuf), "%lld", (long long)pool.id);
        void *rows;
        if ((k = vp_row_list(ctx->cat, &vp_table_vm, "pool_id", idbuf, &rows, &n, err)) < 0)
                goto out;
        vms = rows;
        snprintf(plan->pool, sizeof(plan->pool), "%s", pool.name);
        snprintf(plan->from_env, sizeof(plan->from_env), "%s", from.name);
        snprintf(plan->to_env, sizeof(plan->to_env), "%s", to.name);
        snprintf(plan->from_profile, sizeof(plan->from_profile), "%s", sp.name);
        snprintf(plan->to_profile, sizeof(plan->to_profile), "%s", dp.name);
        diff(plan, "machine", sp.machine, dp.machine);
        diff(plan, "disk bus", sp.disk_bus, dp.disk_bus);
        diff(plan, "NIC", sp.nic, dp.nic);
        diff(plan, "firmware", sp.firmware, dp.firmware);
        {
                char a1[32], b1[32];
                snprintf(a1, sizeof(a1), "%lld", (long long)sp.vcpus);
                snprintf(b1, sizeof(b1), "%lld", (long long)dp.vcpus);
                diff(plan, "vCPUs", a1, b1);
                snprintf(a1, sizeof(a1), "%lld MiB", (long long)sp.memory_mib);
                snprintf(b1, sizeof(b1), "%lld MiB", (long long)dp.memory_mib);
                diff(plan, "memory", a1, b1);
                diff(plan, "CPU mode", *sp.cpu_mode ? sp.cpu_mode : "default", *dp.cpu_mode ? dp.cpu_mode : "default");
        }
        plan->vms = vp_xcalloc(n, sizeof(*plan->vms));
        plan->nvms = n;
        /* Each env's domains are read once, not once per VM. */
        if ((k = vp_hv_states_load(dc, &tstates, err)) < 0)
                goto out;
        for (size_t i = 0; i < n; i++) {
                struct vp_env ve = { 0 };
                virConnectPtr vc;
                const char *state;
                if ((k = vp_row_get_id(ctx->cat, &vp_table_env, vms[i].env_id, &ve, err)) < 0)
                        goto out;
                struct vp_error cerr = { 0 };
                state = "unknown";
                k = vp_ctx_conn(ctx, &ve, &vc, &cerr);
                if (k < 0 && a->source_fenced) {
                        /* The operator vouches the host is off; QEMU's image lock still
                         * keeps the target from starting if it is not. */
                        plan->vms[i].unreachable = true;
                        k = 0;
                } else if (k < 0) {
                        k = vp_err(err, k, "%s; vm '%s' may still run there and hold its delta, so it is not handed "
                                   "over. If that host is fenced (powered off), retry with --source-fenced",
                                   cerr.msg, vms[i].name);
                } else {
                        if (sstates_env != ve.id) {
                                vp_hv_states_free(&sstates);
                                sstates_env = -1;
                                if ((k = vp_hv_states_load(vc, &sstates, err)) >= 0)
                                        sstates_env = ve.id;
                        }
                        if (k >= 0) {
                                const struct vp_hv_domstate *d = vp_hv_states_find(&sstates, vms[i].name);
                                state = !d ? "undefined" : d->active ? "running" : "shut off";
                        }
                }
                if (k >= 0 && ve.id != to.id && vp_hv_states_find(&tstates, vms[i].name))
                        k = vp_err(err, -EEXIST, "env '%s' already has a domain named '%s'", to.name, vms[i].name);
                if (k >= 0) {
                        /* Every delta must be cleanly held by its VM before any is touched. */
                        struct vp_manifest m;
                        char owner[96];
                        snprintf(owner, sizeof(owner), "vm:%s", vms[i].name);
                        k = vp_delta_check(&ctx->st, pool.name, vms[i].name, im.path, im.format, &m, err);
                        if (k >= 0 && (!streq(m.owner, owner) || m.generation != vms[i].generation))
                                k = vp_err(err, -EPERM, "delta of vm '%s' is owned by '%s' at generation %lld, the catalog "
                                           "says '%s' at %lld; run 'vpool fsck'", vms[i].name, m.owner,
                                           (long long)m.generation, vms[i].owner, (long long)vms[i].generation);
                }
                snprintf(plan->vms[i].vm, sizeof(plan->vms[i].vm), "%s", vms[i].name);
                snprintf(plan->vms[i].from_env, sizeof(plan->vms[i].from_env), "%s", ve.name);
                snprintf(plan->vms[i].to_env, sizeof(plan->vms[i].to_env), "%s", to.name);
                vp_row_clear(&vp_table_env, &ve);
                if (k < 0)
                        goto out;
                plan->vms[i].running = streq(state, "running") || plan->vms[i].unreachable;
                if (plan->vms[i].running)
                        plan->memory_needed_mib += dp.memory_mib;
        }
        {
                unsigned long long free_bytes = virNodeGetFreeMemory(dc);
                plan->memory_free_mib = (int64_t)(free_bytes >> 20);
                if (from.id != to.id && free_bytes > 0 && plan->memory_needed_mib > plan->memory_free_mib) {
                        k = vp_err(err, -ENOMEM, "env '%s' has %lld MiB free; the running VMs of pool '%s' need %lld MiB",
                                   to.name, (long long)plan->memory_free_mib, a->pool,
                                   (long long)plan->memory_needed_mib);
                        goto out;
                }
        }
        if (a->dry_run) {
                k = 0;
                goto out;
        }

        /* Allocate: the migration (the target pool's env and profile) and a
         * journal row per VM, in one transaction. */
        {
                struct vp_migration mig = {
                        .pool_id = pool.id, .pool_name = pool.name, .from_env_id = from.id, .to_env_id = to.id,
                        .from_profile_id = sp.id, .to_profile_id = dp.id, .state = (char *)"running",
                        .parallel = a->parallel ? a->parallel : VP_DEFAULT_PARALLEL,
                        .shutdown_timeout = a->shutdown_timeout, .source_fenced = a->source_fenced,
                        .total = (int64_t)n, .created = vp_now_iso(),
                };
                mig.updated = mig.created;
                if ((k = vp_catalog_begin(ctx->cat, err)) < 0) {
                        free(mig.created);
                        goto out;
                }
                k = vp_row_insert(ctx->cat, &vp_table_migration, &mig, err);
                for (size_t i = 0; i < n && k >= 0; i++) {
                        struct vp_migvm mv = {
                                .migration_id = mig.id, .vm_id = vms[i].id, .vm_name = vms[i].name,
                                .step = (char *)"pending", .src_env_id = vms[i].env_id,
                                .src_profile_id = vms[i].profile_id, .generation = vms[i].generation,
                                .error = (char *)"", .updated = mig.created,
                        };
                        k = vp_row_insert(ctx->cat, &vp_table_migvm, &mv, err);
                }
                if (k >= 0) {
                        struct vp_journal j = { .migration_id = mig.id, .vm_name = (char *)"",
                                                .step = (char *)"allocated", .detail = (char *)"", .at = mig.created };
                        free(pool.state);
                        pool.state = vp_strdup("migrating");
                        /* A master found unchanged under a new stamp keeps it. */
                        if ((k = vp_row_insert(ctx->cat, &vp_table_journal, &j, err)) >= 0 &&
                            (k = vp_row_update(ctx->cat, &vp_table_pool, &pool, err)) >= 0 &&
                            (!restamped || (k = vp_row_update(ctx->cat, &vp_table_image, &im, err)) >= 0))
                                k = vp_catalog_commit(ctx->cat, err);
                }
                free(mig.created);
                if (k < 0) {
                        vp_catalog_rollback(ctx->cat);
                        goto out;
                }
                *ret_id = mig.id;
                if (ev)
                        ev(ud, mig.id, NULL, "allocated", 0, NULL);
        }
        {
                struct run r;
                if ((k = run_load(ctx, *ret_id, &r, err)) >= 0) {
                        r.ev = ev;
                        r.ud = ud;
                        k = run_migration(&r, err);
                }
                run_clear(&r);
        }
out:
        vp_hv_states_free(&tstates);
        vp_hv_states_free(&sstates);
        vp_rows_free(&vp_table_vm, vms, n);
        vp_row_clear(&vp_table_pool, &pool);
        vp_row_clear(&vp_table_image, &im);
        vp_row_clear(&vp_table_env, &from);
        vp_row_clear(&vp_table_env, &to);
        vp_row_clear(&vp_table_profile, &sp);
        vp_row_clear(&vp_table_profile, &dp);
        return k;
}

static int continue_migration(struct vp_ctx *ctx, int64_t id, bool abort_it, vp_migrate_event_fn ev, void *ud,
                              struct vp_error *err)
{
        struct vp_migration mig = { 0 };
        int k = vp_row_get_id(ctx->cat, &vp_table_migration, id, &mig, err);
        if (k < 0)
                return vp_err(err, -ENOENT, "unknown migration %lld", (long long)id);
        _cleanup_close_ int lockfd = -1;
        bool finished = streq(mig.state, "done") || streq(mig.state, "aborted");
        if (finished)
                k = vp_err(err, -EALREADY, "migration %lld is already %s", (long long)id, mig.state);
        else
                k = vp_pool_lock(ctx, mig.pool_name, &lockfd, err);
        vp_row_clear(&vp_table_migration, &mig);
        if (k < 0)
                return k;
        struct vp_error ignore;
        struct run r;
        if ((k = run_load(ctx, id, &r, err)) >= 0) {
                r.ev = ev;
                r.ud = ud;
                if (!abort_it) {
                        free(r.mig.state);
                        r.mig.state = vp_strdup("running");
                        set_states(&r, "running", NULL, &ignore);
                        k = run_migration(&r, err);
                } else {
                        r.aborting = true;
                        run_workers(&r);
                        if (r.failures) {
                                set_states(&r, "partial", NULL, &ignore);
                                k = vp_err(err, -EAGAIN, "abort of migration %lld incomplete: %zu VMs could not be "
                                           "returned; 'vpool migrate status %lld' shows why", (long long)id,
                                           r.failures, (long long)id);
                        } else {
                                free(r.pool.state);
                                r.pool.state = vp_strdup("active");
                                k = set_states(&r, "aborted", &r.pool, err);
                        }
                }
        }
        run_clear(&r);
        return k;
}

int vp_migrate_resume(struct vp_ctx *ctx, int64_t id, vp_migrate_event_fn ev, void *ud, struct vp_error *err)
{
        return continue_migration(ctx, id, false, ev, ud, err);
}

int vp_migrate_abort(struct vp_ctx *ctx, int64_t id, vp_migrate_event_fn ev, void *ud, struct vp_error *err)
{
        return continue_migration(ctx, id, true, ev, ud, err);
}
