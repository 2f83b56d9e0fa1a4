#include "core.h"
#include "host.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "config.h"
#include "domxml.h"
#include "fence.h"
#include "name.h"
#include "qcow2.h"
#include "sha256.h"

/* ---- small helpers ---------------------------------------------------- */

static bool known_cpu_mode(const char *c)
{
        return !*c || streq(c, "host-passthrough") || streq(c, "host-model") || streq(c, "maximum");
}

int vp_check_list(const char *what, const char *list, bool (*check)(const char *), struct vp_error *err)
{
        char pb[64];
        if (!list || !*list)
                return vp_err(err, -EINVAL, "empty %s list", what);
        if (strlen(list) > 256)
                return vp_err(err, -EINVAL, "%s list is too long", what);
        for (const char *p = list;;) {
                const char *e = strchr(p, ',');
                size_t l = e ? (size_t)(e - p) : strlen(p);
                char item[64];
                if (l == 0 || l >= sizeof(item))
                        return vp_err(err, -EINVAL, "invalid %s list '%s'", what, vp_printable(list, pb, sizeof(pb)));
                memcpy(item, p, l);
                item[l] = 0;
                if (!check(item))
                        return vp_err(err, -EINVAL, "unknown %s '%s'", what, vp_printable(item, pb, sizeof(pb)));
                if (!e)
                        return 0;
                p = e + 1;
        }
}

static void closedirp(DIR **d) { if (*d) closedir(*d); }

/* ---- context ---------------------------------------------------------- */

