#include "hv.h"

#include <pthread.h>

#include <libvirt/virterror.h>
#include <pthread.h>
#include <libxml/parser.h>
#include <libxml/uri.h>
#include <libxml/xpath.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "domxml.h"

static void silent(void *ud, virErrorPtr e) { (void)ud; (void)e; }

/* libvirt's keepalive and close callbacks need its event loop to run: one
 * thread of the process runs it for every connection.
 *
 * Not in poll all the time, though: while that thread waits in the loop,
 * every call on a connection, which takes the connection's socket out of
 * the loop and puts it back, wakes it, and with a thousand VMs on the move
 * those wake-ups cost more than the calls themselves. So the loop runs one
 * pass that does not wait (a timer due at every pass ends it), then the
 * thread sleeps EVENTS_PAUSE_NS with the loop unowned, where a change
 * wakes nobody. Keepalive's messages and a closed connection's callback
 * wait at most that long; keepalive counts in seconds. */
#define EVENTS_PAUSE_NS (20 * 1000 * 1000)

static pthread_once_t events_once = PTHREAD_ONCE_INIT;
static bool events_running;

static void events_pass_end(int timer, void *opaque)
{
        (void)timer;
        (void)opaque;
}

static void *event_loop(void *arg)
{
        (void)arg;
        const struct timespec pause = { .tv_nsec = EVENTS_PAUSE_NS };
        while (virEventRunDefaultImpl() >= 0)
                nanosleep(&pause, NULL);
        return NULL;
}

static void events_start(void)
{
        pthread_t t;
        if (virEventRegisterDefaultImpl() < 0 || virEventAddTimeout(0, events_pass_end, NULL, NULL) < 0 ||
            pthread_create(&t, NULL, event_loop, NULL) != 0)
                return;
        pthread_detach(t);
        events_running = true;
}

void vp_hv_init(void)
{
        /* libvirt prints its warnings on stderr, ahead of the one line vpool
         * prints for a failure (a refused TLS certificate gives three).
         * LIBVIRT_DEBUG=warning, or any log setting of the operator's own,
         * brings them back. libvirt reads these once, when it initialises:
         * that must not happen before this (inspect.c loads libguestfs,
         * which initialises libvirt as it loads, only when it inspects). */
        if (!getenv("LIBVIRT_DEBUG") && !getenv("LIBVIRT_LOG_OUTPUTS") && !getenv("LIBVIRT_LOG_FILTERS"))
                setenv("LIBVIRT_DEBUG", "error", 0);
        virSetErrorFunc(NULL, silent);
        xmlInitParser();
        pthread_once(&events_once, events_start);
}

static void on_close(virConnectPtr conn, int reason, void *opaque)
{
        (void)conn;
        (void)reason;
        atomic_store((atomic_bool *)opaque, true);
}

int vp_hv_watch(virConnectPtr conn, atomic_bool **ret_closed)
{
        *ret_closed = NULL;
        if (!events_running)
                return -ENOTSUP;
        /* A host that stops answering is found within interval * (count + 1)
         * seconds: the connection closes and every call on it fails
         * instead of waiting for TCP to give up. */
        if (virConnectSetKeepAlive(conn, VP_HV_KEEPALIVE_INTERVAL, VP_HV_KEEPALIVE_COUNT) < 0)
                return -EIO;
        atomic_bool *closed = vp_xcalloc(1, sizeof(*closed));
        if (virConnectRegisterCloseCallback(conn, on_close, closed, free) < 0) {
                free(closed);
                return -EIO;
        }
        *ret_closed = closed;
        return 0;
}

static const char *lv_msg(void)
{
        const char *m = virGetLastErrorMessage();
        return m && *m ? m : "unknown libvirt error";
}

static bool file_in(const char *dir, const char *name)
{
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
                return false;
        return access(path, F_OK) == 0;
}

/* The value of KEY in URI's query, unescaped, or NULL. Caller frees. */
static char *uri_param(xmlURIPtr u, const char *key)
{
        size_t kl = strlen(key);
        for (const char *p = u->query_raw; p && *p;) {
                const char *end = p + strcspn(p, "&");
                if ((size_t)(end - p) > kl && !strncmp(p, key, kl) && p[kl] == '=')
                        return xmlURIUnescapeString(p + kl + 1, (int)(end - p - (ptrdiff_t)kl - 1), NULL);
                p = *end ? end + 1 : end;
        }
        return NULL;
}

/* Where libvirt looks for its TLS client files: the URI's pkipath, else a
 * user's ~/.pki/libvirt when it holds a certificate, else the system's
 * /etc/pki. Fills the folder of the client's certificate and key, and the
 * paths of the key and of the CA certificate. */
struct client_pki {
        char dir[PATH_MAX];
        char key[PATH_MAX + 32];
        char ca[PATH_MAX + 32];
};

static void client_pki_find(const char *pkipath, struct client_pki *p)
{
        const char *home = getenv("HOME");
        if (!pkipath && geteuid() != 0 && home) {
                snprintf(p->dir, sizeof(p->dir), "%s/.pki/libvirt", home);
                if (file_in(p->dir, "clientcert.pem"))
                        pkipath = p->dir;
        }
        if (pkipath) {
                if (pkipath != p->dir)
                        snprintf(p->dir, sizeof(p->dir), "%s", pkipath);
                snprintf(p->key, sizeof(p->key), "%s/clientkey.pem", p->dir);
                snprintf(p->ca, sizeof(p->ca), "%s/cacert.pem", p->dir);
                return;
        }
        snprintf(p->dir, sizeof(p->dir), "/etc/pki/libvirt");
        snprintf(p->key, sizeof(p->key), "/etc/pki/libvirt/private/clientkey.pem");
        snprintf(p->ca, sizeof(p->ca), "/etc/pki/CA/cacert.pem");
}

/* What libvirt leaves unsaid when a qemu+tls:// connection fails: its
 * refusal of the host's certificate names neither the CA nor the name it
 * checked (the reason goes to its warning log only), and a missing client
 * certificate shows only as the host's refusal, "Unable to read TLS
 * confirmation". Writes ": <cause>" to OUT, or nothing for other URIs and
 * failures. */
