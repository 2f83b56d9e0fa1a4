#include "manifest.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <string.h>

#include "fileio.h"
#include "model.h"
#include "name.h"

char *vp_manifest_to_json(const struct vp_manifest *m)
{
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "version", json_object_new_int(VP_MANIFEST_VERSION));
        json_object_object_add(o, "pool", json_object_new_string(m->pool));
        json_object_object_add(o, "vm", json_object_new_string(m->vm));
        json_object_object_add(o, "owner", json_object_new_string(m->owner));
        json_object_object_add(o, "generation", json_object_new_int64(m->generation));
        struct json_object *id = json_object_new_object();
        json_object_object_add(id, "uuid", json_object_new_string(m->uuid));
        struct json_object *macs = json_object_new_array();
        for (int i = 0; i < m->nmacs; i++)
                json_object_array_add(macs, json_object_new_string(m->macs[i]));
        json_object_object_add(id, "macs", macs);
        json_object_object_add(id, "hostname", json_object_new_string(m->hostname));
        json_object_object_add(o, "identity", id);
        json_object_object_add(o, "master", json_object_new_string(m->master));
        json_object_object_add(o, "master_format", json_object_new_string(m->master_format));
        json_object_object_add(o, "overlay", json_object_new_string(m->overlay));
        json_object_object_add(o, "data_disk", json_object_new_string(m->data_disk));
        json_object_object_add(o, "nvram", json_object_new_string(m->nvram));
        char *s = vp_strdupf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                                        JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
        return s;
}

static bool valid_uuid(const char *s)
{
        if (strlen(s) != 36)
                return false;
        for (int i = 0; i < 36; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-')
                                return false;
                } else if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) {
                        return false;
                }
        }
        return true;
}

static bool valid_mac(const char *s)
{
        if (strlen(s) != 17)
                return false;
        for (int i = 0; i < 17; i++) {
                if (i % 3 == 2) {
                        if (s[i] != ':')
                                return false;
                } else if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) {
                        return false;
                }
        }
        return true;
}

/* Fetch a string member of OBJ into BUF; refuses a missing key, another
 * type, or a value too long for BUF. */
static int get_str(struct json_object *obj, const char *key, char *buf, size_t bufsz,
                   bool allow_empty, const char *label, struct vp_error *err)
{
        struct json_object *v;
        if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
                return vp_err(err, -EBADMSG, "manifest '%s' is damaged: '%s' missing or not a string",
                              label, key);
        const char *s = json_object_get_string(v);
        size_t len = (size_t)json_object_get_string_len(v);
        if (len >= bufsz || strlen(s) != len || (!allow_empty && len == 0))
                return vp_err(err, -EBADMSG, "manifest '%s' is damaged: bad '%s'", label, key);
        memcpy(buf, s, len + 1);
        return 0;
}

static void json_putp(struct json_object **o) { if (*o) json_object_put(*o); }

int vp_manifest_parse(const char *text, const char *label, struct vp_manifest *ret,
                      struct vp_error *err)
{
        struct vp_manifest m = { 0 };
        struct json_tokener *tok = json_tokener_new();
        if (!tok)
                abort();
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        size_t len = strlen(text);
        _cleanup_(json_putp) struct json_object *o = json_tokener_parse_ex(tok, text, (int)len);
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        size_t used = tok->char_offset;
        json_tokener_free(tok);
        if (!o || jerr != json_tokener_success)
                return vp_err(err, -EBADMSG, "manifest '%s' is damaged: %s", label,
                              len == 0 ? "empty" : json_tokener_error_desc(jerr));
        for (; used < len; used++)
                if (!isspace((unsigned char)text[used]))
                        return vp_err(err, -EBADMSG, "manifest '%s' is damaged: trailing data", label);
        if (!json_object_is_type(o, json_type_object))
                return vp_err(err, -EBADMSG, "manifest '%s' is damaged: not an object", label);

        struct json_object *v;
        if (!json_object_object_get_ex(o, "version", &v) || !json_object_is_type(v, json_type_int) ||
            json_object_get_int64(v) != VP_MANIFEST_VERSION)
                return vp_err(err, -EBADMSG, "manifest '%s' has no supported version", label);
        /* json-c clamps out-of-range numbers to INT64_MAX: far past any real count, so refused. */
        if (!json_object_object_get_ex(o, "generation", &v) || !json_object_is_type(v, json_type_int) ||
            json_object_get_int64(v) < 1 || json_object_get_int64(v) >= INT64_MAX / 2)
                return vp_err(err, -EBADMSG, "manifest '%s' is damaged: bad 'generation'", label);
        m.generation = json_object_get_int64(v);

