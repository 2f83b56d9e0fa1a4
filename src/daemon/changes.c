/* The changes the API takes: each handler checks the request's body as the
 * CLI checks its options, then hands the work to a job. */
#include "jobs.h"

#include <stdio.h>
#include <string.h>

#include "body.h"
#include "host.h"
#include "migrate.h"
#include "name.h"
#include "parse.h"
#include "view.h"

/* ---- the body ---- */

struct json_object *vpd_body_read(struct vpd_request *r, struct vpd_reply *rep, const char *const *allowed)
{
        struct vpd_body_error e = { 0 };
        struct json_object *o = vpd_body_parse(r->body, r->body_len, allowed, &e);
        if (!o)
                vpd_problem(rep, 400, e.field[0] ? e.field : NULL, "%s", e.detail);
        return o;
}

bool vpd_fields_ok(bool ok, struct vpd_reply *rep, const struct vpd_body_error *e)
{
        if (!ok)
                vpd_problem(rep, 400, e->field[0] ? e->field : NULL, "%s", e->detail);
        return ok;
}

/* ---- pools and VMs ---- */

struct pool_change {
        char pool[64], image[64], env[64], profile[64];
        int64_t size, timeout;
        uint64_t data_disk;
        bool start, force, keep_deltas;
        enum vp_placement placement;
};

static void created_cb(void *ud, const char *vm, const char *step, size_t done, size_t total)
{
        vpd_job_accept(ud, 0);
}

static int run_pool_create(struct vpd_job *j, struct vp_ctx *ctx, struct vp_error *err)
{
        struct pool_change *c = j->data;
        struct vp_pool_args a = { .name = c->pool, .image = c->image, .env = c->env, .profile = c->profile,
                                  .size = c->size, .data_disk_bytes = c->data_disk, .start = c->start,
                                  .placement = c->placement };
        return vp_pool_create(ctx, &a, created_cb, j, err);
}

void vpd_post_pools(struct vpd_request *r, struct vpd_reply *rep)
{
        static const char *const allowed[] = { "name", "image", "env", "profile", "size", "data_disk_mib", "start",
                                               "placement", NULL };
        struct json_object *o = vpd_body_read(r, rep, allowed);
        if (!o)
                return;
        struct pool_change *c = vp_xcalloc(1, sizeof(*c));
        const char *dprof = r->d->conf.v[VP_CONF_PROFILE].text;
        snprintf(c->profile, sizeof(c->profile), "%s", dprof ? dprof : "");
        int64_t dd = 0;
        struct vpd_body_error e = { 0 };
        bool ok = vpd_field_name(o, "name", "pool", true, c->pool, sizeof(c->pool), &e) &&
                  vpd_field_name(o, "image", "image", true, c->image, sizeof(c->image), &e) &&
                  vpd_field_name(o, "env", "env", true, c->env, sizeof(c->env), &e) &&
                  vpd_field_name(o, "profile", "profile", !dprof, c->profile, sizeof(c->profile), &e) &&
                  vpd_field_uint(o, "size", 1, 9999, true, &c->size, &e) &&
                  vpd_field_uint(o, "data_disk_mib", 1, INT64_C(16) << 20, false, &dd, &e) &&
                  vpd_field_bool(o, "start", &c->start, &e) && vpd_field_placement(o, &c->placement, &e);
        if (!vpd_fields_ok(ok, rep, &e)) {
                free(c);
                json_object_put(o);
                return;
        }
        c->data_disk = (uint64_t)dd << 20;
        vpd_job_submit(r, rep, "pool.create", c->pool, c->pool, NULL, o, c, run_pool_create);
}

static int run_pool_rm(struct vpd_job *j, struct vp_ctx *ctx, struct vp_error *err)
{
        struct pool_change *c = j->data;
        return vp_pool_rm(ctx, c->pool, c->keep_deltas, c->force, err);
}

static int run_pool_start(struct vpd_job *j, struct vp_ctx *ctx, struct vp_error *err)
{
        return vp_pool_start(ctx, ((struct pool_change *)j->data)->pool, err);
}

