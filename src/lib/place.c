#include "place.h"

#include <string.h>

#include "host.h"

/* Whether host H may take VMs of profile P on ENV under filter F; *WHY
 * says why not. Its connection and free memory are read on the way. */
static void filter_host(struct vp_ctx *ctx, const struct vp_env *env, const struct vp_profile *p,
                        const struct vp_place_filter *f, bool sole, struct vp_place_host *h)
{
        bool asked = f->nonly == 0;
        for (size_t i = 0; i < f->nonly && !asked; i++)
                asked = streq(f->only[i], h->host.name);
        struct vp_error err = { 0 };
        if (h->host.id == f->exclude) {
                snprintf(h->why, sizeof(h->why), "host '%s' is the one the VMs leave", h->host.name);
                return;
        }
        if (!asked) {
                snprintf(h->why, sizeof(h->why), "host '%s' is not among those asked for", h->host.name);
                return;
        }
        if (h->host.maintenance) {
                snprintf(h->why, sizeof(h->why), "host '%s' is in maintenance", h->host.name);
                return;
        }
        /* The sole host of an env is the env, as the operator added it. */
        _cleanup_free_ char *label = sole ? vp_strdupf("env '%s'", env->name)
                                          : vp_strdupf("host '%s' of env '%s'", h->host.name, env->name);
        if (vp_ctx_conn_host(ctx, &h->host, &h->conn, &err) < 0) {
                h->conn = NULL;
                const char *cause = strstr(err.msg, "cannot connect");
                snprintf(h->why, sizeof(h->why), "%s: %.900s", label, cause ? cause : err.msg);
                return;
        }
        if (vp_hv_check_hardware(h->conn, label, env->arch, vp_hv_pick_domain_type(env->domain_types), p->machine,
                                 p->disk_bus, p->nic, p->firmware, &err) < 0) {
                snprintf(h->why, sizeof(h->why), "%s", err.msg);
                return;
        }
        h->free_kib = (int64_t)(virNodeGetFreeMemory(h->conn) >> 10);
        h->eligible = true;
}

static int check_only(const struct vp_env *env, const struct vp_placer *pl, const struct vp_place_filter *f,
                      struct vp_error *err)
{
        for (size_t i = 0; i < f->nonly; i++) {
                bool found = false;
                for (size_t j = 0; j < pl->n && !found; j++)
                        found = streq(pl->h[j].host.name, f->only[i]);
                if (!found)
                        return vp_err(err, -ENOENT, "env '%s' has no host '%s'", env->name, f->only[i]);
        }
        return 0;
}

int vp_placer_init(struct vp_ctx *ctx, const struct vp_env *env, const struct vp_profile *p, enum vp_placement how,
                   const struct vp_place_filter *f, struct vp_placer *ret, struct vp_error *err)
{
        static const struct vp_place_filter none = { 0 };
        struct vp_host *hs = NULL;
        size_t n = 0;
        if (!f)
                f = &none;
        int k = vp_env_hosts(ctx, env->id, &hs, &n, err);
        if (k < 0)
                return k;
        *ret = (struct vp_placer){ .how = how, .n = n, .h = vp_xcalloc(n ? n : 1, sizeof(struct vp_place_host)) };
        snprintf(ret->env, sizeof(ret->env), "%s", env->name);
        for (size_t i = 0; i < n; i++)
                ret->h[i].host = hs[i];
        free(hs);
        if ((k = check_only(env, ret, f, err)) < 0) {
                vp_placer_free(ret);
                return k;
        }
        for (size_t i = 0; i < n; i++)
                filter_host(ctx, env, p, f, n == 1, &ret->h[i]);
        return 0;
}

void vp_placer_free(struct vp_placer *pl)
{
        for (size_t i = 0; i < pl->n; i++)
                vp_row_clear(&vp_table_host, &pl->h[i].host);
        free(pl->h);
        memset(pl, 0, sizeof(*pl));
}

int vp_place_pick(const struct vp_place_host *h, size_t n, enum vp_placement how, int64_t mem_kib, bool running)
{
        int best = -1;
        int64_t best_left = 0;
        for (size_t i = 0; i < n; i++) {
                if (!h[i].eligible || (running && h[i].free_kib - h[i].running_kib < mem_kib))
                        continue;
                int64_t left = h[i].free_kib - h[i].placed_kib - mem_kib;
                /* Ties go to the first by name (the order of H). */
                if (best < 0 || (how == VP_PLACE_PACK ? left < best_left : left > best_left)) {
                        best = (int)i;
                        best_left = left;
                }
        }
        return best;
}

/* Why no host is eligible: each one's reason, joined. */
static int none_eligible(const struct vp_placer *pl, struct vp_error *err)
{
        char why[sizeof(err->msg)] = "";
        size_t l = 0;
        for (size_t i = 0; i < pl->n && l < sizeof(why); i++)
                l += (size_t)snprintf(why + l, sizeof(why) - l, "%s%s", i ? "; " : "", pl->h[i].why);
        if (pl->n == 1)
                return vp_err(err, -EOPNOTSUPP, "%s", pl->h[0].why);
        return vp_err(err, -EOPNOTSUPP, "no host of env '%s' can take the VMs: %s", pl->env,
                      pl->n ? why : "it has no host");
}

int vp_placer_check(const struct vp_placer *pl, size_t nrunning, int64_t mem_kib, struct vp_error *err)
{
        size_t eligible = 0, fits = 0;
        int64_t free_kib = 0;
        for (size_t i = 0; i < pl->n; i++) {
                if (!pl->h[i].eligible)
                        continue;
                eligible++;
                free_kib += pl->h[i].free_kib;
                /* VMs of one size: a host holds as many whole ones as fit. */
                if (mem_kib > 0 && pl->h[i].free_kib > 0)
                        fits += (size_t)(pl->h[i].free_kib / mem_kib);
        }
        if (!eligible)
                return none_eligible(pl, err);
        if (nrunning > 0 && mem_kib > 0 && fits < nrunning)
                return vp_err(err, -ENOSPC, "env '%s' cannot hold %zu running VMs of %lld MiB: its %zu usable host%s "
                              "have %lld MiB free, room for %zu of them", pl->env, nrunning,
                              (long long)(mem_kib >> 10), eligible, eligible == 1 ? "" : "s",
                              (long long)(free_kib >> 10), fits);
        return 0;
}

int vp_place(struct vp_placer *pl, int64_t mem_kib, bool running, struct vp_error *err)
{
        int i = vp_place_pick(pl->h, pl->n, pl->how, mem_kib, running);
        if (i < 0) {
                int k = vp_placer_check(pl, 1, mem_kib, err);
                return k < 0 ? k
                             : vp_err(err, -ENOSPC, "no host of env '%s' has %lld MiB free for one more running VM",
                                      pl->env, (long long)(mem_kib >> 10));
        }
        pl->h[i].placed_kib += mem_kib;
        if (running)
                pl->h[i].running_kib += mem_kib;
        pl->h[i].placed++;
        return i;
}
