#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "domxml.h"
#include "model.h"

static struct vp_domspec base(void)
{
        return (struct vp_domspec){
                .name = "desk-001", .uuid = "5b7c3a52-8c1d-4f6e-9a0b-1c2d3e4f5a6b", .domain_type = "qemu",
                .arch = "x86_64", .machine = "pc", .firmware = "bios", .cpu_mode = "", .vcpus = 2,
                .memory_mib = 256, .kernel = "/s/images/g.kernel", .initrd = "/s/images/g.initrd",
                .cmdline = "console=ttyS0", .disk_bus = "ide", .overlay = "/s/deltas/desk/desk-001/overlay.qcow2",
                .master = "/s/images/g.qcow2", .master_format = "qcow2", .nic = "e1000",
                .mac = "52:54:00:aa:bb:cc", .log_path = "/s/logs/desk-001.log", .pool = "desk",
                .hostname = "desk-001", .generation = 3,
        };
}

static void has(const char *xml, const char *needle)
{
        if (!xml)
                fail_msg("no XML while looking for '%s'", needle);
        else if (!strstr(xml, needle))
                fail_msg("missing '%s' in:\n%s", needle, xml);
}

static void test_pc_ide(void **state)
{
        struct vp_domspec d = base();
        struct vp_error err = { 0 };
        char *xml = vp_domxml_build(&d, &err);
        assert_non_null(xml);
        has(xml, "<domain type='qemu'>");
        has(xml, "<name>desk-001</name>");
        has(xml, "<uuid>5b7c3a52-8c1d-4f6e-9a0b-1c2d3e4f5a6b</uuid>");
        has(xml, "machine='pc'");
        has(xml, "<memory unit='MiB'>256</memory>");
        has(xml, "<vcpu>2</vcpu>");
        has(xml, "<acpi/>");
        has(xml, "<source file='/s/deltas/desk/desk-001/overlay.qcow2'/>");
        has(xml, "<format type='qcow2'/>\n        <source file='/s/images/g.qcow2'/>");
        has(xml, "<target dev='hda' bus='ide'/>");
        has(xml, "<mac address='52:54:00:aa:bb:cc'/>");
        has(xml, "<model type='e1000'/>");
        has(xml, "<log file='/s/logs/desk-001.log' append='on'/>");
        has(xml, "<vpool:pool>desk</vpool:pool>");
        has(xml, "<vpool:generation>3</vpool:generation>");
        has(xml, "<kernel>/s/images/g.kernel</kernel>");
        assert_null(strstr(xml, "<cpu"));
        assert_null(strstr(xml, "virtio-scsi"));

        char pool[64];
        int64_t gen = 0;
        assert_int_equal(vp_domxml_parse_metadata(xml, pool, sizeof(pool), &gen), 0);
        assert_string_equal(pool, "desk");
        assert_int_equal(gen, 3);
        free(xml);
}

static void test_q35_variants(void **state)
{
        struct vp_domspec d = base();
        struct vp_error err = { 0 };
        d.machine = "q35";
        d.disk_bus = "virtio";
        d.nic = "virtio";
        d.cpu_mode = "maximum";
        char *xml = vp_domxml_build(&d, &err);
        has(xml, "machine='q35'");
        has(xml, "<target dev='vda' bus='virtio'/>");
        has(xml, "<model type='virtio'/>");
        has(xml, "<cpu mode='maximum'/>");
        free(xml);

        d.disk_bus = "scsi";
        d.nic = "none";
        d.data_disk = "/s/deltas/desk/desk-001/data.qcow2";
        xml = vp_domxml_build(&d, &err);
        has(xml, "<target dev='sda' bus='scsi'/>");
        has(xml, "<target dev='sdb' bus='scsi'/>");
        has(xml, "model='virtio-scsi'");
        assert_null(strstr(xml, "<interface"));
        free(xml);

        d.disk_bus = "sata";
        d.firmware = "uefi";
        d.nvram = "/s/deltas/desk/desk-001/nvram.fd";
        xml = vp_domxml_build(&d, &err);
        has(xml, "<os firmware='efi'>");
        has(xml, "<nvram>/s/deltas/desk/desk-001/nvram.fd</nvram>");
        has(xml, "<target dev='sda' bus='sata'/>");
        free(xml);
}

