/* vpoold's policies: every policy_interval seconds a thread of the daemon
 * reads the catalog and decides by itself what must move. A host in
 * maintenance that still holds VMs is drained (or reported, or left alone,
 * as its env says); an env retiring has its pools migrated in waves inside
 * its window (or reported). Every move is a job of the daemon recorded in
 * the history as done through the policy, with its reason. */
#pragma once
#include "vpoold.h"

/* Start the policies' thread. */
int vpd_policy_start(struct vpd *d, struct vp_error *err);
/* Stop it: no new move starts (the moves under way are jobs, which
 * vpd_jobs_shutdown waits for). */
void vpd_policy_stop(struct vpd *d);
