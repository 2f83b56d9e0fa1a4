/* The policies vpoold applies by itself: what it does with a host of an env
 * put in maintenance, and the retirement of an env (its pools migrated to
 * another env, in waves, inside a daily time window). Here: the settings
 * and their checks, what the policies read of the catalog, and the pure
 * parts of their decisions; the daemon's loop (src/daemon/policy.c)
 * applies them. */
#pragma once
#include <time.h>

#include "core.h"

/* ---- a daily time window ---- */

/* Minutes since midnight: START included, END excluded; a window whose end
 * comes before its start crosses midnight. ANY: every minute of the day. */
struct vp_window {
        bool any;
        int start, end;
};

/* Parse "HH:MM-HH:MM" (hours 00 to 23, minutes 00 to 59; an end of 24:00
 * is midnight) into *RET; NULL or "" is any time. Refused (-EINVAL, the
 * message naming S): any other form, and a window that starts where it ends. */
int vp_window_parse(const char *s, struct vp_window *ret, struct vp_error *err);
/* Whether minute MINUTE of the day (0 to 1439) is inside W. */
bool vp_window_contains(const struct vp_window *w, int minute);
/* The minute of the day of T in the controller's local time. */
int vp_local_minute(time_t t);

/* ---- a wave ---- */

/* A pool of a retiring env as a wave sees it. */
struct vp_wave_pool {
        const char *name;
        bool moving;           /* a move of it runs, waits to be resumed, or was just asked */
        bool movable;          /* active, with no unfinished migration */
        bool failed;           /* a move of it failed in this retirement: left to the operator */
};

/* The next wave among the N POOLS: none while one of them moves (the wave
 * before has not ended), else at most WAVE pools movable and not failed, by
 * name. Their indexes go into RET (room for N); returns how many. */
size_t vp_wave_pick(const struct vp_wave_pool *pools, size_t n, size_t wave, size_t *ret);

/* ---- the settings ---- */

/* What vpoold does with env E's hosts in maintenance (its default when E
 * says nothing). */
enum vp_on_maintenance vp_env_on_maintenance(const struct vp_env *e);
/* WORD checked as a vp_on_maintenance word (--on-maintenance): 0, or
 * -EINVAL naming the words allowed. vp_env_set (hostfail.h) sets it. */
int vp_on_maintenance_parse(const char *word, struct vp_error *err);

/* The most pools a wave moves at once. */
#define VP_RETIRE_WAVE_MAX 256

struct vp_retire_args {
        const char *env;
        const char *to;
        const char *profile;   /* NULL: each pool keeps its own */
        const char *window;    /* NULL: any time */
        int64_t wave;          /* 1 to VP_RETIRE_WAVE_MAX */
        bool report;
};

/* Mark env A->env retiring to env A->to. Refused, with nothing changed:
 * an unknown env or profile, retiring an env to itself, a malformed
 * window, a wave out of range, a target that is itself retiring, an env
 * another env still retires to. An env already retiring starts afresh with
 * the new settings (what failed before is tried again). */
int vp_env_retire(struct vp_ctx *ctx, const struct vp_retire_args *a, struct vp_error *err);
/* Cancel env ENV's retirement, complete or not: no new wave starts (a move
 * already running ends as it would). -ENOENT when it has none. */
int vp_env_unretire(struct vp_ctx *ctx, const char *env, struct vp_error *err);
/* The retirement of env ENV_ID into *RET; -ENOENT when it has none. */
int vp_retirement_of(struct vp_ctx *ctx, int64_t env_id, struct vp_retirement *ret, struct vp_error *err);
/* Record that RT's env holds no pool any more: complete, now. */
int vp_retirement_complete(struct vp_ctx *ctx, struct vp_retirement *rt, struct vp_error *err);
/* "env e1 retiring to e2, window 22:00-06:00" (no window: "any time"). malloc'd. */
char *vp_retirement_label(struct vp_ctx *ctx, const struct vp_retirement *rt);

/* ---- what the policies read ---- */

/* Whether a process (the CLI, the API, a policy) is moving VMs off host
 * HOST of env ENV now, as the history's running rows say: a drain of the
 * env or the host, or the host-failure policy's evacuation of the host
 * (which puts it in maintenance before its first pool moves). */
bool vp_host_moving_off(struct vp_ctx *ctx, const char *env, const char *host);
/* Whether pool P is being moved (a migration of it is running, or was
 * interrupted and waits to be resumed: *RET_MOVING) or waits for an
 * operator (partial: *RET_PARTIAL). */
int vp_pool_moves(struct vp_ctx *ctx, const struct vp_pool *p, bool *ret_moving, bool *ret_partial,
                  struct vp_error *err);
