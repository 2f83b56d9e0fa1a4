/* vpoold's routes: each a method, a path pattern, the least role, and a
 * handler that calls the library and answers its document. Reads are
 * served here; changes become jobs (jobs.c). */
#include "vpoold.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "history.h"
#include "events.h"
#include "jobs.h"
#include "leader.h"
#include "name.h"
#include "parse.h"
#include "view.h"
#include "vp-config.h"

/* ---- lists: filters and pages ---- */

/* The route being served (for its filters). */
static const struct vpd_route *route_of(struct vpd_request *r)
{
        return r->route;
}

#define PAGE_MAX 1000

struct list_query {
        const struct vpd_route *rt;
        struct vpd_request *r;
        struct vpd_reply *rep;
        int64_t limit, offset;
        bool bad;
};

static bool is_filter(const struct vpd_route *rt, const char *key)
{
        for (const char *const *f = rt->filters; f && *f; f++)
                if (streq(*f, key))
                        return true;
        return false;
}

static enum MHD_Result check_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
        struct list_query *q = cls;
        struct vp_error err = { 0 };
        uint64_t n;
        if (q->bad)
                return MHD_NO;
        if (streq(key, "limit") || streq(key, "offset")) {
                bool lim = streq(key, "limit");
                if (!value || vp_parse_uint(key, value, lim ? 1 : 0, lim ? PAGE_MAX : INT64_MAX, &n, &err) < 0) {
                        vpd_problem(q->rep, 400, key, "%s", value ? err.msg : "a number is needed");
                        q->bad = true;
                        return MHD_NO;
                }
                *(lim ? &q->limit : &q->offset) = (int64_t)n;
        } else if (!is_filter(q->rt, key)) {
                char pb[64];
                vpd_problem(q->rep, 400, vp_printable(key, pb, sizeof(pb)), "unknown query parameter '%s'", pb);
                q->bad = true;
                return MHD_NO;
        } else if (!value || !*value) {
                vpd_problem(q->rep, 400, key, "the filter %s needs a value", key);
                q->bad = true;
                return MHD_NO;
        }
        return MHD_YES;
}

/* Parse the query of a list route: false with a 400 in REP when it holds
 * anything but limit, offset and the route's filters. */
static bool list_query_read(struct list_query *q, struct vpd_request *r, struct vpd_reply *rep,
                            const struct vpd_route *rt)
{
        *q = (struct list_query){ .rt = rt, .r = r, .rep = rep, .limit = 100 };
        MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, check_arg, q);
        return !q->bad;
}

/* Whether ITEM's field KEY reads as VALUE (strings as they are, numbers
 * and booleans as JSON writes them). */
static bool field_matches(struct json_object *item, const char *key, const char *value)
{
        struct json_object *v;
        if (!json_object_object_get_ex(item, key, &v) || !v)
                return false;
        const char *s = json_object_get_type(v) == json_type_string ? json_object_get_string(v)
                                                                     : json_object_to_json_string(v);
        return streq(s, value);
}

/* ARRAY (taken) as a page: the items every filter of the query matches,
 * from offset, at most limit, with the total. */
static void list_reply(struct list_query *q, struct json_object *array)
{
        struct json_object *items = json_object_new_array();
        size_t n = json_object_array_length(array);
        int64_t total = 0;
        for (size_t i = 0; i < n; i++) {
                struct json_object *it = json_object_array_get_idx(array, i);
                bool ok = true;
                for (const char *const *f = q->rt->filters; ok && f && *f; f++) {
                        const char *want = vpd_query(q->r, *f);
                        ok = !want || field_matches(it, *f, want);
                }
                if (!ok)
                        continue;
                if (total >= q->offset && total < q->offset + q->limit)
                        json_object_array_add(items, json_object_get(it));
                total++;
        }
        json_object_put(array);
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "items", items);
        json_object_object_add(o, "total", json_object_new_int64(total));
        json_object_object_add(o, "offset", json_object_new_int64(q->offset));
        json_object_object_add(o, "limit", json_object_new_int64(q->limit));
        vpd_reply_json(q->rep, 200, o);
}

void vpd_list_reply(struct vpd_request *r, struct vpd_reply *rep, struct json_object *array)
{
        struct list_query q;
        if (!list_query_read(&q, r, rep, route_of(r))) {
                json_object_put(array);
                return;
        }
        list_reply(&q, array);
}