static void tls_cause(const char *uri, virErrorPtr e, char *out, size_t outsz)
{
        xmlURIPtr u = xmlParseURI(uri);
        if (!u)
                return;
        size_t sl = u->scheme ? strlen(u->scheme) : 0;
        if (sl > 4 && !strcmp(u->scheme + sl - 4, "+tls")) {
                char *pkipath = uri_param(u, "pkipath");
                struct client_pki p;
                client_pki_find(pkipath, &p);
                bool has_ca = access(p.ca, F_OK) == 0;
                if (e && e->code == VIR_ERR_AUTH_FAILED && e->message && strstr(e->message, "certificate"))
                        snprintf(out, outsz, ": the host's certificate is not signed by the CA in '%.400s', "
                                 "or does not name '%.100s'", p.ca, u->server ? u->server : "localhost");
                /* Without the CA file libvirt stops earlier, and says so. */
                else if (has_ca && !file_in(p.dir, "clientcert.pem"))
                        snprintf(out, outsz, ": no client certificate '%.400s/clientcert.pem'", p.dir);
                else if (has_ca && access(p.key, F_OK) != 0)
                        snprintf(out, outsz, ": no client key '%.400s'", p.key);
                xmlFree(pkipath);
        }
        xmlFreeURI(u);
}

int vp_hv_connect(const char *uri, virConnectPtr *ret, struct vp_error *err)
{
        virConnectPtr c = virConnectOpen(uri);
        if (!c) {
                virErrorPtr e = virGetLastError();
                int code = e && (e->code == VIR_ERR_INVALID_ARG || e->code == VIR_ERR_PARSE_FAILED ||
                                 e->code == VIR_ERR_NO_CONNECT) ? -EINVAL : -EHOSTUNREACH;
                char cause[600] = "";
                tls_cause(uri, e, cause, sizeof(cause));
                return vp_err(err, code, "cannot connect to '%s': %s%s", uri, lv_msg(), cause);
        }
        *ret = c;
        return 0;
}

struct xdoc {
        xmlDocPtr doc;
        xmlXPathContextPtr ctx;
};

static void xdoc_free(struct xdoc *x)
{
        if (x->ctx)
                xmlXPathFreeContext(x->ctx);
        if (x->doc)
                xmlFreeDoc(x->doc);
}

static int xdoc_parse(const char *xml, struct xdoc *x, struct vp_error *err)
{
        x->doc = xmlReadMemory(xml, (int)strlen(xml), "caps.xml", NULL, XML_PARSE_NONET | XML_PARSE_NOERROR |
                                                                             XML_PARSE_NOWARNING);
        if (!x->doc)
                return vp_err(err, -EBADMSG, "hypervisor returned unparsable XML");
        x->ctx = xmlXPathNewContext(x->doc);
        if (!x->ctx)
                abort();
        return 0;
}

/* Append every string value matched by EXPR to OUT as a comma separated
 * list without duplicates. Returns the number of matches. */
static int xpath_list(struct xdoc *x, const char *expr, char *out, size_t outsz)
{
        xmlXPathObjectPtr o = xmlXPathEvalExpression((const xmlChar *)expr, x->ctx);
        int n = 0;
        if (o && o->nodesetval) {
                for (int i = 0; i < o->nodesetval->nodeNr; i++) {
                        xmlChar *v = xmlNodeGetContent(o->nodesetval->nodeTab[i]);
                        if (!v)
                                continue;
                        const char *s = (const char *)v;
                        /* Skip duplicates: whole-item match in the list so far. */
                        bool dup = false;
                        size_t sl = strlen(s);
                        for (const char *p = out; *p;) {
                                const char *e = strchr(p, ',');
                                size_t l = e ? (size_t)(e - p) : strlen(p);
                                if (l == sl && strncmp(p, s, l) == 0)
                                        dup = true;
                                p = e ? e + 1 : p + l;
                        }
                        if (!dup && *s && strlen(out) + sl + 2 < outsz) {
                                if (*out)
                                        strcat(out, ",");
                                strcat(out, s);
                        }
                        xmlFree(v);
                        n++;
                }
        }
        xmlXPathFreeObject(o);
        return n;
}

static int domcaps(virConnectPtr conn, const char *arch, const char *machine, const char *type,
                   struct xdoc *x, struct vp_error *err)
{
        char *xml = virConnectGetDomainCapabilities(conn, NULL, arch, machine, type, 0);
        if (!xml)
                return vp_err(err, -EOPNOTSUPP, "%s", lv_msg());
        int r = xdoc_parse(xml, x, err);
        free(xml);
        return r;
}

const char *vp_hv_pick_domain_type(const char *domain_types)
{
        return vp_list_has(domain_types, "kvm") ? "kvm" : "qemu";
}

static void sleep_ms(long ms);
static int64_t now_ms(void);

bool vp_hv_kvm_works(virConnectPtr conn, const char *arch, const char *kernel, const char *log_path,
                     int timeout_ms)
{
        char name[64], xml[4096];
        snprintf(name, sizeof(name), "vpool-kvm-probe-%ld", (long)getpid());
        unlink(log_path);
        snprintf(xml, sizeof(xml),
                 "<domain type='kvm'><name>%s</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>"
                 "<os><type arch='%s' machine='pc'>hvm</type><kernel>%s</kernel>"
                 "<cmdline>console=ttyS0 panic=-1</cmdline></os><features><acpi/></features>"
                 "<on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>"
                 "<devices><serial type='pty'><log file='%s' append='off'/><target port='0'/></serial>"
                 "<memballoon model='none'/></devices></domain>",
                 name, arch, kernel, log_path);
        virDomainPtr d = virDomainCreateXML(conn, xml, VIR_DOMAIN_START_AUTODESTROY);
        if (!d) {
                virResetLastError();
                return false;
        }
        bool works = false;
        for (int64_t deadline = now_ms() + timeout_ms; !works && now_ms() < deadline; sleep_ms(200)) {
                FILE *f = fopen(log_path, "re");
                if (!f)
                        continue;
                char buf[16384];
                size_t n = fread(buf, 1, sizeof(buf) - 1, f);
                fclose(f);
                works = memmem(buf, n, "Linux version", 13) != NULL;
        }
        virDomainDestroy(d);
        virDomainFree(d);
        virResetLastError();
        unlink(log_path);
        return works;
}

