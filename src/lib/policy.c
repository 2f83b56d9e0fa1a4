#include "policy.h"

#include <ctype.h>
#include <string.h>

#include "history.h"
#include "name.h"

/* ---- a daily time window ---- */

/* "HH:MM" at S into *RET minutes; MAX_HOUR 24 allows 24:00 alone. */
static bool parse_hhmm(const char *s, int max_hour, int *ret)
{
        if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) || s[2] != ':' ||
            !isdigit((unsigned char)s[3]) || !isdigit((unsigned char)s[4]))
                return false;
        int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
        if (m > 59 || h > max_hour || (h == 24 && m != 0))
                return false;
        *ret = h * 60 + m;
        return true;
}

int vp_window_parse(const char *s, struct vp_window *ret, struct vp_error *err)
{
        if (!s || !*s) {
                *ret = (struct vp_window){ .any = true };
                return 0;
        }
        char pb[64];
        int start, end;
        if (strlen(s) != 11 || s[5] != '-' || !parse_hhmm(s, 23, &start) || !parse_hhmm(s + 6, 24, &end))
                return vp_err(err, -EINVAL, "invalid window '%s': expected HH:MM-HH:MM, from 00:00 to 24:00",
                              vp_printable(s, pb, sizeof(pb)));
        end %= 24 * 60;
        if (start == end)
                return vp_err(err, -EINVAL, "invalid window '%s': it ends where it starts (no window means any time)",
                              s);
        *ret = (struct vp_window){ .start = start, .end = end };
        return 0;
}

bool vp_window_contains(const struct vp_window *w, int minute)
{
        if (w->any)
                return true;
        if (w->start < w->end)
                return minute >= w->start && minute < w->end;
        return minute >= w->start || minute < w->end;
}

int vp_local_minute(time_t t)
{
        struct tm tm;
        localtime_r(&t, &tm);
        return tm.tm_hour * 60 + tm.tm_min;
}

/* ---- a wave ---- */

size_t vp_wave_pick(const struct vp_wave_pool *pools, size_t n, size_t wave, size_t *ret)
{
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
                if (pools[i].moving)
                        return 0;
        /* By name, an insertion at a time: a wave is chosen among an env's
         * pools, a few hundred at most. */
        for (size_t i = 0; i < n; i++) {
                if (!pools[i].movable || pools[i].failed)
                        continue;
                size_t at = k++;
                for (; at > 0 && strcmp(pools[ret[at - 1]].name, pools[i].name) > 0; at--)
                        ret[at] = ret[at - 1];
                ret[at] = i;
        }
        return k < wave ? k : wave;
}

/* ---- the settings ---- */

enum vp_on_maintenance vp_env_on_maintenance(const struct vp_env *e)
{
        enum vp_on_maintenance m = vp_on_maintenance_from_string(e->on_maintenance);
        return m < 0 ? VP_ON_MAINTENANCE_DEFAULT : m;
}

int vp_on_maintenance_parse(const char *word, struct vp_error *err)
{
        if (vp_on_maintenance_from_string(word) >= 0)
                return 0;
        _cleanup_free_ char *words = vp_on_maintenance_list(", ");
        char pb[64];
        return vp_err(err, -EINVAL, "invalid --on-maintenance '%s': expected one of %s",
                      vp_printable(word ? word : "", pb, sizeof(pb)), words);
}

int vp_retirement_of(struct vp_ctx *ctx, int64_t env_id, struct vp_retirement *ret, struct vp_error *err)
{
        char idbuf[24];
        snprintf(idbuf, sizeof(idbuf), "%lld", (long long)env_id);
        return vp_row_get(ctx->cat, &vp_table_retirement, "env_id", idbuf, ret, err);
}

/* The env named NAME into *RET, its name checked first. */
static int get_env(struct vp_ctx *ctx, const char *name, struct vp_env *ret, struct vp_error *err)
{
        int r = vp_name_check("env", name, err);
        return r < 0 ? r : vp_row_get(ctx->cat, &vp_table_env, "name", name, ret, err);
}

