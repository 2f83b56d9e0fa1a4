#include "guestcfg.h"

#include <ctype.h>
#include <lzma.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

/* ---- module sets --------------------------------------------------------- */

void vp_modset_free(struct vp_modset *s)
{
        for (size_t i = 0; i < s->n; i++)
                free(s->names[i]);
        free(s->names);
        *s = (struct vp_modset){ 0 };
}

bool vp_modset_has(const struct vp_modset *s, const char *name)
{
        for (size_t i = 0; i < s->n; i++)
                if (streq(s->names[i], name))
                        return true;
        return false;
}

static bool ends_with(const char *s, size_t len, const char *suffix, size_t *ret_stem)
{
        size_t k = strlen(suffix);
        if (len < k || memcmp(s + len - k, suffix, k) != 0)
                return false;
        *ret_stem = len - k;
        return true;
}

void vp_modset_add_path(struct vp_modset *s, const char *path, size_t len, bool bare)
{
        static const char *const exts[] = { ".ko", ".ko.gz", ".ko.xz", ".ko.zst" };
        size_t stem = len;
        bool module = bare;
        for (size_t i = 0; i < ELEMENTSOF(exts) && !module; i++)
                module = ends_with(path, len, exts[i], &stem);
        if (!module)
                return;
        size_t start = stem;
        while (start > 0 && path[start - 1] != '/')
                start--;
        size_t n = stem - start;
        if (n == 0 || n > 64)
                return;
        char name[65];
        for (size_t i = 0; i < n; i++) {
                char c = path[start + i];
                if (!isalnum((unsigned char)c) && c != '_' && c != '-')
                        return;
                name[i] = c == '-' ? '_' : c;
        }
        name[n] = '\0';
        if (vp_modset_has(s, name))
                return;
        if (s->n == s->cap) {
                s->cap = s->cap ? s->cap * 2 : 64;
                s->names = realloc(s->names, s->cap * sizeof(*s->names));
                if (!s->names)
                        abort();
        }
        s->names[s->n++] = vp_strdup(name);
}

void vp_modset_add_list(struct vp_modset *s, const char *text, size_t len)
{
        size_t i = 0;
        while (i < len) {
                size_t e = i;
                while (e < len && text[e] != '\n' && text[e] != ':')
                        e++;
                size_t k = e;
                while (k > i && isspace((unsigned char)text[k - 1]))
                        k--;
                vp_modset_add_path(s, text + i, k - i, false);
                while (e < len && text[e] != '\n')
                        e++;
                i = e + 1;
        }
}

/* ---- initramfs ----------------------------------------------------------- */

/* The 8 hex digits of a newc header field, or -1. */
static int64_t hex8(const uint8_t *p)
{
        int64_t v = 0;
        for (int i = 0; i < 8; i++) {
                int c = p[i], d;
                if (c >= '0' && c <= '9')
                        d = c - '0';
                else if (c >= 'a' && c <= 'f')
                        d = c - 'a' + 10;
                else if (c >= 'A' && c <= 'F')
                        d = c - 'A' + 10;
                else
                        return -1;
                v = v * 16 + d;
        }
        return v;
}

static size_t pad4(size_t n) { return (n + 3) & ~(size_t)3; }

#define NEWC_HEADER 110

/* One newc archive at BUF (up to its trailer): each entry to FN. *RET_USED
 * the bytes it spans. */
static int walk_newc(const uint8_t *buf, size_t len, vp_cpio_fn fn, void *ud, size_t *ret_used,
                     struct vp_error *err)
{
        size_t pos = 0;
        for (;;) {
                if (len - pos < NEWC_HEADER)
                        return vp_err(err, -EBADMSG, "initramfs: cpio archive cut short at offset %zu", pos);
                const uint8_t *h = buf + pos;
                if (memcmp(h, "07070", 5) != 0 || (h[5] != '1' && h[5] != '2'))
                        return vp_err(err, -EBADMSG, "initramfs: no cpio header at offset %zu", pos);
                int64_t mode = hex8(h + 14), filesize = hex8(h + 54), namesize = hex8(h + 94);
                if (mode < 0 || filesize < 0 || namesize < 1)
                        return vp_err(err, -EBADMSG, "initramfs: bad cpio header at offset %zu", pos);
                size_t name_end = NEWC_HEADER + (size_t)namesize;
                if ((size_t)namesize > len - pos - NEWC_HEADER || h[name_end - 1] != '\0')
                        return vp_err(err, -EBADMSG, "initramfs: bad cpio name at offset %zu", pos);
                size_t data = pad4(name_end);
                if (data > len - pos || (size_t)filesize > len - pos - data)
                        return vp_err(err, -EBADMSG, "initramfs: cpio entry past the end at offset %zu", pos);
                const char *name = (const char *)h + NEWC_HEADER;
                size_t next = pos + data + (size_t)filesize;
                next = pad4(next) <= len ? pad4(next) : len;
                if (streq(name, "TRAILER!!!")) {
                        *ret_used = next;
                        return 0;
                }
                if (fn)
                        fn(ud, name, (uint32_t)mode, h + data, (size_t)filesize);
                pos = next;
        }
}