/* A list route: FN gives the whole array. */
static void serve_list(struct vpd_request *r, struct vpd_reply *rep,
                       int (*fn)(struct vp_ctx *, struct json_object **, struct vp_error *))
{
        struct list_query q;
        if (!list_query_read(&q, r, rep, route_of(r)))
                return;
        struct vp_error err = { 0 };
        struct vp_ctx *ctx = vpd_read_ctx(r->d, &err);
        struct json_object *a = NULL;
        if (!ctx || fn(ctx, &a, &err) < 0) {
                vpd_problem_err(rep, &err);
                return;
        }
        list_reply(&q, a);
}

bool vpd_param_name(struct vpd_request *r, struct vpd_reply *rep, size_t i, const char *what)
{
        struct vp_error err = { 0 };
        if (vp_name_check(what, r->params[i], &err) < 0) {
                vpd_problem(rep, 400, what, "%s", err.msg);
                return false;
        }
        return true;
}

/* One named thing: FN describes it. */
static void serve_one(struct vpd_request *r, struct vpd_reply *rep, const char *what,
                      int (*fn)(struct vp_ctx *, const char *, struct json_object **, struct vp_error *))
{
        if (!vpd_param_name(r, rep, 0, what))
                return;
        struct vp_error err = { 0 };
        struct vp_ctx *ctx = vpd_read_ctx(r->d, &err);
        struct json_object *o = NULL;
        if (!ctx || fn(ctx, r->params[0], &o, &err) < 0) {
                vpd_problem_err(rep, &err);
                return;
        }
        vpd_reply_json(rep, 200, o);
}

/* ---- reads ---- */

static void get_index(struct vpd_request *r, struct vpd_reply *rep)
{
        struct json_object *o = json_object_new_object(), *links = json_object_new_object();
        json_object_object_add(o, "service", json_object_new_string("vpoold"));
        json_object_object_add(o, "version", json_object_new_string(VP_VERSION));
        json_object_object_add(o, "you", json_object_new_string(r->actor));
        json_object_object_add(o, "role", json_object_new_string(vp_role_to_string(r->role)));
        json_object_object_add(o, "controller", vpd_leader_json(r->d));
        static const char *const res[] = { "estate", "envs", "images", "profiles", "pools", "vms", "migrations",
                                           "history", "jobs", "events", "openapi.json" };
        for (size_t i = 0; i < ELEMENTSOF(res); i++) {
                char href[64];
                snprintf(href, sizeof(href), "/v1/%s", res[i]);
                json_object_object_add(links, res[i], json_object_new_string(href));
        }
        json_object_object_add(o, "links", links);
        vpd_reply_json(rep, 200, o);
}

static void get_envs(struct vpd_request *r, struct vpd_reply *rep) { serve_list(r, rep, vp_env_list); }
static void get_images(struct vpd_request *r, struct vpd_reply *rep) { serve_list(r, rep, vp_image_list); }
static void get_profiles(struct vpd_request *r, struct vpd_reply *rep) { serve_list(r, rep, vp_profile_list); }
static void get_migrations(struct vpd_request *r, struct vpd_reply *rep) { serve_list(r, rep, vp_migration_list); }
static void get_env(struct vpd_request *r, struct vpd_reply *rep) { serve_one(r, rep, "env", vp_env_describe); }
static void get_image(struct vpd_request *r, struct vpd_reply *rep) { serve_one(r, rep, "image", vp_image_describe); }
static void get_pool(struct vpd_request *r, struct vpd_reply *rep) { serve_one(r, rep, "pool", vp_pool_describe); }
static void get_vm(struct vpd_request *r, struct vpd_reply *rep) { serve_one(r, rep, "vm", vp_vm_describe); }

static void get_profile(struct vpd_request *r, struct vpd_reply *rep)
{
        serve_one(r, rep, "profile", vp_profile_describe);
}

static int all_pools(struct vp_ctx *ctx, struct json_object **ret, struct vp_error *err)
{
        struct vp_pool_filter f = { 0 };
        return vp_pool_list(ctx, &f, ret, err);
}

