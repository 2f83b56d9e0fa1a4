#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include "guestcfg.h"

/* ---- building initramfs images as the kernel's tools do ------------------ */

struct buf {
        uint8_t *p;
        size_t n;
};

static void put(struct buf *b, const void *data, size_t len)
{
        b->p = realloc(b->p, b->n + len + 4);
        assert_non_null(b->p);
        memcpy(b->p + b->n, data, len);
        b->n += len;
}

static void pad(struct buf *b, size_t align)
{
        static const uint8_t zeros[512];
        if (b->n % align)
                put(b, zeros, align - b->n % align);
}

/* One newc entry: a regular file of DATA, or a directory when DATA is NULL. */
static void entry(struct buf *b, const char *name, const char *data)
{
        char h[160];
        size_t size = data ? strlen(data) : 0;
        snprintf(h, sizeof(h), "070701%08x%08x%08x%08x%08x%08x%08zx%08x%08x%08x%08x%08zx%08x", 1u,
                 data ? 0100644u : 040755u, 0u, 0u, 1u, 0u, size, 0u, 0u, 0u, 0u, strlen(name) + 1, 0u);
        put(b, h, 110);
        put(b, name, strlen(name) + 1);
        pad(b, 4);
        if (data)
                put(b, data, size);
        pad(b, 4);
}

static void trailer(struct buf *b)
{
        entry(b, "TRAILER!!!", "");
}

/* An archive of the modules MODS (file names under lib/modules). */
static struct buf archive(const char *const *files, size_t n)
{
        struct buf b = { 0 };
        entry(&b, "lib", NULL);
        for (size_t i = 0; i < n; i++)
                entry(&b, files[i], strstr(files[i], "modules.builtin") ? "kernel/drivers/ata/ahci.ko\n" : "\x7f" "ELF");
        trailer(&b);
        return b;
}

static struct buf squeeze(const char *how, const struct buf *in)
{
        struct buf out = { .p = malloc(in->n * 2 + 1024), .n = 0 };
        assert_non_null(out.p);
        if (strcmp(how, "zstd") == 0) {
                out.n = ZSTD_compress(out.p, in->n * 2 + 1024, in->p, in->n, 3);
                assert_false(ZSTD_isError(out.n));
        } else if (strcmp(how, "xz") == 0) {
                size_t pos = 0;
                assert_int_equal(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL, in->p, in->n, out.p, &pos,
                                                         in->n * 2 + 1024), LZMA_OK);
                out.n = pos;
        } else {
                z_stream z = { 0 };
                assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
                z.next_in = in->p;
                z.avail_in = (uInt)in->n;
                z.next_out = out.p;
                z.avail_out = (uInt)(in->n * 2 + 1024);
                assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
                out.n = z.total_out;
                deflateEnd(&z);
        }
        return out;
}

static const char *const debian_files[] = {
        "lib/modules/6.1.0-50-amd64/kernel/drivers/ata/ata_piix.ko",
        "lib/modules/6.1.0-50-amd64/kernel/drivers/block/virtio_blk.ko.xz",
        "lib/modules/6.1.0-50-amd64/kernel/drivers/virtio/virtio_pci.ko.zst",
        "lib/modules/6.1.0-50-amd64/kernel/drivers/scsi/sd_mod.ko",
        "lib/modules/6.1.0-50-amd64/modules.builtin",
        "usr/lib/modules/6.1.0-50-amd64/kernel/drivers/net/ethernet/realtek/8139cp.ko.gz",
        "etc/modules.ko",   /* not under lib/modules: not a module */
};

/* The early microcode archive, padded to 512 as the kernel's tools do, then
 * the main one compressed by HOW. */
static struct buf initramfs(const char *how)
{
        struct buf b = { 0 };
        entry(&b, "kernel", NULL);
        entry(&b, "kernel/x86/microcode/GenuineIntel.bin", "microcode");
        trailer(&b);
        pad(&b, 512);
        struct buf main = archive(debian_files, ELEMENTSOF(debian_files));
        if (strcmp(how, "none") == 0) {
                put(&b, main.p, main.n);
        } else {
                struct buf c = squeeze(how, &main);
                put(&b, c.p, c.n);
                free(c.p);
        }
        free(main.p);
        return b;
}

