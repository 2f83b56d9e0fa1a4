/* The domain's words, defined once: the steps a VM goes through in a
 * migration, the states of migrations, pools and VMs, the owner tokens of a
 * user delta collection, and the hardware words of profiles and images.
 * Every other module (and the CLI) names these through this header; the
 * catalog and the manifests store the strings the tables below give.
 *
 * Each word set is an enum with one string table. *_to_string returns a
 * static string (NULL for a value out of range); *_from_string returns the
 * value or -EINVAL for a word not in the set. */
#pragma once
#include "util.h"

/* The two functions of a word set TYPE: TYPE_to_string, TYPE_from_string. */
#define VP_WORDS(type)                                  \
        const char *type##_to_string(enum type v);      \
        enum type type##_from_string(const char *s)

/* ---- migration steps ----------------------------------------------------- */

/* A VM of a migration goes pending → stopping → locked → provisioned →
 * handed_over → done; an abort ends it as returned. The order of the enum
 * is the order of the steps: a VM at a step has reached every step before
 * it (returned excepted, which ends an abort from any step before
 * handed_over). */
enum vp_step {
        VP_STEP_PENDING,
        VP_STEP_STOPPING,
        VP_STEP_LOCKED,
        VP_STEP_PROVISIONED,
        VP_STEP_HANDED_OVER,
        VP_STEP_DONE,
        VP_STEP_RETURNED,
        VP_STEP_MAX,
        VP_STEP_INVALID = -EINVAL,
};
VP_WORDS(vp_step);
/* The step the VM has finished with: done or returned. */
bool vp_step_ended(enum vp_step s);
/* Whether a VM at step S has reached step AT (S is AT or later in the move;
 * returned reaches nothing but itself). */
bool vp_step_reached(enum vp_step s, enum vp_step at);

/* Journal entries that are not a VM's step: the migration's allocation and
 * a VM's failure (its detail says why). A migration-wide entry may also be
 * the name of the state the migration took (vp_migration_state). */
#define VP_JOURNAL_ALLOCATED "allocated"
#define VP_JOURNAL_ERROR "error"
/* A source env found unreachable was declared powered off, or not: its
 * detail names the env, how (vp_fence_method) and the outcome. */
#define VP_JOURNAL_FENCE "fence"

/* How an unreachable source env was declared powered off: by its fence
 * agent, or by the operator's word (--source-fenced ENV). */
enum vp_fence_method {
        VP_FENCE_AGENT,
        VP_FENCE_OPERATOR,
        VP_FENCE_METHOD_MAX,
        VP_FENCE_METHOD_INVALID = -EINVAL,
};
VP_WORDS(vp_fence_method);

/* How placement weighs the hosts that can take a VM: spread takes the one
 * with the most memory left after what the operation placed so far, pack
 * the one with the least. */
enum vp_placement {
        VP_PLACE_SPREAD,
        VP_PLACE_PACK,
        VP_PLACEMENT_MAX,
        VP_PLACEMENT_INVALID = -EINVAL,
};
VP_WORDS(vp_placement);

/* ---- states -------------------------------------------------------------- */

/* A migration as stored. INTERRUPTED is never stored: it is how a reader
 * sees a RUNNING migration no process works on any more. */
enum vp_migration_state {
        VP_MIGRATION_RUNNING,
        VP_MIGRATION_DONE,
        VP_MIGRATION_PARTIAL,
        VP_MIGRATION_ABORTED,
        VP_MIGRATION_INTERRUPTED,
        VP_MIGRATION_STATE_MAX,
        VP_MIGRATION_STATE_INVALID = -EINVAL,
};
VP_WORDS(vp_migration_state);
/* Running or partial: the pool belongs to this migration until it is
 * resumed to done or aborted. */
bool vp_migration_state_unfinished(enum vp_migration_state s);

/* A pool: creating until every VM of a create is built, migrating while a
 * migration holds it. */
enum vp_pool_state {
        VP_POOL_CREATING,
        VP_POOL_ACTIVE,
        VP_POOL_MIGRATING,
        VP_POOL_STATE_MAX,
        VP_POOL_STATE_INVALID = -EINVAL,
};
VP_WORDS(vp_pool_state);

/* A VM's live state, as its env's hypervisor reports it, plus UNDEFINED
 * (no such domain there), UNREACHABLE (the env did not answer) and UNKNOWN
 * (a state this libvirt has no word for). The first eight follow libvirt's
 * virDomainState, NOSTATE to PMSUSPENDED. */