static int all_vms(struct vp_ctx *ctx, struct json_object **ret, struct vp_error *err)
{
        return vp_vm_list(ctx, NULL, ret, err);
}

static void get_pools(struct vpd_request *r, struct vpd_reply *rep) { serve_list(r, rep, all_pools); }
static void get_vms(struct vpd_request *r, struct vpd_reply *rep) { serve_list(r, rep, all_vms); }

static void get_env_hosts(struct vpd_request *r, struct vpd_reply *rep)
{
        struct list_query q;
        if (!vpd_param_name(r, rep, 0, "env") || !list_query_read(&q, r, rep, route_of(r)))
                return;
        struct vp_error err = { 0 };
        struct vp_ctx *ctx = vpd_read_ctx(r->d, &err);
        struct json_object *a = NULL;
        if (!ctx || vp_env_hosts_describe(ctx, r->params[0], true, &a, &err) < 0) {
                vpd_problem_err(rep, &err);
                return;
        }
        list_reply(&q, a);
}

bool vpd_param_id(struct vpd_request *r, struct vpd_reply *rep, const char *what, int64_t *id)
{
        uint64_t n;
        struct vp_error err = { 0 };
        if (vp_parse_uint(what, r->params[0], 1, INT64_MAX, &n, &err) < 0) {
                vpd_problem(rep, 400, "id", "%s", err.msg);
                return false;
        }
        *id = (int64_t)n;
        return true;
}

static void get_migration(struct vpd_request *r, struct vpd_reply *rep)
{
        int64_t id;
        if (!vpd_param_id(r, rep, "migration id", &id))
                return;
        struct vp_error err = { 0 };
        struct vp_ctx *ctx = vpd_read_ctx(r->d, &err);
        struct json_object *o = NULL;
        if (!ctx || vp_migration_status(ctx, id, &o, &err) < 0) {
                vpd_problem_err(rep, &err);
                return;
        }
        vpd_reply_json(rep, 200, o);
}

static void get_history(struct vpd_request *r, struct vpd_reply *rep)
{
        struct list_query q;
        if (!list_query_read(&q, r, rep, route_of(r)))
                return;
        const char *pool = vpd_query(r, "pool"), *vm = vpd_query(r, "vm"), *since = vpd_query(r, "since");
        struct vp_error err = { 0 };
        char when[32];
        if (pool && vp_name_check("pool", pool, &err) < 0) {
                vpd_problem(rep, 400, "pool", "%s", err.msg);
                return;
        }
        if (vm && vp_name_check("vm", vm, &err) < 0) {
                vpd_problem(rep, 400, "vm", "%s", err.msg);
                return;
        }
        if (since && vp_parse_since(since, time(NULL), when, &err) < 0) {
                vpd_problem(rep, 400, "since", "%s", err.msg);
                return;
        }
        const char *via = vpd_query(r, "via");
        if (via && vp_via_from_string(via) < 0) {
                _cleanup_free_ char *all = vp_via_list(", ");
                char pb[64];
                vpd_problem(rep, 400, "via", "unknown via '%s' (%s)", vp_printable(via, pb, sizeof(pb)), all);
                return;
        }
        struct vp_ctx *ctx = vpd_read_ctx(r->d, &err);
        struct vp_history_filter f = { .pool = pool, .vm = vm, .since = since ? when : NULL, .via = via };
        struct vp_history_log log;
        if (!ctx || vp_history_read(ctx->cat, &f, &log, &err) < 0) {
                vpd_problem_err(rep, &err);
                return;
        }
        struct json_object *a = vp_history_json(&log);
        vp_history_log_free(&log);
        /* pool, vm, since and via were applied by the reader; the page is ours. */
        struct vpd_route page_only = *q.rt;
        page_only.filters = NULL;
        q.rt = &page_only;
        list_reply(&q, a);
}

static void get_estate(struct vpd_request *r, struct vpd_reply *rep)
{
        struct vp_error err = { 0 };
        struct vp_ctx *ctx = vpd_read_ctx(r->d, &err);
        struct json_object *o = NULL;
        if (!ctx || vp_estate(ctx, &o, &err) < 0) {
                vpd_problem_err(rep, &err);
                return;
        }
        vpd_reply_json(rep, 200, o);
}