static int run_pool_stop(struct vpd_job *j, struct vp_ctx *ctx, struct vp_error *err)
{
        struct pool_change *c = j->data;
        return vp_pool_stop(ctx, c->pool, (int)c->timeout, c->force, err);
}

static int run_vm_start(struct vpd_job *j, struct vp_ctx *ctx, struct vp_error *err)
{
        return vp_vm_start(ctx, ((struct pool_change *)j->data)->pool, err);
}

static int run_vm_stop(struct vpd_job *j, struct vp_ctx *ctx, struct vp_error *err)
{
        struct pool_change *c = j->data;
        return vp_vm_stop(ctx, c->pool, (int)c->timeout, c->force, err);
}

/* A change of the pool or VM named by the path: its body holds at most
 * ALLOWED (force, keep_deltas, timeout). */
static void pool_act(struct vpd_request *r, struct vpd_reply *rep, const char *what, const char *kind,
                     const char *const *allowed, vpd_job_fn fn)
{
        if (!vpd_param_name(r, rep, 0, what))
                return;
        struct json_object *o = vpd_body_read(r, rep, allowed);
        if (!o)
                return;
        struct pool_change *c = vp_xcalloc(1, sizeof(*c));
        snprintf(c->pool, sizeof(c->pool), "%s", r->params[0]);
        c->timeout = r->d->conf.shutdown_timeout;
        struct vpd_body_error e = { 0 };
        bool ok = vpd_field_bool(o, "force", &c->force, &e) && vpd_field_bool(o, "keep_deltas", &c->keep_deltas, &e) &&
                  vpd_field_uint(o, "timeout", 0, 86400, false, &c->timeout, &e);
        if (!vpd_fields_ok(ok, rep, &e)) {
                free(c);
                json_object_put(o);
                return;
        }
        bool vm = streq(what, "vm");
        vpd_job_submit(r, rep, kind, c->pool, vm ? NULL : c->pool, vm ? c->pool : NULL, o, c, fn);
}

void vpd_delete_pool(struct vpd_request *r, struct vpd_reply *rep)
{
        static const char *const allowed[] = { "force", "keep_deltas", NULL };
        pool_act(r, rep, "pool", "pool.rm", allowed, run_pool_rm);
}

void vpd_post_pool_start(struct vpd_request *r, struct vpd_reply *rep)
{
        static const char *const allowed[] = { NULL };
        pool_act(r, rep, "pool", "pool.start", allowed, run_pool_start);
}

void vpd_post_pool_stop(struct vpd_request *r, struct vpd_reply *rep)
{
        static const char *const allowed[] = { "force", "timeout", NULL };
        pool_act(r, rep, "pool", "pool.stop", allowed, run_pool_stop);
}

void vpd_post_vm_start(struct vpd_request *r, struct vpd_reply *rep)
{
        static const char *const allowed[] = { NULL };
        pool_act(r, rep, "vm", "vm.start", allowed, run_vm_start);
}

void vpd_post_vm_stop(struct vpd_request *r, struct vpd_reply *rep)
{
        static const char *const allowed[] = { "force", "timeout", NULL };
        pool_act(r, rep, "vm", "vm.stop", allowed, run_vm_stop);
}

/* ---- migrations ---- */

#define TO_HOSTS_MAX 16

struct mig_change {
        char pool[64], to[64], profile[64], source_fenced[64], from_host[64];
        char to_hosts[TO_HOSTS_MAX][64];
        const char *to_host_ptrs[TO_HOSTS_MAX];
        size_t nto_hosts;
        int64_t parallel, timeout, id;
        bool dry_run, cold, accept_nic_rename;
        enum vp_placement placement;
        char **pools;                     /* a drain's, from its begin */
        size_t npools;
};

static void mig_event(void *ud, int64_t id, const char *vm, const char *step, int64_t generation, const char *error)
{
        vpd_job_accept(ud, id);
}

