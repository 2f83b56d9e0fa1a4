#include "host.h"

#include <ctype.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "name.h"

/* ---- names ---------------------------------------------------------------- */

int vp_host_spec_parse(char *arg, struct vp_host_spec *ret, struct vp_error *err)
{
        char *eq = strchr(arg, '=');
        *ret = (struct vp_host_spec){ .uri = arg };
        /* No '=', or one in the URI's query: a URI alone. */
        if (!eq || memchr(arg, ':', (size_t)(eq - arg)))
                return 0;
        *eq = '\0';
        int k = vp_name_check("host", arg, err);
        if (k < 0) {
                *eq = '=';
                return k;
        }
        *ret = (struct vp_host_spec){ .name = arg, .uri = eq + 1 };
        return 0;
}

int vp_host_default_name(const char *uri, const char *default_name, char **ret, struct vp_error *err)
{
        const char *p = strstr(uri, "://");
        _cleanup_free_ char *host = NULL;
        if (p) {
                p += 3;
                const char *at = strpbrk(p, "@/?");
                if (at && *at == '@')
                        p = at + 1;
                size_t n = strcspn(p, "/?");
                /* [v6 address]:port or name:port */
                if (*p == '[') {
                        const char *close = memchr(p, ']', n);
                        host = close ? vp_strdupf("%.*s", (int)(close - p - 1), p + 1) : NULL;
                } else {
                        const char *colon = memchr(p, ':', n);
                        host = vp_strdupf("%.*s", (int)(colon ? (size_t)(colon - p) : n), p);
                }
        }
        if (host && *host) {
                if (vp_name_check("host", host, NULL) < 0)
                        return vp_err(err, -EINVAL, "the host part of '%s' is no host name vpool accepts; name the "
                                      "host (NAME=URI or --name NAME)", uri);
                *ret = TAKE_PTR(host);
                return 0;
        }
        if (default_name) {
                *ret = vp_strdup(default_name);
                return 0;
        }
        return vp_err(err, -EINVAL, "URI '%s' names no host; name the host (NAME=URI or --name NAME)", uri);
}

char *vp_host_label(const char *env, const char *host)
{
        if (!host || !*host || streq(env, host))
                return vp_strdupf("env '%s'", env);
        return vp_strdupf("host '%s' of env '%s'", host, env);
}

/* H's label (vp_host_label) from the catalog: its env's name. */
static char *label_of(struct vp_ctx *ctx, const struct vp_host *h)
{
        struct vp_env e = { 0 };
        char *label = vp_row_get_id(ctx->cat, &vp_table_env, h->env_id, &e, NULL) >= 0
                              ? vp_host_label(e.name, h->name)
                              : vp_strdupf("host '%s'", h->name);
        vp_row_clear(&vp_table_env, &e);
        return label;
}

char *vp_host_peer_uri(const char *uri)
{
        const char *q = strchr(uri, '?');
        if (!q)
                return vp_strdup(uri);
        /* The query's parameters but pkipath, joined again. */
        char *out = vp_strdupf("%.*s", (int)(q - uri), uri);
        _cleanup_free_ char *params = vp_strdup(q + 1);
        char *save = NULL, sep = '?';
        for (char *p = strtok_r(params, "&", &save); p; p = strtok_r(NULL, "&", &save)) {
                if (strncmp(p, "pkipath=", 8) == 0)
                        continue;
                char *next = vp_strdupf("%s%c%s", out, sep, p);
                free(out);
                out = next;
                sep = '&';
        }
        return out;
}

/* ---- rows ----------------------------------------------------------------- */

static int cmp_host_name(const void *a, const void *b)
{
        return strcmp(((const struct vp_host *)a)->name, ((const struct vp_host *)b)->name);
}

int vp_env_hosts(struct vp_ctx *ctx, int64_t env_id, struct vp_host **ret, size_t *ret_n, struct vp_error *err)
{
        void *rows = NULL;
        int k = vp_row_query(ctx->cat, &vp_table_host, "env_id = ?1", env_id, &rows, ret_n, err);
        if (k < 0)
                return k;
        qsort(rows, *ret_n, sizeof(struct vp_host), cmp_host_name);
        *ret = rows;
        return 0;
}

