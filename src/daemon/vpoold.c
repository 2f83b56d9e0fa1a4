/* vpoold: options and settings, the log, systemd's notifications, the
 * signals that stop it. */
#include "vpoold.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <systemd/sd-daemon.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "console.h"
#include "events.h"
#include "jobs.h"
#include "leader.h"
#include "vp-config.h"

/* ---- the log ---- */

static bool log_syslog;         /* in the background: syslog; else stderr */
static bool log_journal;        /* stderr is the journal's: levels as <N> */

void vpd_log(int prio, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        if (log_syslog) {
                vsyslog(prio, fmt, ap);
        } else {
                char line[2048];
                vsnprintf(line, sizeof(line), fmt, ap);
                if (log_journal)
                        fprintf(stderr, "<%d>%s\n", prio, line);
                else
                        fprintf(stderr, "vpoold: %s\n", line);
        }
        va_end(ap);
}

/* ---- each thread's ctx ---- */

static pthread_key_t ctx_key;

static void ctx_free(void *p)
{
        vp_ctx_close(p);
        free(p);
}

struct vp_ctx *vpd_read_ctx(struct vpd *d, struct vp_error *err)
{
        struct vp_ctx *ctx = pthread_getspecific(ctx_key);
        if (ctx)
                return ctx;
        ctx = vp_xcalloc(1, sizeof(*ctx));
        /* Writable: a token's last use and a host found unreachable are
         * recorded by the reads that see them. */
        if (vp_ctx_open(ctx, d->conf.v[VP_CONF_CATALOG].text, err) < 0) {
                free(ctx);
                return NULL;
        }
        ctx->source_grace = d->conf.source_grace;
        ctx->fence_timeout = d->conf.fence_timeout;
        pthread_setspecific(ctx_key, ctx);
        return ctx;
}

/* ---- options and settings ---- */

static const char usage[] =
        "usage: vpoold [--config FILE] [--foreground] [--catalog FILE] [--listen LISTENERS]\n"
        "              [--tls-cert FILE] [--tls-key FILE] [--rate-limit N] [--console DIR]\n"
        "              [--policy-interval SEC] [--leader-interval SEC] [--advertise ADDRESS]\n"
        "       vpoold --routes | --help | --version\n";

static const char help[] =
        "vpoold: vpool's service, its REST API (/v1) over HTTP on unix sockets and HTTPS.\n"
        "\n"
        "  --config FILE       the configuration file (default $VPOOL_CONFIG or " VP_CONFIG_FILE ")\n"
        "  --foreground        stay in the foreground, log to stderr (under systemd it always does)\n"
        "  --catalog FILE      the catalog\n"
        "  --listen LISTENERS  comma-separated unix:/PATH, https://ADDRESS:PORT, http://LOOPBACK:PORT\n"
        "  --tls-cert FILE     the certificate chain of https:// listeners (PEM)\n"
        "  --tls-key FILE      its private key (PEM)\n"
        "  --rate-limit N      requests per second one client may send\n"
        "  --console DIR       the web console's files, served at / (default " VP_CONSOLE_DIR ")\n"
        "  --policy-interval SEC  seconds between two looks of the policies at the catalog\n"
        "  --leader-interval SEC  seconds between two tries of a follower to lead (PostgreSQL catalog)\n"
        "  --advertise ADDRESS    the address a follower names to clients while this vpoold leads\n"
        "  --routes            print the routes served (METHOD PATH ROLE) and exit\n"
        "  --help, --version\n"
        "\n"
        "Settings: option over environment over file over default, as for vpool(1).\n"
        "It watches every host of every env and applies each env's host-failure policy\n"
        "(set by 'vpool env set'). Two vpoold may share a PostgreSQL catalog: one leads (runs\n"
        "the jobs and the policies), the other serves reads and takes over; see vpoold(8).\n";

struct opts {
        const char *config;
        bool foreground;
        const char *values[VP_CONF_KEY_MAX];
};

