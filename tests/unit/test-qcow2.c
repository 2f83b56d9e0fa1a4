#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qcow2.h"
#include "runcmd.h"

/* Images are built here byte by byte, so every hostile field is spelled
 * out in the test that uses it. Offsets per QEMU's docs/interop/qcow2.txt. */

#define MiB (UINT64_C(1) << 20)
#define LABEL "x.qcow2"
#define MASTER "/srv/vpool/masters/base.qcow2"

struct img {
        uint8_t *buf;
        size_t len;
        unsigned cluster_bits;
        uint32_t version;
};

static void put32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t) (v >> 24);
        p[1] = (uint8_t) (v >> 16);
        p[2] = (uint8_t) (v >> 8);
        p[3] = (uint8_t) v;
}

static void put64(uint8_t *p, uint64_t v)
{
        put32(p, (uint32_t) (v >> 32));
        put32(p + 4, (uint32_t) v);
}

static uint64_t get64(const uint8_t *p)
{
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
                v = v << 8 | p[i];
        return v;
}

/* The layout qemu-img create uses: header cluster, refcount table,
 * refcount block, L1 table; the file ends with the L1 table. */
static void img_init(struct img *im, uint32_t version, unsigned cluster_bits, uint64_t size)
{
        uint64_t cs = UINT64_C(1) << cluster_bits;
        uint64_t per_l1 = cs * (cs / 8);
        uint64_t l1_size = (size + per_l1 - 1) / per_l1;
        uint8_t *h;

        im->cluster_bits = cluster_bits;
        im->version = version;
        im->len = (size_t) (3 * cs + l1_size * 8);
        im->buf = calloc(1, im->len);
        assert_non_null(im->buf);
        h = im->buf;

        memcpy(h, "QFI\xfb", 4);
        put32(h + 4, version);
        put64(h + 8, 0);                        /* backing_file_offset */
        put32(h + 16, 0);                       /* backing_file_size */
        put32(h + 20, cluster_bits);
        put64(h + 24, size);
        put32(h + 32, 0);                       /* crypt_method */
        put32(h + 36, (uint32_t) l1_size);
        put64(h + 40, 3 * cs);                  /* l1_table_offset */
        put64(h + 48, cs);                      /* refcount_table_offset */
        put32(h + 56, 1);                       /* refcount_table_clusters */
        put32(h + 60, 0);                       /* nb_snapshots */
        put64(h + 64, 0);                       /* snapshots_offset */
        if (version >= 3) {
                put64(h + 72, 0);               /* incompatible_features */
                put64(h + 80, 0);               /* compatible_features */
                put64(h + 88, 0);               /* autoclear_features */
                put32(h + 96, 4);               /* refcount_order */
                put32(h + 100, 112);            /* header_length */
                h[104] = 0;                     /* compression_type */
        }
        put64(h + cs, 2 * cs);                  /* refcount table -> block */
}

static void img_free(struct img *im)
{
        free(im->buf);
        im->buf = NULL;
}

static size_t ext_start(const struct img *im)
{
        return im->version == 2 ? 72 : 112;
}

/* Write one extension at POS; returns where the next one goes. The bytes
 * after it are zero, which reads as the end marker. */
static size_t img_ext(struct img *im, size_t pos, uint32_t type, const void *data, uint32_t len)
{
        size_t padded = ((size_t) len + 7) & ~(size_t) 7;

        assert_true(pos + 8 + padded <= im->len);
        put32(im->buf + pos, type);
        put32(im->buf + pos + 4, len);
        if (len)
                memcpy(im->buf + pos + 8, data, len);
        memset(im->buf + pos + 8 + len, 0, padded - len);
        return pos + 8 + padded;
}

/* Only the header fields: for lengths and offsets no name could fill. */
static void img_backing_fields(struct img *im, uint64_t offset, uint32_t len)
{
        put64(im->buf + 8, offset);
        put32(im->buf + 16, len);
}

static void img_backing_raw(struct img *im, uint64_t offset, const void *name, uint32_t len)
{
        img_backing_fields(im, offset, len);
        if (offset < im->len && len <= im->len - offset)
                memcpy(im->buf + offset, name, len);
}

static void img_backing(struct img *im, const char *name)
{
        img_backing_raw(im, 0x200, name, (uint32_t) strlen(name));
}

static void img_incompat(struct img *im, uint64_t bits)
{
        put64(im->buf + 72, bits);
}

static int memfd_with(const void *buf, size_t len)
{
        int fd = memfd_create("vp-test-img", MFD_CLOEXEC);
        const uint8_t *p = buf;

        assert_true(fd >= 0);
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                assert_true(n > 0);
                p += n;
                len -= (size_t) n;
        }
        return fd;
}

static int probe_buf(const void *buf, size_t len, enum vp_image_format declared,
                     struct vp_image_info *info, struct vp_error *err)
{
        int fd = memfd_with(buf, len);
        int r = vp_image_probe(fd, LABEL, declared, info, err);
        close(fd);
        return r;
}

static void expect_ok(const struct img *im, struct vp_image_info *info)
{
        struct vp_error err = { 0 };
        int r = probe_buf(im->buf, im->len, VP_FORMAT_QCOW2, info, &err);
        if (r != 0)
                fail_msg("probe refused a valid image: %s", err.msg);
        assert_int_equal(info->format, VP_FORMAT_QCOW2);
}

static void expect_refused_len(const void *buf, size_t len, enum vp_image_format declared,
                               const char *want)
{
        struct vp_error err = { 0 };
        struct vp_image_info info;
        int r;

        memset(&info, 0xa5, sizeof(info));
        r = probe_buf(buf, len, declared, &info, &err);
        if (r != -EINVAL)
                fail_msg("expected refusal containing \"%s\", got %d (%s)", want, r, err.msg);
        if (!strstr(err.msg, want))
                fail_msg("message \"%s\" lacks \"%s\"", err.msg, want);
        assert_int_equal(err.code, -EINVAL);
        /* *ret is untouched on failure. */
        assert_int_equal(info.cluster_bits, 0xa5a5a5a5);
}

static void expect_refused(const struct img *im, const char *want)
{
        expect_refused_len(im->buf, im->len, VP_FORMAT_QCOW2, want);
}

/* ------------------------------------------------------------------ */