int vp_env_host_get(struct vp_ctx *ctx, const char *env, const char *host, struct vp_env *ret_env,
                    struct vp_host *ret, struct vp_error *err)
{
        struct vp_env e = { 0 };
        int k;
        if ((k = vp_name_check("env", env, err)) < 0 || (k = vp_name_check("host", host, err)) < 0 ||
            (k = vp_row_get(ctx->cat, &vp_table_env, "name", env, &e, err)) < 0)
                return k;
        struct vp_host *hs = NULL;
        size_t n = 0;
        k = vp_env_hosts(ctx, e.id, &hs, &n, err);
        struct vp_host *h = k < 0 ? NULL : vp_rows_find_name(&vp_table_host, hs, n, host);
        if (k >= 0 && !h)
                k = vp_err(err, -ENOENT, "env '%s' has no host '%s'", env, host);
        if (h) {
                *ret = *h;
                memset(h, 0, sizeof(*h));
        }
        vp_rows_free(&vp_table_host, hs, n);
        if (k >= 0 && ret_env)
                *ret_env = e;
        else
                vp_row_clear(&vp_table_env, &e);
        return k;
}

/* ---- connections ---------------------------------------------------------- */

static struct vp_conn_cache *cached(struct vp_ctx *ctx, int64_t host_id)
{
        for (size_t i = 0; i < ctx->nconns; i++)
                if (ctx->conns[i].host_id == host_id)
                        return &ctx->conns[i];
        return NULL;
}

/* Remember H's connection C (NULL: it did not answer), replacing a closed one. */
static void cache_conn(struct vp_ctx *ctx, const struct vp_host *h, virConnectPtr c)
{
        struct vp_conn_cache *e = cached(ctx, h->id);
        if (!e) {
                struct vp_conn_cache *n = realloc(ctx->conns, (ctx->nconns + 1) * sizeof(*n));
                if (!n)
                        abort();
                ctx->conns = n;
                e = &ctx->conns[ctx->nconns++];
        } else if (e->conn) {
                virConnectClose(e->conn);
        }
        *e = (struct vp_conn_cache){ .host_id = h->id, .conn = c };
        if (c)
                vp_hv_watch(c, &e->closed);
}

void vp_host_note_reachable(struct vp_ctx *ctx, const struct vp_host *h, bool ok)
{
        if (ctx->readonly || vp_catalog_in_transaction(ctx->cat))
                return;
        struct vp_host row = { 0 };
        if (vp_row_get_id(ctx->cat, &vp_table_host, h->id, &row, NULL) < 0)
                return;
        bool marked = row.unreachable && *row.unreachable;
        if (marked != !ok) {
                free(row.unreachable);
                row.unreachable = ok ? vp_strdup("") : vp_now_iso();
                vp_row_update(ctx->cat, &vp_table_host, &row, NULL);
        }
        vp_row_clear(&vp_table_host, &row);
}

static int connect_host(struct vp_ctx *ctx, const struct vp_host *h, virConnectPtr *ret, struct vp_error *err)
{
        int k = vp_hv_connect(h->uri, ret, err);
        if (k < 0) {
                _cleanup_free_ char *label = label_of(ctx, h);
                vp_err_prefix(err, "%s", label);
        }
        vp_host_note_reachable(ctx, h, k >= 0);
        return k;
}

int vp_ctx_conn_host(struct vp_ctx *ctx, const struct vp_host *h, virConnectPtr *ret, struct vp_error *err)
{
        struct vp_conn_cache *e = cached(ctx, h->id);
        if (e && !e->conn) {
                _cleanup_free_ char *label = label_of(ctx, h);
                return vp_err(err, -EHOSTUNREACH, "%s: cannot connect to '%s'", label, h->uri);
        }
        if (e && !(e->closed && atomic_load(e->closed))) {
                *ret = e->conn;
                return 0;
        }
        virConnectPtr c = NULL;
        int k = connect_host(ctx, h, &c, err);
        cache_conn(ctx, h, k < 0 ? NULL : c);
        if (k >= 0)
                *ret = c;
        return k;
}

