/* /v1/events: the catalog's event stream (catalog triggers write a
 * migration's steps and states, pools, hosts; jobs add theirs), listed as
 * JSON or streamed as Server-Sent Events. A watcher thread polls the
 * catalog's data_version (cheap: a change means some connection
 * committed) and wakes the streams when new events are there; each stream
 * then reads what it has not sent. */
#include "events.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jobs.h"
#include "parse.h"
#include "view.h"

#define WATCH_INTERVAL_MS 5
#define KEEPALIVE_S 15
#define STREAMS_MAX 64
#define EVENTS_KEPT 100000
#define BATCH 100

struct stream {
        struct vpd *d;
        struct MHD_Connection *conn;
        int64_t sent;                     /* the last event id sent */
        char *buf;
        size_t len, pos;
        bool waiting;                     /* suspended until the next wake */
        bool keepalive;                   /* woken by time alone: send a comment */
        struct stream *next;
};

struct vpd_events {
        pthread_t watcher;
        pthread_mutex_t lock;
        struct stream *streams;
        size_t nstreams;
        int64_t last_id;
        bool stopping;
        bool started;                     /* the watcher runs */
};

/* ---- the watcher ---- */

/* Resume every waiting stream; KEEPALIVE: those with nothing new say so. */
static void wake_streams(struct vpd_events *ev, bool keepalive)
{
        for (struct stream *s = ev->streams; s; s = s->next) {
                if (!s->waiting)
                        continue;
                s->waiting = false;
                s->keepalive = keepalive && s->sent >= ev->last_id;
                MHD_resume_connection(s->conn);
        }
}

static void *watch(void *arg)
{
        struct vpd *d = arg;
        struct vpd_events *ev = d->events;
        struct vp_catalog *c = NULL;
        struct vp_error err = { 0 };
        if (vp_catalog_open_read(d->conf.v[VP_CONF_CATALOG].text, &c, &err) < 0) {
                vpd_log(LOG_ERR, "events: %s", err.msg);
                return NULL;
        }
        int64_t version = -1;
        time_t beat = time(NULL);
        for (;;) {
                pthread_mutex_lock(&ev->lock);
                bool stop = ev->stopping;
                pthread_mutex_unlock(&ev->lock);
                if (stop)
                        break;
                int64_t v = 0, last = 0;
                bool keepalive = time(NULL) - beat >= KEEPALIVE_S;
                if (vp_catalog_data_version(c, &v, &err) >= 0 && v != version &&
                    vp_event_last_id(c, &last, &err) >= 0)
                        version = v;
                pthread_mutex_lock(&ev->lock);
                bool news = last > ev->last_id;
                if (news)
                        ev->last_id = last;
                if (news || keepalive)
                        wake_streams(ev, keepalive && !news);
                pthread_mutex_unlock(&ev->lock);
                if (keepalive)
                        beat = time(NULL);
                usleep(WATCH_INTERVAL_MS * 1000);
        }
        vp_catalog_close(c);
        return NULL;
}

int vpd_events_start(struct vpd *d, struct vp_error *err)
{
        struct vpd_events *ev = vp_xcalloc(1, sizeof(*ev));
        pthread_mutex_init(&ev->lock, NULL);
        d->events = ev;
        struct vp_catalog *c = NULL;
        int r = vp_catalog_open(d->conf.v[VP_CONF_CATALOG].text, false, &c, err);
        if (r < 0)
                return r;
        /* The stream keeps its newest events; a client further behind is
         * told where its history starts (the first id it gets). */
        if ((r = vp_event_prune(c, EVENTS_KEPT, err)) >= 0)
                r = vp_event_last_id(c, &ev->last_id, err);
        vp_catalog_close(c);
        if (r < 0)
                return r;
        if (pthread_create(&ev->watcher, NULL, watch, d) != 0)
                return vp_err(err, -EAGAIN, "cannot start the event watcher");
        ev->started = true;
        return 0;
}

/* The streams end (each is resumed to say so) before the listeners stop. */
void vpd_events_stop(struct vpd *d)
{
        struct vpd_events *ev = d->events;
        if (!ev)
                return;
        pthread_mutex_lock(&ev->lock);
        ev->stopping = true;
        wake_streams(ev, false);
        pthread_mutex_unlock(&ev->lock);
        if (ev->started)
                pthread_join(ev->watcher, NULL);
        ev->started = false;
        /* Give the resumed streams a moment to send their end. */
        for (int i = 0; i < 100; i++) {
                pthread_mutex_lock(&ev->lock);
                size_t n = ev->nstreams;
                wake_streams(ev, false);
                pthread_mutex_unlock(&ev->lock);
                if (!n)
                        break;
                usleep(10000);
        }
}

void vpd_events_free(struct vpd *d)
{
        if (!d->events)
                return;
        pthread_mutex_destroy(&d->events->lock);
        free(d->events);
        d->events = NULL;
}

int vpd_event_job(struct vpd *d, struct vp_catalog *c, const char *job, const char *pool, const char *state,
                  const char *detail)
{
        struct vp_event e = { .kind = (char *)"job", .subject = (char *)job, .pool = (char *)pool,
                              .state = (char *)state, .detail = (char *)detail };
        return vp_event_add(c, &e, NULL);
}

/* ---- streams ---- */