int vp_hv_probe(virConnectPtr conn, struct vp_hv_info *ret, struct vp_error *err)
{
        struct vp_hv_info info = { 0 };
        char *caps = virConnectGetCapabilities(conn);
        if (!caps)
                return vp_err(err, -EIO, "cannot read capabilities: %s", lv_msg());
        struct xdoc x = { 0 };
        int r = xdoc_parse(caps, &x, err);
        free(caps);
        if (r < 0)
                return r;
        xpath_list(&x, "/capabilities/host/cpu/arch", info.arch, sizeof(info.arch));
        if (!info.arch[0])
                snprintf(info.arch, sizeof(info.arch), "x86_64");
        char expr[256], types[64] = "";
        snprintf(expr, sizeof(expr), "/capabilities/guest[os_type='hvm']/arch[@name='%s']/domain/@type", info.arch);
        xpath_list(&x, expr, types, sizeof(types));
        snprintf(expr, sizeof(expr), "/capabilities/guest[os_type='hvm']/arch[@name='%s']/machine", info.arch);
        xpath_list(&x, expr, info.machines, sizeof(info.machines));
        snprintf(expr, sizeof(expr), "/capabilities/guest[os_type='hvm']/arch[@name='%s']/machine/@canonical",
                 info.arch);
        xpath_list(&x, expr, info.machines, sizeof(info.machines));
        xdoc_free(&x);

        /* The capabilities list kvm wherever /dev/kvm exists; only a domain
         * type whose domain capabilities libvirt can build is usable. */
        for (const char *t = types; *t;) {
                const char *e = strchr(t, ',');
                char one[16];
                snprintf(one, sizeof(one), "%.*s", (int)(e ? e - t : (ptrdiff_t)strlen(t)), t);
                struct xdoc dx = { 0 };
                if (domcaps(conn, info.arch, NULL, one, &dx, NULL) >= 0) {
                        if (info.domain_types[0])
                                strcat(info.domain_types, ",");
                        strncat(info.domain_types, one, sizeof(info.domain_types) - strlen(info.domain_types) - 1);
                        if (!info.disk_buses[0]) {
                                xpath_list(&dx, "/domainCapabilities/devices/disk/enum[@name='bus']/value",
                                           info.disk_buses, sizeof(info.disk_buses));
                                /* libvirt's name for UEFI firmware is efi. */
                                bool efi = xpath_list(&dx, "/domainCapabilities/os/enum[@name='firmware']/value[.='efi']",
                                                      expr, sizeof(expr)) > 0;
                                snprintf(info.firmwares, sizeof(info.firmwares), "%s%s%s",
                                         vp_firmware_to_string(VP_FIRMWARE_BIOS), efi ? "," : "",
                                         efi ? vp_firmware_to_string(VP_FIRMWARE_UEFI) : "");
                        }
                }
                xdoc_free(&dx);
                if (!e)
                        break;
                t = e + 1;
        }
        if (!info.domain_types[0])
                return vp_err(err, -EOPNOTSUPP, "hypervisor offers no usable domain type for %s", info.arch);
        /* libvirt's domain capabilities do not enumerate NIC models; these
         * are the ones every QEMU build for this architecture emulates. */
        if (streq(info.arch, "x86_64") || streq(info.arch, "i686")) {
                _cleanup_free_ char *all = vp_nic_model_list(",", false);
                snprintf(info.nic_models, sizeof(info.nic_models), "%s", all);
        } else {
                snprintf(info.nic_models, sizeof(info.nic_models), "%s", vp_nic_model_to_string(VP_NIC_VIRTIO));
        }

        virNodeInfo ni;
        if (virNodeGetInfo(conn, &ni) == 0) {
                info.cpus = ni.cpus;
                info.memory_kib = (int64_t)ni.memory;
        }
        char *host = virConnectGetHostname(conn);
        if (host) {
                snprintf(info.hostname, sizeof(info.hostname), "%s", host);
                free(host);
        }
        *ret = info;
        return 0;
}

int vp_hv_check_hardware(virConnectPtr conn, const char *where, const char *arch,
                         const char *domain_type, const char *machine, const char *disk_bus,
                         const char *nic, const char *firmware, struct vp_error *err)
{
        struct vp_hv_info info;
        int r = vp_hv_probe(conn, &info, err);
        if (r < 0)
                return r;
        if (!vp_list_has(info.machines, machine))
                return vp_err(err, -EOPNOTSUPP, "%s does not offer machine type '%s'", where, machine);
        if (!vp_list_has(info.domain_types, domain_type))
                return vp_err(err, -EOPNOTSUPP, "%s does not offer domain type '%s'", where, domain_type);
        struct xdoc x = { 0 };
        r = domcaps(conn, arch, machine, domain_type, &x, err);
        if (r < 0) {
                vp_err_prefix(err, "%s machine '%s'", where, machine);
                return r;
        }
        char buses[128] = "", fw[64] = "";
        xpath_list(&x, "/domainCapabilities/devices/disk/enum[@name='bus']/value", buses, sizeof(buses));
        xpath_list(&x, "/domainCapabilities/os/enum[@name='firmware']/value", fw, sizeof(fw));
        xdoc_free(&x);
        if (!vp_list_has(buses, disk_bus))
                return vp_err(err, -EOPNOTSUPP, "%s does not offer disk bus '%s' on machine '%s' (offers %s)",
                              where, disk_bus, machine, buses);
        if (vp_nic_model_from_string(nic) != VP_NIC_NONE && !vp_list_has(info.nic_models, nic))
                return vp_err(err, -EOPNOTSUPP, "%s does not offer NIC model '%s'", where, nic);
        /* libvirt's name for UEFI firmware is efi. */
        if (vp_firmware_from_string(firmware) == VP_FIRMWARE_UEFI && !vp_list_has(fw, "efi"))
                return vp_err(err, -EOPNOTSUPP, "%s does not offer UEFI firmware on machine '%s'",
                              where, machine);
        return 0;
}