int vp_ctx_conn_host_source(struct vp_ctx *ctx, const struct vp_host *h, virConnectPtr *ret, struct vp_error *err)
{
        if (cached(ctx, h->id))
                return vp_ctx_conn_host(ctx, h, ret, err);
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                virConnectPtr c = NULL;
                int k = vp_hv_connect(h->uri, &c, err);
                clock_gettime(CLOCK_MONOTONIC, &now);
                double waited = (double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9;
                if (k >= 0 || waited + 1 > ctx->source_grace) {
                        if (k < 0) {
                                _cleanup_free_ char *label = label_of(ctx, h);
                                vp_err_prefix(err, "%s (tried for %.0f s)", label, waited);
                        }
                        vp_host_note_reachable(ctx, h, k >= 0);
                        cache_conn(ctx, h, k < 0 ? NULL : c);
                        *ret = k < 0 ? NULL : c;
                        return k;
                }
                sleep(1);
        }
}

/* Hosts not in maintenance first, then by name: the order in which an
 * env's "any host" is looked for. */
static int cmp_host_pref(const void *a, const void *b)
{
        const struct vp_host *x = a, *y = b;
        if (x->maintenance != y->maintenance)
                return x->maintenance ? 1 : -1;
        return strcmp(x->name, y->name);
}

/* A connection to the first host of ENV that answers (SOURCE: after its
 * grace period). */
static int conn_env(struct vp_ctx *ctx, const struct vp_env *env, bool source, virConnectPtr *ret,
                    struct vp_error *err)
{
        struct vp_host *hs = NULL;
        size_t n = 0;
        int k = vp_env_hosts(ctx, env->id, &hs, &n, err);
        if (k < 0)
                return k;
        qsort(hs, n, sizeof(*hs), cmp_host_pref);
        k = vp_err(err, -EHOSTUNREACH, "env '%s' has no host", env->name);
        for (size_t i = 0; i < n; i++) {
                k = source ? vp_ctx_conn_host_source(ctx, &hs[i], ret, err) : vp_ctx_conn_host(ctx, &hs[i], ret, err);
                if (k >= 0)
                        break;
        }
        if (k < 0 && n > 1)
                vp_err_prefix(err, "no host of env '%s' answers; the last", env->name);
        vp_rows_free(&vp_table_host, hs, n);
        return k;
}

int vp_ctx_conn(struct vp_ctx *ctx, const struct vp_env *env, virConnectPtr *ret, struct vp_error *err)
{
        return conn_env(ctx, env, false, ret, err);
}

int vp_ctx_conn_source(struct vp_ctx *ctx, const struct vp_env *env, virConnectPtr *ret, struct vp_error *err)
{
        return conn_env(ctx, env, true, ret, err);
}

/* The host of VM's env that has its domain (its UUID), when the catalog
 * does not say which: *RET its connection, or -ENOENT. */
static int find_vm_host(struct vp_ctx *ctx, const struct vp_vm *vm, virConnectPtr *ret)
{
        struct vp_host *hs = NULL;
        size_t n = 0;
        int k = vp_env_hosts(ctx, vm->env_id, &hs, &n, NULL);
        for (size_t i = 0; k >= 0 && i < n; i++) {
                char uuid[VIR_UUID_STRING_BUFLEN];
                virConnectPtr c;
                if (vp_ctx_conn_host(ctx, &hs[i], &c, NULL) >= 0 && vp_hv_uuid(c, vm->name, uuid, NULL) >= 0 &&
                    streq(uuid, vm->uuid)) {
                        *ret = c;
                        vp_rows_free(&vp_table_host, hs, n);
                        return 0;
                }
        }
        vp_rows_free(&vp_table_host, hs, n);
        return -ENOENT;
}

int vp_ctx_conn_vm(struct vp_ctx *ctx, const struct vp_vm *vm, virConnectPtr *ret, struct vp_error *err)
{
        struct vp_host h = { 0 };
        /* The recorded host, when it is one of the VM's env. */
        if (vm->host_id && vp_row_get_id(ctx->cat, &vp_table_host, vm->host_id, &h, NULL) >= 0 &&
            h.env_id == vm->env_id) {
                int k = vp_ctx_conn_host(ctx, &h, ret, err);
                vp_row_clear(&vp_table_host, &h);
                return k;
        }
        vp_row_clear(&vp_table_host, &h);
        if (find_vm_host(ctx, vm, ret) >= 0)
                return 0;
        struct vp_env e = { 0 };
        int k = vp_row_get_id(ctx->cat, &vp_table_env, vm->env_id, &e, err);
        if (k >= 0)
                k = vp_ctx_conn(ctx, &e, ret, err);
        vp_row_clear(&vp_table_env, &e);
        return k;
}