/* Refuse chains: a target that is itself retiring, or an env that still
 * takes the pools of another's retirement. */
static int check_chain(struct vp_ctx *ctx, const struct vp_env *e, const struct vp_env *to, struct vp_error *err)
{
        struct vp_retirement rt = { 0 };
        int r = vp_retirement_of(ctx, to->id, &rt, NULL);
        if (r >= 0 && vp_retire_state_from_string(rt.state) == VP_RETIRE_RETIRING)
                r = vp_err(err, -EINVAL, "env '%s' is itself retiring; cannot retire env '%s' to it", to->name,
                           e->name);
        else
                r = 0;
        vp_row_clear(&vp_table_retirement, &rt);
        if (r < 0)
                return r;
        struct vp_retirement *rows = NULL;
        size_t n = 0;
        char idbuf[24];
        snprintf(idbuf, sizeof(idbuf), "%lld", (long long)e->id);
        r = vp_row_list(ctx->cat, &vp_table_retirement, "to_env_id", idbuf, (void **)&rows, &n, err);
        for (size_t i = 0; r >= 0 && i < n; i++)
                if (vp_retire_state_from_string(rows[i].state) == VP_RETIRE_RETIRING)
                        r = vp_err(err, -EINVAL, "env '%s' is retiring to env '%s'; cannot retire env '%s' before it "
                                   "completes (or 'vpool env retire %s --cancel')", rows[i].env, e->name, e->name,
                                   rows[i].env);
        vp_rows_free(&vp_table_retirement, rows, n);
        return r;
}

/* The new row of A: every reference resolved, every value checked. */
static int retire_row(struct vp_ctx *ctx, const struct vp_retire_args *a, struct vp_retirement *rt,
                      struct vp_error *err)
{
        struct vp_env e = { 0 }, to = { 0 };
        struct vp_profile p = { 0 };
        struct vp_window w;
        int r = get_env(ctx, a->env, &e, err);
        if (r >= 0 && a->to && streq(a->to, a->env))
                r = vp_err(err, -EINVAL, "cannot retire env '%s' to itself", a->env);
        if (r >= 0)
                r = get_env(ctx, a->to, &to, err);
        if (r >= 0 && a->profile && (r = vp_name_check("profile", a->profile, err)) >= 0)
                r = vp_row_get(ctx->cat, &vp_table_profile, "name", a->profile, &p, err);
        if (r >= 0)
                r = vp_window_parse(a->window, &w, err);
        if (r >= 0 && (a->wave < 1 || a->wave > VP_RETIRE_WAVE_MAX))
                r = vp_err(err, -ERANGE, "invalid wave %lld: from 1 to %d pools", (long long)a->wave,
                           VP_RETIRE_WAVE_MAX);
        if (r >= 0)
                r = check_chain(ctx, &e, &to, err);
        if (r >= 0)
                *rt = (struct vp_retirement){
                        .env = vp_strdup(e.name), .env_id = e.id, .to_env_id = to.id, .profile_id = p.id,
                        .time_window = vp_strdup(a->window ? a->window : ""), .wave = a->wave, .report = a->report,
                        .state = vp_strdup(vp_retire_state_to_string(VP_RETIRE_RETIRING)), .created = vp_now_iso(),
                        .completed = vp_strdup(""),
                };
        vp_row_clear(&vp_table_env, &e);
        vp_row_clear(&vp_table_env, &to);
        vp_row_clear(&vp_table_profile, &p);
        return r;
}

