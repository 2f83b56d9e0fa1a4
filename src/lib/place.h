/* Placement: which host of an env takes each VM of a pool create or a
 * migration. Hosts are filtered (they answer, are not in maintenance,
 * offer the profile's hardware, are among those asked for), then weighed
 * by the memory left after what this operation placed so far (spread: the
 * most; pack: the least that still fits). A VM that will run needs its
 * memory free on its host; every VM counts its memory as placed there, so
 * VMs that are only defined spread too. Hosts are taken in name order, so
 * the same input gives the same placement. */
#pragma once
#include "core.h"

struct vp_place_host {
        struct vp_host host;           /* its row (owned) */
        virConnectPtr conn;            /* the ctx's; NULL when it does not answer */
        bool eligible;
        char why[1024];                /* why not eligible */
        int64_t free_kib;              /* free memory when placement began */
        int64_t placed_kib;            /* the memory of every VM placed there */
        int64_t running_kib;           /* that of the ones that will run */
        size_t placed;
};

struct vp_placer {
        char env[64];
        enum vp_placement how;
        struct vp_place_host *h;
        size_t n;
};

/* Which hosts may take VMs: every host of the env but EXCLUDE (0: none),
 * and, when NONLY > 0, only those named in ONLY. */
struct vp_place_filter {
        int64_t exclude;
        const char *const *only;
        size_t nonly;
};

/* The placer of ENV for profile P: its hosts connected, filtered. -ENOENT
 * when F names a host the env does not have. */
int vp_placer_init(struct vp_ctx *ctx, const struct vp_env *env, const struct vp_profile *p, enum vp_placement how,
                   const struct vp_place_filter *f, struct vp_placer *ret, struct vp_error *err);
void vp_placer_free(struct vp_placer *pl);

/* The index of the host that takes a VM of MEM_KIB (RUNNING: it will run),
 * counted as placed there; -ENOSPC naming the shortfall when no host can. */
int vp_place(struct vp_placer *pl, int64_t mem_kib, bool running, struct vp_error *err);

/* The pure choice behind vp_place: the index of the host of H[0..N) that
 * HOW picks for a VM of MEM_KIB, or -1 when none can take it. */
int vp_place_pick(const struct vp_place_host *h, size_t n, enum vp_placement how, int64_t mem_kib, bool running);

/* Before anything is placed: whether the eligible hosts together could
 * hold NRUNNING running VMs of MEM_KIB each (-ENOSPC naming the shortfall),
 * and whether any host is eligible at all (-EOPNOTSUPP naming why each is
 * not). */
int vp_placer_check(const struct vp_placer *pl, size_t nrunning, int64_t mem_kib, struct vp_error *err);