static int parse_opts(int argc, char **argv, struct opts *o)
{
        enum { O_CONFIG = 256, O_FOREGROUND, O_HELP, O_VERSION, O_ROUTES, O_KEY };
        static const struct option longopts[] = {
                { "config", required_argument, NULL, O_CONFIG },
                { "foreground", no_argument, NULL, O_FOREGROUND },
                { "help", no_argument, NULL, O_HELP },
                { "version", no_argument, NULL, O_VERSION },
                { "routes", no_argument, NULL, O_ROUTES },
                { "catalog", required_argument, NULL, O_KEY + VP_CONF_CATALOG },
                { "listen", required_argument, NULL, O_KEY + VP_CONF_LISTEN },
                { "tls-cert", required_argument, NULL, O_KEY + VP_CONF_TLS_CERT },
                { "tls-key", required_argument, NULL, O_KEY + VP_CONF_TLS_KEY },
                { "rate-limit", required_argument, NULL, O_KEY + VP_CONF_RATE_LIMIT },
                { "console", required_argument, NULL, O_KEY + VP_CONF_CONSOLE },
                { "policy-interval", required_argument, NULL, O_KEY + VP_CONF_POLICY_INTERVAL },
                { "leader-interval", required_argument, NULL, O_KEY + VP_CONF_LEADER_INTERVAL },
                { "advertise", required_argument, NULL, O_KEY + VP_CONF_ADVERTISE },
                { 0 },
        };
        opterr = 0;
        int c;
        while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
                switch (c) {
                case O_CONFIG: o->config = optarg; break;
                case O_FOREGROUND: o->foreground = true; break;
                case O_HELP: fputs(help, stdout); fputs(usage, stdout); exit(0);
                case O_VERSION: printf("vpoold %s\n", VP_VERSION); exit(0);
                case O_ROUTES:
                        for (const struct vpd_route *rt = vpd_routes; rt->method; rt++)
                                printf("%s %s %s\n", rt->method, rt->pattern, vp_role_to_string(rt->role));
                        exit(0);
                case '?':
                        fprintf(stderr, "vpoold: unknown option '%s'\n%s", argv[optind - 1], usage);
                        return -EINVAL;
                case ':':
                        fprintf(stderr, "vpoold: option '%s' needs a value\n%s", argv[optind - 1], usage);
                        return -EINVAL;
                default:
                        if (c >= O_KEY && c < O_KEY + VP_CONF_KEY_MAX)
                                o->values[c - O_KEY] = optarg;
                        break;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "vpoold: unexpected argument '%s'\n%s", argv[optind], usage);
                return -EINVAL;
        }
        return 0;
}

/* A PEM file named by the settings: a regular file (a symbolic link to one
 * is fine, as certificate tools make them) of at most 1 MiB. */
static char *read_pem(const char *path, const char *what, struct vp_error *err)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
                vp_err(err, -errno, "%s '%s': %s", what, path, strerror(errno));
                if (fd >= 0)
                        close(fd);
                return NULL;
        }
        if (!S_ISREG(st.st_mode) || st.st_size > (1 << 20) || st.st_size == 0) {
                vp_err(err, -EINVAL, "%s '%s' is not a PEM file (a regular file of 1 MiB at most)", what, path);
                close(fd);
                return NULL;
        }
        char *text = vp_xcalloc(1, (size_t)st.st_size + 1);
        size_t len = 0;
        while (len < (size_t)st.st_size) {
                ssize_t n = read(fd, text + len, (size_t)st.st_size - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                len += (size_t)n;
        }
        close(fd);
        if (len != (size_t)st.st_size || !strstr(text, "-----BEGIN ")) {
                vp_err(err, -EINVAL, "%s '%s' is not a PEM file", what, path);
                free(text);
                return NULL;
        }
        return text;
}

static const char *env_get(const char *name)
{
        return getenv(name);
}

/* Settings, listeners and TLS files into D: every error names its source. */
static int configure(struct vpd *d, const struct opts *o, struct vp_error *err)
{
        const char *path = o->config ? o->config : getenv("VPOOL_CONFIG");
        int r;
        vp_config_init(&d->conf);
        if ((r = vp_config_load(&d->conf, path ? path : VP_CONFIG_FILE, path != NULL, err)) < 0 ||
            (r = vp_config_load_env(&d->conf, env_get, err)) < 0)
                return r;
        for (int k = 0; k < VP_CONF_KEY_MAX; k++)
                if (o->values[k] && (r = vp_config_set(&d->conf, k, o->values[k], VP_CONF_CMDLINE, 0, err)) < 0) {
                        vp_err_prefix(err, "%s", vp_config_option_name(k));
                        return r;
                }
        if ((r = vp_listen_parse(d->conf.v[VP_CONF_LISTEN].text, &d->listen, &d->nlisten, err)) < 0)
                return r;
        bool https = false;
        for (size_t i = 0; i < d->nlisten; i++)
                https |= d->listen[i].kind == VP_LISTEN_HTTPS;
        const char *cert = d->conf.v[VP_CONF_TLS_CERT].text, *key = d->conf.v[VP_CONF_TLS_KEY].text;
        if (https && (!cert || !key))
                return vp_err(err, -EINVAL, "an https:// listener needs tls_cert and tls_key");
        if (https && (!(d->tls_cert_pem = read_pem(cert, "tls_cert", err)) ||
                      !(d->tls_key_pem = read_pem(key, "tls_key", err))))
                return -EINVAL;
        struct group *g = getgrnam("vpool");
        if (g) {
                d->group = g->gr_gid;
                d->have_group = true;
        }
        vpd_auth_set_rate(d->conf.rate_limit);
        vpd_console_open(d);
        return 0;
}

static void vpd_free(struct vpd *d)
{
        vpd_console_close(d);
        free(d->listen);
        free(d->tls_cert_pem);
        free(d->tls_key_pem);
        vp_config_free(&d->conf);
}

