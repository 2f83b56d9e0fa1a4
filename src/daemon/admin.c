/* The admin's changes: envs, their hosts and settings, images and profiles,
 * each what the CLI's verb does, through the same library calls. A body is
 * checked field by field with the library's own checks, so a refusal names
 * its field, then the change runs as a job (jobs.c). */
#include "jobs.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "body.h"
#include "fence.h"
#include "host.h"
#include "hostfail.h"
#include "name.h"
#include "../lib/policy.h"

#define HOSTS_MAX 16
#define URI_MAX 1024
#define FENCE_MAX 4096

/* What the library said of FIELD, as a 400 naming it. */
static bool field_refused(struct vpd_reply *rep, const char *field, const struct vp_error *err)
{
        vpd_problem(rep, 400, field, "%s", err->msg);
        return false;
}

/* The change as a job when its body passed every check; otherwise the
 * problem is already answered and the change's memory goes. */
static void submit_checked(bool ok, struct vpd_request *r, struct vpd_reply *rep, const char *kind,
                           const char *subject, struct json_object *o, void *c, vpd_job_fn fn)
{
        if (!ok) {
                free(c);
                json_object_put(o);
                return;
        }
        vpd_job_submit(r, rep, kind, subject, NULL, NULL, o, c, fn);
}

/* An optional fence agent as typed: checked by the library, kept as typed. */
static bool fence_field(struct json_object *o, struct vpd_reply *rep, char *out, size_t outsz,
                        struct vpd_body_error *e)
{
        struct vp_error err = { 0 };
        _cleanup_free_ char *argv = NULL;
        if (!vpd_fields_ok(vpd_field_text(o, "fence_cmd", false, out, outsz, e), rep, e))
                return false;
        if (out[0] && vp_fence_cmd_parse(out, &argv, &err) < 0)
                return field_refused(rep, "fence_cmd", &err);
        return true;
}

/* ---- envs ---- */

struct env_change {
        char env[64], host[64];
        char hosts[HOSTS_MAX][URI_MAX];   /* "[NAME=]URI", split in place into specs */
        struct vp_host_spec specs[HOSTS_MAX];
        size_t nhosts;
        char domain_type[16];
        char fence_cmd[FENCE_MAX];
        bool no_fence_cmd, force;
        char on_maintenance[16], on_host_failure[80], grace[24];
        char to[64], profile[64], window[32];
        int64_t wave;
        bool report;
};

static int run_env_add(struct vpd_job *j, struct vp_ctx *ctx, struct vp_error *err)
{
        struct env_change *c = j->data;
        struct vp_env e = { 0 };
        const char *note = NULL;
        int r = vp_env_add(ctx, c->env, c->specs, c->nhosts, c->domain_type, c->fence_cmd[0] ? c->fence_cmd : NULL,
                           &e, &note, err);
        if (r >= 0 && note)
                vpd_log(LOG_INFO, "env %s: domain type %s (%s)", c->env, vp_hv_pick_domain_type(e.domain_types), note);
        vp_row_clear(&vp_table_env, &e);
        return r;
}

/* The hosts of an env add: "uri" (one) or "hosts" (each "[NAME=]URI", as
 * --host takes it), not both. */
static bool env_hosts(struct json_object *o, struct vpd_reply *rep, struct env_change *c, struct vpd_body_error *e)
{
        bool has_uri = json_object_object_get(o, "uri") != NULL;
        bool has_hosts = json_object_object_get(o, "hosts") != NULL;
        if (!has_uri && !has_hosts) {
                vpd_problem(rep, 400, "uri", "missing field 'uri' or 'hosts' (one string per host)");
                return false;
        }
        if (has_uri && has_hosts) {
                vpd_problem(rep, 400, "hosts", "give 'uri' or 'hosts', not both");
                return false;
        }
        if (has_uri) {
                if (!vpd_field_text(o, "uri", true, c->hosts[0], sizeof(c->hosts[0]), e)) {
                        vpd_problem(rep, 400, e->field, "%s", e->detail);
                        return false;
                }
                c->specs[0] = (struct vp_host_spec){ .uri = c->hosts[0] };
                c->nhosts = 1;
                return true;
        }
        if (!vpd_field_texts(o, "hosts", HOSTS_MAX, c->hosts[0], sizeof(c->hosts[0]), &c->nhosts, e)) {
                vpd_problem(rep, 400, e->field, "%s", e->detail);
                return false;
        }
        struct vp_error err = { 0 };
        for (size_t i = 0; i < c->nhosts; i++)
                if (vp_host_spec_parse(c->hosts[i], &c->specs[i], &err) < 0)
                        return field_refused(rep, "hosts", &err);
        return true;
}

