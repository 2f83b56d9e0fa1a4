/* Durable file writes and careful reads under a directory fd. */
#pragma once
#include "util.h"
#include <sys/types.h>

/* Write DATA as NAME in DIRFD durably: NAME.tmp.XXXXXX created with
 * O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, written fully, fsync, renameat over
 * NAME, fsync DIRFD. On any failure the temp file is removed and NAME is
 * untouched. Returns 0 or -errno with a message naming NAME. */
int vp_write_file_atomic(int dirfd, const char *name, const void *data, size_t len,
                         mode_t mode, struct vp_error *err);

/* vp_write_file_atomic's durability with the inode of NAME's former
 * content reused: the data go to SPARE (a file of DIRFD nothing reads,
 * made on the first write), fdatasync, then SPARE and NAME are exchanged
 * (renameat2 RENAME_EXCHANGE) and DIRFD synced, so NAME is the whole old
 * content or the whole new one, and the old one is the next write's SPARE.
 * No inode is made or freed per write. Where SPARE is not a plain file of
 * one name, falls back to vp_write_file_atomic; where the filesystem cannot
 * exchange, renames. Returns 0 or -errno with a message naming NAME. */
int vp_write_file_recycle(int dirfd, const char *name, const char *spare, const void *data, size_t len,
                          mode_t mode, struct vp_error *err);

/* Read NAME in DIRFD (O_NOFOLLOW, regular file only, at most MAX bytes,
 * NUL-terminated). Returns 0 and a malloc'd *ret (and *ret_len if not NULL),
 * or -errno: -ELOOP for a symlink, -EFBIG over MAX, -ENOENT. */
int vp_read_file_at(int dirfd, const char *name, size_t max, char **ret, size_t *ret_len,
                    struct vp_error *err);

/* fsync a directory by fd. */
int vp_fsync_dir(int dirfd, struct vp_error *err);
