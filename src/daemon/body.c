#include "body.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "name.h"

#define BODY_DEPTH 8

static bool refuse(struct vpd_body_error *e, const char *field, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static bool refuse(struct vpd_body_error *e, const char *field, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
        va_end(ap);
        snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
        return false;
}

struct json_object *vpd_body_parse(const char *text, size_t len, const char *const *allowed,
                                   struct vpd_body_error *e)
{
        if (!len)
                return json_object_new_object();
        if (len > INT32_MAX) {
                refuse(e, NULL, "the body is too large");
                return NULL;
        }
        struct json_tokener *tok = json_tokener_new_ex(BODY_DEPTH);
        if (!tok)
                abort();
        struct json_object *o = json_tokener_parse_ex(tok, text, (int)len);
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        size_t used = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (!o || jerr != json_tokener_success || used != len) {
                json_object_put(o);
                refuse(e, NULL, "the body is not one JSON document: %s",
                       jerr != json_tokener_success ? json_tokener_error_desc(jerr) : "text after it");
                return NULL;
        }
        if (!json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                refuse(e, NULL, "the body must be a JSON object");
                return NULL;
        }
        struct json_object_iter it;
        json_object_object_foreachC(o, it)
        {
                bool ok = false;
                for (const char *const *a = allowed; *a && !ok; a++)
                        ok = streq(*a, it.key);
                if (!ok) {
                        char pb[64];
                        vp_printable(it.key, pb, sizeof(pb));
                        refuse(e, pb, "unknown field '%s'", pb);
                        json_object_put(o);
                        return NULL;
                }
        }
        return o;
}

/* Field KEY of O, or NULL (a JSON null counts as absent). */
static struct json_object *field(struct json_object *o, const char *key)
{
        struct json_object *v = NULL;
        return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* V as a name of WHAT, into OUT. */
static bool name_value(struct json_object *v, const char *key, const char *what, char *out, size_t outsz,
                       struct vpd_body_error *e)
{
        struct vp_error err = { 0 };
        if (!json_object_is_type(v, json_type_string))
                return refuse(e, key, "the field '%s' must hold %s names as strings", key, what);
        const char *s = json_object_get_string(v);
        if (strlen(s) != (size_t)json_object_get_string_len(v))
                return refuse(e, key, "a NUL byte in the %s name of '%s'", what, key);
        if (vp_name_check(what, s, &err) < 0)
                return refuse(e, key, "%s", err.msg);
        snprintf(out, outsz, "%s", s);
        return true;
}

bool vpd_field_name(struct json_object *o, const char *key, const char *what, bool required, char *out,
                    size_t outsz, struct vpd_body_error *e)
{
        struct json_object *v = field(o, key);
        if (!v)
                return required ? refuse(e, key, "missing field '%s'", key) : true;
        return name_value(v, key, what, out, outsz, e);
}

bool vpd_field_uint(struct json_object *o, const char *key, int64_t min, int64_t max, bool required, int64_t *out,
                    struct vpd_body_error *e)
{
        struct json_object *v = field(o, key);
        if (!v)
                return required ? refuse(e, key, "missing field '%s'", key) : true;
        errno = 0;
        int64_t n = json_object_get_int64(v);
        if (!json_object_is_type(v, json_type_int) || errno == ERANGE || n < min || n > max)
                return refuse(e, key, "the field '%s' must be an integer from %lld to %lld", key, (long long)min,
                              (long long)max);
        *out = n;
        return true;
}

bool vpd_field_bool(struct json_object *o, const char *key, bool *out, struct vpd_body_error *e)
{
        struct json_object *v = field(o, key);
        if (!v)
                return true;
        if (!json_object_is_type(v, json_type_boolean))
                return refuse(e, key, "the field '%s' must be true or false", key);
        *out = json_object_get_boolean(v);
        return true;
}

bool vpd_field_placement(struct json_object *o, enum vp_placement *out, struct vpd_body_error *e)
{
        struct json_object *v = field(o, "placement");
        if (!v)
                return true;
        enum vp_placement p = json_object_is_type(v, json_type_string)
                                      ? vp_placement_from_string(json_object_get_string(v))
                                      : VP_PLACEMENT_INVALID;
        if (p < 0)
                return refuse(e, "placement", "the field 'placement' must be \"spread\" or \"pack\"");
        *out = p;
        return true;
}

bool vpd_field_names(struct json_object *o, const char *key, const char *what, size_t max, char *out, size_t namesz,
                     size_t *n, struct vpd_body_error *e)
{
        struct json_object *v = field(o, key);
        if (!v)
                return true;
        if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) > max)
                return refuse(e, key, "the field '%s' must be an array of at most %zu %s names", key, max, what);
        size_t len = json_object_array_length(v);
        for (size_t i = 0; i < len; i++)
                if (!name_value(json_object_array_get_idx(v, i), key, what, out + i * namesz, namesz, e))
                        return false;
        *n = len;
        return true;
}

bool vpd_field_is_null(struct json_object *o, const char *key)
{
        struct json_object *v = NULL;
        return json_object_object_get_ex(o, key, &v) && !v;
}

/* V as a line of text of at most OUTSZ - 1 bytes, into OUT. */
static bool text_value(struct json_object *v, const char *key, char *out, size_t outsz, struct vpd_body_error *e)
{
        if (!json_object_is_type(v, json_type_string))
                return refuse(e, key, "the field '%s' must be a string", key);
        const char *s = json_object_get_string(v);
        size_t len = (size_t)json_object_get_string_len(v);
        if (strlen(s) != len)
                return refuse(e, key, "a NUL byte in the field '%s'", key);
        if (len == 0)
                return refuse(e, key, "the field '%s' is empty", key);
        if (len >= outsz)
                return refuse(e, key, "the field '%s' is longer than %zu bytes", key, outsz - 1);
        for (const char *p = s; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        return refuse(e, key, "a control character in the field '%s'", key);
        memcpy(out, s, len + 1);
        return true;
}

bool vpd_field_text(struct json_object *o, const char *key, bool required, char *out, size_t outsz,
                    struct vpd_body_error *e)
{
        struct json_object *v = field(o, key);
        if (!v)
                return required ? refuse(e, key, "missing field '%s'", key) : true;
        return text_value(v, key, out, outsz, e);
}

bool vpd_field_texts(struct json_object *o, const char *key, size_t max, char *out, size_t textsz, size_t *n,
                     struct vpd_body_error *e)
{
        struct json_object *v = field(o, key);
        if (!v)
                return true;
        if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) > max ||
            json_object_array_length(v) == 0)
                return refuse(e, key, "the field '%s' must be an array of 1 to %zu strings", key, max);
        size_t len = json_object_array_length(v);
        for (size_t i = 0; i < len; i++)
                if (!text_value(json_object_array_get_idx(v, i), key, out + i * textsz, textsz, e))
                        return false;
        *n = len;
        return true;
}
