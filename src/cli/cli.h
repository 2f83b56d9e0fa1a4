/* Shared pieces of the vpool command line: options, output, errors. */
#pragma once
#include <json-c/json.h>

#include "config.h"
#include "core.h"
#include "history.h"
#include "view.h"

#define EXIT_USAGE 2

/* What a verb's first argument names, for the history: the pool and VM a
 * recorded command concerns. */
enum cli_subject {
        CLI_SUBJECT_NONE,
        CLI_SUBJECT_POOL,
        CLI_SUBJECT_VM,          /* and so its pool */
        CLI_SUBJECT_MIGRATION,   /* by id, and so its pool */
};

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
        enum cli_subject subject_kind;  /* what it names */
        struct vp_catalog *hist;   /* the history's own connection while the command runs */
        struct vp_history hrow;    /* this command's history row once recorded */
};

/* An option of a verb, beside it in its table: a flag, or one taking a value. */
struct cli_opt {
        const char *name;
        bool value;            /* takes a value */
        bool repeat;           /* may be given again (one such option per verb) */
};

/* A verb's option table, written in its verb's entry. */
#define CLI_OPTS(...) ((const struct cli_opt[]){ __VA_ARGS__, { 0, 0, 0 } })
#define CLI_VALUE(name) { name, true, false }
#define CLI_FLAG(name) { name, false, false }
#define CLI_VALUES(name) { name, true, true }
/* How many times a repeatable option may be given. */
#define CLI_MAX_REPEAT 64

/* The most options one verb has (the table's size is checked when parsing). */
#define CLI_MAX_OPTS 16

struct cli_verb;
struct vp_ctx;

/* What an action verb passes on from its options: --timeout SEC (60 when
 * not given), --force, --keep-deltas. */
struct cli_act_opts {
        int timeout;
        bool force;
        bool keep_deltas;
};

/* A verb's command line once parsed: which options were given (by their
 * index in the verb's table), their values, and the positional arguments. */
struct cli_args {
        const struct cli_verb *verb;
        bool given[CLI_MAX_OPTS];
        const char *value[CLI_MAX_OPTS];
        const char *more[CLI_MAX_REPEAT - 1];  /* the repeatable option's values after its first */
        size_t nmore;
        char **pos;            /* pointing into argv */
        int npos;
};

/* A verb: its handler, usage line, help and options in one table entry.
 * The handler gets its verb (A->verb) and its parsed command line. */
struct cli_verb {
        const char *name;
        int (*fn)(struct vp_cli *cli, const struct cli_args *a);
        const char *usage;     /* arguments after "vpool NOUN VERB" */
        const char *help;      /* first line: the verb's line in 'vpool NOUN --help' */
        bool changes;          /* recorded in the history */
        enum cli_subject subject;      /* what its first argument names */
        const struct cli_opt *opts;   /* NULL-name terminated, or NULL for none */
        int minpos, maxpos;    /* how many positional arguments it takes */
        /* An action verb (FN cli_act): what it does to the object its argument
         * names once the catalog is open, and the word that says it is done. */
        int (*act)(struct vp_ctx *ctx, const char *name, const struct cli_act_opts *o, struct vp_error *err);
        const char *done;      /* "removed": "NOUN NAME removed" */
        bool check_name;       /* the name is checked before the catalog opens (and the history) */
        const struct cli_noun *sub;    /* a word that groups verbs of its own ("env host add") */
};

/* A noun: its verbs, or (init, fsck, history) the one verb it is itself. */
struct cli_noun {
        const char *name;
        const char *help;      /* its line in 'vpool --help' */
        const char *summary;   /* the text of 'vpool NOUN --help' */
        const struct cli_verb *verbs;  /* NULL-name terminated */
        const struct cli_verb *self;   /* a noun that is its own verb: that verb (no verbs then) */
        const char *implicit;  /* the verb a first word naming no verb is the argument of
                                * ("vpool migrate POOL" is "vpool migrate start POOL") */
};

/* The value of option NAME of A's verb; NULL when not given (or the verb
 * has no such option). cli_opt_or: DEF then. */
