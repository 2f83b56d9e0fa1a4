#include "view.h"
#include "inspect.h"

#include <string.h>
#include <unistd.h>

#include "host.h"
#include "hostfail.h"
#include "manifest.h"
#include "name.h"
#include "policy.h"

/* A text field: null when absent or empty, as every absent value is. */
static struct json_object *text(const char *s)
{
        return s && *s ? json_object_new_string(s) : NULL;
}

/* A count: null when it could not be told (negative). */
static struct json_object *count(int64_t n)
{
        return n >= 0 ? json_object_new_int64(n) : NULL;
}

/* The name of row ID of T (its second column, the name of every named
 * table), malloc'd; NULL when the row is gone. */
/* The names of a table's rows by id, read once while a list is built: a
 * list of N pools would otherwise read the same image, env and profile rows
 * N times each. */
struct name_map {
        const struct vp_table *t;
        int64_t *ids;
        char **names;
        size_t n;
};

#define NAME_MAPS 8
struct name_maps {
        struct name_map m[NAME_MAPS];
        size_t n;
};

/* The maps of the list being built by this thread, NULL outside one. */
static __thread struct name_maps *lists_names;

static const struct name_map *name_map_of(struct vp_catalog *c, const struct vp_table *t)
{
        struct name_maps *nm = lists_names;
        for (size_t i = 0; i < nm->n; i++)
                if (nm->m[i].t == t)
                        return &nm->m[i];
        if (nm->n == NAME_MAPS)
                return NULL;
        void *rows = NULL;
        size_t n = 0;
        if (vp_row_list(c, t, NULL, NULL, &rows, &n, NULL) < 0)
                return NULL;
        struct name_map *m = &nm->m[nm->n++];
        *m = (struct name_map){ .t = t, .ids = vp_xcalloc(n ? n : 1, sizeof(int64_t)),
                                .names = vp_xcalloc(n ? n : 1, sizeof(char *)), .n = n };
        for (size_t i = 0; i < n; i++) {
                const char *row = (const char *)rows + i * t->size;
                m->ids[i] = *(const int64_t *)(row + t->cols[0].offset);
                m->names[i] = vp_strdup(*(char *const *)(row + t->cols[1].offset));
        }
        vp_rows_free(t, rows, n);
        return m;
}

static void name_maps_free(struct name_maps *nm)
{
        for (size_t i = 0; i < nm->n; i++) {
                for (size_t k = 0; k < nm->m[i].n; k++)
                        free(nm->m[i].names[k]);
                free(nm->m[i].names);
                free(nm->m[i].ids);
        }
}

static char *name_of(struct vp_catalog *c, const struct vp_table *t, int64_t id)
{
        const struct name_map *m = lists_names ? name_map_of(c, t) : NULL;
        if (m) {
                for (size_t i = 0; i < m->n; i++)
                        if (m->ids[i] == id)
                                return vp_strdup(m->names[i]);
                return NULL;
        }
        void *row = vp_xcalloc(1, t->size);
        char *name = NULL;
        if (vp_row_get_id(c, t, id, row, NULL) >= 0)
                name = vp_strdup(*(char **)((char *)row + t->cols[1].offset));
        vp_row_clear(t, row);
        free(row);
        return name;
}

/* Every row of T (COL = VALUE when COL), each through TO_JSON, as an array. */
static int list_rows(struct vp_ctx *ctx, const struct vp_table *t, const char *col, const char *value,
                     struct json_object *(*to_json)(struct vp_ctx *ctx, const void *row), struct json_object **ret,
                     struct vp_error *err)
{
        void *rows = NULL;
        size_t n = 0;
        int r = vp_row_list(ctx->cat, t, col, value, &rows, &n, err);
        if (r < 0)
                return r;
        struct name_maps nm = { 0 };
        bool outer = !lists_names;
        if (outer && n > 1)
                lists_names = &nm;
        struct json_object *a = json_object_new_array();
        for (size_t i = 0; i < n; i++)
                json_object_array_add(a, to_json(ctx, (const char *)rows + i * t->size));
        if (lists_names == &nm) {
                lists_names = NULL;
                name_maps_free(&nm);
        }
        vp_rows_free(t, rows, n);
        *ret = a;
        return 0;
}

/* ---- envs, images, profiles -------------------------------------------- */

/* The retirement of env E (null when it has none). */
static struct json_object *retirement_json(struct vp_ctx *ctx, const struct vp_env *e)
{
        struct vp_retirement rt = { 0 };
        if (vp_retirement_of(ctx, e->id, &rt, NULL) < 0)
                return NULL;
        struct json_object *o = json_object_new_object();
        _cleanup_free_ char *to = name_of(ctx->cat, &vp_table_env, rt.to_env_id);
        _cleanup_free_ char *profile = rt.profile_id ? name_of(ctx->cat, &vp_table_profile, rt.profile_id) : NULL;
        json_object_object_add(o, "to", text(to));
        json_object_object_add(o, "profile", text(profile));
        json_object_object_add(o, "window", text(rt.time_window));
        json_object_object_add(o, "wave", json_object_new_int64(rt.wave));
        json_object_object_add(o, "report", json_object_new_boolean(rt.report != 0));
        json_object_object_add(o, "state", json_object_new_string(rt.state));
        json_object_object_add(o, "since", json_object_new_string(rt.created));
        json_object_object_add(o, "completed", text(rt.completed));
        vp_row_clear(&vp_table_retirement, &rt);
        return o;
}