void vpd_post_envs(struct vpd_request *r, struct vpd_reply *rep)
{
        static const char *const allowed[] = { "name", "uri", "hosts", "domain_type", "fence_cmd", NULL };
        struct json_object *o = vpd_body_read(r, rep, allowed);
        if (!o)
                return;
        struct env_change *c = vp_xcalloc(1, sizeof(*c));
        snprintf(c->domain_type, sizeof(c->domain_type), "auto");
        struct vpd_body_error e = { 0 };
        struct vp_error err = { 0 };
        bool ok = vpd_fields_ok(vpd_field_name(o, "name", "env", true, c->env, sizeof(c->env), &e) &&
                                        vpd_field_text(o, "domain_type", false, c->domain_type,
                                                       sizeof(c->domain_type), &e),
                                rep, &e);
        if (ok && vp_domain_type_check(c->domain_type, &err) < 0)
                ok = field_refused(rep, "domain_type", &err);
        ok = ok && env_hosts(o, rep, c, &e) && fence_field(o, rep, c->fence_cmd, sizeof(c->fence_cmd), &e);
        submit_checked(ok, r, rep, "env.add", c->env, o, c, run_env_add);
}

/* The settings of a PATCH, each checked by the library: a fence agent
 * ("fence_cmd": null takes it away), on_maintenance, on_host_failure, grace. */
static bool env_settings(struct json_object *o, struct vpd_reply *rep, struct env_change *c,
                         struct vpd_body_error *e)
{
        static const char *const keys[] = { "fence_cmd", "on_maintenance", "on_host_failure", "grace" };
        bool any = false;
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                any |= json_object_object_get_ex(o, keys[i], NULL);
        if (!any) {
                vpd_problem(rep, 400, NULL, "nothing to set: give fence_cmd, on_maintenance, on_host_failure or "
                            "grace");
                return false;
        }
        struct vp_error err = { 0 };
        struct vp_host_failure_policy pol;
        int64_t grace = 0;
        c->no_fence_cmd = vpd_field_is_null(o, "fence_cmd");
        if (!fence_field(o, rep, c->fence_cmd, sizeof(c->fence_cmd), e))
                return false;
        if (!vpd_fields_ok(vpd_field_text(o, "on_maintenance", false, c->on_maintenance, sizeof(c->on_maintenance),
                                          e) &&
                                   vpd_field_text(o, "on_host_failure", false, c->on_host_failure,
                                                  sizeof(c->on_host_failure), e) &&
                                   vpd_field_uint(o, "grace", 1, VP_HOST_FAILURE_GRACE_MAX, false, &grace, e),
                           rep, e))
                return false;
        if (c->on_maintenance[0] && vp_on_maintenance_parse(c->on_maintenance, &err) < 0)
                return field_refused(rep, "on_maintenance", &err);
        if (c->on_host_failure[0] && vp_host_failure_parse(c->on_host_failure, &pol, &err) < 0)
                return field_refused(rep, "on_host_failure", &err);
        if (grace)
                snprintf(c->grace, sizeof(c->grace), "%lld", (long long)grace);
        return true;
}

static int run_env_set(struct vpd_job *j, struct vp_ctx *ctx, struct vp_error *err)
{
        struct env_change *c = j->data;
        struct vp_env_settings s = {
                .fence_cmd = c->fence_cmd[0] ? c->fence_cmd : NULL, .no_fence_cmd = c->no_fence_cmd,
                .on_maintenance = c->on_maintenance[0] ? c->on_maintenance : NULL,
                .on_host_failure = c->on_host_failure[0] ? c->on_host_failure : NULL,
                .grace = c->grace[0] ? c->grace : NULL,
        };
        return vp_env_set(ctx, c->env, &s, err);
}