/* The events after S->sent into S's buffer as SSE records; 0 when none. */
static size_t fill(struct stream *s)
{
        struct vp_error err = { 0 };
        struct vp_ctx *ctx = vpd_read_ctx(s->d, &err);
        struct vp_event *evs = NULL;
        size_t n = 0;
        if (!ctx || vp_event_list_after(ctx->cat, s->sent, BATCH, &evs, &n, &err) < 0)
                return 0;
        size_t cap = 0;
        s->len = s->pos = 0;
        for (size_t i = 0; i < n; i++) {
                struct json_object *o = vp_event_json(&evs[i]);
                const char *data = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
                size_t need = strlen(data) + 64 + strlen(evs[i].kind);
                if (s->len + need > cap) {
                        cap = (s->len + need) * 2;
                        char *grown = realloc(s->buf, cap);
                        if (!grown)
                                abort();
                        s->buf = grown;
                }
                s->len += (size_t)snprintf(s->buf + s->len, cap - s->len, "id: %lld\nevent: %s\ndata: %s\n\n",
                                           (long long)evs[i].id, evs[i].kind, data);
                s->sent = evs[i].id;
                json_object_put(o);
        }
        vp_rows_free(&vp_table_event, evs, n);
        return s->len;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
        struct stream *s = cls;
        struct vpd_events *ev = s->d->events;
        for (;;) {
                if (s->pos < s->len) {
                        size_t n = s->len - s->pos < max ? s->len - s->pos : max;
                        memcpy(buf, s->buf + s->pos, n);
                        s->pos += n;
                        return (ssize_t)n;
                }
                if (fill(s))
                        continue;
                pthread_mutex_lock(&ev->lock);
                if (ev->stopping) {
                        pthread_mutex_unlock(&ev->lock);
                        return MHD_CONTENT_READER_END_OF_STREAM;
                }
                if (s->keepalive) {
                        s->keepalive = false;
                        pthread_mutex_unlock(&ev->lock);
                        static const char comment[] = ": keepalive\n\n";
                        size_t n = sizeof(comment) - 1 < max ? sizeof(comment) - 1 : max;
                        memcpy(buf, comment, n);
                        return (ssize_t)n;
                }
                if (ev->last_id > s->sent) {
                        pthread_mutex_unlock(&ev->lock);
                        continue;
                }
                s->waiting = true;
                MHD_suspend_connection(s->conn);
                pthread_mutex_unlock(&ev->lock);
                return 0;
        }
}

static void stream_free(void *cls)
{
        struct stream *s = cls;
        struct vpd_events *ev = s->d->events;
        pthread_mutex_lock(&ev->lock);
        for (struct stream **p = &ev->streams; *p; p = &(*p)->next)
                if (*p == s) {
                        *p = s->next;
                        ev->nstreams--;
                        break;
                }
        pthread_mutex_unlock(&ev->lock);
        free(s->buf);
        free(s);
}

/* Where a client's stream starts: after Last-Event-ID, or after ?since. */
static bool start_id(struct vpd_request *r, struct vpd_reply *rep, int64_t *ret)
{
        const char *last = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Last-Event-ID");
        const char *since = vpd_query(r, "since");
        const char *v = last ? last : since;
        *ret = 0;
        if (!v)
                return true;
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (*v < '0' || *v > '9' || *end || errno == ERANGE || n < 0) {
                vpd_problem(rep, 400, last ? "Last-Event-ID" : "since", "an event id is a number, not '%.40s'", v);
                return false;
        }
        *ret = n;
        return true;
}

static bool wants_stream(struct vpd_request *r)
{
        const char *accept = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
        return accept && strstr(accept, "text/event-stream");
}

/* The stream's response, queued here (the route's reply is not sent). */
static void open_stream(struct vpd_request *r, struct vpd_reply *rep, int64_t after)
{
        struct vpd_events *ev = r->d->events;
        struct stream *s = vp_xcalloc(1, sizeof(*s));
        s->d = r->d;
        s->conn = r->conn;
        s->sent = after;
        pthread_mutex_lock(&ev->lock);
        bool full = ev->nstreams >= STREAMS_MAX, stopping = ev->stopping;
        if (!full && !stopping) {
                s->next = ev->streams;
                ev->streams = s;
                ev->nstreams++;
        }
        pthread_mutex_unlock(&ev->lock);
        if (full || stopping) {
                free(s);
                vpd_problem(rep, 503, NULL, stopping ? "vpoold is stopping" : "already %d event streams open; "
                            "try again later", STREAMS_MAX);
                return;
        }
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, s,
                                                                      stream_free);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
        MHD_add_response_header(resp, "Cache-Control", "no-store");
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
        /* A stream stays open for as long as its client listens. */
        MHD_set_connection_option(r->conn, MHD_CONNECTION_OPTION_TIMEOUT, 0);
        MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        rep->sent = true;
}

void vpd_get_events(struct vpd_request *r, struct vpd_reply *rep)
{
        int64_t after;
        if (!start_id(r, rep, &after))
                return;
        if (wants_stream(r)) {
                open_stream(r, rep, after);
                return;
        }
        struct vp_error err = { 0 };
        struct vp_ctx *ctx = vpd_read_ctx(r->d, &err);
        struct vp_event *evs = NULL;
        size_t n = 0;
        const char *lim = vpd_query(r, "limit");
        uint64_t limit = 1000;
        if (lim && vp_parse_uint("limit", lim, 1, 10000, &limit, &err) < 0) {
                vpd_problem(rep, 400, "limit", "%s", err.msg);
                return;
        }
        if (!ctx || vp_event_list_after(ctx->cat, after, (size_t)limit, &evs, &n, &err) < 0) {
                vpd_problem_err(rep, &err);
                return;
        }
        struct json_object *a = json_object_new_array();
        for (size_t i = 0; i < n; i++)
                json_object_array_add(a, vp_event_json(&evs[i]));
        vp_rows_free(&vp_table_event, evs, n);
        int64_t last = 0;
        vp_event_last_id(ctx->cat, &last, NULL);
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "items", a);
        json_object_object_add(o, "last_id", json_object_new_int64(last));
        vpd_reply_json(rep, 200, o);
}
