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

/* A running domain's XML as libvirt hands it out for a migration: index
 * attributes, the master as backing store, the variable store. */
static const char live_xml[] =
        "<domain type='qemu' id='3'>\n"
        "  <name>desk-001</name>\n"
        "  <metadata>\n"
        "    <vpool:vm xmlns:vpool=\"urn:vpool:domain:1\">\n"
        "      <vpool:pool>desk</vpool:pool>\n"
        "      <vpool:hostname>desk-001</vpool:hostname>\n"
        "      <vpool:generation>3</vpool:generation>\n"
        "    </vpool:vm>\n"
        "  </metadata>\n"
        "  <os firmware='efi'>\n"
        "    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>\n"
        "    <nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>/s/d/desk-001.u/nvram.g3.fd</nvram>\n"
        "  </os>\n"
        "  <devices>\n"
        "    <disk type='file' device='disk'>\n"
        "      <driver name='qemu' type='qcow2' cache='none'/>\n"
        "      <source file='/s/d/desk-001.u/overlay.g3.qcow2' index='2'/>\n"
        "      <backingStore type='file' index='1'>\n"
        "        <format type='qcow2'/>\n"
        "        <source file='/s/images/g.qcow2'/>\n"
        "      </backingStore>\n"
        "      <target dev='vda' bus='virtio'/>\n"
        "    </disk>\n"
        "    <disk type='file' device='disk'>\n"
        "      <source file='/s/d/desk-001.u/data&amp;&apos;x.g3.qcow2'/>\n"
        "      <target dev='vdb' bus='virtio'/>\n"
        "    </disk>\n"
        "    <serial type='pty'><log file='/s/logs/desk-001.log' append='on'/></serial>\n"
        "  </devices>\n"
        "</domain>\n";

static void lacks(const char *xml, const char *needle)
{
        if (xml && strstr(xml, needle))
                fail_msg("unexpected '%s' in:\n%s", needle, xml);
}

static void test_move_disks(void **state)
{
        struct vp_domxml_move m[] = {
                { "/s/d/desk-001.u/overlay.g3.qcow2", "/s/d/desk-001.u/overlay.g4.qcow2" },
                { "/s/d/desk-001.u/data&'x.g3.qcow2", "/s/d/desk-001.u/data&'x.g4.qcow2" },
                { "/s/d/desk-001.u/nvram.g3.fd", "/s/d/desk-001.u/nvram.g4.fd" },
        };
        struct vp_error err = { 0 };
        char *xml = vp_domxml_move_disks(live_xml, m, ELEMENTSOF(m), 4, &err);
        assert_non_null(xml);
        has(xml, "<source file=\"/s/d/desk-001.u/overlay.g4.qcow2\" index=\"2\"/>");
        has(xml, "<source file=\"/s/d/desk-001.u/data&amp;'x.g4.qcow2\"/>");
        has(xml, ">/s/d/desk-001.u/nvram.g4.fd</nvram>");
        /* The master, the template and the console log are no disk of the delta. */
        has(xml, "<source file=\"/s/images/g.qcow2\"/>");
        has(xml, "template=\"/usr/share/OVMF/OVMF_VARS_4M.fd\"");
        has(xml, "/s/logs/desk-001.log");
        lacks(xml, ".g3.");
        char pool[64];
        int64_t gen = 0;
        assert_int_equal(vp_domxml_parse_metadata(xml, pool, sizeof(pool), &gen), 0);
        assert_string_equal(pool, "desk");
        assert_int_equal(gen, 4);
        free(xml);

        /* libvirt's newer spelling of the variable store. */
        char *nv = vp_strdup(live_xml);
        char *p = strstr(nv, "<nvram template");
        const char *src = "<nvram type='file'><source file='/s/d/desk-001.u/nvram.g3.fd'/></nvram>";
        char *end = strstr(p, "</nvram>") + strlen("</nvram>");
        char *rebuilt = vp_strdupf("%.*s%s%s", (int)(p - nv), nv, src, end);
        xml = vp_domxml_move_disks(rebuilt, m, ELEMENTSOF(m), 4, &err);
        has(xml, "<source file=\"/s/d/desk-001.u/nvram.g4.fd\"/>");
        free(xml);
        free(rebuilt);
        free(nv);
}

static void test_move_disks_refusals(void **state)
{
        struct vp_domxml_move m[] = {
                { "/s/d/desk-001.u/overlay.g3.qcow2", "/s/d/desk-001.u/overlay.g4.qcow2" },
                { "/s/d/desk-001.u/overlay.qcow2", "/s/d/desk-001.u/overlay.g4.qcow2" },
        };
        struct vp_error err = { 0 };
        /* A disk the domain does not use: the move would leave it behind. */
        assert_null(vp_domxml_move_disks(live_xml, m, 2, 4, &err));
        assert_int_equal(err.code, -ENOENT);
        has(err.msg, "names no disk '/s/d/desk-001.u/overlay.qcow2'");

        struct vp_error err2 = { 0 };
        assert_null(vp_domxml_move_disks("<domain><devices/></domain>", m, 1, 4, &err2));
        assert_int_equal(err2.code, -ENOENT);
        has(err2.msg, "no vpool metadata");

        struct vp_error err3 = { 0 };
        assert_null(vp_domxml_move_disks("<domain", m, 1, 4, &err3));
        assert_int_equal(err3.code, -EBADMSG);
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
                cmocka_unit_test(test_move_disks),
                cmocka_unit_test(test_move_disks_refusals),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
