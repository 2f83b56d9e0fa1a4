/* vpoold: the service over the library. HTTP (libmicrohttpd) on unix
 * sockets and HTTPS, routes under /v1, jobs that run changes in the daemon,
 * and the log. The library owns every read and write; the daemon only
 * translates requests into its calls and its answers into JSON. */
#pragma once
#include <json-c/json.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>
#include <syslog.h>

#include "config.h"
#include "core.h"
#include "listen.h"
#include "model.h"

/* Bounds on what one client may send and hold. */
#define VPD_BODY_MAX (64 * 1024)          /* request body, bytes */
#define VPD_HEADER_MEMORY (32 * 1024)     /* a connection's header buffer */
#define VPD_CONNECTIONS 256               /* open connections per listener */
#define VPD_REQUEST_TIMEOUT 30            /* seconds a connection may stay idle */
#define VPD_THREADS 4                     /* worker threads per listener */
#define VPD_PATH_PARAMS 3

/* ---- the log (vpoold.c) ---- */
/* PRIO as syslog's (LOG_ERR, LOG_WARNING, LOG_INFO): under systemd the
 * journal reads the level from the line's <N> prefix; elsewhere lines go
 * to stderr prefixed "vpoold: ". */
void vpd_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- the daemon ---- */
struct vpd_listener;
struct vpd_jobs;
struct vpd_events;
struct vpd_policy;
struct vpd_watch;
struct vpd_evac;
struct vpd_leader;

struct vpd {
        struct vp_config conf;
        struct vp_listen *listen;
        size_t nlisten;
        struct vpd_listener *listeners;
        char *tls_cert_pem, *tls_key_pem;
        gid_t group;                      /* the vpool group, when it exists */
        bool have_group;
        struct vpd_jobs *jobs;
        struct vpd_events *events;
        int console_fd;                   /* the console's folder, -1: none */
        struct vpd_policy *policy;
        struct vpd_watch *watch;
        struct vpd_evac *evac;
        struct vpd_leader *leader;
};

/* The ctx of the calling thread, opened on first use (each worker thread
 * keeps its own catalog connection). NULL with ERR filled when the catalog
 * cannot be opened. */
struct vp_ctx *vpd_read_ctx(struct vpd *d, struct vp_error *err);

/* ---- one request (http.c) ---- */
struct vpd_request {
        struct vpd *d;
        struct MHD_Connection *conn;
        const char *method;
        char *path;                       /* the URL's path, decoded */
        char *body;
        size_t body_len;
        bool body_too_large;
        /* Who asks. */
        enum vp_role role;
        enum vp_via via;
        char actor[128];                  /* a token's name or a unix user's */
        const struct vpd_route *route;    /* the route being served */
        /* The route's path parameters, in pattern order. */
        const char *params[VPD_PATH_PARAMS];
        size_t nparams;
};

struct vpd_reply {
        unsigned status;
        struct json_object *body;         /* owned; a problem document for errors */
        bool problem;
        char location[256];               /* a Location header when not empty */
        bool sent;                        /* the handler queued its own response (a stream) */
        unsigned retry_after;             /* a Retry-After header (seconds) when not 0 */
};

/* An RFC 9457 problem: STATUS, its title, DETAIL (printf), and FIELD when a
 * body field or parameter is at fault. */
void vpd_problem(struct vpd_reply *rep, unsigned status, const char *field, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
/* The library's error ERR as a problem, its errno deciding the status. */
void vpd_problem_err(struct vpd_reply *rep, const struct vp_error *err);
void vpd_reply_json(struct vpd_reply *rep, unsigned status, struct json_object *body);

/* A query parameter of the request, or NULL. */
const char *vpd_query(const struct vpd_request *r, const char *key);

/* Start every listener of D; on failure the ones started are stopped. */
int vpd_http_start(struct vpd *d, struct vp_error *err);
void vpd_http_stop(struct vpd *d);

/* ---- routes (routes.c) ---- */
typedef void (*vpd_handler)(struct vpd_request *r, struct vpd_reply *rep);

struct vpd_route {
        const char *method;
        const char *pattern;              /* "/v1/pools/{pool}" */
        enum vp_role role;                /* the least role allowed */
        vpd_handler fn;
        const char *const *filters;       /* a list's filters, NULL-terminated; NULL: no list */
};

extern const struct vpd_route vpd_routes[];
/* The route for METHOD and PATH, its parameters into R; NULL with
 * *PATH_KNOWN telling whether another method would have matched. */
const struct vpd_route *vpd_route_find(struct vpd_request *r, const char *method, const char *path,
                                       bool *path_known);

/* ---- jobs (jobs.c) ---- */
int vpd_jobs_init(struct vpd *d);
/* Resume, as jobs of the daemon, the migrations the API or a policy began
 * that a daemon killed half-way left interrupted; WHY is their reason in
 * the history. */
void vpd_jobs_resume_left(struct vpd *d, const char *why);
/* How many jobs are under way. */
size_t vpd_jobs_running(struct vpd *d);
void vpd_jobs_shutdown(struct vpd *d);