int vp_hv_define(virConnectPtr conn, const char *xml, bool validate, struct vp_error *err)
{
        virDomainPtr d = virDomainDefineXMLFlags(conn, xml, validate ? VIR_DOMAIN_DEFINE_VALIDATE : 0);
        if (!d)
                return vp_err(err, -EIO, "cannot define domain: %s", lv_msg());
        virDomainFree(d);
        return 0;
}

static int lookup(virConnectPtr conn, const char *name, virDomainPtr *ret, struct vp_error *err)
{
        virDomainPtr d = virDomainLookupByName(conn, name);
        if (!d) {
                virErrorPtr e = virGetLastError();
                if (e && e->code == VIR_ERR_NO_DOMAIN)
                        return vp_err(err, -ENOENT, "domain '%s' is not defined", name);
                return vp_err(err, -EIO, "domain '%s': %s", name, lv_msg());
        }
        *ret = d;
        return 0;
}

/* Whether D runs: 1 or 0. Anything but libvirt's definite answer (a
 * connection lost between two calls answers -1) is -EIO: the domain may
 * well run, and nothing that needs it stopped may go on. */
static int domain_active(virDomainPtr d, const char *name, struct vp_error *err)
{
        int a = virDomainIsActive(d);
        if (a == 0 || a == 1)
                return a;
        return vp_err(err, -EIO, "cannot tell whether domain '%s' runs: %s", name, lv_msg());
}

/* Destroy D: done only when it then definitely does not run. */
static int destroy(virDomainPtr d, const char *name, struct vp_error *err)
{
        if (virDomainDestroy(d) == 0)
                return 0;
        struct vp_error lerr = { 0 };
        if (domain_active(d, name, &lerr) == 0)
                return 0;
        return vp_err(err, -EIO, "cannot stop domain '%s': %s", name, lv_msg());
}

/* A vpool domain's NVRAM lives in its user delta collection and belongs to
 * the delta, not to the definition: it stays. */
#define UNDEFINE_FLAGS \
        (VIR_DOMAIN_UNDEFINE_KEEP_NVRAM | VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)

/* Undefine D, named NAME (destroying it first when FORCE and it runs). */
static int undefine_domain(virDomainPtr d, const char *name, bool force, struct vp_error *err)
{
        int r, active = domain_active(d, name, err);
        if (active < 0)
                return active;
        if (active) {
                if (!force)
                        return vp_err(err, -EBUSY, "domain '%s' is running", name);
                if ((r = destroy(d, name, err)) < 0)
                        return r;
        }
        if (virDomainUndefineFlags(d, UNDEFINE_FLAGS) < 0)
                return vp_err(err, -EIO, "cannot undefine domain '%s': %s", name, lv_msg());
        return 0;
}

int vp_hv_undefine(virConnectPtr conn, const char *name, bool force, struct vp_error *err)
{
        _cleanup_dom_ virDomainPtr d = NULL;
        int r = lookup(conn, name, &d, err);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        return undefine_domain(d, name, force, err);
}

int vp_hv_undefine_own(virConnectPtr conn, const char *name, const char *uuid, const char *pool,
                       int64_t generation, struct vp_error *err)
{
        /* Looked up by UUID, checked, and undefined as that very object: a
         * domain of the same name defined by anyone else is never reached. */
        _cleanup_dom_ virDomainPtr d = virDomainLookupByUUIDString(conn, uuid);
        if (!d) {
                virErrorPtr e = virGetLastError();
                if (e && e->code == VIR_ERR_NO_DOMAIN) {
                        virResetLastError();
                        return 0;
                }
                return vp_err(err, -EIO, "domain '%s': %s", name, lv_msg());
        }
        const char *dname = virDomainGetName(d);
        if (!dname || !streq(dname, name))
                return 0;
        char *xml = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE);
        if (!xml)
                return vp_err(err, -EIO, "domain '%s': %s", name, lv_msg());
        char mpool[64];
        int64_t mgen = -1;
        bool ours = vp_domxml_parse_metadata(xml, mpool, sizeof(mpool), &mgen) == 0 && streq(mpool, pool) &&
                    mgen == generation;
        free(xml);
        if (!ours)
                return 0;
        int r = undefine_domain(d, name, true, err);
        return r < 0 ? r : 1;
}

int vp_hv_start(virConnectPtr conn, const char *name, struct vp_error *err)
{
        _cleanup_dom_ virDomainPtr d = NULL;
        int r = lookup(conn, name, &d, err);
        if (r < 0)
                return r;
        if (virDomainIsActive(d) == 1)
                return 0;
        if (virDomainCreate(d) < 0) {
                const char *msg = lv_msg();
                return vp_err(err, vp_hv_image_lock_error(msg) ? -EBUSY : -EIO, "cannot start domain '%s': %s",
                              name, msg);
        }
        return 0;
}

bool vp_hv_image_lock_error(const char *msg)
{
        /* QEMU's words when another process holds an image's lock
         * (block/file-posix.c: raw_check_lock_bytes). */
        return strstr(msg, "Failed to get \"write\" lock") || strstr(msg, "Failed to get shared \"write\" lock") ||
               strstr(msg, "Is another process using the image");
}

