/* Domain XML from a hardware profile and a user delta collection. Pure
 * string building, no libvirt calls, so it is unit-tested on its own. */
#pragma once
#include "util.h"

#define VP_XML_NS "urn:vpool:domain:1"

struct vp_domspec {
        const char *name;          /* checked name */
        const char *uuid;
        const char *domain_type;   /* qemu | kvm */
        const char *arch;          /* x86_64 */
        const char *machine;       /* pc, q35, pc-q35-7.2 ... */
        const char *firmware;      /* bios | uefi */
        const char *cpu_mode;      /* "" or NULL: hypervisor default */
        int64_t vcpus;
        int64_t memory_mib;
        const char *kernel;        /* NULL or "": boot from disk */
        const char *initrd;
        const char *cmdline;
        const char *disk_bus;      /* ide | sata | virtio | scsi */
        const char *overlay;       /* absolute path */
        const char *master;        /* absolute path of the backing master */
        const char *master_format; /* qcow2 | raw */
        const char *data_disk;     /* absolute path or NULL */
        const char *nvram;         /* absolute path or NULL (UEFI only) */
        const char *nic;           /* e1000 | rtl8139 | virtio | none */
        const char *mac;
        const char *log_path;      /* serial console log */
        const char *pool;          /* for <metadata> */
        const char *hostname;
        int64_t generation;
};

/* Returns the domain XML (malloc'd), or NULL with *err set when a field is
 * not one vpool knows (unknown bus, NIC, firmware). Every text is escaped. */
char *vp_domxml_build(const struct vp_domspec *d, struct vp_error *err);

/* Device name for disk INDEX (0, 1, ...) on BUS: sda, vda, hda... */
void vp_domxml_target_dev(const char *bus, int index, char out[8]);

/* Read back vpool's <metadata> from domain XML: pool and generation.
 * Returns 0, or -ENOENT when the domain carries no vpool metadata. */
int vp_domxml_parse_metadata(const char *xml, char *pool, size_t poolsz, int64_t *generation);

/* One disk of a live move: the name the running domain has open, and the
 * name (a hard link to the same inode) the destination opens instead. */
struct vp_domxml_move {
        const char *from;
        const char *to;
};

/* XML (a domain's description as libvirt gives it, live or inactive) with
 * every disk source and UEFI variable store named FROM in MOVES renamed to
 * its TO, and vpool's <metadata> generation set to GENERATION; nothing else
 * changes. Returns the new XML (malloc'd), or NULL with *err set: -EBADMSG
 * for unparsable XML, -ENOENT when it carries no vpool metadata or names
 * no disk for one of MOVES (a move that would leave a disk behind under its
 * old name is refused rather than half done). */
char *vp_domxml_move_disks(const char *xml, const struct vp_domxml_move *moves, size_t n, int64_t generation,
                           struct vp_error *err);
