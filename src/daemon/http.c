/* vpoold's HTTP: one libmicrohttpd daemon per listener (a thread pool each),
 * the request's body read within bounds, who asks decided (a unix peer's
 * credentials or a bearer token), the route run, the reply sent as JSON or
 * as an RFC 9457 problem. */
#include "vpoold.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "auth.h"
#include "console.h"
#include "leader.h"
#include "webpath.h"

struct vpd_listener {
        struct vpd *d;
        const struct vp_listen *l;
        struct MHD_Daemon *mhd;
        int fd;                           /* a unix socket's, made here */
};

/* ---- replies ---- */

static const char *status_title(unsigned status)
{
        switch (status) {
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 409: return "Conflict";
        case 413: return "Content Too Large";
        case 415: return "Unsupported Media Type";
        case 429: return "Too Many Requests";
        case 500: return "Internal Server Error";
        case 503: return "Service Unavailable";
        default: return "Error";
        }
}

void vpd_reply_json(struct vpd_reply *rep, unsigned status, struct json_object *body)
{
        json_object_put(rep->body);
        rep->status = status;
        rep->body = body;
        rep->problem = false;
}

void vpd_problem(struct vpd_reply *rep, unsigned status, const char *field, const char *fmt, ...)
{
        char detail[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof(detail), fmt, ap);
        va_end(ap);
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "type", json_object_new_string("about:blank"));
        json_object_object_add(o, "title", json_object_new_string(status_title(status)));
        json_object_object_add(o, "status", json_object_new_int((int)status));
        json_object_object_add(o, "detail", json_object_new_string(detail));
        json_object_object_add(o, "field", field ? json_object_new_string(field) : NULL);
        vpd_reply_json(rep, status, o);
        rep->problem = true;
}

void vpd_problem_err(struct vpd_reply *rep, const struct vp_error *err)
{
        unsigned status;
        switch (err->code) {
        case -ENOENT: status = 404; break;
        case -EEXIST:
        case -EBUSY:
        case -EAGAIN:
        case -ENOTEMPTY:
        case -EALREADY: status = 409; break;
        case -EINVAL:
        case -ERANGE:
        case -ENAMETOOLONG: status = 400; break;
        case -EACCES:
        case -EPERM: status = 403; break;
        case -ECONNREFUSED:
        case -EHOSTUNREACH:
        case -ETIMEDOUT: status = 503; break;
        default: status = 500; break;
        }
        vpd_problem(rep, status, NULL, "%s", err->msg[0] ? err->msg : "failed");
}

const char *vpd_query(const struct vpd_request *r, const char *key)
{
        return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

static enum MHD_Result send_reply(struct vpd_request *r, struct vpd_reply *rep)
{
        if (!rep->body)
                vpd_problem(rep, 500, NULL, "the route gave no answer");
        size_t len;
        const char *text = json_object_to_json_string_length(rep->body, JSON_C_TO_STRING_PLAIN, &len);
        struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
        if (!resp)
                return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                rep->problem ? "application/problem+json" : "application/json");
        MHD_add_response_header(resp, "Cache-Control", "no-store");
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
        if (rep->location[0])
                MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, rep->location);
        if (rep->status == 401)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"vpool\"");
        if (rep->retry_after) {
                char secs[16];
                snprintf(secs, sizeof(secs), "%u", rep->retry_after);
                MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, secs);
        }
        enum MHD_Result ret = MHD_queue_response(r->conn, rep->status, resp);
        MHD_destroy_response(resp);
        return ret;
}

/* ---- who asks ---- */

/* A unix peer: root and the members of the vpool group act as admin, as
 * the user they are (the socket's mode and group let no one else in). */