/* An env with the count of pools on it. */
static struct json_object *env_json(struct vp_ctx *ctx, const void *row)
{
        const struct vp_env *e = row;
        char idbuf[24];
        int64_t npools = -1, nhosts = -1;
        snprintf(idbuf, sizeof(idbuf), "%lld", (long long)e->id);
        vp_row_count(ctx->cat, &vp_table_pool, "env_id", idbuf, &npools, NULL);
        vp_row_count(ctx->cat, &vp_table_host, "env_id", idbuf, &nhosts, NULL);
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(e->name));
        json_object_object_add(o, "uri", json_object_new_string(e->uri));
        json_object_object_add(o, "hostname", text(e->hostname));
        json_object_object_add(o, "arch", text(e->arch));
        json_object_object_add(o, "domain_types", text(e->domain_types));
        json_object_object_add(o, "machines", text(e->machines));
        json_object_object_add(o, "disk_buses", text(e->disk_buses));
        json_object_object_add(o, "nic_models", text(e->nic_models));
        json_object_object_add(o, "firmwares", text(e->firmwares));
        json_object_object_add(o, "cpus", json_object_new_int64(e->cpus));
        json_object_object_add(o, "memory_kib", json_object_new_int64(e->memory_kib));
        json_object_object_add(o, "pool_count", count(npools));
        json_object_object_add(o, "host_count", count(nhosts));
        json_object_object_add(o, "created", json_object_new_string(e->created));
        json_object_object_add(o, "fence_cmd", e->fence_cmd && *e->fence_cmd ? json_tokener_parse(e->fence_cmd) : NULL);
        json_object_object_add(o, "on_maintenance",
                               json_object_new_string(vp_on_maintenance_to_string(vp_env_on_maintenance(e))));
        json_object_object_add(o, "retirement", retirement_json(ctx, e));
        struct vp_host_failure_policy pol;
        int64_t grace;
        vp_env_host_failure(e, &pol, &grace);
        json_object_object_add(o, "on_host_failure", json_object_new_string(vp_host_failure_to_string(pol.action)));
        json_object_object_add(o, "evacuate_to", pol.to_env[0] ? json_object_new_string(pol.to_env) : NULL);
        json_object_object_add(o, "grace", json_object_new_int64(grace));
        return o;
}

struct json_object *vp_image_json(const struct vp_image *im)
{
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(im->name));
        json_object_object_add(o, "path", json_object_new_string(im->path));
        json_object_object_add(o, "format", json_object_new_string(im->format));
        json_object_object_add(o, "virtual_size", json_object_new_int64(im->virtual_size));
        json_object_object_add(o, "file_size", json_object_new_int64(im->file_size));
        json_object_object_add(o, "sha256", json_object_new_string(im->sha256));
        json_object_object_add(o, "disk_buses", text(im->disk_buses));
        json_object_object_add(o, "nic_models", text(im->nic_models));
        json_object_object_add(o, "firmwares", text(im->firmwares));
        json_object_object_add(o, "kernel", text(im->kernel));
        json_object_object_add(o, "initrd", text(im->initrd));
        json_object_object_add(o, "cmdline", text(im->cmdline));
        json_object_object_add(o, "created", json_object_new_string(im->created));
        return o;
}

struct json_object *vp_profile_json(const struct vp_profile *p)
{
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(p->name));
        json_object_object_add(o, "machine", json_object_new_string(p->machine));
        json_object_object_add(o, "disk_bus", json_object_new_string(p->disk_bus));
        json_object_object_add(o, "nic", json_object_new_string(p->nic));
        json_object_object_add(o, "vcpus", json_object_new_int64(p->vcpus));
        json_object_object_add(o, "memory_mib", json_object_new_int64(p->memory_mib));
        json_object_object_add(o, "firmware", json_object_new_string(p->firmware));
        json_object_object_add(o, "cpu_mode", text(p->cpu_mode));
        json_object_object_add(o, "created", json_object_new_string(p->created));
        return o;
}

/* An image with what inspection found in its master (null: never inspected). */
static struct json_object *image_row(struct vp_ctx *ctx, const void *row)
{
        const struct vp_image *im = row;
        struct json_object *o = vp_image_json(im), *report = NULL;
        vp_inspection_get(ctx->cat, im->sha256, &report, NULL);
        json_object_object_add(o, "inspection", report);
        return o;
}

static struct json_object *profile_row(struct vp_ctx *ctx, const void *row)
{
        return vp_profile_json(row);
}

int vp_env_list(struct vp_ctx *ctx, struct json_object **ret, struct vp_error *err)
{
        return list_rows(ctx, &vp_table_env, NULL, NULL, env_json, ret, err);
}

int vp_image_list(struct vp_ctx *ctx, struct json_object **ret, struct vp_error *err)
{
        return list_rows(ctx, &vp_table_image, NULL, NULL, image_row, ret, err);
}

int vp_profile_list(struct vp_ctx *ctx, struct json_object **ret, struct vp_error *err)
{
        return list_rows(ctx, &vp_table_profile, NULL, NULL, profile_row, ret, err);
}

/* The one row of T named NAME through TO_JSON. */
static int describe_row(struct vp_ctx *ctx, const struct vp_table *t, const char *name,
                        struct json_object *(*to_json)(struct vp_ctx *ctx, const void *row), struct json_object **ret,
                        struct vp_error *err)
{
        struct json_object *a = NULL;
        int r = list_rows(ctx, t, "name", name, to_json, &a, err);
        if (r < 0)
                return r;
        if (json_object_array_length(a) == 0) {
                json_object_put(a);
                return vp_err(err, -ENOENT, "unknown %s '%s'", t->kind, name);
        }
        *ret = json_object_get(json_object_array_get_idx(a, 0));
        json_object_put(a);
        return 0;
}

