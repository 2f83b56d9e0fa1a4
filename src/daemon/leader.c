/* Leadership among the vpoold sharing one PostgreSQL catalog (leader.h).
 *
 * Never two leaders acting at once. The server grants the advisory lock
 * to one session at a time, so the question is only whether a leader that
 * lost its session can go on acting once another vpoold got the lock:
 *
 * - The lock's session ends on the server first (restart, crash, a
 *   connection it dropped): the server tells the session's socket (an
 *   ErrorResponse, then the close), which this thread watches without
 *   pause (vp_catalog_lock_lost). It stops acting within milliseconds,
 *   while the other vpoold needs the server back up and its next try, at
 *   least a restart's time away.
 * - The network between this vpoold and the server fails: no one tells
 *   either side. The lock socket's TCP keepalive (set here to
 *   leader_interval, two probes) ends it on this side within three
 *   intervals; the server keeps the lock until its own keepalive gives up
 *   (tcp_keepalives_* in postgresql.conf), which docs/postgresql.md asks
 *   to be longer than four intervals. So this side stops first.
 * - This vpoold dies: its sockets close with it, the lock is released, and
 *   nothing of it acts any more.
 *
 * Stopping to act means: the role flips to follower before anything else
 * (job_start checks it under the jobs' lock, so no job starts after), the
 * policies stop, and, when jobs are under way (a migration in the middle
 * of a step cannot be stopped from outside), the process exits at once:
 * the journal keeps each VM's last step, and the next leader resumes the
 * migration from it, exactly as after a SIGKILL. Their pool locks (each a
 * session of the same server) went with the server anyway.
 *
 * A vpoold frozen (SIGSTOP, a hung machine whose kernel still answers TCP)
 * keeps its lock, and no one takes over: no takeover, but never two. */
#include "leader.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "evacuate.h"
#include "jobs.h"
#include "policy.h"
#include "watch.h"

/* The exit status of a leader that lost its lock with jobs under way
 * (EX_TEMPFAIL: systemd's Restart=on-failure brings it back, to follow). */
#define LOST_WITH_JOBS_EXIT 75
/* How often a leader looks at its stop flag while it watches its lock. */
#define WATCH_SLICE_MS 250

struct vpd_leader {
        struct vpd *d;
        bool pg;                          /* false: SQLite, leads alone */
        atomic_bool leading;
        int fd;                           /* the lock's session, -1: none */
        pthread_t thread;
        bool have_thread;
        pthread_mutex_t lock;             /* stopping, known */
        pthread_cond_t wake;
        bool stopping;
        char known[256];                  /* the leader's address, as a follower last read it */
        char self[256];                   /* this vpoold's advertised address */
};

/* ---- leading and following ---- */

/* What a leader runs: the migrations left unfinished, then the policies
 * (a policy finds their pools moving, not free). */
static void policies_start(struct vpd *d, const char *why)
{
        vpd_jobs_resume_left(d, why);
        vpd_evacuate_init(d);
        struct vp_error err = { 0 };
        if (vpd_watch_start(d, &err) < 0)
                vpd_log(LOG_ERR, "hosts are not watched: %s", err.msg);
        if (vpd_policy_start(d, &err) < 0)
                vpd_log(LOG_ERR, "%s; no policy applies", err.msg);
}

/* Called with no job under way: nothing uses the evacuation's state. */
static void policies_stop(struct vpd *d)
{
        vpd_policy_stop(d);
        vpd_watch_stop(d);
        vpd_evacuate_free(d);
}

/* The lock's socket over TCP: keepalive probes at the leader interval, so
 * a silent network ends it on this side (see the top of this file). A
 * unix socket needs none: the kernel knows both ends. */
static void lock_keepalive(int fd, int interval)
{
        int domain = 0;
        socklen_t len = sizeof(domain);
        if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 || (domain != AF_INET && domain != AF_INET6))
                return;
        int on = 1, probes = 2;
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &interval, sizeof(interval));
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof(probes));
}