static bool unix_peer(struct vpd_request *r)
{
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        struct ucred cred;
        socklen_t len = sizeof(cred);
        if (!ci || getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return false;
        char buf[4096];
        struct passwd pw, *pwp = NULL;
        if (getpwuid_r(cred.uid, &pw, buf, sizeof(buf), &pwp) != 0 || !pwp)
                snprintf(r->actor, sizeof(r->actor), "uid %u", (unsigned)cred.uid);
        else
                snprintf(r->actor, sizeof(r->actor), "%s", pwp->pw_name);
        bool member = cred.uid == 0 || (r->d->have_group && cred.gid == r->d->group);
        if (!member && r->d->have_group && pwp) {
                gid_t groups[256];
                int ng = (int)ELEMENTSOF(groups);
                if (getgrouplist(pwp->pw_name, pwp->pw_gid, groups, &ng) >= 0)
                        for (int i = 0; i < ng && !member; i++)
                                member = groups[i] == r->d->group;
        }
        return member;
}

/* Decide R's role; false with REP filled when it may not ask at all. */
static bool authenticate(struct vpd_request *r, const struct vp_listen *l, struct vpd_reply *rep)
{
        r->via = VP_VIA_API;
        const char *auth = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        if (!auth && l->kind == VP_LISTEN_UNIX) {
                if (unix_peer(r)) {
                        r->role = VP_ROLE_ADMIN;
                        return true;
                }
                vpd_problem(rep, 401, NULL, "user %s is neither root nor in group vpool; send a bearer token",
                            r->actor);
                return false;
        }
        if (!auth) {
                vpd_problem(rep, 401, NULL, "no bearer token (Authorization: Bearer TOKEN)");
                return false;
        }
        return vpd_auth_token(r, auth, rep);
}

/* ---- the request's life ---- */

static void request_free(struct vpd_request *r)
{
        if (!r)
                return;
        free(r->path);
        free(r->body);
        free(r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
        request_free(*con_cls);
        *con_cls = NULL;
}

/* The first call for a request: the headers alone. A body announced larger
 * than allowed is refused before it is read. */
static struct vpd_request *request_new(struct vpd *d, struct MHD_Connection *c, const char *url, const char *method)
{
        struct vpd_request *r = vp_xcalloc(1, sizeof(*r));
        r->d = d;
        r->conn = c;
        r->method = method;
        r->path = vp_strdup(url);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > VPD_BODY_MAX)
                r->body_too_large = true;
        return r;
}

static void read_body(struct vpd_request *r, const char *data, size_t len)
{
        if (r->body_too_large)
                return;
        if (r->body_len + len > VPD_BODY_MAX) {
                r->body_too_large = true;
                return;
        }
        char *grown = realloc(r->body, r->body_len + len + 1);
        if (!grown)
                abort();
        r->body = grown;
        memcpy(r->body + r->body_len, data, len);
        r->body_len += len;
        r->body[r->body_len] = 0;
}

static bool is_json_type(const char *ct)
{
        if (!ct)
                return false;
        size_t n = strlen("application/json");
        return strncasecmp(ct, "application/json", n) == 0 && (ct[n] == 0 || ct[n] == ';' || ct[n] == ' ');
}

/* Whether PATH (decoded: %2F is a slash by now) has a "." or ".." segment. */
static bool has_dot_segment(const char *path)
{
        for (const char *p = path; p && *p; p = strchr(p + 1, '/')) {
                const char *seg = *p == '/' ? p + 1 : p;
                size_t len = strcspn(seg, "/");
                if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
                        return true;
        }
        return false;
}

/* Route and run R once its body is in. */
static void dispatch(struct vpd_request *r, const struct vp_listen *l, struct vpd_reply *rep)
{
        if (r->body_too_large) {
                vpd_problem(rep, 413, NULL, "the request body is larger than %d bytes", VPD_BODY_MAX);
                return;
        }
        if (!vpd_web_is_api(r->path)) {
                vpd_console_serve(r, rep);
                return;
        }
        if (has_dot_segment(r->path)) {
                vpd_problem(rep, 400, "path", "a path may not hold '.' or '..' segments");
                return;
        }
        bool known = false;
        const struct vpd_route *rt = vpd_route_find(r, r->method, r->path, &known);
        if (!rt) {
                if (known)
                        vpd_problem(rep, 405, NULL, "%s is not allowed on %s", r->method, r->path);
                else
                        vpd_problem(rep, 404, NULL, "no such resource: %s", r->path);
                return;
        }
        r->route = rt;
        if (!authenticate(r, l, rep))
                return;
        if (r->role < rt->role) {
                vpd_problem(rep, 403, NULL, "%s %s needs the role %s; %s has %s", r->method, rt->pattern,
                            vp_role_to_string(rt->role), r->actor, vp_role_to_string(r->role));
                return;
        }
        if (!vpd_auth_rate_ok(r)) {
                vpd_problem(rep, 429, NULL, "%s sends more than %d requests a second; slow down", r->actor,
                            vpd_auth_rate_limit());
                return;
        }
        if (r->body_len && !is_json_type(MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                                      MHD_HTTP_HEADER_CONTENT_TYPE))) {
                vpd_problem(rep, 415, NULL, "a request body must be application/json");
                return;
        }
        /* Every route but GET changes something: the leader's alone. A
         * follower does not forward: the leader could not tell who asked
         * (a unix peer's credentials do not cross machines) nor check the
         * client's token the way its own listener does. */
        if (!streq(r->method, "GET") && !vpd_leader_acting(r->d)) {
                vpd_leader_refuse(r->d, rep);
                return;
        }
        rt->fn(r, rep);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
        struct vpd_listener *ls = cls;
        struct vpd_request *r = *con_cls;
        if (!r) {
                *con_cls = request_new(ls->d, c, url, method);
                return MHD_YES;
        }
        if (*upload_data_size) {
                read_body(r, upload_data, *upload_data_size);
                *upload_data_size = 0;
                return MHD_YES;
        }
        struct vpd_reply rep = { 0 };
        dispatch(r, ls->l, &rep);
        enum MHD_Result ret = rep.sent ? MHD_YES : send_reply(r, &rep);
        json_object_put(rep.body);
        return ret;
}

