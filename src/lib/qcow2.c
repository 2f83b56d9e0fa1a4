#include "qcow2.h"
#include "name.h"

#include <inttypes.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <string.h>
#include <sys/stat.h>

/* Layout from QEMU's docs/interop/qcow2.txt. All fields big endian. */
#define QCOW2_MAGIC "QFI\xfb"
#define QCOW2_V2_HEADER_LEN 72
#define QCOW2_V3_HEADER_MIN 104

#define OFF_VERSION 4
#define OFF_BACKING_OFFSET 8
#define OFF_BACKING_SIZE 16
#define OFF_CLUSTER_BITS 20
#define OFF_SIZE 24
#define OFF_CRYPT_METHOD 32
#define OFF_L1_SIZE 36
#define OFF_L1_OFFSET 40
#define OFF_REFCOUNT_OFFSET 48
#define OFF_REFCOUNT_CLUSTERS 56
#define OFF_NB_SNAPSHOTS 60
#define OFF_SNAPSHOTS_OFFSET 64
#define OFF_INCOMPAT 72
#define OFF_REFCOUNT_ORDER 96
#define OFF_HEADER_LENGTH 100
#define OFF_COMPRESSION_TYPE 104

#define INCOMPAT_DIRTY (UINT64_C(1) << 0)
#define INCOMPAT_CORRUPT (UINT64_C(1) << 1)
#define INCOMPAT_DATA_FILE (UINT64_C(1) << 2)
#define INCOMPAT_COMPRESSION (UINT64_C(1) << 3)
#define INCOMPAT_EXTL2 (UINT64_C(1) << 4)
#define INCOMPAT_KNOWN (INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | \
                        INCOMPAT_COMPRESSION | INCOMPAT_EXTL2)

#define EXT_END 0x00000000u
#define EXT_BACKING_FORMAT 0xe2792acau
#define EXT_FEATURE_TABLE 0x6803f857u
#define EXT_BITMAPS 0x23852875u
#define EXT_FDE 0x0537be77u
#define EXT_DATA_FILE 0x44415441u

#define MIN_CLUSTER_BITS 9
#define MAX_CLUSTER_BITS 21
#define MAX_VIRTUAL_SIZE (UINT64_C(1) << 50)
#define MAX_L1_BYTES (UINT64_C(32) << 20)
#define MAX_REFTABLE_BYTES (UINT64_C(8) << 20)
#define MAX_SNAPSHOTS 65536
#define SNAPSHOT_ENTRY_MIN 40
#define MAX_BACKING_NAME 1023

/* Enough of the start of the file for the header fields and every magic
 * we look for. */
#define HEAD_LEN 512

struct known_magic {
        const char *format;
        size_t offset;
        const char *bytes;
        size_t len;
};

/* Formats whose header a raw image must not start with: if a guest wrote
 * one into its disk, a later probe must not take it at its word. */
static const struct known_magic other_magics[] = {
        { "vmdk", 0, "KDMV", 4 },
        { "vmdk", 0, "# Disk DescriptorFile", 21 },
        { "vhdx", 0, "vhdxfile", 8 },
        { "vpc", 0, "conectix", 8 },
        { "vdi", 0x40, "\x7f\x10\xda\xbe", 4 },
        { "qed", 0, "QED\0", 4 },
        { "luks", 0, "LUKS\xba\xbe", 6 },
        { "parallels", 0, "WithoutFreeSpace", 16 },
        { "parallels", 0, "WithouFreSpacExt", 16 },
        { "bochs", 0, "Bochs Virtual HD Image", 22 },
};

static uint32_t be32(const uint8_t *p)
{
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
        return (uint64_t) be32(p) << 32 | be32(p + 4);
}

/* pread until N bytes or EOF. Returns the bytes read or -errno. */
static ssize_t pread_full(int fd, void *buf, size_t n, uint64_t off)
{
        uint8_t *p = buf;
        size_t done = 0;

        if (off > INT64_MAX)
                return 0;
        while (done < n) {
                ssize_t r = pread(fd, p + done, n - done, (off_t) (off + done));
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r == 0)
                        break;
                done += (size_t) r;
        }
        return (ssize_t) done;
}

const char *vp_format_to_string(enum vp_image_format f)
{
        switch (f) {
        case VP_FORMAT_RAW:
                return "raw";
        case VP_FORMAT_QCOW2:
                return "qcow2";
        case VP_FORMAT_UNKNOWN:
        default:
                return "unknown";
        }
}