static void test_valid_v3(void **state)
{
        (void) state;
        struct img im;
        struct vp_image_info info;
        struct vp_error err = { 0 };

        img_init(&im, 3, 16, 64 * MiB);
        expect_ok(&im, &info);
        assert_int_equal(info.qcow2_version, 3);
        assert_int_equal(info.cluster_bits, 16);
        assert_true(info.virtual_size == 64 * MiB);
        assert_true(info.file_size == im.len);
        assert_string_equal(info.backing_file, "");
        assert_string_equal(info.backing_format, "");
        assert_false(info.has_data_file);
        assert_int_equal(vp_image_check_master(&info, LABEL, &err), 0);

        /* Detection without a declared format finds qcow2 too. */
        assert_int_equal(probe_buf(im.buf, im.len, VP_FORMAT_UNKNOWN, &info, &err), 0);
        assert_int_equal(info.format, VP_FORMAT_QCOW2);
        img_free(&im);
}

static void test_valid_v2(void **state)
{
        (void) state;
        struct img im;
        struct vp_image_info info;

        img_init(&im, 2, 16, 64 * MiB);
        expect_ok(&im, &info);
        assert_int_equal(info.qcow2_version, 2);
        img_free(&im);
}

static void test_cluster_bits_bounds(void **state)
{
        (void) state;
        struct img im;
        struct vp_image_info info;

        img_init(&im, 3, 9, 64 * MiB);
        expect_ok(&im, &info);
        assert_int_equal(info.cluster_bits, 9);
        img_free(&im);

        img_init(&im, 3, 21, 64 * MiB);
        expect_ok(&im, &info);
        assert_int_equal(info.cluster_bits, 21);
        img_free(&im);

        img_init(&im, 3, 16, 64 * MiB);
        put32(im.buf + 20, 8);
        expect_refused(&im, "unsupported cluster size (cluster_bits 8");
        put32(im.buf + 20, 22);
        expect_refused(&im, "unsupported cluster size (cluster_bits 22");
        put32(im.buf + 20, 0xffffffff);
        expect_refused(&im, "unsupported cluster size");
        put32(im.buf + 20, 64);
        expect_refused(&im, "unsupported cluster size");
        img_free(&im);
}

static void test_backing_etc_shadow(void **state)
{
        (void) state;
        struct img im;
        struct vp_image_info info;
        struct vp_error err = { 0 };

        img_init(&im, 3, 16, 64 * MiB);
        img_backing(&im, "/etc/shadow");
        /* Parsed fine: the header is well formed ... */
        expect_ok(&im, &info);
        assert_string_equal(info.backing_file, "/etc/shadow");
        /* ... but policy refuses it as a master ... */
        assert_int_equal(vp_image_check_master(&info, LABEL, &err), -EINVAL);
        assert_string_equal(err.msg, "image 'x.qcow2' has a backing file '/etc/shadow'; "
                                     "a master image must stand alone");
        /* ... and as an overlay of anything else. */
        assert_int_equal(vp_image_check_overlay(&info, LABEL, MASTER, "qcow2", &err), -EINVAL);
        assert_non_null(strstr(err.msg, "'/etc/shadow'"));
        img_free(&im);
}

static void test_overlay_valid(void **state)
{
        (void) state;
        struct img im;
        struct vp_image_info info;
        struct vp_error err = { 0 };

        img_init(&im, 3, 16, 64 * MiB);
        img_ext(&im, ext_start(&im), 0xe2792aca, "qcow2", 5);
        img_backing(&im, MASTER);
        expect_ok(&im, &info);
        assert_string_equal(info.backing_file, MASTER);
        assert_string_equal(info.backing_format, "qcow2");
        assert_int_equal(vp_image_check_overlay(&info, LABEL, MASTER, "qcow2", &err), 0);
        assert_int_equal(vp_image_check_master(&info, LABEL, &err), -EINVAL);
        img_free(&im);
}

static void test_overlay_relative_backing(void **state)
{
        (void) state;
        struct img im;
        struct vp_image_info info;
        struct vp_error err = { 0 };

        img_init(&im, 3, 16, 64 * MiB);
        img_ext(&im, ext_start(&im), 0xe2792aca, "qcow2", 5);
        img_backing(&im, "../masters/base.qcow2");
        expect_ok(&im, &info);
        assert_int_equal(vp_image_check_overlay(&info, LABEL, MASTER, "qcow2", &err), -EINVAL);
        assert_string_equal(err.msg, "overlay 'x.qcow2' has backing file '../masters/base.qcow2'; "
                                     "expected '" MASTER "'");
        /* A prefix or a trailing-slash variant is not "exactly". */
        img_free(&im);
        img_init(&im, 3, 16, 64 * MiB);
        img_ext(&im, ext_start(&im), 0xe2792aca, "qcow2", 5);
        img_backing(&im, MASTER "/");
        expect_ok(&im, &info);
        assert_int_equal(vp_image_check_overlay(&info, LABEL, MASTER, "qcow2", &err), -EINVAL);
        img_free(&im);
}

static void test_overlay_backing_without_format(void **state)
{
        (void) state;
        struct img im;
        struct vp_image_info info;
        struct vp_error err = { 0 };

        img_init(&im, 3, 16, 64 * MiB);
        img_backing(&im, MASTER);
        expect_ok(&im, &info);
        assert_string_equal(info.backing_format, "");
        assert_int_equal(vp_image_check_overlay(&info, LABEL, MASTER, "qcow2", &err), -EINVAL);
        assert_non_null(strstr(err.msg, "does not record the format of its backing file"));
        img_free(&im);
}

static void test_overlay_wrong_format(void **state)
{
        (void) state;
        struct img im;
        struct vp_image_info info;
        struct vp_error err = { 0 };

        img_init(&im, 3, 16, 64 * MiB);
        img_ext(&im, ext_start(&im), 0xe2792aca, "raw", 3);
        img_backing(&im, MASTER);
        expect_ok(&im, &info);
        assert_int_equal(vp_image_check_overlay(&info, LABEL, MASTER, "qcow2", &err), -EINVAL);
        assert_string_equal(err.msg,
                            "overlay 'x.qcow2' has backing format 'raw'; expected 'qcow2'");
        img_free(&im);
}

static void test_overlay_no_backing_or_raw(void **state)
{
        (void) state;
        struct img im;
        struct vp_image_info info;
        struct vp_error err = { 0 };
        uint8_t zeros[4096] = { 0 };

        img_init(&im, 3, 16, 64 * MiB);
        expect_ok(&im, &info);
        assert_int_equal(vp_image_check_overlay(&info, LABEL, MASTER, "qcow2", &err), -EINVAL);
        assert_non_null(strstr(err.msg, "has no backing file"));
        img_free(&im);

        assert_int_equal(probe_buf(zeros, sizeof(zeros), VP_FORMAT_RAW, &info, &err), 0);
        assert_int_equal(vp_image_check_overlay(&info, LABEL, MASTER, "qcow2", &err), -EINVAL);
        assert_non_null(strstr(err.msg, "not qcow2"));
}

