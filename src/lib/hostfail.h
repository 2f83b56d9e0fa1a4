/* A host that stops answering: what its env's policy says to do
 * (`vpool env set ENV --on-host-failure ... --grace SEC`), when that is
 * due, and the evacuation itself — the host fenced first, then its VMs
 * moved cold, one migration per pool, to the env's other hosts or to
 * another env. vpoold decides when; the library does each step. */
#pragma once
#include "migrate.h"

/* An env's policy for a host that does not answer. */
struct vp_host_failure_policy {
        enum vp_host_failure action;
        char to_env[64];               /* evacuate:ENV; "" the env's other hosts */
};

/* TEXT as the operator types it: none, report, evacuate or evacuate:ENV
 * (ENV a name, not the env's own: checked by vp_env_set). */
int vp_host_failure_parse(const char *text, struct vp_host_failure_policy *ret, struct vp_error *err);
/* The policy as typed ("evacuate:west"), malloc'd. */
char *vp_host_failure_show(const struct vp_host_failure_policy *p);
/* E's policy and grace as its row records them (a row before schema 9,
 * or an empty word: none, the default grace). */
void vp_env_host_failure(const struct vp_env *e, struct vp_host_failure_policy *ret, int64_t *ret_grace);
/* --grace SEC: whole seconds, 1 to VP_HOST_FAILURE_GRACE_MAX. */
int vp_grace_parse(const char *text, int64_t *ret, struct vp_error *err);

/* Seconds a host has not answered at NOW, by its row's mark UNREACHABLE
 * (ISO 8601 UTC, as vp_now_iso writes it): -1 when it answers (no mark)
 * or the mark cannot be read; 0 for a mark in the future (a clock set
 * back). */
int64_t vp_host_down_for(const char *unreachable, time_t now);
/* Whether a host down for DOWN seconds is past GRACE: longer, not equal. */
bool vp_host_failure_due(int64_t down, int64_t grace);
/* Seconds before reconnection attempt ATTEMPT (0 the first after the
 * loss) to a host that does not answer: 1, 2, 4, 8, then every 10, so a
 * host that returns is seen well within any grace period. */
int vp_reconnect_backoff(unsigned attempt);
/* Seconds before a failed evacuation (the fence agent did not power the
 * host off, a migration failed) is tried again, after ATTEMPT failures
 * (1 the first): the grace period, doubling, at most an hour. */
int64_t vp_evacuate_retry_after(unsigned attempt, int64_t grace);

/* What vpool env set changes: NULL (false) leaves a setting as it is. */
struct vp_env_settings {
        const char *fence_cmd;         /* the agent as typed (fence.h) */
        bool no_fence_cmd;             /* take the agent away */
        const char *on_maintenance;    /* drain | report | none (policy.h) */
        const char *on_host_failure;   /* none | report | evacuate | evacuate:ENV */
        const char *grace;             /* seconds */
};
/* Change env NAME's settings S, every one checked before any is written
 * (one row update: a bad one changes nothing). evacuate:ENV names another
 * env that exists; S setting nothing is -EINVAL. */
int vp_env_set(struct vp_ctx *ctx, const char *name, const struct vp_env_settings *s, struct vp_error *err);

/* What the policy of host HOST's env would do now. */
struct vp_evac_plan {
        char env[64], host[64];
        char to_env[64];               /* where the VMs go: the env itself, or evacuate:ENV's */
        enum vp_host_failure action;
        int64_t grace;
        int64_t down_for;              /* seconds it has not answered, -1 when it answers */
        char *fence_cmd;               /* the env's agent as typed, NULL when none */
        char **pools;                  /* pools with VMs on the host, to move (malloc'd strings) */
        size_t npools;
        char **busy;                   /* pools with VMs on it that an unfinished migration holds */
        size_t nbusy;
        size_t nvms;                   /* the VMs on the host of the pools to move */
};
/* The plan for host H of env E at NOW. */
int vp_evac_plan_load(struct vp_ctx *ctx, const struct vp_env *e, const struct vp_host *h, time_t now,
                      struct vp_evac_plan *ret, struct vp_error *err);
void vp_evac_plan_free(struct vp_evac_plan *p);
/* "host 'H' of env 'E' unreachable for N s" and what follows: the
 * history's reason (malloc'd). */
char *vp_evac_plan_reason(const struct vp_evac_plan *p);
/* What the plan does (WOULD: would do, in report mode): "fence it with
 * 'AGENT', then move 2 VMs (pools p1, p2) to the other hosts of env 'E'",
 * or why nothing moves (malloc'd). */
char *vp_evac_plan_what(const struct vp_evac_plan *p, bool would);

/* The evacuation's first step: the host still does not answer (one try),
 * and its env's fence agent powers it off. 0 with *RET the fence (fenced,
 * exit 0); -EAGAIN when the host answers again (nothing to fence),
 * -ENOEXEC when the env has no agent, -EHOSTDOWN when the agent did not
 * fence it (*RET says how it ended): nothing moves then. *RET is filled
 * whenever the agent ran (free with vp_row_clear(&vp_table_fence, ...)). */
int vp_evac_fence(struct vp_ctx *ctx, const struct vp_evac_plan *p, struct vp_fence *ret, struct vp_error *err);
/* "fence agent exit 0" and the like, for the reason (malloc'd). */
char *vp_evac_fence_outcome(const struct vp_fence *f);

/* Move the VMs of POOL off the plan's host, cold, to the plan's target,
 * as migration *RET_ID (set once allocated: EV sees it first), its source
 * fenced by F. The lease check before each hand-over is the migration's:
 * a disk still held keeps its VM waiting, the migration partial. The host
 * goes into maintenance first (nothing is placed there until the operator
 * ends it, once the host is back and checked). */
int vp_evac_pool(struct vp_ctx *ctx, const struct vp_evac_plan *p, const char *pool, const struct vp_fence *f,
                 vp_migrate_event_fn ev, void *ud, int64_t *ret_id, struct vp_error *err);