/* Host H as vpool records it and, when LIVE, as its libvirt says now. */
static struct json_object *host_json(struct vp_ctx *ctx, const struct vp_host *h, bool live)
{
        char idbuf[24];
        int64_t nvms = -1;
        snprintf(idbuf, sizeof(idbuf), "%lld", (long long)h->id);
        vp_row_count(ctx->cat, &vp_table_vm, "host_id", idbuf, &nvms, NULL);
        struct vp_host_live l = { 0 };
        if (live)
                vp_host_live(ctx, h, &l);
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(h->name));
        json_object_object_add(o, "uri", json_object_new_string(h->uri));
        json_object_object_add(o, "hostname", text(h->hostname));
        json_object_object_add(o, "maintenance", json_object_new_boolean(h->maintenance != 0));
        json_object_object_add(o, "vm_count", count(nvms));
        if (!live)
                return o;
        json_object_object_add(o, "reachable", json_object_new_boolean(l.reachable));
        /* A host found unreachable just now, not yet recorded (a reader
         * writes nothing), is unreachable since now. */
        _cleanup_free_ char *now = !l.reachable && !(h->unreachable && *h->unreachable) ? vp_now_iso() : NULL;
        json_object_object_add(o, "unreachable_since", l.reachable ? NULL : text(now ? now : h->unreachable));
        json_object_object_add(o, "cpus", json_object_new_int64(l.reachable ? l.cpus : h->cpus));
        json_object_object_add(o, "memory_kib", json_object_new_int64(l.reachable ? l.memory_kib : h->memory_kib));
        json_object_object_add(o, "memory_free_kib", l.reachable ? json_object_new_int64(l.free_kib) : NULL);
        json_object_object_add(o, "domains_defined", l.reachable ? json_object_new_int64(l.defined) : NULL);
        json_object_object_add(o, "domains_running", l.reachable ? json_object_new_int64(l.running) : NULL);
        json_object_object_add(o, "vcpus_running", l.reachable ? count(l.vcpus) : NULL);
        return o;
}

int vp_env_hosts_describe(struct vp_ctx *ctx, const char *env, bool live, struct json_object **ret,
                          struct vp_error *err)
{
        struct vp_env e = { 0 };
        struct vp_host *hs = NULL;
        size_t n = 0;
        int r = vp_name_check("env", env, err);
        if (r < 0 || (r = vp_row_get(ctx->cat, &vp_table_env, "name", env, &e, err)) < 0)
                return r;
        r = vp_env_hosts(ctx, e.id, &hs, &n, err);
        vp_row_clear(&vp_table_env, &e);
        if (r < 0)
                return r;
        struct json_object *a = json_object_new_array();
        for (size_t i = 0; i < n; i++)
                json_object_array_add(a, host_json(ctx, &hs[i], live));
        vp_rows_free(&vp_table_host, hs, n);
        *ret = a;
        return 0;
}

int vp_env_describe(struct vp_ctx *ctx, const char *name, struct json_object **ret, struct vp_error *err)
{
        struct json_object *o = NULL, *hosts = NULL;
        int r = describe_row(ctx, &vp_table_env, name, env_json, &o, err);
        if (r >= 0 && (r = vp_env_hosts_describe(ctx, name, true, &hosts, err)) < 0)
                json_object_put(o);
        if (r < 0)
                return r;
        json_object_object_add(o, "hosts", hosts);
        *ret = o;
        return 0;
}

int vp_image_describe(struct vp_ctx *ctx, const char *name, struct json_object **ret, struct vp_error *err)
{
        return describe_row(ctx, &vp_table_image, name, image_row, ret, err);
}

int vp_profile_describe(struct vp_ctx *ctx, const char *name, struct json_object **ret, struct vp_error *err)
{
        return describe_row(ctx, &vp_table_profile, name, profile_row, ret, err);
}

int vp_image_check(struct vp_ctx *ctx, const char *name, struct json_object **ret, struct vp_error *err)
{
        struct json_object *im = NULL, *expected;
        int r = vp_image_describe(ctx, name, &im, err);
        if (r < 0)
                return r;
        bool ok = false;
        char sha[65] = "";
        r = vp_image_verify(ctx, name, &ok, sha, err);
        if (r < 0) {
                json_object_put(im);
                return r;
        }
        json_object_object_get_ex(im, "sha256", &expected);
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "ok", json_object_new_boolean(ok));
        json_object_object_add(o, "expected_sha256", json_object_get(expected));
        json_object_object_add(o, "actual_sha256", json_object_new_string(sha));
        json_object_put(im);
        *ret = o;
        return 0;
}

/* ---- VMs ---------------------------------------------------------------- */

/* What shared storage says of VM's delta, which is what fencing goes by:
 * its manifest's owner and generation, or why it could not be read. */
static void add_manifest(struct json_object *o, struct vp_ctx *ctx, const char *pool, const struct vp_vm *vm)
{
        int fd = -1;
        struct vp_manifest m;
        struct vp_error err = { 0 };
        bool ok = false;
        if (!pool)
                vp_err(&err, -ENOENT, "vm '%s' belongs to no pool", vm->name);
        else
                ok = vp_delta_open(&ctx->st, pool, vp_delta_dir_of(vm->delta_path), &fd, &err) >= 0 &&
                     vp_manifest_read(fd, vm->delta_path, &m, &err) >= 0;
        json_object_object_add(o, "manifest_owner", ok ? json_object_new_string(m.owner) : NULL);
        json_object_object_add(o, "manifest_generation", ok ? json_object_new_int64(m.generation) : NULL);
        json_object_object_add(o, "manifest_error", ok ? NULL : json_object_new_string(err.msg));
        if (fd >= 0)
                close(fd);
}

/* The name of host ID, null when unknown or gone. */
static struct json_object *host_name(struct vp_ctx *ctx, int64_t id)
{
        struct vp_host h = { 0 };
        if (!id || vp_row_get_id(ctx->cat, &vp_table_host, id, &h, NULL) < 0)
                return NULL;
        struct json_object *o = json_object_new_string(h.name);
        vp_row_clear(&vp_table_host, &h);
        return o;
}

