#include "domxml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <string.h>

#include "model.h"

struct buf {
        char *s;
        size_t len, cap;
};

static void put(struct buf *b, const char *s, size_t n)
{
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 4096;
                while (b->len + n + 1 > cap)
                        cap *= 2;
                char *ns = realloc(b->s, cap);
                if (!ns)
                        abort();
                b->s = ns;
                b->cap = cap;
        }
        memcpy(b->s + b->len, s, n);
        b->len += n;
        b->s[b->len] = 0;
}

static void puts_(struct buf *b, const char *s) { put(b, s, strlen(s)); }

/* Append S escaped for both element text and single-quoted attributes. */
static void esc(struct buf *b, const char *s)
{
        for (; s && *s; s++) {
                switch (*s) {
                case '&': puts_(b, "&amp;"); break;
                case '<': puts_(b, "&lt;"); break;
                case '>': puts_(b, "&gt;"); break;
                case '\'': puts_(b, "&apos;"); break;
                case '"': puts_(b, "&quot;"); break;
                default: put(b, s, 1);
                }
        }
}

/* printf where every %s argument is XML-escaped: the format itself is
 * trusted, the values never are. Only %s, %d (int) and %lld are used. */
static void putf(struct buf *b, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        for (const char *p = fmt; *p; p++) {
                if (*p != '%') {
                        put(b, p, 1);
                        continue;
                }
                p++;
                char num[32];
                if (*p == 's') {
                        esc(b, va_arg(ap, const char *));
                } else if (*p == 'd') {
                        snprintf(num, sizeof(num), "%d", va_arg(ap, int));
                        puts_(b, num);
                } else if (p[0] == 'l' && p[1] == 'l' && p[2] == 'd') {
                        p += 2;
                        snprintf(num, sizeof(num), "%lld", va_arg(ap, long long));
                        puts_(b, num);
                } else {
                        put(b, "%", 1);
                        if (*p)
                                put(b, p, 1);
                        else
                                break;
                }
        }
        va_end(ap);
}

void vp_domxml_target_dev(const char *bus, int index, char out[8])
{
        enum vp_disk_bus b = vp_disk_bus_from_string(bus);
        char prefix = b == VP_BUS_VIRTIO ? 'v' : b == VP_BUS_IDE ? 'h' : 's';
        snprintf(out, 8, "%cd%c", prefix, 'a' + (index % 26));
}

static bool one_of(const char *v, const char *const *set)
{
        for (; *set; set++)
                if (v && streq(v, *set))
                        return true;
        return false;
}

static void disk(struct buf *b, const char *path, const char *fmt, const char *bus, int index,
                 const char *master, const char *master_fmt)
{
        char dev[8];
        vp_domxml_target_dev(bus, index, dev);
        putf(b, "    <disk type='file' device='disk'>\n"
                "      <driver name='qemu' type='%s' cache='none' discard='unmap'/>\n"
                "      <source file='%s'/>\n", fmt, path);
        if (master)
                putf(b, "      <backingStore type='file'>\n"
                        "        <format type='%s'/>\n"
                        "        <source file='%s'/>\n"
                        "        <backingStore/>\n"
                        "      </backingStore>\n", master_fmt, master);
        else
                puts_(b, "      <backingStore/>\n");
        putf(b, "      <target dev='%s' bus='%s'/>\n", dev, bus);
        if (index == 0)
                puts_(b, "      <boot order='1'/>\n");
        puts_(b, "    </disk>\n");
}

/* Every word of D is one vpool knows and every field it needs is there. */
static int check_spec(const struct vp_domspec *d, struct vp_error *err)
{
        static const char *const types[] = { "qemu", "kvm", NULL };
        static const char *const fmts[] = { "qcow2", "raw", NULL };

        if (!vp_known_bus(d->disk_bus))
                return vp_err(err, -EINVAL, "unknown disk bus '%s'", d->disk_bus ? d->disk_bus : "");
        if (!vp_known_nic(d->nic))
                return vp_err(err, -EINVAL, "unknown NIC model '%s'", d->nic ? d->nic : "");
        if (!vp_known_firmware(d->firmware))
                return vp_err(err, -EINVAL, "unknown firmware '%s'", d->firmware ? d->firmware : "");
        if (!one_of(d->domain_type, types))
                return vp_err(err, -EINVAL, "unknown domain type '%s'", d->domain_type ? d->domain_type : "");
        if (!one_of(d->master_format, fmts))
                return vp_err(err, -EINVAL, "unknown master format '%s'", d->master_format ? d->master_format : "");
        if (!d->name || !d->uuid || !d->overlay || !d->master || !d->machine || !d->arch || !d->log_path)
                return vp_err(err, -EINVAL, "incomplete domain description");
        if (d->vcpus < 1 || d->memory_mib < 1)
                return vp_err(err, -EINVAL, "vCPUs and memory must be positive");
        return 0;
}

