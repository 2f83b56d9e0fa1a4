/* fsck: check the invariants of the design brief across the catalog, the
 * manifests on shared storage and the domain lists of every host of every
 * env, and say exactly where they disagree. Reads only. */
#pragma once
#include "core.h"

struct vp_problem {
        char kind[32];          /* stable word: delta-shared, owner-mismatch, foreign-backing, ... */
        char subject[300];      /* the delta, VM, domain or file concerned */
        char detail[600];
        bool repaired;          /* --repair removed its cause */
};

struct vp_fsck_report {
        struct vp_problem *problems;
        size_t n, cap;
        size_t deltas, domains, vms, envs, hosts;
};

/* Returns 0 (the report says whether it is clean) or -errno when the check
 * itself could not run (the report then empty). A VM's domain belongs on
 * the host the catalog records for it (any host of its env when it records
 * none). With REPAIR, stale domains (vpool's definitions of a VM that lives
 * on another host now, or of no VM of the catalog) are destroyed and
 * undefined while the VM's own definition is where the catalog places it,
 * and nothing else is touched. */
int vp_fsck(struct vp_ctx *ctx, bool repair, struct vp_fsck_report *rep, struct vp_error *err);
void vp_fsck_report_free(struct vp_fsck_report *rep);
