/* The host watcher (watch.h). One thread owns every connection and writes
 * what it sees through the library on a ctx of its own; libvirt's event
 * loop thread only queues lifecycle events and raises close flags for it.
 * A connection is opened in a short thread of its own, so a host whose
 * address swallows packets (a TCP connect that takes minutes) holds up
 * nobody. */
#include "watch.h"

#include <string.h>
#include <time.h>

#include "evacuate.h"
#include "host.h"
#include "hostfail.h"
#include "hostwatch.h"

#define TICK_MS 500                       /* the loop's pace when nothing wakes it */
#define SYNC_S 2.0                        /* hosts read again from the catalog */
#define MEMORY_S 15.0                     /* free memory read (and the host probed) */

/* A connection being opened in a thread of its own. The watcher polls
 * DONE; when it stopped meanwhile (ABANDONED), the thread cleans up. */
struct attempt {
        char *uri;
        virConnectPtr conn;
        char error[sizeof(((struct vp_error *)0)->msg)];
        bool done, abandoned;
};
static pthread_mutex_t attempt_lock = PTHREAD_MUTEX_INITIALIZER;

struct whost {
        int64_t id, env_id;
        char *env, *name, *uri;
        virConnectPtr conn;
        atomic_bool *closed;              /* set by libvirt's close callback (vp_hv_watch) */
        int lifecycle_id;                 /* its domain event callback, -1 when none */
        enum vpd_host_seen seen;
        unsigned attempt;                 /* failed attempts since it was lost */
        double next_try;                  /* monotonic seconds */
        struct attempt *pending;
        int64_t free_kib;                 /* -1 before the first reading */
        double mem_at;
        bool listed;                      /* found in the catalog's last reading */
};

/* A lifecycle event libvirt reported, waiting for the watcher's thread. */
struct vm_event {
        int64_t host_id;
        char name[256];
        char uuid[VIR_UUID_STRING_BUFLEN];
        int event, detail;
        struct vm_event *next;
};

struct vpd_watch {
        struct vpd *d;
        pthread_t thread;
        pthread_mutex_t lock;             /* stopping, the event queue */
        pthread_cond_t wake;
        bool stopping;
        struct vm_event *events, **tail;
        struct whost **hosts;
        size_t n;
        struct vp_ctx ctx;
        bool events_ok;                   /* libvirt's event loop runs: keepalive and callbacks */
};

/* What a lifecycle callback needs: its watcher and host. */
struct lc_ud {
        struct vpd_watch *w;
        int64_t host_id;
};

static double mono(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *label(const struct whost *h)
{
        return vp_host_label(h->env, h->name);
}

/* ---- libvirt's callbacks (its event loop thread) ---- */

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
        (void)conn;
        struct lc_ud *ud = opaque;
        struct vm_event *e = vp_xcalloc(1, sizeof(*e));
        e->host_id = ud->host_id;
        snprintf(e->name, sizeof(e->name), "%s", virDomainGetName(dom) ? virDomainGetName(dom) : "");
        if (virDomainGetUUIDString(dom, e->uuid) < 0)
                e->uuid[0] = 0;
        e->event = event;
        e->detail = detail;
        struct vpd_watch *w = ud->w;
        pthread_mutex_lock(&w->lock);
        *w->tail = e;
        w->tail = &e->next;
        pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->lock);
        return 0;
}

/* ---- connecting ---- */

static void *connect_thread(void *arg)
{
        struct attempt *a = arg;
        struct vp_error err = { 0 };
        virConnectPtr c = NULL;
        if (vp_hv_connect(a->uri, &c, &err) < 0)
                c = NULL;
        pthread_mutex_lock(&attempt_lock);
        bool abandoned = a->abandoned;
        a->conn = c;
        snprintf(a->error, sizeof(a->error), "%s", err.msg);
        a->done = true;
        pthread_mutex_unlock(&attempt_lock);
        if (abandoned) {
                if (c)
                        virConnectClose(c);
                free(a->uri);
                free(a);
        }
        return NULL;
}

static void attempt_start(struct whost *h)
{
        struct attempt *a = vp_xcalloc(1, sizeof(*a));
        a->uri = vp_strdup(h->uri);
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, connect_thread, a) != 0) {
                free(a->uri);
                free(a);
        } else {
                h->pending = a;
        }
        pthread_attr_destroy(&attr);
}

/* Leave H's attempt in flight to its thread. */
static void attempt_abandon(struct whost *h)
{
        struct attempt *a = h->pending;
        if (!a)
                return;
        h->pending = NULL;
        pthread_mutex_lock(&attempt_lock);
        bool done = a->done;
        a->abandoned = true;
        pthread_mutex_unlock(&attempt_lock);
        if (done) {
                if (a->conn)
                        virConnectClose(a->conn);
                free(a->uri);
                free(a);
        }
}

/* ---- a host's state ---- */

static void note(struct vpd_watch *w, const struct whost *h, bool ok)
{
        struct vp_host row = { .id = h->id, .env_id = h->env_id };
        vp_host_note_reachable(&w->ctx, &row, ok);
}