enum vp_image_format vp_format_from_string(const char *s)
{
        if (s && streq(s, "raw"))
                return VP_FORMAT_RAW;
        if (s && streq(s, "qcow2"))
                return VP_FORMAT_QCOW2;
        return VP_FORMAT_UNKNOWN;
}

static const char *match_other_magic(const uint8_t *head, size_t len)
{
        for (size_t i = 0; i < ELEMENTSOF(other_magics); i++) {
                const struct known_magic *m = &other_magics[i];
                if (m->offset + m->len <= len && memcmp(head + m->offset, m->bytes, m->len) == 0)
                        return m->format;
        }
        return NULL;
}

/* Copy a name of LEN bytes from the image into OUT, refusing embedded NULs.
 * LEN < OUTSZ is the caller's job. */
static bool copy_name(char *out, size_t outsz, const uint8_t *src, size_t len)
{
        if (len >= outsz || memchr(src, '\0', len))
                return false;
        memcpy(out, src, len);
        out[len] = '\0';
        return true;
}

static int truncated(const char *label, struct vp_error *err)
{
        return vp_err(err, -EINVAL, "image '%s' is truncated", label);
}

static int parse_extensions(int fd, const char *label, uint64_t file_size, uint64_t start,
                            uint64_t end, struct vp_image_info *info, struct vp_error *err)
{
        _cleanup_free_ uint8_t *area = NULL;
        bool seen_format = false, seen_data_file = false;
        size_t size, avail, pos = 0;
        ssize_t n;

        /* No room for even one extension header: an old-style image that put
         * the backing file name right after the header. */
        if (end < start + 8)
                return 0;

        /* END is at most one cluster (2 MiB), so this fits in memory. */
        size = (size_t) (end - start);
        avail = start >= file_size ? 0 : (size_t) (file_size - start < size ? file_size - start : size);
        area = calloc(1, size);
        if (!area)
                return vp_err(err, -ENOMEM, "cannot check image '%s': out of memory", label);
        n = pread_full(fd, area, avail, start);
        if (n < 0)
                return vp_err(err, (int) n, "cannot read image '%s': %s", label, strerror((int) -n));
        avail = (size_t) n;

        for (;;) {
                uint32_t type, len;

                /* pos <= size <= 2 MiB: these sums cannot wrap. */
                if (pos + 8 > size)
                        return vp_err(err, -EINVAL,
                                      "image '%s' has malformed header extensions: no end marker",
                                      label);
                if (pos + 8 > avail)
                        return truncated(label, err);
                type = be32(area + pos);
                len = be32(area + pos + 4);
                if (type == EXT_END)
                        return 0;
                if (len > size - pos - 8)
                        return vp_err(err, -EINVAL,
                                      "image '%s' has a malformed header extension 0x%08" PRIx32
                                      ": its length %" PRIu32 " runs past the header cluster",
                                      label, type, len);
                if (len > avail - pos - 8)
                        return truncated(label, err);

                const uint8_t *data = area + pos + 8;
                switch (type) {
                case EXT_BACKING_FORMAT:
                        if (seen_format)
                                return vp_err(err, -EINVAL,
                                              "image '%s' names its backing format twice", label);
                        seen_format = true;
                        if (len == 0 ||
                            !copy_name(info->backing_format, sizeof(info->backing_format), data, len))
                                return vp_err(err, -EINVAL,
                                              "image '%s' has an invalid backing format name "
                                              "(%" PRIu32 " bytes)",
                                              label, len);
                        break;
                case EXT_DATA_FILE:
                        if (seen_data_file)
                                return vp_err(err, -EINVAL,
                                              "image '%s' names its external data file twice",
                                              label);
                        seen_data_file = true;
                        if (len == 0 || !copy_name(info->data_file, sizeof(info->data_file), data, len))
                                return vp_err(err, -EINVAL,
                                              "image '%s' has an invalid external data file name "
                                              "(%" PRIu32 " bytes)",
                                              label, len);
                        info->has_data_file = true;
                        break;
                case EXT_FDE:
                        return vp_err(err, -EINVAL,
                                      "image '%s' is encrypted, which is not supported", label);
                case EXT_FEATURE_TABLE:
                case EXT_BITMAPS:
                default:
                        /* Informational, or guarded by autoclear feature bits:
                         * safe to ignore. */
                        break;
                }
                /* Padding to 8 bytes may overshoot SIZE; the length check at the
                 * top of the loop then reports the missing end marker. */
                pos += 8 + (((size_t) len + 7) & ~(size_t) 7);
                if (pos > size)
                        pos = size;
        }
}

