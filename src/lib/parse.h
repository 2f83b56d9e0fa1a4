/* Parsing of numbers and sizes given on the command line. */
#pragma once
#include "util.h"

/* Parse a size: digits with an optional binary suffix K, M, G, T (also
 * KiB/MiB/GiB/TiB, case-insensitive) or B; no suffix means DEFAULT_UNIT
 * bytes per unit (e.g. 1024*1024 for memory given in MiB). Refuses empty,
 * negative, zero, fractional, trailing garbage and overflow past MAX bytes.
 * Returns 0 and *ret in bytes, or -EINVAL / -ERANGE with a message naming
 * WHAT (e.g. "memory"). */
int vp_parse_size(const char *what, const char *s, uint64_t default_unit, uint64_t max,
                  uint64_t *ret, struct vp_error *err);

/* Parse a positive decimal integer in [MIN, MAX]. Same errors as above. */
int vp_parse_uint(const char *what, const char *s, uint64_t min, uint64_t max,
                  uint64_t *ret, struct vp_error *err);
