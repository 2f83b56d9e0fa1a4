/* What the guest in a master image can run on, read from the image itself
 * with libguestfs: its OS, how it boots, the drivers it has at boot for
 * each disk bus and NIC model, and how its network finds its interface.
 * The report is a JSON document (docs/json.md, `inspection`) stored in the
 * catalog under the image's digest, so one master is inspected once. */
#pragma once
#include <json-c/json.h>

#include "catalog.h"
#include "util.h"

/* How long one inspection may take before its appliance is killed
 * (VPOOL_INSPECT_TIMEOUT overrides, in seconds). */
#define VP_INSPECT_TIMEOUT 600

/* Called about once a second while an inspection runs (any thread of the
 * caller's: it is the caller's own); STAGE says what the appliance does. */
typedef void (*vp_inspect_progress_fn)(void *ud, const char *stage, unsigned elapsed);

/* Inspect the master at PATH, of format FMT (both as vpool's header checks
 * found them: nothing else may reach libguestfs). The drive is added
 * read-only, so the appliance writes to a throw-away overlay, never the
 * master. Runs in a child process killed with its appliance after TIMEOUT
 * seconds (-ETIMEDOUT). *RET: the report, the caller's. */
int vp_inspect_image(const char *path, const char *fmt, unsigned timeout, vp_inspect_progress_fn progress,
                     void *ud, struct json_object **ret, struct vp_error *err);

/* The seconds VPOOL_INSPECT_TIMEOUT names, else VP_INSPECT_TIMEOUT. */
unsigned vp_inspect_timeout(void);

/* The stored report of the master of digest SHA256, or -ENOENT. */
int vp_inspection_get(struct vp_catalog *c, const char *sha256, struct json_object **ret, struct vp_error *err);
/* Store REPORT for SHA256 (replacing none: one digest, one report). */
int vp_inspection_put(struct vp_catalog *c, const char *sha256, struct json_object *report, struct vp_error *err);

/* What image add records from REPORT and what the operator declared
 * (NULL: not declared). *RET_* take the lists to record (malloc'd). A
 * declared word the guest cannot use is refused naming the missing driver;
 * an undeclared list is what inspection found. A report that read no OS
 * needs all three declared, and *RET_WARNING then says the declaration is
 * taken on trust (malloc'd, else NULL). */
int vp_inspect_reconcile(const char *image, struct json_object *report, const char *buses, const char *nics,
                         const char *fws, char **ret_buses, char **ret_nics, char **ret_fws, char **ret_warning,
                         struct vp_error *err);

/* Whether the guest of image IM can use profile P's disk bus, NIC model
 * and firmware, by its stored report (an image without one passes: its
 * declaration was checked by vp_check_image_supports). -EOPNOTSUPP naming
 * what is missing. */
int vp_inspect_check_profile(struct vp_catalog *c, const struct vp_image *im, const struct vp_profile *p,
                             struct vp_error *err);

/* When moving IM's VMs from profile FROM to TO changes their NIC's model
 * or PCI address and the guest's network is configured by interface name
 * (or driver, or path), a sentence saying what would break (malloc'd);
 * NULL when nothing would. */
char *vp_inspect_nic_rename(struct vp_catalog *c, const struct vp_image *im, const struct vp_profile *from,
                            const struct vp_profile *to);

/* A one-line summary of REPORT for people ("debian 12.5 (linux), extlinux,
 * bios"), malloc'd. */
char *vp_inspect_summary(struct json_object *report);