void vpd_patch_env(struct vpd_request *r, struct vpd_reply *rep)
{
        static const char *const allowed[] = { "fence_cmd", "on_maintenance", "on_host_failure", "grace", NULL };
        if (!vpd_param_name(r, rep, 0, "env"))
                return;
        struct json_object *o = vpd_body_read(r, rep, allowed);
        if (!o)
                return;
        struct env_change *c = vp_xcalloc(1, sizeof(*c));
        snprintf(c->env, sizeof(c->env), "%s", r->params[0]);
        struct vpd_body_error e = { 0 };
        submit_checked(env_settings(o, rep, c, &e), r, rep, "env.set", c->env, o, c, run_env_set);
}

static int run_env_retire(struct vpd_job *j, struct vp_ctx *ctx, struct vp_error *err)
{
        struct env_change *c = j->data;
        struct vp_retire_args a = { .env = c->env, .to = c->to, .profile = c->profile[0] ? c->profile : NULL,
                                    .window = c->window[0] ? c->window : NULL, .wave = c->wave,
                                    .report = c->report };
        return vp_env_retire(ctx, &a, err);
}

void vpd_post_env_retire(struct vpd_request *r, struct vpd_reply *rep)
{
        static const char *const allowed[] = { "to", "profile", "window", "wave", "report", NULL };
        if (!vpd_param_name(r, rep, 0, "env"))
                return;
        struct json_object *o = vpd_body_read(r, rep, allowed);
        if (!o)
                return;
        struct env_change *c = vp_xcalloc(1, sizeof(*c));
        snprintf(c->env, sizeof(c->env), "%s", r->params[0]);
        c->wave = 1;
        struct vpd_body_error e = { 0 };
        struct vp_error err = { 0 };
        struct vp_window w;
        bool ok = vpd_fields_ok(vpd_field_name(o, "to", "env", true, c->to, sizeof(c->to), &e) &&
                                        vpd_field_name(o, "profile", "profile", false, c->profile,
                                                       sizeof(c->profile), &e) &&
                                        vpd_field_text(o, "window", false, c->window, sizeof(c->window), &e) &&
                                        vpd_field_uint(o, "wave", 1, VP_RETIRE_WAVE_MAX, false, &c->wave, &e) &&
                                        vpd_field_bool(o, "report", &c->report, &e),
                                rep, &e);
        if (ok && c->window[0] && vp_window_parse(c->window, &w, &err) < 0)
                ok = field_refused(rep, "window", &err);
        submit_checked(ok, r, rep, "env.retire", c->env, o, c, run_env_retire);
}

static int run_env_unretire(struct vpd_job *j, struct vp_ctx *ctx, struct vp_error *err)
{
        return vp_env_unretire(ctx, ((struct env_change *)j->data)->env, err);
}

static int run_env_rm(struct vpd_job *j, struct vp_ctx *ctx, struct vp_error *err)
{
        return vp_env_rm(ctx, ((struct env_change *)j->data)->env, err);
}

static int run_host_rm(struct vpd_job *j, struct vp_ctx *ctx, struct vp_error *err)
{
        struct env_change *c = j->data;
        return vp_env_host_rm(ctx, c->env, c->host, c->force, err);
}

static int run_host_maintenance(struct vpd_job *j, struct vp_ctx *ctx, struct vp_error *err)
{
        struct env_change *c = j->data;
        return vp_env_host_set_maintenance(ctx, c->env, c->host, true, err);
}

/* A change of the env (and host, when HOST) the path names: its body holds
 * at most ALLOWED (force). */
