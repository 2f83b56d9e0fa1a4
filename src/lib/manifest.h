/* The manifest of a user delta collection: who owns it now (a VM or a
 * migration), the generation of that ownership (a fencing token bumped at
 * every hand-over) and the VM's identity. Lives on shared storage as
 * <storage>/deltas/<pool>/<vm>/manifest.json. */
#pragma once
#include "util.h"
#include <limits.h>

#define VP_MANIFEST_NAME "manifest.json"
/* The manifest's former inode, the next write's buffer (see
 * vp_write_file_recycle); never read. */
#define VP_MANIFEST_SPARE ".manifest.spare"
#define VP_MANIFEST_VERSION 1
#define VP_MAX_MACS 4

struct vp_manifest {
        char pool[64];
        char vm[64];
        char owner[96];            /* an owner token (model.h) */
        int64_t generation;        /* >= 1 */
        char uuid[37];
        char macs[VP_MAX_MACS][18];
        int nmacs;
        char hostname[64];
        char master[PATH_MAX];     /* absolute path of the master image */
        char master_format[8];     /* qcow2 | raw */
        char overlay[64];          /* file name inside the collection */
        char data_disk[64];        /* "" when none */
        char nvram[64];            /* "" when none (BIOS) */
};

/* Serialize M as JSON (malloc'd, NUL-terminated). */
char *vp_manifest_to_json(const struct vp_manifest *m);

/* Parse and validate TEXT strictly: every field present with its type,
 * names pass the allowlist, UUID and MACs well formed, generation >= 1,
 * master absolute. A truncated or garbled manifest is an error (-EBADMSG),
 * never an empty one. LABEL names the file in errors. */
int vp_manifest_parse(const char *text, const char *label, struct vp_manifest *ret,
                      struct vp_error *err);

/* A writer killed between creating its temp file and renaming it leaves
 * the temp behind. The next settle of its collection (one at a time: the
 * pool lock), which every hand-over begins with, removes every temp in the
 * collection DIRFD, so no stray file outlives the crash it came from. */
void vp_manifest_sweep_temps(int dirfd);

/* Durably write / read manifest.json in the collection directory DIRFD. */
int vp_manifest_write(int dirfd, const struct vp_manifest *m, struct vp_error *err);
int vp_manifest_read(int dirfd, const char *label, struct vp_manifest *ret, struct vp_error *err);