/* ---- adding, removing, maintenance ------------------------------------------ */

static int check_uri(const char *uri, struct vp_error *err)
{
        char pb[64];
        if (!uri || !*uri)
                return vp_err(err, -EINVAL, "empty libvirt URI");
        if (strlen(uri) > 1024)
                return vp_err(err, -EINVAL, "libvirt URI is too long");
        for (const char *p = uri; *p; p++)
                if (!isprint((unsigned char)*p) || *p == ' ')
                        return vp_err(err, -EINVAL, "malformed libvirt URI '%s'", vp_printable(uri, pb, sizeof(pb)));
        const char *sep = strstr(uri, ":/");
        if (!sep || sep == uri)
                return vp_err(err, -EINVAL, "malformed libvirt URI '%s': expected DRIVER[+TRANSPORT]://[HOST]/PATH",
                              vp_printable(uri, pb, sizeof(pb)));
        for (const char *p = uri; p < sep; p++)
                if (!isalnum((unsigned char)*p) && *p != '+')
                        return vp_err(err, -EINVAL, "malformed libvirt URI '%s'", vp_printable(uri, pb, sizeof(pb)));
        return 0;
}

int vp_host_probe(struct vp_ctx *ctx, const struct vp_host_spec *spec, const char *default_name,
                  struct vp_hv_info *info, struct vp_host *ret, struct vp_error *err)
{
        (void)ctx;
        _cleanup_free_ char *name = NULL;
        int k;
        if ((k = check_uri(spec->uri, err)) < 0)
                return k;
        if (spec->name ? (k = vp_name_check("host", spec->name, err)) < 0
                       : (k = vp_host_default_name(spec->uri, default_name, &name, err)) < 0)
                return k;
        const char *hname = spec->name ? spec->name : name;
        _cleanup_conn_ virConnectPtr conn = NULL;
        /* The URI names the host in a refusal to connect. */
        if ((k = vp_hv_connect(spec->uri, &conn, err)) < 0)
                return k;
        if ((k = vp_hv_probe(conn, info, err)) < 0)
                return k;
        *ret = (struct vp_host){
                .name = vp_strdup(hname), .uri = vp_strdup(spec->uri), .hostname = vp_strdup(info->hostname),
                .cpus = info->cpus, .memory_kib = info->memory_kib, .unreachable = vp_strdup(""),
                .created = vp_now_iso(),
        };
        return 0;
}

/* Whether ENV's hosts HS already have H's name or URI. */
static int check_new_host(const struct vp_env *env, const struct vp_host *hs, size_t n, const struct vp_host *h,
                          struct vp_error *err)
{
        for (size_t i = 0; i < n; i++) {
                if (streq(hs[i].name, h->name))
                        return vp_err(err, -EEXIST, "env '%s' already has a host '%s'", env->name, h->name);
                if (streq(hs[i].uri, h->uri))
                        return vp_err(err, -EEXIST, "env '%s' already has host '%s' at '%s'", env->name, hs[i].name,
                                      h->uri);
        }
        return 0;
}

