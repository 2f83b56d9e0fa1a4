#include "fsck.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "host.h"
#include "lock.h"
#include "name.h"
#include "qcow2.h"

static void problem(struct vp_fsck_report *rep, const char *kind, const char *subject, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void problem(struct vp_fsck_report *rep, const char *kind, const char *subject, const char *fmt, ...)
{
        if (rep->n == rep->cap) {
                rep->cap = rep->cap ? rep->cap * 2 : 16;
                struct vp_problem *p = realloc(rep->problems, rep->cap * sizeof(*p));
                if (!p)
                        abort();
                rep->problems = p;
        }
        struct vp_problem *p = &rep->problems[rep->n++];
        memset(p, 0, sizeof(*p));
        snprintf(p->kind, sizeof(p->kind), "%s", kind);
        snprintf(p->subject, sizeof(p->subject), "%s", subject);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->detail, sizeof(p->detail), fmt, ap);
        va_end(ap);
}

void vp_fsck_report_free(struct vp_fsck_report *rep)
{
        free(rep->problems);
        memset(rep, 0, sizeof(*rep));
}

/* A host of an env and the domains defined there. */
struct host_doms {
        const struct vp_env *env;
        struct vp_host host;
        virConnectPtr conn;            /* the ctx's; NULL when it did not answer */
        struct vp_dominfo *doms;
        size_t ndoms;
        bool *removed;                 /* per domain: --repair undefined it */
};

/* A domain definition found on a host. */
struct seen {
        const struct host_doms *h;
        struct vp_dominfo *d;
};

struct state {
        struct vp_ctx *ctx;
        bool repair;
        struct vp_fsck_report *rep;
        struct vp_env *envs;
        size_t nenvs;
        struct host_doms *hosts;       /* every host of every env */
        size_t nhosts;
        struct vp_vm *vms;
        size_t nvms;
        struct vp_pool *pools;
        size_t npools;
        struct vp_image *images;
        size_t nimages;
        struct vp_migration *migs;
        size_t nmigs;
        int64_t *inflight;             /* ids of VMs an unfinished migration is moving */
        size_t ninflight;
};

static bool pool_creating(struct state *s, int64_t pool_id);

static bool in_flight(struct state *s, const struct vp_vm *vm)
{
        for (size_t i = 0; vm && i < s->ninflight; i++)
                if (s->inflight[i] == vm->id)
                        return true;
        return vm && pool_creating(s, vm->pool_id);
}

static bool creating(const struct vp_pool *p)
{
        return vp_pool_state_from_string(p->state) == VP_POOL_CREATING;
}

static bool unfinished(const struct vp_migration *m)
{
        return vp_migration_state_unfinished(vp_migration_state_from_string(m->state));
}

static bool pool_creating(struct state *s, int64_t pool_id)
{
        for (size_t i = 0; i < s->npools; i++)
                if (s->pools[i].id == pool_id)
                        return creating(&s->pools[i]);
        return false;
}

/* An unfinished migration is one problem of its own: its VMs are between
 * steps the journal knows, and resume or abort settles them. */
static void note_unfinished(struct state *s)
{
        for (size_t i = 0; i < s->npools; i++)
                if (creating(&s->pools[i]))
                        problem(s->rep, "pool-unfinished", s->pools[i].name,
                                "its creation was interrupted; the same 'vpool pool create' finishes it, "
                                "'vpool pool rm %s' undoes it", s->pools[i].name);
        for (size_t i = 0; i < s->nmigs; i++) {
                const struct vp_migration *m = &s->migs[i];
                if (!unfinished(m))
                        continue;
                void *rows = NULL;
                size_t n = 0, moving = 0;
                if (vp_row_query(s->ctx->cat, &vp_table_migvm, "migration_id = ?1", m->id, &rows, &n, NULL) < 0)
                        continue;
                struct vp_migvm *mv = rows;
                for (size_t k = 0; k < n; k++) {
                        enum vp_step step = vp_step_from_string(mv[k].step);
                        if (vp_step_ended(step) || step == VP_STEP_PENDING)
                                continue;
                        int64_t *ni = realloc(s->inflight, (s->ninflight + 1) * sizeof(*ni));
                        if (!ni)
                                abort();
                        s->inflight = ni;
                        s->inflight[s->ninflight++] = mv[k].vm_id;
                        moving++;
                }
                vp_rows_free(&vp_table_migvm, rows, n);
                char subj[64];
                snprintf(subj, sizeof(subj), "migration %lld", (long long)m->id);
                problem(s->rep, "migration-unfinished", subj,
                        "pool '%s': %zu VMs between steps; 'vpool migrate resume %lld' finishes it, "
                        "'vpool migrate abort %lld' undoes it", m->pool_name, moving, (long long)m->id,
                        (long long)m->id);
        }
}

