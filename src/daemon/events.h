/* vpoold's event stream (events.c). */
#pragma once
#include "vpoold.h"

struct vpd_events;

/* Prune the catalog's events to the newest kept and start the watcher. */
int vpd_events_start(struct vpd *d, struct vp_error *err);
/* End every stream (each says so to its client) and stop the watcher. */
void vpd_events_stop(struct vpd *d);
void vpd_events_free(struct vpd *d);

/* Record that job JOB (of POOL, may be NULL) reached STATE, on catalog C. */
int vpd_event_job(struct vpd *d, struct vp_catalog *c, const char *job, const char *pool, const char *state,
                  const char *detail);

/* GET /v1/events: the events after ?since (or Last-Event-ID), as a list;
 * with Accept: text/event-stream, as a stream that stays open. */
void vpd_get_events(struct vpd_request *r, struct vpd_reply *rep);