static void env_act(struct vpd_request *r, struct vpd_reply *rep, bool host, const char *kind,
                    const char *const *allowed, vpd_job_fn fn)
{
        if (!vpd_param_name(r, rep, 0, "env") || (host && !vpd_param_name(r, rep, 1, "host")))
                return;
        struct json_object *o = vpd_body_read(r, rep, allowed);
        if (!o)
                return;
        struct env_change *c = vp_xcalloc(1, sizeof(*c));
        snprintf(c->env, sizeof(c->env), "%s", r->params[0]);
        if (host)
                snprintf(c->host, sizeof(c->host), "%s", r->params[1]);
        struct vpd_body_error e = { 0 };
        if (!vpd_fields_ok(vpd_field_bool(o, "force", &c->force, &e), rep, &e)) {
                free(c);
                json_object_put(o);
                return;
        }
        char subject[160];
        snprintf(subject, sizeof(subject), "%s%s%s", c->env, host ? "/" : "", c->host);
        vpd_job_submit(r, rep, kind, subject, NULL, NULL, o, c, fn);
}

void vpd_delete_env(struct vpd_request *r, struct vpd_reply *rep)
{
        static const char *const allowed[] = { NULL };
        env_act(r, rep, false, "env.rm", allowed, run_env_rm);
}

void vpd_delete_env_retire(struct vpd_request *r, struct vpd_reply *rep)
{
        static const char *const allowed[] = { NULL };
        env_act(r, rep, false, "env.unretire", allowed, run_env_unretire);
}

void vpd_delete_host(struct vpd_request *r, struct vpd_reply *rep)
{
        static const char *const allowed[] = { "force", NULL };
        env_act(r, rep, true, "host.rm", allowed, run_host_rm);
}

void vpd_post_host_maintenance(struct vpd_request *r, struct vpd_reply *rep)
{
        static const char *const allowed[] = { NULL };
        env_act(r, rep, true, "host.maintenance", allowed, run_host_maintenance);
}

static int run_host_add(struct vpd_job *j, struct vp_ctx *ctx, struct vp_error *err)
{
        struct env_change *c = j->data;
        struct vp_host h = { 0 };
        int r = vp_env_host_add(ctx, c->env, &c->specs[0], &h, err);
        vp_row_clear(&vp_table_host, &h);
        return r;
}

void vpd_post_hosts(struct vpd_request *r, struct vpd_reply *rep)
{
        static const char *const allowed[] = { "uri", "name", NULL };
        if (!vpd_param_name(r, rep, 0, "env"))
                return;
        struct json_object *o = vpd_body_read(r, rep, allowed);
        if (!o)
                return;
        struct env_change *c = vp_xcalloc(1, sizeof(*c));
        snprintf(c->env, sizeof(c->env), "%s", r->params[0]);
        struct vpd_body_error e = { 0 };
        struct vp_error err = { 0 };
        bool ok = vpd_fields_ok(vpd_field_text(o, "uri", true, c->hosts[0], sizeof(c->hosts[0]), &e) &&
                                        vpd_field_name(o, "name", "host", false, c->host, sizeof(c->host), &e),
                                rep, &e);
        /* The name it will have, for the job's subject: a URI that names no
         * host needs one. */
        _cleanup_free_ char *name = NULL;
        if (ok && !c->host[0] && vp_host_default_name(c->hosts[0], NULL, &name, &err) < 0)
                ok = field_refused(rep, "uri", &err);
        if (!ok) {
                free(c);
                json_object_put(o);
                return;
        }
        c->specs[0] = (struct vp_host_spec){ .name = c->host[0] ? c->host : NULL, .uri = c->hosts[0] };
        char subject[160];
        snprintf(subject, sizeof(subject), "%s/%s", c->env, c->host[0] ? c->host : name);
        vpd_job_submit(r, rep, "host.add", subject, NULL, NULL, o, c, run_host_add);
}

/* ---- images ---- */

struct image_change {
        char name[64], format[16], disk_buses[64], nic_models[64], firmwares[32];
        char file[PATH_MAX], kernel[PATH_MAX], initrd[PATH_MAX], cmdline[1025];
        bool no_inspect, inspecting;
        struct vpd_job *job;
};

/* Inspection has begun: the image is imported and its header passed, and
 * what is left may take a while, so the client is answered now. */
static void inspecting(void *ud, const char *stage, unsigned elapsed)
{
        struct image_change *c = ud;
        if (!c->inspecting)
                vpd_job_accept(c->job, 0);
        c->inspecting = true;
}