static int ctx_open(struct vp_ctx *ctx, const char *catalog_path, bool readonly, struct vp_error *err)
{
        memset(ctx, 0, sizeof(*ctx));
        ctx->st.root_fd = ctx->st.images_fd = ctx->st.deltas_fd = ctx->st.logs_fd = -1;
        ctx->source_grace = VP_CONF_DEFAULT_SOURCE_GRACE;
        ctx->fence_timeout = VP_CONF_DEFAULT_FENCE_TIMEOUT;
        ctx->catalog_path = vp_strdup(catalog_path);
        ctx->readonly = readonly;
        int r = readonly ? vp_catalog_open_read(catalog_path, &ctx->cat, err)
                         : vp_catalog_open(catalog_path, false, &ctx->cat, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *root = NULL;
        r = vp_catalog_get_meta(ctx->cat, "storage_root", &root, err);
        if (r < 0) {
                _cleanup_free_ char *label = vp_catalog_label(catalog_path);
                return vp_err(err, -EBADMSG, "catalog '%s' records no storage root; run 'vpool init --storage DIR'",
                              label);
        }
        r = vp_storage_open(root, &ctx->st, err);
        if (r < 0)
                return r;
        ctx->have_storage = true;
        return 0;
}

int vp_ctx_open(struct vp_ctx *ctx, const char *catalog_path, struct vp_error *err)
{
        return ctx_open(ctx, catalog_path, false, err);
}

int vp_ctx_open_read(struct vp_ctx *ctx, const char *catalog_path, struct vp_error *err)
{
        return ctx_open(ctx, catalog_path, true, err);
}

void vp_ctx_close(struct vp_ctx *ctx)
{
        for (size_t i = 0; i < ctx->nconns; i++)
                if (ctx->conns[i].conn)
                        virConnectClose(ctx->conns[i].conn);
        free(ctx->conns);
        if (ctx->have_storage)
                vp_storage_close(&ctx->st);
        if (ctx->cat)
                vp_catalog_close(ctx->cat);
        free(ctx->catalog_path);
        memset(ctx, 0, sizeof(*ctx));
}

/* ---- init --------------------------------------------------------------- */

static int mkdir_parents(const char *path, struct vp_error *err)
{
        _cleanup_free_ char *copy = vp_strdup(path);
        char *dir = dirname(copy);
        _cleanup_free_ char *walk = vp_xcalloc(1, strlen(dir) + 2);
        for (const char *p = dir; *p;) {
                const char *e = strchr(p + 1, '/');
                size_t l = e ? (size_t)(e - dir) : strlen(dir);
                memcpy(walk, dir, l);
                walk[l] = 0;
                if (*walk && mkdir(walk, 0755) < 0 && errno != EEXIST)
                        return vp_err(err, -errno, "cannot create '%s': %s", walk, strerror(errno));
                if (!e)
                        break;
                p = e;
        }
        return 0;
}

int vp_init(const char *catalog_path, const char *storage_root, struct vp_error *err)
{
        int r;
        if (!storage_root || storage_root[0] != '/')
                return vp_err(err, -EINVAL, "storage root '%s' must be an absolute path",
                              storage_root ? storage_root : "");
        for (const char *p = storage_root; *p; p++)
                if (!isprint((unsigned char)*p) || *p == '\'' || *p == '"' || *p == '<' || *p == '&' ||
                    *p == ',' || *p == ':' || *p == '\\')
                        return vp_err(err, -EINVAL, "storage root must not contain quotes, commas, colons, "
                                                    "backslashes, '<', '&' or control characters");
        if (strstr(storage_root, "/../") || strstr(storage_root, "/./") ||
            (strlen(storage_root) >= 3 && streq(storage_root + strlen(storage_root) - 3, "/..")))
                return vp_err(err, -EINVAL, "storage root '%s' must not contain '.' or '..' components",
                              storage_root);
        /* Canonical form without trailing slashes, so recorded paths compare equal. */
        _cleanup_free_ char *root = vp_strdup(storage_root);
        for (size_t l = strlen(root); l > 1 && root[l - 1] == '/'; l--)
                root[l - 1] = 0;

        _cleanup_(vp_catalog_closep) struct vp_catalog *c = NULL;
        /* A file's directory is made; a PostgreSQL catalog is no path. */
        bool file = !vp_catalog_is_pg(catalog_path);
        struct stat st;
        bool existed = !file || stat(catalog_path, &st) == 0;
        if (!existed && (r = mkdir_parents(catalog_path, err)) < 0)
                return r;
        r = vp_catalog_open(catalog_path, true, &c, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *old = NULL;
        r = vp_catalog_get_meta(c, "storage_root", &old, NULL);
        if (r >= 0 && !streq(old, root)) {
                _cleanup_free_ char *label = vp_catalog_label(catalog_path);
                return vp_err(err, -EEXIST, "catalog '%s' already uses storage root '%s'", label, old);
        }
        r = vp_storage_init(root, err);
        if (r < 0) {
                if (!existed) {
                        vp_catalog_close(TAKE_PTR(c));
                        unlink(catalog_path);
                        _cleanup_free_ char *wal = vp_strdupf("%s-wal", catalog_path);
                        _cleanup_free_ char *shm = vp_strdupf("%s-shm", catalog_path);
                        unlink(wal);
                        unlink(shm);
                }
                return r;
        }
        if (!old)
                r = vp_catalog_set_meta(c, "storage_root", root, err);
        return r;
}

/* ---- env ---------------------------------------------------------------- */

/* A Linux kernel for the KVM probe, placed on shared storage so that every
 * env reads it at the same path: the newest one this controller has. */
static int probe_kernel(struct vp_ctx *ctx, char **ret)
{
        const char *name = ".kvm-probe.kernel";
        if (faccessat(ctx->st.images_fd, name, R_OK, AT_SYMLINK_NOFOLLOW) == 0) {
                *ret = vp_strdupf("%s/images/%s", ctx->st.root, name);
                return 0;
        }
        _cleanup_(closedirp) DIR *d = opendir("/boot");
        if (!d)
                return -ENOENT;
        char best[256] = "";
        struct dirent *de;
        while ((de = readdir(d)))
                if (strncmp(de->d_name, "vmlinuz-", 8) == 0 && strlen(de->d_name) < sizeof(best) &&
                    strverscmp(de->d_name, best) > 0)
                        snprintf(best, sizeof(best), "%s", de->d_name);
        if (!best[0])
                return -ENOENT;
        _cleanup_free_ char *src = vp_strdupf("/boot/%s", best);
        return vp_storage_import(&ctx->st, name, src, VP_FORMAT_UNKNOWN, NULL, NULL, ret, NULL);
}

/* The domain type env NAME uses on CONN (its first host, INFO): kvm when
 * asked for (and offered), or in auto mode when a probe guest boots
 * under it. *RET_NOTE says why kvm was not chosen in auto mode. */
static int pick_domain_type(struct vp_ctx *ctx, const char *name, virConnectPtr conn, const struct vp_hv_info *info,
                            const char *domain_type, bool *ret_kvm, const char **ret_note, struct vp_error *err)
{
        bool kvm_offered = vp_list_has(info->domain_types, "kvm");
        *ret_kvm = false;
        *ret_note = NULL;
        if (streq(domain_type, "kvm")) {
                if (!kvm_offered)
                        return vp_err(err, -EOPNOTSUPP, "env '%s' does not offer domain type 'kvm'", name);
                *ret_kvm = true;
        } else if (streq(domain_type, "auto")) {
                _cleanup_free_ char *kernel = NULL;
                if (!kvm_offered)
                        *ret_note = "kvm not offered";
                else if (probe_kernel(ctx, &kernel) < 0)
                        *ret_note = "kvm offered, but no kernel to probe it with";
                else {
                        _cleanup_free_ char *log = vp_strdupf("%s/logs/.kvm-probe-%s.log", ctx->st.root, name);
                        *ret_kvm = vp_hv_kvm_works(conn, info->arch, kernel, log, 10000);
                        if (!*ret_kvm)
                                *ret_note = "kvm offered, but a probe guest did not boot under it";
                }
        }
        return 0;
}

int vp_domain_type_check(const char *domain_type, struct vp_error *err)
{
        char pb[64];
        if (domain_type && (streq(domain_type, "auto") || streq(domain_type, "kvm") || streq(domain_type, "qemu")))
                return 0;
        return vp_err(err, -EINVAL, "unknown domain type '%s' (auto, kvm, qemu)",
                      vp_printable(domain_type ? domain_type : "", pb, sizeof(pb)));
}

static int check_env_args(struct vp_ctx *ctx, const char *name, size_t nhosts, const char *domain_type,
                          const char *fence_cmd, char **ret_fence, struct vp_error *err)
{
        int r;
        if ((r = vp_name_check("env", name, err)) < 0 ||
            (fence_cmd && (r = vp_fence_cmd_parse(fence_cmd, ret_fence, err)) < 0))
                return r;
        if (nhosts == 0)
                return vp_err(err, -EINVAL, "env '%s' needs at least one host", name);
        if ((r = vp_domain_type_check(domain_type, err)) < 0)
                return r;
        struct vp_env existing = { 0 };
        if (vp_row_get(ctx->cat, &vp_table_env, "name", name, &existing, NULL) >= 0) {
                vp_row_clear(&vp_table_env, &existing);
                return vp_err(err, -EEXIST, "env '%s' already exists", name);
        }
        return 0;
}

/* Probe every host of HOSTS into HS (NHOSTS rows): each answers, none
 * twice, all of the first one's architecture and offering DTYPE. */
static int probe_hosts(struct vp_ctx *ctx, const char *name, const struct vp_host_spec *hosts, size_t nhosts,
                       struct vp_host *hs, struct vp_hv_info *first, struct vp_error *err)
{
        int r = 0;
        for (size_t i = 0; i < nhosts && r >= 0; i++) {
                struct vp_hv_info info;
                if ((r = vp_host_probe(ctx, &hosts[i], nhosts == 1 ? name : NULL, &info, &hs[i], err)) < 0) {
                        /* One host is the env, and its URI names it; of
                         * several, which one. */
                        _cleanup_free_ char *hname = NULL;
                        if (nhosts > 1 && !strstr(err->msg, "name the host"))
                                vp_err_prefix(err, "env '%s': host '%s'", name, hosts[i].name ? hosts[i].name :
                                              vp_host_default_name(hosts[i].uri, NULL, &hname, NULL) >= 0 ? hname :
                                              hosts[i].uri);
                        return r;
                }
                for (size_t j = 0; j < i && r >= 0; j++)
                        if (streq(hs[j].name, hs[i].name) || streq(hs[j].uri, hs[i].uri))
                                r = vp_err(err, -EEXIST, "host '%s' (%s) is given twice", hs[i].name, hs[i].uri);
                if (i == 0)
                        *first = info;
                else if (r >= 0 && !streq(info.arch, first->arch))
                        r = vp_err(err, -EINVAL, "host '%s' is %s, host '%s' %s: an env is of one architecture",
                                   hs[i].name, info.arch, hs[0].name, first->arch);
                else if (r >= 0 && !vp_list_has(info.domain_types, vp_hv_pick_domain_type(first->domain_types)))
                        r = vp_err(err, -EOPNOTSUPP, "host '%s' does not offer domain type '%s' as host '%s' does",
                                   hs[i].name, vp_hv_pick_domain_type(first->domain_types), hs[0].name);
        }
        if (r < 0)
                vp_err_prefix(err, "env '%s'", name);
        return r;
}

static int insert_env(struct vp_ctx *ctx, struct vp_env *e, struct vp_host *hs, size_t nhosts, struct vp_error *err)
{
        int r = vp_catalog_begin(ctx->cat, err);
        if (r < 0)
                return r;
        r = vp_row_insert(ctx->cat, &vp_table_env, e, err);
        for (size_t i = 0; i < nhosts && r >= 0; i++) {
                hs[i].env_id = e->id;
                r = vp_row_insert(ctx->cat, &vp_table_host, &hs[i], err);
        }
        if (r >= 0)
                r = vp_catalog_commit(ctx->cat, err);
        if (r < 0)
                vp_catalog_rollback(ctx->cat);
        return r;
}

int vp_env_add(struct vp_ctx *ctx, const char *name, const struct vp_host_spec *hosts, size_t nhosts,
               const char *domain_type, const char *fence_cmd, struct vp_env *ret, const char **ret_kvm_note,
               struct vp_error *err)
{
        _cleanup_free_ char *fence = NULL;
        if (!domain_type)
                domain_type = "auto";
        int r = check_env_args(ctx, name, nhosts, domain_type, fence_cmd, &fence, err);
        if (r < 0)
                return r;
        struct vp_host *hs = vp_xcalloc(nhosts, sizeof(*hs));
        struct vp_hv_info info;
        const char *note = NULL;
        bool use_kvm = false;
        virConnectPtr conn = NULL;
        if ((r = probe_hosts(ctx, name, hosts, nhosts, hs, &info, err)) >= 0 &&
            (r = vp_hv_connect(hs[0].uri, &conn, err)) >= 0) {
                r = pick_domain_type(ctx, name, conn, &info, domain_type, &use_kvm, &note, err);
                virConnectClose(conn);
        }
        struct vp_env e = { 0 };
        if (r >= 0) {
                snprintf(info.domain_types, sizeof(info.domain_types), "%s", use_kvm ? "kvm,qemu" : "qemu");
                e = (struct vp_env){
                        .name = vp_strdup(name), .uri = vp_strdup(hs[0].uri), .hostname = vp_strdup(info.hostname),
                        .arch = vp_strdup(info.arch), .domain_types = vp_strdup(info.domain_types),
                        .machines = vp_strdup(info.machines), .disk_buses = vp_strdup(info.disk_buses),
                        .nic_models = vp_strdup(info.nic_models), .firmwares = vp_strdup(info.firmwares),
                        .cpus = info.cpus, .memory_kib = info.memory_kib, .created = vp_now_iso(),
                        .fence_cmd = TAKE_PTR(fence),
                        .on_host_failure = vp_strdup(vp_host_failure_to_string(VP_HOST_FAILURE_NONE)),
                        .evacuate_to = vp_strdup(""), .grace = VP_HOST_FAILURE_GRACE,
                };
                r = insert_env(ctx, &e, hs, nhosts, err);
        }
        vp_rows_free(&vp_table_host, hs, nhosts);
        if (ret_kvm_note)
                *ret_kvm_note = note;
        if (r < 0 || !ret)
                vp_row_clear(&vp_table_env, &e);
        else
                *ret = e;
        return r;
}

int vp_env_set_fence(struct vp_ctx *ctx, const char *name, const char *fence_cmd, struct vp_error *err)
{
        _cleanup_free_ char *fence = NULL;
        int r;
        if ((r = vp_name_check("env", name, err)) < 0 ||
            (fence_cmd && (r = vp_fence_cmd_parse(fence_cmd, &fence, err)) < 0))
                return r;
        struct vp_env e = { 0 };
        if ((r = vp_row_get(ctx->cat, &vp_table_env, "name", name, &e, err)) < 0)
                return r;
        free(e.fence_cmd);
        e.fence_cmd = TAKE_PTR(fence);
        r = vp_row_update(ctx->cat, &vp_table_env, &e, err);
        vp_row_clear(&vp_table_env, &e);
        return r;
}

static int refuse_if_used(struct vp_ctx *ctx, const char *col, int64_t id, const char *what,
                          const char *name, struct vp_error *err)
{
        char idbuf[24];
        snprintf(idbuf, sizeof(idbuf), "%lld", (long long)id);
        void *rows = NULL;
        size_t n = 0;
        int r = vp_row_list(ctx->cat, &vp_table_pool, col, idbuf, &rows, &n, err);
        if (r < 0)
                return r;
        if (n > 0) {
                struct vp_pool *p = rows;
                r = vp_err(err, -EBUSY, "%s '%s' is used by pool '%s'%s", what, name, p[0].name,
                           n > 1 ? " and others" : "");
        }
        vp_rows_free(&vp_table_pool, rows, n);
        return r;
}

/* A finished migration keeps the names of the envs and profiles it used,
 * so it holds none back; an unfinished one still needs them. WHERE
 * selects the migrations referring to ?1. */
static int refuse_if_migrating(struct vp_ctx *ctx, const char *where, int64_t id, const char *what,
                               const char *name, struct vp_error *err)
{
        void *rows = NULL;
        size_t n = 0;
        int r = vp_row_query(ctx->cat, &vp_table_migration, where, id, &rows, &n, err);
        if (r < 0)
                return r;
        struct vp_migration *m = rows;
        for (size_t i = 0; i < n; i++)
                if (vp_migration_state_unfinished(vp_migration_state_from_string(m[i].state))) {
                        r = vp_err(err, -EBUSY, "%s '%s' is used by unfinished migration %lld (pool '%s')", what, name,
                                   (long long)m[i].id, m[i].pool_name);
                        break;
                }
        vp_rows_free(&vp_table_migration, rows, n);
        return r;
}

int vp_env_rm(struct vp_ctx *ctx, const char *name, struct vp_error *err)
{
        struct vp_env e = { 0 };
        int r = vp_name_check("env", name, err);
        if (r < 0 || (r = vp_row_get(ctx->cat, &vp_table_env, "name", name, &e, err)) < 0)
                return r;
        r = refuse_if_used(ctx, "env_id", e.id, "env", name, err);
        if (r >= 0) {
                char idbuf[24];
                int64_t nvms = 0;
                snprintf(idbuf, sizeof(idbuf), "%lld", (long long)e.id);
                r = vp_row_count(ctx->cat, &vp_table_vm, "env_id", idbuf, &nvms, err);
                if (r >= 0 && nvms > 0)
                        r = vp_err(err, -EBUSY, "env '%s' still hosts %lld VMs", name, (long long)nvms);
        }
        if (r >= 0)
                r = refuse_if_migrating(ctx, "from_env_id = ?1 OR to_env_id = ?1", e.id, "env", name, err);
        if (r >= 0)
                r = vp_row_delete(ctx->cat, &vp_table_env, e.id, err);
        vp_row_clear(&vp_table_env, &e);
        return r;
}

/* ---- image -------------------------------------------------------------- */

static int check_boot_file(const char *what, const char *path, struct vp_error *err)
{
        struct stat st;
        if (stat(path, &st) < 0)
                return vp_err(err, -errno, "%s '%s': %s", what, path, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return vp_err(err, -EINVAL, "%s '%s' is not a regular file", what, path);
        if (st.st_size == 0)
                return vp_err(err, -EINVAL, "%s '%s' is empty", what, path);
        return 0;
}

/* What identifies the content of the file at FD without reading it: device,
 * inode, size, and modification and change times to the nanosecond. Any
 * write changes mtime and ctime, and setting mtime back changes ctime. */
static char *file_stamp(int fd, struct vp_error *err)
{
        struct stat st;
        if (fstat(fd, &st) < 0)
                return vp_err(err, -errno, "cannot stat image: %s", strerror(errno)), NULL;
        return vp_strdupf("%llu:%llu:%lld:%lld.%09ld:%lld.%09ld", (unsigned long long)st.st_dev,
                          (unsigned long long)st.st_ino, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
                          st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
}

/* The hardware image add records for the master at PATH (format FMT,
 * digest SHA, its header checked): from its inspection, stored once per
 * digest, and A's declaration; the declaration or its defaults (every bus
 * and NIC model, BIOS) alone when it is not inspected. *RET_REPORT: a
 * report made now, for the caller to store with the image (a refused add
 * stores nothing, so the next add inspects again); NULL otherwise. */
static int image_hardware(struct vp_ctx *ctx, const struct vp_image_args *a, const char *path, const char *fmt,
                          const char *sha, char **ret_buses, char **ret_nics, char **ret_fws,
                          struct json_object **ret_report, struct vp_error *err)
{
        *ret_report = NULL;
        if (a->no_inspect || a->kernel) {
                *ret_buses = a->disk_buses ? vp_strdup(a->disk_buses) : vp_disk_bus_list(",");
                *ret_nics = a->nic_models ? vp_strdup(a->nic_models) : vp_nic_model_list(",", false);
                *ret_fws = vp_strdup(a->firmwares ? a->firmwares : vp_firmware_to_string(VP_FIRMWARE_BIOS));
                return 0;
        }
        struct json_object *report = NULL;
        int r = 0;
        if (vp_inspection_get(ctx->cat, sha, &report, NULL) < 0) {
                r = vp_inspect_image(path, fmt, vp_inspect_timeout(), a->progress, a->progress_ud, &report, err);
                if (r < 0) {
                        vp_err_prefix(err, "image '%s': inspection failed (--no-inspect adds it on its declaration "
                                      "alone)", a->name);
                        return r;
                }
                *ret_report = json_object_get(report);
        }
        _cleanup_free_ char *warning = NULL;
        r = vp_inspect_reconcile(a->name, report, a->disk_buses, a->nic_models, a->firmwares, ret_buses, ret_nics,
                                 ret_fws, &warning, err);
        json_object_put(report);
        if (r < 0) {
                json_object_put(*ret_report);
                *ret_report = NULL;
        } else if (warning && a->ret_warning) {
                *a->ret_warning = TAKE_PTR(warning);
        }
        return r;
}

/* The image row and, when one was made now, its master's inspection: both
 * or neither. */
static int insert_image(struct vp_ctx *ctx, struct vp_image *im, struct json_object *report, struct vp_error *err)
{
        int r = vp_catalog_begin(ctx->cat, err);
        if (r < 0)
                return r;
        if (report)
                r = vp_inspection_put(ctx->cat, im->sha256, report, err);
        if (r >= 0)
                r = vp_row_insert(ctx->cat, &vp_table_image, im, err);
        if (r >= 0)
                r = vp_catalog_commit(ctx->cat, err);
        if (r < 0)
                vp_catalog_rollback(ctx->cat);
        return r;
}

int vp_image_args_check(const struct vp_image_args *a, const char **ret_field, struct vp_error *err)
{
        int r = 0;
        char pb[64];
        const char *field = NULL;
        const char *fmt = a->format ? a->format : "qcow2";
        if (vp_format_from_string(fmt) == VP_FORMAT_UNKNOWN)
                field = "format", r = vp_err(err, -EINVAL, "unknown image format '%s' (qcow2 or raw)",
                                             vp_printable(fmt, pb, sizeof(pb)));
        else if (a->disk_buses && (r = vp_check_list("disk bus", a->disk_buses, vp_known_bus, err)) < 0)
                field = "disk_buses";
        else if (a->nic_models && (r = vp_check_list("NIC model", a->nic_models, vp_known_nic, err)) < 0)
                field = "nic_models";
        else if (a->firmwares && (r = vp_check_list("firmware", a->firmwares, vp_known_firmware, err)) < 0)
                field = "firmwares";
        else if (!a->file || !*a->file)
                field = "file", r = vp_err(err, -EINVAL, "image '%s' needs --file", a->name);
        else if ((a->initrd || a->cmdline) && !a->kernel)
                field = a->initrd ? "initrd" : "cmdline", r = vp_err(err, -EINVAL, "--initrd and --cmdline need --kernel");
        else if (a->cmdline && strlen(a->cmdline) > 1024)
                field = "cmdline", r = vp_err(err, -EINVAL, "kernel command line is too long");
        for (const char *p = a->cmdline; r >= 0 && p && *p; p++)
                if (!isprint((unsigned char)*p))
                        field = "cmdline", r = vp_err(err, -EINVAL, "kernel command line contains control characters");
        if (r < 0 && ret_field)
                *ret_field = field;
        return r;
}

int vp_image_add(struct vp_ctx *ctx, const struct vp_image_args *a, struct vp_image *ret,
                 struct vp_error *err)
{
        int r;
        if ((r = vp_name_check("image", a->name, err)) < 0)
                return r;
        if ((r = vp_image_args_check(a, NULL, err)) < 0)
                return r;
        const char *fmt = a->format ? a->format : "qcow2";
        enum vp_image_format f = vp_format_from_string(fmt);
        if (a->kernel && (r = check_boot_file("kernel", a->kernel, err)) < 0)
                return r;
        if (a->initrd && (r = check_boot_file("initrd", a->initrd, err)) < 0)
                return r;
        struct vp_image existing = { 0 };
        if (vp_row_get(ctx->cat, &vp_table_image, "name", a->name, &existing, NULL) >= 0) {
                vp_row_clear(&vp_table_image, &existing);
                return vp_err(err, -EEXIST, "image '%s' already exists", a->name);
        }

        _cleanup_free_ char *dest = vp_strdupf("%s.%s", a->name, fmt);
        _cleanup_free_ char *kdest = vp_strdupf("%s.kernel", a->name);
        _cleanup_free_ char *idest = vp_strdupf("%s.initrd", a->name);
        _cleanup_free_ char *path = NULL, *kpath = NULL, *ipath = NULL;
        struct vp_image_info info;
        char sha[65];
        r = vp_storage_import(&ctx->st, dest, a->file, f, &info, sha, &path, err);
        if (r < 0)
                return r;
        if (a->kernel)
                r = vp_storage_import(&ctx->st, kdest, a->kernel, VP_FORMAT_UNKNOWN, NULL, NULL, &kpath, err);
        if (r >= 0 && a->initrd)
                r = vp_storage_import(&ctx->st, idest, a->initrd, VP_FORMAT_UNKNOWN, NULL, NULL, &ipath, err);

        _cleanup_free_ char *buses = NULL, *nics = NULL, *fws = NULL;
        struct json_object *report = NULL;
        if (r >= 0)
                r = image_hardware(ctx, a, path, fmt, sha, &buses, &nics, &fws, &report, err);
        _cleanup_free_ char *stamp = NULL;
        if (r >= 0) {
                _cleanup_close_ int fd = openat(ctx->st.images_fd, dest, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        r = vp_err(err, -errno, "image '%s': cannot open '%s': %s", a->name, path, strerror(errno));
                else if (!(stamp = file_stamp(fd, err)))
                        r = err ? err->code : -EIO;
        }
        struct vp_image im = {
                .name = vp_strdup(a->name), .path = vp_strdup(path), .format = vp_strdup(fmt),
                .virtual_size = (int64_t)info.virtual_size, .file_size = (int64_t)info.file_size,
                .sha256 = vp_strdup(sha), .disk_buses = vp_strdup(buses), .nic_models = vp_strdup(nics),
                .firmwares = vp_strdup(fws), .kernel = vp_strdup(kpath), .initrd = vp_strdup(ipath),
                .cmdline = vp_strdup(a->cmdline), .created = vp_now_iso(), .stamp = vp_strdup(stamp),
        };
        if (r >= 0)
                r = insert_image(ctx, &im, report, err);
        json_object_put(report);
        if (r < 0) {
                struct vp_error ignore;
                vp_storage_remove_image(&ctx->st, dest, &ignore);
                if (kpath)
                        vp_storage_remove_image(&ctx->st, kdest, &ignore);
                if (ipath)
                        vp_storage_remove_image(&ctx->st, idest, &ignore);
                vp_row_clear(&vp_table_image, &im);
                return r;
        }
        if (ret)
                *ret = im;
        else
                vp_row_clear(&vp_table_image, &im);
        return 0;
}

static const char *base_name(const char *path)
{
        const char *s = strrchr(path, '/');
        return s ? s + 1 : path;
}

int vp_image_verify(struct vp_ctx *ctx, const char *name, bool *ret_ok, char sha256[65],
                    struct vp_error *err)
{
        struct vp_image im = { 0 };
        int r = vp_name_check("image", name, err);
        if (r < 0 || (r = vp_row_get(ctx->cat, &vp_table_image, "name", name, &im, err)) < 0)
                return r;
        _cleanup_close_ int fd = -1;
        r = vp_storage_open_master(&ctx->st, im.path, im.format, &fd, err);
        if (r < 0)
                vp_err_prefix(err, "image '%s'", name);
        if (r >= 0)
                r = vp_sha256_fd(fd, sha256, err);
        if (r >= 0)
                *ret_ok = streq(sha256, im.sha256);
        vp_row_clear(&vp_table_image, &im);
        return r;
}

int vp_image_check_unchanged(struct vp_ctx *ctx, struct vp_image *im, bool *ret_restamped, struct vp_error *err)
{
        *ret_restamped = false;
        _cleanup_close_ int fd = -1;
        int r = vp_storage_open_master(&ctx->st, im->path, im->format, &fd, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *stamp = file_stamp(fd, err);
        if (!stamp)
                return err ? err->code : -EIO;
        if (im->stamp && streq(stamp, im->stamp))
                return 0;
        /* Touched since it was last hashed (a relabel by libvirt changes
         * ctime too): the content decides, and the new stamp is kept. */
        char sha[65];
        if ((r = vp_sha256_fd(fd, sha, err)) < 0)
                return r;
        if (!streq(sha, im->sha256))
                return vp_err(err, -EBADMSG, "master image '%s' changed on storage: sha256 %s, recorded %s",
                              im->path, sha, im->sha256);
        free(im->stamp);
        im->stamp = TAKE_PTR(stamp);
        *ret_restamped = true;
        return 0;
}

int vp_image_rm(struct vp_ctx *ctx, const char *name, struct vp_error *err)
{
        struct vp_image im = { 0 };
        int r = vp_name_check("image", name, err);
        if (r < 0 || (r = vp_row_get(ctx->cat, &vp_table_image, "name", name, &im, err)) < 0)
                return r;
        r = refuse_if_used(ctx, "image_id", im.id, "image", name, err);
        if (r >= 0)
                r = vp_row_delete(ctx->cat, &vp_table_image, im.id, err);
        if (r >= 0) {
                /* Catalog first: a crash between leaves a stray file, never a row without its file. */
                struct vp_error ignore;
                vp_storage_remove_image(&ctx->st, base_name(im.path), &ignore);
                if (im.kernel && *im.kernel)
                        vp_storage_remove_image(&ctx->st, base_name(im.kernel), &ignore);
                if (im.initrd && *im.initrd)
                        vp_storage_remove_image(&ctx->st, base_name(im.initrd), &ignore);
        }
        vp_row_clear(&vp_table_image, &im);
        return r;
}

/* ---- profile ------------------------------------------------------------ */

int vp_profile_check(const struct vp_profile *p, const char **ret_field, struct vp_error *err)
{
        char pb[64];
        const char *field = NULL;
        int r = 0;
        _cleanup_free_ char *buses = vp_disk_bus_list(", "), *nics = vp_nic_model_list(", ", true),
                            *fws = vp_firmware_list(", ");
        const char *fw = p->firmware ? p->firmware : vp_firmware_to_string(VP_FIRMWARE_BIOS);
        enum vp_machine family = p->machine ? vp_machine_from_string(p->machine) : VP_MACHINE_INVALID;
        enum vp_disk_bus bus = p->disk_bus ? vp_disk_bus_from_string(p->disk_bus) : VP_BUS_INVALID;
        if ((r = vp_name_check("profile", p->name, err)) < 0)
                field = "name";
        else if (!p->machine || !vp_known_machine(p->machine))
                field = "machine", r = vp_err(err, -EINVAL, "unknown machine type '%s' (pc, q35, pc-i440fx-X.Y, pc-q35-X.Y)",
                                              vp_printable(p->machine, pb, sizeof(pb)));
        else if (!p->disk_bus || !vp_known_bus(p->disk_bus))
                field = "disk_bus", r = vp_err(err, -EINVAL, "unknown disk bus '%s' (%s)",
                                               vp_printable(p->disk_bus, pb, sizeof(pb)), buses);
        else if (!p->nic || !vp_known_nic(p->nic))
                field = "nic", r = vp_err(err, -EINVAL, "unknown NIC model '%s' (%s)",
                                          vp_printable(p->nic, pb, sizeof(pb)), nics);
        else if (!vp_known_firmware(fw))
                field = "firmware", r = vp_err(err, -EINVAL, "unknown firmware '%s' (%s)",
                                               vp_printable(fw, pb, sizeof(pb)), fws);
        else if (p->cpu_mode && !known_cpu_mode(p->cpu_mode))
                field = "cpu_mode", r = vp_err(err, -EINVAL, "unknown CPU mode '%s' (host-passthrough, host-model, maximum)",
                                               vp_printable(p->cpu_mode, pb, sizeof(pb)));
        /* Hardware that cannot exist, refused here rather than by the hypervisor later. */
        else if (family == VP_MACHINE_Q35 && bus == VP_BUS_IDE)
                field = "disk_bus", r = vp_err(err, -EINVAL, "machine type '%s' has no IDE controller; use sata, virtio "
                                               "or scsi", p->machine);
        else if (family == VP_MACHINE_PC && bus == VP_BUS_SATA)
                field = "disk_bus", r = vp_err(err, -EINVAL, "machine type '%s' has no SATA controller; use ide, virtio "
                                               "or scsi", p->machine);
        else if (vp_firmware_from_string(fw) == VP_FIRMWARE_UEFI && family == VP_MACHINE_PC)
                field = "firmware", r = vp_err(err, -EINVAL, "UEFI firmware needs machine type q35");
        else if (p->vcpus < 1 || p->vcpus > VP_PROFILE_VCPUS_MAX)
                field = "vcpus", r = vp_err(err, -EINVAL, "vCPUs must be between 1 and %d", VP_PROFILE_VCPUS_MAX);
        else if (p->memory_mib < VP_PROFILE_MEMORY_MIB_MIN || p->memory_mib > VP_PROFILE_MEMORY_MIB_MAX)
                field = "memory_mib", r = vp_err(err, -EINVAL, "memory must be between 16 MiB and 4 TiB");
        if (r < 0 && ret_field)
                *ret_field = field;
        return r;
}

int vp_profile_add(struct vp_ctx *ctx, struct vp_profile *p, struct vp_error *err)
{
        int r = vp_profile_check(p, NULL, err);
        if (r < 0)
                return r;
        if (!p->firmware)
                p->firmware = (char *)vp_firmware_to_string(VP_FIRMWARE_BIOS);
        if (!p->cpu_mode)
                p->cpu_mode = (char *)"";
        p->created = vp_now_iso();
        return vp_row_insert(ctx->cat, &vp_table_profile, p, err);
}

int vp_profile_rm(struct vp_ctx *ctx, const char *name, struct vp_error *err)
{
        struct vp_profile p = { 0 };
        int r = vp_name_check("profile", name, err);
        if (r < 0 || (r = vp_row_get(ctx->cat, &vp_table_profile, "name", name, &p, err)) < 0)
                return r;
        r = refuse_if_used(ctx, "profile_id", p.id, "profile", name, err);
        if (r >= 0)
                r = refuse_if_migrating(ctx, "from_profile_id = ?1 OR to_profile_id = ?1", p.id, "profile", name, err);
        if (r >= 0)
                r = vp_row_delete(ctx->cat, &vp_table_profile, p.id, err);
        vp_row_clear(&vp_table_profile, &p);
        return r;
}