struct outbuf {
        uint8_t *p;
        size_t n, cap;
};

/* Room for at least one more chunk in O, refusing past the bound. */
static int outbuf_grow(struct outbuf *o, struct vp_error *err)
{
        if (o->cap - o->n >= 65536)
                return 0;
        if (o->cap >= VP_INITRAMFS_MAX)
                return vp_err(err, -EFBIG, "initramfs: more than %zu MiB decompressed", VP_INITRAMFS_MAX >> 20);
        size_t cap = o->cap ? o->cap * 2 : (size_t)1 << 20;
        uint8_t *p = realloc(o->p, cap);
        if (!p)
                return vp_err(err, -ENOMEM, "initramfs: out of memory");
        o->p = p;
        o->cap = cap;
        return 0;
}

static int gunzip(const uint8_t *in, size_t len, struct outbuf *o, struct vp_error *err)
{
        z_stream z = { 0 };
        if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
                return vp_err(err, -ENOMEM, "initramfs: cannot start gzip");
        z.next_in = (Bytef *)in;
        z.avail_in = (uInt)(len > UINT32_MAX ? UINT32_MAX : len);
        int r = 0, zr = Z_OK;
        while (r >= 0 && zr != Z_STREAM_END) {
                if ((r = outbuf_grow(o, err)) < 0)
                        break;
                z.next_out = o->p + o->n;
                z.avail_out = (uInt)(o->cap - o->n);
                zr = inflate(&z, Z_NO_FLUSH);
                o->n = o->cap - z.avail_out;
                if (zr != Z_OK && zr != Z_STREAM_END)
                        r = vp_err(err, -EBADMSG, "initramfs: bad gzip data");
                else if (zr == Z_OK && z.avail_in == 0 && z.avail_out != 0)
                        r = vp_err(err, -EBADMSG, "initramfs: gzip data cut short");
        }
        inflateEnd(&z);
        return r;
}

static int unxz(const uint8_t *in, size_t len, struct outbuf *o, struct vp_error *err)
{
        lzma_stream z = LZMA_STREAM_INIT;
        if (lzma_stream_decoder(&z, UINT64_MAX, LZMA_CONCATENATED) != LZMA_OK)
                return vp_err(err, -ENOMEM, "initramfs: cannot start xz");
        z.next_in = in;
        z.avail_in = len;
        int r = 0;
        lzma_ret zr = LZMA_OK;
        while (r >= 0 && zr != LZMA_STREAM_END) {
                if ((r = outbuf_grow(o, err)) < 0)
                        break;
                z.next_out = o->p + o->n;
                z.avail_out = o->cap - o->n;
                zr = lzma_code(&z, z.avail_in ? LZMA_RUN : LZMA_FINISH);
                o->n = o->cap - z.avail_out;
                if (zr != LZMA_OK && zr != LZMA_STREAM_END)
                        r = vp_err(err, -EBADMSG, "initramfs: bad xz data");
        }
        lzma_end(&z);
        return r;
}