static struct json_object *vm_json(struct vp_ctx *ctx, const void *row)
{
        const struct vp_vm *vm = row;
        _cleanup_free_ char *pool = name_of(ctx->cat, &vp_table_pool, vm->pool_id);
        _cleanup_free_ char *env = name_of(ctx->cat, &vp_table_env, vm->env_id);
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(vm->name));
        json_object_object_add(o, "pool", text(pool));
        json_object_object_add(o, "env", text(env));
        json_object_object_add(o, "host", host_name(ctx, vm->host_id));
        json_object_object_add(o, "state", json_object_new_string(vp_vm_state(ctx, vm)));
        json_object_object_add(o, "uuid", json_object_new_string(vm->uuid));
        struct json_object *macs = json_object_new_array();
        _cleanup_free_ char *mcopy = vp_strdup(vm->macs);
        char *save = NULL;
        for (char *m = strtok_r(mcopy, ",", &save); m; m = strtok_r(NULL, ",", &save))
                json_object_array_add(macs, json_object_new_string(m));
        json_object_object_add(o, "macs", macs);
        json_object_object_add(o, "hostname", json_object_new_string(vm->hostname));
        json_object_object_add(o, "delta_path", json_object_new_string(vm->delta_path));
        json_object_object_add(o, "owner", json_object_new_string(vm->owner));
        json_object_object_add(o, "generation", json_object_new_int64(vm->generation));
        add_manifest(o, ctx, pool, vm);
        _cleanup_free_ char *log = vp_storage_log_path(&ctx->st, vm->name);
        json_object_object_add(o, "console_log", json_object_new_string(log));
        json_object_object_add(o, "created", json_object_new_string(vm->created));
        return o;
}

/* The id of the pool named NAME, as text for a column filter. */
static int pool_id_text(struct vp_ctx *ctx, const char *name, char buf[24], struct vp_error *err)
{
        struct vp_pool p = { 0 };
        int r = vp_row_get(ctx->cat, &vp_table_pool, "name", name, &p, err);
        if (r >= 0)
                snprintf(buf, 24, "%lld", (long long)p.id);
        vp_row_clear(&vp_table_pool, &p);
        return r;
}

int vp_vm_list(struct vp_ctx *ctx, const char *pool, struct json_object **ret, struct vp_error *err)
{
        char idbuf[24];
        int r = pool ? pool_id_text(ctx, pool, idbuf, err) : 0;
        if (r < 0)
                return r;
        return list_rows(ctx, &vp_table_vm, pool ? "pool_id" : NULL, pool ? idbuf : NULL, vm_json, ret, err);
}

int vp_vm_describe(struct vp_ctx *ctx, const char *name, struct json_object **ret, struct vp_error *err)
{
        return describe_row(ctx, &vp_table_vm, name, vm_json, ret, err);
}

int vp_vm_pool_name(struct vp_catalog *c, const char *vm, char **ret, struct vp_error *err)
{
        struct vp_vm v = { 0 };
        int r = vp_row_get(c, &vp_table_vm, "name", vm, &v, err);
        if (r >= 0) {
                char *name = name_of(c, &vp_table_pool, v.pool_id);
                if (name)
                        *ret = name;
                else
                        r = vp_err(err, -ENOENT, "unknown pool id %lld", (long long)v.pool_id);
        }
        vp_row_clear(&vp_table_vm, &v);
        return r;
}

/* ---- pools -------------------------------------------------------------- */

static struct json_object *pool_json(struct vp_ctx *ctx, const struct vp_pool *p, bool with_vms)
{
        _cleanup_free_ char *image = name_of(ctx->cat, &vp_table_image, p->image_id);
        _cleanup_free_ char *env = name_of(ctx->cat, &vp_table_env, p->env_id);
        _cleanup_free_ char *profile = name_of(ctx->cat, &vp_table_profile, p->profile_id);
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(p->name));
        json_object_object_add(o, "image", text(image));
        json_object_object_add(o, "env", text(env));
        json_object_object_add(o, "profile", text(profile));
        json_object_object_add(o, "size", json_object_new_int64(p->size));
        json_object_object_add(o, "data_disk_bytes", json_object_new_int64(p->data_disk_bytes));
        json_object_object_add(o, "state", json_object_new_string(p->state));
        json_object_object_add(o, "created", json_object_new_string(p->created));
        if (with_vms) {
                char idbuf[24];
                struct json_object *vms = NULL;
                snprintf(idbuf, sizeof(idbuf), "%lld", (long long)p->id);
                if (list_rows(ctx, &vp_table_vm, "pool_id", idbuf, vm_json, &vms, NULL) < 0)
                        vms = json_object_new_array();
                json_object_object_add(o, "vms", vms);
        }
        return o;
}

static struct json_object *pool_row(struct vp_ctx *ctx, const void *row)
{
        return pool_json(ctx, row, false);
}

static struct json_object *pool_row_with_vms(struct vp_ctx *ctx, const void *row)
{
        return pool_json(ctx, row, true);
}

int vp_pool_list(struct vp_ctx *ctx, const struct vp_pool_filter *f, struct json_object **ret, struct vp_error *err)
{
        if (f && f->env) {
                struct vp_env e = { 0 };
                void *rows = NULL;
                size_t n = 0;
                int r = vp_row_get(ctx->cat, &vp_table_env, "name", f->env, &e, err);
                if (r >= 0)
                        r = vp_row_query(ctx->cat, &vp_table_pool, "env_id = ?1", e.id, &rows, &n, err);
                vp_row_clear(&vp_table_env, &e);
                if (r < 0)
                        return r;
                struct json_object *a = json_object_new_array();
                for (size_t i = 0; i < n; i++) {
                        const struct vp_pool *p = &((const struct vp_pool *)rows)[i];
                        if (!f->name || streq(f->name, p->name))
                                json_object_array_add(a, pool_json(ctx, p, false));
                }
                vp_rows_free(&vp_table_pool, rows, n);
                *ret = a;
                return 0;
        }
        return list_rows(ctx, &vp_table_pool, f && f->name ? "name" : NULL, f ? f->name : NULL, pool_row, ret, err);
}

int vp_pool_describe(struct vp_ctx *ctx, const char *name, struct json_object **ret, struct vp_error *err)
{
        return describe_row(ctx, &vp_table_pool, name, pool_row_with_vms, ret, err);
}

/* ---- migrations --------------------------------------------------------- */

int vp_migration_get(struct vp_ctx *ctx, int64_t id, struct vp_migration *ret, struct vp_error *err)
{
        if (vp_row_get_id(ctx->cat, &vp_table_migration, id, ret, NULL) < 0)
                return vp_err(err, -ENOENT, "unknown migration %lld", (long long)id);
        return 0;
}