static void test_data_file_extension(void **state)
{
        (void) state;
        struct img im;
        struct vp_image_info info;
        struct vp_error err = { 0 };

        img_init(&im, 3, 16, 64 * MiB);
        img_ext(&im, ext_start(&im), 0x44415441, "/dev/sda", 8);
        expect_ok(&im, &info);
        assert_true(info.has_data_file);
        assert_string_equal(info.data_file, "/dev/sda");
        assert_int_equal(vp_image_check_master(&info, LABEL, &err), -EINVAL);
        assert_string_equal(err.msg, "image 'x.qcow2' has an external data file '/dev/sda'; "
                                     "a master image must stand alone");

        img_ext(&im, ext_start(&im), 0xe2792aca, "qcow2", 5);
        img_ext(&im, ext_start(&im) + 16, 0x44415441, "/dev/sda", 8);
        img_backing(&im, MASTER);
        expect_ok(&im, &info);
        assert_int_equal(vp_image_check_overlay(&info, LABEL, MASTER, "qcow2", &err), -EINVAL);
        assert_non_null(strstr(err.msg, "external data file"));
        img_free(&im);
}

static void test_data_file_feature_bit(void **state)
{
        (void) state;
        struct img im;
        struct vp_image_info info;
        struct vp_error err = { 0 };

        img_init(&im, 3, 16, 64 * MiB);
        img_incompat(&im, 1u << 2);
        expect_ok(&im, &info);
        assert_true(info.has_data_file);
        assert_string_equal(info.data_file, "");
        assert_int_equal(vp_image_check_master(&info, LABEL, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "has an external data file"));
        img_free(&im);
}

static void test_incompatible_bits(void **state)
{
        (void) state;
        struct img im;
        struct vp_image_info info;

        img_init(&im, 3, 16, 64 * MiB);

        img_incompat(&im, 1u << 0); /* dirty: allowed */
        expect_ok(&im, &info);
        img_incompat(&im, 1u << 4); /* extended L2: allowed */
        expect_ok(&im, &info);

        img_incompat(&im, 1u << 1);
        expect_refused(&im, "is marked corrupt");
        img_incompat(&im, 1u << 5);
        expect_refused(&im, "unknown incompatible features (0x20)");
        img_incompat(&im, UINT64_C(1) << 63);
        expect_refused(&im, "unknown incompatible features");
        img_incompat(&im, UINT64_MAX);
        expect_refused(&im, "unknown incompatible features");
        img_free(&im);

        /* Extended L2 needs clusters of at least 16 KiB. */
        img_init(&im, 3, 12, 64 * MiB);
        img_incompat(&im, 1u << 4);
        expect_refused(&im, "extended L2");
        img_free(&im);
}

static void test_compression_type(void **state)
{
        (void) state;
        struct img im;
        struct vp_image_info info;

        img_init(&im, 3, 16, 64 * MiB);
        im.buf[104] = 1; /* zstd, with its feature bit */
        img_incompat(&im, 1u << 3);
        expect_ok(&im, &info);

        img_incompat(&im, 0);
        expect_refused(&im, "compression type");
        im.buf[104] = 2;
        img_incompat(&im, 1u << 3);
        expect_refused(&im, "unknown compression type 2");
        im.buf[104] = 0;
        expect_refused(&im, "compression type");

        /* A header_length of 104 has no compression_type byte: zlib. */
        put32(im.buf + 100, 104);
        im.buf[104] = 0xff;
        img_incompat(&im, 0);
        expect_ok(&im, &info);
        img_free(&im);
}

static void test_encrypted(void **state)
{
        (void) state;
        struct img im;

        img_init(&im, 3, 16, 64 * MiB);
        put32(im.buf + 32, 1); /* AES */
        expect_refused(&im, "is encrypted");
        put32(im.buf + 32, 2); /* LUKS */
        expect_refused(&im, "is encrypted");
        put32(im.buf + 32, 0);
        uint8_t fde[16] = { 0 };
        img_ext(&im, ext_start(&im), 0x0537be77, fde, sizeof(fde));
        expect_refused(&im, "is encrypted");
        img_free(&im);
}

static void test_versions(void **state)
{
        (void) state;
        struct img im;

        img_init(&im, 3, 16, 64 * MiB);
        put32(im.buf + 4, 1);
        expect_refused(&im, "unsupported qcow2 version 1");
        put32(im.buf + 4, 4);
        expect_refused(&im, "unsupported qcow2 version 4");
        put32(im.buf + 4, 0);
        expect_refused(&im, "unsupported qcow2 version 0");
        img_free(&im);
}

static void test_truncated(void **state)
{
        (void) state;
        struct img im;

        img_init(&im, 3, 16, 64 * MiB);
        expect_refused_len(im.buf, 0, VP_FORMAT_QCOW2, "image 'x.qcow2' is empty");
        expect_refused_len(im.buf, 0, VP_FORMAT_RAW, "image 'x.qcow2' is empty");
        expect_refused_len(im.buf, 0, VP_FORMAT_UNKNOWN, "image 'x.qcow2' is empty");
        expect_refused_len(im.buf, 10, VP_FORMAT_QCOW2, "image 'x.qcow2' is truncated");
        expect_refused_len(im.buf, 71, VP_FORMAT_QCOW2, "image 'x.qcow2' is truncated");
        expect_refused_len(im.buf, 100, VP_FORMAT_QCOW2, "image 'x.qcow2' is truncated");
        /* Three bytes of magic are not the magic. */
        expect_refused_len(im.buf, 3, VP_FORMAT_QCOW2, "'x.qcow2' is not a qcow2 image");

        /* Every cut short of the full image is refused, never crashes. */
        for (size_t len = 1; len < im.len; len += (len < 4096 ? 1 : 4093)) {
                struct vp_image_info info;
                struct vp_error err = { 0 };
                assert_int_equal(probe_buf(im.buf, len, VP_FORMAT_QCOW2, &info, &err), -EINVAL);
        }
        /* The same image as v2 truncated right after its 72-byte header. */
        img_free(&im);
        img_init(&im, 2, 16, 64 * MiB);
        expect_refused_len(im.buf, 71, VP_FORMAT_QCOW2, "is truncated");
        img_free(&im);
}

static void test_virtual_size(void **state)
{
        (void) state;
        struct img im;

        img_init(&im, 3, 16, 64 * MiB);
        put64(im.buf + 24, 0);
        expect_refused(&im, "impossible virtual size 0");
        put64(im.buf + 24, (UINT64_C(1) << 50) + 1);
        expect_refused(&im, "impossible virtual size");
        put64(im.buf + 24, UINT64_MAX);
        expect_refused(&im, "impossible virtual size");
        /* 1 TiB needs 2 L1 entries with 64 KiB clusters; there is one. */
        put64(im.buf + 24, UINT64_C(1) << 40);
        expect_refused(&im, "L1 table too small");
        img_free(&im);
}