static void expect_debian_modules(const char *how)
{
        struct buf b = initramfs(how);
        struct vp_modset mods = { 0 };
        struct vp_error err = { 0 };
        char comp[8];
        int r = vp_initramfs_modules(b.p, b.n, &mods, comp, &err);
        if (r < 0)
                fail_msg("%s: %s", how, err.msg);
        assert_string_equal(comp, how);
        const char *want[] = { "ata_piix", "virtio_blk", "virtio_pci", "sd_mod", "ahci", "8139cp" };
        for (size_t i = 0; i < ELEMENTSOF(want); i++)
                if (!vp_modset_has(&mods, want[i]))
                        fail_msg("%s: %s not found", how, want[i]);
        assert_int_equal(mods.n, ELEMENTSOF(want));
        assert_false(vp_modset_has(&mods, "modules"));
        /* What the set says of each bus: SATA from the built-in list, no virtio_scsi. */
        assert_null(vp_linux_missing_driver(false, "ide", &mods));
        assert_null(vp_linux_missing_driver(false, "sata", &mods));
        assert_null(vp_linux_missing_driver(false, "virtio", &mods));
        assert_string_equal(vp_linux_missing_driver(false, "scsi", &mods), "virtio_scsi");
        assert_null(vp_linux_missing_driver(true, "rtl8139", &mods));
        assert_string_equal(vp_linux_missing_driver(true, "e1000", &mods), "e1000");
        assert_string_equal(vp_linux_missing_driver(true, "virtio", &mods), "virtio_net");
        vp_modset_free(&mods);
        free(b.p);
}

static void test_initramfs_plain(void **state) { expect_debian_modules("none"); }
static void test_initramfs_zstd(void **state) { expect_debian_modules("zstd"); }
static void test_initramfs_gzip(void **state) { expect_debian_modules("gzip"); }
static void test_initramfs_xz(void **state) { expect_debian_modules("xz"); }

static void expect_bad(const uint8_t *p, size_t n, int code, const char *words)
{
        struct vp_modset mods = { 0 };
        struct vp_error err = { 0 };
        char comp[8];
        int r = vp_initramfs_modules(p, n, &mods, comp, &err);
        if (r != code)
                fail_msg("got %d (%s), want %d", r, err.msg, code);
        assert_non_null(strstr(err.msg, words));
        vp_modset_free(&mods);
}

static void test_initramfs_refused(void **state)
{
        struct buf b = initramfs("zstd");
        expect_bad(b.p, 0, -EBADMSG, "empty");
        /* Cut inside the microcode archive, and inside the compressed one. */
        expect_bad(b.p, 200, -EBADMSG, "cut short");
        expect_bad(b.p, b.n - 10, -EBADMSG, "zstd");
        expect_bad((const uint8_t *)"PK\3\4 not an initramfs", 22, -EOPNOTSUPP, "unknown data");
        free(b.p);

        struct buf a = { 0 };
        entry(&a, "lib/modules/x.ko", "0123456789");
        trailer(&a);
        /* A name size past the end, a name without its NUL, a file size past the end. */
        struct buf c = { .p = malloc(a.n), .n = a.n };
        memcpy(c.p, a.p, a.n);
        memcpy(c.p + 94, "7fffffff", 8);
        expect_bad(c.p, c.n, -EBADMSG, "bad cpio name");
        memcpy(c.p, a.p, a.n);
        c.p[110 + strlen("lib/modules/x.ko")] = 'X';
        expect_bad(c.p, c.n, -EBADMSG, "bad cpio name");
        memcpy(c.p, a.p, a.n);
        memcpy(c.p + 54, "ffffffff", 8);
        expect_bad(c.p, c.n, -EBADMSG, "past the end");
        memcpy(c.p, a.p, a.n);
        memcpy(c.p + 54, "0000zz0a", 8);
        expect_bad(c.p, c.n, -EBADMSG, "bad cpio header");
        /* Compressed data inside compressed data is not an initramfs. */
        struct buf inner = squeeze("gzip", &a);
        struct buf outer = squeeze("gzip", &inner);
        expect_bad(outer.p, outer.n, -EBADMSG, "inside compressed");
        free(inner.p);
        free(outer.p);
        free(c.p);
        free(a.p);
}

