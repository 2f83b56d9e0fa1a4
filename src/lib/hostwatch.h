/* What vpoold's host watcher records of what it sees: the domain
 * lifecycle events of vpool's own VMs, as events in the catalog. (A host's
 * reachability is noted by vp_host_note_reachable, host.h.) */
#pragma once
#include "core.h"

/* Domain NAME of UUID on host H reached lifecycle state EV (DETAIL:
 * libvirt's reason, a word, may be NULL): when it is a VM of vpool's (the
 * catalog's VM of that name and UUID), an event of kind vm (model.h) with
 * its pool, the VM and "ENV/HOST" in its detail. Returns 1 when recorded,
 * 0 for a domain that is not vpool's (nothing recorded). */
int vp_event_vm_lifecycle(struct vp_ctx *ctx, const struct vp_host *h, const char *name, const char *uuid,
                          enum vp_lifecycle ev, const char *detail, struct vp_error *err);

/* libvirt's reason word for lifecycle event EVENT's DETAIL ("booted",
 * "destroyed", "failed", "migrated", ...), or NULL. Static. */
const char *vp_lifecycle_detail(int event, int detail);
