/* What a guest's own files say about the hardware it can use: the kernel
 * modules its initramfs holds, which virtual disk bus and NIC model those
 * drivers serve, and how its network configuration finds its interface.
 * Pure parsers of guest-provided bytes, no I/O: inspect.c feeds them what
 * libguestfs read from the master, the fuzz targets feed them anything. */
#pragma once
#include "util.h"
#include "model.h"

/* A set of kernel module names, normalized as modprobe does ('-' is '_'). */
struct vp_modset {
        char **names;
        size_t n, cap;
};
void vp_modset_free(struct vp_modset *s);
/* Add the module a path names: "kernel/drivers/ata/ata_piix.ko.zst" and
 * "ata-piix" both add "ata_piix"; a path not ending in .ko[.gz|.xz|.zst]
 * adds nothing unless BARE (a plain module name). */
void vp_modset_add_path(struct vp_modset *s, const char *path, size_t len, bool bare);
bool vp_modset_has(const struct vp_modset *s, const char *name);
/* Every module path of a modules.builtin or modules.dep TEXT (one per line,
 * modules.dep's "path: deps" read up to its colon). */
void vp_modset_add_list(struct vp_modset *s, const char *text, size_t len);

/* Called for each file of an initramfs: its path inside the archive (NUL
 * terminated), its mode and contents (DATA valid for the call only). */
typedef void (*vp_cpio_fn)(void *ud, const char *name, uint32_t mode, const uint8_t *data, size_t size);
/* Walk an initramfs image: a concatenation of uncompressed newc cpio
 * archives (the early microcode one) and one compressed archive (gzip, xz or
 * zstd; decompressed to at most VP_INITRAMFS_MAX bytes). COMP gets the
 * compression of the last archive ("none", "gzip", "xz", "zstd"). 0, or
 * -EBADMSG / -EOPNOTSUPP / -EFBIG with *err. */
#define VP_INITRAMFS_MAX ((size_t)512 << 20)
int vp_initramfs_walk(const uint8_t *buf, size_t len, vp_cpio_fn fn, void *ud, char comp[8],
                      struct vp_error *err);
/* The modules an initramfs holds (files under lib/modules/ named *.ko*),
 * and the modules.builtin it carries, into MODS. */
int vp_initramfs_modules(const uint8_t *buf, size_t len, struct vp_modset *mods, char comp[8],
                         struct vp_error *err);

/* The modules a Linux guest needs to drive hardware WORD (a disk bus or NIC
 * model word of model.h) and which of them it lacks: NULL when the set has
 * them all, else the missing one (static; "8139cp|8139too" when any of two
 * would do). NIC false: WORD is a disk bus. */
const char *vp_linux_missing_driver(bool nic, const char *word, const struct vp_modset *have);
/* The same for a Windows guest: the driver (.sys in System32/drivers) a
 * paravirtual device needs (viostor, vioscsi, netkvm), NULL when Windows
 * drives the device with its own drivers. */
const char *vp_windows_driver(bool nic, const char *word);

/* How a network configuration picks its interface, from what survives a
 * change of NIC model and PCI slot to what does not. */
enum vp_netmatch {
        VP_NETMATCH_NONE,     /* no configuration found */
        VP_NETMATCH_ANY,      /* any interface (NetworkManager's default, DHCP on all) */
        VP_NETMATCH_MAC,      /* by MAC address: vpool keeps the VM's MACs */
        VP_NETMATCH_PATTERN,  /* by a name pattern ("en*") */
        VP_NETMATCH_DRIVER,   /* by driver: breaks when the NIC model changes */
        VP_NETMATCH_PATH,     /* by PCI path: breaks when the slot changes */
        VP_NETMATCH_NAME,     /* by interface name (ens3): breaks when either changes */
        VP_NETMATCH_MAX,
};
const char *vp_netmatch_to_string(enum vp_netmatch m);
enum vp_netmatch vp_netmatch_from_string(const char *s);

#define VP_NETCFG_NAMES 256
struct vp_netcfg {
        enum vp_netmatch match;         /* the most fragile seen */
        char tools[64];                 /* "ifupdown,networkd,..." as found */
        char names[VP_NETCFG_NAMES];    /* the interface names or patterns named, comma separated */
};
/* Read one configuration file of a kind into CFG (merging with what it
 * holds). TEXT need not be NUL terminated. */
void vp_netcfg_ifupdown(struct vp_netcfg *cfg, const char *text, size_t len);
void vp_netcfg_networkd(struct vp_netcfg *cfg, const char *text, size_t len);
void vp_netcfg_nm(struct vp_netcfg *cfg, const char *text, size_t len);
void vp_netcfg_netplan(struct vp_netcfg *cfg, const char *text, size_t len);
/* Whether a guest so configured loses its network when its NIC model or
 * PCI address changes. */
bool vp_netmatch_breaks_on_rename(enum vp_netmatch m);