int vp_migration_pool_name(struct vp_catalog *c, int64_t id, char **ret, struct vp_error *err)
{
        struct vp_migration m = { 0 };
        int r = vp_row_get_id(c, &vp_table_migration, id, &m, err);
        if (r >= 0)
                *ret = vp_strdup(m.pool_name);
        vp_row_clear(&vp_table_migration, &m);
        return r;
}

enum vp_migration_state vp_migration_effective_state(struct vp_ctx *ctx, const struct vp_migration *m)
{
        enum vp_migration_state s = vp_migration_state_from_string(m->state);
        if (s == VP_MIGRATION_RUNNING && !vp_migration_active(ctx, m->id))
                return VP_MIGRATION_INTERRUPTED;
        return s;
}

static int migration_vms(struct vp_ctx *ctx, int64_t id, struct vp_migvm **ret, size_t *ret_n, struct vp_error *err)
{
        void *rows = NULL;
        int r = vp_row_query(ctx->cat, &vp_table_migvm, "migration_id = ?1", id, &rows, ret_n, err);
        if (r >= 0)
                *ret = rows;
        return r;
}


static struct json_object *migvm_json(struct vp_ctx *ctx, const struct vp_migvm *mv, const char *target)
{
        const char *source = mv->src_env;
        struct json_object *v = json_object_new_object();
        json_object_object_add(v, "vm", json_object_new_string(mv->vm_name));
        json_object_object_add(v, "step", json_object_new_string(mv->step));
        json_object_object_add(v, "source", text(source));
        json_object_object_add(v, "target", text(target));
        json_object_object_add(v, "source_host", host_name(ctx, mv->src_host_id));
        json_object_object_add(v, "target_host", host_name(ctx, mv->dst_host_id));
        json_object_object_add(v, "source_running", json_object_new_boolean(mv->source_running));
        json_object_object_add(v, "live", json_object_new_boolean(mv->live));
        json_object_object_add(v, "generation", json_object_new_int64(mv->generation));
        json_object_object_add(v, "error", text(mv->error));
        json_object_object_add(v, "updated", json_object_new_string(mv->updated));
        return v;
}

static struct json_object *migration_json(struct vp_ctx *ctx, const struct vp_migration *m, bool with_vms)
{
        /* By the names the migration keeps: the envs and profiles may be gone. */
        const char *from = m->from_env, *to = m->to_env, *from_profile = m->from_profile, *to_profile = m->to_profile;
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_int64(m->id));
        json_object_object_add(o, "pool", json_object_new_string(m->pool_name));
        json_object_object_add(o, "from", text(from));
        json_object_object_add(o, "to", text(to));
        json_object_object_add(o, "from_profile", text(from_profile));
        json_object_object_add(o, "to_profile", text(to_profile));
        enum vp_migration_state state = vp_migration_effective_state(ctx, m);
        json_object_object_add(o, "state", text(state >= 0 ? vp_migration_state_to_string(state) : m->state));
        json_object_object_add(o, "parallel", json_object_new_int64(m->parallel));
        json_object_object_add(o, "shutdown_timeout", json_object_new_int64(m->shutdown_timeout));
        struct vp_migvm *mv = NULL;
        size_t n = 0, done = 0;
        if (migration_vms(ctx, m->id, &mv, &n, NULL) < 0)
                n = 0;
        struct json_object *vms = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
                done += vp_step_from_string(mv[i].step) == VP_STEP_DONE;
                if (with_vms)
                        json_object_array_add(vms, migvm_json(ctx, &mv[i], to));
        }
        vp_rows_free(&vp_table_migvm, mv, n);
        json_object_object_add(o, "done", json_object_new_int64((int64_t)done));
        json_object_object_add(o, "total", json_object_new_int64((int64_t)n));
        json_object_object_add(o, "created", json_object_new_string(m->created));
        json_object_object_add(o, "updated", json_object_new_string(m->updated));
        if (with_vms)
                json_object_object_add(o, "vms", vms);
        else
                json_object_put(vms);
        return o;
}

static struct json_object *migration_row(struct vp_ctx *ctx, const void *row)
{
        return migration_json(ctx, row, false);
}

int vp_migration_list(struct vp_ctx *ctx, struct json_object **ret, struct vp_error *err)
{
        return list_rows(ctx, &vp_table_migration, NULL, NULL, migration_row, ret, err);
}

static struct json_object *fence_json(const struct vp_fence *f)
{
        struct json_object *o = json_object_new_object();
        bool agent = vp_fence_method_from_string(f->method) == VP_FENCE_AGENT;
        json_object_object_add(o, "env", json_object_new_string(f->env_name));
        json_object_object_add(o, "host", text(f->host_name));
        json_object_object_add(o, "method", json_object_new_string(f->method));
        json_object_object_add(o, "command", agent && f->command && *f->command ? json_tokener_parse(f->command) : NULL);
        json_object_object_add(o, "exit_status", agent ? json_object_new_int64(f->exit_status) : NULL);
        json_object_object_add(o, "output", agent ? text(f->output) : NULL);
        json_object_object_add(o, "asserted_by", agent ? NULL : text(f->output));
        json_object_object_add(o, "fenced", json_object_new_boolean(f->fenced));
        json_object_object_add(o, "at", text(f->at));
        return o;
}

/* The fences of migration ID, oldest first, as a JSON array. */
static int fences_json(struct vp_ctx *ctx, int64_t id, struct json_object **ret, struct vp_error *err)
{
        void *rows = NULL;
        size_t n = 0;
        int r = vp_row_query(ctx->cat, &vp_table_fence, "migration_id = ?1", id, &rows, &n, err);
        if (r < 0)
                return r;
        struct vp_fence *f = rows;
        *ret = json_object_new_array();
        for (size_t i = 0; i < n; i++)
                json_object_array_add(*ret, fence_json(&f[i]));
        vp_rows_free(&vp_table_fence, rows, n);
        return 0;
}

