/* libFuzzer target for the allowlist and the command-line number parsers:
 * vp_name_check, vp_printable, vp_parse_size and vp_parse_uint.
 *
 * Each is compared with a reference written here independently, in the most
 * plain-spoken way (no shared helpers, 128-bit arithmetic instead of the
 * overflow guards), so that a disagreement is a bug in one of the two. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "name.h"
#include "parse.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

__extension__ typedef unsigned __int128 u128;

/* ---- [A-Za-z0-9][A-Za-z0-9_.-]{0,62}, spelled out ---- */

static bool ref_alnum(char c)
{
        return strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", c) && c;
}

static bool ref_name_ok(const char *s)
{
        size_t len = strlen(s);

        if (len < 1 || len > 63 || !ref_alnum(s[0]))
                return false;
        for (size_t i = 1; i < len; i++)
                if (!ref_alnum(s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
                        return false;
        return true;
}

/* ---- vp_printable: escape, and shorten with "..." when it does not fit ---- */

/* The rendering of one byte: itself, or \xHH for bytes that could garble a
 * quoted one-line message. */
static size_t ref_escape(unsigned char c, char out[5])
{
        if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
                out[0] = (char) c;
                out[1] = '\0';
                return 1;
        }
        snprintf(out, 5, "\\x%02x", c);
        return 4;
}

static void check_printable(const char *s, size_t bufsz)
{
        char *buf = malloc(bufsz ? bufsz : 1), *full;
        size_t full_len = 0, cut = 0;
        char piece[5];

        require(buf);
        full = malloc(strlen(s) * 4 + 1);
        require(full);
        full[0] = '\0';
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                full_len += ref_escape(*p, full + full_len);

        const char *out = vp_printable(s, buf, bufsz);
        if (bufsz == 0) {
                require(streq(out, ""));
                goto done;
        }
        require(out == buf);
        require(strlen(out) < bufsz);
        if (full_len < bufsz) {
                require(streq(out, full));
                goto done;
        }
        /* Shortened: the longest run of whole escapes that leaves room for
         * "..." and the NUL, then "..." (when even that fits). */
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                size_t w = ref_escape(*p, piece);
                if (bufsz < 4 || cut + w > bufsz - 4)
                        break;
                cut += w;
        }
        require(strncmp(out, full, cut) == 0);
        require(streq(out + cut, bufsz >= 4 ? "..." : ""));
done:
        free(full);
        free(buf);
}

/* ---- sizes and counts ---- */

static int ref_unit(const char *suffix, uint64_t *factor)
{
        static const char *const names[][2] = {
                { "b", NULL }, { "k", "kib" }, { "m", "mib" }, { "g", "gib" }, { "t", "tib" },
        };
        char low[8];
        size_t n = strlen(suffix);

        if (n >= sizeof(low))
                return -1;
        for (size_t i = 0; i <= n; i++)
                low[i] = (char) (suffix[i] >= 'A' && suffix[i] <= 'Z' ? suffix[i] - 'A' + 'a' : suffix[i]);
        for (unsigned i = 0; i < 5; i++)
                if (streq(low, names[i][0]) || (names[i][1] && streq(low, names[i][1]))) {
                        *factor = UINT64_C(1) << (10 * i);
                        return 0;
                }
        return -1;
}

/* Leading digits as a 128-bit value, saturated well above UINT64_MAX. */
static size_t ref_digits(const char *s, u128 *v)
{
        size_t n = 0;

        *v = 0;
        while (s[n] >= '0' && s[n] <= '9') {
                if (*v <= UINT64_MAX)
                        *v = *v * 10 + (unsigned) (s[n] - '0');
                n++;
        }
        return n;
}

static int ref_parse_size(const char *s, uint64_t unit, uint64_t max, uint64_t *ret)
{
        uint64_t factor;
        u128 v;
        size_t n;

        if (!*s)
                return -EINVAL;
        if (s[0] == '-')
                return -EINVAL;
        n = ref_digits(s, &v);
        if (v > UINT64_MAX)
                return -ERANGE;
        if (n == 0)
                return -EINVAL;
        if (s[n] == '.' || s[n] == ',')
                return -EINVAL;
        if (s[n] == '\0') {
                if (unit == 0)
                        return -EINVAL;
                factor = unit;
        } else if (ref_unit(s + n, &factor) < 0) {
                return -EINVAL;
        }
        if (v == 0)
                return -EINVAL;
        if (v * factor > max)
                return -ERANGE;
        *ret = (uint64_t) (v * factor);
        return 0;
}

static int ref_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
        u128 v;
        size_t n;

        if (!*s)
                return -EINVAL;
        n = ref_digits(s, &v);
        if (v > UINT64_MAX)
                return -ERANGE;
        if (n == 0 || s[n] != '\0')
                return -EINVAL;
        if (v < min || v > max)
                return -ERANGE;
        *ret = (uint64_t) v;
        return 0;
}

/* A parser R and its reference W agree: both refuse (the parser with a clean
 * message and its output untouched) or both accept the same value. */
static void require_agrees(int r, int w, const struct vp_error *err, uint64_t got, uint64_t want)
{
        require(r == w);
        if (r < 0) {
                require_clean_error(r, err);
                require(got == 0xdeadbeef);
        } else {
                require(got == want);
        }
}

static void check_size(const char *s, uint64_t unit, uint64_t max)
{
        struct vp_error err = { 0 };
        uint64_t got = 0xdeadbeef, want = 0;
        int r = vp_parse_size("size", s, unit, max, &got, &err);
        int w = ref_parse_size(s, unit, max, &want);

        if (r != w)
                fprintf(stderr, "fuzz-names: vp_parse_size(unit %llu, max %llu) = %d, reference %d\n",
                        (unsigned long long) unit, (unsigned long long) max, r, w);
        require_agrees(r, w, &err, got, want);
}

static void check_uint(const char *s, uint64_t min, uint64_t max)
{
        struct vp_error err = { 0 };
        uint64_t got = 0xdeadbeef, want = 0;
        int r = vp_parse_uint("count", s, min, max, &got, &err);
        int w = ref_parse_uint(s, min, max, &want);

        require_agrees(r, w, &err, got, want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const size_t bufszs[] = { 0, 1, 3, 4, 5, 6, 16, 48, 256 };
        struct vp_error err = { 0 };
        char *s = malloc(size + 1);
        int r;

        require(s);
        memcpy(s, data, size);
        s[size] = '\0';

        r = vp_name_check("pool", s, &err);
        if (r < 0)
                require_clean_error(r, &err);
        if ((r == 0) != ref_name_ok(s))
                fprintf(stderr, "fuzz-names: vp_name_check says %d, the regex %s\n", r,
                        ref_name_ok(s) ? "matches" : "does not match");
        require((r == 0) == ref_name_ok(s));

        for (size_t i = 0; i < sizeof(bufszs) / sizeof(bufszs[0]); i++)
                check_printable(s, bufszs[i]);

        check_size(s, UINT64_C(1) << 20, UINT64_MAX);
        check_size(s, 1, UINT64_C(1) << 40);
        check_size(s, 0, UINT64_C(1) << 50);
        check_size(s, UINT64_C(1) << 30, 1000);
        check_uint(s, 1, 256);
        check_uint(s, 0, UINT64_MAX);
        check_uint(s, 10, 10);

        free(s);
        return 0;
}
