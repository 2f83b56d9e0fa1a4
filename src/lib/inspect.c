#include "inspect.h"

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <guestfs.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "guestcfg.h"
#include "model.h"
#include "vp-config.h"

/* The largest initramfs and configuration file read from a guest. */
#define MAX_INITRAMFS ((int64_t)512 << 20)
#define MAX_CONFIG ((int64_t)1 << 20)

static const char *const esp_guid = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
static const char *const bios_boot_guid = "21686148-6449-6E6F-744E-656564454649";

/* ---- libguestfs, loaded when an image is first inspected ----------------- */

/* libguestfs is opened with dlopen, not linked: its constructor initialises
 * libvirt as the program loads, before vpool can quiet libvirt's logging
 * (hv.c), and a program that never inspects an image need not load it and
 * the libraries it brings. The functions vpool calls: */
#define GFS_FUNCS(X) \
        X(add_drive_opts) \
        X(case_sensitive_path) \
        X(close) \
        X(create) \
        X(download) \
        X(exists) \
        X(filesize) \
        X(inspect_get_arch) \
        X(inspect_get_distro) \
        X(inspect_get_major_version) \
        X(inspect_get_minor_version) \
        X(inspect_get_mountpoints) \
        X(inspect_get_product_name) \
        X(inspect_get_type) \
        X(inspect_get_windows_systemroot) \
        X(inspect_os) \
        X(is_dir) \
        X(is_file) \
        X(last_error) \
        X(launch) \
        X(list_devices) \
        X(list_partitions) \
        X(ls) \
        X(mount_ro) \
        X(part_get_gpt_type) \
        X(part_get_mbr_id) \
        X(part_get_parttype) \
        X(part_to_dev) \
        X(part_to_partnum) \
        X(read_file) \
        X(set_error_handler) \
        X(shutdown) \
        X(vfs_type)

static struct {
#define GFS_POINTER(name) __typeof__(guestfs_##name) *name;
        GFS_FUNCS(GFS_POINTER)
#undef GFS_POINTER
} gfs;

static pthread_once_t gfs_once = PTHREAD_ONCE_INIT;
static char gfs_error[256];

