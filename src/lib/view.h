/* Views: what vpool shows of its catalog, storage and hypervisors, read
 * through the library and built as the JSON documents docs/json.md
 * describes, so that every front end (the CLI's --json and its tables, a
 * service) serves the same shapes.
 *
 * Functions returning int fill *ret with a new JSON value the caller owns
 * (json_object_put) and return 0, or return a negative errno with ERR
 * filled and *ret untouched. */
#pragma once
#include <json-c/json.h>
#include <time.h>

#include "core.h"
#include "fsck.h"
#include "history.h"
#include "migrate.h"
#include "model.h"

/* ---- envs, images, profiles -------------------------------------------- */

/* The document of one image or profile row. */
struct json_object *vp_image_json(const struct vp_image *im);
struct json_object *vp_profile_json(const struct vp_profile *p);

/* Every env / image / profile, ordered by id: an array of their documents. */
int vp_env_list(struct vp_ctx *ctx, struct json_object **ret, struct vp_error *err);
int vp_image_list(struct vp_ctx *ctx, struct json_object **ret, struct vp_error *err);
int vp_profile_list(struct vp_ctx *ctx, struct json_object **ret, struct vp_error *err);

/* One by name (-ENOENT "unknown env 'NAME'"). An env's document counts
 * the pools on it. */
int vp_env_describe(struct vp_ctx *ctx, const char *name, struct json_object **ret, struct vp_error *err);
/* The hosts of env ENV, by name: each as recorded (its VMs counted) and,
 * when LIVE, as its libvirt says now (reachable or since when not, CPUs,
 * memory and free memory, domains defined and running). The env's
 * document (vp_env_describe) holds them live as "hosts". */
int vp_env_hosts_describe(struct vp_ctx *ctx, const char *env, bool live, struct json_object **ret,
                          struct vp_error *err);
int vp_image_describe(struct vp_ctx *ctx, const char *name, struct json_object **ret, struct vp_error *err);
int vp_profile_describe(struct vp_ctx *ctx, const char *name, struct json_object **ret, struct vp_error *err);

/* Re-check image NAME against its record (vp_image_verify): its name, ok,
 * the recorded and the actual SHA-256. */
int vp_image_check(struct vp_ctx *ctx, const char *name, struct json_object **ret, struct vp_error *err);

/* ---- pools and VMs ------------------------------------------------------ */

/* Which pools a list holds; NULL fields match every pool. An env or pool
 * named that does not exist is an error (-ENOENT) for ENV, an empty list
 * for NAME. */
struct vp_pool_filter {
        const char *name;
        const char *env;
};

/* The pools F selects, without their VMs. */
int vp_pool_list(struct vp_ctx *ctx, const struct vp_pool_filter *f, struct json_object **ret, struct vp_error *err);
/* Pool NAME with its VMs (each as vp_vm_describe shows it). */
int vp_pool_describe(struct vp_ctx *ctx, const char *name, struct json_object **ret, struct vp_error *err);

/* The VMs of POOL (NULL: of every pool; an unknown pool is -ENOENT), each
 * as vp_vm_describe shows it. */
int vp_vm_list(struct vp_ctx *ctx, const char *pool, struct json_object **ret, struct vp_error *err);
/* VM NAME: its identity and owner in the catalog, its live state on its
 * env, and its manifest on shared storage (which fencing goes by). */
int vp_vm_describe(struct vp_ctx *ctx, const char *name, struct json_object **ret, struct vp_error *err);

/* The pool VM belongs to, and the pool migration ID moves (malloc'd in
 * *ret); -ENOENT when there is no such VM or migration. On catalog C alone,
 * for the history's own connection. */
int vp_vm_pool_name(struct vp_catalog *c, const char *vm, char **ret, struct vp_error *err);
int vp_migration_pool_name(struct vp_catalog *c, int64_t id, char **ret, struct vp_error *err);

/* ---- migrations --------------------------------------------------------- */

/* Every migration, ordered by id, without its VMs. */
int vp_migration_list(struct vp_ctx *ctx, struct json_object **ret, struct vp_error *err);
/* The estate at a glance, as the console's first view shows it: every env
 * with its hosts asked live, every pool with its VMs counted by state (one
 * call per host, whatever the VMs' number), the migrations not over. */
int vp_estate(struct vp_ctx *ctx, struct json_object **ret, struct vp_error *err);
/* Migration ID with its VMs and its effective state. */
int vp_migration_status(struct vp_ctx *ctx, int64_t id, struct json_object **ret, struct vp_error *err);

/* Migration ID as stored (-ENOENT "unknown migration ID"); free with
 * vp_row_clear(&vp_table_migration, ret). */
int vp_migration_get(struct vp_ctx *ctx, int64_t id, struct vp_migration *ret, struct vp_error *err);
/* M's state as a reader should see it: a migration stored as running that
 * no process works on any more is INTERRUPTED (asking takes its pool's
 * lock for an instant). */
enum vp_migration_state vp_migration_effective_state(struct vp_ctx *ctx, const struct vp_migration *m);

/* How far the VMs of a migration got. */
struct vp_migration_progress {
        size_t total;                   /* its VMs */
        size_t reached[VP_STEP_MAX];    /* VMs at a step or past it (returned: at it) */
        size_t failed;                  /* VMs whose last step failed */
};
int vp_migration_progress(struct vp_ctx *ctx, int64_t id, struct vp_migration_progress *ret, struct vp_error *err);

/* The journal entries of migration ID after entry AFTER, oldest first: an
 * array of *ret_n rows (free with vp_rows_free(&vp_table_journal, ...)). */
int vp_migration_journal_since(struct vp_ctx *ctx, int64_t id, int64_t after, struct vp_journal **ret,
                               size_t *ret_n, struct vp_error *err);

/* One event of a migration's stream: VM (NULL for the migration itself)
 * reached STEP at T seconds with GENERATION, or failed with ERROR. */
struct json_object *vp_migration_event_json(int64_t id, const char *vm, const char *step, double t, int64_t generation,
                                            const char *error);

/* The outcome of a migration's run, the last line of its event stream:
 * the STATE it ended in, DONE of its TOTAL VMs landed (negative: not
 * known), ERROR why it stopped short (NULL: none). */
struct json_object *vp_migration_outcome_json(int64_t id, const char *state, int64_t done, int64_t total,
                                              const char *error);

/* The plan of a migration (a dry run's result). */
struct json_object *vp_plan_json(const struct vp_plan *pl);

/* ---- tokens -------------------------------------------------------------- */

/* The document of token T: its name, role, when it was made and last
 * used; never its hash. */
struct json_object *vp_token_json(const struct vp_token *t);
/* Every token, ordered by id: an array of their documents. */
int vp_token_list_json(struct vp_ctx *ctx, struct json_object **ret, struct vp_error *err);
/* What making token T prints, once: its name, role, SECRET and when it was made. */
struct json_object *vp_token_added_json(const struct vp_token *t, const char *secret);

/* ---- fsck and history --------------------------------------------------- */

/* REP of a check (REPAIR: and repair). */
struct json_object *vp_fsck_json(const struct vp_fsck_report *rep, bool repair);

/* One event of the catalog's stream (docs/json.md, event). */
struct json_object *vp_event_json(const struct vp_event *e);

/* LOG as an array: commands and migration steps, oldest first. */
struct json_object *vp_history_json(const struct vp_history_log *log);
