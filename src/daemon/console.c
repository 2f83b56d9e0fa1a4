/* The web console: the static files of one folder (the setting console),
 * served at / to anyone who asks (they hold no data: the page reads the API
 * with the token its user signs in with). Every answer carries the headers
 * that keep the page from running anything but its own scripts and from
 * being framed. */
#include "console.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "webpath.h"

/* The largest file served: the console's are a few KiB each. */
#define FILE_MAX (4 << 20)

static const char csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                          "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

static void security_headers(struct MHD_Response *resp)
{
        MHD_add_response_header(resp, "Content-Security-Policy", csp);
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
        MHD_add_response_header(resp, "X-Frame-Options", "DENY");
        MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
        MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
}

int vpd_console_open(struct vpd *d)
{
        d->console_fd = -1;
        const char *dir = d->conf.v[VP_CONF_CONSOLE].text;
        if (!dir)
                return 0;
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                /* The API serves without it: a console not installed is
                 * no reason to refuse to start. */
                vpd_log(LOG_WARNING, "console '%s': %s; / serves no console", dir, strerror(errno));
                return -errno;
        }
        d->console_fd = fd;
        return 0;
}

void vpd_console_close(struct vpd *d)
{
        if (d->console_fd >= 0)
                close(d->console_fd);
        d->console_fd = -1;
}

/* A problem answered as the console's (its headers), queued here. */
static void console_problem(struct vpd_request *r, struct vpd_reply *rep, unsigned status, const char *detail)
{
        vpd_problem(rep, status, NULL, "%s", detail);
        size_t len;
        const char *text = json_object_to_json_string_length(rep->body, JSON_C_TO_STRING_PLAIN, &len);
        struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
        if (!resp)
                return;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/problem+json");
        MHD_add_response_header(resp, "Cache-Control", "no-store");
        if (status == 405)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        security_headers(resp);
        MHD_queue_response(r->conn, status, resp);
        MHD_destroy_response(resp);
        rep->sent = true;
}

/* The file NAME of the console folder, opened and checked: a regular file
 * (a symbolic link is not followed) of at most FILE_MAX bytes. */
static int open_file(struct vpd *d, const char *name, struct stat *st)
{
        if (d->console_fd < 0)
                return -ENOENT;
        int fd = openat(d->console_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode) || st->st_size > FILE_MAX) {
                close(fd);
                return -ENOENT;
        }
        return fd;
}

void vpd_console_serve(struct vpd_request *r, struct vpd_reply *rep)
{
        if (!streq(r->method, "GET") && !streq(r->method, "HEAD")) {
                console_problem(r, rep, 405, "the console's files are only read (GET)");
                return;
        }
        char name[80];
        const char *type = NULL;
        struct stat st;
        int fd = vpd_web_path(r->path, name, sizeof(name), &type) < 0 ? -ENOENT : open_file(r->d, name, &st);
        if (fd < 0) {
                console_problem(r, rep, 404, r->d->console_fd < 0 ? "the console is not installed"
                                                                  : "no such file of the console");
                return;
        }
        /* The file's size and time: a new release's file is a new tag, and
         * Cache-Control no-cache makes the browser ask each time (a 304
         * when it has it). */
        char etag[80];
        snprintf(etag, sizeof(etag), "\"%llx-%llx%09lx\"", (unsigned long long)st.st_size,
                 (unsigned long long)st.st_mtim.tv_sec, (unsigned long)st.st_mtim.tv_nsec);
        const char *inm = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
        bool fresh = inm && strstr(inm, etag);
        struct MHD_Response *resp = fresh ? MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT)
                                          : MHD_create_response_from_fd((uint64_t)st.st_size, fd);
        if (fresh)
                close(fd);
        if (!resp) {
                if (!fresh)
                        close(fd);
                return;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        security_headers(resp);
        MHD_queue_response(r->conn, fresh ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        rep->sent = true;
}