static void sleep_ms(long ms)
{
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Stop D, named NAME, which runs (ACTIVE 1) or not: as vp_hv_stop says. */
static int stop_domain(virDomainPtr d, const char *name, int active, int timeout_sec, bool force,
                       struct vp_error *err)
{
        if (active <= 0)
                return active;
        if (timeout_sec > 0) {
                /* ACPI first; a guest that ignores it is forced below if asked. */
                if (virDomainShutdownFlags(d, VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN) < 0 &&
                    virDomainIsActive(d) == 1)
                        virResetLastError();
                /* Polled often: every moment between the guest's end and
                 * the next step is downtime. */
                int64_t deadline = now_ms() + (int64_t)timeout_sec * 1000;
                while (now_ms() < deadline) {
                        if ((active = domain_active(d, name, err)) <= 0)
                                return active;
                        sleep_ms(20);
                }
        }
        if ((active = domain_active(d, name, err)) <= 0)
                return active;
        if (!force)
                return vp_err(err, -ETIMEDOUT, "domain '%s' did not shut down within %d s (use --force)",
                              name, timeout_sec);
        return destroy(d, name, err);
}

int vp_hv_stop(virConnectPtr conn, const char *name, int timeout_sec, bool force, struct vp_error *err)
{
        _cleanup_dom_ virDomainPtr d = NULL;
        int r = lookup(conn, name, &d, err);
        if (r < 0)
                return r;
        return stop_domain(d, name, domain_active(d, name, err), timeout_sec, force, err);
}

/* Whether the last libvirt error says the domain does not exist. */
static bool no_domain(void)
{
        virErrorPtr e = virGetLastError();
        return e && e->code == VIR_ERR_NO_DOMAIN;
}

int vp_hv_retire(virDomainPtr d, const char *name, int timeout_sec, bool *ret_ran, struct vp_error *err)
{
        *ret_ran = false;
        int active = virDomainIsActive(d);
        /* Gone since it was listed (undefined by hand): nothing left to end. */
        if (active < 0 && no_domain())
                return 0;
        if (active < 0)
                return domain_active(d, name, err);
        *ret_ran = active == 1;
        int r = stop_domain(d, name, active, timeout_sec, true, err);
        if (r < 0)
                return r;
        if (virDomainUndefineFlags(d, UNDEFINE_FLAGS) < 0) {
                if (no_domain())
                        return 0;
                return vp_err(err, -EIO, "cannot undefine domain '%s': %s", name, lv_msg());
        }
        return 0;
}

/* libvirt's state word as vpool's. */
static enum vp_vm_state state_of(int state)
{
        static const enum vp_vm_state states[] = {
                [VIR_DOMAIN_NOSTATE] = VP_VM_NOSTATE, [VIR_DOMAIN_RUNNING] = VP_VM_RUNNING,
                [VIR_DOMAIN_BLOCKED] = VP_VM_BLOCKED, [VIR_DOMAIN_PAUSED] = VP_VM_PAUSED,
                [VIR_DOMAIN_SHUTDOWN] = VP_VM_SHUTTING_DOWN, [VIR_DOMAIN_SHUTOFF] = VP_VM_SHUT_OFF,
                [VIR_DOMAIN_CRASHED] = VP_VM_CRASHED, [VIR_DOMAIN_PMSUSPENDED] = VP_VM_SUSPENDED,
        };
        return state >= 0 && (size_t)state < ELEMENTSOF(states) ? states[state] : VP_VM_UNKNOWN;
}

int vp_hv_domain_state(virConnectPtr conn, const char *name, enum vp_vm_state *ret, struct vp_error *err)
{
        _cleanup_dom_ virDomainPtr d = NULL;
        int r = lookup(conn, name, &d, err);
        if (r == -ENOENT) {
                *ret = VP_VM_UNDEFINED;
                return 0;
        }
        if (r < 0)
                return r;
        int state, reason;
        if (virDomainGetState(d, &state, &reason, 0) < 0)
                return vp_err(err, -EIO, "domain '%s': %s", name, lv_msg());
        *ret = state_of(state);
        return 0;
}

int vp_hv_clear_incoming(virConnectPtr src, virConnectPtr dst, const char *name, const char *uuid,
                         struct vp_error *err)
{
        _cleanup_dom_ virDomainPtr dd = virDomainLookupByUUIDString(dst, uuid), sd = NULL;
        int state, reason, r;
        if (!dd) {
                virResetLastError();
                return 0;
        }
        if (virDomainGetState(dd, &state, &reason, 0) < 0 || state != VIR_DOMAIN_PAUSED)
                return 0;
        if ((r = lookup(src, name, &sd, err)) < 0)
                return r == -ENOENT ? 0 : r;
        int sstate, sreason;
        if (virDomainGetState(sd, &sstate, &sreason, 0) < 0 ||
            (sstate != VIR_DOMAIN_RUNNING && sstate != VIR_DOMAIN_PAUSED))
                return 0;
        /* Before the switch-over the source is the VM; the target never ran
         * a guest instruction. */
        if ((r = destroy(dd, name, err)) < 0)
                return r;
        if (sstate == VIR_DOMAIN_PAUSED && sreason == VIR_DOMAIN_PAUSED_MIGRATION && virDomainResume(sd) < 0)
                return vp_err(err, -EIO, "domain '%s' stays paused on its source after a move cut short: %s", name,
                              lv_msg());
        return 1;
}

bool vp_hv_job_wait(virConnectPtr conn, const char *name, int timeout_sec)
{
        _cleanup_dom_ virDomainPtr d = NULL;
        if (lookup(conn, name, &d, NULL) < 0)
                return true;
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (;;) {
                virDomainJobInfo info;
                if (virDomainGetJobInfo(d, &info) < 0 || info.type == VIR_DOMAIN_JOB_NONE)
                        return true;
                struct timespec now;
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec - t0.tv_sec >= timeout_sec)
                        return false;
                usleep(200 * 1000);
        }
}

bool vp_hv_incoming_wait(virConnectPtr conn, const char *name, int timeout_sec)
{
        _cleanup_dom_ virDomainPtr d = NULL;
        if (lookup(conn, name, &d, NULL) < 0) {
                virResetLastError();
                return true;
        }
        int64_t deadline = now_ms() + (int64_t)timeout_sec * 1000;
        for (;;) {
                int state, reason;
                if (virDomainGetState(d, &state, &reason, 0) < 0 || state != VIR_DOMAIN_PAUSED ||
                    (reason != VIR_DOMAIN_PAUSED_MIGRATION && reason != VIR_DOMAIN_PAUSED_STARTING_UP)) {
                        virResetLastError();
                        return true;
                }
                if (now_ms() >= deadline)
                        return false;
                sleep_ms(200);
        }
}

