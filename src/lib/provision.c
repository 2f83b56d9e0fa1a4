/* Pools and their VMs: creating the user delta collections and domains,
 * starting, stopping and removing them. */
#include "core.h"
#include "host.h"

#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <libvirt/virterror.h>

#include "domxml.h"
#include "lock.h"
#include "name.h"
#include "place.h"

#define VP_MAX_POOL_SIZE 9999

struct pool_refs {
        struct vp_pool pool;
        struct vp_image im;
        struct vp_env env;
        struct vp_profile prof;
        struct vp_placer pl;           /* a create's: the env's hosts, filtered for the profile */
};

static void refs_clear(struct pool_refs *r)
{
        vp_row_clear(&vp_table_pool, &r->pool);
        vp_row_clear(&vp_table_image, &r->im);
        vp_row_clear(&vp_table_env, &r->env);
        vp_row_clear(&vp_table_profile, &r->prof);
        vp_placer_free(&r->pl);
}

static int load_pool_refs(struct vp_ctx *ctx, const char *name, struct pool_refs *r, struct vp_error *err)
{
        int k;
        memset(r, 0, sizeof(*r));
        if ((k = vp_name_check("pool", name, err)) < 0 ||
            (k = vp_row_get(ctx->cat, &vp_table_pool, "name", name, &r->pool, err)) < 0 ||
            (k = vp_row_get_id(ctx->cat, &vp_table_image, r->pool.image_id, &r->im, err)) < 0 ||
            (k = vp_row_get_id(ctx->cat, &vp_table_env, r->pool.env_id, &r->env, err)) < 0 ||
            (k = vp_row_get_id(ctx->cat, &vp_table_profile, r->pool.profile_id, &r->prof, err)) < 0) {
                refs_clear(r);
                return k;
        }
        return 0;
}

static int load_vms(struct vp_ctx *ctx, int64_t pool_id, struct vp_vm **ret, size_t *n, struct vp_error *err)
{
        char idbuf[24];
        snprintf(idbuf, sizeof(idbuf), "%lld", (long long)pool_id);
        void *rows = NULL;
        int r = vp_row_list(ctx->cat, &vp_table_vm, "pool_id", idbuf, &rows, n, err);
        *ret = rows;
        return r;
}

/* The name of the VM at 0-based index I of POOL: POOL-001, POOL-002, ... */
static void vm_name(char out[64], const char *pool, int64_t i)
{
        snprintf(out, 64, "%s-%03lld", pool, (long long)(i + 1));
}

static void random_bytes(void *buf, size_t n)
{
        uint8_t *p = buf;
        while (n > 0) {
                ssize_t k = getrandom(p, n, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        abort();
                }
                p += k;
                n -= (size_t)k;
        }
}

static void random_uuid(char out[37])
{
        uint8_t b[16];
        random_bytes(b, sizeof(b));
        b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
        b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
        snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
                 b[14], b[15]);
}

/* 52:54:00 is the prefix QEMU/KVM guests conventionally use. */
static void random_mac(char out[18])
{
        uint8_t b[3];
        random_bytes(b, sizeof(b));
        snprintf(out, 18, "52:54:00:%02x:%02x:%02x", b[0], b[1], b[2]);
}

int vp_check_image_supports(const struct vp_image *im, const struct vp_profile *p, struct vp_error *err)
{
        if (!vp_list_has(im->disk_buses, p->disk_bus))
                return vp_err(err, -EOPNOTSUPP, "image '%s' declares no driver for disk bus '%s' (declares %s)",
                              im->name, p->disk_bus, im->disk_buses);
        if (vp_nic_model_from_string(p->nic) != VP_NIC_NONE && !vp_list_has(im->nic_models, p->nic))
                return vp_err(err, -EOPNOTSUPP, "image '%s' declares no driver for NIC model '%s' (declares %s)",
                              im->name, p->nic, im->nic_models);
        if (!vp_list_has(im->firmwares, p->firmware))
                return vp_err(err, -EOPNOTSUPP, "image '%s' does not boot with firmware '%s' (declares %s)",
                              im->name, p->firmware, im->firmwares);
        return 0;
}

int vp_image_check_files(struct vp_ctx *ctx, const struct vp_image *im, struct vp_error *err)
{
        const char *paths[] = { im->path, im->kernel, im->initrd };
        int r = 0;
        for (size_t i = 0; i < ELEMENTSOF(paths) && r >= 0; i++)
                if (paths[i] && paths[i][0])
                        r = vp_storage_check_file(&ctx->st, paths[i], err);
        return r;
}

/* vp_vm_check_files; with IMAGE_CHECKED, IM's own files (vp_image_check_files)
 * passed already and only the VM's are checked, and its master when the
 * manifest names another. DFD, when not -1, is DELTA opened by
 * vp_delta_open: its disks are checked there. */