enum vp_vm_state {
        VP_VM_NOSTATE,
        VP_VM_RUNNING,
        VP_VM_BLOCKED,
        VP_VM_PAUSED,
        VP_VM_SHUTTING_DOWN,
        VP_VM_SHUT_OFF,
        VP_VM_CRASHED,
        VP_VM_SUSPENDED,
        VP_VM_UNDEFINED,
        VP_VM_UNREACHABLE,
        VP_VM_UNKNOWN,
        VP_VM_STATE_MAX,
        VP_VM_STATE_INVALID = -EINVAL,
};
VP_WORDS(vp_vm_state);
/* Running or paused: a QEMU process holds the VM's disks. */
bool vp_vm_state_active(enum vp_vm_state s);

/* ---- owner tokens -------------------------------------------------------- */

/* Who holds a user delta collection: a VM ("vm:NAME") or a migration
 * ("migration:ID"). The manifest and the catalog store the token. */
#define VP_OWNER_MAX 96

enum vp_owner_kind {
        VP_OWNER_VM,
        VP_OWNER_MIGRATION,
};

struct vp_owner {
        enum vp_owner_kind kind;
        char vm[64];               /* VP_OWNER_VM */
        int64_t migration;         /* VP_OWNER_MIGRATION, >= 0 */
};

/* The token of VM / of migration ID, written into OUT. */
void vp_owner_vm(char out[VP_OWNER_MAX], const char *vm);
void vp_owner_migration(char out[VP_OWNER_MAX], int64_t id);
/* Parse TOKEN strictly (the VM name passes the name allowlist, the id is
 * decimal digits); -EINVAL when it is not a token. *RET untouched then. */
int vp_owner_parse(const char *token, struct vp_owner *ret, struct vp_error *err);
/* Whether TOKEN names a VM (any VM). */
bool vp_owner_is_vm(const char *token);

/* ---- who may do what, and who did ----------------------------------------- */

/* The role of an API token. Ordered: a higher role may do everything a
 * lower one may (viewer reads, operator also starts, stops and migrates,
 * admin also changes envs, images and the rest). */
enum vp_role {
        VP_ROLE_VIEWER,
        VP_ROLE_OPERATOR,
        VP_ROLE_ADMIN,
        VP_ROLE_MAX,
        VP_ROLE_INVALID = -EINVAL,
};
VP_WORDS(vp_role);
/* Whether a holder of role HAVE may do what needs role NEED. */
bool vp_role_allows(enum vp_role have, enum vp_role need);

/* Through what a change came: the command line, the HTTP API (a token or a
 * unix socket peer), or a policy of the daemon deciding by itself. The
 * history records it; a row from before it was recorded reads as cli. */
enum vp_via {
        VP_VIA_CLI,
        VP_VIA_API,
        VP_VIA_POLICY,
        VP_VIA_MAX,
        VP_VIA_INVALID = -EINVAL,
};
VP_WORDS(vp_via);

/* Who acts, for the history: through VIA, by NAME (a token's name or a
 * socket peer's login name for api, the policy's name for policy; unused
 * for cli, whose user is the process's own). A zeroed actor is the CLI. */
#define VP_ACTOR_NAME_MAX 128
struct vp_actor {
        enum vp_via via;
        char name[VP_ACTOR_NAME_MAX];
};

/* ---- policies ------------------------------------------------------------ */

/* What vpoold does with a host of an env once it is in maintenance: drain
 * it (move its VMs to the env's other hosts, as 'env host drain' does),
 * only report what it would do, or nothing. */
enum vp_on_maintenance {
        VP_ON_MAINTENANCE_DRAIN,
        VP_ON_MAINTENANCE_REPORT,
        VP_ON_MAINTENANCE_NONE,
        VP_ON_MAINTENANCE_MAX,
        VP_ON_MAINTENANCE_INVALID = -EINVAL,
};
VP_WORDS(vp_on_maintenance);
/* An env that says nothing: its hosts in maintenance are drained. */
#define VP_ON_MAINTENANCE_DEFAULT VP_ON_MAINTENANCE_DRAIN
char *vp_on_maintenance_list(const char *sep);

/* A retirement: its env's pools are being moved (retiring), or the env
 * holds no pool any more (complete). */
enum vp_retire_state {
        VP_RETIRE_RETIRING,
        VP_RETIRE_COMPLETE,
        VP_RETIRE_STATE_MAX,
        VP_RETIRE_STATE_INVALID = -EINVAL,
};
VP_WORDS(vp_retire_state);

/* The names policies act under in the history (a vp_actor's name). */
#define VP_POLICY_MAINTENANCE "maintenance"
#define VP_POLICY_RETIRE "retire"