static int unzstd(const uint8_t *in, size_t len, struct outbuf *o, struct vp_error *err)
{
        ZSTD_DStream *z = ZSTD_createDStream();
        if (!z)
                return vp_err(err, -ENOMEM, "initramfs: cannot start zstd");
        ZSTD_inBuffer ib = { in, len, 0 };
        int r = 0;
        size_t zr = 1;
        /* Frames follow one another until the input ends (zstd -dc does the same). */
        while (r >= 0 && ib.pos < ib.size) {
                if ((r = outbuf_grow(o, err)) < 0)
                        break;
                ZSTD_outBuffer ob = { o->p + o->n, o->cap - o->n, 0 };
                zr = ZSTD_decompressStream(z, &ob, &ib);
                o->n += ob.pos;
                if (ZSTD_isError(zr))
                        r = vp_err(err, -EBADMSG, "initramfs: bad zstd data");
                else if (zr == 0 && ib.pos < ib.size && ib.size - ib.pos < 4)
                        break;
                else if (ob.pos == 0 && zr != 0 && ib.pos == ib.size)
                        break;
        }
        if (r >= 0 && zr != 0)
                r = vp_err(err, -EBADMSG, "initramfs: zstd data cut short");
        ZSTD_freeDStream(z);
        return r;
}

static const struct {
        const char *name;
        uint8_t magic[6];
        size_t len;
        int (*decode)(const uint8_t *, size_t, struct outbuf *, struct vp_error *);
} codecs[] = {
        { "gzip", { 0x1f, 0x8b }, 2, gunzip },
        { "xz", { 0xfd, '7', 'z', 'X', 'Z', 0 }, 6, unxz },
        { "zstd", { 0x28, 0xb5, 0x2f, 0xfd }, 4, unzstd },
};

static int walk(const uint8_t *buf, size_t len, vp_cpio_fn fn, void *ud, char comp[8], int depth,
                struct vp_error *err)
{
        size_t pos = 0;
        int r = 0;
        while (r >= 0) {
                /* Archives are padded to 4 bytes, the microcode one to 512. */
                while (pos < len && buf[pos] == 0)
                        pos++;
                if (pos == len)
                        return 0;
                if (len - pos >= 6 && memcmp(buf + pos, "07070", 5) == 0) {
                        size_t used = 0;
                        if ((r = walk_newc(buf + pos, len - pos, fn, ud, &used, err)) >= 0)
                                pos += used;
                        continue;
                }
                size_t i = 0;
                while (i < ELEMENTSOF(codecs) && (len - pos < codecs[i].len ||
                                                  memcmp(buf + pos, codecs[i].magic, codecs[i].len) != 0))
                        i++;
                if (i == ELEMENTSOF(codecs))
                        return vp_err(err, -EOPNOTSUPP, "initramfs: unknown data at offset %zu (not cpio, gzip, xz "
                                      "or zstd)", pos);
                if (depth > 0)
                        return vp_err(err, -EBADMSG, "initramfs: compressed data inside compressed data");
                snprintf(comp, 8, "%s", codecs[i].name);
                struct outbuf o = { 0 };
                r = codecs[i].decode(buf + pos, len - pos, &o, err);
                if (r >= 0)
                        r = walk(o.p, o.n, fn, ud, comp, depth + 1, err);
                free(o.p);
                /* What follows a compressed archive is not read by the
                 * kernel's unpacker either once the stream ended. */
                return r;
        }
        return r;
}

int vp_initramfs_walk(const uint8_t *buf, size_t len, vp_cpio_fn fn, void *ud, char comp[8],
                      struct vp_error *err)
{
        snprintf(comp, 8, "none");
        if (len == 0)
                return vp_err(err, -EBADMSG, "initramfs: empty");
        return walk(buf, len, fn, ud, comp, 0, err);
}

static void collect_module(void *ud, const char *name, uint32_t mode, const uint8_t *data, size_t size)
{
        struct vp_modset *mods = ud;
        size_t n = strlen(name);
        size_t stem;
        if ((mode & 0170000) != 0100000 || !strstr(name, "lib/modules/"))
                return;
        if (ends_with(name, n, "/modules.builtin", &stem))
                vp_modset_add_list(mods, (const char *)data, size);
        else
                vp_modset_add_path(mods, name, n, false);
}

int vp_initramfs_modules(const uint8_t *buf, size_t len, struct vp_modset *mods, char comp[8],
                         struct vp_error *err)
{
        return vp_initramfs_walk(buf, len, collect_module, mods, comp, err);
}

/* ---- drivers per virtual device ------------------------------------------ */