static int check_files(struct vp_ctx *ctx, const struct vp_image *im, const struct vp_manifest *m, const char *delta,
                       int dfd, bool image_checked, struct vp_error *err)
{
        const char *names[] = { m->overlay, m->data_disk, m->nvram };
        int r = 0;
        for (size_t i = 0; i < ELEMENTSOF(names) && r >= 0; i++)
                if (names[i][0]) {
                        _cleanup_free_ char *path = vp_strdupf("%s/%s", delta, names[i]);
                        r = dfd >= 0 ? vp_storage_check_file_at(dfd, names[i], path, err)
                                     : vp_storage_check_file(&ctx->st, path, err);
                }
        if (r >= 0 && m->master[0] && (!image_checked || !streq(m->master, im->path)))
                r = vp_storage_check_file(&ctx->st, m->master, err);
        _cleanup_free_ char *log = vp_storage_log_path(&ctx->st, m->vm);
        if (r >= 0)
                r = vp_storage_check_file(&ctx->st, log, err);
        if (r >= 0 && !image_checked) {
                const char *paths[] = { im->kernel, im->initrd };
                for (size_t i = 0; i < ELEMENTSOF(paths) && r >= 0; i++)
                        if (paths[i] && paths[i][0])
                                r = vp_storage_check_file(&ctx->st, paths[i], err);
        }
        return r;
}

int vp_vm_check_files(struct vp_ctx *ctx, const struct vp_image *im, const struct vp_manifest *m,
                      const char *delta, struct vp_error *err)
{
        return check_files(ctx, im, m, delta, -1, false, err);
}

int vp_vm_check_own_files(struct vp_ctx *ctx, const struct vp_image *im, const struct vp_manifest *m,
                          const char *delta, struct vp_error *err)
{
        return check_files(ctx, im, m, delta, -1, true, err);
}

static char *vm_xml(struct vp_ctx *ctx, const struct vp_env *env, const struct vp_image *im,
                    const struct vp_profile *p, const struct vp_manifest *m, const char *delta, int dfd,
                    bool image_checked, struct vp_error *err)
{
        if (check_files(ctx, im, m, delta, dfd, image_checked, err) < 0) {
                vp_err_prefix(err, "vm '%s' not defined", m->vm);
                return NULL;
        }
        _cleanup_free_ char *overlay = vp_strdupf("%s/%s", delta, m->overlay);
        _cleanup_free_ char *data = m->data_disk[0] ? vp_strdupf("%s/%s", delta, m->data_disk) : NULL;
        _cleanup_free_ char *nvram = m->nvram[0] ? vp_strdupf("%s/%s", delta, m->nvram) : NULL;
        _cleanup_free_ char *log = vp_storage_log_path(&ctx->st, m->vm);
        struct vp_domspec d = {
                .name = m->vm, .uuid = m->uuid, .domain_type = vp_hv_pick_domain_type(env->domain_types),
                .arch = env->arch, .machine = p->machine, .firmware = p->firmware, .cpu_mode = p->cpu_mode,
                .vcpus = p->vcpus, .memory_mib = p->memory_mib, .kernel = im->kernel, .initrd = im->initrd,
                .cmdline = im->cmdline, .disk_bus = p->disk_bus, .overlay = overlay, .master = m->master,
                .master_format = m->master_format, .data_disk = data, .nvram = nvram, .nic = p->nic,
                .mac = m->nmacs > 0 ? m->macs[0] : NULL, .log_path = log, .pool = m->pool,
                .hostname = m->hostname, .generation = m->generation,
        };
        return vp_domxml_build(&d, err);
}

char *vp_vm_xml(struct vp_ctx *ctx, const struct vp_env *env, const struct vp_image *im,
                const struct vp_profile *p, const struct vp_manifest *m, const char *delta, struct vp_error *err)
{
        return vm_xml(ctx, env, im, p, m, delta, -1, false, err);
}

char *vp_vm_xml_own(struct vp_ctx *ctx, const struct vp_env *env, const struct vp_image *im,
                    const struct vp_profile *p, const struct vp_manifest *m, const char *delta, int dfd,
                    struct vp_error *err)
{
        return vm_xml(ctx, env, im, p, m, delta, dfd, true, err);
}

/* The manifest of VM's new collection: its identity from the catalog row,
 * owned by the VM itself at generation 1. */
static void new_manifest(const struct pool_refs *refs, const struct vp_vm *vm, struct vp_manifest *m)
{
        memset(m, 0, sizeof(*m));
        snprintf(m->pool, sizeof(m->pool), "%s", refs->pool.name);
        snprintf(m->vm, sizeof(m->vm), "%s", vm->name);
        vp_owner_vm(m->owner, vm->name);
        m->generation = 1;
        snprintf(m->uuid, sizeof(m->uuid), "%s", vm->uuid);
        snprintf(m->macs[0], sizeof(m->macs[0]), "%s", vm->macs);
        m->nmacs = 1;
        snprintf(m->hostname, sizeof(m->hostname), "%s", vm->hostname);
        snprintf(m->master, sizeof(m->master), "%s", refs->im.path);
        snprintf(m->master_format, sizeof(m->master_format), "%s", refs->im.format);
        snprintf(m->overlay, sizeof(m->overlay), "overlay.qcow2");
        if (refs->pool.data_disk_bytes)
                snprintf(m->data_disk, sizeof(m->data_disk), "data.qcow2");
        if (vp_firmware_from_string(refs->prof.firmware) == VP_FIRMWARE_UEFI)
                snprintf(m->nvram, sizeof(m->nvram), "nvram.fd");
}

