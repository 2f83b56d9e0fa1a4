/* A user delta collection's lifecycle on shared storage: created beside
 * its pool's master, checked before anything opens its disks, handed from
 * one owner to the next, removed.
 *
 * deltas/<pool>/<vm>.<uuid>/ holds manifest.json (owner, generation, identity)
 * and the disks it names: the overlay of the master, an optional data disk,
 * the UEFI variable store of a UEFI VM. The manifest is the truth about the
 * disks' names: at every hand-over each disk takes a name carrying the new
 * generation (overlay.g7.qcow2), renamed first, the manifest rewritten
 * last, so a definition made for an older generation names a file that no
 * longer exists and cannot start. A hand-over cut short between the two is
 * settled back to what the manifest says.
 *
 * The collection's directory carries the VM's UUID, new at every create:
 * a pool removed and created again under the same name gets collections,
 * and so disk paths, that no definition made for the old one names (a
 * stale domain on a host that returns cannot open a new user's overlay).
 * Collections made before carry the VM's name alone and keep it.
 *
 * Every function takes names that passed vp_name_check; DIR arguments are
 * a collection's directory name (vp_delta_dir_of of the catalog's
 * delta_path); LABEL arguments name the collection in errors (its
 * absolute path). */
#pragma once
#include "manifest.h"
#include "name.h"
#include "storage.h"

/* ---- the collection ------------------------------------------------------ */

/* The absolute path of the collection of VM (of UUID) in POOL, under the
 * storage root (malloc'd): what the catalog records as its delta_path. */
char *vp_delta_path(const struct vp_storage *s, const char *pool, const char *vm, const char *uuid);
/* The directory name in DELTA_PATH (a catalog's delta_path): the part
 * after its last '/'. Points into DELTA_PATH. */
const char *vp_delta_dir_of(const char *delta_path);
/* Split a collection's directory name DIR into the VM's name and its UUID
 * ("" for a collection made before UUIDs were part of the name). Returns
 * 0, or -EINVAL when DIR is no collection's name. */
int vp_delta_dir_parse(const char *dir, char vm[VP_NAME_MAX + 1], char uuid[37]);

/* Create the collection deltas/<pool>/<vm>.<uuid>/ for M (its pool, VM and
 * UUID): the overlay of M->master, MASTER_BYTES large as the master is
 * (absolute backing path, explicit format; header checked afterwards), a
 * data disk of DATA_DISK_BYTES when non-zero, and the manifest, durably.
 * The collection must not exist yet. On failure nothing is left. Returns 0
 * and *ret_path (absolute, malloc'd, the caller's). */
int vp_delta_create(struct vp_storage *s, const struct vp_manifest *m, uint64_t master_bytes,
                    uint64_t data_disk_bytes, char **ret_path, struct vp_error *err);
/* Remove a collection and, when it was the last, its pool directory.
 * No error if absent. Only regular files inside are removed. */
int vp_delta_remove(struct vp_storage *s, const char *pool, const char *dir, struct vp_error *err);
/* Open deltas/<pool>/<dir> as a directory fd (the caller's to close),
 * refusing symbolic links on the way. */
int vp_delta_open(struct vp_storage *s, const char *pool, const char *dir, int *ret_fd,
                  struct vp_error *err);
/* Check a collection before anything opens its disks: the manifest reads
 * back whole, names POOL and the VM (and UUID) its directory DIR names,
 * and the overlay (and data disk) pass the header
 * checks, the overlay backed exactly by MASTER in MASTER_FORMAT, nothing a
 * symbolic link. The UEFI variable store, when the manifest names one, is a
 * regular file, or absent (a VM that never booted) with no other store of
 * its kind beside it. Fills *ret_m when not NULL. */
int vp_delta_check(struct vp_storage *s, const char *pool, const char *dir, const char *master,
                   const char *master_format, struct vp_manifest *ret_m, struct vp_error *err);
/* vp_delta_check of the open collection DFD (at LABEL, its absolute path)
 * of POOL whose manifest M vp_delta_settle just gave. */