int vp_env_host_add(struct vp_ctx *ctx, const char *env, const struct vp_host_spec *spec, struct vp_host *ret,
                    struct vp_error *err)
{
        struct vp_env e = { 0 };
        struct vp_host *hs = NULL, h = { 0 };
        size_t n = 0;
        struct vp_hv_info info;
        int k;
        if ((k = vp_name_check("env", env, err)) < 0 ||
            (k = vp_row_get(ctx->cat, &vp_table_env, "name", env, &e, err)) < 0)
                return k;
        if ((k = vp_env_hosts(ctx, e.id, &hs, &n, err)) >= 0 && (k = vp_host_probe(ctx, spec, NULL, &info, &h, err)) >= 0 &&
            (k = check_new_host(&e, hs, n, &h, err)) >= 0) {
                const char *dtype = vp_hv_pick_domain_type(e.domain_types);
                if (!streq(info.arch, e.arch))
                        k = vp_err(err, -EINVAL, "host '%s' is %s; env '%s' is %s", h.name, info.arch, env, e.arch);
                else if (!vp_list_has(info.domain_types, dtype))
                        k = vp_err(err, -EOPNOTSUPP, "host '%s' does not offer domain type '%s', which env '%s' uses",
                                   h.name, dtype, env);
        }
        if (k >= 0) {
                h.env_id = e.id;
                k = vp_row_insert(ctx->cat, &vp_table_host, &h, err);
        }
        vp_rows_free(&vp_table_host, hs, n);
        vp_row_clear(&vp_table_env, &e);
        if (k < 0 || !ret)
                vp_row_clear(&vp_table_host, &h);
        else
                *ret = h;
        return k;
}

/* Whether an unfinished migration moves VMs from or to host H. */
static int refuse_if_moving(struct vp_ctx *ctx, const struct vp_host *h, struct vp_error *err)
{
        void *rows = NULL;
        size_t n = 0;
        int k = vp_row_query(ctx->cat, &vp_table_migvm,
                             "(src_host_id = ?1 OR dst_host_id = ?1) AND migration_id IN (SELECT id FROM migrations"
                             " WHERE state IN ('running', 'partial'))", h->id, &rows, &n, err);
        if (k >= 0 && n > 0)
                k = vp_err(err, -EBUSY, "host '%s' is used by unfinished migration %lld; resume or abort it first",
                           h->name, (long long)((struct vp_migvm *)rows)[0].migration_id);
        vp_rows_free(&vp_table_migvm, rows, n);
        return k;
}

/* The env's URI is its first host's: another when that one goes. */
static int env_follow_hosts(struct vp_ctx *ctx, struct vp_env *e, const struct vp_host *gone, struct vp_error *err)
{
        if (!streq(e->uri, gone->uri))
                return 0;
        struct vp_host *hs = NULL;
        size_t n = 0;
        int k = vp_env_hosts(ctx, e->id, &hs, &n, err);
        for (size_t i = 0; k >= 0 && i < n; i++)
                if (hs[i].id != gone->id) {
                        free(e->uri);
                        e->uri = vp_strdup(hs[i].uri);
                        k = vp_row_update(ctx->cat, &vp_table_env, e, err);
                        break;
                }
        vp_rows_free(&vp_table_host, hs, n);
        return k;
}

int vp_env_host_rm(struct vp_ctx *ctx, const char *env, const char *host, bool force, struct vp_error *err)
{
        struct vp_env e = { 0 };
        struct vp_host h = { 0 };
        int k = vp_env_host_get(ctx, env, host, &e, &h, err);
        if (k < 0)
                return k;
        char idbuf[24];
        int64_t nvms = 0, nhosts = 0;
        snprintf(idbuf, sizeof(idbuf), "%lld", (long long)h.id);
        if ((k = vp_row_count(ctx->cat, &vp_table_vm, "host_id", idbuf, &nvms, err)) >= 0) {
                snprintf(idbuf, sizeof(idbuf), "%lld", (long long)e.id);
                k = vp_row_count(ctx->cat, &vp_table_host, "env_id", idbuf, &nhosts, err);
        }
        if (k >= 0 && nhosts <= 1)
                k = vp_err(err, -EBUSY, "host '%s' is the last host of env '%s'; remove the env instead", host, env);
        else if (k >= 0 && nvms > 0 && !force)
                k = vp_err(err, -EBUSY, "host '%s' still holds %lld VMs; 'vpool env host drain %s %s' moves them "
                           "(--force forgets the host and leaves them on no host)", host, (long long)nvms, env, host);
        if (k >= 0)
                k = refuse_if_moving(ctx, &h, err);
        if (k >= 0 && (k = vp_catalog_begin(ctx->cat, err)) >= 0) {
                if ((k = env_follow_hosts(ctx, &e, &h, err)) >= 0 &&
                    (k = vp_row_delete(ctx->cat, &vp_table_host, h.id, err)) >= 0)
                        k = vp_catalog_commit(ctx->cat, err);
                if (k < 0)
                        vp_catalog_rollback(ctx->cat);
        }
        vp_row_clear(&vp_table_host, &h);
        vp_row_clear(&vp_table_env, &e);
        return k;
}