int vp_migration_status(struct vp_ctx *ctx, int64_t id, struct json_object **ret, struct vp_error *err)
{
        struct vp_migration m = { 0 };
        struct json_object *fences = NULL;
        int r = vp_migration_get(ctx, id, &m, err);
        if (r >= 0 && (r = fences_json(ctx, id, &fences, err)) >= 0) {
                *ret = migration_json(ctx, &m, true);
                json_object_object_add(*ret, "fences", fences);
        }
        vp_row_clear(&vp_table_migration, &m);
        return r;
}

int vp_migration_progress(struct vp_ctx *ctx, int64_t id, struct vp_migration_progress *ret, struct vp_error *err)
{
        struct vp_migvm *mv = NULL;
        size_t n = 0;
        int r = migration_vms(ctx, id, &mv, &n, err);
        if (r < 0)
                return r;
        struct vp_migration_progress p = { .total = n };
        for (size_t i = 0; i < n; i++) {
                enum vp_step s = vp_step_from_string(mv[i].step);
                p.failed += *mv[i].error != '\0';
                for (int k = 0; s >= 0 && k < VP_STEP_MAX; k++)
                        p.reached[k] += vp_step_reached(s, (enum vp_step)k);
        }
        vp_rows_free(&vp_table_migvm, mv, n);
        *ret = p;
        return 0;
}

int vp_migration_journal_since(struct vp_ctx *ctx, int64_t id, int64_t after, struct vp_journal **ret,
                               size_t *ret_n, struct vp_error *err)
{
        _cleanup_free_ char *where = vp_strdupf("migration_id = %lld AND id > ?1", (long long)id);
        void *rows = NULL;
        int r = vp_row_query(ctx->cat, &vp_table_journal, where, after, &rows, ret_n, err);
        if (r >= 0)
                *ret = rows;
        return r;
}

struct json_object *vp_migration_event_json(int64_t id, const char *vm, const char *step, double t, int64_t generation,
                                            const char *error)
{
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "migration", json_object_new_int64(id));
        json_object_object_add(o, "vm", vm && *vm ? json_object_new_string(vm) : NULL);
        json_object_object_add(o, "step", json_object_new_string(step));
        json_object_object_add(o, "time", json_object_new_double(t));
        json_object_object_add(o, "generation", json_object_new_int64(generation));
        json_object_object_add(o, "error", error ? json_object_new_string(error) : NULL);
        return o;
}

struct json_object *vp_migration_outcome_json(int64_t id, const char *state, int64_t done, int64_t total,
                                              const char *error)
{
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "migration", json_object_new_int64(id));
        json_object_object_add(o, "state", json_object_new_string(state));
        json_object_object_add(o, "done", count(done));
        json_object_object_add(o, "total", count(total));
        json_object_object_add(o, "error", text(error));
        return o;
}

struct json_object *vp_plan_json(const struct vp_plan *pl)
{
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "pool", json_object_new_string(pl->pool));
        json_object_object_add(o, "from_env", json_object_new_string(pl->from_env));
        json_object_object_add(o, "to_env", json_object_new_string(pl->to_env));
        json_object_object_add(o, "from_profile", json_object_new_string(pl->from_profile));
        json_object_object_add(o, "to_profile", json_object_new_string(pl->to_profile));
        struct json_object *d = json_object_new_array();
        for (int i = 0; i < pl->ndiffs; i++)
                json_object_array_add(d, json_object_new_string(pl->diffs[i]));
        json_object_object_add(o, "hardware_changes", d);
        json_object_object_add(o, "nic_rename", text(pl->nic_rename));
        json_object_object_add(o, "memory_needed_mib", json_object_new_int64(pl->memory_needed_mib));
        json_object_object_add(o, "memory_free_mib", json_object_new_int64(pl->memory_free_mib));
        struct json_object *a = json_object_new_array();
        for (size_t i = 0; i < pl->nvms; i++) {
                struct json_object *v = json_object_new_object();
                json_object_object_add(v, "vm", json_object_new_string(pl->vms[i].vm));
                json_object_object_add(v, "source_env", json_object_new_string(pl->vms[i].from_env));
                json_object_object_add(v, "source_host", text(pl->vms[i].from_host));
                json_object_object_add(v, "target_env", json_object_new_string(pl->vms[i].to_env));
                json_object_object_add(v, "target_host", text(pl->vms[i].to_host));
                json_object_object_add(v, "running", json_object_new_boolean(pl->vms[i].running));
                json_object_array_add(a, v);
        }
        json_object_object_add(o, "vms", a);
        struct json_object *hs = json_object_new_array();
        for (size_t i = 0; i < pl->nhosts; i++) {
                const struct vp_plan_host *ph = &pl->hosts[i];
                struct json_object *h = json_object_new_object();
                json_object_object_add(h, "host", json_object_new_string(ph->name));
                json_object_object_add(h, "eligible", json_object_new_boolean(ph->eligible));
                json_object_object_add(h, "why_not", ph->eligible ? NULL : text(ph->why));
                json_object_object_add(h, "memory_free_mib", json_object_new_int64(ph->memory_free_mib));
                json_object_object_add(h, "memory_needed_mib", json_object_new_int64(ph->memory_needed_mib));
                json_object_object_add(h, "vm_count", json_object_new_int64(ph->vms));
                json_object_array_add(hs, h);
        }
        json_object_object_add(o, "hosts", hs);
        return o;
}

/* ---- fsck ----------------------------------------------------------------- */

struct json_object *vp_fsck_json(const struct vp_fsck_report *rep, bool repair)
{
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "clean", json_object_new_boolean(rep->n == 0));
        json_object_object_add(o, "repair", json_object_new_boolean(repair));
        json_object_object_add(o, "env_count", json_object_new_int64((int64_t)rep->envs));
        json_object_object_add(o, "host_count", json_object_new_int64((int64_t)rep->hosts));
        json_object_object_add(o, "domain_count", json_object_new_int64((int64_t)rep->domains));
        json_object_object_add(o, "delta_count", json_object_new_int64((int64_t)rep->deltas));
        json_object_object_add(o, "vm_count", json_object_new_int64((int64_t)rep->vms));
        struct json_object *a = json_object_new_array();
        for (size_t i = 0; i < rep->n; i++) {
                const struct vp_problem *p = &rep->problems[i];
                struct json_object *j = json_object_new_object();
                json_object_object_add(j, "kind", json_object_new_string(p->kind));
                json_object_object_add(j, "subject", json_object_new_string(p->subject));
                json_object_object_add(j, "detail", json_object_new_string(p->detail));
                json_object_object_add(j, "repaired", json_object_new_boolean(p->repaired));
                json_object_array_add(a, j);
        }
        json_object_object_add(o, "problems", a);
        return o;
}