static void mig_args(struct mig_change *c, struct vp_migrate_args *a)
{
        *a = (struct vp_migrate_args){
                .pool = c->pool, .to_env = c->to, .profile = c->profile[0] ? c->profile : NULL,
                .parallel = (int)c->parallel, .shutdown_timeout = (int)c->timeout, .dry_run = c->dry_run,
                .source_fenced = c->source_fenced[0] ? c->source_fenced : NULL, .placement = c->placement,
                .from_host = c->from_host[0] ? c->from_host : NULL, .to_hosts = c->to_host_ptrs,
                .nto_hosts = c->nto_hosts, .live = c->from_host[0] && !c->cold,
                .accept_nic_rename = c->accept_nic_rename,
        };
}

static int run_migrate(struct vpd_job *j, struct vp_ctx *ctx, struct vp_error *err)
{
        struct vp_migrate_args a;
        struct vp_plan plan = { 0 };
        int64_t id = 0;
        mig_args(j->data, &a);
        int r = vp_migrate(ctx, &a, &plan, &id, mig_event, j, err);
        vp_plan_free(&plan);
        return r;
}

/* The common fields of a move: parallel, shutdown_timeout, placement, dry_run. */
static bool mig_fields(struct vpd_request *r, struct json_object *o, struct mig_change *c, struct vpd_body_error *e)
{
        c->parallel = r->d->conf.parallel;
        c->timeout = r->d->conf.shutdown_timeout;
        return vpd_field_uint(o, "parallel", 1, 256, false, &c->parallel, e) &&
               vpd_field_uint(o, "shutdown_timeout", 0, 86400, false, &c->timeout, e) &&
               vpd_field_placement(o, &c->placement, e) && vpd_field_bool(o, "dry_run", &c->dry_run, e);
}

/* A dry run answers its plan at once: it changes nothing. */
static void dry_run(struct vpd_request *r, struct vpd_reply *rep, struct mig_change *c)
{
        struct vp_migrate_args a;
        struct vp_plan plan = { 0 };
        struct vp_error err = { 0 };
        struct vp_ctx ctx;
        mig_args(c, &a);
        int k = vp_ctx_open(&ctx, r->d->conf.v[VP_CONF_CATALOG].text, &err);
        if (k >= 0) {
                k = vp_migrate(&ctx, &a, &plan, NULL, NULL, NULL, &err);
                vp_ctx_close(&ctx);
        }
        if (k < 0)
                vpd_problem_err(rep, &err);
        else
                vpd_reply_json(rep, 200, vp_plan_json(&plan));
        vp_plan_free(&plan);
}

void vpd_post_migrations(struct vpd_request *r, struct vpd_reply *rep)
{
        static const char *const allowed[] = { "to", "profile", "dry_run", "parallel", "shutdown_timeout",
                                               "placement", "source_fenced", "accept_nic_rename", NULL };
        if (!vpd_param_name(r, rep, 0, "pool"))
                return;
        struct json_object *o = vpd_body_read(r, rep, allowed);
        if (!o)
                return;
        struct mig_change *c = vp_xcalloc(1, sizeof(*c));
        snprintf(c->pool, sizeof(c->pool), "%s", r->params[0]);
        struct vpd_body_error e = { 0 };
        bool ok = vpd_fields_ok(vpd_field_name(o, "to", "env", true, c->to, sizeof(c->to), &e) &&
                                    vpd_field_name(o, "profile", "profile", false, c->profile, sizeof(c->profile), &e) &&
                                    vpd_field_name(o, "source_fenced", "env", false, c->source_fenced,
                                                   sizeof(c->source_fenced), &e) &&
                                    vpd_field_bool(o, "accept_nic_rename", &c->accept_nic_rename, &e) &&
                                    mig_fields(r, o, c, &e),
                            rep, &e);
        if (ok && c->dry_run)
                dry_run(r, rep, c);
        if (!ok || c->dry_run) {
                free(c);
                json_object_put(o);
                return;
        }
        vpd_job_submit(r, rep, "migration.start", c->pool, c->pool, NULL, o, c, run_migrate);
}

static int run_resume(struct vpd_job *j, struct vp_ctx *ctx, struct vp_error *err)
{
        struct mig_change *c = j->data;
        vpd_job_accept(j, c->id);
        return vp_migrate_resume(ctx, c->id, c->source_fenced[0] ? c->source_fenced : NULL, NULL, NULL, err);
}