static void image_args(struct image_change *c, struct vp_image_args *a)
{
        *a = (struct vp_image_args){
                .name = c->name, .file = c->file, .format = c->format[0] ? c->format : NULL,
                .disk_buses = c->disk_buses[0] ? c->disk_buses : NULL,
                .nic_models = c->nic_models[0] ? c->nic_models : NULL,
                .firmwares = c->firmwares[0] ? c->firmwares : NULL, .kernel = c->kernel[0] ? c->kernel : NULL,
                .initrd = c->initrd[0] ? c->initrd : NULL, .cmdline = c->cmdline[0] ? c->cmdline : NULL,
                .no_inspect = c->no_inspect, .progress = inspecting, .progress_ud = c,
        };
}

static int run_image_add(struct vpd_job *j, struct vp_ctx *ctx, struct vp_error *err)
{
        struct image_change *c = j->data;
        struct vp_image_args a;
        struct vp_image im = { 0 };
        _cleanup_free_ char *warning = NULL;
        c->job = j;
        image_args(c, &a);
        a.ret_warning = &warning;
        int r = vp_image_add(ctx, &a, &im, err);
        if (r >= 0 && warning)
                vpd_log(LOG_WARNING, "job %lld: %s", (long long)j->id, warning);
        vp_row_clear(&vp_table_image, &im);
        return r;
}

/* The paths of an image add: files on the controller, named absolutely. */
static bool image_paths(struct json_object *o, struct vpd_reply *rep, struct image_change *c,
                        struct vpd_body_error *e)
{
        struct {
                const char *key;
                char *out;
                bool required;
        } paths[] = { { "file", c->file, true }, { "kernel", c->kernel, false }, { "initrd", c->initrd, false } };
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                if (!vpd_fields_ok(vpd_field_text(o, paths[i].key, paths[i].required, paths[i].out, PATH_MAX, e),
                                   rep, e))
                        return false;
                if (paths[i].out[0] && paths[i].out[0] != '/') {
                        vpd_problem(rep, 400, paths[i].key, "the field '%s' must be an absolute path",
                                    paths[i].key);
                        return false;
                }
        }
        return true;
}

void vpd_post_images(struct vpd_request *r, struct vpd_reply *rep)
{
        static const char *const allowed[] = { "name", "file", "format", "disk_buses", "nic_models", "firmwares",
                                               "kernel", "initrd", "cmdline", "no_inspect", NULL };
        struct json_object *o = vpd_body_read(r, rep, allowed);
        if (!o)
                return;
        struct image_change *c = vp_xcalloc(1, sizeof(*c));
        struct vpd_body_error e = { 0 };
        struct vp_error err = { 0 };
        bool ok = vpd_fields_ok(vpd_field_name(o, "name", "image", true, c->name, sizeof(c->name), &e) &&
                                        vpd_field_text(o, "format", false, c->format, sizeof(c->format), &e) &&
                                        vpd_field_text(o, "disk_buses", false, c->disk_buses,
                                                       sizeof(c->disk_buses), &e) &&
                                        vpd_field_text(o, "nic_models", false, c->nic_models,
                                                       sizeof(c->nic_models), &e) &&
                                        vpd_field_text(o, "firmwares", false, c->firmwares, sizeof(c->firmwares),
                                                       &e) &&
                                        vpd_field_text(o, "cmdline", false, c->cmdline, sizeof(c->cmdline), &e) &&
                                        vpd_field_bool(o, "no_inspect", &c->no_inspect, &e),
                                rep, &e) &&
                  image_paths(o, rep, c, &e);
        struct vp_image_args a;
        const char *field = NULL;
        image_args(c, &a);
        if (ok && vp_image_args_check(&a, &field, &err) < 0)
                ok = field_refused(rep, field, &err);
        submit_checked(ok, r, rep, "image.add", c->name, o, c, run_image_add);
}

/* ---- profiles ---- */

struct profile_change {
        char name[64], machine[64], disk_bus[16], nic[16], firmware[16], cpu_mode[32];
        int64_t vcpus, memory_mib;
};