/* ---- tokens -------------------------------------------------------------- */

struct json_object *vp_token_json(const struct vp_token *t)
{
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(t->name));
        json_object_object_add(o, "role", json_object_new_string(t->role));
        json_object_object_add(o, "created", json_object_new_string(t->created));
        json_object_object_add(o, "last_used", text(t->last_used));
        return o;
}

static struct json_object *token_row(struct vp_ctx *ctx, const void *row)
{
        (void)ctx;
        return vp_token_json(row);
}

int vp_token_list_json(struct vp_ctx *ctx, struct json_object **ret, struct vp_error *err)
{
        return list_rows(ctx, &vp_table_token, NULL, NULL, token_row, ret, err);
}

struct json_object *vp_token_added_json(const struct vp_token *t, const char *secret)
{
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(t->name));
        json_object_object_add(o, "role", json_object_new_string(t->role));
        json_object_object_add(o, "token", json_object_new_string(secret));
        json_object_object_add(o, "created", json_object_new_string(t->created));
        return o;
}

/* ---- history -------------------------------------------------------------- */

static struct json_object *command_json(const struct vp_history *h)
{
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "type", json_object_new_string("command"));
        json_object_object_add(o, "id", json_object_new_int64(h->id));
        json_object_object_add(o, "at", json_object_new_string(h->at));
        json_object_object_add(o, "ended", text(h->ended));
        json_object_object_add(o, "user", json_object_new_string(h->user));
        json_object_object_add(o, "sudo_user", text(h->sudo_user));
        json_object_object_add(o, "host", json_object_new_string(h->host));
        json_object_object_add(o, "pid", json_object_new_int64(h->pid));
        json_object_object_add(o, "via", json_object_new_string(vp_via_to_string(vp_history_via(h))));
        json_object_object_add(o, "reason", text(h->reason));
        json_object_object_add(o, "command", json_object_new_string(h->command));
        json_object_object_add(o, "noun", json_object_new_string(h->noun));
        json_object_object_add(o, "verb", text(h->verb));
        json_object_object_add(o, "subject", text(h->subject));
        json_object_object_add(o, "pool", text(h->pool));
        json_object_object_add(o, "vm", text(h->vm));
        json_object_object_add(o, "migration", h->migration_id ? json_object_new_int64(h->migration_id) : NULL);
        json_object_object_add(o, "outcome", json_object_new_string(vp_history_outcome(h)));
        return o;
}

/* A migration step, with the command that ran it (H, NULL when none is recorded). */
static struct json_object *step_json(const struct vp_journal *j, const char *pool, const struct vp_history *h)
{
        bool failed = streq(j->step, VP_JOURNAL_ERROR);
        _cleanup_free_ char *outcome = failed ? vp_strdupf("failed: %s", j->detail) : vp_strdup("ok");
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "type", json_object_new_string("step"));
        json_object_object_add(o, "journal_id", json_object_new_int64(j->id));
        json_object_object_add(o, "at", json_object_new_string(j->at));
        json_object_object_add(o, "migration", json_object_new_int64(j->migration_id));
        json_object_object_add(o, "pool", text(pool));
        json_object_object_add(o, "vm", text(j->vm_name));
        json_object_object_add(o, "step", json_object_new_string(j->step));
        json_object_object_add(o, "generation", json_object_new_int64(j->generation));
        json_object_object_add(o, "detail", text(j->detail));
        json_object_object_add(o, "outcome", json_object_new_string(outcome));
        json_object_object_add(o, "command_id", h ? json_object_new_int64(h->id) : NULL);
        json_object_object_add(o, "user", h ? json_object_new_string(h->user) : NULL);
        json_object_object_add(o, "sudo_user", h ? text(h->sudo_user) : NULL);
        json_object_object_add(o, "via", h ? json_object_new_string(vp_via_to_string(vp_history_via(h))) : NULL);
        json_object_object_add(o, "command", h ? json_object_new_string(h->command) : NULL);
        return o;
}

struct json_object *vp_history_json(const struct vp_history_log *log)
{
        struct json_object *a = json_object_new_array();
        for (size_t i = 0; i < log->n; i++) {
                const struct vp_history_item *it = &log->items[i];
                json_object_array_add(a, it->step ? step_json(it->step, it->pool, it->cmd) : command_json(it->cmd));
        }
        return a;
}

/* ---- events -------------------------------------------------------------- */

struct json_object *vp_event_json(const struct vp_event *e)
{
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_int64(e->id));
        json_object_object_add(o, "at", json_object_new_string(e->at ? e->at : ""));
        json_object_object_add(o, "kind", json_object_new_string(e->kind ? e->kind : ""));
        json_object_object_add(o, "subject", text(e->subject));
        json_object_object_add(o, "pool", text(e->pool));
        json_object_object_add(o, "migration", e->migration_id ? json_object_new_int64(e->migration_id) : NULL);
        json_object_object_add(o, "vm", text(e->vm));
        json_object_object_add(o, "state", text(e->state));
        json_object_object_add(o, "detail", text(e->detail));
        return o;
}

/* ---- the estate ------------------------------------------------------------ */

/* The domains of every host, each read once: a pool of a thousand VMs
 * costs one call per host, not one per VM. */
struct host_domains {
        int64_t host_id;
        bool reachable;
        struct vp_hv_states s;
};