static void test_escaping(void **state)
{
        struct vp_domspec d = base();
        struct vp_error err = { 0 };
        d.cmdline = "a='b' <c> & \"d\"";
        char *xml = vp_domxml_build(&d, &err);
        has(xml, "<cmdline>a=&apos;b&apos; &lt;c&gt; &amp; &quot;d&quot;</cmdline>");
        free(xml);
}

static void test_refusals(void **state)
{
        const char *bad_bus[] = { "usb", "", "ide'/><disk" };
        for (size_t i = 0; i < 3; i++) {
                struct vp_domspec d = base();
                struct vp_error err = { 0 };
                d.disk_bus = bad_bus[i];
                assert_null(vp_domxml_build(&d, &err));
                assert_non_null(strstr(err.msg, "unknown disk bus"));
        }
        struct vp_domspec d = base();
        struct vp_error err = { 0 };
        d.nic = "ne2k";
        assert_null(vp_domxml_build(&d, &err));
        assert_non_null(strstr(err.msg, "unknown NIC model 'ne2k'"));
        d = base();
        d.vcpus = 0;
        assert_null(vp_domxml_build(&d, &err));
        d = base();
        d.firmware = "coreboot";
        assert_null(vp_domxml_build(&d, &err));
}

/* The domain XML knows every hardware word a profile may hold (model.h's
 * lists) and no other; each bus names its disks the way libvirt does. */
static void test_hardware_words(void **state)
{
        static const char *const devs[VP_BUS_MAX] = {
                [VP_BUS_IDE] = "hda", [VP_BUS_SATA] = "sda", [VP_BUS_VIRTIO] = "vda", [VP_BUS_SCSI] = "sda",
        };
        struct vp_error err = { 0 };
        for (int b = 0; b < VP_BUS_MAX; b++) {
                struct vp_domspec d = base();
                d.disk_bus = vp_disk_bus_to_string((enum vp_disk_bus)b);
                char dev[8], want[64];
                vp_domxml_target_dev(d.disk_bus, 0, dev);
                assert_string_equal(dev, devs[b]);
                char *xml = vp_domxml_build(&d, &err);
                snprintf(want, sizeof(want), "<target dev='%s' bus='%s'/>", devs[b], d.disk_bus);
                has(xml, want);
                free(xml);
        }
        for (int n = 0; n < VP_NIC_MAX; n++)
                for (int f = 0; f < VP_FIRMWARE_MAX; f++) {
                        struct vp_domspec d = base();
                        d.nic = vp_nic_model_to_string((enum vp_nic_model)n);
                        d.firmware = vp_firmware_to_string((enum vp_firmware)f);
                        char *xml = vp_domxml_build(&d, &err), want[64];
                        assert_non_null(xml);
                        snprintf(want, sizeof(want), "<model type='%s'/>", d.nic);
                        assert_int_equal(strstr(xml, want) != NULL, n != VP_NIC_NONE);
                        assert_int_equal(strstr(xml, "<interface") != NULL, n != VP_NIC_NONE);
                        assert_int_equal(strstr(xml, "<os firmware='efi'>") != NULL, f == VP_FIRMWARE_UEFI);
                        free(xml);
                }
        struct vp_domspec d = base();
        d.disk_bus = NULL;
        assert_null(vp_domxml_build(&d, &err));
        assert_non_null(strstr(err.msg, "unknown disk bus ''"));
        d = base();
        d.firmware = "UEFI";
        assert_null(vp_domxml_build(&d, &err));
        assert_non_null(strstr(err.msg, "unknown firmware 'UEFI'"));
}

static void test_metadata_absent(void **state)
{
        char pool[64];
        int64_t gen;
        assert_int_equal(vp_domxml_parse_metadata("<domain><name>x</name></domain>", pool, sizeof(pool), &gen),
                         -ENOENT);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pc_ide),
                cmocka_unit_test(test_q35_variants),
                cmocka_unit_test(test_escaping),
                cmocka_unit_test(test_refusals),
                cmocka_unit_test(test_hardware_words),
                cmocka_unit_test(test_metadata_absent),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
