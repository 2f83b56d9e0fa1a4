/* vpoold's jobs: every change asked over the API runs in a thread of the
 * daemon with a catalog connection of its own, recorded in the history as
 * done by who asked, and followed at /v1/jobs/{id} (and, for a migration,
 * at /v1/migrations/{id}). A client going away changes nothing. */
#pragma once
#include "vpoold.h"
#include "body.h"

struct vpd_job;

/* What a job does, in its own thread and ctx; returns 0 or a negative errno
 * with ERR filled. */
typedef int (*vpd_job_fn)(struct vpd_job *j, struct vp_ctx *ctx, struct vp_error *err);

struct vpd_job {
        int64_t id;
        char kind[32];                    /* "pool.create", "migration", ... */
        char subject[128];                /* the name or id acted on */
        char pool[64];
        char vm[64];
        char actor[128];
        enum vp_via via;
        char command[512];                /* "POST /v1/pools/p1/start" and its body */
        char reason[512];                 /* why a policy started it; "" for a client's */
        enum vp_job_state state;
        bool accepted;                    /* past its checks: the work has begun */
        int64_t migration_id;             /* 0: none (yet) */
        char error[1024];
        int error_code;
        time_t created, started, ended;
        struct json_object *args;         /* the request's body, parsed (owned) */
        void *data;                       /* what the handler made of it (owned, free()d) */
        vpd_job_fn fn;
        struct vpd *d;
        /* The history row of the job (its id, once begun), and the catalog
         * connection that writes it while the job runs. */
        int64_t history_id;
        struct vp_catalog *hist;
        int64_t children[64];             /* the rows vpd_job_history_add gave it */
        size_t nchildren;
};

/* Mark J accepted (and, when ID is not 0, the migration it runs): the
 * client asking is answered 202 from here on. */
void vpd_job_accept(struct vpd_job *j, int64_t migration_id);

/* Start a job a policy of the daemon decided: KIND on SUBJECT (of POOL,
 * may be NULL) by the policy ACTOR, recorded with COMMAND and REASON, FN
 * running with DATA (taken, free()d). False (DATA freed) when the daemon
 * stops. */
bool vpd_job_run_policy(struct vpd *d, const char *kind, const char *subject, const char *pool, const char *actor,
                        const char *command, const char *reason, void *data, vpd_job_fn fn);
/* J's reason, now that more is known (printf): the job and its history
 * row, and every row vpd_job_history_add gave it, say it from here on. */