/* Make sure VM's collection exists and is the one its catalog row
 * describes: an interrupted create may have left it missing, half made (no
 * manifest) or whole. A collection holding another VM's identity is never
 * touched. */
static int ensure_delta(struct vp_ctx *ctx, const struct pool_refs *refs, const struct vp_vm *vm,
                        struct vp_manifest *m, struct vp_error *err)
{
        int r;
        new_manifest(refs, vm, m);
        int fd = -1;
        struct vp_error probe = { 0 };
        const char *dir = vp_delta_dir_of(vm->delta_path);
        r = vp_delta_open(&ctx->st, refs->pool.name, dir, &fd, &probe);
        if (r >= 0) {
                struct vp_manifest old;
                int k = vp_manifest_read(fd, vm->delta_path, &old, &probe);
                close(fd);
                if (k >= 0) {
                        if (!streq(old.uuid, vm->uuid))
                                return vp_err(err, -EEXIST, "'%s' holds another VM's delta (UUID %s); refusing to touch it",
                                              vm->delta_path, old.uuid);
                        /* Whole from the interrupted run: check it like any other. */
                        return vp_delta_check(&ctx->st, refs->pool.name, dir, refs->im.path, refs->im.format, m,
                                              err);
                }
                if (k != -ENOENT)
                        return vp_err(err, k, "%s", probe.msg);
                /* No manifest yet: the manifest is written last, so nothing of a user's is here. */
                if ((r = vp_delta_remove(&ctx->st, refs->pool.name, dir, err)) < 0)
                        return r;
        } else if (r != -ENOENT) {
                return vp_err(err, r, "%s", probe.msg);
        }
        _cleanup_free_ char *path = NULL;
        r = vp_delta_create(&ctx->st, m, (uint64_t)refs->im.virtual_size, (uint64_t)refs->pool.data_disk_bytes,
                            &path, err);
        if (r >= 0)
                vp_fault_point("create.delta");
        return r;
}

/* Phase 2's shared state: the VMs, the next to build, the first error. */
struct build {
        struct vp_ctx *ctx;
        struct pool_refs *refs;
        int lockfd;                    /* the pool's lock */
        virConnectPtr *conns;          /* each VM's host's */
        struct vp_vm *vms;
        size_t n, next, done;
        int r;
        struct vp_error err;
        vp_progress_fn progress;
        void *ud;
        pthread_mutex_t lock;
};

/* No write without the pool's lock: lost (the catalog's server ended the
 * session that held it), another process may be working on the pool. The
 * pool stays creating, for the same create to finish. */
static int check_lock(struct vp_ctx *ctx, const char *pool, int lockfd, struct vp_error *err)
{
        return vp_pool_lock_check(ctx, lockfd, err, "pool '%s' stopped creating so that no other process works on "
                                  "it alongside; the same 'vpool pool create' finishes it", pool);
}

/* VM I's collection and domain. */
static int build_vm(struct build *b, size_t i, struct vp_error *err)
{
        struct pool_refs *refs = b->refs;
        struct vp_vm *vm = &b->vms[i];
        struct vp_manifest m;
        int r = check_lock(b->ctx, refs->pool.name, b->lockfd, err);
        if (r >= 0)
                r = ensure_delta(b->ctx, refs, vm, &m, err);
        if (r < 0)
                return r;
        /* A domain of this name must be ours (same UUID) or absent. */
        char uuid[VIR_UUID_STRING_BUFLEN];
        if (vp_hv_uuid(b->conns[i], vm->name, uuid, NULL) >= 0 && !streq(uuid, vm->uuid))
                return vp_err(err, -EEXIST, "env '%s' already has a domain named '%s'", refs->env.name, vm->name);
        _cleanup_free_ char *xml = vp_vm_xml(b->ctx, &refs->env, &refs->im, &refs->prof, &m, vm->delta_path, err);
        if (!xml)
                return err ? err->code : -EINVAL;
        /* Every domain of a pool has the shape of the first: the schema
         * check of that one covers them all. */
        if ((r = vp_hv_define(b->conns[i], xml, i == 0, err)) < 0) {
                vp_err_prefix(err, "vm '%s' on env '%s'", vm->name, refs->env.name);
                return r;
        }
        vp_fault_point("create.defined");
        return 0;
}

static void *build_worker(void *arg)
{
        struct build *b = arg;
        for (;;) {
                pthread_mutex_lock(&b->lock);
                size_t i = b->next++;
                bool stop = b->r < 0 || i >= b->n;
                pthread_mutex_unlock(&b->lock);
                if (stop)
                        return NULL;
                struct vp_error err = { 0 };
                int r = build_vm(b, i, &err);
                pthread_mutex_lock(&b->lock);
                if (r < 0 && b->r >= 0) {
                        b->r = r;
                        b->err = err;
                } else if (r >= 0) {
                        b->done++;
                        if (b->progress)
                                b->progress(b->ud, b->vms[i].name, "defined", b->done, b->n);
                }
                pthread_mutex_unlock(&b->lock);
        }
}