static void test_l1_table(void **state)
{
        (void) state;
        struct img im;

        img_init(&im, 3, 16, 64 * MiB);
        put64(im.buf + 40, 0x40000); /* past EOF (file ends at 0x30008) */
        expect_refused(&im, "L1 table past the end of the file");
        put64(im.buf + 40, UINT64_C(0xffffffffffff0000));
        expect_refused(&im, "L1 table past the end of the file");
        put64(im.buf + 40, 0x30200);
        expect_refused(&im, "unaligned L1 table offset");
        put64(im.buf + 40, 0);
        expect_refused(&im, "L1 table inside the header cluster");
        put64(im.buf + 40, 0x30000);
        put32(im.buf + 36, 2); /* second entry would be past EOF */
        expect_refused(&im, "L1 table past the end of the file");
        put32(im.buf + 36, 0x00400001); /* more than 32 MiB of L1 */
        expect_refused(&im, "L1 table that is too large");
        put32(im.buf + 36, 0xffffffff);
        expect_refused(&im, "L1 table that is too large");
        img_free(&im);
}

static void test_refcount_and_snapshot_tables(void **state)
{
        (void) state;
        struct img im;
        struct vp_image_info info;

        img_init(&im, 3, 16, 64 * MiB);
        put32(im.buf + 56, 0);
        expect_refused(&im, "invalid refcount table size");
        put32(im.buf + 56, 0xffffffff);
        expect_refused(&im, "invalid refcount table size");
        put32(im.buf + 56, 4); /* 4 clusters from 0x10000 run past EOF */
        expect_refused(&im, "refcount table past the end of the file");
        put32(im.buf + 56, 1);
        put64(im.buf + 48, 0x10008);
        expect_refused(&im, "unaligned refcount table offset");
        put64(im.buf + 48, 1ull << 62);
        expect_refused(&im, "refcount table past the end of the file");
        put64(im.buf + 48, 0x10000);
        put32(im.buf + 96, 7);
        expect_refused(&im, "refcount order");
        put32(im.buf + 96, 4);

        put32(im.buf + 60, 0x7fffffff);
        expect_refused(&im, "too many snapshots");
        put32(im.buf + 60, 1);
        put64(im.buf + 64, 0x100000);
        expect_refused(&im, "snapshot table past the end of the file");
        put64(im.buf + 64, 0x20000); /* refcount block cluster, but inside */
        expect_ok(&im, &info);
        put32(im.buf + 60, 0);
        put64(im.buf + 64, 0x123);
        expect_refused(&im, "unaligned snapshot table offset");
        img_free(&im);
}

static void test_header_length(void **state)
{
        (void) state;
        struct img im;

        img_init(&im, 3, 16, 64 * MiB);
        put32(im.buf + 100, 72);
        expect_refused(&im, "invalid header length 72");
        put32(im.buf + 100, 103);
        expect_refused(&im, "invalid header length");
        put32(im.buf + 100, 0x10008);
        expect_refused(&im, "invalid header length");
        put32(im.buf + 100, 0xffffffff);
        expect_refused(&im, "invalid header length");
        img_free(&im);
}

static void test_backing_name_hostile(void **state)
{
        (void) state;
        struct img im;
        struct vp_image_info info;
        char name[1100];

        memset(name, 'a', sizeof(name));
        name[0] = '/';

        img_init(&im, 3, 16, 64 * MiB);
        img_backing_raw(&im, 0x200, name, 1023);
        expect_ok(&im, &info);
        assert_int_equal(strlen(info.backing_file), 1023);

        img_backing_raw(&im, 0x200, name, 1024);
        expect_refused(&im, "backing file name that is too long (1024 bytes");
        img_backing_fields(&im, 0x200, 0xffffffff);
        expect_refused(&im, "too long");

        /* Offset past the end of the file and of the header cluster. */
        img_backing_fields(&im, 0x7fffffff00000000, 10);
        expect_refused(&im, "backing file name outside the header");
        img_backing_fields(&im, UINT64_MAX, 10);
        expect_refused(&im, "backing file name outside the header");
        /* Straddling the end of the header cluster. */
        img_backing_raw(&im, 0x10000 - 4, name, 10);
        expect_refused(&im, "backing file name outside the header");
        /* Overlapping the header fields. */
        img_backing_fields(&im, 8, 10);
        expect_refused(&im, "backing file name outside the header");

        /* A NUL inside the name. */
        img_backing_raw(&im, 0x200, "/etc\0/x", 7);
        expect_refused(&im, "NUL byte in its backing file name");

        /* Zero length means no backing file. */
        img_backing_raw(&im, 0x200, "", 0);
        expect_ok(&im, &info);
        assert_string_equal(info.backing_file, "");
        img_free(&im);

        /* Offset within the header cluster but the file stops short of it:
         * a tiny file of just the header (other checks off the table). */
        img_init(&im, 3, 16, 64 * MiB);
        img_backing_raw(&im, 0x200, "/m", 2);
        expect_refused_len(im.buf, 0x201, VP_FORMAT_QCOW2, "image 'x.qcow2'");
        img_free(&im);
}