/* A table of BYTES bytes at OFFSET: cluster aligned, clear of the header
 * cluster (when not empty), and inside the file. */
static int check_table(const char *label, const char *what, uint64_t offset, uint64_t bytes,
                       uint64_t cluster_size, uint64_t file_size, struct vp_error *err)
{
        if (offset & (cluster_size - 1))
                return vp_err(err, -EINVAL, "image '%s' has an unaligned %s offset 0x%" PRIx64,
                              label, what, offset);
        if (bytes == 0)
                return 0;
        if (offset < cluster_size)
                return vp_err(err, -EINVAL, "image '%s' has its %s inside the header cluster",
                              label, what);
        if (offset >= file_size || bytes > file_size - offset)
                return vp_err(err, -EINVAL,
                              "image '%s' has its %s past the end of the file "
                              "(offset 0x%" PRIx64 ", file size %" PRIu64 ")",
                              label, what, offset, file_size);
        return 0;
}

/* The fields of a qcow2 header that the checks below look at. */
struct qcow2_header {
        uint32_t version;
        uint32_t cluster_bits;
        uint64_t cluster_size;
        uint64_t header_length;
        uint64_t incompat;
        uint32_t refcount_order;
        uint8_t compression_type;
        uint64_t size;
};

/* Version, cluster size and header length: what the rest is read with. */
static int read_header(const char *label, uint64_t file_size, const uint8_t *head, size_t head_len,
                       struct qcow2_header *h, struct vp_error *err)
{
        if (head_len < 8)
                return truncated(label, err);
        h->version = be32(head + OFF_VERSION);
        if (h->version != 2 && h->version != 3)
                return vp_err(err, -EINVAL, "image '%s' has unsupported qcow2 version %" PRIu32,
                              label, h->version);
        if (head_len < (h->version == 2 ? QCOW2_V2_HEADER_LEN : QCOW2_V3_HEADER_MIN))
                return truncated(label, err);

        h->cluster_bits = be32(head + OFF_CLUSTER_BITS);
        if (h->cluster_bits < MIN_CLUSTER_BITS || h->cluster_bits > MAX_CLUSTER_BITS)
                return vp_err(err, -EINVAL,
                              "image '%s' has an unsupported cluster size (cluster_bits %" PRIu32
                              ", must be %d to %d)",
                              label, h->cluster_bits, MIN_CLUSTER_BITS, MAX_CLUSTER_BITS);
        h->cluster_size = UINT64_C(1) << h->cluster_bits;

        h->refcount_order = 4;
        h->incompat = 0;
        h->compression_type = 0;
        if (h->version == 2) {
                h->header_length = QCOW2_V2_HEADER_LEN;
        } else {
                h->header_length = be32(head + OFF_HEADER_LENGTH);
                if (h->header_length < QCOW2_V3_HEADER_MIN || h->header_length > h->cluster_size)
                        return vp_err(err, -EINVAL,
                                      "image '%s' has an invalid header length %" PRIu64, label,
                                      h->header_length);
                if (h->header_length > file_size)
                        return truncated(label, err);
                h->incompat = be64(head + OFF_INCOMPAT);
                h->refcount_order = be32(head + OFF_REFCOUNT_ORDER);
                if (h->header_length > OFF_COMPRESSION_TYPE)
                        h->compression_type = head[OFF_COMPRESSION_TYPE];
        }
        h->size = be64(head + OFF_SIZE);
        return 0;
}

/* Encryption, feature bits, compression, refcount order, virtual size:
 * anything vpool cannot vouch for is refused. */
static int check_features(const char *label, const uint8_t *head, const struct qcow2_header *h,
                          struct vp_image_info *info, struct vp_error *err)
{
        if (be32(head + OFF_CRYPT_METHOD) != 0)
                return vp_err(err, -EINVAL, "image '%s' is encrypted, which is not supported",
                              label);

