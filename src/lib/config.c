#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "catalog.h"
#include "listen.h"
#include "name.h"
#include "parse.h"
#include "vp-config.h"

static const struct {
        const char *key, *env, *option;
} keys[VP_CONF_KEY_MAX] = {
        [VP_CONF_CATALOG] = { "catalog", "VPOOL_CATALOG", "--catalog" },
        [VP_CONF_STORAGE] = { "storage", "VPOOL_STORAGE", "--storage" },
        [VP_CONF_PARALLEL] = { "parallel", "VPOOL_PARALLEL", "--parallel" },
        [VP_CONF_SHUTDOWN_TIMEOUT] = { "shutdown_timeout", "VPOOL_SHUTDOWN_TIMEOUT", "--shutdown-timeout" },
        [VP_CONF_PROFILE] = { "profile", "VPOOL_PROFILE", "--profile" },
        [VP_CONF_SOURCE_GRACE] = { "source_grace", "VPOOL_SOURCE_GRACE", "--source-grace" },
        [VP_CONF_FENCE_TIMEOUT] = { "fence_timeout", "VPOOL_FENCE_TIMEOUT", "--fence-timeout" },
        [VP_CONF_LISTEN] = { "listen", "VPOOL_LISTEN", "--listen" },
        [VP_CONF_TLS_CERT] = { "tls_cert", "VPOOL_TLS_CERT", "--tls-cert" },
        [VP_CONF_TLS_KEY] = { "tls_key", "VPOOL_TLS_KEY", "--tls-key" },
        [VP_CONF_RATE_LIMIT] = { "rate_limit", "VPOOL_RATE_LIMIT", "--rate-limit" },
        [VP_CONF_CONSOLE] = { "console", "VPOOL_CONSOLE", "--console" },
        [VP_CONF_POLICY_INTERVAL] = { "policy_interval", "VPOOL_POLICY_INTERVAL", "--policy-interval" },
        [VP_CONF_LEADER_INTERVAL] = { "leader_interval", "VPOOL_LEADER_INTERVAL", "--leader-interval" },
        [VP_CONF_ADVERTISE] = { "advertise", "VPOOL_ADVERTISE", "--advertise" },
};

const char *vp_config_key_name(enum vp_conf_key k)
{
        return keys[k].key;
}

const char *vp_config_env_name(enum vp_conf_key k)
{
        return keys[k].env;
}

const char *vp_config_option_name(enum vp_conf_key k)
{
        return keys[k].option;
}

void vp_config_init(struct vp_config *c)
{
        memset(c, 0, sizeof(*c));
        c->v[VP_CONF_CATALOG].text = vp_strdup(VP_DEFAULT_CATALOG);
        c->v[VP_CONF_LISTEN].text = vp_strdup(VP_DEFAULT_LISTEN);
        c->v[VP_CONF_CONSOLE].text = vp_strdup(VP_CONSOLE_DIR);
        c->v[VP_CONF_PARALLEL].text = vp_strdupf("%d", VP_CONF_DEFAULT_PARALLEL);
        c->v[VP_CONF_SHUTDOWN_TIMEOUT].text = vp_strdupf("%d", VP_CONF_DEFAULT_SHUTDOWN_TIMEOUT);
        c->v[VP_CONF_SOURCE_GRACE].text = vp_strdupf("%d", VP_CONF_DEFAULT_SOURCE_GRACE);
        c->v[VP_CONF_FENCE_TIMEOUT].text = vp_strdupf("%d", VP_CONF_DEFAULT_FENCE_TIMEOUT);
        c->parallel = VP_CONF_DEFAULT_PARALLEL;
        c->shutdown_timeout = VP_CONF_DEFAULT_SHUTDOWN_TIMEOUT;
        c->source_grace = VP_CONF_DEFAULT_SOURCE_GRACE;
        c->fence_timeout = VP_CONF_DEFAULT_FENCE_TIMEOUT;
        c->v[VP_CONF_RATE_LIMIT].text = vp_strdupf("%d", VP_CONF_DEFAULT_RATE_LIMIT);
        c->rate_limit = VP_CONF_DEFAULT_RATE_LIMIT;
        c->v[VP_CONF_POLICY_INTERVAL].text = vp_strdupf("%d", VP_CONF_DEFAULT_POLICY_INTERVAL);
        c->policy_interval = VP_CONF_DEFAULT_POLICY_INTERVAL;
        c->v[VP_CONF_LEADER_INTERVAL].text = vp_strdupf("%d", VP_CONF_DEFAULT_LEADER_INTERVAL);
        c->leader_interval = VP_CONF_DEFAULT_LEADER_INTERVAL;
}