static void gfs_load(void)
{
        void *h = dlopen(VP_GUESTFS_SONAME, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
                const char *e = dlerror();
                snprintf(gfs_error, sizeof(gfs_error), "%s", e ? e : "not found");
                return;
        }
#define GFS_RESOLVE(name)                                                                      \
        if (!(*(void **)&gfs.name = dlsym(h, "guestfs_" #name))) {                             \
                snprintf(gfs_error, sizeof(gfs_error), "%s lacks guestfs_" #name, VP_GUESTFS_SONAME); \
                return;                                                                        \
        }
        GFS_FUNCS(GFS_RESOLVE)
#undef GFS_RESOLVE
}

/* libguestfs's functions in GFS, or an error naming what is missing. */
static int gfs_open(struct vp_error *err)
{
        pthread_once(&gfs_once, gfs_load);
        if (gfs_error[0])
                return vp_err(err, -ENOENT,
                              "cannot inspect images: cannot load libguestfs (%s); install libguestfs0, "
                              "or declare the hardware and pass --no-inspect",
                              gfs_error);
        return 0;
}

/* ---- the child: libguestfs's side ---------------------------------------- */

static void gfs_freep(guestfs_h **g)
{
        if (*g)
                gfs.close(*g);
}

static void strv_free(char **v)
{
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
}
static void strv_freep(char ***v) { strv_free(*v); }
#define _cleanup_strv_ _cleanup_(strv_freep)

/* Tell the parent what the appliance is doing now. */
static void stage(int out, const char *what)
{
        dprintf(out, "stage %s\n", what);
}

static int gerr(guestfs_h *g, struct vp_error *err, const char *what)
{
        const char *m = gfs.last_error(g);
        return vp_err(err, -EIO, "%s: %s", what, m ? m : "libguestfs failed");
}

/* FILE of the guest (mounted) when it is a regular file of at most MAX
 * bytes; NULL otherwise, without an error: a guest lacks what it lacks. */
static char *read_small(guestfs_h *g, const char *file, int64_t max, size_t *ret_len)
{
        if (gfs.is_file(g, file) <= 0)
                return NULL;
        int64_t size = gfs.filesize(g, file);
        if (size < 0 || size > max)
                return NULL;
        return gfs.read_file(g, file, ret_len);
}

static void add_str(struct json_object *o, const char *key, const char *v)
{
        json_object_object_add(o, key, v && *v ? json_object_new_string(v) : NULL);
}

/* Feed each regular file of guest directory DIR named *SUFFIX to FN. */
static void read_dir(guestfs_h *g, const char *dir, const char *suffix, struct vp_netcfg *cfg,
                     void (*fn)(struct vp_netcfg *, const char *, size_t))
{
        if (gfs.is_dir(g, dir) <= 0)
                return;
        _cleanup_strv_ char **names = gfs.ls(g, dir);
        for (size_t i = 0; names && names[i]; i++) {
                size_t n = strlen(names[i]), k = strlen(suffix);
                if (n < k || strcmp(names[i] + n - k, suffix) != 0)
                        continue;
                _cleanup_free_ char *path = vp_strdupf("%s/%s", dir, names[i]);
                size_t len;
                _cleanup_free_ char *text = read_small(g, path, MAX_CONFIG, &len);
                if (text)
                        fn(cfg, text, len);
        }
}

static struct json_object *inspect_network(guestfs_h *g)
{
        struct vp_netcfg cfg = { 0 };
        size_t len;
        _cleanup_free_ char *ifs = read_small(g, "/etc/network/interfaces", MAX_CONFIG, &len);
        if (ifs)
                vp_netcfg_ifupdown(&cfg, ifs, len);
        read_dir(g, "/etc/network/interfaces.d", "", &cfg, vp_netcfg_ifupdown);
        read_dir(g, "/etc/systemd/network", ".network", &cfg, vp_netcfg_networkd);
        read_dir(g, "/etc/NetworkManager/system-connections", "", &cfg, vp_netcfg_nm);
        read_dir(g, "/etc/netplan", ".yaml", &cfg, vp_netcfg_netplan);
        struct json_object *o = json_object_new_object();
        add_str(o, "tools", cfg.tools);
        json_object_object_add(o, "match", json_object_new_string(vp_netmatch_to_string(cfg.match)));
        add_str(o, "interfaces", cfg.names);
        json_object_object_add(o, "breaks_on_rename", json_object_new_boolean(vp_netmatch_breaks_on_rename(cfg.match)));
        return o;
}

/* The newest kernel under /lib/modules: the one a fresh boot runs, as the
 * boot loaders Debian and Fedora install default to it. */
static char *newest_kernel(guestfs_h *g)
{
        if (gfs.is_dir(g, "/lib/modules") <= 0)
                return NULL;
        _cleanup_strv_ char **names = gfs.ls(g, "/lib/modules");
        const char *best = NULL;
        for (size_t i = 0; names && names[i]; i++) {
                _cleanup_free_ char *dep = vp_strdupf("/lib/modules/%s/modules.dep", names[i]);
                if (gfs.is_file(g, dep) > 0 && (!best || strverscmp(names[i], best) > 0))
                        best = names[i];
        }
        return best ? vp_strdup(best) : NULL;
}

/* The initramfs of kernel KVER into MODS through a temporary file (a
 * guest's initramfs is larger than libguestfs's messages). */
static int read_initramfs(guestfs_h *g, const char *kver, struct vp_modset *mods, struct json_object *o,
                          struct vp_error *err)
{
        /* Debian's name, Fedora's, SUSE's. */
        const char *forms[][2] = { { "/boot/initrd.img-", "" }, { "/boot/initramfs-", ".img" }, { "/boot/initrd-", "" } };
        _cleanup_free_ char *path = NULL;
        for (size_t i = 0; i < ELEMENTSOF(forms) && !path; i++) {
                _cleanup_free_ char *p = vp_strdupf("%s%s%s", forms[i][0], kver, forms[i][1]);
                if (gfs.is_file(g, p) > 0)
                        path = TAKE_PTR(p);
        }
        if (!path)
                return 0;
        int64_t size = gfs.filesize(g, path);
        if (size <= 0 || size > MAX_INITRAMFS)
                return vp_err(err, -EFBIG, "initramfs '%s' of %lld bytes", path, (long long)size);
        char tmpl[] = "/tmp/vpool-initramfs.XXXXXX";
        _cleanup_close_ int fd = mkostemp(tmpl, O_CLOEXEC);
        if (fd < 0)
                return vp_err(err, -errno, "cannot make a temporary file: %s", strerror(errno));
        _cleanup_free_ char *dest = vp_strdupf("/proc/self/fd/%d", fd);
        int r = gfs.download(g, path, dest) < 0 ? gerr(g, err, "cannot read the initramfs") : 0;
        unlink(tmpl);
        uint8_t *buf = NULL;
        struct stat st;
        if (r >= 0 && (fstat(fd, &st) < 0 || st.st_size != size))
                r = vp_err(err, -EIO, "initramfs '%s' read short", path);
        if (r >= 0) {
                buf = malloc((size_t)size);
                if (!buf || pread(fd, buf, (size_t)size, 0) != size)
                        r = vp_err(err, -EIO, "cannot read the initramfs back");
        }
        char comp[8] = "none";
        if (r >= 0)
                r = vp_initramfs_modules(buf, (size_t)size, mods, comp, err);
        free(buf);
        if (r < 0)
                return r;
        struct json_object *ir = json_object_new_object();
        json_object_object_add(ir, "path", json_object_new_string(path));
        json_object_object_add(ir, "compression", json_object_new_string(comp));
        json_object_object_add(ir, "modules", json_object_new_int64((int64_t)mods->n));
        json_object_object_add(o, "initramfs", ir);
        return 1;
}

/* Hardware WORD the guest can use goes to LIST (64 bytes, comma
 * separated); one it cannot, lacking DRIVER (not NULL) looked for in PLACE,
 * to MISSING. */
static void note_driver(char *list, struct json_object *missing, bool nic, const char *word, const char *driver,
                        const char *place)
{
        if (!driver) {
                size_t u = strlen(list);
                snprintf(list + u, 64 - u, "%s%s", u ? "," : "", word);
                return;
        }
        struct json_object *x = json_object_new_object();
        json_object_object_add(x, "hardware", json_object_new_string(word));
        json_object_object_add(x, "kind", json_object_new_string(nic ? "nic" : "disk_bus"));
        json_object_object_add(x, "driver", json_object_new_string(driver));
        json_object_object_add(x, "place", json_object_new_string(place));
        json_object_array_add(missing, x);
}

/* Which disk buses and NIC models a Linux guest drives at boot: a disk
 * driver must be built in or in the initramfs (the root is not mounted
 * yet); a NIC driver may also come from the root's modules, which udev
 * loads once it is mounted. */
static int linux_drivers(guestfs_h *g, struct json_object *o, int out, struct vp_error *err)
{
        _cleanup_free_ char *kver = newest_kernel(g);
        add_str(o, "kernel", kver);
        json_object_object_add(o, "initramfs", NULL);
        struct vp_modset boot = { 0 }, installed = { 0 };
        int r = 0;
        bool have_initramfs = false;
        if (kver) {
                size_t len;
                _cleanup_free_ char *p = vp_strdupf("/lib/modules/%s/modules.builtin", kver);
                _cleanup_free_ char *builtin = read_small(g, p, 16 * MAX_CONFIG, &len);
                if (builtin) {
                        vp_modset_add_list(&boot, builtin, len);
                        vp_modset_add_list(&installed, builtin, len);
                }
                _cleanup_free_ char *dp = vp_strdupf("/lib/modules/%s/modules.dep", kver);
                _cleanup_free_ char *dep = read_small(g, dp, 16 * MAX_CONFIG, &len);
                if (dep)
                        vp_modset_add_list(&installed, dep, len);
                stage(out, "reading the initramfs");
                r = read_initramfs(g, kver, &boot, o, err);
                have_initramfs = r > 0;
        }
        struct json_object *missing = json_object_new_array();
        char buses[64] = "", nics[64] = "";
        for (int nic = 0; r >= 0 && nic < 2; nic++) {
                int max = nic ? VP_NIC_NONE : VP_BUS_MAX;
                for (int i = 0; i < max; i++) {
                        const char *word = nic ? vp_nic_model_to_string(i) : vp_disk_bus_to_string(i);
                        const char *m = vp_linux_missing_driver(nic, word, nic ? &installed : &boot);
                        note_driver(nic ? nics : buses, missing, nic, word, m,
                                    nic ? "kernel modules" : have_initramfs ? "initramfs" : "kernel (no initramfs)");
                }
        }
        vp_modset_free(&boot);
        vp_modset_free(&installed);
        if (r < 0) {
                json_object_put(missing);
                return r;
        }
        add_str(o, "disk_buses", buses);
        add_str(o, "nic_models", nics);
        json_object_object_add(o, "missing", missing);
        return 0;
}

/* A Windows guest drives IDE, SATA, e1000 and rtl8139 itself; the
 * paravirtual devices need the virtio-win drivers installed. */
static void windows_drivers(guestfs_h *g, const char *root, struct json_object *o)
{
        _cleanup_free_ char *sysroot = gfs.inspect_get_windows_systemroot(g, root);
        struct json_object *missing = json_object_new_array();
        char buses[64] = "", nics[64] = "";
        for (int nic = 0; nic < 2; nic++) {
                int max = nic ? VP_NIC_NONE : VP_BUS_MAX;
                for (int i = 0; i < max; i++) {
                        const char *word = nic ? vp_nic_model_to_string(i) : vp_disk_bus_to_string(i);
                        const char *drv = vp_windows_driver(nic, word);
                        bool ok = !drv;
                        if (drv && sysroot) {
                                _cleanup_free_ char *p = vp_strdupf("%s/System32/drivers/%s.sys", sysroot, drv);
                                _cleanup_free_ char *cp = gfs.case_sensitive_path(g, p);
                                ok = cp && gfs.is_file(g, cp) > 0;
                        }
                        note_driver(nic ? nics : buses, missing, nic, word, ok ? NULL : drv, "System32/drivers");
                }
        }
        json_object_object_add(o, "kernel", NULL);
        json_object_object_add(o, "initramfs", NULL);
        add_str(o, "disk_buses", buses);
        add_str(o, "nic_models", nics);
        json_object_object_add(o, "missing", missing);
}

/* Firmware from the partitions (an EFI system partition, a BIOS boot
 * partition) and the boot loader from its files. */
static void inspect_boot(guestfs_h *g, bool windows, struct json_object *o)
{
        bool esp = false, bios_part = false;
        _cleanup_strv_ char **parts = gfs.list_partitions(g);
        for (size_t i = 0; parts && parts[i]; i++) {
                _cleanup_free_ char *dev = gfs.part_to_dev(g, parts[i]);
                int num = gfs.part_to_partnum(g, parts[i]);
                _cleanup_free_ char *type = dev ? gfs.part_get_parttype(g, dev) : NULL;
                if (!type || num < 0)
                        continue;
                if (streq(type, "gpt")) {
                        _cleanup_free_ char *guid = gfs.part_get_gpt_type(g, dev, num);
                        esp |= guid && strcasecmp(guid, esp_guid) == 0;
                        bios_part |= guid && strcasecmp(guid, bios_boot_guid) == 0;
                } else if (streq(type, "msdos")) {
                        esp |= gfs.part_get_mbr_id(g, dev, num) == 0xef;
                }
        }
        static const struct { const char *path; const char *loader; bool uefi; } marks[] = {
                { "/boot/grub/i386-pc", "grub", false }, { "/boot/grub2/i386-pc", "grub", false },
                { "/boot/extlinux/ldlinux.sys", "extlinux", false }, { "/boot/syslinux/ldlinux.sys", "syslinux", false },
                { "/boot/efi/EFI/systemd", "systemd-boot", true }, { "/boot/efi/EFI", "grub", true },
                { "/boot/grub/x86_64-efi", "grub", true },
        };
        const char *loader = NULL;
        bool bios = bios_part, uefi = false;
        for (size_t i = 0; i < ELEMENTSOF(marks) && !windows; i++)
                if (gfs.exists(g, marks[i].path) > 0) {
                        if (!loader)
                                loader = marks[i].loader;
                        if (marks[i].uefi)
                                uefi |= esp;
                        else
                                bios = true;
                }
        if (windows) {
                loader = "windows";
                uefi = esp;
                bios = !esp;
        }
        char fws[32];
        snprintf(fws, sizeof(fws), "%s%s%s", bios ? "bios" : "", bios && uefi ? "," : "", uefi ? "uefi" : "");
        struct json_object *b = json_object_new_object();
        add_str(b, "firmwares", fws);
        add_str(b, "bootloader", loader);
        json_object_object_add(b, "efi_system_partition", json_object_new_boolean(esp));
        json_object_object_add(o, "boot", b);
}

static int mount_root(guestfs_h *g, const char *root, struct vp_error *err)
{
        _cleanup_strv_ char **mp = gfs.inspect_get_mountpoints(g, root);
        if (!mp)
                return gerr(g, err, "cannot read the guest's mount points");
        /* Pairs of mount point and device, mounted shortest path first. */
        size_t n = 0;
        while (mp[n])
                n += 2;
        for (size_t len = 1; len < 4096; len++)
                for (size_t i = 0; i < n; i += 2)
                        if (strlen(mp[i]) == len)
                                gfs.mount_ro(g, mp[i + 1], mp[i]);
        return 0;
}

static struct json_object *os_json(guestfs_h *g, const char *root)
{
        struct json_object *os = json_object_new_object();
        _cleanup_free_ char *type = gfs.inspect_get_type(g, root);
        _cleanup_free_ char *distro = gfs.inspect_get_distro(g, root);
        _cleanup_free_ char *product = gfs.inspect_get_product_name(g, root);
        _cleanup_free_ char *arch = gfs.inspect_get_arch(g, root);
        char version[32];
        snprintf(version, sizeof(version), "%d.%d", gfs.inspect_get_major_version(g, root),
                 gfs.inspect_get_minor_version(g, root));
        add_str(os, "type", type);
        add_str(os, "distribution", distro);
        add_str(os, "version", version);
        add_str(os, "product", product);
        add_str(os, "arch", arch);
        return os;
}

/* Why no OS was found: a LUKS volume, on a partition or on the whole
 * disk, says the disk is encrypted (libguestfs lists no filesystem for
 * it: what the device holds is asked of each). */
static const char *no_os_status(guestfs_h *g)
{
        _cleanup_strv_ char **parts = gfs.list_partitions(g);
        _cleanup_strv_ char **devs = gfs.list_devices(g);
        char **const lists[] = { parts, devs };
        for (size_t l = 0; l < ELEMENTSOF(lists); l++)
                for (size_t i = 0; lists[l] && lists[l][i]; i++) {
                        _cleanup_free_ char *type = gfs.vfs_type(g, lists[l][i]);
                        if (type && streq(type, "crypto_LUKS"))
                                return "encrypted";
                }
        return "no-os";
}

static int inspect_guest(guestfs_h *g, struct json_object *o, int out, struct vp_error *err)
{
        /* Every key in every report, null where this guest has nothing (docs/json.md). */
        static const char *const keys[] = { "os", "boot", "kernel", "initramfs", "disk_buses", "nic_models",
                                            "missing", "network" };
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                json_object_object_add(o, keys[i], NULL);
        stage(out, "looking for an operating system");
        _cleanup_strv_ char **roots = gfs.inspect_os(g);
        if (!roots)
                return gerr(g, err, "inspection failed");
        if (!roots[0]) {
                json_object_object_add(o, "status", json_object_new_string(no_os_status(g)));
                return 0;
        }
        const char *root = roots[0];
        json_object_object_add(o, "status", json_object_new_string("ok"));
        json_object_object_add(o, "os", os_json(g, root));
        int r = mount_root(g, root, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *type = gfs.inspect_get_type(g, root);
        bool windows = type && streq(type, "windows");
        stage(out, "reading the boot loader");
        inspect_boot(g, windows, o);
        if (windows) {
                windows_drivers(g, root, o);
        } else if ((r = linux_drivers(g, o, out, err)) < 0) {
                return r;
        }
        stage(out, "reading the network configuration");
        json_object_object_add(o, "network", windows ? NULL : inspect_network(g));
        return 0;
}

/* The child's whole job: the report, or an error, written to OUT. */
static int child_inspect(const char *path, const char *fmt, int out, struct vp_error *err)
{
        _cleanup_(gfs_freep) guestfs_h *g = gfs.create();
        if (!g)
                return vp_err(err, -ENOMEM, "cannot create a libguestfs handle");
        /* libguestfs prints its errors unless told not to; the parent reports them. */
        gfs.set_error_handler(g, NULL, NULL);
        if (gfs.add_drive_opts(g, path, GUESTFS_ADD_DRIVE_OPTS_READONLY, 1, GUESTFS_ADD_DRIVE_OPTS_FORMAT, fmt,
                                   -1) < 0)
                return gerr(g, err, "cannot add the image");
        stage(out, "starting the appliance");
        if (gfs.launch(g) < 0)
                return gerr(g, err, "cannot start libguestfs's appliance");
        struct json_object *o = json_object_new_object();
        int r = inspect_guest(g, o, out, err);
        if (r >= 0)
                dprintf(out, "report %s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        gfs.shutdown(g);
        return r;
}

/* ---- the parent: a child bounded in time --------------------------------- */

static double now_seconds(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

unsigned vp_inspect_timeout(void)
{
        const char *s = getenv("VPOOL_INSPECT_TIMEOUT");
        char *end;
        unsigned long v = s ? strtoul(s, &end, 10) : 0;
        return s && *s && !*end && v > 0 && v <= 86400 ? (unsigned)v : VP_INSPECT_TIMEOUT;
}

/* The last "stage" of the child's output in BUF, for progress. */
static void last_stage(const char *buf, char *stage_out, size_t size)
{
        const char *p = buf, *found = NULL;
        while ((p = strstr(p, "stage ")))
                if (p == buf || p[-1] == '\n')
                        found = p++;
                else
                        p++;
        if (!found)
                return;
        found += 6;
        size_t n = strcspn(found, "\n");
        if (found[n] != '\n')
                return;
        snprintf(stage_out, size, "%.*s", (int)n, found);
}

/* Read the child's output until it closes its end or DEADLINE passes. */
static int read_child(int fd, double start, unsigned timeout, vp_inspect_progress_fn progress, void *ud,
                      char **ret, struct vp_error *err)
{
        size_t cap = 4096, n = 0;
        _cleanup_free_ char *buf = malloc(cap);
        char current[64] = "starting";
        if (!buf)
                return vp_err(err, -ENOMEM, "out of memory");
        buf[0] = '\0';
        for (;;) {
                double elapsed = now_seconds() - start;
                if (elapsed >= timeout)
                        return vp_err(err, -ETIMEDOUT, "inspection took longer than %u s (%s); its appliance was "
                                      "killed", timeout, current);
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                int pr = poll(&pfd, 1, 1000);
                if (pr < 0 && errno != EINTR)
                        return vp_err(err, -errno, "inspection: %s", strerror(errno));
                if (pr > 0) {
                        if (cap - n < 4096) {
                                if (cap >= ((size_t)64 << 20))
                                        return vp_err(err, -EFBIG, "inspection: report too large");
                                char *nb = realloc(buf, cap * 2);
                                if (!nb)
                                        return vp_err(err, -ENOMEM, "out of memory");
                                buf = nb;
                                cap *= 2;
                        }
                        ssize_t k = read(fd, buf + n, cap - n - 1);
                        if (k < 0 && errno != EINTR)
                                return vp_err(err, -errno, "inspection: %s", strerror(errno));
                        if (k == 0)
                                break;
                        if (k > 0) {
                                n += (size_t)k;
                                buf[n] = '\0';
                                last_stage(buf, current, sizeof(current));
                        }
                }
                if (progress)
                        progress(ud, current, (unsigned)(now_seconds() - start));
        }
        *ret = TAKE_PTR(buf);
        return 0;
}

/* The report (or error) in the child's output OUT. */
static int parse_child(const char *out, int status, struct json_object **ret, struct vp_error *err)
{
        const char *rep = strstr(out, "\nreport ");
        rep = rep ? rep + 1 : strncmp(out, "report ", 7) == 0 ? out : NULL;
        const char *e = strstr(out, "\nerror ");
        e = e ? e + 1 : strncmp(out, "error ", 6) == 0 ? out : NULL;
        if (e) {
                size_t n = strcspn(e + 6, "\n");
                return vp_err(err, -EIO, "%.*s", (int)n, e + 6);
        }
        if (!rep || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return vp_err(err, -EIO, "inspection ended without a report (%s %d)",
                              WIFSIGNALED(status) ? "signal" : "exit",
                              WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        struct json_object *o = json_tokener_parse(rep + 7);
        if (!o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return vp_err(err, -EBADMSG, "inspection: unreadable report");
        }
        *ret = o;
        return 0;
}

/* The state letter of process PID ('Z' a zombie), or 0 when it is gone. */
static char proc_state(pid_t pid, pid_t *ret_ppid)
{
        char path[64], buf[512];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
        if (n <= 0)
                return 0;
        buf[n] = '\0';
        /* "pid (comm) state ppid ...": comm may hold anything but the last ')'. */
        const char *p = strrchr(buf, ')');
        char state = 0;
        int ppid = 0;
        if (!p || sscanf(p + 1, " %c %d", &state, &ppid) != 2)
                return 0;
        if (ret_ppid)
                *ret_ppid = ppid;
        return state;
}

/* Kill PID's own children, then PID's process group, and wait (a few
 * seconds at most) until the children are gone: libguestfs starts the
 * appliance's QEMU in a process group of its own (so a terminal's ^C does
 * not reach it), which a signal to the child's group would miss. */
static void kill_inspector(pid_t pid)
{
        pid_t kids[32];
        size_t n = 0;
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d))) {
                pid_t k = (pid_t)atoi(e->d_name), ppid = 0;
                if (k > 0 && proc_state(k, &ppid) && ppid == pid && n < ELEMENTSOF(kids)) {
                        kill(k, SIGKILL);
                        kids[n++] = k;
                }
        }
        if (d)
                closedir(d);
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        for (int tries = 0; tries < 50; tries++) {
                size_t alive = 0;
                for (size_t i = 0; i < n; i++) {
                        char st = proc_state(kids[i], NULL);
                        alive += st && st != 'Z';
                }
                if (!alive)
                        break;
                usleep(100000);
        }
}

int vp_inspect_image(const char *path, const char *fmt, unsigned timeout, vp_inspect_progress_fn progress,
                     void *ud, struct json_object **ret, struct vp_error *err)
{
        int r = gfs_open(err);
        if (r < 0)
                return r;
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) < 0)
                return vp_err(err, -errno, "cannot make a pipe: %s", strerror(errno));
        double start = now_seconds();
        pid_t pid = fork();
        if (pid < 0) {
                int e = errno;
                close(fds[0]);
                close(fds[1]);
                return vp_err(err, -e, "cannot fork: %s", strerror(e));
        }
        if (pid == 0) {
                /* Its own process group: a timeout kills it and whatever
                 * it started; libguestfs's recovery process then kills
                 * the appliance, which libguestfs keeps in a group of its own. */
                setpgid(0, 0);
                close(fds[0]);
                int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (devnull >= 0) {
                        dup2(devnull, STDIN_FILENO);
                        dup2(devnull, STDOUT_FILENO);
                        dup2(devnull, STDERR_FILENO);
                }
                struct vp_error cerr = { 0 };
                int cr = child_inspect(path, fmt, fds[1], &cerr);
                if (cr < 0)
                        dprintf(fds[1], "error %s\n", cerr.msg);
                _exit(cr < 0 ? 1 : 0);
        }
        close(fds[1]);
        _cleanup_free_ char *out = NULL;
        r = read_child(fds[0], start, timeout, progress, ud, &out, err);
        close(fds[0]);
        if (r < 0)
                kill_inspector(pid);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (r < 0)
                return r;
        struct json_object *o = NULL;
        if ((r = parse_child(out, status, &o, err)) < 0)
                return r;
        json_object_object_add(o, "seconds", json_object_new_double((double)(long)((now_seconds() - start) * 10) / 10));
        *ret = o;
        return 0;
}

/* ---- the stored report and what it decides -------------------------------- */

int vp_inspection_get(struct vp_catalog *c, const char *sha256, struct json_object **ret, struct vp_error *err)
{
        struct vp_inspection row = { 0 };
        int r = vp_row_get(c, &vp_table_inspection, "sha256", sha256, &row, NULL);
        if (r < 0)
                return vp_err(err, -ENOENT, "no inspection of %s", sha256);
        struct json_object *o = json_tokener_parse(row.report);
        vp_row_clear(&vp_table_inspection, &row);
        if (!o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return vp_err(err, -EBADMSG, "the stored inspection of %s is unreadable", sha256);
        }
        *ret = o;
        return 0;
}

int vp_inspection_put(struct vp_catalog *c, const char *sha256, struct json_object *report, struct vp_error *err)
{
        struct vp_inspection row = {
                .sha256 = (char *)sha256,
                .report = (char *)json_object_to_json_string_ext(report, JSON_C_TO_STRING_PLAIN),
                .created = vp_now_iso(),
        };
        int r = vp_row_insert(c, &vp_table_inspection, &row, err);
        free(row.created);
        return r;
}

static const char *jstr(struct json_object *o, const char *key)
{
        struct json_object *v;
        return o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v) : NULL;
}

static struct json_object *jobj(struct json_object *o, const char *key)
{
        struct json_object *v;
        return o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_object) ? v : NULL;
}

/* The driver inspection found missing for hardware WORD of KIND, and where. */
static bool find_missing(struct json_object *report, const char *kind, const char *word, const char **driver,
                         const char **place)
{
        struct json_object *a;
        if (!json_object_object_get_ex(report, "missing", &a) || !json_object_is_type(a, json_type_array))
                return false;
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                struct json_object *x = json_object_array_get_idx(a, i);
                const char *h = jstr(x, "hardware"), *k = jstr(x, "kind");
                if (h && k && streq(h, word) && streq(k, kind)) {
                        *driver = jstr(x, "driver");
                        *place = jstr(x, "place");
                        return *driver && *place;
                }
        }
        return false;
}

