#include "parse.h"
#include "name.h"

#include <inttypes.h>
#include <string.h>
#include <strings.h>

struct unit {
        const char *suffix;
        uint64_t factor;
};

/* Binary units only: "KB" is deliberately not accepted, as users disagree
 * on whether it means 1000 or 1024. */
static const struct unit units[] = {
        { "B", 1 },
        { "K", UINT64_C(1) << 10 },
        { "KiB", UINT64_C(1) << 10 },
        { "M", UINT64_C(1) << 20 },
        { "MiB", UINT64_C(1) << 20 },
        { "G", UINT64_C(1) << 30 },
        { "GiB", UINT64_C(1) << 30 },
        { "T", UINT64_C(1) << 40 },
        { "TiB", UINT64_C(1) << 40 },
};

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

/* Render a byte count with the largest binary suffix that divides it. */
static void format_bytes(uint64_t n, char *buf, size_t bufsz)
{
        static const char suffixes[] = "KMGT";

        for (int i = 4; i >= 1; i--) {
                uint64_t f = UINT64_C(1) << (10 * i);
                if (n >= f && n % f == 0) {
                        snprintf(buf, bufsz, "%" PRIu64 "%c", n / f, suffixes[i - 1]);
                        return;
                }
        }
        snprintf(buf, bufsz, "%" PRIu64 " bytes", n);
}

/* Parse the leading run of decimal digits of S. Returns the number of
 * digits consumed (0 if none) and -ERANGE on overflow of uint64_t. */
static int parse_digits(const char *s, uint64_t *ret)
{
        uint64_t v = 0;
        int i;

        for (i = 0; is_digit(s[i]); i++) {
                unsigned d = (unsigned) (s[i] - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        *ret = v;
        return i;
}

int vp_parse_size(const char *what, const char *s, uint64_t default_unit, uint64_t max,
                  uint64_t *ret, struct vp_error *err)
{
        char shown[48], maxs[32];
        uint64_t v, factor;
        const char *suffix;
        int n;

        if (!what)
                what = "size";
        if (!s || !*s)
                return vp_err(err, -EINVAL, "invalid %s '': expected a size such as 512M or 4G",
                              what);
        vp_printable(s, shown, sizeof(shown));
        format_bytes(max, maxs, sizeof(maxs));

        if (s[0] == '-')
                return vp_err(err, -EINVAL, "invalid %s '%s': must not be negative", what, shown);
        n = parse_digits(s, &v);
        if (n == -ERANGE)
                return vp_err(err, -ERANGE, "%s '%s' is too large: the maximum is %s",
                              what, shown, maxs);
        if (n == 0)
                return vp_err(err, -EINVAL, "invalid %s '%s': expected a size such as 512M or 4G",
                              what, shown);

        suffix = s + n;
        if (*suffix == '.' || *suffix == ',')
                return vp_err(err, -EINVAL,
                              "invalid %s '%s': fractions are not supported, use a smaller unit",
                              what, shown);

        if (*suffix == '\0') {
                if (default_unit == 0)
                        return vp_err(err, -EINVAL,
                                      "invalid %s '%s': a unit suffix (B, K, M, G, T) is required",
                                      what, shown);
                factor = default_unit;
        } else {
                factor = 0;
                for (size_t i = 0; i < ELEMENTSOF(units); i++)
                        if (strcasecmp(suffix, units[i].suffix) == 0) {
                                factor = units[i].factor;
                                break;
                        }
                if (factor == 0)
                        return vp_err(err, -EINVAL,
                                      "invalid %s '%s': unknown unit, use B, K, M, G or T",
                                      what, shown);
        }

        if (v == 0)
                return vp_err(err, -EINVAL, "invalid %s '%s': must be greater than zero",
                              what, shown);
        if (v > max / factor)
                return vp_err(err, -ERANGE, "%s '%s' is too large: the maximum is %s",
                              what, shown, maxs);

        *ret = v * factor;
        return 0;
}

int vp_parse_uint(const char *what, const char *s, uint64_t min, uint64_t max,
                  uint64_t *ret, struct vp_error *err)
{
        char shown[48];
        uint64_t v;
        int n;

        if (!what)
                what = "number";
        if (!s || !*s)
                return vp_err(err, -EINVAL, "invalid %s '': expected a whole number", what);
        vp_printable(s, shown, sizeof(shown));

        n = parse_digits(s, &v);
        if (n == -ERANGE)
                return vp_err(err, -ERANGE,
                              "%s '%s' is out of range: must be between %" PRIu64 " and %" PRIu64,
                              what, shown, min, max);
        if (n == 0 || s[n] != '\0')
                return vp_err(err, -EINVAL, "invalid %s '%s': expected a whole number", what,
                              shown);
        if (v < min || v > max)
                return vp_err(err, -ERANGE,
                              "%s '%s' is out of range: must be between %" PRIu64 " and %" PRIu64,
                              what, shown, min, max);
        *ret = v;
        return 0;
}