void vp_config_free(struct vp_config *c)
{
        free(c->path);
        for (size_t k = 0; k < VP_CONF_KEY_MAX; k++)
                free(c->v[k].text);
        memset(c, 0, sizeof(*c));
}

static void config_copy(struct vp_config *dst, const struct vp_config *src)
{
        *dst = *src;
        dst->path = src->path ? vp_strdup(src->path) : NULL;
        for (size_t k = 0; k < VP_CONF_KEY_MAX; k++)
                dst->v[k].text = src->v[k].text ? vp_strdup(src->v[k].text) : NULL;
}

/* Control characters in a path would end up in catalog rows, libvirt XML
 * and error messages; nobody means them. */
static int check_path(const char *what, const char *s, enum vp_conf_origin origin, struct vp_error *err)
{
        char pb[64];
        for (const char *p = s; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        return vp_err(err, -EINVAL, "invalid %s '%s': control characters are not allowed", what,
                                      vp_printable(s, pb, sizeof(pb)));
        /* A file is read from any working directory: a relative path in it
         * would mean something different for every caller. */
        if (origin == VP_CONF_FILE && s[0] != '/')
                return vp_err(err, -EINVAL, "%s '%s' must be an absolute path", what, vp_printable(s, pb, sizeof(pb)));
        return 0;
}

/* The address a leading vpoold names to clients: shown in the API and
 * written to the catalog, so printable, one word, and short. */
static int check_advertise(const char *value, struct vp_error *err)
{
        size_t len = strlen(value);
        if (len > 255)
                return vp_err(err, -ENAMETOOLONG, "the advertised address is longer than 255 characters");
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)value[i] <= ' ' || (unsigned char)value[i] >= 0x7f)
                        return vp_err(err, -EINVAL, "the advertised address must be one word of printable ASCII");
        return 0;
}