        if (h->incompat & ~INCOMPAT_KNOWN)
                return vp_err(err, -EINVAL,
                              "image '%s' uses unknown incompatible features (0x%" PRIx64 ")",
                              label, h->incompat & ~INCOMPAT_KNOWN);
        if (h->incompat & INCOMPAT_CORRUPT)
                return vp_err(err, -EINVAL, "image '%s' is marked corrupt; check it with "
                              "'qemu-img check'", label);
        if (h->incompat & INCOMPAT_DATA_FILE)
                info->has_data_file = true;
        if (h->compression_type > 1)
                return vp_err(err, -EINVAL, "image '%s' has unknown compression type %u", label,
                              h->compression_type);
        if ((h->compression_type != 0) != ((h->incompat & INCOMPAT_COMPRESSION) != 0))
                return vp_err(err, -EINVAL,
                              "image '%s' has a compression type that does not match its "
                              "feature bits",
                              label);
        if ((h->incompat & INCOMPAT_EXTL2) && h->cluster_bits < 14)
                return vp_err(err, -EINVAL,
                              "image '%s' uses extended L2 entries with clusters smaller than 16 KiB",
                              label);
        if (h->refcount_order > 6)
                return vp_err(err, -EINVAL, "image '%s' has an invalid refcount order %" PRIu32,
                              label, h->refcount_order);
        if (h->size == 0 || h->size > MAX_VIRTUAL_SIZE)
                return vp_err(err, -EINVAL, "image '%s' has an impossible virtual size %" PRIu64,
                              label, h->size);
        return 0;
}

/* The L1, refcount and snapshot tables lie inside the file, aligned, clear
 * of the header, and of sane sizes. */
static int check_tables(const char *label, uint64_t file_size, const uint8_t *head,
                        const struct qcow2_header *h, struct vp_error *err)
{
        int r;
        /* L1 table: big enough to map SIZE, small enough to be sane. */
        uint32_t l1_size = be32(head + OFF_L1_SIZE);
        uint64_t l1_offset = be64(head + OFF_L1_OFFSET);
        if ((uint64_t) l1_size * 8 > MAX_L1_BYTES)
                return vp_err(err, -EINVAL, "image '%s' has an L1 table that is too large", label);
        unsigned l2_bits = h->cluster_bits - ((h->incompat & INCOMPAT_EXTL2) ? 4 : 3);
        unsigned shift = h->cluster_bits + l2_bits;
        uint64_t need = (h->size + (UINT64_C(1) << shift) - 1) >> shift;
        if (l1_size < need)
                return vp_err(err, -EINVAL,
                              "image '%s' has an L1 table too small for its virtual size",
                              label);
        r = check_table(label, "L1 table", l1_offset, (uint64_t) l1_size * 8, h->cluster_size,
                        file_size, err);
        if (r < 0)
                return r;

        uint32_t rt_clusters = be32(head + OFF_REFCOUNT_CLUSTERS);
        uint64_t rt_offset = be64(head + OFF_REFCOUNT_OFFSET);
        if (rt_clusters == 0 || (uint64_t) rt_clusters * h->cluster_size > MAX_REFTABLE_BYTES)
                return vp_err(err, -EINVAL,
                              "image '%s' has an invalid refcount table size (%" PRIu32 " clusters)",
                              label, rt_clusters);
        r = check_table(label, "refcount table", rt_offset, (uint64_t) rt_clusters * h->cluster_size,
                        h->cluster_size, file_size, err);
        if (r < 0)
                return r;

        /* Snapshot entries vary in size; check the least they can take. */
        uint32_t nb_snapshots = be32(head + OFF_NB_SNAPSHOTS);
        uint64_t snap_offset = be64(head + OFF_SNAPSHOTS_OFFSET);
        if (nb_snapshots > MAX_SNAPSHOTS)
                return vp_err(err, -EINVAL, "image '%s' has too many snapshots (%" PRIu32 ")",
                              label, nb_snapshots);
        return check_table(label, "snapshot table", snap_offset,
                           (uint64_t) nb_snapshots * SNAPSHOT_ENTRY_MIN, h->cluster_size, file_size, err);
}

/* The backing file name, which lives in the header cluster after the
 * header, into INFO; *RET_EXT_END is where the header extensions must end. */