static void hosts_domains_load(struct vp_ctx *ctx, struct host_domains **ret, size_t *ret_n)
{
        struct vp_host *hs = NULL;
        size_t n = 0;
        void *rows = NULL;
        if (vp_row_list(ctx->cat, &vp_table_host, NULL, NULL, &rows, &n, NULL) < 0)
                n = 0;
        hs = rows;
        struct host_domains *hd = vp_xcalloc(n + 1, sizeof(*hd));
        for (size_t i = 0; i < n; i++) {
                virConnectPtr c;
                hd[i].host_id = hs[i].id;
                hd[i].reachable = vp_ctx_conn_host(ctx, &hs[i], &c, NULL) >= 0 &&
                                  vp_hv_states_stats(c, &hd[i].s, NULL) >= 0;
        }
        vp_rows_free(&vp_table_host, hs, n);
        *ret = hd;
        *ret_n = n;
}

static void hosts_domains_free(struct host_domains *hd, size_t n)
{
        for (size_t i = 0; i < n; i++)
                vp_hv_states_free(&hd[i].s);
        free(hd);
}

/* VM's state as its host's domains tell it; asked alone when the catalog
 * records it on no host. */
static enum vp_vm_state vm_state_in(struct vp_ctx *ctx, const struct vp_vm *vm, const struct host_domains *hd,
                                    size_t nhd)
{
        for (size_t i = 0; vm->host_id && i < nhd; i++) {
                if (hd[i].host_id != vm->host_id)
                        continue;
                if (!hd[i].reachable)
                        return VP_VM_UNREACHABLE;
                const struct vp_hv_domstate *ds = vp_hv_states_find(&hd[i].s, vm->name);
                return ds ? ds->state : VP_VM_UNDEFINED;
        }
        return vp_vm_live_state(ctx, vm);
}

/* Each pool with its VMs counted by state: "vm_states", an array of
 * {"state", "count"} in the order of the state words. */
static int estate_pools(struct vp_ctx *ctx, struct json_object **ret, struct vp_error *err)
{
        void *prows = NULL, *vrows = NULL;
        size_t np = 0, nv = 0, nhd = 0;
        int r = vp_row_list(ctx->cat, &vp_table_pool, NULL, NULL, &prows, &np, err);
        if (r < 0 || (r = vp_row_list(ctx->cat, &vp_table_vm, NULL, NULL, &vrows, &nv, err)) < 0) {
                vp_rows_free(&vp_table_pool, prows, np);
                return r;
        }
        const struct vp_pool *pools = prows;
        const struct vp_vm *vms = vrows;
        struct host_domains *hd = NULL;
        hosts_domains_load(ctx, &hd, &nhd);
        int64_t (*counts)[VP_VM_STATE_MAX] = vp_xcalloc(np + 1, sizeof(*counts));
        for (size_t v = 0; v < nv; v++)
                for (size_t p = 0; p < np; p++)
                        if (pools[p].id == vms[v].pool_id) {
                                counts[p][vm_state_in(ctx, &vms[v], hd, nhd)]++;
                                break;
                        }
        struct name_maps nm = { 0 };
        lists_names = &nm;
        struct json_object *a = json_object_new_array();
        for (size_t p = 0; p < np; p++) {
                struct json_object *o = pool_json(ctx, &pools[p], false), *states = json_object_new_array();
                for (int s = 0; s < VP_VM_STATE_MAX; s++) {
                        if (!counts[p][s])
                                continue;
                        struct json_object *c = json_object_new_object();
                        json_object_object_add(c, "state", json_object_new_string(vp_vm_state_to_string(s)));
                        json_object_object_add(c, "count", json_object_new_int64(counts[p][s]));
                        json_object_array_add(states, c);
                }
                json_object_object_add(o, "vm_states", states);
                json_object_array_add(a, o);
        }
        lists_names = NULL;
        name_maps_free(&nm);
        free(counts);
        hosts_domains_free(hd, nhd);
        vp_rows_free(&vp_table_pool, prows, np);
        vp_rows_free(&vp_table_vm, vrows, nv);
        *ret = a;
        return 0;
}

/* Every env with its hosts asked live (env_detail). */
static int estate_envs(struct vp_ctx *ctx, struct json_object **ret, struct vp_error *err)
{
        struct json_object *envs = NULL;
        int r = vp_env_list(ctx, &envs, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < json_object_array_length(envs); i++) {
                struct json_object *e = json_object_array_get_idx(envs, i), *name, *hosts = NULL;
                json_object_object_get_ex(e, "name", &name);
                if (vp_env_hosts_describe(ctx, json_object_get_string(name), true, &hosts, NULL) < 0)
                        hosts = json_object_new_array();
                json_object_object_add(e, "hosts", hosts);
        }
        *ret = envs;
        return 0;
}

/* The migrations not over: running, interrupted or partial. */
static int estate_migrations(struct vp_ctx *ctx, struct json_object **ret, struct vp_error *err)
{
        struct json_object *all = NULL;
        int r = vp_migration_list(ctx, &all, err);
        if (r < 0)
                return r;
        struct json_object *a = json_object_new_array();
        for (size_t i = 0; i < json_object_array_length(all); i++) {
                struct json_object *m = json_object_array_get_idx(all, i), *st;
                json_object_object_get_ex(m, "state", &st);
                enum vp_migration_state s = vp_migration_state_from_string(json_object_get_string(st));
                if (s != VP_MIGRATION_DONE && s != VP_MIGRATION_ABORTED)
                        json_object_array_add(a, json_object_get(m));
        }
        json_object_put(all);
        *ret = a;
        return 0;
}

int vp_estate(struct vp_ctx *ctx, struct json_object **ret, struct vp_error *err)
{
        struct json_object *envs = NULL, *pools = NULL, *migs = NULL;
        int r = estate_envs(ctx, &envs, err);
        if (r >= 0)
                r = estate_pools(ctx, &pools, err);
        if (r >= 0)
                r = estate_migrations(ctx, &migs, err);
        if (r < 0) {
                json_object_put(envs);
                json_object_put(pools);
                return r;
        }
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "envs", envs);
        json_object_object_add(o, "pools", pools);
        json_object_object_add(o, "migrations", migs);
        *ret = o;
        return 0;
}