/* VMs built side by side: the fsyncs of one VM and the round trips to its
 * host overlap the others'. */
#define VP_BUILD_WORKERS 4

/* Phase 2 of a create, also what the next run does after a crash: every
 * collection and domain made, then the pool marked active. The first VM is
 * built alone (it makes the pool's folder and passes the schema check),
 * the others by a few workers; the first failure stops them all. */
static int build_pool(struct vp_ctx *ctx, struct pool_refs *refs, int lockfd, vp_progress_fn progress, void *ud,
                      struct vp_error *err)
{
        struct build b = { .ctx = ctx, .refs = refs, .lockfd = lockfd, .progress = progress, .ud = ud };
        pthread_mutex_init(&b.lock, NULL);
        int r = load_vms(ctx, refs->pool.id, &b.vms, &b.n, err);
        /* The workers share the ctx's connections, opened here first. */
        if (r >= 0)
                b.conns = vp_xcalloc(b.n ? b.n : 1, sizeof(virConnectPtr));
        for (size_t i = 0; r >= 0 && i < b.n; i++)
                r = vp_ctx_conn_vm(ctx, &b.vms[i], &b.conns[i], err);
        if (r >= 0 && b.n > 0) {
                b.next = 1;
                b.r = build_vm(&b, 0, &b.err);
                if (b.r >= 0) {
                        b.done = 1;
                        if (progress)
                                progress(ud, b.vms[0].name, "defined", 1, b.n);
                }
                pthread_t t[VP_BUILD_WORKERS];
                size_t started = 0;
                for (; b.r >= 0 && started < VP_BUILD_WORKERS && started + 1 < b.n; started++)
                        if (pthread_create(&t[started], NULL, build_worker, &b) != 0)
                                break;
                if (b.r >= 0 && started == 0)
                        build_worker(&b);
                for (size_t i = 0; i < started; i++)
                        pthread_join(t[i], NULL);
                r = b.r;
                if (r < 0 && err)
                        *err = b.err;
        }
        pthread_mutex_destroy(&b.lock);
        vp_rows_free(&vp_table_vm, b.vms, b.n);
        free(b.conns);
        if (r < 0 || (r = check_lock(ctx, refs->pool.name, lockfd, err)) < 0)
                return r;
        free(refs->pool.state);
        refs->pool.state = vp_strdup(vp_pool_state_to_string(VP_POOL_ACTIVE));
        r = vp_row_update(ctx->cat, &vp_table_pool, &refs->pool, err);
        if (r >= 0)
                vp_fault_point("create.active");
        return r;
}

/* Remove what a create made of POOL: domains with our UUIDs, collections
 * without a user's manifest or with ours, then the rows. */
static void unbuild_pool(struct vp_ctx *ctx, struct pool_refs *refs)
{
        struct vp_vm *vms = NULL;
        size_t n = 0;
        struct vp_error ignore;
        if (load_vms(ctx, refs->pool.id, &vms, &n, &ignore) < 0)
                return;
        for (size_t i = n; i-- > 0;) {
                char uuid[VIR_UUID_STRING_BUFLEN];
                virConnectPtr conn;
                if (vp_ctx_conn_vm(ctx, &vms[i], &conn, &ignore) >= 0 && vp_hv_uuid(conn, vms[i].name, uuid, NULL) >= 0 &&
                    streq(uuid, vms[i].uuid))
                        vp_hv_undefine(conn, vms[i].name, true, &ignore);
                int fd = -1;
                struct vp_manifest m;
                bool ours = true;
                const char *dir = vp_delta_dir_of(vms[i].delta_path);
                if (vp_delta_open(&ctx->st, refs->pool.name, dir, &fd, &ignore) >= 0) {
                        if (vp_manifest_read(fd, vms[i].delta_path, &m, &ignore) >= 0)
                                ours = streq(m.uuid, vms[i].uuid);
                        close(fd);
                }
                if (ours)
                        vp_delta_remove(&ctx->st, refs->pool.name, dir, &ignore);
        }
        if (vp_catalog_begin(ctx->cat, &ignore) >= 0) {
                bool ok = true;
                for (size_t i = 0; i < n && ok; i++)
                        ok = vp_row_delete(ctx->cat, &vp_table_vm, vms[i].id, &ignore) >= 0;
                if (ok && vp_row_delete(ctx->cat, &vp_table_pool, refs->pool.id, &ignore) >= 0)
                        vp_catalog_commit(ctx->cat, &ignore);
                else
                        vp_catalog_rollback(ctx->cat);
        }
        vp_rows_free(&vp_table_vm, vms, n);
}

/* The arguments alone, before anything is looked up. */
static int check_create_args(const struct vp_pool_args *a, struct vp_error *err)
{
        int r;
        if ((r = vp_name_check("pool", a->name, err)) < 0 || (r = vp_name_check("image", a->image, err)) < 0 ||
            (r = vp_name_check("env", a->env, err)) < 0 || (r = vp_name_check("profile", a->profile, err)) < 0)
                return r;
        /* Room for "-NNNN" so every VM name passes the same allowlist. */
        if (strlen(a->name) > VP_NAME_MAX - 5)
                return vp_err(err, -EINVAL, "pool name '%s' is too long (at most %d characters)", a->name,
                              VP_NAME_MAX - 5);
        if (a->size < 1 || a->size > VP_MAX_POOL_SIZE)
                return vp_err(err, -EINVAL, "pool size must be between 1 and %d", VP_MAX_POOL_SIZE);
        return 0;
}