static void test_extensions_hostile(void **state)
{
        (void) state;
        struct img im;
        struct vp_image_info info;
        size_t pos;
        char fmt[40];

        img_init(&im, 3, 16, 64 * MiB);

        /* Unknown and informational extensions are skipped. */
        pos = img_ext(&im, ext_start(&im), 0x12345678, "whatever", 8);
        pos = img_ext(&im, pos, 0x6803f857, "feature-table-bytes", 19);
        pos = img_ext(&im, pos, 0x23852875, "bitmaps", 7);
        img_ext(&im, pos, 0xe2792aca, "qcow2", 5);
        expect_ok(&im, &info);
        assert_string_equal(info.backing_format, "qcow2");

        /* Length running past the header cluster. */
        put32(im.buf + ext_start(&im) + 4, 0x10000);
        expect_refused(&im, "malformed header extension 0x12345678");
        put32(im.buf + ext_start(&im) + 4, 0xffffffff);
        expect_refused(&im, "malformed header extension");
        /* Exactly to the end of the cluster: no room left for the end marker. */
        put32(im.buf + ext_start(&im) + 4, 0x10000 - 112 - 8);
        expect_refused(&im, "no end marker");
        img_free(&im);

        /* A chain of extensions filling the whole cluster, no end marker. */
        img_init(&im, 3, 16, 64 * MiB);
        for (pos = ext_start(&im); pos + 8 <= 0x10000;)
                pos = img_ext(&im, pos, 0x11111111, NULL, 0);
        expect_refused(&im, "no end marker");
        img_free(&im);

        /* Backing format names: too long, empty, with NUL, twice. */
        img_init(&im, 3, 16, 64 * MiB);
        memset(fmt, 'q', sizeof(fmt));
        img_ext(&im, ext_start(&im), 0xe2792aca, fmt, 32);
        expect_refused(&im, "invalid backing format name (32 bytes)");
        img_ext(&im, ext_start(&im), 0xe2792aca, fmt, 31);
        expect_ok(&im, &info);
        img_ext(&im, ext_start(&im), 0xe2792aca, "", 0);
        expect_refused(&im, "invalid backing format name");
        img_ext(&im, ext_start(&im), 0xe2792aca, "qc\0w2", 5);
        expect_refused(&im, "invalid backing format name");
        pos = img_ext(&im, ext_start(&im), 0xe2792aca, "qcow2", 5);
        img_ext(&im, pos, 0xe2792aca, "raw", 3);
        expect_refused(&im, "backing format twice");
        img_free(&im);

        /* Data file names: too long, empty. */
        img_init(&im, 3, 16, 64 * MiB);
        {
                char longname[1032];
                memset(longname, 'd', sizeof(longname));
                img_ext(&im, ext_start(&im), 0x44415441, longname, 1024);
                expect_refused(&im, "invalid external data file name");
                img_ext(&im, ext_start(&im), 0x44415441, "", 0);
                expect_refused(&im, "invalid external data file name");
        }
        img_free(&im);

        /* Extensions end where the backing file name starts. */
        img_init(&im, 3, 16, 64 * MiB);
        img_ext(&im, ext_start(&im), 0x12345678, "0123456789abcdef", 16);
        img_backing_raw(&im, ext_start(&im) + 8, "/m", 2); /* inside that extension */
        expect_refused(&im, "header extension");
        img_free(&im);

        /* v2 images may carry extensions too, starting at byte 72. */
        img_init(&im, 2, 16, 64 * MiB);
        img_ext(&im, 72, 0xe2792aca, "qcow2", 5);
        img_backing(&im, MASTER);
        expect_ok(&im, &info);
        assert_string_equal(info.backing_format, "qcow2");
        img_free(&im);
}

static void test_raw(void **state)
{
        (void) state;
        struct vp_image_info info;
        struct vp_error err = { 0 };
        static uint8_t disk[1 << 16];
        struct img im;

        memset(disk, 0, sizeof(disk));
        memcpy(disk + 510, "\x55\xaa", 2);
        assert_int_equal(probe_buf(disk, sizeof(disk), VP_FORMAT_RAW, &info, &err), 0);
        assert_int_equal(info.format, VP_FORMAT_RAW);
        assert_true(info.virtual_size == sizeof(disk));
        assert_true(info.file_size == sizeof(disk));
        assert_int_equal(vp_image_check_master(&info, LABEL, &err), 0);
        assert_int_equal(probe_buf(disk, 1, VP_FORMAT_RAW, &info, &err), 0);
        assert_true(info.virtual_size == 1);
        assert_int_equal(probe_buf(disk, sizeof(disk), VP_FORMAT_UNKNOWN, &info, &err), 0);
        assert_int_equal(info.format, VP_FORMAT_RAW);

        /* A raw disk whose guest wrote a qcow2 header into it. */
        img_init(&im, 3, 16, 64 * MiB);
        img_backing(&im, "/etc/shadow");
        expect_refused_len(im.buf, im.len, VP_FORMAT_RAW,
                           "image 'x.qcow2' is not a raw image: it starts with a qcow2 header");
        /* Even a broken one. */
        expect_refused_len(im.buf, 4, VP_FORMAT_RAW, "is not a raw image");
        img_free(&im);

        static const struct {
                size_t off;
                const char *magic;
                size_t len;
                const char *fmt;
        } others[] = {
                { 0, "KDMV", 4, "vmdk" },
                { 0, "# Disk DescriptorFile", 21, "vmdk" },
                { 0, "vhdxfile", 8, "vhdx" },
                { 0, "conectix", 8, "vpc" },
                { 0x40, "\x7f\x10\xda\xbe", 4, "vdi" },
                { 0, "QED\0", 4, "qed" },
                { 0, "LUKS\xba\xbe", 6, "luks" },
        };
        for (size_t i = 0; i < ELEMENTSOF(others); i++) {
                char want[96];
                memset(disk, 0, 512);
                memcpy(disk + others[i].off, others[i].magic, others[i].len);
                snprintf(want, sizeof(want), "is not a raw image: it starts with a %s header",
                         others[i].fmt);
                expect_refused_len(disk, sizeof(disk), VP_FORMAT_RAW, want);
                expect_refused_len(disk, sizeof(disk), VP_FORMAT_UNKNOWN, "not supported");
                expect_refused_len(disk, sizeof(disk), VP_FORMAT_QCOW2, "is not a qcow2 image");
        }
}

static void test_label_escaped(void **state)
{
        (void) state;
        struct vp_image_info info;
        struct vp_error err = { 0 };
        uint8_t zeros[64] = { 0 };
        int fd = memfd_with(zeros, sizeof(zeros));

        assert_int_equal(vp_image_probe(fd, "evil\nname\x1b[2J", VP_FORMAT_QCOW2, &info, &err),
                         -EINVAL);
        assert_string_equal(err.msg, "'evil\\x0aname\\x1b[2J' is not a qcow2 image");
        close(fd);
}

static void test_declared_qcow2_without_magic(void **state)
{
        (void) state;
        uint8_t zeros[1024] = { 0 };

        expect_refused_len(zeros, sizeof(zeros), VP_FORMAT_QCOW2, "'x.qcow2' is not a qcow2 image");
}

static void test_not_regular_file(void **state)
{
        (void) state;
        struct vp_image_info info;
        struct vp_error err = { 0 };
        int fd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int p[2];

        assert_true(fd >= 0);
        assert_int_equal(vp_image_probe(fd, LABEL, VP_FORMAT_RAW, &info, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "is not a regular file"));
        close(fd);

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_int_equal(vp_image_probe(p[0], LABEL, VP_FORMAT_QCOW2, &info, &err), -EINVAL);
        close(p[0]);
        close(p[1]);

        assert_int_equal(vp_image_probe(-1, LABEL, VP_FORMAT_QCOW2, &info, &err), -EBADF);
}

/* Flip random bytes of the first cluster of valid images: the probe may
 * accept or refuse, but must never crash, read out of bounds, or return
 * something it did not check. */
