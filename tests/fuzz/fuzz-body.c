/* libFuzzer target for what vpoold reads from its clients and its
 * settings: a request's JSON body with every field reader the routes use,
 * and the listen setting.
 *
 * A body either parses to an object whose every key is allowed or is
 * refused with a message; each field reader either fills its output with a
 * value inside its bounds (a name that vp_name_check accepts) or refuses
 * naming the field; a text reader gives a non-empty line within its buffer
 * with no control character. A listen value either parses to 1..VP_LISTEN_MAX
 * listeners, each well formed, or is refused. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "listen.h"
#include "name.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const allowed[] = {
        "name", "image", "env", "profile", "size", "data_disk_mib", "start", "placement", "force", "keep_deltas",
        "timeout", "to", "dry_run", "parallel", "shutdown_timeout", "source_fenced", "to_hosts", "cold", "uri",
        "hosts", "fence_cmd", "window", "file", "cmdline", "machine", "disk_bus", NULL,
};

/* A line of text: within its buffer, not empty, no NUL or control character. */
static void check_text_out(bool ok, const char *out, size_t outsz, const struct vpd_body_error *e)
{
        if (!ok) {
                require(e->detail[0] && e->field[0]);
                return;
        }
        require(strlen(out) < outsz);
        for (const char *p = out; *p; p++)
                require((unsigned char)*p >= 0x20 && *p != 0x7f);
}

/* The readers of the admin's routes: texts, arrays of texts, and a null
 * told from an absent field. */
static void text_fields(struct json_object *o)
{
        struct vpd_body_error e = { 0 };
        char text[64] = "", texts[16][32];
        size_t n = 0;
        check_text_out(vpd_field_text(o, "fence_cmd", false, text, sizeof(text), &e), text, sizeof(text), &e);
        text[0] = 0;
        if (vpd_field_text(o, "cmdline", true, text, sizeof(text), &e))
                require(text[0]);
        check_text_out(true, text, sizeof(text), &e);
        if (vpd_field_texts(o, "hosts", 16, texts[0], sizeof(texts[0]), &n, &e)) {
                require(n <= 16);
                for (size_t i = 0; i < n; i++)
                        check_text_out(true, texts[i], sizeof(texts[i]), &e);
        } else {
                require(e.detail[0] && streq(e.field, "hosts"));
        }
        struct json_object *v = NULL;
        if (vpd_field_is_null(o, "fence_cmd"))
                require(json_object_object_get_ex(o, "fence_cmd", &v) && !v);
}

static void check_name_out(bool ok, const char *out, const struct vpd_body_error *e)
{
        if (ok && out[0])
                require(vp_name_check("name", out, NULL) >= 0);
        if (!ok)
                require(e->detail[0] && e->field[0]);
}

static void fields(struct json_object *o)
{
        struct vpd_body_error e = { 0 };
        char name[64] = "";
        int64_t n = -1;
        bool b = false;
        enum vp_placement p = VP_PLACE_SPREAD;
        char hosts[16][64];
        size_t nh = 0;
        check_name_out(vpd_field_name(o, "name", "pool", true, name, sizeof(name), &e), name, &e);
        name[0] = 0;
        check_name_out(vpd_field_name(o, "to", "env", false, name, sizeof(name), &e), name, &e);
        if (vpd_field_uint(o, "size", 1, 9999, false, &n, &e))
                require(n == -1 || (n >= 1 && n <= 9999));
        vpd_field_bool(o, "start", &b, &e);
        if (vpd_field_placement(o, &p, &e))
                require(p == VP_PLACE_SPREAD || p == VP_PLACE_PACK);
        if (vpd_field_names(o, "to_hosts", "host", 16, hosts[0], sizeof(hosts[0]), &nh, &e)) {
                require(nh <= 16);
                for (size_t i = 0; i < nh; i++)
                        require(vp_name_check("host", hosts[i], NULL) >= 0);
        }
}

static void listen_value(const char *text)
{
        struct vp_listen *ls = NULL;
        size_t n = 0;
        struct vp_error err = { 0 };
        if (vp_listen_parse(text, &ls, &n, &err) < 0) {
                require(err.msg[0]);
                return;
        }
        require(n >= 1 && n <= VP_LISTEN_MAX);
        for (size_t i = 0; i < n; i++) {
                if (ls[i].kind == VP_LISTEN_UNIX)
                        require(ls[i].path[0] == '/' && strlen(ls[i].path) <= VP_LISTEN_PATH_MAX);
                else
                        require(ls[i].port >= 1 && ls[i].addr[0]);
                if (ls[i].kind == VP_LISTEN_HTTP)
                        require(ls[i].loopback);
        }
        free(ls);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct vpd_body_error e = { 0 };
        struct json_object *o = vpd_body_parse((const char *)data, size, allowed, &e);
        if (o) {
                struct json_object_iter it;
                json_object_object_foreachC(o, it)
                {
                        bool known = false;
                        for (const char *const *a = allowed; *a; a++)
                                known |= streq(*a, it.key);
                        require(known);
                }
                fields(o);
                text_fields(o);
                json_object_put(o);
        } else {
                require(e.detail[0]);
        }
        char *text = malloc(size + 1);
        require(text);
        memcpy(text, data, size);
        text[size] = 0;
        listen_value(text);
        free(text);
        return 0;
}