static void disconnect(struct whost *h)
{
        if (!h->conn)
                return;
        if (h->lifecycle_id >= 0)
                virConnectDomainEventDeregisterAny(h->conn, h->lifecycle_id);
        h->lifecycle_id = -1;
        virConnectClose(h->conn);
        h->conn = NULL;
        h->closed = NULL;
}

static void read_memory(struct whost *h, double now)
{
        unsigned long long bytes = virNodeGetFreeMemory(h->conn);
        h->mem_at = now;
        if (bytes)
                h->free_kib = (int64_t)(bytes >> 10);
}

static void host_up(struct vpd_watch *w, struct whost *h, virConnectPtr conn, double now)
{
        h->conn = conn;
        int k = vp_hv_watch(conn, &h->closed);
        if (k == -ENOTSUP && w->events_ok) {
                w->events_ok = false;
                vpd_log(LOG_WARNING, "watch: no keepalive or close callback (libvirt's event loop does not run): a "
                        "lost host is found by the free memory probe only");
        } else if (k < 0 && k != -ENOTSUP) {
                _cleanup_free_ char *who = label(h);
                vpd_log(LOG_WARNING, "watch: %s: no keepalive on its connection: a lost host is found by the free "
                        "memory probe only", who);
        }
        struct lc_ud *ud = vp_xcalloc(1, sizeof(*ud));
        *ud = (struct lc_ud){ .w = w, .host_id = h->id };
        h->lifecycle_id = virConnectDomainEventRegisterAny(conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                           VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), ud, free);
        if (h->lifecycle_id < 0)
                free(ud);
        read_memory(h, now);
        _cleanup_free_ char *who = label(h);
        if (h->seen == VPD_HOST_DOWN)
                vpd_log(LOG_WARNING, "watch: %s answers again (free memory %lld MiB)", who,
                        (long long)(h->free_kib >> 10));
        else
                vpd_log(LOG_INFO, "watch: %s answers (free memory %lld MiB)", who, (long long)(h->free_kib >> 10));
        h->seen = VPD_HOST_UP;
        h->attempt = 0;
        note(w, h, true);
}

/* H did not answer (WHY) or stopped answering: unreachable, tried again
 * after its backoff (at once when it was just lost: a restarted libvirtd
 * is back within the second). */
static void host_down(struct vpd_watch *w, struct whost *h, const char *why, bool lost, double now)
{
        disconnect(h);
        if (h->seen != VPD_HOST_DOWN) {
                _cleanup_free_ char *who = label(h);
                vpd_log(LOG_WARNING, "watch: %s %s: %s", who, lost ? "stopped answering" : "does not answer", why);
        }
        h->seen = VPD_HOST_DOWN;
        note(w, h, false);
        if (lost)
                h->attempt = 0;
        h->next_try = now + (lost ? 0 : vp_reconnect_backoff(h->attempt++));
}

static void step_host(struct vpd_watch *w, struct whost *h, double now)
{
        if (h->conn) {
                if (h->closed && atomic_load(h->closed))
                        host_down(w, h, "its connection closed (keepalive, or its libvirtd went away)", true, now);
                else if (now - h->mem_at >= MEMORY_S) {
                        read_memory(h, now);
                        if (virConnectIsAlive(h->conn) != 1)
                                host_down(w, h, "it no longer answers the free memory probe", true, now);
                }
                return;
        }
        if (h->pending) {
                struct attempt *a = h->pending;
                pthread_mutex_lock(&attempt_lock);
                bool done = a->done;
                pthread_mutex_unlock(&attempt_lock);
                if (!done)
                        return;
                h->pending = NULL;
                if (a->conn)
                        host_up(w, h, a->conn, now);
                else
                        host_down(w, h, a->error, false, now);
                free(a->uri);
                free(a);
                return;
        }
        if (now >= h->next_try)
                attempt_start(h);
}

/* ---- the hosts of the catalog ---- */

static void host_free(struct whost *h)
{
        attempt_abandon(h);
        disconnect(h);
        free(h->env);
        free(h->name);
        free(h->uri);
        free(h);
}

static struct whost *find(struct vpd_watch *w, int64_t id)
{
        for (size_t i = 0; i < w->n; i++)
                if (w->hosts[i]->id == id)
                        return w->hosts[i];
        return NULL;
}