static int read_backing_name(int fd, const char *label, uint64_t file_size, const uint8_t *head,
                             const struct qcow2_header *h, struct vp_image_info *info,
                             uint64_t *ret_ext_end, struct vp_error *err)
{
        uint64_t backing_offset = be64(head + OFF_BACKING_OFFSET);
        uint32_t backing_size = be32(head + OFF_BACKING_SIZE);
        if (backing_offset == 0) {
                *ret_ext_end = h->cluster_size;
                return 0;
        }
        if (backing_size > MAX_BACKING_NAME)
                return vp_err(err, -EINVAL,
                              "image '%s' has a backing file name that is too long "
                              "(%" PRIu32 " bytes, at most %d)",
                              label, backing_size, MAX_BACKING_NAME);
        if (backing_offset < h->header_length || backing_offset > h->cluster_size ||
            backing_size > h->cluster_size - backing_offset)
                return vp_err(err, -EINVAL,
                              "image '%s' has its backing file name outside the header "
                              "(offset %" PRIu64 ")",
                              label, backing_offset);
        if (backing_size > 0) {
                uint8_t name[MAX_BACKING_NAME];
                if (backing_offset + backing_size > file_size)
                        return truncated(label, err);
                ssize_t n = pread_full(fd, name, backing_size, backing_offset);
                if (n < 0)
                        return vp_err(err, (int) n, "cannot read image '%s': %s", label,
                                      strerror((int) -n));
                if ((size_t) n < backing_size)
                        return truncated(label, err);
                if (!copy_name(info->backing_file, sizeof(info->backing_file), name, backing_size))
                        return vp_err(err, -EINVAL,
                                      "image '%s' has a NUL byte in its backing file name",
                                      label);
        }
        *ret_ext_end = backing_offset;
        return 0;
}

static int probe_qcow2(int fd, const char *label, uint64_t file_size, const uint8_t *head,
                       size_t head_len, struct vp_image_info *info, struct vp_error *err)
{
        struct qcow2_header h = { 0 };
        uint64_t ext_end = 0;
        int r;
        if ((r = read_header(label, file_size, head, head_len, &h, err)) < 0 ||
            (r = check_features(label, head, &h, info, err)) < 0 ||
            (r = check_tables(label, file_size, head, &h, err)) < 0 ||
            (r = read_backing_name(fd, label, file_size, head, &h, info, &ext_end, err)) < 0 ||
            (r = parse_extensions(fd, label, file_size, h.header_length, ext_end, info, err)) < 0)
                return r;
        info->format = VP_FORMAT_QCOW2;
        info->virtual_size = h.size;
        info->qcow2_version = h.version;
        info->cluster_bits = h.cluster_bits;
        return 0;
}

int vp_image_probe(int fd, const char *label, enum vp_image_format declared,
                   struct vp_image_info *ret, struct vp_error *err)
{
        _cleanup_free_ struct vp_image_info *info = NULL;
        uint8_t head[HEAD_LEN];
        char shown[256];
        const char *other;
        struct stat st;
        bool is_qcow2;
        ssize_t n;
        int r;

        /* The label may be a user-given path: keep messages one clean line. */
        label = vp_printable(label ? label : "(unnamed)", shown, sizeof(shown));
        if (fstat(fd, &st) < 0) {
                r = -errno;
                return vp_err(err, r, "cannot stat image '%s': %s", label, strerror(-r));
        }
        if (!S_ISREG(st.st_mode))
                return vp_err(err, -EINVAL, "image '%s' is not a regular file", label);
        if (st.st_size <= 0)
                return vp_err(err, -EINVAL, "image '%s' is empty", label);

        n = pread_full(fd, head, sizeof(head), 0);
        if (n < 0)
                return vp_err(err, (int) n, "cannot read image '%s': %s", label, strerror((int) -n));
        if (n == 0)
                return vp_err(err, -EINVAL, "image '%s' is empty", label);

        is_qcow2 = n >= 4 && memcmp(head, QCOW2_MAGIC, 4) == 0;
        other = match_other_magic(head, (size_t) n);

        info = vp_xcalloc(1, sizeof(*info));
        info->file_size = (uint64_t) st.st_size;

        switch (declared) {
        case VP_FORMAT_RAW:
                if (is_qcow2)
                        return vp_err(err, -EINVAL,
                                      "image '%s' is not a raw image: it starts with a qcow2 header",
                                      label);
                if (other)
                        return vp_err(err, -EINVAL,
                                      "image '%s' is not a raw image: it starts with a %s header",
                                      label, other);
                break;
        case VP_FORMAT_QCOW2:
                if (!is_qcow2)
                        return vp_err(err, -EINVAL, "'%s' is not a qcow2 image", label);
                break;
        case VP_FORMAT_UNKNOWN:
        default:
                if (!is_qcow2 && other)
                        return vp_err(err, -EINVAL,
                                      "image '%s' is in %s format, which is not supported",
                                      label, other);
                break;
        }

