#include "name.h"

#include <string.h>

static bool name_char_ok(unsigned char c, bool first)
{
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
                return true;
        /* A leading '.' or '-' would allow "..", hidden files and names that
         * look like options to qemu-img. */
        return !first && (c == '_' || c == '.' || c == '-');
}

int vp_name_check(const char *kind, const char *name, struct vp_error *err)
{
        char shown[48];
        size_t i;

        if (!kind || !*kind)
                kind = "object";
        if (!name)
                return vp_err(err, -EINVAL, "no %s name given", kind);

        for (i = 0; name[i]; i++)
                if (i >= VP_NAME_MAX || !name_char_ok((unsigned char) name[i], i == 0))
                        break;

        if (i > 0 && name[i] == '\0')
                return 0;

        return vp_err(err, -EINVAL,
                      "invalid %s name '%s': must be 1-%d characters of A-Z a-z 0-9 _ . - "
                      "starting with a letter or digit",
                      kind, vp_printable(name, shown, sizeof(shown)), VP_NAME_MAX);
}

/* Escape everything that could garble a one-line message on a terminal:
 * control bytes, DEL, non-ASCII, and the quote and backslash characters
 * that would make the quoted subject ambiguous. */
static bool needs_escape(unsigned char c)
{
        return c < 0x20 || c >= 0x7f || c == '\'' || c == '\\';
}

const char *vp_printable(const char *s, char *buf, size_t bufsz)
{
        static const char hex[] = "0123456789abcdef";
        size_t need = 0, limit, o = 0;
        const unsigned char *p;
        bool shorten;

        if (!buf || bufsz == 0)
                return "";
        if (!s)
                s = "(null)";

        for (p = (const unsigned char *) s; *p; p++)
                need += needs_escape(*p) ? 4 : 1;
        shorten = need >= bufsz;
        /* When shortening, keep room for "..." and the NUL. */
        limit = !shorten ? bufsz - 1 : bufsz > 4 ? bufsz - 4 : 0;

        for (p = (const unsigned char *) s; *p; p++) {
                size_t w = needs_escape(*p) ? 4 : 1;
                if (o + w > limit)
                        break;
                if (w == 4) {
                        buf[o++] = '\\';
                        buf[o++] = 'x';
                        buf[o++] = hex[*p >> 4];
                        buf[o++] = hex[*p & 0xf];
                } else {
                        buf[o++] = (char) *p;
                }
        }
        if (shorten && bufsz >= 4) {
                memcpy(buf + o, "...", 3);
                o += 3;
        }
        buf[o] = '\0';
        return buf;
}
