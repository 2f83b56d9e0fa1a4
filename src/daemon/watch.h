/* vpoold's host watcher: one libvirt connection to every host of every
 * env, with keepalive and the connection's close callback (libvirt's
 * event loop runs in a thread of its own, vp_hv_init), the domain
 * lifecycle events of vpool's VMs, and each host's free memory read
 * periodically (which doubles as a probe). A host that stops answering is
 * marked unreachable in the catalog (its event follows), retried with a
 * backoff and marked reachable when it answers again; hosts added or
 * removed while it runs are picked up. Each second it gives the policies
 * their turn (evacuate.h). */
#pragma once
#include "vpoold.h"

struct vpd_watch;

int vpd_watch_start(struct vpd *d, struct vp_error *err);
/* Stop the watcher thread and close every connection. */
void vpd_watch_stop(struct vpd *d);

/* What the watcher knows of host ID now. */
enum vpd_host_seen {
        VPD_HOST_UNKNOWN,                 /* not tried yet since vpoold started */
        VPD_HOST_UP,                      /* connected, answering */
        VPD_HOST_DOWN,                    /* its last attempt failed, or its connection closed */
};
/* Called from the watcher's thread (the policies' turn) only. */
enum vpd_host_seen vpd_watch_host(struct vpd *d, int64_t id);