/* ---- module names ---------------------------------------------------------- */

static void test_modset_paths(void **state)
{
        struct vp_modset s = { 0 };
        const char *dep = "kernel/drivers/net/ethernet/intel/e1000/e1000.ko: \n"
                          "kernel/drivers/block/virtio_blk.ko.xz: kernel/drivers/virtio/virtio.ko.xz\n"
                          "kernel/drivers/ata/pata-acpi.ko.zst\n"
                          "not a module\n"
                          "kernel/evil/../../x y.ko\n"
                          "\n"
                          "kernel/drivers/scsi/virtio_scsi.ko";
        vp_modset_add_list(&s, dep, strlen(dep));
        assert_true(vp_modset_has(&s, "e1000"));
        assert_true(vp_modset_has(&s, "virtio_blk"));
        assert_true(vp_modset_has(&s, "pata_acpi"));
        assert_true(vp_modset_has(&s, "virtio_scsi"));
        /* The dependencies after the colon are modules.dep's, listed on their own lines. */
        assert_false(vp_modset_has(&s, "virtio"));
        assert_false(vp_modset_has(&s, "x y"));
        assert_int_equal(s.n, 4);
        vp_modset_add_path(&s, "e1000", 5, true);
        vp_modset_add_path(&s, "8139-too", 8, true);
        assert_int_equal(s.n, 5);
        assert_true(vp_modset_has(&s, "8139_too"));
        vp_modset_free(&s);
        assert_int_equal(s.n, 0);
}

static void test_missing_drivers(void **state)
{
        struct vp_modset none = { 0 }, s = { 0 };
        assert_string_equal(vp_linux_missing_driver(false, "ide", &none), "ata_piix");
        assert_string_equal(vp_linux_missing_driver(false, "sata", &none), "ahci");
        assert_string_equal(vp_linux_missing_driver(false, "virtio", &none), "virtio_blk");
        assert_string_equal(vp_linux_missing_driver(true, "rtl8139", &none), "8139cp|8139too");
        assert_string_equal(vp_linux_missing_driver(true, "ide", &none), "unknown-device");
        vp_modset_add_path(&s, "virtio_blk", 10, true);
        vp_modset_add_path(&s, "8139too", 7, true);
        /* virtio_blk alone cannot see the disk: it sits on virtio's PCI transport. */
        assert_string_equal(vp_linux_missing_driver(false, "virtio", &s), "virtio_pci");
        assert_null(vp_linux_missing_driver(true, "rtl8139", &s));
        vp_modset_free(&s);
        assert_string_equal(vp_windows_driver(false, "virtio"), "viostor");
        assert_string_equal(vp_windows_driver(false, "scsi"), "vioscsi");
        assert_string_equal(vp_windows_driver(true, "virtio"), "netkvm");
        assert_null(vp_windows_driver(false, "sata"));
        assert_null(vp_windows_driver(true, "e1000"));
}

/* ---- network configuration ----------------------------------------------- */

/* FN reads TEXT as a guest's file: how it matches, by which tools, naming what. */
static void netcfg(void (*fn)(struct vp_netcfg *, const char *, size_t), const char *text, const char *want_match,
                   const char *want_tools, const char *want_names)
{
        struct vp_netcfg c = { 0 };
        fn(&c, text, strlen(text));
        assert_string_equal(vp_netmatch_to_string(c.match), want_match);
        assert_string_equal(c.tools, want_tools);
        assert_string_equal(c.names, want_names);
}

static void test_netcfg_ifupdown(void **state)
{
        /* Debian's installer, by name; the loopback is no NIC. */
        netcfg(vp_netcfg_ifupdown, "source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n\n"
               "# The primary network interface\nallow-hotplug ens3\niface ens3 inet dhcp\n", "name", "ifupdown", "ens3");
        netcfg(vp_netcfg_ifupdown, "auto lo eth0 eth1\n  iface eth1 inet static # comment\n", "name", "ifupdown",
               "eth0,eth1");
        netcfg(vp_netcfg_ifupdown, "auto lo\niface lo inet loopback", "none", "", "");
        netcfg(vp_netcfg_ifupdown, "# iface ens3 inet dhcp\n", "none", "", "");
}

