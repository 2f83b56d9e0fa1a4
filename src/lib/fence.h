/* Fence agents: the command an env names to power one of its hosts off and
 * say so. Only its exit status 0 counts as "powered off"; anything else,
 * a signal or a timeout, means the host may still run.
 *
 * The agent is an argv, never a shell line: words separated by blanks, a
 * word with blanks quoted with '…' or "…" (no escapes, no expansion). It
 * learns what to fence from its environment: VPOOL_FENCE_ENV (the env's
 * name), VPOOL_FENCE_URI (its libvirt URI) and VPOOL_FENCE_HOST (the URI's
 * host part, empty for a local socket). stdin is /dev/null; stdout and
 * stderr are kept together (their last VP_FENCE_OUTPUT_MAX bytes). */
#pragma once
#include "catalog.h"

#define VP_FENCE_OUTPUT_MAX 4096
#define VP_FENCE_ARGS_MAX 32

/* Split the agent TEXT into its argv, as a JSON array (malloc'd) in
 * *RET_JSON: a program and at most VP_FENCE_ARGS_MAX words in all, quotes
 * closed, no control characters. */
int vp_fence_cmd_split(const char *text, char **ret_json, struct vp_error *err);
/* vp_fence_cmd_split, and the program must be an absolute path to an
 * executable regular file. */
int vp_fence_cmd_parse(const char *text, char **ret_json, struct vp_error *err);

/* The stored agent JSON as the operator would type it (malloc'd), which
 * vp_fence_cmd_split reads back to the same argv; NULL when JSON names
 * none. */
char *vp_fence_cmd_show(const char *json);

/* Run ENV's fence agent against its host HOST at URI (VPOOL_FENCE_ENV,
 * VPOOL_FENCE_HOST_NAME, VPOOL_FENCE_URI and VPOOL_FENCE_HOST, the URI's
 * host part, in its environment), waiting at most TIMEOUT seconds (then it
 * is killed with its process group). Fills *RET (method agent, command,
 * exit status, output, fenced; not its migration, env, host or time) and
 * returns 0 whatever the agent said; negative only when it could not be
 * run at all. */
int vp_fence_run(const struct vp_env *env, const char *host, const char *uri, int timeout, struct vp_fence *ret,
                 struct vp_error *err);
