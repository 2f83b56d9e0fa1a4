/* vpoold's host-failure policy: a host its env's watcher found not
 * answering for longer than the env's grace period is, per the env's
 * `--on-host-failure`, reported (what it would do, logged and recorded in
 * the history) or evacuated (a job: the host fenced by the env's agent,
 * then its VMs moved cold, one migration per pool, to the env's other
 * hosts or another env). Each decision is recorded as the policy's, with
 * its reason. One evacuation of a host at a time; a host that answers
 * again within the grace period moves nothing. */
#pragma once
#include "vpoold.h"

/* The policy's name in the history and the jobs (their actor). */
#define VPD_POLICY_HOST_FAILURE "host-failure"

int vpd_evacuate_init(struct vpd *d);
/* The policy's turn, from the watcher's thread, on its CTX. */
void vpd_evacuate_tick(struct vpd *d, struct vp_ctx *ctx);
/* After the jobs ended (vpd_jobs_shutdown). */
void vpd_evacuate_free(struct vpd *d);
