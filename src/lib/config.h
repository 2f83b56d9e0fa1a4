/* vpool's settings: built-in defaults, overridden by the configuration file
 * (/etc/vpool/vpool.conf), overridden by environment variables, overridden
 * by command-line options. Each value remembers where it came from.
 *
 * The file is "key = value" lines; blank lines and lines whose first
 * non-blank character is '#' are ignored. A value is the rest of the line,
 * blanks trimmed at both ends; there is no quoting and no trailing comment.
 * Any other line, an unknown or repeated key, or a bad value is an error
 * naming FILE:LINE. */
#pragma once
#include "util.h"

enum vp_conf_key {
        VP_CONF_CATALOG,
        VP_CONF_STORAGE,
        VP_CONF_PARALLEL,
        VP_CONF_SHUTDOWN_TIMEOUT,
        VP_CONF_PROFILE,
        VP_CONF_SOURCE_GRACE,
        VP_CONF_FENCE_TIMEOUT,
        /* vpoold's alone: where it listens, its TLS certificate and key. */
        VP_CONF_LISTEN,
        VP_CONF_TLS_CERT,
        VP_CONF_TLS_KEY,
        VP_CONF_RATE_LIMIT,
        VP_CONF_CONSOLE,
        VP_CONF_POLICY_INTERVAL,
        /* Two vpoold on one PostgreSQL catalog: how often the follower tries
         * to lead, and the address it names to clients once it leads. */
        VP_CONF_LEADER_INTERVAL,
        VP_CONF_ADVERTISE,
        VP_CONF_KEY_MAX,
};

enum vp_conf_origin {
        VP_CONF_DEFAULT,
        VP_CONF_FILE,
        VP_CONF_ENV,
        VP_CONF_CMDLINE,
};

/* Where vpoold listens when nothing says (listen.h). */
#define VP_DEFAULT_LISTEN "unix:/run/vpool/vpoold.sock"
/* The catalog used when nothing names one. */
#define VP_DEFAULT_CATALOG "/var/lib/vpool/catalog.db"

/* Built-in defaults of the numeric settings (migrate's). */
#define VP_CONF_DEFAULT_PARALLEL 8
#define VP_CONF_DEFAULT_SHUTDOWN_TIMEOUT 120
/* How long a source env that does not answer is retried before it counts
 * as unreachable (one refused connection is not a dead host), and how long
 * its fence agent may take. Seconds. */
#define VP_CONF_DEFAULT_SOURCE_GRACE 30
#define VP_CONF_DEFAULT_FENCE_TIMEOUT 60
/* Requests per second one client of vpoold's API may send. */
#define VP_CONF_DEFAULT_RATE_LIMIT 200
/* Seconds between two looks of vpoold's policies at the catalog. */
#define VP_CONF_DEFAULT_POLICY_INTERVAL 5
/* Seconds between two tries of a follower vpoold to become the leader, and
 * between two checks of the leader that it still is. */
#define VP_CONF_DEFAULT_LEADER_INTERVAL 2

/* The largest configuration file read, and its longest line. */
#define VP_CONF_MAX_SIZE (64 * 1024)
#define VP_CONF_MAX_LINE 4096

struct vp_conf_value {
        char *text;                  /* NULL: unset (no default) */
        enum vp_conf_origin origin;
        unsigned line;               /* VP_CONF_FILE: 1-based line number */
};

struct vp_config {
        char *path;                  /* the file read or looked for, NULL before any */
        bool file_found;
        struct vp_conf_value v[VP_CONF_KEY_MAX];
        /* The numeric values, parsed. */
        int parallel;
        int shutdown_timeout;
        int source_grace;
        int fence_timeout;
        int rate_limit;
        int policy_interval;
        int leader_interval;
};

/* Fill C with the built-in defaults. Free with vp_config_free(). */
void vp_config_init(struct vp_config *c);
void vp_config_free(struct vp_config *c);

/* The key's name in the file ("shutdown_timeout"), its environment variable
 * ("VPOOL_SHUTDOWN_TIMEOUT") and its command-line option ("--shutdown-timeout").
 * Static strings. */
const char *vp_config_key_name(enum vp_conf_key k);
const char *vp_config_env_name(enum vp_conf_key k);
const char *vp_config_option_name(enum vp_conf_key k);

/* Set key K to VALUE coming from ORIGIN (LINE for a file), after checking
 * it. On failure returns -EINVAL / -ERANGE with a message about the value
 * alone (the caller says where it came from) and leaves C unchanged. */
int vp_config_set(struct vp_config *c, enum vp_conf_key k, const char *value, enum vp_conf_origin origin,
                  unsigned line, struct vp_error *err);

/* Parse the configuration text TEXT of LEN bytes, read from PATH (used in
 * messages), into C. All or nothing: on failure C is unchanged and the
 * message reads "PATH:LINE: what is wrong". */
int vp_config_parse(struct vp_config *c, const char *path, const char *text, size_t len, struct vp_error *err);

/* Read and parse the file PATH. A missing file is not an error unless
 * MUST_EXIST (the file was named by the user); C->path and C->file_found
 * say what happened. */
int vp_config_load(struct vp_config *c, const char *path, bool must_exist, struct vp_error *err);

/* Apply the environment variables, read with GET (getenv, or a stub in
 * tests); an empty variable counts as unset. On failure C is unchanged and
 * the message names the variable. */
int vp_config_load_env(struct vp_config *c, const char *(*get)(const char *name), struct vp_error *err);

/* Where the value of K came from, for people: "default",
 * "/etc/vpool/vpool.conf:3", "environment VPOOL_PARALLEL", "command line".
 * Written into BUF, returned. */
const char *vp_config_origin_text(const struct vp_config *c, enum vp_conf_key k, char *buf, size_t n);
