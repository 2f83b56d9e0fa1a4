/* The operations behind the CLI verbs: each checks its input fully before
 * it changes anything, and on failure leaves catalog, storage and every
 * hypervisor as they were. */
#pragma once
#include "util.h"
#include "catalog.h"
#include "hv.h"
#include "model.h"
#include "storage.h"
#include "delta.h"
#include "inspect.h"

/* One host's connection: NULL when it did not answer; CLOSED set by
 * libvirt when the connection closed under vpool (hv.h, vp_hv_watch). */
struct vp_conn_cache {
        int64_t host_id;
        virConnectPtr conn;
        atomic_bool *closed;
};

struct vp_ctx {
        char *catalog_path;
        struct vp_catalog *cat;
        bool readonly;                 /* opened by vp_ctx_open_read */
        struct vp_storage st;
        bool have_storage;
        struct vp_conn_cache *conns;
        size_t nconns;
        int source_grace;              /* seconds a source env is retried (vp_ctx_conn_source) */
        int fence_timeout;             /* seconds a fence agent may take */
        struct vp_actor actor;         /* who acts through this ctx (history); zeroed: the command line */
};

/* Called after each VM of a long operation; may be NULL. */
typedef void (*vp_progress_fn)(void *ud, const char *vm, const char *step, size_t done, size_t total);

/* Open the catalog (and the storage root it records). */
int vp_ctx_open(struct vp_ctx *ctx, const char *catalog_path, struct vp_error *err);
/* The same for a command that changes nothing: the catalog opened read-only. */
int vp_ctx_open_read(struct vp_ctx *ctx, const char *catalog_path, struct vp_error *err);
void vp_ctx_close(struct vp_ctx *ctx);
/* A cached connection (owned by ctx) to the first host of env ENV that
 * answers (hosts in maintenance last; host.h has the per-host ones). A
 * host that did not answer is not asked again through the same ctx. */
int vp_ctx_conn(struct vp_ctx *ctx, const struct vp_env *env, virConnectPtr *ret, struct vp_error *err);
/* The same for an env whose VMs are to be taken from it: one refused
 * connection is not a dead host, so it is retried for ctx->source_grace
 * seconds before it counts as unreachable. */
int vp_ctx_conn_source(struct vp_ctx *ctx, const struct vp_env *env, virConnectPtr *ret, struct vp_error *err);

/* Create the catalog if needed and the storage layout; record the root.
 * Refuses to move an initialized catalog to another root. */
int vp_init(const char *catalog_path, const char *storage_root, struct vp_error *err);

/* DOMAIN_TYPE: "qemu" (emulation), "kvm" (the operator vouches for it; libvirt
 * must offer it) or "auto" (kvm when libvirt offers it and a probe boot of a
 * Linux kernel under kvm works, else qemu). *ret_kvm_note says why kvm was
 * not chosen in auto mode (static string, may be NULL). */
/* FENCE_CMD: the env's fence agent as the operator types it (fence.h), or
 * NULL for none. HOSTS: its NHOSTS hosts, every one answering, of one
 * architecture; the first one's capabilities are the env's and decide the
 * domain type (the others must offer it). A sole host whose URI names no
 * host is named after the env. */
struct vp_host_spec;
int vp_env_add(struct vp_ctx *ctx, const char *name, const struct vp_host_spec *hosts, size_t nhosts,
               const char *domain_type, const char *fence_cmd, struct vp_env *ret, const char **ret_kvm_note,
               struct vp_error *err);
/* DOMAIN_TYPE is one env add takes: auto, kvm or qemu; -EINVAL otherwise. */
int vp_domain_type_check(const char *domain_type, struct vp_error *err);
/* Give env NAME the fence agent FENCE_CMD, or none when NULL. */
int vp_env_set_fence(struct vp_ctx *ctx, const char *name, const char *fence_cmd, struct vp_error *err);
int vp_env_rm(struct vp_ctx *ctx, const char *name, struct vp_error *err);

struct vp_image_args {
        const char *name;
        const char *file;
        const char *format;      /* NULL: qcow2 */
        const char *disk_buses;  /* NULL: all */
        const char *nic_models;
        const char *firmwares;
        const char *kernel, *initrd, *cmdline;
        /* Skip libguestfs's inspection (inspect.h): the declaration, or its
         * defaults, is taken on trust. An image with KERNEL is never
         * inspected: its boot drivers are in the operator's initrd. */
        bool no_inspect;
        vp_inspect_progress_fn progress;   /* may be NULL */
        void *progress_ud;
        char **ret_warning;                /* may be NULL: what the caller should tell the operator */
};
/* A's fields checked as image add checks them before it reads any file
 * (format, the hardware lists, file, kernel, initrd, cmdline): 0, or
 * -EINVAL with *RET_FIELD (may be NULL) the field at fault, named as the
 * image's document and the API name it ("disk_buses", "cmdline"). */
int vp_image_args_check(const struct vp_image_args *a, const char **ret_field, struct vp_error *err);
/* The master is imported (its header checked) before it is inspected, so
 * libguestfs never opens what the checks refuse; the stored report decides
 * the hardware recorded (vp_inspect_reconcile). */
int vp_image_add(struct vp_ctx *ctx, const struct vp_image_args *a, struct vp_image *ret,
                 struct vp_error *err);
/* Re-hash the stored image; *ret_ok false when it no longer matches. */
/* The master file of IM passes its header checks and holds what was
 * recorded: when its stamp (inode, size, times) is the recorded one that is
 * known without reading it, otherwise its sha256 decides. On a match with
 * a new stamp, IM->stamp takes it and *RET_RESTAMPED says so: the caller
 * stores the row with whatever change it commits. -EBADMSG when it changed. */
