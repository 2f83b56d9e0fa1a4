/* Shared pieces of the vpool command line: options, output, errors. */
#pragma once
#include <json-c/json.h>

#include "config.h"
#include "core.h"
#include "history.h"

#define EXIT_USAGE 2

struct vp_cli {
        const char *catalog;
        struct vp_config *conf;     /* the effective settings (main.c) */
        enum vp_conf_origin conf_origin;  /* what named the configuration file */
        bool json;
        bool quiet;
        const char *noun;
        const char *verb;
        int argc;                  /* the whole command line as typed, for the history */
        char **argv;
        bool record;               /* the verb changes something: record it in the history */
        const char *subject;       /* the verb's first argument */
        struct vp_catalog *hist;   /* the history's own connection while the command runs */
        struct vp_history hrow;    /* this command's history row once recorded */
};

/* An option of a verb: a flag (STR NULL) or one taking a value. */
struct cli_opt {
        const char *name;
        const char **str;     /* value, when the option takes one */
        bool *flag;           /* set when given, for flags */
};

struct cli_verb {
        const char *name;
        int (*fn)(struct vp_cli *cli, int argc, char **argv);
        const char *usage;    /* arguments after "vpool NOUN VERB" */
        const char *help;     /* one line */
        bool changes;         /* recorded in the history */
};

/* Parse ARGV of a verb: OPTS plus --json, --quiet and --help. Positional
 * arguments are returned in *pos (pointing into argv) and must number
 * between MINPOS and MAXPOS. Returns 0, 1 when --help was printed, or
 * -EINVAL after printing a usage error. */
int cli_parse(struct vp_cli *cli, const struct cli_verb *v, int argc, char **argv,
              const struct cli_opt *opts, char ***pos, int *npos, int minpos, int maxpos);

/* Run the verb named by argv[0] from VERBS (NULL-name terminated). */
int cli_dispatch(struct vp_cli *cli, const char *noun, const char *summary,
                 const struct cli_verb *verbs, int argc, char **argv);

/* Print a failure once: "vpool: MESSAGE". Returns 1 (the exit code). */
int cli_fail(const struct vp_error *err);
int cli_usage_error(struct vp_cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The message of the last failure printed, "" when none. */
const char *cli_last_failure(void);
/* Print nothing but remember MSG as why the command fails (its history outcome). */
void cli_note_failure(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Open the catalog, printing the error on failure. For a verb that changes
 * something, also record it in the history as running; a command that
 * cannot be recorded is refused. Returns 0 or the exit code 1. */
int cli_open(struct vp_cli *cli, struct vp_ctx *ctx);

/* The history of this command (cmd-history.c). Start: record the command as
 * running (0, or 1 after printing why not). Migration: it works on
 * migration ID. Finish: record its outcome from exit code RC. */
int cli_history_start(struct vp_cli *cli);
void cli_history_migration(struct vp_cli *cli, int64_t id);
void cli_history_finish(struct vp_cli *cli, int rc);

/* Print OBJ (consumed) as one JSON document on stdout. */
void cli_print_json(struct json_object *obj);

/* A plain text table: add rows of NCOLS strings, then print aligned. */
struct cli_table {
        size_t ncols, nrows, cap;
        char **cells;
};
void table_init(struct cli_table *t, size_t ncols, ...);
void table_add(struct cli_table *t, ...);
void table_print(struct cli_table *t);

/* A column of a list verb's table: a field of the row's JSON, shown as is,
 * as a byte count, as a KiB count, or cut to 12 characters. */
enum cli_fmt { CLI_PLAIN, CLI_BYTES, CLI_KIB, CLI_SHORT };
struct cli_column {
        const char *header;
        const char *key;
        enum cli_fmt fmt;
};

/* A whole list verb: parse (no options, no arguments), read every row of T,
 * print them as one JSON array (TO_JSON, or the row's own fields when NULL)
 * or as a table of COLS. Returns the exit code. */
int cli_list(struct vp_cli *cli, const struct cli_verb *v, int argc, char **argv, const struct vp_table *t,
             struct json_object *(*to_json)(struct vp_ctx *ctx, const void *row), const struct cli_column *cols,
             size_t ncols);

/* "key: value" lines for show verbs. */
void print_field(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *format_bytes(int64_t b);

/* Noun entry points. */
int cmd_init(struct vp_cli *cli, int argc, char **argv);
int cmd_env(struct vp_cli *cli, int argc, char **argv);
int cmd_image(struct vp_cli *cli, int argc, char **argv);
int cmd_profile(struct vp_cli *cli, int argc, char **argv);
int cmd_pool(struct vp_cli *cli, int argc, char **argv);
int cmd_vm(struct vp_cli *cli, int argc, char **argv);
int cmd_migrate(struct vp_cli *cli, int argc, char **argv);
int cmd_fsck(struct vp_cli *cli, int argc, char **argv);
int cmd_config(struct vp_cli *cli, int argc, char **argv);
int cmd_history(struct vp_cli *cli, int argc, char **argv);

struct vp_migrate_args;
/* Run one migration with progress and print its outcome; the exit code. */
int cli_run_migrate(struct vp_cli *cli, const struct vp_migrate_args *a);
/* --parallel and --shutdown-timeout into A; the configured values where
 * an option is not given. */
int cli_parse_migrate_opts(struct vp_cli *cli, const char *parallel, const char *timeout,
                           struct vp_migrate_args *a, struct vp_error *err);

/* Parse a verb's arguments; return from the verb on --help (0) or a usage
 * error (2). */
#define CLI_PARSE(...)                                          \
        do {                                                    \
                int _p = cli_parse(__VA_ARGS__);                \
                if (_p == 1)                                    \
                        return 0;                               \
                if (_p < 0)                                     \
                        return EXIT_USAGE;                      \
        } while (0)

/* The JSON description of VM (state queried live when WITH_STATE). */
struct json_object *cli_vm_json(struct vp_ctx *ctx, const struct vp_vm *vm, bool with_state);
