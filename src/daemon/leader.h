/* Two vpoold on one PostgreSQL catalog: one leads, the other follows.
 *
 * The leader holds the catalog's session advisory lock "vpool leader" on a
 * connection of its own; it alone runs jobs (the API's changes, the
 * migrations a stopped leader left) and the policies (the host watcher,
 * evacuation, maintenance and retirement). A follower serves every read
 * and refuses changes (503 naming the leader), and tries the lock every
 * leader_interval seconds; once it has it, it resumes what the journal
 * holds unfinished and starts the policies.
 *
 * With an SQLite catalog there is one vpoold (the catalog's file lock
 * keeps a second out): it leads from its start, as it always did. */
#pragma once
#include "vpoold.h"

/* The lock's name: one leader per catalog (database). */
#define VPD_LEADER_LOCK "vpool leader"
/* The meta key where the leader writes its advertised address. */
#define VPD_LEADER_META "leader"

/* The state, following, before the listeners start (their threads read it). */
void vpd_leader_init(struct vpd *d);
/* Lead at once (SQLite), or start following and trying (PostgreSQL). */
int vpd_leader_start(struct vpd *d, struct vp_error *err);
/* Stop trying and stop the policies: no job starts from here on (the ones
 * under way are vpd_jobs_shutdown's). The lock is still held. */
void vpd_leader_stop(struct vpd *d);
/* After vpd_jobs_shutdown: let the lock go, for the follower to take. */
void vpd_leader_free(struct vpd *d);

/* Whether this vpoold leads now (jobs may start). */
bool vpd_leader_acting(struct vpd *d);
/* The leader's advertised address into BUF (this vpoold's when it leads):
 * false, BUF empty, when no vpoold leads or its address is not known. */
bool vpd_leader_address(struct vpd *d, char *buf, size_t size);
/* The answer to a change asked of a follower: 503, Retry-After, the
 * leader's address in the problem's "leader" member. */
void vpd_leader_refuse(struct vpd *d, struct vpd_reply *rep);
/* GET /v1's "controller" member: {"role", "leader", "catalog"}. */
struct json_object *vpd_leader_json(struct vpd *d);