static void test_mutations(void **state)
{
        (void) state;
        struct img im;
        uint64_t seed = 0x9e3779b97f4a7c15;

        img_init(&im, 3, 12, 64 * MiB);
        size_t pos = img_ext(&im, ext_start(&im), 0xe2792aca, "qcow2", 5);
        img_ext(&im, pos, 0x44415441, "data", 4);
        img_backing_raw(&im, 0x300, MASTER, (uint32_t) strlen(MASTER));
        uint8_t *orig = malloc(im.len);
        assert_non_null(orig);
        memcpy(orig, im.buf, im.len);

        for (int iter = 0; iter < 20000; iter++) {
                struct vp_image_info info;
                struct vp_error err = { 0 };
                memcpy(im.buf, orig, im.len);
                int flips = 1 + iter % 4;
                for (int f = 0; f < flips; f++) {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        size_t at = (size_t) (seed % 0x400);
                        im.buf[at] = (uint8_t) (seed >> 32);
                }
                size_t len = iter % 7 == 0 ? (size_t) (seed >> 40) % im.len : im.len;
                int r = probe_buf(im.buf, len, VP_FORMAT_UNKNOWN, &info, &err);
                if (r == 0 && info.format == VP_FORMAT_QCOW2) {
                        assert_true(info.cluster_bits >= 9 && info.cluster_bits <= 21);
                        assert_true(info.virtual_size > 0);
                        assert_true(strlen(info.backing_file) < sizeof(info.backing_file));
                        assert_true(strlen(info.backing_format) < sizeof(info.backing_format));
                        assert_true(get64(im.buf + 40) + 8 <= len);
                } else if (r != 0) {
                        assert_int_equal(r, -EINVAL);
                        assert_true(err.msg[0] != '\0');
                }
        }
        free(orig);
        img_free(&im);
}

/* ------------------------------------------------------------------ */
/* Real images from qemu-img, created through vp_spawn. */

struct tmpdir {
        char path[64];
};

static int tmp_setup(void **state)
{
        struct tmpdir *t = calloc(1, sizeof(*t));
        if (!t)
                return -1;
        strcpy(t->path, "/tmp/vp-test-qcow2-XXXXXX");
        if (!mkdtemp(t->path))
                return -1;
        *state = t;
        return 0;
}

