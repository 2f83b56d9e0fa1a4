/* A user delta collection on shared storage: deltas/<pool>/<vm>/ holds
 * manifest.json (owner, generation, identity) and the disks it names: the
 * overlay of the master, an optional data disk, the UEFI variable store of
 * a UEFI VM. Created beside its pool's master, checked before anything
 * opens its disks, removed. Every function takes names that passed
 * vp_name_check. */
#pragma once
#include "manifest.h"
#include "storage.h"

/* Create the collection deltas/<pool>/<vm>/ for M: the overlay of M->master
 * (absolute backing path, explicit format; header checked afterwards), a
 * data disk of DATA_DISK_BYTES when non-zero, and the manifest, durably.
 * The collection must not exist yet. On failure nothing is left. Returns 0
 * and *ret_path (absolute, malloc'd, the caller's). */
int vp_delta_create(struct vp_storage *s, const struct vp_manifest *m, uint64_t data_disk_bytes,
                    char **ret_path, struct vp_error *err);
/* Remove a collection and, when it was the last, its pool directory.
 * No error if absent. Only regular files inside are removed. */
int vp_delta_remove(struct vp_storage *s, const char *pool, const char *vm, struct vp_error *err);
/* Open deltas/<pool>/<vm> as a directory fd (the caller's to close),
 * refusing symbolic links on the way. */
int vp_delta_open(struct vp_storage *s, const char *pool, const char *vm, int *ret_fd,
                  struct vp_error *err);
/* Check a collection before anything opens its disks: the manifest reads
 * back whole, names POOL/VM, and the overlay (and data disk) pass the header
 * checks, the overlay backed exactly by MASTER in MASTER_FORMAT, nothing a
 * symbolic link. Fills *ret_m when not NULL. */
int vp_delta_check(struct vp_storage *s, const char *pool, const char *vm, const char *master,
                   const char *master_format, struct vp_manifest *ret_m, struct vp_error *err);