/* The rows A names into REFS. A pool of A's name still creating is a
 * create that was interrupted (*ret_resuming): only the same create, with
 * the same image, env, profile and sizes, may finish it. Any other pool of
 * the name refuses. */
static int load_create_refs(struct vp_ctx *ctx, const struct vp_pool_args *a, struct pool_refs *refs,
                            bool *ret_resuming, struct vp_error *err)
{
        int r;
        bool resuming = false;
        if (vp_row_get(ctx->cat, &vp_table_pool, "name", a->name, &refs->pool, NULL) >= 0) {
                if (vp_pool_state_from_string(refs->pool.state) != VP_POOL_CREATING)
                        return vp_err(err, -EEXIST, "pool '%s' already exists", a->name);
                resuming = true;
        }
        if ((r = vp_row_get(ctx->cat, &vp_table_image, "name", a->image, &refs->im, err)) < 0 ||
            (r = vp_row_get(ctx->cat, &vp_table_env, "name", a->env, &refs->env, err)) < 0 ||
            (r = vp_row_get(ctx->cat, &vp_table_profile, "name", a->profile, &refs->prof, err)) < 0 ||
            (r = vp_inspect_check_profile(ctx->cat, &refs->im, &refs->prof, err)) < 0 ||
            (r = vp_check_image_supports(&refs->im, &refs->prof, err)) < 0)
                return r;
        if (resuming && (refs->pool.image_id != refs->im.id || refs->pool.env_id != refs->env.id ||
                         refs->pool.profile_id != refs->prof.id || refs->pool.size != a->size ||
                         refs->pool.data_disk_bytes != (int64_t)a->data_disk_bytes))
                return vp_err(err, -EEXIST, "pool '%s' was being created with other parameters and was interrupted; "
                              "repeat that create, or 'vpool pool rm %s'", a->name, a->name);
        *ret_resuming = resuming;
        return 0;
}

/* The master on storage must still be the image it was: its header passes
 * storage's checks and its size is the one recorded. */
static int check_master_unchanged(struct vp_ctx *ctx, const struct vp_image *im, struct vp_error *err)
{
        _cleanup_close_ int fd = -1;
        struct stat st;
        int r = vp_storage_open_master(&ctx->st, im->path, im->format, &fd, err);
        if (r < 0)
                return r;
        if (fstat(fd, &st) < 0)
                return vp_err(err, -errno, "master image '%s': %s", im->path, strerror(errno));
        if ((int64_t)st.st_size != im->file_size)
                return vp_err(err, -EBADMSG, "master image '%s' changed size on storage", im->path);
        return 0;
}

/* The hosts of the pool's env that can take its VMs: they answer, offer
 * the profile's hardware, are not in maintenance; together they have the
 * memory the VMs need when they are to run. */
static int place_env(struct vp_ctx *ctx, const struct vp_pool_args *a, struct pool_refs *refs, struct vp_error *err)
{
        int r = vp_placer_init(ctx, &refs->env, &refs->prof, a->placement, NULL, &refs->pl, err);
        if (r >= 0)
                r = vp_placer_check(&refs->pl, a->start ? (size_t)a->size : 0, refs->prof.memory_mib << 10, err);
        return r;
}

/* Nothing of the pool's names may exist yet, in the catalog, on storage or
 * on the hypervisor: creating never adopts or overwrites. A console log
 * left from an earlier VM of the name is appended to, if a regular file. */
