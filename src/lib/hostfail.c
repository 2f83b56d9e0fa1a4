#include "hostfail.h"

#include <string.h>
#include <time.h>

#include "fence.h"
#include "host.h"
#include "migrate.h"
#include "name.h"
#include "parse.h"
#include "policy.h"

/* ---- the policy as typed ---------------------------------------------------- */

#define EVACUATE_TO "evacuate:"

int vp_host_failure_parse(const char *text, struct vp_host_failure_policy *ret, struct vp_error *err)
{
        char shown[64];
        struct vp_host_failure_policy p = { 0 };
        const char *colon = text ? strchr(text, ':') : NULL;
        if (colon && !strncmp(text, EVACUATE_TO, strlen(EVACUATE_TO))) {
                int k = vp_name_check("env", colon + 1, err);
                if (k < 0) {
                        vp_err_prefix(err, "--on-host-failure evacuate:ENV");
                        return k;
                }
                p.action = VP_HOST_FAILURE_EVACUATE;
                snprintf(p.to_env, sizeof(p.to_env), "%s", colon + 1);
        } else {
                int a = colon ? -EINVAL : vp_host_failure_from_string(text);
                if (a < 0)
                        return vp_err(err, -EINVAL, "unknown host-failure policy '%s': give none, report, evacuate or "
                                      "evacuate:ENV", vp_printable(text ? text : "", shown, sizeof(shown)));
                p.action = (enum vp_host_failure)a;
        }
        *ret = p;
        return 0;
}

char *vp_host_failure_show(const struct vp_host_failure_policy *p)
{
        const char *word = vp_host_failure_to_string(p->action);
        if (p->action == VP_HOST_FAILURE_EVACUATE && p->to_env[0])
                return vp_strdupf(EVACUATE_TO "%s", p->to_env);
        return vp_strdup(word ? word : "none");
}

void vp_env_host_failure(const struct vp_env *e, struct vp_host_failure_policy *ret, int64_t *ret_grace)
{
        int a = e->on_host_failure && *e->on_host_failure ? vp_host_failure_from_string(e->on_host_failure) : 0;
        *ret = (struct vp_host_failure_policy){ .action = a < 0 ? VP_HOST_FAILURE_NONE : (enum vp_host_failure)a };
        if (ret->action == VP_HOST_FAILURE_EVACUATE && e->evacuate_to)
                snprintf(ret->to_env, sizeof(ret->to_env), "%s", e->evacuate_to);
        if (ret_grace)
                *ret_grace = e->grace > 0 ? e->grace : VP_HOST_FAILURE_GRACE;
}

int vp_grace_parse(const char *text, int64_t *ret, struct vp_error *err)
{
        uint64_t v;
        int k = vp_parse_uint("--grace", text, 1, VP_HOST_FAILURE_GRACE_MAX, &v, err);
        if (k >= 0)
                *ret = (int64_t)v;
        return k;
}

/* ---- time ------------------------------------------------------------------- */