static void profile_row(struct profile_change *c, struct vp_profile *p)
{
        *p = (struct vp_profile){
                .name = c->name, .machine = c->machine, .disk_bus = c->disk_bus, .nic = c->nic,
                .firmware = c->firmware[0] ? c->firmware : NULL, .cpu_mode = c->cpu_mode[0] ? c->cpu_mode : NULL,
                .vcpus = c->vcpus, .memory_mib = c->memory_mib,
        };
}

static int run_profile_add(struct vpd_job *j, struct vp_ctx *ctx, struct vp_error *err)
{
        struct vp_profile p;
        profile_row(j->data, &p);
        int r = vp_profile_add(ctx, &p, err);
        free(p.created);
        return r;
}

void vpd_post_profiles(struct vpd_request *r, struct vpd_reply *rep)
{
        static const char *const allowed[] = { "name", "machine", "disk_bus", "nic", "vcpus", "memory_mib",
                                               "firmware", "cpu_mode", NULL };
        struct json_object *o = vpd_body_read(r, rep, allowed);
        if (!o)
                return;
        struct profile_change *c = vp_xcalloc(1, sizeof(*c));
        struct vpd_body_error e = { 0 };
        struct vp_error err = { 0 };
        bool ok = vpd_fields_ok(vpd_field_name(o, "name", "profile", true, c->name, sizeof(c->name), &e) &&
                                        vpd_field_text(o, "machine", true, c->machine, sizeof(c->machine), &e) &&
                                        vpd_field_text(o, "disk_bus", true, c->disk_bus, sizeof(c->disk_bus), &e) &&
                                        vpd_field_text(o, "nic", true, c->nic, sizeof(c->nic), &e) &&
                                        vpd_field_uint(o, "vcpus", 1, VP_PROFILE_VCPUS_MAX, true, &c->vcpus, &e) &&
                                        vpd_field_uint(o, "memory_mib", VP_PROFILE_MEMORY_MIB_MIN,
                                                       VP_PROFILE_MEMORY_MIB_MAX, true, &c->memory_mib, &e) &&
                                        vpd_field_text(o, "firmware", false, c->firmware, sizeof(c->firmware), &e) &&
                                        vpd_field_text(o, "cpu_mode", false, c->cpu_mode, sizeof(c->cpu_mode), &e),
                                rep, &e);
        struct vp_profile p;
        const char *field = NULL;
        profile_row(c, &p);
        if (ok && vp_profile_check(&p, &field, &err) < 0)
                ok = field_refused(rep, field, &err);
        submit_checked(ok, r, rep, "profile.add", c->name, o, c, run_profile_add);
}

/* ---- removals of one named thing ---- */

struct named_change {
        char name[64];
};

static int run_image_rm(struct vpd_job *j, struct vp_ctx *ctx, struct vp_error *err)
{
        return vp_image_rm(ctx, ((struct named_change *)j->data)->name, err);
}

static int run_profile_rm(struct vpd_job *j, struct vp_ctx *ctx, struct vp_error *err)
{
        return vp_profile_rm(ctx, ((struct named_change *)j->data)->name, err);
}

/* Remove the WHAT the path names; no body. */
static void named_rm(struct vpd_request *r, struct vpd_reply *rep, const char *what, const char *kind,
                     vpd_job_fn fn)
{
        static const char *const allowed[] = { NULL };
        if (!vpd_param_name(r, rep, 0, what))
                return;
        struct json_object *o = vpd_body_read(r, rep, allowed);
        if (!o)
                return;
        struct named_change *c = vp_xcalloc(1, sizeof(*c));
        snprintf(c->name, sizeof(c->name), "%s", r->params[0]);
        vpd_job_submit(r, rep, kind, c->name, NULL, NULL, o, c, fn);
}

void vpd_delete_image(struct vpd_request *r, struct vpd_reply *rep)
{
        named_rm(r, rep, "image", "image.rm", run_image_rm);
}

void vpd_delete_profile(struct vpd_request *r, struct vpd_reply *rep)
{
        named_rm(r, rep, "profile", "profile.rm", run_profile_rm);
}