int vp_config_set(struct vp_config *c, enum vp_conf_key k, const char *value, enum vp_conf_origin origin,
                  unsigned line, struct vp_error *err)
{
        uint64_t n = 0;
        int r = 0;
        if ((unsigned)k >= VP_CONF_KEY_MAX || !value)
                return vp_err(err, -EINVAL, "no such setting");
        if (!*value)
                return vp_err(err, -EINVAL, "empty value for '%s'", keys[k].key);
        switch (k) {
        case VP_CONF_CATALOG:
                /* A PostgreSQL connection string is no path. */
                r = vp_catalog_is_pg(value) ? 0 : check_path("catalog path", value, origin, err);
                break;
        case VP_CONF_STORAGE:
                r = check_path("storage root", value, origin, err);
                break;
        case VP_CONF_PARALLEL:
                r = vp_parse_uint("parallelism", value, 1, 256, &n, err);
                break;
        case VP_CONF_SHUTDOWN_TIMEOUT:
                r = vp_parse_uint("shutdown timeout", value, 0, 86400, &n, err);
                break;
        case VP_CONF_SOURCE_GRACE:
                r = vp_parse_uint("source grace period", value, 0, 3600, &n, err);
                break;
        case VP_CONF_FENCE_TIMEOUT:
                r = vp_parse_uint("fence timeout", value, 1, 3600, &n, err);
                break;
        case VP_CONF_PROFILE:
                r = vp_name_check("profile", value, err);
                break;
        case VP_CONF_LISTEN: {
                struct vp_listen *ls = NULL;
                size_t nl = 0;
                r = vp_listen_parse(value, &ls, &nl, err);
                free(ls);
                break;
        }
        case VP_CONF_RATE_LIMIT:
                r = vp_parse_uint("rate limit", value, 1, 1000000, &n, err);
                break;
        case VP_CONF_POLICY_INTERVAL:
                r = vp_parse_uint("policy interval", value, 1, 3600, &n, err);
                break;
        case VP_CONF_LEADER_INTERVAL:
                r = vp_parse_uint("leader interval", value, 1, 3600, &n, err);
                break;
        case VP_CONF_ADVERTISE:
                r = check_advertise(value, err);
                break;
        case VP_CONF_TLS_CERT:
                r = check_path("TLS certificate", value, origin, err);
                break;
        case VP_CONF_TLS_KEY:
                r = check_path("TLS key", value, origin, err);
                break;
        case VP_CONF_CONSOLE:
                r = check_path("console folder", value, origin, err);
                break;
        default:
                break;
        }
        if (r < 0)
                return r;
        free(c->v[k].text);
        c->v[k] = (struct vp_conf_value){ .text = vp_strdup(value), .origin = origin, .line = line };
        if (k == VP_CONF_PARALLEL)
                c->parallel = (int)n;
        else if (k == VP_CONF_SHUTDOWN_TIMEOUT)
                c->shutdown_timeout = (int)n;
        else if (k == VP_CONF_SOURCE_GRACE)
                c->source_grace = (int)n;
        else if (k == VP_CONF_FENCE_TIMEOUT)
                c->fence_timeout = (int)n;
        else if (k == VP_CONF_RATE_LIMIT)
                c->rate_limit = (int)n;
        else if (k == VP_CONF_POLICY_INTERVAL)
                c->policy_interval = (int)n;
        else if (k == VP_CONF_LEADER_INTERVAL)
                c->leader_interval = (int)n;
        return 0;
}

static bool is_blank(char ch)
{
        return ch == ' ' || ch == '\t' || ch == '\r';
}

static int lookup_key(const char *s, size_t len)
{
        for (size_t k = 0; k < VP_CONF_KEY_MAX; k++)
                if (strlen(keys[k].key) == len && memcmp(keys[k].key, s, len) == 0)
                        return (int)k;
        return -1;
}

/* One line (without its newline) into C. */
static int parse_line(struct vp_config *c, const char *s, size_t len, unsigned lineno, unsigned seen[],
                      struct vp_error *err)
{
        char pb[64];
        while (len && is_blank(*s))
                s++, len--;
        while (len && is_blank(s[len - 1]))
                len--;
        if (len == 0 || s[0] == '#')
                return 0;
        if (memchr(s, 0, len))
                return vp_err(err, -EINVAL, "NUL byte in line");
        if (len > VP_CONF_MAX_LINE)
                return vp_err(err, -EINVAL, "line is longer than %d bytes", VP_CONF_MAX_LINE);
        _cleanup_free_ char *text = strndup(s, len);
        if (!text)
                abort();
        char *eq = strchr(text, '=');
        if (!eq)
                return vp_err(err, -EINVAL, "expected 'key = value', got '%s'", vp_printable(text, pb, sizeof(pb)));
        size_t klen = (size_t)(eq - text);
        while (klen && is_blank(text[klen - 1]))
                klen--;
        if (klen == 0)
                return vp_err(err, -EINVAL, "missing key before '='");
        text[klen] = 0;
        int k = lookup_key(text, klen);
        if (k < 0)
                return vp_err(err, -EINVAL, "unknown key '%s'", vp_printable(text, pb, sizeof(pb)));
        if (seen[k])
                return vp_err(err, -EINVAL, "key '%s' is set twice (first on line %u)", keys[k].key, seen[k]);
        const char *value = eq + 1;
        while (is_blank(*value))
                value++;
        if (!*value)
                return vp_err(err, -EINVAL, "empty value for '%s'", keys[k].key);
        int r = vp_config_set(c, (enum vp_conf_key)k, value, VP_CONF_FILE, lineno, err);
        if (r < 0)
                return r;
        seen[k] = lineno;
        return 0;
}

