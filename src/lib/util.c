#include "util.h"

#include <signal.h>
#include <string.h>

int vp_err(struct vp_error *err, int code, const char *fmt, ...)
{
        if (code > 0)
                code = -code;
        if (code == 0)
                code = -EIO;
        if (err) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
                va_end(ap);
                err->code = code;
        }
        return code;
}

void vp_err_prefix(struct vp_error *err, const char *fmt, ...)
{
        char prefix[512], old[sizeof(err->msg)];

        if (!err)
                return;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(prefix, sizeof(prefix), fmt, ap);
        va_end(ap);
        memcpy(old, err->msg, sizeof(old));
        size_t pl = strnlen(prefix, sizeof(prefix) - 1);
        memcpy(err->msg, prefix, pl);
        memcpy(err->msg + pl, ": ", 2);
        size_t room = sizeof(err->msg) - pl - 3;
        size_t ol = strnlen(old, room);
        memcpy(err->msg + pl + 2, old, ol);
        err->msg[pl + 2 + ol] = 0;
}

char *vp_strdupf(const char *fmt, ...)
{
        char *s;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                abort();
        va_end(ap);
        return s;
}

char *vp_strdup(const char *s)
{
        char *r = strdup(s ? s : "");
        if (!r)
                abort();
        return r;
}

void *vp_xcalloc(size_t n, size_t sz)
{
        void *p = calloc(n ? n : 1, sz ? sz : 1);
        if (!p)
                abort();
        return p;
}

void vp_fault_point(const char *name)
{
        static int hits;
        const char *spec = getenv("VPOOL_FAULT");
        if (!spec || !*spec)
                return;
        const char *colon = strrchr(spec, ':');
        size_t nl = colon ? (size_t)(colon - spec) : strlen(spec);
        if (strlen(name) != nl || strncmp(spec, name, nl) != 0)
                return;
        int want = colon ? atoi(colon + 1) : 1;
        if (__atomic_add_fetch(&hits, 1, __ATOMIC_SEQ_CST) == (want > 0 ? want : 1))
                kill(getpid(), SIGKILL);
}

bool vp_list_has(const char *list, const char *item)
{
        size_t il = strlen(item);
        for (const char *p = list; p && *p;) {
                const char *e = strchr(p, ',');
                size_t l = e ? (size_t)(e - p) : strlen(p);
                if (l == il && strncmp(p, item, l) == 0)
                        return true;
                if (!e)
                        break;
                p = e + 1;
        }
        return false;
}