int vp_image_check_unchanged(struct vp_ctx *ctx, struct vp_image *im, bool *ret_restamped, struct vp_error *err);
int vp_image_verify(struct vp_ctx *ctx, const char *name, bool *ret_ok, char sha256[65],
                    struct vp_error *err);
int vp_image_rm(struct vp_ctx *ctx, const char *name, struct vp_error *err);

#define VP_PROFILE_VCPUS_MAX 255
#define VP_PROFILE_MEMORY_MIB_MIN 16
#define VP_PROFILE_MEMORY_MIB_MAX (4 * 1024 * 1024)
/* P checked as profile add checks it: its name, machine, disk bus, NIC,
 * firmware (NULL: bios) and CPU mode (NULL: the hypervisor's) known and
 * possible together, vCPUs and memory in range. 0, or -EINVAL with
 * *RET_FIELD (may be NULL) the field at fault as the profile's document
 * names it ("disk_bus", "memory_mib"). */
int vp_profile_check(const struct vp_profile *p, const char **ret_field, struct vp_error *err);
/* Add P once vp_profile_check passes; a NULL firmware or CPU mode becomes
 * the default's static string ("bios", ""). P->created is set (malloc'd). */
int vp_profile_add(struct vp_ctx *ctx, struct vp_profile *p, struct vp_error *err);
int vp_profile_rm(struct vp_ctx *ctx, const char *name, struct vp_error *err);

struct vp_pool_args {
        const char *name;
        const char *image;
        const char *env;
        const char *profile;
        int64_t size;
        uint64_t data_disk_bytes;
        bool start;
        enum vp_placement placement;
};
int vp_pool_create(struct vp_ctx *ctx, const struct vp_pool_args *a, vp_progress_fn progress,
                   void *ud, struct vp_error *err);
int vp_pool_rm(struct vp_ctx *ctx, const char *name, bool keep_deltas, bool force,
               struct vp_error *err);
int vp_pool_start(struct vp_ctx *ctx, const char *name, struct vp_error *err);
int vp_pool_stop(struct vp_ctx *ctx, const char *name, int timeout, bool force, struct vp_error *err);

int vp_vm_start(struct vp_ctx *ctx, const char *name, struct vp_error *err);
/* What every start of VM's domain checks first, whoever starts it (vm
 * start, pool start, a migration's start on its target, an abort's on its
 * source): VM's collection DELTA_PATH in POOL passes vp_delta_check against the
 * master IM, every file its domain names passes vp_vm_check_files, and the
 * master passes the header checks and holds the bytes recorded
 * (vp_image_check_unchanged; a new stamp found good is stored in IM and
 * its catalog row, the one change it makes, and only when all passed).
 * Errors read "vm 'VM' not started: ...". */
int vp_vm_check_start(struct vp_ctx *ctx, struct vp_image *im, const char *pool, const char *vm,
                      const char *delta_path, struct vp_error *err);
int vp_vm_stop(struct vp_ctx *ctx, const char *name, int timeout, bool force, struct vp_error *err);
/* The VM's live state on its env: VP_VM_UNREACHABLE when the env does not
 * answer, VP_VM_UNKNOWN when its env or state cannot be read. */
enum vp_vm_state vp_vm_live_state(struct vp_ctx *ctx, const struct vp_vm *vm);
/* The same as its word ("running", "shut off", "undefined", "unreachable"). */
const char *vp_vm_state(struct vp_ctx *ctx, const struct vp_vm *vm);

/* Every file the domain of manifest M in collection DELTA (absolute) names
 * passes vp_storage_check_file: its disks, the master behind its overlay,
 * its UEFI variable store, its console log, the kernel and initrd of IM. */
int vp_vm_check_files(struct vp_ctx *ctx, const struct vp_image *im, const struct vp_manifest *m,
                      const char *delta, struct vp_error *err);
/* IM's own files (its master, kernel, initrd) pass vp_storage_check_file:
 * the part of vp_vm_check_files every VM of its pools shares. */
int vp_image_check_files(struct vp_ctx *ctx, const struct vp_image *im, struct vp_error *err);
/* vp_vm_check_files once vp_image_check_files passed for IM: the VM's own
 * files only (and its master, if the manifest names another). */
int vp_vm_check_own_files(struct vp_ctx *ctx, const struct vp_image *im, const struct vp_manifest *m,
                          const char *delta, struct vp_error *err);
/* The domain XML of the VM described by manifest M, in collection DELTA,
 * with profile P on ENV, once vp_vm_check_files passed: no symbolic link
 * under the storage root on the way to any file it names, a regular file
 * where one exists. NULL with *err on failure ("vm 'VM' not defined: ..."). */
char *vp_vm_xml(struct vp_ctx *ctx, const struct vp_env *env, const struct vp_image *im,
                const struct vp_profile *p, const struct vp_manifest *m, const char *delta, struct vp_error *err);
/* vp_vm_xml once vp_image_check_files passed for IM (vp_vm_check_own_files),
 * the VM's disks checked in DFD, its collection DELTA as vp_delta_open
 * opened it. */
char *vp_vm_xml_own(struct vp_ctx *ctx, const struct vp_env *env, const struct vp_image *im,
                    const struct vp_profile *p, const struct vp_manifest *m, const char *delta, int dfd,
                    struct vp_error *err);
/* The image declares drivers for P's disk bus and NIC and boots with its firmware. */
int vp_check_image_supports(const struct vp_image *im, const struct vp_profile *p, struct vp_error *err);

/* Check every item of a comma separated LIST with CHECK; refuses empty items. */
int vp_check_list(const char *what, const char *list, bool (*check)(const char *),
                  struct vp_error *err);
