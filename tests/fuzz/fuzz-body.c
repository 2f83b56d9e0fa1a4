/* libFuzzer target for what vpoold reads from its clients and its
 * settings: a request's JSON body with every field reader the routes use,
 * and the listen setting.
 *
 * A body either parses to an object whose every key is allowed or is
 * refused with a message; each field reader either fills its output with a
 * value inside its bounds (a name that vp_name_check accepts) or refuses
 * naming the field. A listen value either parses to 1..VP_LISTEN_MAX
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
        "timeout", "to", "dry_run", "parallel", "shutdown_timeout", "source_fenced", "to_hosts", "cold", NULL,
};

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