const char *cli_opt(const struct cli_args *a, const char *name);
const char *cli_opt_or(const struct cli_args *a, const char *name, const char *def);
/* Every value of repeatable option NAME, in order, into RET; their number. */
size_t cli_opt_all(const struct cli_args *a, const char *name, const char *ret[CLI_MAX_REPEAT]);
/* Whether flag NAME was given. */
bool cli_flag(const struct cli_args *a, const char *name);

/* The handler of an action verb (start, stop, rm): its options parsed,
 * the catalog opened, its ACT run on the object named, "NOUN NAME DONE"
 * printed. Returns the exit code. */
int cli_act(struct vp_cli *cli, const struct cli_args *a);

/* Check NAME (a name of the noun), open the catalog and READ what it
 * names into *RET. Returns 0, or the exit code after printing why not. */
int cli_read(struct vp_cli *cli, const char *name,
             int (*read)(struct vp_ctx *ctx, const char *name, struct json_object **ret, struct vp_error *err),
             struct json_object **ret);
/* A whole show verb: DESCRIBE the object its argument names, print it as
 * JSON or through TEXT. Returns the exit code. */
int cli_show(struct vp_cli *cli, const struct cli_args *a,
             int (*describe)(struct vp_ctx *ctx, const char *name, struct json_object **ret, struct vp_error *err),
             void (*text)(struct json_object *o));

/* Run the command line ARGV (argv[0] the noun's word) of noun N: its verb's
 * options parsed, then its handler. Returns the exit code. */
int cli_run(struct vp_cli *cli, const struct cli_noun *n, int argc, char **argv);

/* Print a failure once: "vpool: MESSAGE". Returns 1 (the exit code). */
int cli_fail(const struct vp_error *err);
int cli_usage_error(struct vp_cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The message of the last failure printed, "" when none. */
const char *cli_last_failure(void);
/* Print nothing but remember MSG as why the command fails (its history outcome). */
void cli_note_failure(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The --placement option of A (spread when not given) into *RET. */
int cli_parse_placement(const struct cli_args *a, enum vp_placement *ret, struct vp_error *err);

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

/* A column of a list verb's table: a field of the row's JSON, shown as is
 * ("-" when null), as a byte count, as a KiB count, cut to 12 characters,
 * as a name of something that may be gone ("?" when null), or as a count
 * of the row's "total" ("2/3"). */
enum cli_fmt { CLI_PLAIN, CLI_BYTES, CLI_KIB, CLI_SHORT, CLI_GONE, CLI_OF_TOTAL, CLI_YESNO };
struct cli_column {
        const char *header;
        const char *key;
        enum cli_fmt fmt;
};

/* A whole list verb: READ the list, print it as one JSON array or as a
 * table of COLS built from the same JSON. Returns the exit code. */
/* Array A of documents as a table of COLS (a list verb's text output). */
void cli_print_table(struct json_object *a, const struct cli_column *cols, size_t ncols);
int cli_list(struct vp_cli *cli, int (*read)(struct vp_ctx *ctx, struct json_object **ret, struct vp_error *err),
             const struct cli_column *cols, size_t ncols);

/* "key: value" lines for show verbs. */
void print_field(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *format_bytes(int64_t b);

/* The nouns, each in its cmd-NOUN.c. */
extern const struct cli_noun cli_noun_init, cli_noun_env, cli_noun_image, cli_noun_profile, cli_noun_pool,
        cli_noun_vm, cli_noun_migrate, cli_noun_fsck, cli_noun_config, cli_noun_history, cli_noun_token,
        cli_noun_catalog;

struct vp_migrate_args;
/* Run one migration with progress and print its outcome; the exit code. */
int cli_run_migrate(struct vp_cli *cli, const struct vp_migrate_args *a);
/* --parallel and --shutdown-timeout of A into M; the configured values
 * where an option is not given. */
int cli_parse_migrate_opts(struct vp_cli *cli, const struct cli_args *a, struct vp_migrate_args *m,
                           struct vp_error *err);

/* The text of KEY of object O: "" when absent or null. */
const char *cli_str(struct json_object *o, const char *key);
/* The name KEY of object O: "?" when null (what it named is gone). */
const char *cli_name(struct json_object *o, const char *key);
/* The number KEY of object O: 0 when absent or null. */
int64_t cli_int(struct json_object *o, const char *key);