/* Write this vpoold's address where followers read it. */
static void advertise(struct vpd_leader *l, struct vp_catalog *cat)
{
        struct vp_error err = { 0 };
        if (vp_catalog_begin(cat, &err) < 0 || vp_catalog_set_meta(cat, VPD_LEADER_META, l->self, &err) < 0 ||
            vp_catalog_commit(cat, &err) < 0) {
                if (vp_catalog_in_transaction(cat))
                        vp_catalog_rollback(cat);
                vpd_log(LOG_WARNING, "cannot record this vpoold's address as the leader's: %s", err.msg);
        }
}

/* As a follower: the leader's address, or nothing when none leads. */
static void learn_leader(struct vpd_leader *l, struct vp_catalog *cat)
{
        _cleanup_free_ char *addr = NULL;
        bool held = vp_catalog_lock_held(cat, VPD_LEADER_LOCK) == 1;
        if (held && vp_catalog_get_meta(cat, VPD_LEADER_META, &addr, NULL) < 0)
                addr = NULL;
        pthread_mutex_lock(&l->lock);
        snprintf(l->known, sizeof(l->known), "%s", held && addr ? addr : "");
        pthread_mutex_unlock(&l->lock);
}

/* Try the lock once: true when this vpoold leads from now on. */
static bool try_lead(struct vpd_leader *l, struct vp_catalog *cat)
{
        struct vp_error err = { 0 };
        int fd = -1;
        int r = vp_catalog_lock(cat, VPD_LEADER_LOCK, 0, &fd, &err);
        if (r == -EBUSY)
                return false;
        if (r < 0) {
                vpd_log(LOG_WARNING, "cannot try to lead: %s", err.msg);
                return false;
        }
        lock_keepalive(fd, l->d->conf.leader_interval);
        l->fd = fd;
        advertise(l, cat);
        atomic_store(&l->leading, true);
        vpd_log(LOG_INFO, "leading: this vpoold runs the jobs and the policies (advertised as %s)", l->self);
        /* A follower that saw a leader takes over from it. */
        policies_start(l->d, l->known[0] ? "interrupted when the leading vpoold stopped"
                                         : "interrupted when vpoold stopped");
        return true;
}

/* The lock's session ended: stop acting first, then see what is left. */
static void lose(struct vpd_leader *l)
{
        atomic_store(&l->leading, false);
        close(l->fd);
        l->fd = -1;
        size_t running = vpd_jobs_running(l->d);
        if (running > 0) {
                /* A job in the middle of a step cannot be stopped from here;
                 * the process can, as a SIGKILL would (the journal keeps
                 * every step), before another vpoold can lead. */
                vpd_log(LOG_ERR, "lost the leader's lock (its connection to the catalog ended) with %zu job%s "
                        "under way: exiting, for the next leader to resume them from the journal",
                        running, running == 1 ? "" : "s");
                _exit(LOST_WITH_JOBS_EXIT);
        }
        vpd_log(LOG_WARNING, "lost the leader's lock (its connection to the catalog ended): following, "
                "trying again every %d s", l->d->conf.leader_interval);
        policies_stop(l->d);
}

static bool stopping(struct vpd_leader *l)
{
        pthread_mutex_lock(&l->lock);
        bool s = l->stopping;
        pthread_mutex_unlock(&l->lock);
        return s;
}

/* Sleep SEC seconds, or until told to stop. */
static void wait_interval(struct vpd_leader *l, int sec)
{
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += sec;
        pthread_mutex_lock(&l->lock);
        while (!l->stopping && pthread_cond_timedwait(&l->wake, &l->lock, &until) == 0)
                ;
        pthread_mutex_unlock(&l->lock);
}

static void *leader_thread(void *arg)
{
        struct vpd_leader *l = arg;
        struct vpd *d = l->d;
        struct vp_catalog *cat = NULL;
        while (!stopping(l)) {
                if (atomic_load(&l->leading)) {
                        if (vp_catalog_lock_lost(l->fd, WATCH_SLICE_MS))
                                lose(l);
                        continue;
                }
                struct vp_error err = { 0 };
                if (!cat && vp_catalog_open(d->conf.v[VP_CONF_CATALOG].text, false, &cat, &err) < 0) {
                        vpd_log(LOG_WARNING, "cannot open the catalog to try to lead: %s", err.msg);
                        cat = NULL;
                } else if (!try_lead(l, cat)) {
                        learn_leader(l, cat);
                }
                if (!atomic_load(&l->leading))
                        wait_interval(l, d->conf.leader_interval);
        }
        vp_catalog_close(cat);
        return NULL;
}