/* Why the guest of REPORT cannot use WORD of KIND ("disk_bus", "nic",
 * "firmware"), malloc'd; NULL when it can. */
static char *cannot_use(struct json_object *report, const char *kind, const char *word)
{
        const char *driver, *place;
        if (streq(kind, "firmware")) {
                struct json_object *b = jobj(report, "boot");
                const char *fws = jstr(b, "firmwares");
                if (fws && vp_list_has(fws, word))
                        return NULL;
                const char *loader = jstr(b, "bootloader");
                return vp_strdupf("the guest boots with %s only (%s%s)", fws ? fws : "no firmware vpool knows",
                                  loader ? loader : "no boot loader found",
                                  streq(word, "uefi") ? ", no EFI system partition with a boot loader" : "");
        }
        const char *found = jstr(report, streq(kind, "nic") ? "nic_models" : "disk_buses");
        if (found && vp_list_has(found, word))
                return NULL;
        if (find_missing(report, kind, word, &driver, &place)) {
                if (streq(place, "initramfs"))
                        return vp_strdupf("initramfs has no %s", driver);
                if (streq(place, "System32/drivers"))
                        return vp_strdupf("Windows has no %s driver", driver);
                return vp_strdupf("the guest's %s have no %s", place, driver);
        }
        return vp_strdupf("the guest has no driver for %s", word);
}