        if (is_qcow2) {
                r = probe_qcow2(fd, label, info->file_size, head, (size_t) n, info, err);
                if (r < 0)
                        return r;
        } else {
                info->format = VP_FORMAT_RAW;
                info->virtual_size = info->file_size;
        }

        *ret = *info;
        return 0;
}

int vp_image_check_master(const struct vp_image_info *info, const char *label,
                          struct vp_error *err)
{
        char shown[256], lbl[256];

        label = vp_printable(label ? label : "(unnamed)", lbl, sizeof(lbl));
        if (info->format != VP_FORMAT_RAW && info->format != VP_FORMAT_QCOW2)
                return vp_err(err, -EINVAL, "image '%s' has an unknown format", label);
        if (info->backing_file[0])
                return vp_err(err, -EINVAL,
                              "image '%s' has a backing file '%s'; a master image must stand alone",
                              label, vp_printable(info->backing_file, shown, sizeof(shown)));
        if (info->has_data_file) {
                if (info->data_file[0])
                        return vp_err(err, -EINVAL,
                                      "image '%s' has an external data file '%s'; a master image "
                                      "must stand alone",
                                      label, vp_printable(info->data_file, shown, sizeof(shown)));
                return vp_err(err, -EINVAL,
                              "image '%s' has an external data file; a master image must stand alone",
                              label);
        }
        return 0;
}

int vp_image_check_overlay(const struct vp_image_info *info, const char *label,
                           const char *master_path, const char *master_format,
                           struct vp_error *err)
{
        char shown[256], want[256], lbl[256];

        label = vp_printable(label ? label : "(unnamed)", lbl, sizeof(lbl));
        if (!master_path || master_path[0] != '/' || !master_format || !master_format[0])
                return vp_err(err, -EINVAL,
                              "cannot check image '%s': the master needs an absolute path and a format",
                              label);
        if (info->format != VP_FORMAT_QCOW2)
                return vp_err(err, -EINVAL, "overlay '%s' is a %s image, not qcow2", label,
                              vp_format_to_string(info->format));
        if (info->has_data_file)
                return vp_err(err, -EINVAL, "overlay '%s' has an external data file", label);
        if (!info->backing_file[0])
                return vp_err(err, -EINVAL, "overlay '%s' has no backing file; expected '%s'",
                              label, vp_printable(master_path, want, sizeof(want)));
        if (!streq(info->backing_file, master_path))
                return vp_err(err, -EINVAL, "overlay '%s' has backing file '%s'; expected '%s'",
                              label, vp_printable(info->backing_file, shown, sizeof(shown)),
                              vp_printable(master_path, want, sizeof(want)));
        if (!info->backing_format[0])
                return vp_err(err, -EINVAL,
                              "overlay '%s' does not record the format of its backing file; "
                              "expected '%s'",
                              label, vp_printable(master_format, want, sizeof(want)));
        if (!streq(info->backing_format, master_format))
                return vp_err(err, -EINVAL, "overlay '%s' has backing format '%s'; expected '%s'",
                              label, vp_printable(info->backing_format, shown, sizeof(shown)),
                              vp_printable(master_format, want, sizeof(want)));
        return 0;
}

/* ---- creating an empty image -------------------------------------------- */

#define NEW_CLUSTER_BITS 16
#define NEW_CLUSTER ((uint64_t) 1 << NEW_CLUSTER_BITS)
#define NEW_HEADER_LEN 112

static void put_be32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t) (v >> 24);
        p[1] = (uint8_t) (v >> 16);
        p[2] = (uint8_t) (v >> 8);
        p[3] = (uint8_t) v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
        put_be32(p, (uint32_t) (v >> 32));
        put_be32(p + 4, (uint32_t) v);
}

/* The header cluster's used part into HEAD (NEW_CLUSTER bytes, zeroed):
 * a v3 header, the backing format extension when there is a backing file,
 * the end marker, then the backing file's name. Returns its length. */