static int tmp_teardown(void **state)
{
        struct tmpdir *t = *state;
        DIR *d = opendir(t->path);
        struct dirent *de;

        /* Flat directory of images made by the test. */
        while (d && (de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        unlinkat(dirfd(d), de->d_name, 0);
        if (d)
                closedir(d);
        rmdir(t->path);
        free(t);
        return 0;
}

/* cmocka's skip() prints "not ok # SKIP", which Meson's TAP parser counts
 * as a failure; so a missing qemu-img is noted and the test ends early. */
static bool have_qemu_img(void)
{
        const char *const argv[] = { "qemu-img", "--version", NULL };
        struct vp_error err = { 0 };

        if (vp_spawn(argv, &err) == 0)
                return true;
        print_message("# qemu-img not usable (%s): real images not tested\n", err.msg);
        return false;
}

static void qemu_img(const char *const argv[])
{
        struct vp_error err = { 0 };
        if (vp_spawn(argv, &err) < 0)
                fail_msg("%s", err.msg);
}

static int probe_path(const char *path, enum vp_image_format declared, struct vp_image_info *info,
                      struct vp_error *err)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        assert_true(fd >= 0);
        int r = vp_image_probe(fd, path, declared, info, err);
        close(fd);
        return r;
}

static void test_qemu_img_images(void **state)
{
        struct tmpdir *t = *state;
        struct vp_image_info info;
        struct vp_error err = { 0 };
        char base[128], ov[128], raw[128], v2[128];

        if (!have_qemu_img())
                return;
        snprintf(base, sizeof(base), "%s/base.qcow2", t->path);
        snprintf(ov, sizeof(ov), "%s/ov.qcow2", t->path);
        snprintf(raw, sizeof(raw), "%s/disk.raw", t->path);
        snprintf(v2, sizeof(v2), "%s/v2.qcow2", t->path);

        qemu_img((const char *const[]) { "qemu-img", "create", "-q", "-f", "qcow2", base, "64M", NULL });
        assert_int_equal(probe_path(base, VP_FORMAT_QCOW2, &info, &err), 0);
        assert_int_equal(info.format, VP_FORMAT_QCOW2);
        assert_true(info.virtual_size == 64 * MiB);
        assert_int_equal(info.qcow2_version, 3);
        assert_int_equal(vp_image_check_master(&info, base, &err), 0);
        /* A qcow2 file declared raw is refused. */
        assert_int_equal(probe_path(base, VP_FORMAT_RAW, &info, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "is not a raw image"));

        qemu_img((const char *const[]) { "qemu-img", "create", "-q", "-f", "qcow2", "-b", base,
                                         "-F", "qcow2", ov, NULL });
        assert_int_equal(probe_path(ov, VP_FORMAT_QCOW2, &info, &err), 0);
        assert_string_equal(info.backing_file, base);
        assert_string_equal(info.backing_format, "qcow2");
        assert_int_equal(vp_image_check_overlay(&info, ov, base, "qcow2", &err), 0);
        assert_int_equal(vp_image_check_master(&info, ov, &err), -EINVAL);
        assert_int_equal(vp_image_check_overlay(&info, ov, "/elsewhere/base.qcow2", "qcow2", &err),
                         -EINVAL);

        qemu_img((const char *const[]) { "qemu-img", "create", "-q", "-f", "raw", raw, "1M", NULL });
        assert_int_equal(probe_path(raw, VP_FORMAT_RAW, &info, &err), 0);
        assert_int_equal(info.format, VP_FORMAT_RAW);
        assert_true(info.virtual_size == MiB);
        assert_int_equal(vp_image_check_master(&info, raw, &err), 0);
        assert_int_equal(probe_path(raw, VP_FORMAT_QCOW2, &info, &err), -EINVAL);

        qemu_img((const char *const[]) { "qemu-img", "create", "-q", "-f", "qcow2", "-o",
                                         "compat=0.10", v2, "1G", NULL });
        assert_int_equal(probe_path(v2, VP_FORMAT_QCOW2, &info, &err), 0);
        assert_int_equal(info.qcow2_version, 2);
        assert_true(info.virtual_size == 1024 * MiB);
}

/* stat's size of PATH. */
static off_t file_len(const char *path)
{
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        return st.st_size;
}

/* vp_qcow2_create's empty images, each against qemu-img's of the same
 * size: qemu-img check finds no error or leak, the two files have one
 * length and one content, and vpool's own probe reads the size back. */
static void test_own_images(void **state)
{
        struct tmpdir *t = *state;
        static const uint64_t sizes[] = { 512, 64 * MiB, 2048 * MiB + 1, UINT64_C(1) << 40 };
        struct vp_image_info info;
        struct vp_error err = { 0 };
        char ours[160], theirs[160], sz[32];

        if (!have_qemu_img())
                return;
        int dfd = open(t->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(dfd >= 0);
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                char name[32];
                snprintf(name, sizeof(name), "own%zu.qcow2", i);
                snprintf(ours, sizeof(ours), "%s/%s", t->path, name);
                snprintf(theirs, sizeof(theirs), "%s/theirs%zu.qcow2", t->path, i);
                snprintf(sz, sizeof(sz), "%" PRIu64, sizes[i]);
                assert_int_equal(vp_qcow2_create(dfd, name, ours, sizes[i], NULL, NULL, &err), 0);
                qemu_img((const char *const[]) { "qemu-img", "create", "-q", "-f", "qcow2", theirs, sz, NULL });
                qemu_img((const char *const[]) { "qemu-img", "check", "-q", ours, NULL });
                qemu_img((const char *const[]) { "qemu-img", "compare", "-q", "-f", "qcow2", "-F", "qcow2",
                                                 ours, theirs, NULL });
                assert_true(file_len(ours) == file_len(theirs));
                assert_int_equal(probe_path(ours, VP_FORMAT_QCOW2, &info, &err), 0);
                assert_true(info.virtual_size == sizes[i]);
                assert_int_equal(info.qcow2_version, 3);
                assert_int_equal(info.cluster_bits, 16);
                assert_int_equal(vp_image_check_master(&info, ours, &err), 0);
        }
        /* Sizes the probe would refuse are refused, nothing made. */
        assert_int_equal(vp_qcow2_create(dfd, "huge.qcow2", "huge.qcow2", (UINT64_C(1) << 50) + 1, NULL, NULL,
                                         &err), -EINVAL);
        assert_non_null(strstr(err.msg, "impossible"));
        assert_int_equal(vp_qcow2_create(dfd, "huge.qcow2", "huge.qcow2", 0, NULL, NULL, &err), -EINVAL);
        assert_int_equal(faccessat(dfd, "huge.qcow2", F_OK, 0), -1);
        close(dfd);
}

/* An overlay made by vp_qcow2_create reads as its master, takes writes
 * that qemu-img check then finds consistent, and passes the overlay
 * policy; a name taken or a relative backing name is refused. */
static void test_own_overlay(void **state)
{
        struct tmpdir *t = *state;
        struct vp_image_info info;
        struct vp_error err = { 0 };
        char base[128], ov[128];

        if (!have_qemu_img())
                return;
        snprintf(base, sizeof(base), "%s/base.qcow2", t->path);
        snprintf(ov, sizeof(ov), "%s/ov.qcow2", t->path);
        qemu_img((const char *const[]) { "qemu-img", "create", "-q", "-f", "qcow2", base, "64M", NULL });
        qemu_img((const char *const[]) { "qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 1M 256k", base, NULL });
        int dfd = open(t->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(dfd >= 0);
        assert_int_equal(vp_qcow2_create(dfd, "ov.qcow2", ov, 64 * MiB, base, "qcow2", &err), 0);
        assert_int_equal(probe_path(ov, VP_FORMAT_QCOW2, &info, &err), 0);
        assert_true(info.virtual_size == 64 * MiB);
        assert_int_equal(vp_image_check_overlay(&info, ov, base, "qcow2", &err), 0);
        qemu_img((const char *const[]) { "qemu-img", "check", "-q", ov, NULL });
        qemu_img((const char *const[]) { "qemu-img", "compare", "-q", "-f", "qcow2", "-F", "qcow2", ov, base,
                                         NULL });
        qemu_img((const char *const[]) { "qemu-io", "-f", "qcow2", "-c", "write -P 0xa5 0 128k", ov, NULL });
        qemu_img((const char *const[]) { "qemu-io", "-f", "qcow2", "-c", "read -P 0xa5 0 128k", ov, NULL });
        qemu_img((const char *const[]) { "qemu-io", "-f", "qcow2", "-c", "read -P 0x5a 1M 256k", ov, NULL });
        qemu_img((const char *const[]) { "qemu-img", "check", "-q", ov, NULL });

        assert_int_equal(vp_qcow2_create(dfd, "ov.qcow2", ov, 64 * MiB, base, "qcow2", &err), -EEXIST);
        assert_non_null(strstr(err.msg, "cannot create"));
        assert_int_equal(vp_qcow2_create(dfd, "rel.qcow2", "rel.qcow2", 64 * MiB, "base.qcow2", "qcow2", &err),
                         -EINVAL);
        assert_non_null(strstr(err.msg, "absolute name"));
        assert_int_equal(faccessat(dfd, "rel.qcow2", F_OK, 0), -1);
        close(dfd);
}

static void test_qemu_img_features(void **state)
{
        struct tmpdir *t = *state;
        struct vp_image_info info;
        struct vp_error err = { 0 };
        char data[128], bin[128], zstd[128], l2[128], opt[160];

        if (!have_qemu_img())
                return;
        snprintf(data, sizeof(data), "%s/data.qcow2", t->path);
        snprintf(bin, sizeof(bin), "%s/data.bin", t->path);
        snprintf(zstd, sizeof(zstd), "%s/zstd.qcow2", t->path);
        snprintf(l2, sizeof(l2), "%s/l2.qcow2", t->path);

        snprintf(opt, sizeof(opt), "data_file=%s", bin);
        qemu_img((const char *const[]) { "qemu-img", "create", "-q", "-f", "qcow2", "-o", opt, data,
                                         "16M", NULL });
        assert_int_equal(probe_path(data, VP_FORMAT_QCOW2, &info, &err), 0);
        assert_true(info.has_data_file);
        assert_string_equal(info.data_file, bin);
        assert_int_equal(vp_image_check_master(&info, data, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "external data file"));

        qemu_img((const char *const[]) { "qemu-img", "create", "-q", "-f", "qcow2", "-o",
                                         "extended_l2=on", l2, "1G", NULL });
        assert_int_equal(probe_path(l2, VP_FORMAT_QCOW2, &info, &err), 0);

        /* Layouts qemu-img makes with other options must all pass. */
        static const struct {
                const char *opts;
                const char *size;
        } variants[] = {
                { "cluster_size=512", "1G" },
                { "cluster_size=2M,refcount_bits=64,lazy_refcounts=on,extended_l2=on", "1T" },
                { "preallocation=metadata", "64M" },
                { "refcount_bits=1", "64M" },
                { "cluster_size=65536", "100T" },
                { "cluster_size=4096", "8T" }, /* L1 table at the 32 MiB limit */
        };
        for (size_t i = 0; i < ELEMENTSOF(variants); i++) {
                char path[128];
                snprintf(path, sizeof(path), "%s/variant-%zu.qcow2", t->path, i);
                qemu_img((const char *const[]) { "qemu-img", "create", "-q", "-f", "qcow2", "-o",
                                                 variants[i].opts, path, variants[i].size, NULL });
                if (probe_path(path, VP_FORMAT_QCOW2, &info, &err) != 0)
                        fail_msg("%s: %s", variants[i].opts, err.msg);
                assert_int_equal(vp_image_check_master(&info, path, &err), 0);
        }

        /* An internal snapshot fills in the snapshot table. */
        qemu_img((const char *const[]) { "qemu-img", "snapshot", "-c", "s1", l2, NULL });
        if (probe_path(l2, VP_FORMAT_QCOW2, &info, &err) != 0)
                fail_msg("%s", err.msg);

        /* zstd support is a build option of QEMU. */
        const char *const zargv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-o",
                                      "compression_type=zstd", zstd, "16M", NULL };
        if (vp_spawn(zargv, &err) == 0) {
                assert_int_equal(probe_path(zstd, VP_FORMAT_QCOW2, &info, &err), 0);
        }
}

static void test_spawn_messages(void **state)
{
        (void) state;
        struct vp_error err = { 0 };

        const char *const missing[] = { "vp-no-such-program-here", "x", NULL };
        assert_int_equal(vp_spawn(missing, &err), -ENOENT);
        assert_string_equal(err.msg, "vp-no-such-program-here: not found");

        const char *const ok[] = { "true", NULL };
        assert_int_equal(vp_spawn(ok, &err), 0);

        const char *const quiet_fail[] = { "false", NULL };
        assert_int_equal(vp_spawn(quiet_fail, &err), -EIO);
        assert_string_equal(err.msg, "false failed with exit code 1");

        /* Last non-empty stderr line; stdout is not captured; stdin is empty. */
        const char *const sh[] = { "sh", "-c",
                                   "echo out; echo first >&2; echo 'the \x1b reason' >&2; "
                                   "printf '\\n  \\n' >&2; read x && echo got >&2; exit 3",
                                   NULL };
        assert_int_equal(vp_spawn(sh, &err), -EIO);
        assert_string_equal(err.msg, "sh failed: the \\x1b reason");

        const char *const killed[] = { "sh", "-c", "kill -9 $$", NULL };
        assert_int_equal(vp_spawn(killed, &err), -EIO);
        assert_non_null(strstr(err.msg, "killed by signal 9"));

        /* Lots of stderr must neither block nor be kept whole. */
        const char *const chatty[] = { "sh", "-c",
                                       "i=0; while [ $i -lt 20000 ]; do echo line $i >&2; "
                                       "i=$((i+1)); done; echo last words >&2; exit 1",
                                       NULL };
        assert_int_equal(vp_spawn(chatty, &err), -EIO);
        assert_string_equal(err.msg, "sh failed: last words");

        const char *const none[] = { NULL };
        assert_int_equal(vp_spawn(none, &err), -EINVAL);
}

static void test_spawn_qemu_img_error(void **state)
{
        (void) state;
        struct vp_error err = { 0 };
        const char *const argv[] = { "qemu-img", "info", "/nonexistent/vp-test.qcow2", NULL };
        int r;

        if (!have_qemu_img())
                return;
        r = vp_spawn(argv, &err);
        assert_int_equal(r, -EIO);
        /* "qemu-img failed: Could not open ..." without a doubled prefix. */
        assert_non_null(strstr(err.msg, "qemu-img failed: "));
        assert_null(strstr(err.msg, "qemu-img failed: qemu-img:"));
        assert_non_null(strstr(err.msg, "/nonexistent/vp-test.qcow2"));
}

static void test_format_strings(void **state)
{
        (void) state;
        assert_string_equal(vp_format_to_string(VP_FORMAT_RAW), "raw");
        assert_string_equal(vp_format_to_string(VP_FORMAT_QCOW2), "qcow2");
        assert_string_equal(vp_format_to_string(VP_FORMAT_UNKNOWN), "unknown");
        assert_int_equal(vp_format_from_string("raw"), VP_FORMAT_RAW);
        assert_int_equal(vp_format_from_string("qcow2"), VP_FORMAT_QCOW2);
        assert_int_equal(vp_format_from_string("QCOW2"), VP_FORMAT_UNKNOWN);
        assert_int_equal(vp_format_from_string("vmdk"), VP_FORMAT_UNKNOWN);
        assert_int_equal(vp_format_from_string(""), VP_FORMAT_UNKNOWN);
        assert_int_equal(vp_format_from_string(NULL), VP_FORMAT_UNKNOWN);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid_v3),
                cmocka_unit_test(test_valid_v2),
                cmocka_unit_test(test_cluster_bits_bounds),
                cmocka_unit_test(test_backing_etc_shadow),
                cmocka_unit_test(test_overlay_valid),
                cmocka_unit_test(test_overlay_relative_backing),
                cmocka_unit_test(test_overlay_backing_without_format),
                cmocka_unit_test(test_overlay_wrong_format),
                cmocka_unit_test(test_overlay_no_backing_or_raw),
                cmocka_unit_test(test_data_file_extension),
                cmocka_unit_test(test_data_file_feature_bit),
                cmocka_unit_test(test_incompatible_bits),
                cmocka_unit_test(test_compression_type),
                cmocka_unit_test(test_encrypted),
                cmocka_unit_test(test_versions),
                cmocka_unit_test(test_truncated),
                cmocka_unit_test(test_virtual_size),
                cmocka_unit_test(test_l1_table),
                cmocka_unit_test(test_refcount_and_snapshot_tables),
                cmocka_unit_test(test_header_length),
                cmocka_unit_test(test_backing_name_hostile),
                cmocka_unit_test(test_extensions_hostile),
                cmocka_unit_test(test_raw),
                cmocka_unit_test(test_declared_qcow2_without_magic),
                cmocka_unit_test(test_label_escaped),
                cmocka_unit_test(test_not_regular_file),
                cmocka_unit_test(test_mutations),
                cmocka_unit_test_setup_teardown(test_qemu_img_images, tmp_setup, tmp_teardown),
                cmocka_unit_test_setup_teardown(test_qemu_img_features, tmp_setup, tmp_teardown),
                cmocka_unit_test_setup_teardown(test_own_images, tmp_setup, tmp_teardown),
                cmocka_unit_test_setup_teardown(test_own_overlay, tmp_setup, tmp_teardown),
                cmocka_unit_test(test_spawn_messages),
                cmocka_unit_test(test_spawn_qemu_img_error),
                cmocka_unit_test(test_format_strings),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