int vp_env_host_set_maintenance(struct vp_ctx *ctx, const char *env, const char *host, bool on,
                                struct vp_error *err)
{
        struct vp_host h = { 0 };
        int k = vp_env_host_get(ctx, env, host, NULL, &h, err);
        if (k < 0)
                return k;
        if (h.maintenance != on) {
                h.maintenance = on;
                k = vp_row_update(ctx->cat, &vp_table_host, &h, err);
        }
        vp_row_clear(&vp_table_host, &h);
        return k;
}

void vp_host_live(struct vp_ctx *ctx, const struct vp_host *h, struct vp_host_live *ret)
{
        *ret = (struct vp_host_live){ 0 };
        virConnectPtr c;
        virNodeInfo ni;
        if (vp_ctx_conn_host(ctx, h, &c, NULL) < 0 || virNodeGetInfo(c, &ni) < 0)
                return;
        ret->reachable = true;
        ret->cpus = ni.cpus;
        ret->memory_kib = (int64_t)ni.memory;
        ret->free_kib = (int64_t)(virNodeGetFreeMemory(c) >> 10);
        int running = virConnectNumOfDomains(c), off = virConnectNumOfDefinedDomains(c);
        ret->running = running > 0 ? running : 0;
        ret->defined = ret->running + (off > 0 ? off : 0);
        struct vp_hv_states st = { 0 };
        ret->vcpus = -1;
        if (vp_hv_states_stats(c, &st, NULL) < 0)
                return;
        ret->vcpus = 0;
        for (size_t i = 0; i < st.n; i++)
                ret->vcpus += st.v[i].active ? st.v[i].vcpus : 0;
        vp_hv_states_free(&st);
}

int vp_env_host_drain_begin(struct vp_ctx *ctx, const char *env, const char *host, const char *const *to, size_t nto,
                            char ***ret_pools, size_t *ret_n, struct vp_error *err)
{
        struct vp_host h = { 0 };
        int k = vp_env_host_get(ctx, env, host, NULL, &h, err);
        for (size_t i = 0; i < nto && k >= 0; i++) {
                struct vp_host other = { 0 };
                if (streq(to[i], host))
                        k = vp_err(err, -EINVAL, "cannot drain host '%s' onto itself", host);
                else
                        k = vp_env_host_get(ctx, env, to[i], NULL, &other, err);
                vp_row_clear(&vp_table_host, &other);
        }
        if (k < 0) {
                vp_row_clear(&vp_table_host, &h);
                return k;
        }
        struct vp_pool *pools = NULL;
        size_t n = 0;
        k = vp_host_pools(ctx, h.id, &pools, &n, err);
        for (size_t i = 0; i < n && k >= 0; i++)
                if (vp_pool_state_from_string(pools[i].state) == VP_POOL_MIGRATING)
                        k = vp_err(err, -EBUSY, "pool '%s', with VMs on host '%s', has an unfinished migration; resume "
                                   "or abort it first", pools[i].name, host);
        if (k >= 0 && !h.maintenance) {
                h.maintenance = 1;
                k = vp_row_update(ctx->cat, &vp_table_host, &h, err);
        }
        if (k >= 0) {
                *ret_pools = vp_xcalloc(n + 1, sizeof(char *));
                for (size_t i = 0; i < n; i++)
                        (*ret_pools)[i] = vp_strdup(pools[i].name);
                *ret_n = n;
        }
        vp_rows_free(&vp_table_pool, pools, n);
        vp_row_clear(&vp_table_host, &h);
        return k;
}

int vp_host_pools(struct vp_ctx *ctx, int64_t host_id, struct vp_pool **ret, size_t *ret_n, struct vp_error *err)
{
        return vp_row_query(ctx->cat, &vp_table_pool, "id IN (SELECT pool_id FROM vms WHERE host_id = ?1)", host_id,
                            (void **)ret, ret_n, err);
}