/* Each item a module the device needs; "a|b" when either does. */
static const struct {
        bool nic;
        const char *word;
        const char *needs[3];
} linux_drivers[] = {
        { false, "ide", { "ata_piix" } },
        { false, "sata", { "ahci" } },
        { false, "virtio", { "virtio_blk", "virtio_pci" } },
        { false, "scsi", { "virtio_scsi", "sd_mod", "virtio_pci" } },
        { true, "e1000", { "e1000" } },
        { true, "rtl8139", { "8139cp|8139too" } },
        { true, "virtio", { "virtio_net", "virtio_pci" } },
};

static bool has_any(const struct vp_modset *have, const char *alts)
{
        char buf[64];
        snprintf(buf, sizeof(buf), "%s", alts);
        char *save = NULL;
        for (char *m = strtok_r(buf, "|", &save); m; m = strtok_r(NULL, "|", &save))
                if (vp_modset_has(have, m))
                        return true;
        return false;
}

const char *vp_linux_missing_driver(bool nic, const char *word, const struct vp_modset *have)
{
        for (size_t i = 0; i < ELEMENTSOF(linux_drivers); i++) {
                if (linux_drivers[i].nic != nic || !streq(linux_drivers[i].word, word))
                        continue;
                for (size_t k = 0; k < ELEMENTSOF(linux_drivers[i].needs) && linux_drivers[i].needs[k]; k++)
                        if (!has_any(have, linux_drivers[i].needs[k]))
                                return linux_drivers[i].needs[k];
                return NULL;
        }
        return "unknown-device";
}

const char *vp_windows_driver(bool nic, const char *word)
{
        if (streq(word, "virtio"))
                return nic ? "netkvm" : "viostor";
        if (!nic && streq(word, "scsi"))
                return "vioscsi";
        return NULL;
}

/* ---- network configuration ----------------------------------------------- */

static const char *const netmatch_words[VP_NETMATCH_MAX] = {
        [VP_NETMATCH_NONE] = "none", [VP_NETMATCH_ANY] = "any", [VP_NETMATCH_MAC] = "mac",
        [VP_NETMATCH_PATTERN] = "pattern", [VP_NETMATCH_DRIVER] = "driver", [VP_NETMATCH_PATH] = "path",
        [VP_NETMATCH_NAME] = "name",
};

const char *vp_netmatch_to_string(enum vp_netmatch m)
{
        return m >= 0 && m < VP_NETMATCH_MAX ? netmatch_words[m] : "none";
}

enum vp_netmatch vp_netmatch_from_string(const char *s)
{
        for (int i = 0; i < VP_NETMATCH_MAX; i++)
                if (s && streq(s, netmatch_words[i]))
                        return (enum vp_netmatch)i;
        return VP_NETMATCH_NONE;
}

bool vp_netmatch_breaks_on_rename(enum vp_netmatch m)
{
        return m == VP_NETMATCH_NAME || m == VP_NETMATCH_PATH || m == VP_NETMATCH_DRIVER;
}

/* Append ITEM (LEN bytes) to the comma list LIST of SIZE, once; silently
 * stops when full (the list is for people, the match kind decides). */
static void list_add(char *list, size_t size, const char *item, size_t len)
{
        char word[64];
        if (len == 0 || len >= sizeof(word))
                return;
        for (size_t i = 0; i < len; i++)
                if (!isgraph((unsigned char)item[i]) || item[i] == ',')
                        return;
        memcpy(word, item, len);
        word[len] = '\0';
        if (vp_list_has(list, word))
                return;
        size_t used = strlen(list);
        if (used + len + 2 > size)
                return;
        snprintf(list + used, size - used, "%s%s", used ? "," : "", word);
}

static void see(struct vp_netcfg *cfg, const char *tool, enum vp_netmatch m)
{
        list_add(cfg->tools, sizeof(cfg->tools), tool, strlen(tool));
        if (m > cfg->match)
                cfg->match = m;
}

static bool is_pattern(const char *s, size_t len)
{
        for (size_t i = 0; i < len; i++)
                if (s[i] == '*' || s[i] == '?' || s[i] == '[')
                        return true;
        return false;
}

