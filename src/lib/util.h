/* Small shared helpers: the error out-parameter and cleanup attributes. */
#pragma once

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* An error a library call reports: a negative errno plus one line of text
 * the CLI prints once. Library code never prints. */
struct vp_error {
        int code;          /* negative errno, 0 when no error */
        char msg[1024];
};

/* Fill *err (if not NULL) and return the negative errno so callers can
 * write `return vp_err(err, -EINVAL, "...")`. */
int vp_err(struct vp_error *err, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Prefix an existing error message with more context. */
void vp_err_prefix(struct vp_error *err, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static inline void vp_freep(void *p) { free(*(void **)p); }
static inline void vp_closep(int *fd) { if (*fd >= 0) { int e = errno; close(*fd); errno = e; } }
static inline void vp_fclosep(FILE **f) { if (*f) fclose(*f); }

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(vp_freep)
#define _cleanup_close_ _cleanup_(vp_closep)
#define _cleanup_fclose_ _cleanup_(vp_fclosep)

/* Hand ownership out of a cleanup variable. */
#define TAKE_PTR(p) __extension__({ __typeof__(p) _tp = (p); (p) = NULL; _tp; })
#define TAKE_FD(fd) __extension__({ int _tf = (fd); (fd) = -1; _tf; })

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))
#define streq(a, b) (strcmp((a), (b)) == 0)

/* asprintf that aborts on out-of-memory: a controller with no memory left
 * cannot do anything sensible. */
char *vp_strdupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *vp_strdup(const char *s);
void *vp_xcalloc(size_t n, size_t sz);

/* Fault injection for crash tests: when the environment variable
 * VPOOL_FAULT is "NAME:N", the Nth time the process passes point NAME it
 * dies by SIGKILL, exactly as a crash or power loss would leave things. */
void vp_fault_point(const char *name);

/* Whether the comma separated LIST has ITEM as one of its items. */
bool vp_list_has(const char *list, const char *item);