        int r;
        if ((r = get_str(o, "pool", m.pool, sizeof(m.pool), false, label, err)) < 0 ||
            (r = get_str(o, "vm", m.vm, sizeof(m.vm), false, label, err)) < 0 ||
            (r = get_str(o, "owner", m.owner, sizeof(m.owner), false, label, err)) < 0 ||
            (r = get_str(o, "master", m.master, sizeof(m.master), false, label, err)) < 0 ||
            (r = get_str(o, "master_format", m.master_format, sizeof(m.master_format), false, label, err)) < 0 ||
            (r = get_str(o, "overlay", m.overlay, sizeof(m.overlay), false, label, err)) < 0 ||
            (r = get_str(o, "data_disk", m.data_disk, sizeof(m.data_disk), true, label, err)) < 0 ||
            (r = get_str(o, "nvram", m.nvram, sizeof(m.nvram), true, label, err)) < 0)
                return r;

        struct json_object *id;
        if (!json_object_object_get_ex(o, "identity", &id) || !json_object_is_type(id, json_type_object))
                return vp_err(err, -EBADMSG, "manifest '%s' is damaged: 'identity' missing", label);
        if ((r = get_str(id, "uuid", m.uuid, sizeof(m.uuid), false, label, err)) < 0 ||
            (r = get_str(id, "hostname", m.hostname, sizeof(m.hostname), false, label, err)) < 0)
                return r;
        struct json_object *macs;
        if (!json_object_object_get_ex(id, "macs", &macs) || !json_object_is_type(macs, json_type_array) ||
            json_object_array_length(macs) > VP_MAX_MACS)
                return vp_err(err, -EBADMSG, "manifest '%s' is damaged: bad 'macs'", label);
        m.nmacs = (int)json_object_array_length(macs);
        for (int i = 0; i < m.nmacs; i++) {
                struct json_object *mac = json_object_array_get_idx(macs, (size_t)i);
                if (!json_object_is_type(mac, json_type_string) || !valid_mac(json_object_get_string(mac)))
                        return vp_err(err, -EBADMSG, "manifest '%s' is damaged: bad MAC address", label);
                snprintf(m.macs[i], sizeof(m.macs[i]), "%s", json_object_get_string(mac));
        }

        if (vp_name_check("pool", m.pool, NULL) < 0 || vp_name_check("vm", m.vm, NULL) < 0 ||
            vp_name_check("hostname", m.hostname, NULL) < 0)
                return vp_err(err, -EBADMSG, "manifest '%s' is damaged: bad name", label);
        if (vp_owner_parse(m.owner, NULL, NULL) < 0)
                return vp_err(err, -EBADMSG, "manifest '%s' is damaged: bad owner", label);
        if (!valid_uuid(m.uuid))
                return vp_err(err, -EBADMSG, "manifest '%s' is damaged: bad UUID", label);
        size_t ml = strlen(m.master);
        if (m.master[0] != '/' || strstr(m.master, "/../") || strstr(m.master, "/./") || strstr(m.master, "//") ||
            (ml >= 3 && streq(m.master + ml - 3, "/..")) || (ml >= 2 && streq(m.master + ml - 2, "/.")))
                return vp_err(err, -EBADMSG, "manifest '%s' is damaged: master is not an absolute path", label);
        if (!streq(m.master_format, "qcow2") && !streq(m.master_format, "raw"))
                return vp_err(err, -EBADMSG, "manifest '%s' is damaged: bad master format", label);
        const char *files[] = { m.overlay, m.data_disk, m.nvram };
        for (size_t i = 0; i < ELEMENTSOF(files); i++)
                if (files[i][0] && vp_name_check("file", files[i], NULL) < 0)
                        return vp_err(err, -EBADMSG, "manifest '%s' is damaged: bad file name", label);

        *ret = m;
        return 0;
}

void vp_manifest_sweep_temps(int dirfd)
{
        int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d) {
                if (fd >= 0)
                        close(fd);
                return;
        }
        static const char prefix[] = VP_MANIFEST_NAME ".tmp.";
        struct dirent *de;
        while ((de = readdir(d)))
                if (strncmp(de->d_name, prefix, sizeof(prefix) - 1) == 0)
                        unlinkat(dirfd, de->d_name, 0);
        closedir(d);
}

int vp_manifest_write(int dirfd, const struct vp_manifest *m, struct vp_error *err)
{
        _cleanup_free_ char *text = vp_manifest_to_json(m);
        return vp_write_file_recycle(dirfd, VP_MANIFEST_NAME, VP_MANIFEST_SPARE, text, strlen(text), 0644, err);
}

int vp_manifest_read(int dirfd, const char *label, struct vp_manifest *ret, struct vp_error *err)
{
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = vp_read_file_at(dirfd, VP_MANIFEST_NAME, 64 * 1024, &text, &len, err);
        if (r < 0) {
                if (r == -ENOENT)
                        return vp_err(err, r, "manifest '%s' is missing", label);
                return r;
        }
        if (strlen(text) != len)
                return vp_err(err, -EBADMSG, "manifest '%s' is damaged: NUL byte", label);
        return vp_manifest_parse(text, label, ret, err);
}