/* A name (exact or pattern) the configuration matches on. */
static void see_name(struct vp_netcfg *cfg, const char *tool, const char *name, size_t len)
{
        if (len == 0 || (len == 2 && memcmp(name, "lo", 2) == 0))
                return;
        see(cfg, tool, is_pattern(name, len) ? VP_NETMATCH_PATTERN : VP_NETMATCH_NAME);
        list_add(cfg->names, sizeof(cfg->names), name, len);
}

/* Line iteration over a text that need not end in NUL or newline. */
struct line {
        const char *p;      /* the line, leading blanks skipped */
        size_t len;         /* without trailing blanks and comment */
        size_t indent;      /* leading blanks */
};

static bool next_line(const char *text, size_t len, size_t *pos, struct line *l)
{
        if (*pos >= len)
                return false;
        size_t s = *pos, e = s;
        while (e < len && text[e] != '\n')
                e++;
        *pos = e + 1;
        size_t i = s;
        while (i < e && (text[i] == ' ' || text[i] == '\t'))
                i++;
        l->indent = i - s;
        size_t k = i;
        while (k < e && text[k] != '#')
                k++;
        while (k > i && isspace((unsigned char)text[k - 1]))
                k--;
        l->p = text + i;
        l->len = k - i;
        return true;
}

/* The next blank-separated word of L from *I. */
static bool next_word(const struct line *l, size_t *i, const char **w, size_t *wlen)
{
        while (*i < l->len && isspace((unsigned char)l->p[*i]))
                (*i)++;
        if (*i >= l->len)
                return false;
        size_t s = *i;
        while (*i < l->len && !isspace((unsigned char)l->p[*i]))
                (*i)++;
        *w = l->p + s;
        *wlen = *i - s;
        return true;
}

static bool word_is(const char *w, size_t n, const char *s)
{
        return strlen(s) == n && memcmp(w, s, n) == 0;
}

static bool word_starts(const char *w, size_t n, const char *s)
{
        return strlen(s) <= n && memcmp(w, s, strlen(s)) == 0;
}

void vp_netcfg_ifupdown(struct vp_netcfg *cfg, const char *text, size_t len)
{
        size_t pos = 0;
        struct line l;
        while (next_line(text, len, &pos, &l)) {
                size_t i = 0;
                const char *w, *name;
                size_t n, nn;
                if (!next_word(&l, &i, &w, &n))
                        continue;
                if (word_is(w, n, "iface")) {
                        if (next_word(&l, &i, &name, &nn))
                                see_name(cfg, "ifupdown", name, nn);
                } else if (word_is(w, n, "auto") || word_starts(w, n, "allow-")) {
                        while (next_word(&l, &i, &name, &nn))
                                see_name(cfg, "ifupdown", name, nn);
                }
        }
}

/* KEY=VALUE of line L (blanks around '=' allowed); false when none. */
static bool key_value(const struct line *l, const char *key, const char **v, size_t *vlen)
{
        size_t k = strlen(key);
        if (l->len <= k || memcmp(l->p, key, k) != 0)
                return false;
        size_t i = k;
        while (i < l->len && (l->p[i] == ' ' || l->p[i] == '\t'))
                i++;
        if (i >= l->len || l->p[i] != '=')
                return false;
        i++;
        while (i < l->len && (l->p[i] == ' ' || l->p[i] == '\t'))
                i++;
        *v = l->p + i;
        *vlen = l->len - i;
        return true;
}

void vp_netcfg_networkd(struct vp_netcfg *cfg, const char *text, size_t len)
{
        size_t pos = 0;
        struct line l;
        bool in_match = false, matched = false;
        while (next_line(text, len, &pos, &l)) {
                if (l.len && l.p[0] == '[') {
                        in_match = l.len == 7 && memcmp(l.p, "[Match]", 7) == 0;
                        continue;
                }
                const char *v;
                size_t n;
                if (!in_match)
                        continue;
                if (key_value(&l, "Name", &v, &n)) {
                        struct line vl = { v, n, 0 };
                        size_t i = 0;
                        const char *w;
                        size_t wn;
                        while (next_word(&vl, &i, &w, &wn)) {
                                /* "!pattern" excludes: it names nothing to match. */
                                if (w[0] != '!')
                                        see_name(cfg, "networkd", w, wn);
                        }
                        matched = true;
                } else if (key_value(&l, "MACAddress", &v, &n) || key_value(&l, "PermanentMACAddress", &v, &n)) {
                        see(cfg, "networkd", VP_NETMATCH_MAC);
                        matched = true;
                } else if (key_value(&l, "Path", &v, &n)) {
                        see(cfg, "networkd", VP_NETMATCH_PATH);
                        matched = true;
                } else if (key_value(&l, "Driver", &v, &n)) {
                        see(cfg, "networkd", VP_NETMATCH_DRIVER);
                        matched = true;
                }
        }
        if (!matched)
                see(cfg, "networkd", VP_NETMATCH_ANY);
}