static int run_abort(struct vpd_job *j, struct vp_ctx *ctx, struct vp_error *err)
{
        struct mig_change *c = j->data;
        vpd_job_accept(j, c->id);
        return vp_migrate_abort(ctx, c->id, NULL, NULL, err);
}

/* Resume or abort migration {id}: refused at once when it is unknown or a
 * process works on it. */
static void mig_act(struct vpd_request *r, struct vpd_reply *rep, const char *kind, const char *const *allowed,
                    vpd_job_fn fn)
{
        struct mig_change *c = vp_xcalloc(1, sizeof(*c));
        if (!vpd_param_id(r, rep, "migration id", &c->id)) {
                free(c);
                return;
        }
        struct json_object *o = vpd_body_read(r, rep, allowed);
        struct vp_error err = { 0 };
        struct vp_ctx *ctx = o ? vpd_read_ctx(r->d, &err) : NULL;
        struct vp_migration m = { 0 };
        struct vpd_body_error e = { 0 };
        bool ok = o && vpd_fields_ok(vpd_field_name(o, "source_fenced", "env", false, c->source_fenced,
                                                sizeof(c->source_fenced), &e),
                                 rep, &e);
        if (ok && (!ctx || vp_migration_get(ctx, c->id, &m, &err) < 0)) {
                vpd_problem_err(rep, &err);
                ok = false;
        }
        if (ok && vp_migration_active(ctx, c->id)) {
                vpd_problem(rep, 409, NULL, "migration %lld is being worked on by another process",
                            (long long)c->id);
                ok = false;
        }
        if (!ok) {
                vp_row_clear(&vp_table_migration, &m);
                free(c);
                json_object_put(o);
                return;
        }
        snprintf(c->pool, sizeof(c->pool), "%s", m.pool_name);
        vp_row_clear(&vp_table_migration, &m);
        char subject[32];
        snprintf(subject, sizeof(subject), "%lld", (long long)c->id);
        vpd_job_submit(r, rep, kind, subject, c->pool, NULL, o, c, fn);
}

void vpd_post_migration_resume(struct vpd_request *r, struct vpd_reply *rep)
{
        static const char *const allowed[] = { "source_fenced", NULL };
        mig_act(r, rep, "migration.resume", allowed, run_resume);
}

void vpd_post_migration_abort(struct vpd_request *r, struct vpd_reply *rep)
{
        static const char *const allowed[] = { NULL };
        mig_act(r, rep, "migration.abort", allowed, run_abort);
}

/* ---- hosts ---- */

/* A drain: the host goes into maintenance, then each pool with VMs on it
 * moves off it, one migration after the other. */
static int run_drain(struct vpd_job *j, struct vp_ctx *ctx, struct vp_error *err)
{
        struct mig_change *c = j->data;
        int r = vp_env_host_drain_begin(ctx, c->to, c->from_host, c->to_host_ptrs, c->nto_hosts, &c->pools,
                                        &c->npools, err);
        if (r < 0)
                return r;
        vpd_job_accept(j, 0);
        int rc = 0;
        for (size_t i = 0; i < c->npools; i++) {
                struct vp_migrate_args a;
                struct vp_plan plan = { 0 };
                struct vp_error e = { 0 };
                int64_t id = 0;
                snprintf(c->pool, sizeof(c->pool), "%s", c->pools[i]);
                mig_args(c, &a);
                /* Each migration named in the job's history row as it
                 * begins: a daemon killed during it resumes it on restart. */
                if (vp_migrate(ctx, &a, &plan, &id, mig_event, j, &e) < 0 && rc == 0) {
                        rc = e.code ? e.code : -EIO;
                        *err = e;
                }
                vp_plan_free(&plan);
                free(c->pools[i]);
        }
        free(c->pools);
        c->pools = NULL;
        return rc;
}