int vp_delta_check_settled(int dfd, const char *label, const char *pool, const struct vp_manifest *m,
                           const char *master, const char *master_format, struct vp_error *err);

/* ---- the hand-over --------------------------------------------------------- */

/* What the manifest M becomes when owner TO (an owner token, model.h) takes
 * it over: owner TO, the generation bumped by BUMP, and every disk it names
 * renamed to carry that generation. Changes M only; touches no file. A
 * caller defines a domain for the disks of a hand-over still to come with
 * it. */
void vp_delta_handed_manifest(struct vp_manifest *m, const char *to, int64_t bump);
/* vp_delta_hand_over by one generation, the disks keeping their names: a
 * live move's lock, while the VM's QEMU runs them under those names (QEMU
 * opens a disk again by its name when the move ends on the source). The
 * names change at the unlock, which renames them as every hand-over does. */
int vp_delta_take_over(int dfd, const char *label, const char *from, const char *to, int64_t after_gen,
                       struct vp_manifest *ret_m, struct vp_error *err);
/* M's disks as they were named at generation GEN (the names a domain
 * defined then has open): BASE.EXT at generation 1, BASE.gGEN.EXT after. */
void vp_delta_names_at(struct vp_manifest *m, int64_t gen);
/* A live move's names ahead of the hand-over: each disk of collection DFD
 * (manifest M) gets its name at generation GEN too, a hard link to the same
 * inode (an absent UEFI store stays absent). A name at GEN that exists
 * already is refused unless it is that same file. Durable. */
int vp_delta_link_names(int dfd, const char *label, const struct vp_manifest *m, int64_t gen, struct vp_error *err);
/* Undo vp_delta_link_names: every name at GEN that is a second name of one
 * of M's disks goes; anything else stays. */
int vp_delta_unlink_names(int dfd, const char *label, const struct vp_manifest *m, int64_t gen, struct vp_error *err);

/* Read the manifest of the collection DFD into *RET_M, and settle its
 * disks: a disk the manifest names that is missing, with exactly one other
 * file of its kind present (BASE.EXT or BASE.gN.EXT: overlay, data, nvram),
 * is renamed back to the manifest's name (a hand-over cut short after its
 * renames). Several candidates, or none, are refused (-ENOENT): which one
 * holds the user's data is not for vpool to guess. Returns 0 once every
 * named disk exists; *RET_M is untouched on failure. */
int vp_delta_settle(int dfd, const char *label, struct vp_manifest *ret_m, struct vp_error *err);

/* Hand the collection DFD from owner FROM to owner TO: settle it, rename
 * its disks to the names of the new generation (current + BUMP), then
 * durably rewrite the manifest (vp_delta_handed_manifest); an absent UEFI
 * variable store stays absent, under its new name in the manifest. Idempotent: a
 * manifest already owned by TO at a generation past AFTER_GEN is left
 * alone (a redo after the manifest write). Any other owner than FROM is
 * refused (-EPERM): someone else holds the delta. Returns 0 and *RET_M, the
 * manifest now on disk; *RET_M is untouched on failure. When the manifest
 * write fails (-ENOSPC on a full file system) the old manifest stays and
 * the disks keep their new names until the next settle renames them back:
 * the manifest, not the disks, says where the hand-over stands. Fault
 * points (util.h): migrate.renamed after each rename made,
 * migrate.manifest-to-vm or migrate.manifest-to-migration after the
 * manifest write. */
int vp_delta_hand_over(int dfd, const char *label, const char *from, const char *to, int64_t after_gen,
                       int64_t bump, struct vp_manifest *ret_m, struct vp_error *err);
/* vp_delta_hand_over of a collection the caller settled a moment ago
 * (vp_delta_settle gave SETTLED, the pool lock held since): no second read. */
int vp_delta_hand_over_settled(int dfd, const char *label, const struct vp_manifest *settled, const char *from,
                               const char *to, int64_t after_gen, int64_t bump, struct vp_manifest *ret_m,
                               struct vp_error *err);
