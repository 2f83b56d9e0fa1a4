#include "model.h"

#include <ctype.h>
#include <string.h>

#include "name.h"

/* The index of S in TABLE (N entries), or -EINVAL. */
static int lookup(const char *const *table, size_t n, const char *s)
{
        for (size_t i = 0; s && i < n; i++)
                if (table[i] && streq(table[i], s))
                        return (int)i;
        return -EINVAL;
}

static const char *word(const char *const *table, size_t n, int v)
{
        return v >= 0 && (size_t)v < n ? table[v] : NULL;
}

/* One string table per enum, and the pair of functions that read it. */
#define WORDS(type, prefix, ...)                                                        \
        static const char *const prefix##_table[] = { __VA_ARGS__ };                    \
        const char *prefix##_to_string(enum type v)                                     \
        {                                                                               \
                return word(prefix##_table, ELEMENTSOF(prefix##_table), (int)v);        \
        }                                                                               \
        enum type prefix##_from_string(const char *s)                                   \
        {                                                                               \
                return (enum type)lookup(prefix##_table, ELEMENTSOF(prefix##_table), s); \
        }

WORDS(vp_step, vp_step,
      [VP_STEP_PENDING] = "pending", [VP_STEP_STOPPING] = "stopping", [VP_STEP_LOCKED] = "locked",
      [VP_STEP_PROVISIONED] = "provisioned", [VP_STEP_HANDED_OVER] = "handed_over", [VP_STEP_DONE] = "done",
      [VP_STEP_RETURNED] = "returned")

WORDS(vp_migration_state, vp_migration_state,
      [VP_MIGRATION_RUNNING] = "running", [VP_MIGRATION_DONE] = "done", [VP_MIGRATION_PARTIAL] = "partial",
      [VP_MIGRATION_ABORTED] = "aborted", [VP_MIGRATION_INTERRUPTED] = "interrupted")

WORDS(vp_fence_method, vp_fence_method, [VP_FENCE_AGENT] = "agent", [VP_FENCE_OPERATOR] = "operator")
WORDS(vp_placement, vp_placement, [VP_PLACE_SPREAD] = "spread", [VP_PLACE_PACK] = "pack")

WORDS(vp_pool_state, vp_pool_state,
      [VP_POOL_CREATING] = "creating", [VP_POOL_ACTIVE] = "active", [VP_POOL_MIGRATING] = "migrating")

WORDS(vp_vm_state, vp_vm_state,
      [VP_VM_NOSTATE] = "no state", [VP_VM_RUNNING] = "running", [VP_VM_BLOCKED] = "blocked",
      [VP_VM_PAUSED] = "paused", [VP_VM_SHUTTING_DOWN] = "shutting down", [VP_VM_SHUT_OFF] = "shut off",
      [VP_VM_CRASHED] = "crashed", [VP_VM_SUSPENDED] = "suspended", [VP_VM_UNDEFINED] = "undefined",
      [VP_VM_UNREACHABLE] = "unreachable", [VP_VM_UNKNOWN] = "unknown")

WORDS(vp_disk_bus, vp_disk_bus,
      [VP_BUS_IDE] = "ide", [VP_BUS_SATA] = "sata", [VP_BUS_VIRTIO] = "virtio", [VP_BUS_SCSI] = "scsi")

WORDS(vp_nic_model, vp_nic_model,
      [VP_NIC_E1000] = "e1000", [VP_NIC_RTL8139] = "rtl8139", [VP_NIC_VIRTIO] = "virtio", [VP_NIC_NONE] = "none")

WORDS(vp_firmware, vp_firmware, [VP_FIRMWARE_BIOS] = "bios", [VP_FIRMWARE_UEFI] = "uefi")

WORDS(vp_role, vp_role, [VP_ROLE_VIEWER] = "viewer", [VP_ROLE_OPERATOR] = "operator", [VP_ROLE_ADMIN] = "admin")
WORDS(vp_via, vp_via, [VP_VIA_CLI] = "cli", [VP_VIA_API] = "api", [VP_VIA_POLICY] = "policy")
WORDS(vp_on_maintenance, vp_on_maintenance, [VP_ON_MAINTENANCE_DRAIN] = "drain",
      [VP_ON_MAINTENANCE_REPORT] = "report", [VP_ON_MAINTENANCE_NONE] = "none")
WORDS(vp_retire_state, vp_retire_state, [VP_RETIRE_RETIRING] = "retiring", [VP_RETIRE_COMPLETE] = "complete")

WORDS(vp_host_failure, vp_host_failure, [VP_HOST_FAILURE_NONE] = "none", [VP_HOST_FAILURE_REPORT] = "report",
      [VP_HOST_FAILURE_EVACUATE] = "evacuate")

WORDS(vp_lifecycle, vp_lifecycle,
      [VP_LIFECYCLE_DEFINED] = "defined", [VP_LIFECYCLE_UNDEFINED] = "undefined", [VP_LIFECYCLE_STARTED] = "started",
      [VP_LIFECYCLE_SUSPENDED] = "suspended", [VP_LIFECYCLE_RESUMED] = "resumed", [VP_LIFECYCLE_STOPPED] = "stopped",
      [VP_LIFECYCLE_SHUTDOWN] = "shutdown", [VP_LIFECYCLE_PMSUSPENDED] = "pmsuspended",
      [VP_LIFECYCLE_CRASHED] = "crashed")

bool vp_step_ended(enum vp_step s)
{
        return s == VP_STEP_DONE || s == VP_STEP_RETURNED;
}

bool vp_step_reached(enum vp_step s, enum vp_step at)
{
        if (s == VP_STEP_RETURNED || at == VP_STEP_RETURNED)
                return s == at;
        return s >= at && s < VP_STEP_MAX;
}

bool vp_role_allows(enum vp_role have, enum vp_role need)
{
        return have >= 0 && have < VP_ROLE_MAX && need >= 0 && need < VP_ROLE_MAX && have >= need;
}

bool vp_migration_state_unfinished(enum vp_migration_state s)
{
        return s == VP_MIGRATION_RUNNING || s == VP_MIGRATION_PARTIAL;
}

bool vp_vm_state_active(enum vp_vm_state s)
{
        return s == VP_VM_RUNNING || s == VP_VM_PAUSED;
}

/* ---- owner tokens -------------------------------------------------------- */

#define OWNER_VM "vm:"
#define OWNER_MIGRATION "migration:"

void vp_owner_vm(char out[VP_OWNER_MAX], const char *vm)
{
        snprintf(out, VP_OWNER_MAX, OWNER_VM "%s", vm);
}

void vp_owner_migration(char out[VP_OWNER_MAX], int64_t id)
{
        snprintf(out, VP_OWNER_MAX, OWNER_MIGRATION "%lld", (long long)id);
}

int vp_owner_parse(const char *token, struct vp_owner *ret, struct vp_error *err)
{
        char pb[64];
        if (!token)
                return vp_err(err, -EINVAL, "no owner");
        struct vp_owner o = { 0 };
        if (strncmp(token, OWNER_VM, strlen(OWNER_VM)) == 0) {
                const char *vm = token + strlen(OWNER_VM);
                if (vp_name_check("vm", vm, NULL) < 0)
                        goto bad;
                o.kind = VP_OWNER_VM;
                snprintf(o.vm, sizeof(o.vm), "%s", vm);
        } else if (strncmp(token, OWNER_MIGRATION, strlen(OWNER_MIGRATION)) == 0) {
                const char *p = token + strlen(OWNER_MIGRATION);
                /* At most 18 digits: every such number fits an int64_t. */
                if (!*p || strlen(p) > 18)
                        goto bad;
                for (const char *q = p; *q; q++)
                        if (!isdigit((unsigned char)*q))
                                goto bad;
                o.kind = VP_OWNER_MIGRATION;
                o.migration = strtoll(p, NULL, 10);
        } else {
                goto bad;
        }
        if (ret)
                *ret = o;
        return 0;
bad:
        return vp_err(err, -EINVAL, "invalid owner '%s'", vp_printable(token, pb, sizeof(pb)));
}

bool vp_owner_is_vm(const char *token)
{
        struct vp_owner o;
        return vp_owner_parse(token, &o, NULL) == 0 && o.kind == VP_OWNER_VM;
}

/* ---- hardware words ------------------------------------------------------ */

static const char *const machine_table[] = { [VP_MACHINE_PC] = "pc", [VP_MACHINE_Q35] = "q35" };
/* The versioned names of each family: PREFIX then MAJOR.MINOR. */
static const char *const machine_versioned[] = { [VP_MACHINE_PC] = "pc-i440fx-", [VP_MACHINE_Q35] = "pc-q35-" };

static bool versioned(const char *m, const char *prefix)
{
        size_t l = strlen(prefix);
        if (strncmp(m, prefix, l) != 0)
                return false;
        const char *v = m + l;
        if (!isdigit((unsigned char)*v))
                return false;
        while (isdigit((unsigned char)*v))
                v++;
        if (*v++ != '.' || !isdigit((unsigned char)*v))
                return false;
        while (isdigit((unsigned char)*v))
                v++;
        return *v == 0 && strlen(m) < 32;
}

const char *vp_machine_to_string(enum vp_machine m)
{
        return word(machine_table, ELEMENTSOF(machine_table), (int)m);
}

enum vp_machine vp_machine_from_string(const char *s)
{
        int k = lookup(machine_table, ELEMENTSOF(machine_table), s);
        for (size_t i = 0; k < 0 && s && i < ELEMENTSOF(machine_versioned); i++)
                if (versioned(s, machine_versioned[i]))
                        k = (int)i;
        return (enum vp_machine)k;
}

/* TABLE's N words but SKIP (-1: none) joined by SEP. */
static char *join(const char *const *table, size_t n, int skip, const char *sep)
{
        size_t len = 1;
        for (size_t i = 0; i < n; i++)
                len += strlen(table[i]) + strlen(sep);
        char *out = vp_xcalloc(len, 1);
        for (size_t i = 0; i < n; i++) {
                if ((int)i == skip)
                        continue;
                if (*out)
                        strcat(out, sep);
                strcat(out, table[i]);
        }
        return out;
}

char *vp_disk_bus_list(const char *sep)
{
        return join(vp_disk_bus_table, ELEMENTSOF(vp_disk_bus_table), -1, sep);
}

char *vp_nic_model_list(const char *sep, bool with_none)
{
        return join(vp_nic_model_table, ELEMENTSOF(vp_nic_model_table), with_none ? -1 : VP_NIC_NONE, sep);
}

char *vp_firmware_list(const char *sep)
{
        return join(vp_firmware_table, ELEMENTSOF(vp_firmware_table), -1, sep);
}

char *vp_role_list(const char *sep)
{
        return join(vp_role_table, ELEMENTSOF(vp_role_table), -1, sep);
}

char *vp_via_list(const char *sep)
{
        return join(vp_via_table, ELEMENTSOF(vp_via_table), -1, sep);
}

char *vp_on_maintenance_list(const char *sep)
{
        return join(vp_on_maintenance_table, ELEMENTSOF(vp_on_maintenance_table), -1, sep);
}

char *vp_host_failure_list(const char *sep)
{
        return join(vp_host_failure_table, ELEMENTSOF(vp_host_failure_table), -1, sep);
}

bool vp_known_machine(const char *s)
{
        return vp_machine_from_string(s) >= 0;
}

bool vp_known_bus(const char *s)
{
        return vp_disk_bus_from_string(s) >= 0;
}

bool vp_known_nic(const char *s)
{
        return vp_nic_model_from_string(s) >= 0;
}

bool vp_known_firmware(const char *s)
{
        return vp_firmware_from_string(s) >= 0;
}

WORDS(vp_job_state, vp_job_state, [VP_JOB_QUEUED] = "queued", [VP_JOB_RUNNING] = "running",
      [VP_JOB_DONE] = "done", [VP_JOB_FAILED] = "failed")