int vp_hv_uuid(virConnectPtr conn, const char *name, char uuid[VIR_UUID_STRING_BUFLEN], struct vp_error *err)
{
        _cleanup_dom_ virDomainPtr d = NULL;
        int r = lookup(conn, name, &d, err);
        if (r < 0) {
                virResetLastError();
                return r;
        }
        if (virDomainGetUUIDString(d, uuid) < 0)
                return vp_err(err, -EIO, "domain '%s': %s", name, lv_msg());
        return 0;
}

static int domstate_cmp(const void *a, const void *b)
{
        return strcmp(((const struct vp_hv_domstate *)a)->name, ((const struct vp_hv_domstate *)b)->name);
}

static int name_cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

int vp_hv_states_load(virConnectPtr conn, struct vp_hv_states *ret, struct vp_error *err)
{
        /* Every domain first, then the active ones: a domain is in the
         * first list for sure if defined; only its activity may be stale. */
        virDomainPtr *all = NULL, *act = NULL;
        int n = virConnectListAllDomains(conn, &all, 0);
        if (n < 0)
                return vp_err(err, -EIO, "cannot list domains: %s", lv_msg());
        int na = virConnectListAllDomains(conn, &act, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
        if (na < 0) {
                for (int i = 0; i < n; i++)
                        virDomainFree(all[i]);
                free(all);
                return vp_err(err, -EIO, "cannot list domains: %s", lv_msg());
        }
        char **active = vp_xcalloc((size_t)na + 1, sizeof(char *));
        for (int i = 0; i < na; i++)
                active[i] = (char *)virDomainGetName(act[i]);
        qsort(active, (size_t)na, sizeof(char *), name_cmp);
        struct vp_hv_states s = { .v = vp_xcalloc((size_t)n + 1, sizeof(*s.v)), .n = (size_t)n };
        for (int i = 0; i < n; i++) {
                const char *name = virDomainGetName(all[i]);
                s.v[i].name = vp_strdup(name);
                s.v[i].active = bsearch(&name, active, (size_t)na, sizeof(char *), name_cmp) != NULL;
                virDomainFree(all[i]);
        }
        for (int i = 0; i < na; i++)
                virDomainFree(act[i]);
        free(active);
        free(all);
        free(act);
        qsort(s.v, s.n, sizeof(*s.v), domstate_cmp);
        *ret = s;
        return 0;
}

int vp_hv_states_stats(virConnectPtr conn, struct vp_hv_states *ret, struct vp_error *err)
{
        virDomainStatsRecordPtr *recs = NULL;
        int n = virConnectGetAllDomainStats(conn, VIR_DOMAIN_STATS_STATE | VIR_DOMAIN_STATS_VCPU, &recs, 0);
        if (n < 0)
                return vp_err(err, -EIO, "cannot read the domains' statistics: %s", lv_msg());
        struct vp_hv_states s = { .v = vp_xcalloc((size_t)n + 1, sizeof(*s.v)), .n = (size_t)n };
        for (int i = 0; i < n; i++) {
                int state = VIR_DOMAIN_NOSTATE;
                unsigned vcpus = 0;
                virTypedParamsGetInt(recs[i]->params, recs[i]->nparams, "state.state", &state);
                virTypedParamsGetUInt(recs[i]->params, recs[i]->nparams, "vcpu.current", &vcpus);
                s.v[i].name = vp_strdup(virDomainGetName(recs[i]->dom));
                s.v[i].state = state_of(state);
                s.v[i].active = vp_vm_state_active(s.v[i].state) || s.v[i].state == VP_VM_SHUTTING_DOWN;
                s.v[i].vcpus = (int)vcpus;
        }
        virDomainStatsRecordListFree(recs);
        qsort(s.v, s.n, sizeof(*s.v), domstate_cmp);
        *ret = s;
        return 0;
}

const struct vp_hv_domstate *vp_hv_states_find(const struct vp_hv_states *s, const char *name)
{
        struct vp_hv_domstate key = { .name = (char *)name };
        return s->n ? bsearch(&key, s->v, s->n, sizeof(*s->v), domstate_cmp) : NULL;
}

void vp_hv_states_free(struct vp_hv_states *s)
{
        for (size_t i = 0; i < s->n; i++)
                free(s->v[i].name);
        free(s->v);
        s->v = NULL;
        s->n = 0;
}

int vp_hv_xml(virConnectPtr conn, const char *name, char **ret, struct vp_error *err)
{
        _cleanup_dom_ virDomainPtr d = NULL;
        int r = lookup(conn, name, &d, err);
        if (r < 0)
                return r;
        char *xml = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE);
        if (!xml)
                return vp_err(err, -EIO, "domain '%s': %s", name, lv_msg());
        *ret = xml;
        return 0;
}