int64_t vp_host_down_for(const char *unreachable, time_t now)
{
        struct tm tm = { 0 };
        if (!unreachable || !*unreachable)
                return -1;
        const char *end = strptime(unreachable, "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (!end || *end)
                return -1;
        time_t since = timegm(&tm);
        return since > now ? 0 : (int64_t)(now - since);
}

bool vp_host_failure_due(int64_t down, int64_t grace)
{
        return down >= 0 && down > grace;
}

int vp_reconnect_backoff(unsigned attempt)
{
        return attempt < 4 ? 1 << attempt : 10;
}

int64_t vp_evacuate_retry_after(unsigned attempt, int64_t grace)
{
        int64_t s = grace > 0 ? grace : 1;
        for (unsigned i = 1; i < attempt && s < 3600; i++)
                s *= 2;
        return s < 3600 ? s : 3600;
}

/* ---- env set ------------------------------------------------------------------ */

/* S checked against E: a fence agent parsed into *FENCE, a policy and a
 * grace read; evacuate:ENV names another env that exists. */
static int check_settings(struct vp_ctx *ctx, const struct vp_env *e, const struct vp_env_settings *s, char **fence,
                          struct vp_host_failure_policy *pol, int64_t *grace, struct vp_error *err)
{
        int k;
        if (!s->fence_cmd && !s->no_fence_cmd && !s->on_maintenance && !s->on_host_failure && !s->grace)
                return vp_err(err, -EINVAL, "nothing to set for env '%s'", e->name);
        if (s->fence_cmd && s->no_fence_cmd)
                return vp_err(err, -EINVAL, "give either a fence agent or none, not both");
        if (s->fence_cmd && (k = vp_fence_cmd_parse(s->fence_cmd, fence, err)) < 0)
                return k;
        if (s->on_maintenance && (k = vp_on_maintenance_parse(s->on_maintenance, err)) < 0)
                return k;
        if (s->grace && (k = vp_grace_parse(s->grace, grace, err)) < 0)
                return k;
        if (!s->on_host_failure)
                return 0;
        if ((k = vp_host_failure_parse(s->on_host_failure, pol, err)) < 0)
                return k;
        if (!pol->to_env[0])
                return 0;
        if (streq(pol->to_env, e->name))
                return vp_err(err, -EINVAL, "--on-host-failure evacuate:%s names env '%s' itself; 'evacuate' moves "
                              "VMs to its other hosts", pol->to_env, e->name);
        struct vp_env to = { 0 };
        k = vp_row_get(ctx->cat, &vp_table_env, "name", pol->to_env, &to, err);
        vp_row_clear(&vp_table_env, &to);
        if (k < 0)
                vp_err_prefix(err, "--on-host-failure evacuate:%s", pol->to_env);
        return k;
}

int vp_env_set(struct vp_ctx *ctx, const char *name, const struct vp_env_settings *s, struct vp_error *err)
{
        struct vp_env e = { 0 };
        _cleanup_free_ char *fence = NULL;
        struct vp_host_failure_policy pol = { 0 };
        int64_t grace = 0;
        int k;
        if ((k = vp_name_check("env", name, err)) < 0 ||
            (k = vp_row_get(ctx->cat, &vp_table_env, "name", name, &e, err)) < 0)
                return k;
        if ((k = check_settings(ctx, &e, s, &fence, &pol, &grace, err)) >= 0) {
                if (s->fence_cmd || s->no_fence_cmd) {
                        free(e.fence_cmd);
                        e.fence_cmd = TAKE_PTR(fence);
                }
                if (s->on_maintenance) {
                        free(e.on_maintenance);
                        e.on_maintenance = vp_strdup(s->on_maintenance);
                }
                if (s->on_host_failure) {
                        free(e.on_host_failure);
                        free(e.evacuate_to);
                        e.on_host_failure = vp_strdup(vp_host_failure_to_string(pol.action));
                        e.evacuate_to = vp_strdup(pol.to_env);
                }
                if (s->grace)
                        e.grace = grace;
                else if (e.grace <= 0)
                        e.grace = VP_HOST_FAILURE_GRACE;
                k = vp_row_update(ctx->cat, &vp_table_env, &e, err);
        }
        vp_row_clear(&vp_table_env, &e);
        return k;
}

/* ---- the plan ------------------------------------------------------------------ */

static void add_name(char ***v, size_t *n, const char *name)
{
        char **grown = realloc(*v, (*n + 2) * sizeof(char *));
        if (!grown)
                abort();
        grown[(*n)++] = vp_strdup(name);
        grown[*n] = NULL;
        *v = grown;
}

/* The pools with VMs on host H, each either to move or busy. */
static int plan_pools(struct vp_ctx *ctx, const struct vp_host *h, struct vp_evac_plan *p, struct vp_error *err)
{
        void *rows = NULL;
        size_t n = 0;
        int k = vp_row_query(ctx->cat, &vp_table_pool, "id IN (SELECT pool_id FROM vms WHERE host_id = ?1)", h->id,
                             &rows, &n, err);
        struct vp_pool *pools = rows;
        for (size_t i = 0; i < n && k >= 0; i++) {
                if (vp_pool_state_from_string(pools[i].state) == VP_POOL_MIGRATING) {
                        add_name(&p->busy, &p->nbusy, pools[i].name);
                        continue;
                }
                add_name(&p->pools, &p->npools, pools[i].name);
        }
        vp_rows_free(&vp_table_pool, rows, n);
        if (k < 0)
                return k;
        void *vms = NULL;
        size_t nvms = 0;
        k = vp_row_query(ctx->cat, &vp_table_vm,
                         "host_id = ?1 AND pool_id NOT IN (SELECT id FROM pools WHERE state = 'migrating')", h->id,
                         &vms, &nvms, err);
        vp_rows_free(&vp_table_vm, vms, nvms);
        p->nvms = nvms;
        return k;
}

int vp_evac_plan_load(struct vp_ctx *ctx, const struct vp_env *e, const struct vp_host *h, time_t now,
                      struct vp_evac_plan *ret, struct vp_error *err)
{
        struct vp_evac_plan p = { 0 };
        struct vp_host_failure_policy pol;
        vp_env_host_failure(e, &pol, &p.grace);
        p.action = pol.action;
        snprintf(p.env, sizeof(p.env), "%s", e->name);
        snprintf(p.host, sizeof(p.host), "%s", h->name);
        snprintf(p.to_env, sizeof(p.to_env), "%s", pol.to_env[0] ? pol.to_env : e->name);
        p.down_for = vp_host_down_for(h->unreachable, now);
        p.fence_cmd = e->fence_cmd && *e->fence_cmd ? vp_fence_cmd_show(e->fence_cmd) : NULL;
        int k = plan_pools(ctx, h, &p, err);
        if (k < 0) {
                vp_evac_plan_free(&p);
                return k;
        }
        *ret = p;
        return 0;
}

void vp_evac_plan_free(struct vp_evac_plan *p)
{
        for (size_t i = 0; i < p->npools; i++)
                free(p->pools[i]);
        for (size_t i = 0; i < p->nbusy; i++)
                free(p->busy[i]);
        free(p->pools);
        free(p->busy);
        free(p->fence_cmd);
        memset(p, 0, sizeof(*p));
}

char *vp_evac_plan_reason(const struct vp_evac_plan *p)
{
        _cleanup_free_ char *who = vp_host_label(p->env, p->host);
        return vp_strdupf("%s unreachable for %lld s", who, (long long)p->down_for);
}

static char *joined(char *const *v, size_t n)
{
        char *out = vp_strdup("");
        for (size_t i = 0; i < n; i++) {
                char *next = vp_strdupf("%s%s%s", out, i ? ", " : "", v[i]);
                free(out);
                out = next;
        }
        return out;
}

char *vp_evac_plan_what(const struct vp_evac_plan *p, bool would)
{
        _cleanup_free_ char *pools = joined(p->pools, p->npools), *busy = joined(p->busy, p->nbusy);
        _cleanup_free_ char *where = streq(p->to_env, p->env) ? vp_strdupf("the other hosts of env '%s'", p->env)
                                                              : vp_strdupf("env '%s'", p->to_env);
        _cleanup_free_ char *held = p->nbusy ? vp_strdupf(" (pools %s wait for their unfinished migrations)", busy)
                                             : vp_strdup("");
        if (!p->npools)
                return vp_strdupf("no VM to move%s", held);
        if (!p->fence_cmd)
                return vp_strdupf("env '%s' has no fence agent, so %zu VMs (pools %s) stay where they are "
                                  "('vpool env set %s --fence-cmd PROG' gives it one)%s", p->env, p->nvms, pools,
                                  p->env, held);
        return vp_strdupf("%sfence it with '%s', then move %zu VMs (pools %s) to %s%s", would ? "would " : "",
                          p->fence_cmd, p->nvms, pools, where, held);
}

/* ---- the evacuation --------------------------------------------------------------- */

char *vp_evac_fence_outcome(const struct vp_fence *f)
{
        if (f->exit_status < 0)
                return vp_strdup("fence agent did not exit normally, not fenced");
        return vp_strdupf("fence agent exit %lld%s", (long long)f->exit_status, f->fenced ? "" : ", not fenced");
}

int vp_evac_fence(struct vp_ctx *ctx, const struct vp_evac_plan *p, struct vp_fence *ret, struct vp_error *err)
{
        struct vp_env e = { 0 };
        struct vp_host h = { 0 };
        _cleanup_free_ char *who = vp_host_label(p->env, p->host);
        int k = vp_env_host_get(ctx, p->env, p->host, &e, &h, err);
        if (k < 0)
                return k;
        virConnectPtr c = NULL;
        struct vp_error cerr = { 0 };
        if (!e.fence_cmd || !*e.fence_cmd) {
                k = vp_err(err, -ENOEXEC, "env '%s' has no fence agent: the VMs of %s are not moved ('vpool env set %s "
                           "--fence-cmd PROG' gives it one)", p->env, who, p->env);
        } else if (vp_hv_connect(h.uri, &c, &cerr) >= 0) {
                virConnectClose(c);
                vp_host_note_reachable(ctx, &h, true);
                k = vp_err(err, -EAGAIN, "%s answers again: nothing to evacuate", who);
        } else if ((k = vp_fence_run(&e, h.name, h.uri, ctx->fence_timeout, ret, err)) >= 0) {
                /* Whom it fenced: what each migration records it as. */
                ret->env_name = vp_strdup(e.name);
                ret->host_name = vp_strdup(h.name);
                _cleanup_free_ char *how = vp_evac_fence_outcome(ret);
                if (!ret->fenced)
                        k = vp_err(err, -EHOSTDOWN, "%s: %s: its VMs are not moved", who, how);
        }
        vp_row_clear(&vp_table_env, &e);
        vp_row_clear(&vp_table_host, &h);
        return k;
}

int vp_evac_pool(struct vp_ctx *ctx, const struct vp_evac_plan *p, const char *pool, const struct vp_fence *f,
                 vp_migrate_event_fn ev, void *ud, int64_t *ret_id, struct vp_error *err)
{
        int k = vp_env_host_set_maintenance(ctx, p->env, p->host, true, err);
        if (k < 0)
                return k;
        struct vp_migrate_args a = {
                .pool = pool, .to_env = p->to_env, .from_host = p->host, .fenced = f,
                .placement = VP_PLACE_SPREAD,
        };
        struct vp_plan plan;
        /* The host was found dead past its grace and fenced: the migration
         * does not wait for it again. */
        int grace = ctx->source_grace;
        ctx->source_grace = 0;
        k = vp_migrate(ctx, &a, &plan, ret_id, ev, ud, err);
        ctx->source_grace = grace;
        vp_plan_free(&plan);
        return k;
}