/* Every host of every env watched; a host gone from the catalog is let go. */
static void sync_hosts(struct vpd_watch *w, double now)
{
        struct vp_host *hs = NULL;
        struct vp_env *es = NULL;
        size_t nh = 0, ne = 0;
        struct vp_error err = { 0 };
        if (vp_row_list(w->ctx.cat, &vp_table_env, NULL, NULL, (void **)&es, &ne, &err) < 0 ||
            vp_row_list(w->ctx.cat, &vp_table_host, NULL, NULL, (void **)&hs, &nh, &err) < 0) {
                vp_rows_free(&vp_table_env, es, ne);
                return;
        }
        for (size_t i = 0; i < w->n; i++)
                w->hosts[i]->listed = false;
        for (size_t i = 0; i < nh; i++) {
                struct whost *h = find(w, hs[i].id);
                if (h) {
                        h->listed = true;
                        continue;
                }
                const struct vp_env *e = vp_rows_find_id(&vp_table_env, es, ne, hs[i].env_id);
                h = vp_xcalloc(1, sizeof(*h));
                *h = (struct whost){ .id = hs[i].id, .env_id = hs[i].env_id, .env = vp_strdup(e ? e->name : "?"),
                                     .name = vp_strdup(hs[i].name), .uri = vp_strdup(hs[i].uri), .lifecycle_id = -1,
                                     .free_kib = -1, .next_try = now, .listed = true };
                w->hosts = realloc(w->hosts, (w->n + 1) * sizeof(*w->hosts));
                if (!w->hosts)
                        abort();
                w->hosts[w->n++] = h;
        }
        size_t kept = 0;
        for (size_t i = 0; i < w->n; i++) {
                struct whost *h = w->hosts[i];
                if (h->listed) {
                        w->hosts[kept++] = h;
                        continue;
                }
                _cleanup_free_ char *who = label(h);
                vpd_log(LOG_INFO, "watch: %s removed: no longer watched", who);
                host_free(h);
        }
        w->n = kept;
        vp_rows_free(&vp_table_host, hs, nh);
        vp_rows_free(&vp_table_env, es, ne);
}

/* The lifecycle events queued, as events of vpool's VMs. */
static void drain_events(struct vpd_watch *w)
{
        pthread_mutex_lock(&w->lock);
        struct vm_event *e = w->events;
        w->events = NULL;
        w->tail = &w->events;
        pthread_mutex_unlock(&w->lock);
        while (e) {
                struct vm_event *next = e->next;
                const struct whost *h = find(w, e->host_id);
                struct vp_error err = { 0 };
                if (h) {
                        struct vp_host row = { .id = h->id, .env_id = h->env_id, .name = h->name };
                        if (vp_event_vm_lifecycle(&w->ctx, &row, e->name, e->uuid, (enum vp_lifecycle)e->event,
                                                  vp_lifecycle_detail(e->event, e->detail), &err) < 0)
                                vpd_log(LOG_WARNING, "watch: cannot record an event of vm '%s': %s", e->name, err.msg);
                }
                free(e);
                e = next;
        }
}

enum vpd_host_seen vpd_watch_host(struct vpd *d, int64_t id)
{
        const struct whost *h = d->watch ? find(d->watch, id) : NULL;
        return h ? h->seen : VPD_HOST_UNKNOWN;
}

/* ---- the thread ---- */

static bool stopping(struct vpd_watch *w)
{
        pthread_mutex_lock(&w->lock);
        bool s = w->stopping;
        pthread_mutex_unlock(&w->lock);
        return s;
}

static void *watch_main(void *arg)
{
        struct vpd_watch *w = arg;
        double synced = -SYNC_S;
        while (!stopping(w)) {
                double now = mono();
                if (now - synced >= SYNC_S) {
                        sync_hosts(w, now);
                        synced = now;
                }
                for (size_t i = 0; i < w->n; i++)
                        step_host(w, w->hosts[i], now);
                drain_events(w);
                vpd_evacuate_tick(w->d, &w->ctx);
                struct timespec until;
                clock_gettime(CLOCK_MONOTONIC, &until);
                until.tv_nsec += TICK_MS * 1000000L;
                until.tv_sec += until.tv_nsec / 1000000000L;
                until.tv_nsec %= 1000000000L;
                pthread_mutex_lock(&w->lock);
                if (!w->stopping && !w->events)
                        pthread_cond_timedwait(&w->wake, &w->lock, &until);
                pthread_mutex_unlock(&w->lock);
        }
        return NULL;
}

int vpd_watch_start(struct vpd *d, struct vp_error *err)
{
        struct vpd_watch *w = vp_xcalloc(1, sizeof(*w));
        w->d = d;
        w->tail = &w->events;
        w->events_ok = true;
        int k = vp_ctx_open(&w->ctx, d->conf.v[VP_CONF_CATALOG].text, err);
        if (k < 0) {
                free(w);
                return k;
        }
        w->ctx.source_grace = d->conf.source_grace;
        w->ctx.fence_timeout = d->conf.fence_timeout;
        pthread_mutex_init(&w->lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&w->wake, &ca);
        pthread_condattr_destroy(&ca);
        d->watch = w;
        if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
                d->watch = NULL;
                pthread_cond_destroy(&w->wake);
                pthread_mutex_destroy(&w->lock);
                vp_ctx_close(&w->ctx);
                free(w);
                return vp_err(err, -EAGAIN, "no thread for the host watcher");
        }
        return 0;
}

void vpd_watch_stop(struct vpd *d)
{
        struct vpd_watch *w = d->watch;
        if (!w)
                return;
        pthread_mutex_lock(&w->lock);
        w->stopping = true;
        pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->thread, NULL);
        for (size_t i = 0; i < w->n; i++)
                host_free(w->hosts[i]);
        free(w->hosts);
        for (struct vm_event *e = w->events, *next; e; e = next) {
                next = e->next;
                free(e);
        }
        vp_ctx_close(&w->ctx);
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->lock);
        free(w);
        d->watch = NULL;
}