static void get_openapi(struct vpd_request *r, struct vpd_reply *rep)
{
        struct json_object *o = vpd_openapi();
        if (!o) {
                vpd_problem(rep, 500, NULL, "the OpenAPI document is not valid JSON");
                return;
        }
        vpd_reply_json(rep, 200, o);
}

/* ---- the table ---- */

#define FILTERS(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define NO_FILTERS ((const char *const[]){ NULL })

const struct vpd_route vpd_routes[] = {
        { "GET", "/v1", VP_ROLE_VIEWER, get_index, NULL },
        { "GET", "/v1/openapi.json", VP_ROLE_VIEWER, get_openapi, NULL },
        { "GET", "/v1/estate", VP_ROLE_VIEWER, get_estate, NULL },
        { "GET", "/v1/envs", VP_ROLE_VIEWER, get_envs, FILTERS("name", "domain_type") },
        { "GET", "/v1/envs/{env}", VP_ROLE_VIEWER, get_env, NULL },
        { "GET", "/v1/envs/{env}/hosts", VP_ROLE_VIEWER, get_env_hosts, FILTERS("name", "reachable", "maintenance") },
        { "GET", "/v1/images", VP_ROLE_VIEWER, get_images, FILTERS("name", "format") },
        { "GET", "/v1/images/{image}", VP_ROLE_VIEWER, get_image, NULL },
        { "GET", "/v1/profiles", VP_ROLE_VIEWER, get_profiles, FILTERS("name", "machine", "disk_bus", "nic", "firmware") },
        { "GET", "/v1/profiles/{profile}", VP_ROLE_VIEWER, get_profile, NULL },
        { "GET", "/v1/pools", VP_ROLE_VIEWER, get_pools, FILTERS("name", "env", "image", "profile", "state") },
        { "GET", "/v1/pools/{pool}", VP_ROLE_VIEWER, get_pool, NULL },
        { "GET", "/v1/vms", VP_ROLE_VIEWER, get_vms, FILTERS("name", "pool", "env", "host", "state") },
        { "GET", "/v1/vms/{vm}", VP_ROLE_VIEWER, get_vm, NULL },
        { "GET", "/v1/migrations", VP_ROLE_VIEWER, get_migrations, FILTERS("pool", "state", "from_env", "to_env") },
        { "GET", "/v1/migrations/{id}", VP_ROLE_VIEWER, get_migration, NULL },
        { "GET", "/v1/history", VP_ROLE_VIEWER, get_history, FILTERS("pool", "vm", "since", "via") },
        { "GET", "/v1/events", VP_ROLE_VIEWER, vpd_get_events, FILTERS("since") },
        VPD_JOB_ROUTES,
        { NULL, NULL, 0, NULL, NULL },
};

/* Whether PATH matches PATTERN, its {parameters} into R. */
static bool match(struct vpd_request *r, const char *pattern, const char *path)
{
        static __thread char seg[VPD_PATH_PARAMS][256];
        size_t np = 0;
        const char *p = pattern, *u = path;
        while (*p && *u) {
                if (*p != '/' || *u != '/')
                        return false;
                p++, u++;
                const char *pe = strchrnul(p, '/'), *ue = strchrnul(u, '/');
                if (*p == '{') {
                        size_t len = (size_t)(ue - u);
                        if (len == 0 || len >= sizeof(seg[0]) || np == VPD_PATH_PARAMS)
                                return false;
                        memcpy(seg[np], u, len);
                        seg[np][len] = 0;
                        np++;
                } else if (pe - p != ue - u || memcmp(p, u, (size_t)(pe - p)) != 0) {
                        return false;
                }
                p = pe, u = ue;
        }
        if (*p || *u)
                return false;
        for (size_t i = 0; r && i < np; i++)
                r->params[i] = seg[i];
        if (r)
                r->nparams = np;
        return true;
}

const struct vpd_route *vpd_route_find(struct vpd_request *r, const char *method, const char *path,
                                       bool *path_known)
{
        *path_known = false;
        const struct vpd_route *found = NULL;
        for (const struct vpd_route *rt = vpd_routes; rt->method && !found; rt++) {
                if (!match(NULL, rt->pattern, path))
                        continue;
                *path_known = true;
                if (streq(rt->method, method) && match(r, rt->pattern, path))
                        found = rt;
        }
        return found;
}