/* ---- hardware words ------------------------------------------------------ */

/* The machine families vpool builds for; a versioned machine type
 * (pc-i440fx-8.0, pc-q35-7.2) belongs to its family. */
enum vp_machine {
        VP_MACHINE_PC,
        VP_MACHINE_Q35,
        VP_MACHINE_MAX,
        VP_MACHINE_INVALID = -EINVAL,
};
const char *vp_machine_to_string(enum vp_machine m);
/* The family of a machine type: "pc", "q35" or a versioned name of either. */
enum vp_machine vp_machine_from_string(const char *s);

enum vp_disk_bus {
        VP_BUS_IDE,
        VP_BUS_SATA,
        VP_BUS_VIRTIO,
        VP_BUS_SCSI,
        VP_BUS_MAX,
        VP_BUS_INVALID = -EINVAL,
};
VP_WORDS(vp_disk_bus);

enum vp_nic_model {
        VP_NIC_E1000,
        VP_NIC_RTL8139,
        VP_NIC_VIRTIO,
        VP_NIC_NONE,
        VP_NIC_MAX,
        VP_NIC_INVALID = -EINVAL,
};
VP_WORDS(vp_nic_model);

enum vp_firmware {
        VP_FIRMWARE_BIOS,
        VP_FIRMWARE_UEFI,
        VP_FIRMWARE_MAX,
        VP_FIRMWARE_INVALID = -EINVAL,
};
VP_WORDS(vp_firmware);

/* Every word of a set, in the enum's order, joined by SEP (malloc'd): what
 * an image declares when its operator says nothing, and what an error
 * message offers. The NIC models leave out "none" unless WITH_NONE: it is
 * no device. */
char *vp_disk_bus_list(const char *sep);
char *vp_nic_model_list(const char *sep, bool with_none);
char *vp_firmware_list(const char *sep);
char *vp_role_list(const char *sep);
char *vp_via_list(const char *sep);

/* Whether S is a word of the set (for list checks). */
bool vp_known_machine(const char *s);
bool vp_known_bus(const char *s);
bool vp_known_nic(const char *s);
bool vp_known_firmware(const char *s);

/* ---- what the daemon watches and decides --------------------------------- */

/* What an env does when one of its hosts stops answering for longer than
 * its grace period: nothing, only say what it would do (report), or move
 * the host's VMs elsewhere once its fence agent powered it off
 * (evacuate: to the env's other hosts, or to another env). */
enum vp_host_failure {
        VP_HOST_FAILURE_NONE,
        VP_HOST_FAILURE_REPORT,
        VP_HOST_FAILURE_EVACUATE,
        VP_HOST_FAILURE_MAX,
        VP_HOST_FAILURE_INVALID = -EINVAL,
};
VP_WORDS(vp_host_failure);
char *vp_host_failure_list(const char *sep);
/* Seconds a host may not answer before its env's policy acts: the
 * default, and the most an env may set. */
#define VP_HOST_FAILURE_GRACE 60
#define VP_HOST_FAILURE_GRACE_MAX 86400

/* The event kind of a VM's domain changing state on its host (libvirt's
 * lifecycle events), beside the kinds the catalog's triggers write (step,
 * migration, pool, host) and the daemon's jobs (job). */
#define VP_EVENT_VM "vm"

/* A domain's lifecycle event, as libvirt's VIR_DOMAIN_EVENT_* (the enum's
 * order is libvirt's, DEFINED to CRASHED). */
enum vp_lifecycle {
        VP_LIFECYCLE_DEFINED,
        VP_LIFECYCLE_UNDEFINED,
        VP_LIFECYCLE_STARTED,
        VP_LIFECYCLE_SUSPENDED,
        VP_LIFECYCLE_RESUMED,
        VP_LIFECYCLE_STOPPED,
        VP_LIFECYCLE_SHUTDOWN,
        VP_LIFECYCLE_PMSUSPENDED,
        VP_LIFECYCLE_CRASHED,
        VP_LIFECYCLE_MAX,
        VP_LIFECYCLE_INVALID = -EINVAL,
};
VP_WORDS(vp_lifecycle);

/* ---- the daemon's jobs -------------------------------------------------- */

/* A job of vpoold: queued, then running, then done or failed. */
enum vp_job_state {
        VP_JOB_QUEUED,
        VP_JOB_RUNNING,
        VP_JOB_DONE,
        VP_JOB_FAILED,
        VP_JOB_STATE_MAX,
        VP_JOB_STATE_INVALID = -EINVAL,
};
VP_WORDS(vp_job_state);