static const struct vp_vm *vm_by_name(struct state *s, const char *name)
{
        return vp_rows_find_name(&vp_table_vm, s->vms, s->nvms, name);
}

static const struct vp_pool *pool_by_id(struct state *s, int64_t id)
{
        return vp_rows_find_id(&vp_table_pool, s->pools, s->npools, id);
}

static const struct vp_pool *pool_by_name(struct state *s, const char *name)
{
        return vp_rows_find_name(&vp_table_pool, s->pools, s->npools, name);
}

static const struct vp_image *image_by_id(struct state *s, int64_t id)
{
        return vp_rows_find_id(&vp_table_image, s->images, s->nimages, id);
}

static const struct vp_env *env_by_id(struct state *s, int64_t id)
{
        return vp_rows_find_id(&vp_table_env, s->envs, s->nenvs, id);
}

static struct host_doms *host_by_id(struct state *s, int64_t id)
{
        for (size_t i = 0; id && i < s->nhosts; i++)
                if (s->hosts[i].host.id == id)
                        return &s->hosts[i];
        return NULL;
}

/* The host the catalog records for VM, when it is one of VM's env. */
static const struct host_doms *home_host(struct state *s, const struct vp_vm *vm)
{
        const struct host_doms *h = host_by_id(s, vm->host_id);
        return h && h->host.env_id == vm->env_id ? h : NULL;
}

/* Whether VM's domain belongs on host H: its recorded host, or, when the
 * catalog records none of its env, any host of its env (the env is where
 * the catalog says its domain is defined). */
static bool expected_on(struct state *s, const struct vp_vm *vm, const struct host_doms *h)
{
        const struct host_doms *home = home_host(s, vm);
        return home ? home == h : vm->env_id == h->host.env_id;
}

/* Where the catalog places VM, for a message: "host 'H' of env 'E'". */
static char *home_of(struct state *s, const struct vp_vm *vm)
{
        const struct host_doms *h = home_host(s, vm);
        const struct vp_env *e = env_by_id(s, vm->env_id);
        if (h)
                return vp_strdupf("host '%s' of env '%s'", h->host.name, h->env->name);
        return vp_strdupf("env '%s' (on no host of it)", e ? e->name : "?");
}

/* The index of domain NAME on host H, or -1. */
static ssize_t find_domain(const struct host_doms *h, const char *name)
{
        for (size_t k = 0; k < h->ndoms; k++)
                if (!h->removed[k] && streq(h->doms[k].name, name))
                        return (ssize_t)k;
        return -1;
}

static bool migration_open(struct state *s, int64_t id)
{
        for (size_t i = 0; i < s->nmigs; i++)
                if (s->migs[i].id == id)
                        return unfinished(&s->migs[i]);
        return false;
}

/* Every domain, on any host, with one of the delta's current disks (names
 * from the manifest). A definition naming a disk file the delta no longer
 * has (an older generation's) cannot reach it: that is a stale domain. */
static size_t attachments(struct state *s, const char *delta, const struct vp_manifest *m, struct seen *out,
                          size_t max)
{
        size_t n = 0;
        _cleanup_free_ char *ov = vp_strdupf("%s/%s", delta, m->overlay);
        _cleanup_free_ char *dd = m->data_disk[0] ? vp_strdupf("%s/%s", delta, m->data_disk) : NULL;
        for (size_t e = 0; e < s->nhosts; e++)
                for (size_t i = 0; i < s->hosts[e].ndoms; i++) {
                        struct vp_dominfo *d = &s->hosts[e].doms[i];
                        bool hit = false;
                        for (int f = 0; f < d->nfiles && !s->hosts[e].removed[i]; f++)
                                hit |= streq(d->files[f], ov) || (dd && streq(d->files[f], dd));
                        if (hit) {
                                if (n < max)
                                        out[n] = (struct seen){ &s->hosts[e], d };
                                n++;
                        }
                }
        return n;
}