static int check_names_free(struct vp_ctx *ctx, const struct vp_placer *pl, const struct vp_pool_args *a,
                            const struct vp_env *env, struct vp_error *err)
{
        int r = 0;
        for (size_t h = 0; h < pl->n && r >= 0; h++) {
                struct vp_hv_states doms;
                if (!pl->h[h].conn || (r = vp_hv_states_load(pl->h[h].conn, &doms, err)) < 0)
                        continue;
                for (int64_t i = 0; i < a->size && r >= 0; i++) {
                        char name[64];
                        vm_name(name, a->name, i);
                        if (vp_hv_states_find(&doms, name)) {
                                _cleanup_free_ char *who = vp_host_label(env->name, pl->h[h].host.name);
                                r = vp_err(err, -EEXIST, "%s already has a domain named '%s'", who, name);
                        }
                }
                vp_hv_states_free(&doms);
        }
        for (int64_t i = 0; i < a->size && r >= 0; i++) {
                char name[64];
                vm_name(name, a->name, i);
                struct vp_vm v = { 0 };
                if (vp_row_get(ctx->cat, &vp_table_vm, "name", name, &v, NULL) >= 0) {
                        vp_row_clear(&vp_table_vm, &v);
                        r = vp_err(err, -EEXIST, "vm '%s' already exists", name);
                } else {
                        /* The console logs the domains will name, refused
                         * here rather than half way through the build. */
                        _cleanup_free_ char *log = vp_storage_log_path(&ctx->st, name);
                        r = vp_storage_check_file(&ctx->st, log, err);
                }
        }
        if (r < 0)
                return r;
        _cleanup_close_ int pfd = openat(ctx->st.deltas_fd, a->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (pfd >= 0 || errno != ENOENT)
                return vp_err(err, -EEXIST, "'%s/deltas/%s' already exists on storage", ctx->st.root, a->name);
        return 0;
}

/* Phase 1, one transaction: the pool (state creating) and every VM's
 * identity. A crash from here on is finished by the next identical create,
 * or undone by pool rm. */
static int allocate_pool(struct vp_ctx *ctx, const struct vp_pool_args *a, struct pool_refs *refs,
                         struct vp_error *err)
{
        int r = vp_catalog_begin(ctx->cat, err);
        if (r < 0)
                return r;
        refs->pool = (struct vp_pool){
                .name = vp_strdup(a->name), .image_id = refs->im.id, .env_id = refs->env.id,
                .profile_id = refs->prof.id, .size = a->size, .data_disk_bytes = (int64_t)a->data_disk_bytes,
                .state = vp_strdup(vp_pool_state_to_string(VP_POOL_CREATING)), .created = vp_now_iso(),
        };
        r = vp_row_insert(ctx->cat, &vp_table_pool, &refs->pool, err);
        for (int64_t i = 0; i < a->size && r >= 0; i++) {
                int h = vp_place(&refs->pl, refs->prof.memory_mib << 10, a->start, err);
                if (h < 0) {
                        r = h;
                        break;
                }
                char name[64], uuid[37], mac[18], owner[VP_OWNER_MAX];
                vm_name(name, a->name, i);
                random_uuid(uuid);
                random_mac(mac);
                vp_owner_vm(owner, name);
                _cleanup_free_ char *delta = vp_delta_path(&ctx->st, a->name, name, uuid);
                struct vp_vm v = {
                        .name = name, .pool_id = refs->pool.id, .idx = i + 1, .env_id = refs->env.id,
                        .profile_id = refs->prof.id, .host_id = refs->pl.h[h].host.id, .uuid = uuid, .macs = mac,
                        .hostname = name,
                        .delta_path = delta, .owner = owner, .generation = 1, .created = refs->pool.created,
                };
                r = vp_row_insert(ctx->cat, &vp_table_vm, &v, err);
        }
        if (r >= 0)
                r = vp_catalog_commit(ctx->cat, err);
        if (r < 0)
                vp_catalog_rollback(ctx->cat);
        return r;
}

/* --start: every VM of the new pool, in order, on its host. */
static int start_vms(struct vp_ctx *ctx, const struct pool_refs *refs, vp_progress_fn progress, void *ud,
                     struct vp_error *err)
{
        struct vp_vm *vms = NULL;
        size_t n = 0;
        int r = load_vms(ctx, refs->pool.id, &vms, &n, err);
        for (size_t i = 0; i < n && r >= 0; i++) {
                virConnectPtr conn;
                if ((r = vp_ctx_conn_vm(ctx, &vms[i], &conn, err)) >= 0)
                        r = vp_hv_start(conn, vms[i].name, err);
                if (r < 0)
                        vp_err_prefix(err, "pool '%s' created, but", refs->pool.name);
                else if (progress)
                        progress(ud, vms[i].name, "started", i + 1, n);
        }
        vp_rows_free(&vp_table_vm, vms, n);
        return r;
}

int vp_pool_create(struct vp_ctx *ctx, const struct vp_pool_args *a, vp_progress_fn progress,
                   void *ud, struct vp_error *err)
{
        int r = check_create_args(a, err);
        if (r < 0)
                return r;
        _cleanup_close_ int lockfd = -1;
        if ((r = vp_pool_lock(ctx, a->name, &lockfd, err)) < 0)
                return r;

        struct pool_refs refs = { 0 };
        bool resuming = false;
        if ((r = load_create_refs(ctx, a, &refs, &resuming, err)) < 0 ||
            (r = check_master_unchanged(ctx, &refs.im, err)) < 0 || (r = place_env(ctx, a, &refs, err)) < 0)
                goto out;
        if (!resuming) {
                if ((r = check_names_free(ctx, &refs.pl, a, &refs.env, err)) < 0 ||
                    (r = check_lock(ctx, a->name, lockfd, err)) < 0 ||
                    (r = allocate_pool(ctx, a, &refs, err)) < 0)
                        goto out;
                vp_fault_point("create.allocated");
        }
        r = build_pool(ctx, &refs, lockfd, progress, ud, err);
        if (r < 0) {
                /* A failure (not a crash) undoes the whole pool: all or
                 * nothing; but without the lock the pool may be another
                 * process's now, and is left as a crash leaves it. */
                if (r != -ENOLCK)
                        unbuild_pool(ctx, &refs);
                goto out;
        }
        if (a->start)
                r = start_vms(ctx, &refs, progress, ud, err);
out:
        refs_clear(&refs);
        return r;
}

static int for_each_vm(struct vp_ctx *ctx, const char *pool_name,
                       int (*fn)(struct vp_ctx *, virConnectPtr, const struct vp_vm *, void *, struct vp_error *),
                       void *ud, struct vp_error *err)
{
        struct pool_refs refs;
        int r = load_pool_refs(ctx, pool_name, &refs, err);
        if (r < 0)
                return r;
        struct vp_vm *vms = NULL;
        size_t n = 0;
        r = load_vms(ctx, refs.pool.id, &vms, &n, err);
        /* VMs of a pool live on the pool's env, except mid-migration. */
        for (size_t i = 0; i < n && r >= 0; i++) {
                virConnectPtr conn;
                if ((r = vp_ctx_conn_vm(ctx, &vms[i], &conn, err)) >= 0)
                        r = fn(ctx, conn, &vms[i], ud, err);
        }
        vp_rows_free(&vp_table_vm, vms, n);
        refs_clear(&refs);
        return r;
}

struct stop_args {
        int timeout;
        bool force;
};

int vp_vm_check_start(struct vp_ctx *ctx, struct vp_image *im, const char *pool, const char *vm,
                      const char *delta_path, struct vp_error *err)
{
        bool restamped = false;
        struct vp_manifest m;
        /* The master last: a refusal never stores a new stamp. */
        int r = vp_delta_check(&ctx->st, pool, vp_delta_dir_of(delta_path), im->path, im->format, &m, err);
        if (r >= 0)
                r = vp_vm_check_files(ctx, im, &m, delta_path, err);
        if (r >= 0)
                r = vp_image_check_unchanged(ctx, im, &restamped, err);
        if (r >= 0 && restamped)
                r = vp_row_update(ctx->cat, &vp_table_image, im, err);
        if (r < 0)
                vp_err_prefix(err, "vm '%s' not started", vm);
        return r;
}

/* vp_vm_check_start for VM, its pool and master read from the catalog. */
static int check_vm_disks(struct vp_ctx *ctx, const struct vp_vm *vm, struct vp_error *err)
{
        struct vp_pool pool = { 0 };
        struct vp_image im = { 0 };
        int r = vp_row_get_id(ctx->cat, &vp_table_pool, vm->pool_id, &pool, err);
        if (r >= 0)
                r = vp_row_get_id(ctx->cat, &vp_table_image, pool.image_id, &im, err);
        if (r >= 0)
                r = vp_vm_check_start(ctx, &im, pool.name, vm->name, vm->delta_path, err);
        vp_row_clear(&vp_table_pool, &pool);
        vp_row_clear(&vp_table_image, &im);
        return r;
}

static int start_one(struct vp_ctx *ctx, virConnectPtr conn, const struct vp_vm *vm, void *ud,
                     struct vp_error *err)
{
        int r = check_vm_disks(ctx, vm, err);
        if (r < 0)
                return r;
        r = vp_hv_start(conn, vm->name, err);
        if (r < 0)
                vp_err_prefix(err, "vm '%s'", vm->name);
        return r;
}

static int stop_one(struct vp_ctx *ctx, virConnectPtr conn, const struct vp_vm *vm, void *ud,
                    struct vp_error *err)
{
        struct stop_args *s = ud;
        return vp_hv_stop(conn, vm->name, s->timeout, s->force, err);
}

static int check_one(struct vp_ctx *ctx, virConnectPtr conn, const struct vp_vm *vm, void *ud,
                     struct vp_error *err)
{
        return check_vm_disks(ctx, vm, err);
}

int vp_pool_start(struct vp_ctx *ctx, const char *name, struct vp_error *err)
{
        /* All VMs' disks first, so a hostile one stops the pool before any starts. */
        int r = for_each_vm(ctx, name, check_one, NULL, err);
        if (r < 0)
                return r;
        return for_each_vm(ctx, name, start_one, NULL, err);
}

/* Ask every VM to shut down first, then wait: N guests stop in parallel. */
static int ask_shutdown(struct vp_ctx *ctx, virConnectPtr conn, const struct vp_vm *vm, void *ud,
                        struct vp_error *err)
{
        virDomainPtr d = virDomainLookupByName(conn, vm->name);
        if (d) {
                if (virDomainIsActive(d) == 1)
                        virDomainShutdownFlags(d, VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN);
                virDomainFree(d);
        }
        return 0;
}

int vp_pool_stop(struct vp_ctx *ctx, const char *name, int timeout, bool force, struct vp_error *err)
{
        struct stop_args s = { timeout, force };
        int r = for_each_vm(ctx, name, ask_shutdown, NULL, err);
        if (r < 0)
                return r;
        return for_each_vm(ctx, name, stop_one, &s, err);
}

static int rm_one(struct vp_ctx *ctx, virConnectPtr conn, const struct vp_vm *vm, void *ud, struct vp_error *err)
{
        const bool *force = ud;
        enum vp_vm_state state;
        int r = vp_hv_domain_state(conn, vm->name, &state, err);
        if (r < 0)
                return r;
        if (state == VP_VM_RUNNING && !*force)
                return vp_err(err, -EBUSY, "vm '%s' is running; stop the pool first or use --force", vm->name);
        return 0;
}

static int undefine_one(struct vp_ctx *ctx, virConnectPtr conn, const struct vp_vm *vm, void *ud,
                        struct vp_error *err)
{
        int r = vp_hv_undefine(conn, vm->name, true, err);
        if (r < 0)
                vp_err_prefix(err, "vm '%s'", vm->name);
        return r;
}

int vp_pool_rm(struct vp_ctx *ctx, const char *name, bool keep_deltas, bool force, struct vp_error *err)
{
        _cleanup_close_ int lockfd = -1;
        int r = vp_name_check("pool", name, err);
        if (r < 0 || (r = vp_pool_lock(ctx, name, &lockfd, err)) < 0)
                return r;
        struct vp_pool pool = { 0 };
        if ((r = vp_row_get(ctx->cat, &vp_table_pool, "name", name, &pool, err)) < 0)
                return r;
        bool migrating = vp_pool_state_from_string(pool.state) == VP_POOL_MIGRATING;
        vp_row_clear(&vp_table_pool, &pool);
        if (migrating)
                return vp_err(err, -EBUSY, "pool '%s' is migrating; resume or abort its migration first "
                              "('vpool migrate list')", name);
        /* Check every VM before touching any, so a refusal changes nothing. */
        r = for_each_vm(ctx, name, rm_one, &force, err);
        if (r < 0)
                return r;
        r = for_each_vm(ctx, name, undefine_one, NULL, err);
        if (r < 0)
                return r;
        struct pool_refs refs;
        if ((r = load_pool_refs(ctx, name, &refs, err)) < 0)
                return r;
        struct vp_vm *vms = NULL;
        size_t n = 0;
        if ((r = load_vms(ctx, refs.pool.id, &vms, &n, err)) < 0)
                goto out;
        /* Domains are gone; the catalog rows go next, in one transaction,
         * and the collections last, so a crash never leaves a row pointing
         * at a collection that is half removed. */
        if ((r = vp_catalog_begin(ctx->cat, err)) < 0)
                goto out;
        for (size_t i = 0; i < n && r >= 0; i++)
                r = vp_row_delete(ctx->cat, &vp_table_vm, vms[i].id, err);
        if (r >= 0)
                r = vp_row_delete(ctx->cat, &vp_table_pool, refs.pool.id, err);
        if (r >= 0)
                r = vp_catalog_commit(ctx->cat, err);
        if (r < 0) {
                vp_catalog_rollback(ctx->cat);
                goto out;
        }
        if (!keep_deltas)
                for (size_t i = 0; i < n && r >= 0; i++)
                        r = vp_delta_remove(&ctx->st, refs.pool.name, vp_delta_dir_of(vms[i].delta_path), err);
out:
        vp_rows_free(&vp_table_vm, vms, n);
        refs_clear(&refs);
        return r;
}

static int load_vm(struct vp_ctx *ctx, const char *name, struct vp_vm *vm, struct vp_env *env,
                   struct vp_error *err)
{
        int r;
        if ((r = vp_name_check("vm", name, err)) < 0 ||
            (r = vp_row_get(ctx->cat, &vp_table_vm, "name", name, vm, err)) < 0)
                return r;
        r = vp_row_get_id(ctx->cat, &vp_table_env, vm->env_id, env, err);
        if (r < 0)
                vp_row_clear(&vp_table_vm, vm);
        return r;
}

int vp_vm_start(struct vp_ctx *ctx, const char *name, struct vp_error *err)
{
        struct vp_vm vm = { 0 };
        struct vp_env env = { 0 };
        virConnectPtr conn;
        int r = load_vm(ctx, name, &vm, &env, err);
        if (r < 0)
                return r;
        if ((r = check_vm_disks(ctx, &vm, err)) >= 0 && (r = vp_ctx_conn_vm(ctx, &vm, &conn, err)) >= 0)
                r = vp_hv_start(conn, name, err);
        vp_row_clear(&vp_table_vm, &vm);
        vp_row_clear(&vp_table_env, &env);
        return r;
}

int vp_vm_stop(struct vp_ctx *ctx, const char *name, int timeout, bool force, struct vp_error *err)
{
        struct vp_vm vm = { 0 };
        struct vp_env env = { 0 };
        virConnectPtr conn;
        int r = load_vm(ctx, name, &vm, &env, err);
        if (r < 0)
                return r;
        if ((r = vp_ctx_conn_vm(ctx, &vm, &conn, err)) >= 0)
                r = vp_hv_stop(conn, name, timeout, force, err);
        vp_row_clear(&vp_table_vm, &vm);
        vp_row_clear(&vp_table_env, &env);
        return r;
}

enum vp_vm_state vp_vm_live_state(struct vp_ctx *ctx, const struct vp_vm *vm)
{
        virConnectPtr conn;
        enum vp_vm_state state = VP_VM_UNKNOWN;
        if (vp_ctx_conn_vm(ctx, vm, &conn, NULL) < 0)
                state = VP_VM_UNREACHABLE;
        else if (vp_hv_domain_state(conn, vm->name, &state, NULL) < 0)
                state = VP_VM_UNKNOWN;
        return state;
}

const char *vp_vm_state(struct vp_ctx *ctx, const struct vp_vm *vm)
{
        return vp_vm_state_to_string(vp_vm_live_state(ctx, vm));
}