int vp_config_parse(struct vp_config *c, const char *path, const char *text, size_t len, struct vp_error *err)
{
        struct vp_config tmp;
        unsigned seen[VP_CONF_KEY_MAX] = { 0 };
        config_copy(&tmp, c);
        unsigned lineno = 1;
        for (size_t pos = 0; pos < len; lineno++) {
                const char *nl = memchr(text + pos, '\n', len - pos);
                size_t l = nl ? (size_t)(nl - (text + pos)) : len - pos;
                int r = parse_line(&tmp, text + pos, l, lineno, seen, err);
                if (r < 0) {
                        vp_err_prefix(err, "%s:%u", path, lineno);
                        vp_config_free(&tmp);
                        return r;
                }
                pos += l + 1;
        }
        free(tmp.path);
        tmp.path = vp_strdup(path);
        tmp.file_found = true;
        vp_config_free(c);
        *c = tmp;
        return 0;
}

int vp_config_load(struct vp_config *c, const char *path, bool must_exist, struct vp_error *err)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                int e = errno;
                if (e == ENOENT && !must_exist) {
                        free(c->path);
                        c->path = vp_strdup(path);
                        c->file_found = false;
                        return 0;
                }
                return vp_err(err, -e, "cannot read configuration file %s: %s", path, strerror(e));
        }
        struct stat st;
        if (fstat(fd, &st) < 0)
                return vp_err(err, -errno, "cannot read configuration file %s: %s", path, strerror(errno));
        if (S_ISDIR(st.st_mode))
                return vp_err(err, -EISDIR, "configuration file %s is a directory", path);
        _cleanup_free_ char *buf = vp_xcalloc(1, VP_CONF_MAX_SIZE + 1);
        size_t len = 0;
        for (;;) {
                ssize_t n = read(fd, buf + len, VP_CONF_MAX_SIZE + 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return vp_err(err, -errno, "cannot read configuration file %s: %s", path, strerror(errno));
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len > VP_CONF_MAX_SIZE)
                        return vp_err(err, -EFBIG, "configuration file %s is larger than %d bytes", path,
                                      VP_CONF_MAX_SIZE);
        }
        return vp_config_parse(c, path, buf, len, err);
}

int vp_config_load_env(struct vp_config *c, const char *(*get)(const char *name), struct vp_error *err)
{
        struct vp_config tmp;
        config_copy(&tmp, c);
        for (size_t k = 0; k < VP_CONF_KEY_MAX; k++) {
                const char *v = get(keys[k].env);
                if (!v || !*v)
                        continue;
                int r = vp_config_set(&tmp, (enum vp_conf_key)k, v, VP_CONF_ENV, 0, err);
                if (r < 0) {
                        vp_err_prefix(err, "environment variable %s", keys[k].env);
                        vp_config_free(&tmp);
                        return r;
                }
        }
        vp_config_free(c);
        *c = tmp;
        return 0;
}

const char *vp_config_origin_text(const struct vp_config *c, enum vp_conf_key k, char *buf, size_t n)
{
        switch (c->v[k].origin) {
        case VP_CONF_FILE:
                snprintf(buf, n, "%s:%u", c->path ? c->path : "?", c->v[k].line);
                break;
        case VP_CONF_ENV:
                snprintf(buf, n, "environment %s", keys[k].env);
                break;
        case VP_CONF_CMDLINE:
                snprintf(buf, n, "command line");
                break;
        default:
                snprintf(buf, n, "default");
                break;
        }
        return buf;
}