static void check_image_file(struct state *s, int dirfd, const char *name, const char *dir, bool overlay,
                             const struct vp_image *master)
{
        _cleanup_free_ char *path = vp_strdupf("%s/%s", dir, name);
        int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                problem(s->rep, errno == ELOOP ? "symlink" : "file-unreadable", path, "%s",
                        errno == ELOOP ? "a symbolic link where an image should be" : strerror(errno));
                return;
        }
        struct vp_image_info info;
        struct vp_error err = { 0 };
        int r = vp_image_probe(fd, path, VP_FORMAT_QCOW2, &info, &err);
        close(fd);
        if (r < 0) {
                problem(s->rep, "bad-image", path, "%s", err.msg);
                return;
        }
        if (overlay) {
                if (master && vp_image_check_overlay(&info, path, master->path, master->format, &err) < 0)
                        problem(s->rep, "foreign-backing", path, "%s (its pool's master is '%s')", err.msg,
                                master->path);
        } else if (info.backing_file[0] || info.has_data_file) {
                problem(s->rep, info.has_data_file ? "external-data-file" : "foreign-backing", path,
                        "a data disk must stand alone (backing '%s')", info.backing_file);
        }
}

/* Anything in collection PATH but what a collection holds. A create still
 * unfinished (its builders work side by side) owns what it left half made:
 * its next run sweeps it. */