char *vp_domxml_build(const struct vp_domspec *d, struct vp_error *err)
{
        if (check_spec(d, err) < 0)
                return NULL;
        bool uefi = vp_firmware_from_string(d->firmware) == VP_FIRMWARE_UEFI;
        struct buf b = { 0 };
        putf(&b, "<domain type='%s'>\n", d->domain_type);
        putf(&b, "  <name>%s</name>\n  <uuid>%s</uuid>\n", d->name, d->uuid);
        putf(&b, "  <metadata>\n"
                 "    <vpool:vm xmlns:vpool='" VP_XML_NS "'>\n"
                 "      <vpool:pool>%s</vpool:pool>\n"
                 "      <vpool:hostname>%s</vpool:hostname>\n"
                 "      <vpool:generation>%lld</vpool:generation>\n"
                 "    </vpool:vm>\n"
                 "  </metadata>\n",
             d->pool ? d->pool : "", d->hostname ? d->hostname : d->name, (long long)d->generation);
        putf(&b, "  <memory unit='MiB'>%lld</memory>\n", (long long)d->memory_mib);
        putf(&b, "  <vcpu>%lld</vcpu>\n", (long long)d->vcpus);
        puts_(&b, uefi ? "  <os firmware='efi'>\n" : "  <os>\n");
        putf(&b, "    <type arch='%s' machine='%s'>hvm</type>\n", d->arch, d->machine);
        if (d->kernel && *d->kernel) {
                putf(&b, "    <kernel>%s</kernel>\n", d->kernel);
                if (d->initrd && *d->initrd)
                        putf(&b, "    <initrd>%s</initrd>\n", d->initrd);
                if (d->cmdline && *d->cmdline)
                        putf(&b, "    <cmdline>%s</cmdline>\n", d->cmdline);
        }
        if (uefi && d->nvram)
                putf(&b, "    <nvram>%s</nvram>\n", d->nvram);
        puts_(&b, "  </os>\n");
        /* Without ACPI a guest's poweroff only halts it and the domain keeps running. */
        puts_(&b, "  <features>\n    <acpi/>\n  </features>\n");
        if (d->cpu_mode && *d->cpu_mode)
                putf(&b, "  <cpu mode='%s'/>\n", d->cpu_mode);
        puts_(&b, "  <on_poweroff>destroy</on_poweroff>\n"
                  "  <on_reboot>restart</on_reboot>\n"
                  "  <on_crash>destroy</on_crash>\n"
                  "  <devices>\n");
        disk(&b, d->overlay, "qcow2", d->disk_bus, 0, d->master, d->master_format);
        if (d->data_disk && *d->data_disk)
                disk(&b, d->data_disk, "qcow2", d->disk_bus, 1, NULL, NULL);
        if (vp_disk_bus_from_string(d->disk_bus) == VP_BUS_SCSI)
                puts_(&b, "    <controller type='scsi' model='virtio-scsi'/>\n");
        if (vp_nic_model_from_string(d->nic) != VP_NIC_NONE)
                putf(&b, "    <interface type='user'>\n"
                         "      <mac address='%s'/>\n"
                         "      <model type='%s'/>\n"
                         "    </interface>\n", d->mac ? d->mac : "", d->nic);
        putf(&b, "    <serial type='pty'>\n"
                 "      <log file='%s' append='on'/>\n"
                 "      <target port='0'/>\n"
                 "    </serial>\n"
                 "    <console type='pty'>\n"
                 "      <target type='serial' port='0'/>\n"
                 "    </console>\n", d->log_path);
        puts_(&b, "    <memballoon model='none'/>\n"
                  "  </devices>\n"
                  "</domain>\n");
        return b.s;
}