int vp_hv_inspect_all(virConnectPtr conn, struct vp_dominfo **ret, size_t *ret_n, struct vp_error *err)
{
        virDomainPtr *doms = NULL;
        int n = virConnectListAllDomains(conn, &doms, 0);
        if (n < 0)
                return vp_err(err, -EIO, "cannot list domains: %s", lv_msg());
        struct vp_dominfo *out = vp_xcalloc((size_t)n, sizeof(*out));
        size_t k = 0;
        for (int i = 0; i < n; i++) {
                char *xml = virDomainGetXMLDesc(doms[i], VIR_DOMAIN_XML_INACTIVE);
                struct vp_dominfo *d = &out[k];
                snprintf(d->name, sizeof(d->name), "%s", virDomainGetName(doms[i]));
                d->active = virDomainIsActive(doms[i]) == 1;
                virDomainFree(doms[i]);
                if (!xml)
                        continue;   /* undefined meanwhile */
                struct xdoc x = { 0 };
                if (xdoc_parse(xml, &x, NULL) >= 0) {
                        xpath_list(&x, "/domain/uuid", d->uuid, sizeof(d->uuid));
                        xmlXPathObjectPtr o = xmlXPathEvalExpression(
                                (const xmlChar *)"/domain/devices/disk/source/@file", x.ctx);
                        if (o && o->nodesetval)
                                for (int j = 0; j < o->nodesetval->nodeNr && d->nfiles < 8; j++) {
                                        xmlChar *v = xmlNodeGetContent(o->nodesetval->nodeTab[j]);
                                        if (v)
                                                snprintf(d->files[d->nfiles++], sizeof(d->files[0]), "%s",
                                                         (const char *)v);
                                        xmlFree(v);
                                }
                        xmlXPathFreeObject(o);
                        xdoc_free(&x);
                }
                d->has_meta = vp_domxml_parse_metadata(xml, d->pool, sizeof(d->pool), &d->generation) == 0;
                free(xml);
                k++;
        }
        free(doms);
        *ret = out;
        *ret_n = k;
        return 0;
}

/* ---- live move ------------------------------------------------------------ */

/* The migration call blocks until libvirt is done, so it runs in a thread
 * of its own while the caller's thread keeps the clock and can abort. */
struct live_job {
        virDomainPtr dom;
        const char *dst_uri;
        virTypedParameterPtr params;
        int nparams;
        unsigned int flags;
        int rc;
        char msg[512];             /* libvirt's error is per thread: copied here */
        _Atomic bool done;
};

static void *live_run(void *p)
{
        struct live_job *j = p;
        j->rc = virDomainMigrateToURI3(j->dom, j->dst_uri, j->params, (unsigned int)j->nparams, j->flags);
        if (j->rc < 0)
                snprintf(j->msg, sizeof(j->msg), "%s", lv_msg());
        j->done = true;
        return NULL;
}

/* Flags of a live move between hosts of one env over shared storage. */
static const unsigned int live_flags =
        VIR_MIGRATE_LIVE |
        /* The source daemon talks to the destination's itself, so the move
         * needs no controller in the middle once it started, and libvirt
         * protects the domain from other jobs for the whole of it. */
        VIR_MIGRATE_PEER2PEER |
        /* vpool's domains are persistent: defined on the destination with
         * the new generation's names (PERSIST_XML), gone from the source,
         * so no definition of the old names stays behind anywhere. */
        VIR_MIGRATE_PERSIST_DEST | VIR_MIGRATE_UNDEFINE_SOURCE |
        /* libvirt trusts only file systems it knows as shared (NFS, CephFS,
         * GlusterFS, GPFS, OCFS2...) and refuses any other as "migration
         * without shared storage is unsafe". vpool's shared storage is
         * shared by definition (the env sees it at one path; preflight
         * checks the master's digest there), whatever its type: a local
         * folder for hosts on one machine, a bind mount or an unlisted
         * cluster file system in production. The disks use cache='none',
         * which is the other half of what libvirt checks. */
        VIR_MIGRATE_UNSAFE |
        /* A guest whose disk fails mid-move stays on the source. */
        VIR_MIGRATE_ABORT_ON_ERROR;

/* The destination and persistent XML of D: its live (migratable) and
 * inactive descriptions with the disks renamed per HOW. */
static int live_xmls(virDomainPtr d, const char *name, const struct vp_hv_live *how, char **ret_live,
                     char **ret_persist, struct vp_error *err)
{
        static const unsigned int which[2] = {
                VIR_DOMAIN_XML_MIGRATABLE | VIR_DOMAIN_XML_SECURE,
                VIR_DOMAIN_XML_MIGRATABLE | VIR_DOMAIN_XML_SECURE | VIR_DOMAIN_XML_INACTIVE,
        };
        char *out[2] = { NULL, NULL };
        for (int i = 0; i < 2; i++) {
                _cleanup_free_ char *xml = virDomainGetXMLDesc(d, which[i]);
                if (!xml) {
                        free(out[0]);
                        return vp_err(err, -EIO, "domain '%s': %s", name, lv_msg());
                }
                out[i] = vp_domxml_move_disks(xml, how->moves, how->nmoves, how->generation, err);
                if (!out[i]) {
                        free(out[0]);
                        vp_err_prefix(err, "domain '%s'", name);
                        return err ? err->code : -EINVAL;
                }
        }
        *ret_live = out[0];
        *ret_persist = out[1];
        return 0;
}

/* Run the job J, aborting it once TIMEOUT_SEC passed. Returns whether it
 * was aborted. */
static bool live_wait(struct live_job *j, int timeout_sec)
{
        pthread_t t;
        if (pthread_create(&t, NULL, live_run, j) != 0)
                abort();
        bool aborted = false;
        int64_t deadline = now_ms() + (int64_t)timeout_sec * 1000;
        while (!j->done) {
                if (!aborted && now_ms() >= deadline) {
                        /* libvirt cancels QEMU's migration and resumes the
                         * guest on the source; too late (the destination
                         * already runs it) it refuses, and the move stands. */
                        if (virDomainAbortJob(j->dom) < 0)
                                virResetLastError();
                        aborted = true;
                }
                sleep_ms(10);
        }
        pthread_join(t, NULL);
        return aborted;
}

static const char *where_word(virConnectPtr conn, const char *name)
{
        enum vp_vm_state st = VP_VM_UNKNOWN;
        struct vp_error lerr = { 0 };
        if (vp_hv_domain_state(conn, name, &st, &lerr) < 0) {
                virResetLastError();
                return vp_vm_state_to_string(VP_VM_UNREACHABLE);
        }
        return vp_vm_state_to_string(st);
}

