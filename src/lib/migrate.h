/* Moving a pool to another environment and other virtual hardware by
 * handing over its user deltas: a journaled, resumable state machine per VM
 * (see the design brief). */
#pragma once
#include "core.h"

struct vp_migrate_args {
        const char *pool;
        const char *to_env;
        const char *profile;       /* NULL: the source's */
        int parallel;              /* 0: default */
        int shutdown_timeout;      /* seconds, graceful before forced */
        bool dry_run;
        const char *source_fenced; /* the unreachable source env the operator says is powered off, or NULL */
        enum vp_placement placement;
        const char *from_host;     /* a host of the pool's env: only its VMs move (its drain), never to it */
        const char *const *to_hosts;  /* only these hosts of the target take VMs (none: any) */
        size_t nto_hosts;
        bool live;                 /* a running VM whose env and hardware stay moves live */
        bool accept_nic_rename;    /* move a guest whose network names its NIC, which the move renames */
        /* A fence of the unreachable from_host its caller already ran (a
         * policy's evacuation, which fences before it moves anything):
         * recorded as this migration's, the agent not run again. */
        const struct vp_fence *fenced;
};

/* One line of the plan: a VM and what changes for it. */
struct vp_plan_vm {
        char vm[64];
        char from_env[64];
        char from_host[64];
        char to_env[64];
        char to_host[64];          /* the host placement gave it */
        bool running;
        bool unreachable;          /* its env did not answer: fenced by the operator or to be by its agent */
};

/* A host of the target as placement saw it. */
struct vp_plan_host {
        char name[64];
        bool eligible;
        char why[1024];            /* why it takes no VM */
        int64_t memory_free_mib;   /* free when placement began */
        int64_t memory_needed_mib; /* by the VMs placed there that will run */
        int64_t vms;               /* VMs placed there */
};

struct vp_plan {
        char pool[64];
        char from_env[64], to_env[64];
        char from_profile[64], to_profile[64];
        char diffs[8][128];        /* "machine: pc -> q35" */
        int ndiffs;
        struct vp_plan_vm *vms;
        size_t nvms;
        int64_t memory_needed_mib;
        int64_t memory_free_mib;
        struct vp_plan_host *hosts;
        size_t nhosts;
        char nic_rename[512];      /* what the guest's network loses by the move (vp_inspect_nic_rename); "" none */
};

/* Events a run reports while it works (may be called from worker threads,
 * one at a time). */
typedef void (*vp_migrate_event_fn)(void *ud, int64_t migration_id, const char *vm, const char *step,
                                    int64_t generation, const char *error);

/* Preflight A and fill *plan; with dry_run that is all. Otherwise allocate
 * the migration (*ret_id) and run it. Returns 0 when every VM landed,
 * -EAGAIN when the run ended partial (some VMs failed, all recoverable),
 * other negative errno when preflight refused (nothing changed). */
int vp_migrate(struct vp_ctx *ctx, const struct vp_migrate_args *a, struct vp_plan *plan,
               int64_t *ret_id, vp_migrate_event_fn ev, void *ud, struct vp_error *err);
void vp_plan_free(struct vp_plan *plan);

/* Finish an interrupted or partial migration from its journal.
 * SOURCE_FENCED, when not NULL, is the source env that does not answer and
 * the operator says is powered off. */
int vp_migrate_resume(struct vp_ctx *ctx, int64_t id, const char *source_fenced, vp_migrate_event_fn ev, void *ud,
                      struct vp_error *err);
/* Return every VM not yet handed over to its source, as it was. */
int vp_migrate_abort(struct vp_ctx *ctx, int64_t id, vp_migrate_event_fn ev, void *ud,
                     struct vp_error *err);

/* Whether a vpool process is working on migration ID right now. */
bool vp_migration_active(struct vp_ctx *ctx, int64_t id);