static const char *find_tag(const char *xml, const char *tag, size_t *len)
{
        char open[64], close[64];
        snprintf(open, sizeof(open), "<vpool:%s>", tag);
        snprintf(close, sizeof(close), "</vpool:%s>", tag);
        const char *p = strstr(xml, open);
        if (!p)
                return NULL;
        p += strlen(open);
        const char *e = strstr(p, close);
        if (!e)
                return NULL;
        *len = (size_t)(e - p);
        return p;
}

int vp_domxml_parse_metadata(const char *xml, char *pool, size_t poolsz, int64_t *generation)
{
        size_t len;
        /* libvirt keeps our prefix when it hands the metadata back. */
        if (!strstr(xml, VP_XML_NS))
                return -ENOENT;
        const char *p = find_tag(xml, "pool", &len);
        if (!p || len >= poolsz)
                return -ENOENT;
        memcpy(pool, p, len);
        pool[len] = 0;
        p = find_tag(xml, "generation", &len);
        if (!p || len == 0 || len > 18)
                return -ENOENT;
        char num[24];
        memcpy(num, p, len);
        num[len] = 0;
        *generation = strtoll(num, NULL, 10);
        return 0;
}

/* Rename the files NODES name (attributes or element text) per MOVES,
 * counting in HIT which of MOVES were used. */
static void move_nodes(xmlNodeSetPtr nodes, const struct vp_domxml_move *moves, size_t n, bool *hit)
{
        for (int i = 0; nodes && i < nodes->nodeNr; i++) {
                xmlNodePtr node = nodes->nodeTab[i];
                xmlChar *v = xmlNodeGetContent(node);
                for (size_t k = 0; v && k < n; k++) {
                        if (!streq((const char *)v, moves[k].from))
                                continue;
                        /* xmlNodeSetContent takes entity references in its
                         * text; the escaping one stores the path as it is. */
                        xmlChar *e = xmlEncodeSpecialChars(node->doc, (const xmlChar *)moves[k].to);
                        xmlNodeSetContent(node, e);
                        xmlFree(e);
                        hit[k] = true;
                        break;
                }
                xmlFree(v);
        }
}

static xmlNodeSetPtr eval(xmlXPathContextPtr ctx, const char *expr, xmlXPathObjectPtr *keep)
{
        *keep = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
        return *keep ? (*keep)->nodesetval : NULL;
}

char *vp_domxml_move_disks(const char *xml, const struct vp_domxml_move *moves, size_t n, int64_t generation,
                           struct vp_error *err)
{
        xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
                                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        if (!doc) {
                vp_err(err, -EBADMSG, "domain XML does not parse");
                return NULL;
        }
        xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
        if (!ctx)
                abort();
        xmlXPathRegisterNs(ctx, (const xmlChar *)"vp", (const xmlChar *)VP_XML_NS);
        char *out = NULL;
        bool *hit = vp_xcalloc(n + 1, sizeof(*hit));
        xmlXPathObjectPtr o = NULL;
        xmlNodeSetPtr gen = eval(ctx, "/domain/metadata/vp:vm/vp:generation", &o);
        if (!gen || gen->nodeNr != 1) {
                vp_err(err, -ENOENT, "domain XML carries no vpool metadata");
                goto done;
        }
        char num[24];
        snprintf(num, sizeof(num), "%lld", (long long)generation);
        xmlNodeSetContent(gen->nodeTab[0], (const xmlChar *)num);
        xmlXPathFreeObject(o);
        /* Disk images, and the variable store in both of libvirt's
         * spellings: text of <nvram>, or <nvram><source file=.../>. */
        static const char *const where[] = {
                "/domain/devices/disk/source/@file",
                "/domain/os/nvram[not(*)]",
                "/domain/os/nvram/source/@file",
        };
        for (size_t w = 0; w < ELEMENTSOF(where); w++) {
                move_nodes(eval(ctx, where[w], &o), moves, n, hit);
                xmlXPathFreeObject(o);
        }
        o = NULL;
        for (size_t k = 0; k < n; k++)
                if (!hit[k]) {
                        vp_err(err, -ENOENT, "domain XML names no disk '%s'", moves[k].from);
                        goto done;
                }
        xmlChar *mem = NULL;
        int len = 0;
        xmlDocDumpMemory(doc, &mem, &len);
        if (!mem)
                abort();
        out = vp_strdup((const char *)mem);
        xmlFree(mem);
done:
        xmlXPathFreeObject(o);
        free(hit);
        xmlXPathFreeContext(ctx);
        xmlFreeDoc(doc);
        return out;
}