static bool report_ok(struct json_object *report)
{
        const char *s = jstr(report, "status");
        return s && streq(s, "ok");
}

/* Each declared item of LIST (KIND) the guest can use, else the refusal. */
static int check_declared(const char *image, struct json_object *report, const char *what, const char *kind,
                          const char *list, struct vp_error *err)
{
        _cleanup_free_ char *copy = vp_strdup(list);
        char *save = NULL;
        for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
                _cleanup_free_ char *why = cannot_use(report, kind, w);
                if (why)
                        return vp_err(err, -EOPNOTSUPP, "image '%s' declares %s '%s', but %s", image, what, w, why);
        }
        return 0;
}

int vp_inspect_reconcile(const char *image, struct json_object *report, const char *buses, const char *nics,
                         const char *fws, char **ret_buses, char **ret_nics, char **ret_fws, char **ret_warning,
                         struct vp_error *err)
{
        int r;
        if (!report_ok(report)) {
                const char *s = jstr(report, "status");
                const char *why = s && streq(s, "encrypted") ? "its disk is encrypted" : "it found no operating system";
                if (!buses || !nics || !fws)
                        return vp_err(err, -EOPNOTSUPP, "image '%s' cannot be inspected (%s): declare its hardware "
                                      "with --disk-buses, --nic-models and --firmware", image, why);
                *ret_warning = vp_strdupf("image '%s' cannot be inspected (%s): its declared hardware is taken on "
                                          "trust", image, why);
                *ret_buses = vp_strdup(buses);
                *ret_nics = vp_strdup(nics);
                *ret_fws = vp_strdup(fws);
                return 0;
        }
        struct json_object *boot = jobj(report, "boot");
        const char *found_buses = jstr(report, "disk_buses"), *found_nics = jstr(report, "nic_models");
        const char *found_fws = jstr(boot, "firmwares");
        if ((buses && (r = check_declared(image, report, "disk bus", "disk_bus", buses, err)) < 0) ||
            (nics && (r = check_declared(image, report, "NIC model", "nic", nics, err)) < 0) ||
            (fws && (r = check_declared(image, report, "firmware", "firmware", fws, err)) < 0))
                return r;
        if (!buses && !found_buses)
                return vp_err(err, -EOPNOTSUPP, "image '%s': its guest has a driver for no disk bus vpool offers",
                              image);
        if (!fws && !found_fws)
                return vp_err(err, -EOPNOTSUPP, "image '%s': no boot loader found for BIOS or UEFI; declare "
                              "--firmware if it boots another way", image);
        *ret_buses = vp_strdup(buses ? buses : found_buses);
        *ret_nics = vp_strdup(nics ? nics : found_nics ? found_nics : "");
        *ret_fws = vp_strdup(fws ? fws : found_fws);
        *ret_warning = NULL;
        return 0;
}

