/* The hypervisor layer: libvirt connections, capabilities and domain
 * lifecycle. Errors carry libvirt's own message. */
#pragma once
#include "util.h"
#include "model.h"
#include "domxml.h"
#include <libvirt/libvirt.h>
#include <stdatomic.h>

struct vp_hv_info {
        char hostname[256];
        char arch[32];
        char domain_types[64];    /* comma separated, the usable ones only */
        char machines[4096];      /* comma separated: aliases and canonical names */
        char disk_buses[128];     /* for the default machine */
        char nic_models[128];
        char firmwares[32];       /* bios[,uefi] */
        int64_t cpus;
        int64_t memory_kib;
};

static inline void vp_connp(virConnectPtr *c) { if (*c) virConnectClose(*c); }
static inline void vp_domp(virDomainPtr *d) { if (*d) virDomainFree(*d); }
#define _cleanup_conn_ _cleanup_(vp_connp)
#define _cleanup_dom_ _cleanup_(vp_domp)

/* Silence libvirt's default printing of errors: vpool reports them once;
 * start libvirt's event loop in a thread of its own (keepalive). */
void vp_hv_init(void);

/* Every connection vpool keeps runs libvirt's keepalive: a probe every
 * INTERVAL seconds, the peer dead after COUNT unanswered ones. */
#define VP_HV_KEEPALIVE_INTERVAL 5
#define VP_HV_KEEPALIVE_COUNT 3

/* Keepalive on CONN, and *RET_CLOSED (owned by CONN, valid until it is
 * closed) set true by libvirt when the connection closes under vpool: the
 * host stopped answering or its daemon went away. -ENOTSUP without
 * libvirt's event loop (vp_hv_init not called). */
int vp_hv_watch(virConnectPtr conn, atomic_bool **ret_closed);

/* Connect to URI. Returns 0 and *ret, or -EHOSTUNREACH / -EINVAL with
 * "cannot connect to 'URI': <libvirt message>". */
int vp_hv_connect(const char *uri, virConnectPtr *ret, struct vp_error *err);

/* Read the hypervisor's capabilities. domain_types lists what libvirt
 * offers; whether kvm works is vp_hv_kvm_works's question. */
int vp_hv_probe(virConnectPtr conn, struct vp_hv_info *ret, struct vp_error *err);

/* Check the hypervisor offers MACHINE for ARCH with DOMAIN_TYPE, and that
 * machine's domain capabilities offer DISK_BUS and FIRMWARE; NIC against
 * the probed models. WHERE names the host in errors ("host 'a' of env
 * 'dc1'", "env 'lab'"). */
int vp_hv_check_hardware(virConnectPtr conn, const char *where, const char *arch,
                         const char *domain_type, const char *machine, const char *disk_bus,
                         const char *nic, const char *firmware, struct vp_error *err);

/* Whether KVM really runs a Linux kernel on CONN: a transient domain of
 * type kvm boots KERNEL (a path every env sees, on shared storage) with no
 * root file system; its console, logged to LOG_PATH on shared storage, must
 * reach the kernel proper ("Linux version") within TIMEOUT_MS. On nested
 * hosts /dev/kvm can be present, accepted by libvirt and even run firmware,
 * yet fail in the kernel's early boot, so capabilities alone do not tell. */
bool vp_hv_kvm_works(virConnectPtr conn, const char *arch, const char *kernel, const char *log_path,
                     int timeout_ms);

/* The domain type to use: kvm where offered and usable, else qemu. */
const char *vp_hv_pick_domain_type(const char *domain_types);

/* Define XML on CONN. With VALIDATE libvirt checks it against its schema
 * too, which costs it several times the define itself: callers defining many
 * domains of one shape validate the first of them. */
int vp_hv_define(virConnectPtr conn, const char *xml, bool validate, struct vp_error *err);
/* Undefine NAME (destroying it first when FORCE and it runs). Absent is 0. */
int vp_hv_undefine(virConnectPtr conn, const char *name, bool force, struct vp_error *err);
/* Destroy and undefine vpool's own definition of a VM, and nothing else:
 * the domain of UUID on CONN, if it is named NAME and carries vpool's
 * <metadata> for POOL at GENERATION. Returns 1 when it went, 0 when CONN
 * has no such domain (another of that name, if any, stays). */
int vp_hv_undefine_own(virConnectPtr conn, const char *name, const char *uuid, const char *pool,
                       int64_t generation, struct vp_error *err);
/* Start NAME: -EBUSY when QEMU could not lock one of its images (another
 * process holds it), -EIO on any other failure; libvirt's message either way. */
int vp_hv_start(virConnectPtr conn, const char *name, struct vp_error *err);
/* Whether MSG is QEMU's refusal to open an image another process holds locked. */
bool vp_hv_image_lock_error(const char *msg);
/* Graceful shutdown, waiting up to TIMEOUT_SEC; then destroy when FORCE,
 * else -ETIMEDOUT. Already shut off is 0. FORCE with timeout 0 destroys at once. */
int vp_hv_stop(virConnectPtr conn, const char *name, int timeout_sec, bool force, struct vp_error *err);
/* A source's end in a move, on D (a domain held since it was listed: no
 * look-up): stopped as vp_hv_stop with FORCE would, then undefined, its
 * NVRAM kept. *RET_RAN says whether it was running. One call to libvirt
 * each for a domain that was shut off. */