/* The error of a move that did not complete, saying where the domain is. */
static int live_failed(virConnectPtr src, virConnectPtr dst, const char *name, bool aborted, int timeout_sec,
                       const char *msg, struct vp_error *err)
{
        enum vp_vm_state s = VP_VM_UNKNOWN;
        struct vp_error lerr = { 0 };
        bool on_src = vp_hv_domain_state(src, name, &s, &lerr) == 0 && s == VP_VM_RUNNING;
        virResetLastError();
        char why[640];
        if (aborted)
                snprintf(why, sizeof(why), "did not finish within %d s and was aborted (%s)", timeout_sec, msg);
        else
                snprintf(why, sizeof(why), "failed: %s", msg);
        if (on_src)
                return vp_err(err, aborted ? -ETIMEDOUT : -EIO, "live move of domain '%s' %s; it still runs on the source",
                              name, why);
        return vp_err(err, -EIO, "live move of domain '%s' %s; source: %s, destination: %s", name, why,
                      where_word(src, name), where_word(dst, name));
}

static void live_stats(virConnectPtr dst, const char *name, struct vp_hv_live_stats *ret)
{
        *ret = (struct vp_hv_live_stats){ .downtime_ms = -1, .total_ms = -1 };
        _cleanup_dom_ virDomainPtr d = virDomainLookupByName(dst, name);
        int type, n = 0;
        virTypedParameterPtr p = NULL;
        /* The destination keeps the completed job's figures, sent along by
         * the source (the source's domain object is gone with it); kept
         * for whoever asks next too. */
        if (!d || virDomainGetJobStats(d, &type, &p, &n,
                                             VIR_DOMAIN_JOB_STATS_COMPLETED | VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED) < 0) {
                virResetLastError();
                return;
        }
        unsigned long long v;
        if (virTypedParamsGetULLong(p, n, VIR_DOMAIN_JOB_DOWNTIME, &v) == 1)
                ret->downtime_ms = (int64_t)v;
        if (virTypedParamsGetULLong(p, n, VIR_DOMAIN_JOB_TIME_ELAPSED, &v) == 1)
                ret->total_ms = (int64_t)v;
        virTypedParamsFree(p, n);
}

/* The owners of the moved disks, as the source's QEMU runs them. */
static void owners_before(const struct vp_hv_live *how, struct stat *st)
{
        for (size_t i = 0; i < how->nmoves; i++)
                if (stat(how->moves[i].from, &st[i]) < 0)
                        st[i].st_nlink = 0;
}

/* Each libvirtd remembers a disk's owner before it gives it to its QEMU,
 * and gives it back when its QEMU lets go: by the count kept on the inode
 * the source's and the destination's share, the source's gives nothing
 * back while the destination holds it. Two daemons update that count
 * unlocked (no metadata lock manager), and under load the source's can
 * read it before the destination's counted: it then gives the disk back
 * to its first owner under the running destination. A disk found given
 * back to root, which the source's QEMU did not run as, gets the owner it
 * ran under again (a destination that gave it another owner of its own
 * is left as it is). */
static void owners_keep(const struct vp_hv_live *how, const struct stat *before)
{
        for (size_t i = 0; i < how->nmoves; i++) {
                struct stat now;
                if (before[i].st_nlink && before[i].st_uid != 0 && stat(how->moves[i].to, &now) == 0 &&
                    now.st_ino == before[i].st_ino && now.st_uid == 0)
                        (void)!chown(how->moves[i].to, before[i].st_uid, before[i].st_gid);
        }
}

int vp_hv_migrate_live(virConnectPtr src, virConnectPtr dst, const char *name, const struct vp_hv_live *how,
                       struct vp_hv_live_stats *ret_stats, struct vp_error *err)
{
        _cleanup_dom_ virDomainPtr d = NULL;
        int r = lookup(src, name, &d, err);
        if (r < 0)
                return r;
        if ((r = domain_active(d, name, err)) <= 0)
                return r < 0 ? r : vp_err(err, -EINVAL, "domain '%s' does not run: nothing to move live", name);
        _cleanup_free_ char *live = NULL, *persist = NULL;
        if ((r = live_xmls(d, name, how, &live, &persist, err)) < 0)
                return r;
        if (how->max_downtime_ms > 0 && virDomainMigrateSetMaxDowntime(d, (unsigned long long)how->max_downtime_ms, 0) < 0)
                return vp_err(err, -EIO, "domain '%s': cannot set the migration's downtime: %s", name, lv_msg());

        virTypedParameterPtr params = NULL;
        int nparams = 0, maxparams = 0;
        if (virTypedParamsAddString(&params, &nparams, &maxparams, VIR_MIGRATE_PARAM_DEST_XML, live) < 0 ||
            virTypedParamsAddString(&params, &nparams, &maxparams, VIR_MIGRATE_PARAM_PERSIST_XML, persist) < 0 ||
            (how->stream_uri && virTypedParamsAddString(&params, &nparams, &maxparams, VIR_MIGRATE_PARAM_URI,
                                                        how->stream_uri) < 0))
                abort();
        _cleanup_free_ struct stat *owners = vp_xcalloc(how->nmoves ? how->nmoves : 1, sizeof(*owners));
        owners_before(how, owners);
        struct live_job j = { .dom = d, .dst_uri = how->dst_uri, .params = params, .nparams = nparams,
                              .flags = live_flags };
        bool aborted = live_wait(&j, how->timeout_sec);
        virTypedParamsFree(params, nparams);
        if (j.rc < 0)
                return live_failed(src, dst, name, aborted, how->timeout_sec, j.msg, err);

        /* libvirt said done: check it, as the caller will unlink the
         * names the source had open. */
        enum vp_vm_state s_src = VP_VM_UNKNOWN, s_dst = VP_VM_UNKNOWN;
        if ((r = vp_hv_domain_state(dst, name, &s_dst, err)) < 0 || (r = vp_hv_domain_state(src, name, &s_src, err)) < 0)
                return r;
        if (s_dst != VP_VM_RUNNING || s_src != VP_VM_UNDEFINED)
                return vp_err(err, -EIO, "live move of domain '%s' ended with it %s on the source and %s on the destination",
                              name, vp_vm_state_to_string(s_src), vp_vm_state_to_string(s_dst));
        owners_keep(how, owners);
        if (ret_stats)
                live_stats(dst, name, ret_stats);
        return 0;
}