/* ---- running ---- */

/* Into the background: the parent waits on a pipe for the child's word that
 * it listens (or why it could not) and exits with it. */
static int daemonize(int *ready_fd)
{
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid > 0) {
                close(p[1]);
                char msg[1024];
                ssize_t n = read(p[0], msg, sizeof(msg) - 1);
                if (n > 0 && msg[0] == '+')
                        _exit(0);
                if (n > 0) {
                        msg[n] = 0;
                        fprintf(stderr, "vpoold: %s\n", msg + 1);
                }
                _exit(1);
        }
        close(p[0]);
        setsid();
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null >= 0) {
                dup2(null, STDIN_FILENO);
                dup2(null, STDOUT_FILENO);
        }
        *ready_fd = p[1];
        return 0;
}

static void tell_parent(int *fd, const char *msg)
{
        if (*fd < 0)
                return;
        ssize_t k = write(*fd, msg, strlen(msg));
        (void)k;
        close(*fd);
        *fd = -1;
        if (log_syslog) {
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (null >= 0)
                        dup2(null, STDERR_FILENO);
        }
}

/* Until SIGTERM or SIGINT: the watchdog fed at half its interval. */
static void serve(void)
{
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        uint64_t wd_usec = 0;
        bool wd = sd_watchdog_enabled(0, &wd_usec) > 0;
        for (;;) {
                struct timespec ts = { .tv_sec = 1 };
                if (wd) {
                        ts.tv_sec = (time_t)(wd_usec / 2000000);
                        ts.tv_nsec = (long)(wd_usec / 2 % 1000000) * 1000;
                }
                int sig = sigtimedwait(&set, NULL, &ts);
                if (sig == SIGTERM || sig == SIGINT) {
                        vpd_log(LOG_INFO, "stopping (%s)", sig == SIGTERM ? "SIGTERM" : "SIGINT");
                        return;
                }
                if (wd)
                        sd_notify(0, "WATCHDOG=1");
        }
}

int main(int argc, char **argv)
{
        struct opts o = { 0 };
        if (parse_opts(argc, argv, &o) < 0)
                return 2;
        bool systemd = getenv("NOTIFY_SOCKET") != NULL;
        log_journal = getenv("JOURNAL_STREAM") != NULL;
        vp_catalog_threads_init();
        struct vpd d = { .console_fd = -1 };
        struct vp_error err = { 0 };
        if (configure(&d, &o, &err) < 0) {
                vpd_log(LOG_ERR, "%s", err.msg);
                vpd_free(&d);
                return 1;
        }
        int ready_fd = -1;
        if (!o.foreground && !systemd) {
                openlog("vpoold", LOG_PID, LOG_DAEMON);
                log_syslog = true;
                if (daemonize(&ready_fd) < 0) {
                        fprintf(stderr, "vpoold: cannot go into the background: %s\n", strerror(errno));
                        return 1;
                }
        }
        /* Signals are taken by serve() alone: every thread started from here
         * on inherits the mask. */
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        pthread_key_create(&ctx_key, ctx_free);
        vp_hv_init();
        vpd_jobs_init(&d);
        vpd_leader_init(&d);
        if (vpd_events_start(&d, &err) < 0 || vpd_http_start(&d, &err) < 0) {
                char msg[1100];
                snprintf(msg, sizeof(msg), "-%s", err.msg);
                vpd_log(LOG_ERR, "%s", err.msg);
                tell_parent(&ready_fd, msg);
                sd_notifyf(0, "STATUS=%s", err.msg);
                vpd_events_stop(&d);
                vpd_jobs_shutdown(&d);
                vpd_leader_free(&d);
                vpd_events_free(&d);
                vpd_free(&d);
                return 1;
        }
        /* Leading, the daemon resumes what a killed one left, then starts
         * the policies (leader.c); following, it tries to lead. */
        if (vpd_leader_start(&d, &err) < 0)
                vpd_log(LOG_ERR, "%s; this vpoold will not lead", err.msg);
        tell_parent(&ready_fd, "+");
        sd_notifyf(0, "READY=1\nSTATUS=serving the API on %zu listener%s", d.nlisten, d.nlisten == 1 ? "" : "s");
        _cleanup_free_ char *label = vp_catalog_label(d.conf.v[VP_CONF_CATALOG].text);
        vpd_log(LOG_INFO, "vpoold %s ready, catalog %s", VP_VERSION, label);
        serve();
        sd_notify(0, "STOPPING=1\nSTATUS=stopping: new requests refused, jobs finishing");
        vpd_leader_stop(&d);
        vpd_events_stop(&d);
        vpd_http_stop(&d);
        vpd_jobs_shutdown(&d);
        /* The lock goes last: the next leader finds no job of ours running. */
        vpd_leader_free(&d);
        vpd_events_free(&d);
        vpd_free(&d);
        vpd_log(LOG_INFO, "stopped");
        return 0;
}