int vp_hv_retire(virDomainPtr d, const char *name, int timeout_sec, bool *ret_ran, struct vp_error *err);
/* NAME's live state on CONN: VP_VM_UNDEFINED when absent, VP_VM_UNKNOWN
 * for a state model.h has no word for. *RET untouched on failure. */
/* What a live move cut short leaves (its client killed before libvirt's
 * finish): the domain of UUID paused on DST, waiting for a switch-over
 * that never came, while NAME still runs (or waits paused) on SRC. That
 * target is destroyed and a source paused by the move resumed: the source
 * is the VM. Returns 1 when it cleared something, 0 when there was
 * nothing of the kind. */
int vp_hv_clear_incoming(virConnectPtr src, virConnectPtr dst, const char *name, const char *uuid,
                         struct vp_error *err);
/* Wait until domain NAME on CONN runs no job (a migration a process that
 * died started goes on in libvirtd), at most TIMEOUT_SEC: true when none
 * runs (or the domain is gone), false when one still does. */
bool vp_hv_job_wait(virConnectPtr conn, const char *name, int timeout_sec);
/* Wait until domain NAME on CONN, the target of a move, is no longer
 * paused for its incoming migration (libvirt's source daemon may still be
 * finishing it there), at most TIMEOUT_SEC: true once it is not (or is
 * gone), false when it still is. */
bool vp_hv_incoming_wait(virConnectPtr conn, const char *name, int timeout_sec);
int vp_hv_domain_state(virConnectPtr conn, const char *name, enum vp_vm_state *ret, struct vp_error *err);
/* The UUID of domain NAME on CONN; -ENOENT when CONN has no such domain. */
int vp_hv_uuid(virConnectPtr conn, const char *name, char uuid[VIR_UUID_STRING_BUFLEN], struct vp_error *err);
/* Every domain of a connection and whether it is active (running, paused,
 * shutting down), read in two calls whatever their number. */
struct vp_hv_domstate {
        char *name;
        bool active;
        enum vp_vm_state state;    /* vp_hv_states_stats alone */
        int vcpus;                 /* vp_hv_states_stats alone: its vCPUs now */
};
struct vp_hv_states {
        struct vp_hv_domstate *v;  /* sorted by name */
        size_t n;
};
int vp_hv_states_load(virConnectPtr conn, struct vp_hv_states *ret, struct vp_error *err);
/* The same with each domain's state and vCPUs, from one call of
 * libvirt's domain statistics whatever their number. */
int vp_hv_states_stats(virConnectPtr conn, struct vp_hv_states *ret, struct vp_error *err);
/* NAME in S: NULL when CONN had no such domain. */
const struct vp_hv_domstate *vp_hv_states_find(const struct vp_hv_states *s, const char *name);
void vp_hv_states_free(struct vp_hv_states *s);

/* What fsck needs from a defined domain. */
struct vp_dominfo {
        char name[256];
        char uuid[40];
        bool has_meta;             /* carries vpool's <metadata> */
        char pool[64];
        int64_t generation;
        char files[8][4096];       /* disk sources (file disks) */
        int nfiles;
        bool active;
};

/* Read every defined domain of CONN (persistent XML). *ret malloc'd. */
int vp_hv_inspect_all(virConnectPtr conn, struct vp_dominfo **ret, size_t *ret_n, struct vp_error *err);

/* The persistent XML of NAME (malloc'd). */
int vp_hv_xml(virConnectPtr conn, const char *name, char **ret, struct vp_error *err);

/* ---- live move ------------------------------------------------------------ */

/* How a running domain moves live to another host of its env (same
 * hardware, disks on shared storage: no disk byte is copied). */
struct vp_hv_live {
        /* The destination's URI as the SOURCE's libvirtd reaches it: the
         * move runs peer to peer, the source daemon drives it. */
        const char *dst_uri;
        /* NULL, or tcp://ADDR where the destination's QEMU listens for the
         * memory stream; NULL lets the destination name itself (its
         * migration_host, else its hostname). */
        const char *stream_uri;
        /* The delta's disks: the names the domain has open, and the new
         * generation's names, hard links to the same inodes, that the
         * domain opens on the destination. */
        const struct vp_domxml_move *moves;
        size_t nmoves;
        int64_t generation;        /* vpool's metadata on the destination */
        int timeout_sec;           /* then the job is aborted; > 0 */
        int max_downtime_ms;       /* 0: QEMU's default (300 ms) */
};

struct vp_hv_live_stats {
        int64_t downtime_ms;       /* libvirt's figure for the pause; -1 when not reported */
        int64_t total_ms;          /* the whole job, as libvirt timed it; -1 likewise */
};

/* Move NAME, running on SRC, live to DST (the connection the caller holds
 * to HOW->dst_uri): defined there persistently with its disks renamed per
 * HOW, undefined on SRC. Returns 0 once it runs on DST and SRC has no such
 * domain, with *ret_stats filled when not NULL. On failure libvirt rolls
 * the move back and the domain runs on SRC as before: -ETIMEDOUT when the
 * job was aborted after HOW->timeout_sec, -EIO otherwise, the message
 * saying where the domain runs now, with libvirt's own words. The files
 * are the caller's: both names must exist before, and the old ones are
 * the caller's to remove after. */
int vp_hv_migrate_live(virConnectPtr src, virConnectPtr dst, const char *name, const struct vp_hv_live *how,
                       struct vp_hv_live_stats *ret_stats, struct vp_error *err);
