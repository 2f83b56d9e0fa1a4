/* vpool's own image header checks: every image on shared storage passes
 * here before QEMU or qemu-img opens it. Parses the qcow2 header (v2, v3)
 * and its extensions without trusting any field. And the one image vpool
 * writes itself: an empty qcow2, an overlay of a master or a blank disk. */
#pragma once
#include "util.h"

enum vp_image_format {
        VP_FORMAT_UNKNOWN = 0,
        VP_FORMAT_RAW,
        VP_FORMAT_QCOW2,
};

struct vp_image_info {
        enum vp_image_format format;
        uint64_t file_size;
        uint64_t virtual_size;
        uint32_t qcow2_version;        /* 2 or 3 for qcow2 */
        uint32_t cluster_bits;
        char backing_file[1024];      /* "" when none */
        char backing_format[32];      /* "" when none given */
        bool has_data_file;           /* external data file extension or feature bit */
        char data_file[1024];
};

const char *vp_format_to_string(enum vp_image_format f);
/* "qcow2" / "raw" -> enum; anything else VP_FORMAT_UNKNOWN. */
enum vp_image_format vp_format_from_string(const char *s);

/* Read and check the header of the image open at FD (read with pread only).
 * DECLARED is the format the caller expects (VP_FORMAT_UNKNOWN: detect).
 * LABEL names the file in errors. Refuses: empty or truncated files, a
 * file that is not the declared format (raw declared but qcow2/other known
 * magic found, or qcow2 declared without the magic), unsupported versions,
 * cluster_bits outside 9..21, impossible sizes, table offsets past the end
 * of the file or unaligned, a backing file name longer than 1023 bytes or
 * outside the header cluster, unknown incompatible feature bits, encryption,
 * a corrupt bit, malformed extensions. Returns 0 and fills *ret, or
 * -EINVAL (bad image) / -errno (I/O) with a one-line message. */
int vp_image_probe(int fd, const char *label, enum vp_image_format declared,
                   struct vp_image_info *ret, struct vp_error *err);

/* Policy for a master image: no backing file and no external data file. */
int vp_image_check_master(const struct vp_image_info *info, const char *label,
                          struct vp_error *err);

/* Policy for a user overlay: qcow2, backing file exactly MASTER_PATH
 * (absolute) with backing format exactly MASTER_FORMAT, no data file. */
int vp_image_check_overlay(const struct vp_image_info *info, const char *label,
                           const char *master_path, const char *master_format,
                           struct vp_error *err);

/* Create NAME in DIRFD (O_EXCL, no symlink followed) as an empty qcow2 v3
 * image of SIZE bytes, 64 KiB clusters, 16-bit refcounts: the layout
 * 'qemu-img create' writes, without its start-up. With BACKING (an absolute
 * name) it is an overlay of that file, whose format BACKING_FORMAT it
 * records. Written and fsynced; on failure nothing is left. LABEL names the
 * file in errors. */
int vp_qcow2_create(int dirfd, const char *name, const char *label, uint64_t size, const char *backing,
                    const char *backing_format, struct vp_error *err);