static size_t new_header(uint8_t *head, uint64_t size, uint64_t l1_size, const char *backing,
                         const char *backing_format)
{
        memcpy(head, QCOW2_MAGIC, 4);
        put_be32(head + OFF_VERSION, 3);
        put_be32(head + OFF_CLUSTER_BITS, NEW_CLUSTER_BITS);
        put_be64(head + OFF_SIZE, size);
        put_be32(head + OFF_L1_SIZE, (uint32_t) l1_size);
        put_be64(head + OFF_L1_OFFSET, 3 * NEW_CLUSTER);
        put_be64(head + OFF_REFCOUNT_OFFSET, NEW_CLUSTER);
        put_be32(head + OFF_REFCOUNT_CLUSTERS, 1);
        put_be32(head + OFF_REFCOUNT_ORDER, 4);
        put_be32(head + OFF_HEADER_LENGTH, NEW_HEADER_LEN);
        size_t pos = NEW_HEADER_LEN;
        if (!backing)
                return pos + 8;
        size_t flen = strlen(backing_format);
        put_be32(head + pos, EXT_BACKING_FORMAT);
        put_be32(head + pos + 4, (uint32_t) flen);
        memcpy(head + pos + 8, backing_format, flen);
        pos += 8 + ((flen + 7) & ~(size_t) 7);
        pos += 8; /* EXT_END, zeroed */
        size_t blen = strlen(backing);
        put_be64(head + OFF_BACKING_OFFSET, pos);
        put_be32(head + OFF_BACKING_SIZE, (uint32_t) blen);
        memcpy(head + pos, backing, blen);
        return pos + blen;
}

static int pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
        const uint8_t *p = buf;
        while (len > 0) {
                ssize_t n = pwrite(fd, p, len, off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? -errno : -EIO;
                p += n;
                len -= (size_t) n;
                off += n;
        }
        return 0;
}

/* The layout qemu-img create gives an empty image: header cluster,
 * refcount table, one refcount block, then the L1 table, where the file
 * ends. Every cluster before the L1 table's end has refcount 1. */
static int write_new(int fd, uint64_t size, const char *backing, const char *backing_format)
{
        uint64_t per_l1 = NEW_CLUSTER * (NEW_CLUSTER / 8);
        uint64_t l1_size = size / per_l1 + (size % per_l1 != 0);
        uint64_t l1_clusters = (l1_size * 8 + NEW_CLUSTER - 1) / NEW_CLUSTER;
        uint64_t used = 3 + l1_clusters;
        _cleanup_free_ uint8_t *buf = vp_xcalloc(1, NEW_CLUSTER);
        int r = pwrite_all(fd, buf, new_header(buf, size, l1_size, backing, backing_format), 0);
        if (r < 0)
                return r;
        uint8_t reftable[8];
        put_be64(reftable, 2 * NEW_CLUSTER);
        if ((r = pwrite_all(fd, reftable, sizeof(reftable), (off_t) NEW_CLUSTER)) < 0)
                return r;
        memset(buf, 0, NEW_CLUSTER);
        for (uint64_t i = 0; i < used; i++)
                buf[2 * i + 1] = 1;
        if ((r = pwrite_all(fd, buf, (size_t) used * 2, (off_t) (2 * NEW_CLUSTER))) < 0)
                return r;
        if (ftruncate(fd, (off_t) (3 * NEW_CLUSTER + l1_size * 8)) < 0)
                return -errno;
        return 0;
}

int vp_qcow2_create(int dirfd, const char *name, const char *label, uint64_t size, const char *backing,
                    const char *backing_format, struct vp_error *err)
{
        char lbl[256];
        label = vp_printable(label, lbl, sizeof(lbl));
        if (size == 0 || size > MAX_VIRTUAL_SIZE)
                return vp_err(err, -EINVAL, "cannot create '%s': a virtual size of %" PRIu64 " bytes is "
                              "impossible", label, size);
        if (backing && (backing[0] != '/' || strlen(backing) > MAX_BACKING_NAME || !backing_format ||
                        !backing_format[0] || strlen(backing_format) > 16))
                return vp_err(err, -EINVAL, "cannot create '%s': the backing file needs an absolute name "
                              "of at most %d bytes and a format", label, MAX_BACKING_NAME);
        int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd < 0)
                return vp_err(err, -errno, "cannot create '%s': %s", label, strerror(errno));
        int r = write_new(fd, size, backing, backing_format);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        close(fd);
        if (r < 0) {
                unlinkat(dirfd, name, 0);
                return vp_err(err, r, "cannot write '%s': %s", label, strerror(-r));
        }
        return 0;
}