/* ---- listeners ---- */

/* The unix socket at L->path: a stale socket file is replaced, anything
 * else there is refused; mode 0660, group vpool when it exists. */
static int unix_socket(struct vpd *d, const struct vp_listen *l, struct vp_error *err)
{
        struct stat st;
        if (lstat(l->path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode))
                        return vp_err(err, -EEXIST, "listener '%s': '%s' exists and is not a socket", l->text,
                                      l->path);
                unlink(l->path);
        }
        _cleanup_free_ char *dir = vp_strdup(l->path);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = 0;
                if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                        return vp_err(err, -errno, "listener '%s': cannot create '%s': %s", l->text, dir,
                                      strerror(errno));
        }
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return vp_err(err, -errno, "socket: %s", strerror(errno));
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", l->path);
        mode_t old = umask(0117);
        int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
        umask(old);
        if (r < 0 || listen(fd, 128) < 0) {
                r = vp_err(err, -errno, "listener '%s': %s", l->text, strerror(errno));
                close(fd);
                return r;
        }
        if (d->have_group && chown(l->path, (uid_t)-1, d->group) < 0)
                vpd_log(LOG_WARNING, "listener '%s': cannot give the socket to group vpool: %s", l->text,
                        strerror(errno));
        return fd;
}

static struct MHD_Daemon *start_mhd(struct vpd_listener *ls, struct vp_error *err)
{
        const struct vp_listen *l = ls->l;
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                         MHD_USE_TURBO;
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(l->port) };
        struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(l->port) };
        const struct sockaddr *sa = NULL;
        if (l->kind != VP_LISTEN_UNIX) {
                if (l->ipv6) {
                        inet_pton(AF_INET6, l->addr, &sin6.sin6_addr);
                        sa = (const struct sockaddr *)&sin6;
                        flags |= MHD_USE_IPv6;
                } else {
                        inet_pton(AF_INET, l->addr, &sin.sin_addr);
                        sa = (const struct sockaddr *)&sin;
                }
        }
        if (l->kind == VP_LISTEN_HTTPS)
                flags |= MHD_USE_TLS;
        struct MHD_OptionItem opts[] = {
                { MHD_OPTION_THREAD_POOL_SIZE, VPD_THREADS, NULL },
                { MHD_OPTION_CONNECTION_LIMIT, VPD_CONNECTIONS, NULL },
                { MHD_OPTION_CONNECTION_TIMEOUT, VPD_REQUEST_TIMEOUT, NULL },
                { MHD_OPTION_CONNECTION_MEMORY_LIMIT, VPD_HEADER_MEMORY, NULL },
                { MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, NULL },
                { l->kind == VP_LISTEN_UNIX ? MHD_OPTION_LISTEN_SOCKET : MHD_OPTION_SOCK_ADDR,
                  l->kind == VP_LISTEN_UNIX ? ls->fd : 0, l->kind == VP_LISTEN_UNIX ? NULL : (void *)sa },
                { l->kind == VP_LISTEN_HTTPS ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, ls->d->tls_key_pem },
                { MHD_OPTION_HTTPS_MEM_CERT, 0, ls->d->tls_cert_pem },
                { MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2" },
                { MHD_OPTION_END, 0, NULL },
        };
        struct MHD_Daemon *mhd = MHD_start_daemon(flags, l->kind == VP_LISTEN_UNIX ? 0 : l->port, NULL, NULL,
                                                  on_request, ls, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
        if (!mhd)
                vp_err(err, -EADDRINUSE, "listener '%s' did not start (address in use, or not this machine's?)",
                       l->text);
        return mhd;
}

int vpd_http_start(struct vpd *d, struct vp_error *err)
{
        d->listeners = vp_xcalloc(d->nlisten, sizeof(*d->listeners));
        for (size_t i = 0; i < d->nlisten; i++) {
                struct vpd_listener *ls = &d->listeners[i];
                ls->d = d;
                ls->l = &d->listen[i];
                ls->fd = -1;
                if (ls->l->kind == VP_LISTEN_UNIX && (ls->fd = unix_socket(d, ls->l, err)) < 0) {
                        vpd_http_stop(d);
                        return ls->fd;
                }
                if (!(ls->mhd = start_mhd(ls, err))) {
                        vpd_http_stop(d);
                        return -EADDRINUSE;
                }
                vpd_log(LOG_INFO, "listening on %s", ls->l->text);
        }
        return 0;
}

void vpd_http_stop(struct vpd *d)
{
        for (size_t i = 0; d->listeners && i < d->nlisten; i++) {
                struct vpd_listener *ls = &d->listeners[i];
                if (ls->mhd)
                        MHD_stop_daemon(ls->mhd);
                if (ls->fd >= 0) {
                        close(ls->fd);
                        unlink(ls->l->path);
                }
        }
        free(d->listeners);
        d->listeners = NULL;
}