/* ---- the daemon's side ---- */

void vpd_leader_init(struct vpd *d)
{
        struct vpd_leader *l = vp_xcalloc(1, sizeof(*l));
        l->d = d;
        l->fd = -1;
        l->pg = vp_catalog_is_pg(d->conf.v[VP_CONF_CATALOG].text);
        const char *adv = d->conf.v[VP_CONF_ADVERTISE].text;
        snprintf(l->self, sizeof(l->self), "%s", adv ? adv : d->conf.v[VP_CONF_LISTEN].text);
        pthread_mutex_init(&l->lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&l->wake, &ca);
        pthread_condattr_destroy(&ca);
        d->leader = l;
}

int vpd_leader_start(struct vpd *d, struct vp_error *err)
{
        struct vpd_leader *l = d->leader;
        if (!l->pg) {
                atomic_store(&l->leading, true);
                policies_start(d, "interrupted when vpoold stopped");
                return 0;
        }
        int e = pthread_create(&l->thread, NULL, leader_thread, l);
        if (e != 0)
                return vp_err(err, -e, "cannot start the leader's thread: %s", strerror(e));
        l->have_thread = true;
        return 0;
}

void vpd_leader_stop(struct vpd *d)
{
        struct vpd_leader *l = d->leader;
        if (!l)
                return;
        pthread_mutex_lock(&l->lock);
        l->stopping = true;
        pthread_cond_broadcast(&l->wake);
        pthread_mutex_unlock(&l->lock);
        if (l->have_thread)
                pthread_join(l->thread, NULL);
        l->have_thread = false;
        /* Jobs may end, none starts: vpd_jobs_shutdown waits for them. */
        vpd_policy_stop(d);
        vpd_watch_stop(d);
}

void vpd_leader_free(struct vpd *d)
{
        struct vpd_leader *l = d->leader;
        if (!l)
                return;
        vpd_evacuate_free(d);
        atomic_store(&l->leading, false);
        if (l->fd >= 0)
                close(l->fd);
        pthread_cond_destroy(&l->wake);
        pthread_mutex_destroy(&l->lock);
        free(l);
        d->leader = NULL;
}

bool vpd_leader_acting(struct vpd *d)
{
        return d->leader && atomic_load(&d->leader->leading);
}

bool vpd_leader_address(struct vpd *d, char *buf, size_t size)
{
        struct vpd_leader *l = d->leader;
        buf[0] = 0;
        if (!l)
                return false;
        if (atomic_load(&l->leading)) {
                snprintf(buf, size, "%s", l->self);
                return true;
        }
        pthread_mutex_lock(&l->lock);
        snprintf(buf, size, "%s", l->known);
        pthread_mutex_unlock(&l->lock);
        return buf[0] != 0;
}

void vpd_leader_refuse(struct vpd *d, struct vpd_reply *rep)
{
        char addr[256];
        if (vpd_leader_address(d, addr, sizeof(addr)))
                vpd_problem(rep, 503, NULL, "this vpoold follows: changes go to the leading vpoold, at %s", addr);
        else
                vpd_problem(rep, 503, NULL, "no vpoold leads the catalog now; ask again in %d s",
                            d->conf.leader_interval);
        json_object_object_add(rep->body, "leader", addr[0] ? json_object_new_string(addr) : NULL);
        rep->retry_after = (unsigned)d->conf.leader_interval;
}

struct json_object *vpd_leader_json(struct vpd *d)
{
        char addr[256];
        bool known = vpd_leader_address(d, addr, sizeof(addr));
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "role", json_object_new_string(vpd_leader_acting(d) ? "leader" : "follower"));
        json_object_object_add(o, "leader", known ? json_object_new_string(addr) : NULL);
        bool pg = d->leader && d->leader->pg;
        json_object_object_add(o, "catalog", json_object_new_string(pg ? "postgresql" : "sqlite"));
        return o;
}
