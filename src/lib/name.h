/* The one allowlist every user-given name passes before it reaches a path,
 * an SQL statement or an XML document. */
#pragma once
#include "util.h"

#define VP_NAME_MAX 63

/* Check NAME against [A-Za-z0-9][A-Za-z0-9_.-]{0,62}. KIND ("pool", "env",
 * ...) names the subject in the error. Returns 0, or -EINVAL with a message
 * like: invalid pool name '../x': must match [A-Za-z0-9][A-Za-z0-9_.-]{0,62}
 * (non-printable bytes in NAME are shown escaped, long names shortened). */
int vp_name_check(const char *kind, const char *name, struct vp_error *err);

/* Write a printable, shortened rendering of an arbitrary user string into
 * BUF (for error messages only). Returns BUF. */
const char *vp_printable(const char *s, char *buf, size_t bufsz);