int vp_inspect_check_profile(struct vp_catalog *c, const struct vp_image *im, const struct vp_profile *p,
                             struct vp_error *err)
{
        struct json_object *report = NULL;
        if (vp_inspection_get(c, im->sha256, &report, NULL) < 0)
                return 0;
        int r = 0;
        if (report_ok(report)) {
                _cleanup_free_ char *bus = cannot_use(report, "disk_bus", p->disk_bus);
                _cleanup_free_ char *nic = vp_nic_model_from_string(p->nic) == VP_NIC_NONE
                                                   ? NULL : cannot_use(report, "nic", p->nic);
                _cleanup_free_ char *fw = cannot_use(report, "firmware", p->firmware);
                if (bus)
                        r = vp_err(err, -EOPNOTSUPP, "image '%s': %s: the VMs would not boot on %s/%s (profile '%s')",
                                   im->name, bus, p->machine, p->disk_bus, p->name);
                else if (fw)
                        r = vp_err(err, -EOPNOTSUPP, "image '%s': %s: the VMs would not boot with %s (profile '%s')",
                                   im->name, fw, p->firmware, p->name);
                else if (nic)
                        r = vp_err(err, -EOPNOTSUPP, "image '%s': %s: the VMs would have no network on NIC model "
                                   "%s (profile '%s')", im->name, nic, p->nic, p->name);
        }
        json_object_put(report);
        return r;
}