void vpd_post_host_drain(struct vpd_request *r, struct vpd_reply *rep)
{
        static const char *const allowed[] = { "to_hosts", "cold", "parallel", "shutdown_timeout", "placement",
                                               NULL };
        if (!vpd_param_name(r, rep, 0, "env") || !vpd_param_name(r, rep, 1, "host"))
                return;
        struct json_object *o = vpd_body_read(r, rep, allowed);
        if (!o)
                return;
        struct mig_change *c = vp_xcalloc(1, sizeof(*c));
        snprintf(c->to, sizeof(c->to), "%s", r->params[0]);
        snprintf(c->from_host, sizeof(c->from_host), "%s", r->params[1]);
        struct vpd_body_error e = { 0 };
        bool ok = vpd_field_names(o, "to_hosts", "host", TO_HOSTS_MAX, c->to_hosts[0], sizeof(c->to_hosts[0]),
                                  &c->nto_hosts, &e) &&
                  vpd_field_bool(o, "cold", &c->cold, &e) && mig_fields(r, o, c, &e);
        for (size_t i = 0; i < c->nto_hosts; i++)
                c->to_host_ptrs[i] = c->to_hosts[i];
        if (!vpd_fields_ok(ok, rep, &e)) {
                free(c);
                json_object_put(o);
                return;
        }
        char subject[160];
        snprintf(subject, sizeof(subject), "%s/%s", c->to, c->from_host);
        vpd_job_submit(r, rep, "host.drain", subject, NULL, NULL, o, c, run_drain);
}

static int run_host_resume(struct vpd_job *j, struct vp_ctx *ctx, struct vp_error *err)
{
        struct mig_change *c = j->data;
        return vp_env_host_set_maintenance(ctx, c->to, c->from_host, false, err);
}

void vpd_post_host_resume(struct vpd_request *r, struct vpd_reply *rep)
{
        static const char *const allowed[] = { NULL };
        if (!vpd_param_name(r, rep, 0, "env") || !vpd_param_name(r, rep, 1, "host"))
                return;
        struct json_object *o = vpd_body_read(r, rep, allowed);
        if (!o)
                return;
        struct mig_change *c = vp_xcalloc(1, sizeof(*c));
        snprintf(c->to, sizeof(c->to), "%s", r->params[0]);
        snprintf(c->from_host, sizeof(c->from_host), "%s", r->params[1]);
        char subject[160];
        snprintf(subject, sizeof(subject), "%s/%s", c->to, c->from_host);
        vpd_job_submit(r, rep, "host.resume", subject, NULL, NULL, o, c, run_host_resume);
}

/* ---- the policies' moves ---- */

/* A move with the configured parallelism and shutdown timeout. */
static struct mig_change *policy_change(struct vpd *d)
{
        struct mig_change *c = vp_xcalloc(1, sizeof(*c));
        c->parallel = d->conf.parallel;
        c->timeout = d->conf.shutdown_timeout;
        return c;
}

int64_t vpd_policy_drain(struct vpd *d, const char *env, const char *host, const struct vp_actor *actor,
                         const char *reason)
{
        struct mig_change *c = policy_change(d);
        snprintf(c->to, sizeof(c->to), "%s", env);
        snprintf(c->from_host, sizeof(c->from_host), "%s", host);
        char subject[160], command[256];
        snprintf(subject, sizeof(subject), "%s/%s", env, host);
        snprintf(command, sizeof(command), "vpoold: drain host %s of env %s", host, env);
        return vpd_job_run(d, "host.drain", subject, NULL, actor, command, reason, c, run_drain);
}

int64_t vpd_policy_migrate(struct vpd *d, const char *pool, const char *to, const char *profile,
                           const struct vp_actor *actor, const char *reason)
{
        struct mig_change *c = policy_change(d);
        snprintf(c->pool, sizeof(c->pool), "%s", pool);
        snprintf(c->to, sizeof(c->to), "%s", to);
        snprintf(c->profile, sizeof(c->profile), "%s", profile ? profile : "");
        char command[256];
        snprintf(command, sizeof(command), "vpoold: migrate pool %s to env %s%s%s", pool, to,
                 profile ? " with profile " : "", profile ? profile : "");
        return vpd_job_run(d, "migration.start", pool, pool, actor, command, reason, c, run_migrate);
}