static void check_stray_files(struct state *s, const char *path, int vfd, bool creating)
{
        int dfd = dup(vfd);
        DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
        struct dirent *de;
        while (d && (de = readdir(d))) {
                if (de->d_name[0] == '.' && (!de->d_name[1] || streq(de->d_name, "..")))
                        continue;
                if (strstr(de->d_name, ".tmp.") && !creating)
                        problem(s->rep, "stray-temp-file", path, "'%s' left by an interrupted write", de->d_name);
                struct stat st;
                if (fstatat(vfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                        problem(s->rep, "symlink", path, "'%s' is a symbolic link", de->d_name);
        }
        if (d)
                closedir(d);
        else if (dfd >= 0)
                close(dfd);
}

/* Invariant 1: the manifest's owner is the VM of this collection or an
 * unfinished migration, and (unless a migration is moving the VM) the
 * catalog says the same owner and generation. VM is the catalog's VM of
 * this collection's name, NULL when it has none. */
static void check_owner(struct state *s, const char *path, const char *vmname, const struct vp_vm *vm,
                        const struct vp_manifest *m, const struct vp_owner *owner, bool moving)
{
        if (owner->kind == VP_OWNER_VM) {
                if (!vm || !streq(owner->vm, vmname))
                        problem(s->rep, "owner-unknown", path, "manifest owner '%s' is not a VM of the catalog for this delta",
                                m->owner);
        } else if (!migration_open(s, owner->migration)) {
                problem(s->rep, "owner-stale-migration", path, "owned by '%s', which is not an unfinished migration",
                        m->owner);
        }
        if (vm && !moving && (!streq(vm->owner, m->owner) || vm->generation != m->generation))
                problem(s->rep, "owner-mismatch", path,
                        "manifest says owner '%s' generation %lld, catalog says '%s' generation %lld", m->owner,
                        (long long)m->generation, vm->owner, (long long)vm->generation);
        if (vm && !streq(vm->delta_path, path))
                problem(s->rep, "delta-path-mismatch", path, "catalog places vm '%s' at '%s'", vm->name, vm->delta_path);
}

/* Invariant 4: the disks pass the header checks, the overlay backed by its
 * pool's MASTER (NULL when the catalog knows no pool for it). */
static void check_disks(struct state *s, int vfd, const char *path, const struct vp_manifest *m,
                        const struct vp_image *master, bool moving)
{
        /* Mid-hand-over the disks may already carry the next generation's
         * names while the manifest still gives the last ones: resume knows. */
        bool renaming = moving && faccessat(vfd, m->overlay, F_OK, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT;
        if (renaming)
                return;
        check_image_file(s, vfd, m->overlay, path, true, master);
        if (m->data_disk[0])
                check_image_file(s, vfd, m->data_disk, path, false, NULL);
}

/* The domain of VM on host H, not the one the catalog places it on,
 * holds VM's delta. */
static void not_home(struct state *s, const char *path, const struct host_doms *h, const struct vp_dominfo *dom,
                     const struct vp_vm *vm)
{
        _cleanup_free_ char *home = home_of(s, vm);
        problem(s->rep, "domain-not-owner", path, "domain %s/%s (host %s) holds the delta of 'vm:%s', which lives on %s",
                h->env->name, dom->name, h->host.name, vm->name, home);
}

/* Invariant 2: at most one defined domain holds the delta, and it is its
 * owner's, defined for the delta's generation. */
static void check_holders(struct state *s, const char *path, const struct vp_manifest *m,
                          const struct vp_owner *owner, const struct vp_vm *vm, bool moving)
{
        struct seen seen[8];
        size_t n = attachments(s, path, m, seen, ELEMENTSOF(seen));
        if (n > 1) {
                char list[400] = "";
                for (size_t i = 0; i < n && i < ELEMENTSOF(seen); i++) {
                        size_t l = strlen(list);
                        snprintf(list + l, sizeof(list) - l, "%s%s/%s (host %s)", i ? ", " : "", seen[i].h->env->name,
                                 seen[i].d->name, seen[i].h->host.name);
                }
                problem(s->rep, "delta-shared", path, "attached to %zu domains: %s", n, list);
        }
        for (size_t i = 0; i < n && i < ELEMENTSOF(seen) && !moving; i++) {
                const struct host_doms *h = seen[i].h;
                struct vp_dominfo *dom = seen[i].d;
                if (owner->kind != VP_OWNER_VM)
                        problem(s->rep, "domain-holds-locked-delta", path,
                                "domain %s/%s (host %s) holds a delta owned by '%s'", h->env->name, dom->name,
                                h->host.name, m->owner);
                else if (!streq(dom->name, owner->vm) || !vm)
                        problem(s->rep, "domain-not-owner", path, "domain %s/%s (host %s) holds the delta of '%s'",
                                h->env->name, dom->name, h->host.name, m->owner);
                else if (!expected_on(s, vm, h))
                        not_home(s, path, h, dom, vm);
                else if (dom->has_meta && dom->generation != m->generation)
                        problem(s->rep, "stale-domain", path,
                                "domain %s/%s (host %s) was defined for generation %lld, the delta is at %lld",
                                h->env->name, dom->name, h->host.name, (long long)dom->generation,
                                (long long)m->generation);
        }
}

/* The collection DIR of POOL, open as VFD: DIR names VMNAME and, for a
 * collection made since directories carry it, its UUID. */
static void check_delta(struct state *s, const char *pool, const char *dir, const char *vmname, const char *uuid,
                        int vfd)
{
        _cleanup_free_ char *path = vp_strdupf("%s/deltas/%s/%s", s->ctx->st.root, pool, dir);
        struct vp_manifest m;
        struct vp_owner owner;
        struct vp_error err = { 0 };
        s->rep->deltas++;

        const struct vp_vm *vm = vm_by_name(s, vmname);
        check_stray_files(s, path, vfd, vm && pool_creating(s, vm->pool_id));
        if (vp_manifest_read(vfd, path, &m, &err) < 0 || vp_owner_parse(m.owner, &owner, &err) < 0) {
                /* A create writes the manifest last: half a collection is its business. */
                if (!(err.code == -ENOENT && in_flight(s, vm)))
                        problem(s->rep, "manifest-damaged", path, "%s", err.msg);
                return;
        }
        if (!streq(m.pool, pool) || !streq(m.vm, vmname) || (uuid[0] && !streq(m.uuid, uuid)))
                problem(s->rep, "manifest-misplaced", path, "manifest names %s/%s (UUID %s)", m.pool, m.vm, m.uuid);

        const struct vp_pool *p = pool_by_name(s, pool);
        const struct vp_image *master = p ? image_by_id(s, p->image_id) : NULL;
        bool moving = in_flight(s, vm);
        check_owner(s, path, vmname, vm, &m, &owner, moving);
        if (!p)
                problem(s->rep, "pool-unknown", path, "no pool '%s' in the catalog", pool);
        if (master && !streq(master->path, m.master))
                problem(s->rep, "foreign-backing", path, "manifest names master '%s', the pool's is '%s'", m.master,
                        master->path);
        check_disks(s, vfd, path, &m, master, moving);
        check_holders(s, path, &m, &owner, vm, moving);
}

static void walk_deltas(struct state *s)
{
        int fd = dup(s->ctx->st.deltas_fd);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d) {
                if (fd >= 0)
                        close(fd);
                problem(s->rep, "storage-unreadable", s->ctx->st.root, "cannot read deltas/");
                return;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                _cleanup_free_ char *pp = vp_strdupf("%s/deltas/%s", s->ctx->st.root, de->d_name);
                int pfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (pfd < 0 || vp_name_check("pool", de->d_name, NULL) < 0) {
                        problem(s->rep, "stray-file", pp, "not a pool directory");
                        if (pfd >= 0)
                                close(pfd);
                        continue;
                }
                DIR *pd = fdopendir(pfd);
                struct dirent *ve;
                while (pd && (ve = readdir(pd))) {
                        if (streq(ve->d_name, ".") || streq(ve->d_name, ".."))
                                continue;
                        char vm[VP_NAME_MAX + 1], uuid[37];
                        int vfd = openat(dirfd(pd), ve->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (vfd < 0 || vp_delta_dir_parse(ve->d_name, vm, uuid) < 0) {
                                _cleanup_free_ char *vp = vp_strdupf("%s/%s", pp, ve->d_name);
                                problem(s->rep, "stray-file", vp, "not a user delta collection");
                                if (vfd >= 0)
                                        close(vfd);
                                continue;
                        }
                        check_delta(s, de->d_name, ve->d_name, vm, uuid, vfd);
                        close(vfd);
                }
                if (pd)
                        closedir(pd);
        }
        closedir(d);
}

/* A vpool domain belongs to this catalog when it uses this storage root, or,
 * without disks, names one of this catalog's pools. Hosts may
 * also carry domains of other catalogs; those are not ours to judge. */
static bool ours(struct state *s, const struct vp_dominfo *d)
{
        size_t rl = strlen(s->ctx->st.root);
        for (int f = 0; f < d->nfiles; f++)
                if (strncmp(d->files[f], s->ctx->st.root, rl) == 0 && d->files[f][rl] == '/')
                        return true;
        return d->nfiles == 0 && pool_by_name(s, d->pool) != NULL;
}

/* Whether an unfinished migration moves VM ID now. As in_flight: a VM at
 * an ended step (or still pending) is not between steps of the migration. */
static bool moving_now(struct vp_ctx *ctx, int64_t vm_id)
{
        void *rows = NULL;
        size_t n = 0;
        bool moving = false;
        if (vp_row_query(ctx->cat, &vp_table_migvm, "vm_id = ?1", vm_id, &rows, &n, NULL) < 0)
                return false;
        struct vp_migvm *mv = rows;
        for (size_t i = 0; i < n && !moving; i++) {
                enum vp_step step = vp_step_from_string(mv[i].step);
                if (vp_step_ended(step) || step == VP_STEP_PENDING)
                        continue;
                struct vp_migration m = { 0 };
                moving = vp_row_get_id(ctx->cat, &vp_table_migration, mv[i].migration_id, &m, NULL) >= 0 &&
                         unfinished(&m);
                vp_row_clear(&vp_table_migration, &m);
        }
        vp_rows_free(&vp_table_migvm, rows, n);
        return moving;
}

/* Whether domain D on host H is stale by the catalog as it is now, not as
 * the snapshot fsck began with: a pool created or a VM moved since then
 * owns the domain fsck found. Called under the pool's lock, so nothing
 * changes it meanwhile. The VM of D's name as read now into *RET_VM
 * (zeroed when the catalog has none). */
static bool stale_now(struct state *s, const struct host_doms *h, const struct vp_dominfo *d, struct vp_vm *ret_vm)
{
        struct vp_ctx *ctx = s->ctx;
        char uuid[VIR_UUID_STRING_BUFLEN];
        /* Redefined since it was listed: not the definition judged. */
        if (vp_hv_uuid(h->conn, d->name, uuid, NULL) < 0 || !streq(uuid, d->uuid))
                return false;
        struct vp_pool p = { 0 };
        bool creating_now = vp_row_get(ctx->cat, &vp_table_pool, "name", d->pool, &p, NULL) >= 0 && creating(&p);
        vp_row_clear(&vp_table_pool, &p);
        if (creating_now)
                return false;
        if (vp_row_get(ctx->cat, &vp_table_vm, "name", d->name, ret_vm, NULL) < 0) {
                memset(ret_vm, 0, sizeof(*ret_vm));
                return true;
        }
        bool here = expected_on(s, ret_vm, h) && vp_owner_is_vm(ret_vm->owner);
        return !here && !moving_now(ctx, ret_vm->id);
}

/* Whether VM's own definition (its UUID) is where the catalog places it,
 * on a host other than NOT: only then is a definition elsewhere a second
 * one that can go. */
static bool defined_at_home(struct state *s, const struct vp_vm *vm, const struct host_doms *not)
{
        char uuid[VIR_UUID_STRING_BUFLEN];
        for (size_t i = 0; i < s->nhosts; i++) {
                const struct host_doms *h = &s->hosts[i];
                if (h != not && h->conn && expected_on(s, vm, h) && vp_hv_uuid(h->conn, vm->name, uuid, NULL) >= 0 &&
                    streq(uuid, vm->uuid))
                        return true;
        }
        return false;
}

static void append_detail(struct vp_problem *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void append_detail(struct vp_problem *p, const char *fmt, ...)
{
        size_t l = strlen(p->detail);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->detail + l, sizeof(p->detail) - l, fmt, ap);
        va_end(ap);
}

/* Remove the stale domain K of host H, the last problem reported. A stale
 * definition, running or not, is a would-be second writer: it goes, and
 * only it, and only if it still is one with its pool locked (a pool
 * another process works on is left for a later run), and only while its
 * VM's own definition is where the catalog places it (else this one may
 * be the VM's only definition, as a move the catalog has not recorded yet
 * leaves it). A finding the catalog no longer bears out is withdrawn. */
static void repair_stale(struct state *s, struct host_doms *h, size_t k)
{
        const struct vp_dominfo *d = &h->doms[k];
        struct vp_problem *p = &s->rep->problems[s->rep->n - 1];
        struct vp_error rerr = { 0 };
        _cleanup_close_ int lockfd = -1;
        int r = vp_pool_lock(s->ctx, d->pool, &lockfd, &rerr);
        if (r < 0) {
                append_detail(p, "; not repaired: %s", rerr.msg);
                return;
        }
        struct vp_vm vm = { 0 };
        if (!stale_now(s, h, d, &vm)) {
                s->rep->n--;
        } else if (vm.id && !defined_at_home(s, &vm, h)) {
                _cleanup_free_ char *home = home_of(s, &vm);
                append_detail(p, "; not repaired: %s does not hold vm '%s' (this may be its only definition)", home,
                              vm.name);
        } else if (vp_hv_undefine(h->conn, d->name, true, &rerr) >= 0) {
                p->repaired = true;
                h->removed[k] = true;
        } else {
                append_detail(p, "; repair failed: %s", rerr.msg);
        }
        vp_row_clear(&vp_table_vm, &vm);
}

/* VM is recorded on no host of its env: none (its host was removed with
 * --force), or one of another env. Say which hosts of its env have its
 * domain. */
static void host_missing(struct state *s, const struct vp_vm *vm)
{
        const struct host_doms *other = host_by_id(s, vm->host_id);
        const struct vp_env *e = env_by_id(s, vm->env_id);
        char found[300] = "";
        size_t nfound = 0, unreached = 0;
        for (size_t i = 0; i < s->nhosts; i++) {
                const struct host_doms *h = &s->hosts[i];
                if (h->host.env_id != vm->env_id)
                        continue;
                if (!h->conn) {
                        unreached++;
                } else if (find_domain(h, vm->name) >= 0) {
                        size_t l = strlen(found);
                        snprintf(found + l, sizeof(found) - l, "%s'%s'", nfound++ ? ", " : "", h->host.name);
                }
        }
        const char *ename = e ? e->name : "?";
        _cleanup_free_ char *why = other ? vp_strdupf("recorded on host '%s' of env '%s', not of its env '%s'",
                                                      other->host.name, other->env->name, ename)
                                         : vp_strdupf("recorded on no host of env '%s'", ename);
        const char *kind = other ? "host-mismatch" : "host-missing";
        if (nfound)
                problem(s->rep, kind, vm->name, "%s; its domain is on host%s %s", why, nfound == 1 ? "" : "s", found);
        else
                problem(s->rep, kind, vm->name, "%s; no host of env '%s'%s has its domain", why, ename,
                        unreached ? " that answered" : "");
}

/* Each VM's delta is there and its domain on the host the catalog records. */
static void check_vms(struct state *s)
{
        for (size_t i = 0; i < s->nvms; i++) {
                const struct vp_vm *vm = &s->vms[i];
                const struct vp_pool *p = pool_by_id(s, vm->pool_id);
                struct stat st;
                s->rep->vms++;
                if (in_flight(s, vm))
                        continue;
                if (stat(vm->delta_path, &st) < 0)
                        problem(s->rep, "delta-missing", vm->name, "its collection '%s' is missing", vm->delta_path);
                if (!vp_owner_is_vm(vm->owner))
                        continue;   /* mid-migration: the journal knows where it is */
                const struct host_doms *h = home_host(s, vm);
                if (!h)
                        host_missing(s, vm);
                else if (h->conn && find_domain(h, vm->name) < 0)
                        problem(s->rep, "domain-missing", vm->name, "no domain on host '%s' of env '%s' (pool '%s')",
                                h->host.name, h->env->name, p ? p->name : "?");
        }
}

/* Domains vpool defined that the catalog does not place where they are. */
static void check_domains(struct state *s)
{
        for (size_t e = 0; e < s->nhosts; e++) {
                struct host_doms *h = &s->hosts[e];
                for (size_t k = 0; k < h->ndoms; k++) {
                        struct vp_dominfo *d = &h->doms[k];
                        s->rep->domains++;
                        if (!d->has_meta || !ours(s, d))
                                continue;
                        const struct vp_vm *vm = vm_by_name(s, d->name);
                        _cleanup_free_ char *subj = vp_strdupf("%s/%s", h->env->name, d->name);
                        size_t before = s->rep->n;
                        if (!vm) {
                                problem(s->rep, "stale-domain", subj, "on host '%s': a vpool domain (pool '%s') of no "
                                        "VM in the catalog", h->host.name, d->pool);
                        } else if (in_flight(s, vm)) {
                                continue;
                        } else if (!expected_on(s, vm, h)) {
                                _cleanup_free_ char *home = home_of(s, vm);
                                problem(s->rep, "stale-domain", subj, "on host '%s': vm '%s' lives on %s, not here",
                                        h->host.name, vm->name, home);
                        } else if (!streq(vm->uuid, d->uuid)) {
                                problem(s->rep, "identity-mismatch", subj, "on host '%s': domain UUID %s, catalog "
                                        "UUID %s", h->host.name, d->uuid, vm->uuid);
                        }
                        bool stale = s->rep->n > before && streq(s->rep->problems[s->rep->n - 1].kind, "stale-domain");
                        if (s->repair && stale)
                                repair_stale(s, h, k);
                }
        }
}

/* Every master opens through storage's checked open and still has the size
 * recorded. The problem's kind says whether the file is missing, a link or
 * not a master any more. */
static void check_images(struct state *s)
{
        for (size_t i = 0; i < s->nimages; i++) {
                const struct vp_image *im = &s->images[i];
                struct vp_error err = { 0 };
                _cleanup_close_ int fd = -1;
                struct stat st;
                int r = vp_storage_open_master(&s->ctx->st, im->path, im->format, &fd, &err);
                if (r == -ELOOP)
                        problem(s->rep, "symlink", im->path, "image '%s': a symbolic link where its master "
                                "should be", im->name);
                else if (r == -ENOENT || r == -EACCES)
                        problem(s->rep, "image-missing", im->path, "image '%s': %s", im->name, strerror(-r));
                else if (r < 0)
                        problem(s->rep, "bad-master", im->path, "%s", err.msg);
                else if (fstat(fd, &st) == 0 && (int64_t)st.st_size != im->file_size)
                        problem(s->rep, "master-changed", im->path, "size %llu, recorded %lld",
                                (unsigned long long)st.st_size, (long long)im->file_size);
        }
}

/* Every host of every env, connected, its domains read: a host that does
 * not answer is a problem of its own, and its domains are not checked. */
static int read_hosts(struct state *s, struct vp_error *err)
{
        for (size_t e = 0; e < s->nenvs; e++) {
                struct vp_host *hs = NULL;
                size_t n = 0;
                int r = vp_env_hosts(s->ctx, s->envs[e].id, &hs, &n, err);
                if (r < 0)
                        return r;
                s->rep->envs++;
                struct host_doms *nh = realloc(s->hosts, (s->nhosts + n + 1) * sizeof(*nh));
                if (!nh)
                        abort();
                s->hosts = nh;
                for (size_t i = 0; i < n; i++) {
                        struct host_doms *h = &s->hosts[s->nhosts++];
                        struct vp_error cerr = { 0 };
                        virConnectPtr c;
                        *h = (struct host_doms){ .env = &s->envs[e], .host = hs[i] };
                        s->rep->hosts++;
                        if (vp_ctx_conn_host(s->ctx, &h->host, &c, &cerr) < 0 ||
                            vp_hv_inspect_all(c, &h->doms, &h->ndoms, &cerr) < 0) {
                                _cleanup_free_ char *subj = vp_strdupf("%s/%s", s->envs[e].name, h->host.name);
                                problem(s->rep, "host-unreachable", subj, "%s; its domains were not checked", cerr.msg);
                                h->ndoms = 0;
                        } else {
                                h->conn = c;
                        }
                        h->removed = vp_xcalloc(h->ndoms + 1, sizeof(bool));
                }
                free(hs);
        }
        return 0;
}

int vp_fsck(struct vp_ctx *ctx, bool repair, struct vp_fsck_report *rep, struct vp_error *err)
{
        struct state s = { .ctx = ctx, .rep = rep, .repair = repair };
        memset(rep, 0, sizeof(*rep));
        void *rows;
        int r;
        if ((r = vp_row_list(ctx->cat, &vp_table_env, NULL, NULL, &rows, &s.nenvs, err)) < 0)
                return r;
        s.envs = rows;
        if ((r = vp_row_list(ctx->cat, &vp_table_vm, NULL, NULL, &rows, &s.nvms, err)) < 0)
                goto out;
        s.vms = rows;
        if ((r = vp_row_list(ctx->cat, &vp_table_pool, NULL, NULL, &rows, &s.npools, err)) < 0)
                goto out;
        s.pools = rows;
        if ((r = vp_row_list(ctx->cat, &vp_table_image, NULL, NULL, &rows, &s.nimages, err)) < 0)
                goto out;
        s.images = rows;
        if ((r = vp_row_list(ctx->cat, &vp_table_migration, NULL, NULL, &rows, &s.nmigs, err)) < 0)
                goto out;
        s.migs = rows;
        if ((r = read_hosts(&s, err)) < 0)
                goto out;
        note_unfinished(&s);
        check_vms(&s);
        /* Stale domains go first (--repair), so the deltas are then judged
         * by the domains that are left. */
        check_domains(&s);
        walk_deltas(&s);
        check_images(&s);
        r = 0;
out:
        for (size_t i = 0; i < s.nhosts; i++) {
                free(s.hosts[i].doms);
                free(s.hosts[i].removed);
                vp_row_clear(&vp_table_host, &s.hosts[i].host);
        }
        free(s.hosts);
        free(s.inflight);
        vp_rows_free(&vp_table_env, s.envs, s.nenvs);
        vp_rows_free(&vp_table_vm, s.vms, s.nvms);
        vp_rows_free(&vp_table_pool, s.pools, s.npools);
        vp_rows_free(&vp_table_image, s.images, s.nimages);
        vp_rows_free(&vp_table_migration, s.migs, s.nmigs);
        if (r < 0)
                vp_fsck_report_free(rep);
        return r;
}