/* Whether the NIC of profile A is another device than B's or sits at
 * another PCI address: the slot follows the machine type (pc puts it on the
 * root bus, q35 behind a PCIe root port), so a change of machine family
 * moves it; libvirt gives NICs their slots before disks, so a change of
 * disk bus alone does not. */
static bool nic_moves(const struct vp_profile *a, const struct vp_profile *b)
{
        return !streq(a->nic, b->nic) || vp_machine_from_string(a->machine) != vp_machine_from_string(b->machine);
}

char *vp_inspect_nic_rename(struct vp_catalog *c, const struct vp_image *im, const struct vp_profile *from,
                            const struct vp_profile *to)
{
        if (vp_nic_model_from_string(to->nic) == VP_NIC_NONE || !nic_moves(from, to))
                return NULL;
        struct json_object *report = NULL;
        if (vp_inspection_get(c, im->sha256, &report, NULL) < 0)
                return NULL;
        struct json_object *net = jobj(report, "network");
        const char *match = jstr(net, "match");
        char *note = NULL;
        if (match && vp_netmatch_breaks_on_rename(vp_netmatch_from_string(match))) {
                const char *names = jstr(net, "interfaces"), *tools = jstr(net, "tools");
                note = vp_strdupf("the guest's network (%s) is configured by interface %s%s%s; moving its NIC from "
                                  "%s/%s to %s/%s renames or moves that interface and the VMs would lose their network",
                                  tools ? tools : "?", match, names ? " " : "", names ? names : "", from->machine,
                                  from->nic, to->machine, to->nic);
        }
        json_object_put(report);
        return note;
}

char *vp_inspect_summary(struct json_object *report)
{
        const char *status = jstr(report, "status");
        if (!report_ok(report))
                return vp_strdupf("%s", status ? status : "unknown");
        struct json_object *os = jobj(report, "os"), *boot = jobj(report, "boot");
        const char *distro = jstr(os, "distribution"), *version = jstr(os, "version"), *type = jstr(os, "type");
        const char *loader = jstr(boot, "bootloader"), *fws = jstr(boot, "firmwares");
        return vp_strdupf("%s %s (%s), %s, %s", distro ? distro : "unknown", version ? version : "",
                          type ? type : "unknown", loader ? loader : "no boot loader", fws ? fws : "no firmware");
}