static void test_netcfg_networkd(void **state)
{
        netcfg(vp_netcfg_networkd, "[Match]\nName=ens3\n\n[Network]\nDHCP=yes\n", "name", "networkd", "ens3");
        netcfg(vp_netcfg_networkd, "[Match]\nName=en* eth*\n[Network]\nDHCP=yes\n", "pattern", "networkd", "en*,eth*");
        netcfg(vp_netcfg_networkd, "[Match]\nMACAddress=52:54:00:12:34:56\n", "mac", "networkd", "");
        netcfg(vp_netcfg_networkd, "[Match]\nPath=pci-0000:00:03.0\n", "path", "networkd", "");
        netcfg(vp_netcfg_networkd, "[Match]\nDriver=e1000\n", "driver", "networkd", "");
        /* No [Match]: every link; Name= outside [Match] matches nothing. */
        netcfg(vp_netcfg_networkd, "[Network]\nName=ens3\nDHCP=yes\n", "any", "networkd", "");
        /* The most fragile of several wins. */
        netcfg(vp_netcfg_networkd, "[Match]\nMACAddress=52:54:00:12:34:56\nName=ens3\n", "name", "networkd", "ens3");
}

static void test_netcfg_nm(void **state)
{
        netcfg(vp_netcfg_nm, "[connection]\nid=Wired\ntype=ethernet\ninterface-name=enp1s0\n", "name", "networkmanager",
               "enp1s0");
        netcfg(vp_netcfg_nm, "[connection]\nid=Wired\n[ethernet]\nmac-address=52:54:00:12:34:56\n", "mac",
               "networkmanager", "");
        netcfg(vp_netcfg_nm, "[connection]\nid=Wired connection 1\ntype=ethernet\n", "any", "networkmanager", "");
}

static void test_netcfg_netplan(void **state)
{
        /* Ubuntu's installer, by name. */
        netcfg(vp_netcfg_netplan, "network:\n  version: 2\n  ethernets:\n    ens3:\n      dhcp4: true\n", "name",
               "netplan", "ens3");
        netcfg(vp_netcfg_netplan, "network:\n  ethernets:\n    id0:\n      match:\n        macaddress: \"52:54:00:12:34:56\"\n"
               "      set-name: lan0\n      dhcp4: true\n", "mac", "netplan", "");
        netcfg(vp_netcfg_netplan, "network:\n  ethernets:\n    all-en:\n      match:\n        name: \"en*\"\n"
               "      dhcp4: true\n    eth1: {}\n  version: 2\n", "name", "netplan", "en*,eth1");
        netcfg(vp_netcfg_netplan, "network:\n  version: 2\n  wifis:\n    wlan0: {}\n", "none", "", "");
}

static void test_netmatch_words(void **state)
{
        for (int m = 0; m < VP_NETMATCH_MAX; m++)
                assert_int_equal(vp_netmatch_from_string(vp_netmatch_to_string(m)), m);
        assert_true(vp_netmatch_breaks_on_rename(VP_NETMATCH_NAME));
        assert_true(vp_netmatch_breaks_on_rename(VP_NETMATCH_PATH));
        assert_true(vp_netmatch_breaks_on_rename(VP_NETMATCH_DRIVER));
        assert_false(vp_netmatch_breaks_on_rename(VP_NETMATCH_MAC));
        assert_false(vp_netmatch_breaks_on_rename(VP_NETMATCH_PATTERN));
        assert_false(vp_netmatch_breaks_on_rename(VP_NETMATCH_ANY));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_initramfs_plain),  cmocka_unit_test(test_initramfs_zstd),
                cmocka_unit_test(test_initramfs_gzip),   cmocka_unit_test(test_initramfs_xz),
                cmocka_unit_test(test_initramfs_refused), cmocka_unit_test(test_modset_paths),
                cmocka_unit_test(test_missing_drivers),  cmocka_unit_test(test_netcfg_ifupdown),
                cmocka_unit_test(test_netcfg_networkd),  cmocka_unit_test(test_netcfg_nm),
                cmocka_unit_test(test_netcfg_netplan),   cmocka_unit_test(test_netmatch_words),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