int vp_env_retire(struct vp_ctx *ctx, const struct vp_retire_args *a, struct vp_error *err)
{
        struct vp_retirement rt = { 0 }, old = { 0 };
        int r = retire_row(ctx, a, &rt, err);
        if (r < 0)
                return r;
        /* Asked again: a new row, so the daemon starts this one afresh. */
        if ((r = vp_catalog_begin(ctx->cat, err)) >= 0) {
                if (vp_retirement_of(ctx, rt.env_id, &old, NULL) >= 0)
                        r = vp_row_delete(ctx->cat, &vp_table_retirement, old.id, err);
                if (r >= 0 && (r = vp_row_insert(ctx->cat, &vp_table_retirement, &rt, err)) >= 0)
                        r = vp_catalog_commit(ctx->cat, err);
                if (r < 0)
                        vp_catalog_rollback(ctx->cat);
        }
        vp_row_clear(&vp_table_retirement, &old);
        vp_row_clear(&vp_table_retirement, &rt);
        return r;
}

int vp_env_unretire(struct vp_ctx *ctx, const char *env, struct vp_error *err)
{
        struct vp_env e = { 0 };
        struct vp_retirement rt = { 0 };
        int r = get_env(ctx, env, &e, err);
        if (r >= 0 && vp_retirement_of(ctx, e.id, &rt, NULL) < 0)
                r = vp_err(err, -ENOENT, "env '%s' is not retiring", env);
        if (r >= 0)
                r = vp_row_delete(ctx->cat, &vp_table_retirement, rt.id, err);
        vp_row_clear(&vp_table_retirement, &rt);
        vp_row_clear(&vp_table_env, &e);
        return r;
}

int vp_retirement_complete(struct vp_ctx *ctx, struct vp_retirement *rt, struct vp_error *err)
{
        free(rt->state);
        rt->state = vp_strdup(vp_retire_state_to_string(VP_RETIRE_COMPLETE));
        free(rt->completed);
        rt->completed = vp_now_iso();
        return vp_row_update(ctx->cat, &vp_table_retirement, rt, err);
}

char *vp_retirement_label(struct vp_ctx *ctx, const struct vp_retirement *rt)
{
        struct vp_env to = { 0 };
        vp_row_get_id(ctx->cat, &vp_table_env, rt->to_env_id, &to, NULL);
        char *s = vp_strdupf("env %s retiring to %s, window %s", rt->env, to.name ? to.name : "?",
                             *rt->time_window ? rt->time_window : "any time");
        vp_row_clear(&vp_table_env, &to);
        return s;
}

/* ---- what the policies read ---- */

bool vp_host_moving_off(struct vp_ctx *ctx, const char *env, const char *host)
{
        struct vp_history *hs = NULL;
        size_t n = 0;
        bool found = false;
        if (vp_row_list(ctx->cat, &vp_table_history, "outcome", "running", (void **)&hs, &n, NULL) < 0)
                return false;
        _cleanup_free_ char *both = vp_strdupf("%s/%s", env, host);
        /* The CLI's drains name the env (the host is in the command); the
         * API's and the policies' name "ENV/HOST", as an evacuation does. */
        for (size_t i = 0; i < n && !found; i++)
                found = ((streq(hs[i].verb, "drain") && (streq(hs[i].subject, env) || streq(hs[i].subject, both))) ||
                         (streq(hs[i].verb, "evacuate") && streq(hs[i].subject, both))) &&
                        streq(vp_history_outcome(&hs[i]), "running");
        vp_rows_free(&vp_table_history, hs, n);
        return found;
}

int vp_pool_moves(struct vp_ctx *ctx, const struct vp_pool *p, bool *ret_moving, bool *ret_partial,
                  struct vp_error *err)
{
        struct vp_migration *ms = NULL;
        size_t n = 0;
        char idbuf[24];
        snprintf(idbuf, sizeof(idbuf), "%lld", (long long)p->id);
        int r = vp_row_list(ctx->cat, &vp_table_migration, "pool_id", idbuf, (void **)&ms, &n, err);
        if (r < 0)
                return r;
        *ret_moving = *ret_partial = false;
        for (size_t i = 0; i < n; i++) {
                enum vp_migration_state s = vp_migration_state_from_string(ms[i].state);
                *ret_moving |= s == VP_MIGRATION_RUNNING;
                *ret_partial |= s == VP_MIGRATION_PARTIAL;
        }
        vp_rows_free(&vp_table_migration, ms, n);
        return 0;
}