void vp_netcfg_nm(struct vp_netcfg *cfg, const char *text, size_t len)
{
        size_t pos = 0;
        struct line l;
        bool by = false;
        while (next_line(text, len, &pos, &l)) {
                const char *v;
                size_t n;
                if (key_value(&l, "interface-name", &v, &n) && n) {
                        see_name(cfg, "networkmanager", v, n);
                        by = true;
                } else if (key_value(&l, "mac-address", &v, &n) && n) {
                        see(cfg, "networkmanager", VP_NETMATCH_MAC);
                        by = true;
                }
        }
        /* A profile bound to nothing comes up on whichever wired device appears. */
        if (!by)
                see(cfg, "networkmanager", VP_NETMATCH_ANY);
}

/* The key of a YAML mapping line "key:" or "key: value"; false otherwise. */
static bool yaml_key(const struct line *l, const char **k, size_t *klen, const char **v, size_t *vlen)
{
        size_t i = 0;
        while (i < l->len && l->p[i] != ':')
                i++;
        if (i == 0 || i == l->len)
                return false;
        *k = l->p;
        *klen = i;
        if (*klen >= 2 && (l->p[0] == '"' || l->p[0] == '\'') && l->p[i - 1] == l->p[0]) {
                (*k)++;
                *klen -= 2;
        }
        i++;
        while (i < l->len && l->p[i] == ' ')
                i++;
        *v = l->p + i;
        *vlen = l->len - i;
        if (*vlen >= 2 && (**v == '"' || **v == '\'') && (*v)[*vlen - 1] == **v) {
                (*v)++;
                *vlen -= 2;
        }
        return true;
}

/* The interface of netplan's "ethernets:" entry ID, once its block is read. */
static void netplan_entry(struct vp_netcfg *cfg, const char *id, size_t idlen, bool mac, const char *mname,
                          size_t mlen)
{
        if (mac)
                see(cfg, "netplan", VP_NETMATCH_MAC);
        else if (mname)
                see_name(cfg, "netplan", mname, mlen);
        else if (id)
                see_name(cfg, "netplan", id, idlen);
}

/* Netplan's YAML read by indentation, the one shape it documents:
 * network: / ethernets: / ID: / match: / macaddress|name. */
void vp_netcfg_netplan(struct vp_netcfg *cfg, const char *text, size_t len)
{
        size_t pos = 0, eth_indent = 0, id_indent = 0;
        struct line l;
        bool in_eth = false, mac = false;
        const char *id = NULL, *mname = NULL;
        size_t idlen = 0, mlen = 0;
        while (next_line(text, len, &pos, &l)) {
                const char *k, *v;
                size_t kn, vn;
                if (l.len == 0 || !yaml_key(&l, &k, &kn, &v, &vn))
                        continue;
                if (in_eth && l.indent <= eth_indent) {
                        netplan_entry(cfg, id, idlen, mac, mname, mlen);
                        in_eth = false;
                        id = NULL;
                }
                if (!in_eth) {
                        if (word_is(k, kn, "ethernets")) {
                                in_eth = true;
                                eth_indent = l.indent;
                                id_indent = 0;
                                mac = false;
                                mname = NULL;
                        }
                        continue;
                }
                if (id_indent == 0 || l.indent <= id_indent) {
                        if (id)
                                netplan_entry(cfg, id, idlen, mac, mname, mlen);
                        id_indent = l.indent;
                        id = k;
                        idlen = kn;
                        mac = false;
                        mname = NULL;
                } else if (word_is(k, kn, "macaddress") && vn) {
                        mac = true;
                } else if (word_is(k, kn, "name") && vn) {
                        mname = v;
                        mlen = vn;
                }
        }
        if (in_eth && id)
                netplan_entry(cfg, id, idlen, mac, mname, mlen);
}