void vpd_job_set_reason(struct vpd_job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A history row of its own, as J's (actor, via, reason), for one of the
 * migrations J runs (a job that runs several: each is found its own by a
 * daemon killed half-way, vpd_jobs_resume_left): KIND "noun.verb" on
 * SUBJECT of POOL, migration MIGRATION_ID. Its id, 0 when not recorded. */
int64_t vpd_job_history_add(struct vpd_job *j, const char *kind, const char *subject, const char *pool,
                            int64_t migration_id, const char *command);
/* How that row ended: R and, when R < 0, ERROR. */
void vpd_job_history_done(struct vpd_job *j, int64_t id, int r, const char *error);

/* Run a job of KIND on SUBJECT for R with FN and ARGS (taken), then answer:
 * a job refused before it began (a bad field, an unknown name, a busy pool)
 * is the problem it met, nothing changed; otherwise 202 with the job's
 * document and its Location. */
void vpd_job_submit(struct vpd_request *r, struct vpd_reply *rep, const char *kind, const char *subject,
                    const char *pool, const char *vm, struct json_object *args, void *data, vpd_job_fn fn);

/* Start a job the daemon decided by itself (a policy): no client waits for
 * it. It is recorded in the history as done by ACTOR with REASON, its
 * COMMAND what it does in words. Returns its id; 0 when the daemon stops
 * (DATA freed then). */
int64_t vpd_job_run(struct vpd *d, const char *kind, const char *subject, const char *pool,
                    const struct vp_actor *actor, const char *command, const char *reason, void *data, vpd_job_fn fn);

/* How job ID stands: its state, and once it failed, its error's errno and
 * message; the migration it runs, 0 when none (yet). False when the job is
 * not known (any more: only ended jobs are forgotten). */
struct vpd_job_outcome {
        enum vp_job_state state;
        int error_code;
        char error[1024];
        int64_t migration_id;
};
bool vpd_job_outcome(struct vpd *d, int64_t id, struct vpd_job_outcome *ret);

/* Policies' moves, as jobs of ACTOR with REASON (changes.c): the drain of
 * HOST of ENV, as 'env host drain' does it; the migration of POOL to env
 * TO (PROFILE NULL: its own), as 'migrate start' does it. Each with the
 * configured parallelism and shutdown timeout. Their job's id; 0 when the
 * daemon stops. */
int64_t vpd_policy_drain(struct vpd *d, const char *env, const char *host, const struct vp_actor *actor,
                         const char *reason);
int64_t vpd_policy_migrate(struct vpd *d, const char *pool, const char *to, const char *profile,
                           const struct vp_actor *actor, const char *reason);

/* The body of R as an object of ALLOWED fields (NULL-terminated); NULL
 * with a 400 in REP. */
struct json_object *vpd_body_read(struct vpd_request *r, struct vpd_reply *rep, const char *const *allowed);
/* OK, or false with the 400 of E in REP. */
bool vpd_fields_ok(bool ok, struct vpd_reply *rep, const struct vpd_body_error *e);

/* The routes of jobs and changes (routes.c puts them in its table). */
void vpd_get_jobs(struct vpd_request *r, struct vpd_reply *rep);
void vpd_get_job(struct vpd_request *r, struct vpd_reply *rep);
void vpd_post_pools(struct vpd_request *r, struct vpd_reply *rep);
void vpd_delete_pool(struct vpd_request *r, struct vpd_reply *rep);
void vpd_post_pool_start(struct vpd_request *r, struct vpd_reply *rep);
void vpd_post_pool_stop(struct vpd_request *r, struct vpd_reply *rep);
void vpd_post_vm_start(struct vpd_request *r, struct vpd_reply *rep);
void vpd_post_vm_stop(struct vpd_request *r, struct vpd_reply *rep);
void vpd_post_migrations(struct vpd_request *r, struct vpd_reply *rep);
void vpd_post_migration_resume(struct vpd_request *r, struct vpd_reply *rep);
void vpd_post_migration_abort(struct vpd_request *r, struct vpd_reply *rep);
void vpd_post_host_drain(struct vpd_request *r, struct vpd_reply *rep);
void vpd_post_host_resume(struct vpd_request *r, struct vpd_reply *rep);
/* The admin's changes of envs, hosts, images and profiles (admin.c). */
void vpd_post_envs(struct vpd_request *r, struct vpd_reply *rep);
void vpd_patch_env(struct vpd_request *r, struct vpd_reply *rep);
void vpd_delete_env(struct vpd_request *r, struct vpd_reply *rep);
void vpd_post_env_retire(struct vpd_request *r, struct vpd_reply *rep);
void vpd_delete_env_retire(struct vpd_request *r, struct vpd_reply *rep);
void vpd_post_hosts(struct vpd_request *r, struct vpd_reply *rep);
void vpd_delete_host(struct vpd_request *r, struct vpd_reply *rep);
void vpd_post_host_maintenance(struct vpd_request *r, struct vpd_reply *rep);
void vpd_post_images(struct vpd_request *r, struct vpd_reply *rep);
void vpd_delete_image(struct vpd_request *r, struct vpd_reply *rep);
void vpd_post_profiles(struct vpd_request *r, struct vpd_reply *rep);
void vpd_delete_profile(struct vpd_request *r, struct vpd_reply *rep);

#define VPD_JOB_ROUTES                                                                                          \
        { "GET", "/v1/jobs", VP_ROLE_VIEWER, vpd_get_jobs, FILTERS("kind", "state", "pool", "actor") },        \
        { "GET", "/v1/jobs/{id}", VP_ROLE_VIEWER, vpd_get_job, NULL },                                          \
        { "POST", "/v1/pools", VP_ROLE_ADMIN, vpd_post_pools, NULL },                                           \
        { "DELETE", "/v1/pools/{pool}", VP_ROLE_ADMIN, vpd_delete_pool, NULL },                                 \
        { "POST", "/v1/pools/{pool}/start", VP_ROLE_OPERATOR, vpd_post_pool_start, NULL },                      \
        { "POST", "/v1/pools/{pool}/stop", VP_ROLE_OPERATOR, vpd_post_pool_stop, NULL },                        \
        { "POST", "/v1/pools/{pool}/migrations", VP_ROLE_OPERATOR, vpd_post_migrations, NULL },                 \
        { "POST", "/v1/vms/{vm}/start", VP_ROLE_OPERATOR, vpd_post_vm_start, NULL },                            \
        { "POST", "/v1/vms/{vm}/stop", VP_ROLE_OPERATOR, vpd_post_vm_stop, NULL },                              \
        { "POST", "/v1/migrations/{id}/resume", VP_ROLE_OPERATOR, vpd_post_migration_resume, NULL },            \
        { "POST", "/v1/migrations/{id}/abort", VP_ROLE_OPERATOR, vpd_post_migration_abort, NULL },              \
        { "POST", "/v1/envs/{env}/hosts/{host}/drain", VP_ROLE_OPERATOR, vpd_post_host_drain, NULL },           \
        { "POST", "/v1/envs/{env}/hosts/{host}/resume", VP_ROLE_OPERATOR, vpd_post_host_resume, NULL },        \
        { "POST", "/v1/envs/{env}/hosts/{host}/maintenance", VP_ROLE_OPERATOR, vpd_post_host_maintenance, NULL }, \
        { "POST", "/v1/envs", VP_ROLE_ADMIN, vpd_post_envs, NULL },                                             \
        { "PATCH", "/v1/envs/{env}", VP_ROLE_ADMIN, vpd_patch_env, NULL },                                      \
        { "DELETE", "/v1/envs/{env}", VP_ROLE_ADMIN, vpd_delete_env, NULL },                                    \
        { "POST", "/v1/envs/{env}/retire", VP_ROLE_ADMIN, vpd_post_env_retire, NULL },                          \
        { "DELETE", "/v1/envs/{env}/retire", VP_ROLE_ADMIN, vpd_delete_env_retire, NULL },                      \
        { "POST", "/v1/envs/{env}/hosts", VP_ROLE_ADMIN, vpd_post_hosts, NULL },                                \
        { "DELETE", "/v1/envs/{env}/hosts/{host}", VP_ROLE_ADMIN, vpd_delete_host, NULL },                      \
        { "POST", "/v1/images", VP_ROLE_ADMIN, vpd_post_images, NULL },                                         \
        { "DELETE", "/v1/images/{image}", VP_ROLE_ADMIN, vpd_delete_image, NULL },                              \
        { "POST", "/v1/profiles", VP_ROLE_ADMIN, vpd_post_profiles, NULL },                                     \
        { "DELETE", "/v1/profiles/{profile}", VP_ROLE_ADMIN, vpd_delete_profile, NULL }

/* The OpenAPI document served at /v1/openapi.json (openapi.c). */
struct json_object *vpd_openapi(void);

/* ARRAY (taken) as the page R's query asks for, filtered by the route's
 * filters: {"items", "total", "offset", "limit"}. */
void vpd_list_reply(struct vpd_request *r, struct vpd_reply *rep, struct json_object *array);
/* Path parameter 0 as an id (a positive integer); false with a 400. */
bool vpd_param_id(struct vpd_request *r, struct vpd_reply *rep, const char *what, int64_t *id);
/* Path parameter I as a name of WHAT, checked as the CLI checks it; false with a 400. */
bool vpd_param_name(struct vpd_request *r, struct vpd_reply *rep, size_t i, const char *what);
