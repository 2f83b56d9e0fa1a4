/* The shared-storage layout:
 *   <root>/images/            master images (read-only) and their boot files
 *   <root>/deltas/<pool>/<vm>/ user delta collections (delta.h)
 *   <root>/logs/<vm>.log      serial consoles
 * Every path below the root is reached with openat + O_NOFOLLOW from
 * directory fds opened once, and every name has passed vp_name_check. */
#pragma once
#include "util.h"
#include "manifest.h"
#include "qcow2.h"

struct vp_storage {
        char *root;
        int root_fd;
        int images_fd;
        int deltas_fd;
        int logs_fd;
};

/* Create the layout (idempotent). ROOT must be absolute. */
int vp_storage_init(const char *root, struct vp_error *err);
/* Open an existing layout. Returns 0 and fills *ret; close with vp_storage_close. */
int vp_storage_open(const char *root, struct vp_storage *ret, struct vp_error *err);
void vp_storage_close(struct vp_storage *s);

/* Copy SRC into images/ as DEST (a checked file name) read-only and
 * durably, after its header passed the checks for FORMAT (a master must
 * stand alone) and again on the copy. Fills *info, the SHA-256 of the copy
 * and *ret_path (absolute, malloc'd). FORMAT VP_FORMAT_UNKNOWN copies a
 * plain file (kernel, initrd) without header checks. Nothing is left in
 * images/ on failure; an existing DEST is refused. */
int vp_storage_import(struct vp_storage *s, const char *dest, const char *src,
                      enum vp_image_format format, struct vp_image_info *info, char sha256[65],
                      char **ret_path, struct vp_error *err);
/* Remove images/NAME (no error if absent). */
int vp_storage_remove_image(struct vp_storage *s, const char *name, struct vp_error *err);
/* Re-hash images/NAME. */
int vp_storage_hash_image(struct vp_storage *s, const char *name, char sha256[65], struct vp_error *err);

/* The master image at PATH (under images/) is a regular file, not a
 * symbolic link, and passes the header checks for a master. */
int vp_storage_check_master(struct vp_storage *s, const char *path, const char *format, struct vp_error *err);
/* The same checks, then *RET_FD (the caller's to close) open on it for reading. */
int vp_storage_open_master(struct vp_storage *s, const char *path, const char *format, int *ret_fd,
                           struct vp_error *err);

/* Open directory NAME in DIRFD, refusing a symbolic link. Returns the fd
 * (the caller's to close) or negative errno; LABEL names it in errors. */
int vp_storage_open_dir(int dirfd, const char *name, const char *label, struct vp_error *err);

/* PATH (absolute) is a file under the storage root that nothing but
 * vpool's own layout leads to: every component from the root on is reached
 * without a symbolic link, each one on the way is a directory, and the last
 * is a regular file where it exists. An absent last component passes (a
 * disk of a hand-over still to come, a console log or UEFI variable store
 * libvirt makes at the first start); a missing directory on the way does
 * not. Refusals name PATH: libvirt and QEMU follow links, vpool does not
 * hand them any. */
int vp_storage_check_file(struct vp_storage *s, const char *path, struct vp_error *err);
/* vp_storage_check_file of NAME in the folder DFD, reached by that check's
 * walk already (a collection vp_delta_open opened); PATH names it in
 * errors. */
int vp_storage_check_file_at(int dfd, const char *name, const char *path, struct vp_error *err);

/* Absolute path of the console log of VM (malloc'd). */
char *vp_storage_log_path(struct vp_storage *s, const char *vm);
