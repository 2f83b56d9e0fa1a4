/* libFuzzer target for vpool's qcow2 header checks: every image that reaches
 * QEMU from shared storage went through vp_image_probe first, so any crash,
 * leak or undefined behaviour here is reachable by whoever can write there.
 *
 * Each input is the whole image file. It is probed as declared unknown, raw
 * and qcow2, then once more with the file extended by a sparse tail, so that
 * table offsets far past the input still land inside the file and the checks
 * behind them get exercised without megabyte-sized inputs. Beyond "does not
 * crash", the results must agree with one another and with the policies. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "qcow2.h"
#include "fuzz.h"

#define MASTER "/srv/images/m.qcow2"
/* Covers the largest L1 (32 MiB) and refcount tables (8 MiB) the probe
 * accepts at any offset a short input can name in its first clusters. */
#define SPARSE_TAIL (UINT64_C(64) << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int image_fd(void)
{
        static int fd = -1;

        if (fd < 0) {
                fd = memfd_create("fuzz-qcow2", MFD_CLOEXEC);
                require(fd >= 0);
        }
        return fd;
}

static void load(int fd, const uint8_t *data, size_t size, uint64_t file_size)
{
        size_t done = 0;

        require(ftruncate(fd, 0) == 0);
        while (done < size) {
                ssize_t n = pwrite(fd, data + done, size - done, (off_t) done);
                require(n > 0);
                done += (size_t) n;
        }
        require(ftruncate(fd, (off_t) file_size) == 0);
}

static bool terminated(const char *s, size_t cap)
{
        return memchr(s, '\0', cap) != NULL;
}

/* What a successful probe promises about *info. */
static void require_sane(const struct vp_image_info *info, uint64_t file_size)
{
        require(info->file_size == file_size);
        require(terminated(info->backing_file, sizeof(info->backing_file)));
        require(terminated(info->backing_format, sizeof(info->backing_format)));
        require(terminated(info->data_file, sizeof(info->data_file)));
        if (info->data_file[0])
                require(info->has_data_file);
        if (info->format == VP_FORMAT_RAW) {
                require(info->virtual_size == file_size);
                require(!info->backing_file[0] && !info->has_data_file);
                return;
        }
        require(info->format == VP_FORMAT_QCOW2);
        require(info->qcow2_version == 2 || info->qcow2_version == 3);
        require(info->cluster_bits >= 9 && info->cluster_bits <= 21);
        require(info->virtual_size > 0 && info->virtual_size <= (UINT64_C(1) << 50));
        /* A backing format without a backing file comes only from an
         * extension; the name itself never outlives the header cluster. */
        require(strlen(info->backing_file) < (size_t) 1 << info->cluster_bits);
}

static bool same_info(const struct vp_image_info *a, const struct vp_image_info *b)
{
        return a->format == b->format && a->file_size == b->file_size &&
               a->virtual_size == b->virtual_size && a->qcow2_version == b->qcow2_version &&
               a->cluster_bits == b->cluster_bits && streq(a->backing_file, b->backing_file) &&
               streq(a->backing_format, b->backing_format) && a->has_data_file == b->has_data_file &&
               streq(a->data_file, b->data_file);
}

static void check_policies(const struct vp_image_info *info)
{
        struct vp_error err = { 0 };
        int r;

        r = vp_image_check_master(info, "fuzz", &err);
        if (r < 0)
                require_clean_error(r, &err);
        require((r == 0) == (!info->backing_file[0] && !info->has_data_file));

        r = vp_image_check_overlay(info, "fuzz", MASTER, "qcow2", &err);
        if (r < 0)
                require_clean_error(r, &err);
        require((r == 0) == (info->format == VP_FORMAT_QCOW2 && !info->has_data_file &&
                             streq(info->backing_file, MASTER) &&
                             streq(info->backing_format, "qcow2")));

        /* Checked against its own backing file, an overlay passes exactly
         * when it is plain qcow2 that records its backing format. */
        if (info->backing_file[0] == '/') {
                const char *fmt = info->backing_format[0] ? info->backing_format : "raw";
                r = vp_image_check_overlay(info, "fuzz", info->backing_file, fmt, &err);
                if (r < 0)
                        require_clean_error(r, &err);
                require((r == 0) == (info->format == VP_FORMAT_QCOW2 && !info->has_data_file &&
                                     info->backing_format[0]));
        }
}

static int probe(int fd, enum vp_image_format declared, uint64_t file_size,
                 struct vp_image_info *info)
{
        struct vp_error err = { 0 };
        int r;

        memset(info, 0xa5, sizeof(*info));
        r = vp_image_probe(fd, "fuzz", declared, info, &err);
        if (r < 0) {
                require_clean_error(r, &err);
                return r;
        }
        require(r == 0);
        require_sane(info, file_size);
        if (declared != VP_FORMAT_UNKNOWN)
                require(info->format == declared);
        check_policies(info);
        return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct vp_image_info unknown, raw, qcow2, sparse;
        int fd = image_fd();
        int ru, rr, rq;

        load(fd, data, size, size);
        ru = probe(fd, VP_FORMAT_UNKNOWN, size, &unknown);
        rr = probe(fd, VP_FORMAT_RAW, size, &raw);
        rq = probe(fd, VP_FORMAT_QCOW2, size, &qcow2);

        /* Detection must agree with the declared-format paths: what is
         * detected as FORMAT probes the same when declared FORMAT, and a
         * format that is refused when declared is never detected. */
        if (ru == 0 && unknown.format == VP_FORMAT_RAW)
                require(rr == 0 && same_info(&unknown, &raw) && rq < 0);
        if (ru == 0 && unknown.format == VP_FORMAT_QCOW2)
                require(rq == 0 && same_info(&unknown, &qcow2) && rr < 0);
        if (rq == 0)
                require(ru == 0 && unknown.format == VP_FORMAT_QCOW2);
        require(rr < 0 || rq < 0);

        if (size >= 4 && memcmp(data, "QFI\xfb", 4) == 0) {
                load(fd, data, size, size + SPARSE_TAIL);
                probe(fd, VP_FORMAT_QCOW2, size + SPARSE_TAIL, &sparse);
        }
        return 0;
}
