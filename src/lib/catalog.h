/* The catalog: vpool's own inventory in one SQLite file on local disk, or
 * in a PostgreSQL database that several controllers share.
 *
 * Rows are plain structs described by column tables, so one set of generic
 * functions reads, writes and prints every kind of row. TEXT columns are
 * `char *` fields (owned by the struct), INT columns are `int64_t`. */
#pragma once
#include "util.h"
#include <json-c/json.h>

struct vp_catalog;

/* VP_COL_REF: the id of a row of another table, an int64_t field whose 0
 * is SQL's NULL (what it named was removed; a name column keeps its name). */
enum vp_col_type { VP_COL_TEXT, VP_COL_INT, VP_COL_REF };

struct vp_col {
        const char *name;
        enum vp_col_type type;
        size_t offset;
};

struct vp_table {
        const char *name;      /* SQL table */
        const char *kind;      /* word used in messages: "env", "pool" */
        const struct vp_col *cols;
        size_t ncols;
        size_t size;           /* sizeof the struct */
};

struct vp_env {
        int64_t id;
        char *name;
        char *uri;
        char *hostname;
        char *arch;
        char *domain_types;    /* comma separated: qemu,kvm */
        char *machines;        /* comma separated, aliases first (pc,q35,...) */
        char *disk_buses;      /* buses offered for the default machine */
        char *nic_models;
        char *firmwares;       /* bios[,uefi] */
        int64_t cpus;
        int64_t memory_kib;
        char *created;
        char *fence_cmd;       /* its fence agent: a JSON array of argv words; "" or NULL when none */
        char *on_maintenance;  /* a vp_on_maintenance word; NULL or "" (before schema 9 or never set): the default */
        char *on_host_failure; /* none | report | evacuate (model.h); NULL in rows before schema 9: none */
        char *evacuate_to;     /* the env an evacuation goes to; "" or NULL: the env's other hosts */
        int64_t grace;         /* seconds a host may not answer before on_host_failure acts */
};

/* An env being retired: vpoold migrates its pools to another env, a wave
 * of at most WAVE pools at a time, inside its time window. One per env. */
struct vp_retirement {
        int64_t id;
        char *env;             /* the retiring env's name */
        int64_t env_id;
        int64_t to_env_id;     /* where its pools go (an env retired to cannot be removed) */
        int64_t profile_id;    /* their hardware there; 0: each pool keeps its own */
        char *time_window;     /* "HH:MM-HH:MM" in the controller's local time; "": any time */
        int64_t wave;          /* pools moved at once */
        int64_t report;        /* 1: vpoold only says what it would do */
        char *state;           /* vp_retire_state */
        char *created;         /* when the operator asked (asking again starts it afresh) */
        char *completed;       /* when its env was found holding no pool; "" before */
};

/* One hypervisor host of an env: a libvirt connection. The env's own
 * capability columns are its first host's; each host is checked against a
 * profile again when VMs are placed on it. */
struct vp_host {
        int64_t id;
        int64_t env_id;
        char *name;            /* unique in its env: the URI's host part unless named */
        char *uri;
        char *hostname;        /* what the host calls itself */
        int64_t cpus;
        int64_t memory_kib;
        int64_t maintenance;   /* 1: no VM is placed on it; drain moves its VMs away */
        char *unreachable;     /* when it was last found not answering (ISO 8601), "" when it answers */
        char *created;
};

struct vp_image {
        int64_t id;
        char *name;
        char *path;            /* absolute, under <storage>/images */
        char *format;          /* qcow2 | raw */
        int64_t virtual_size;
        int64_t file_size;
        char *sha256;
        char *disk_buses;
        char *nic_models;
        char *firmwares;
        char *kernel;          /* absolute path under images/ or "" */
        char *initrd;
        char *cmdline;
        char *created;
        char *stamp;           /* the file's identity and times when its sha256 was last taken */
};

struct vp_profile {
        int64_t id;
        char *name;
        char *machine;
        char *disk_bus;
        char *nic;
        int64_t vcpus;
        int64_t memory_mib;
        char *firmware;
        char *cpu_mode;        /* "" = hypervisor default */
        char *created;
};

struct vp_pool {
        int64_t id;
        char *name;
        int64_t image_id;
        int64_t env_id;
        int64_t profile_id;
        int64_t size;
        int64_t data_disk_bytes;
        char *state;           /* active | migrating | retired */
        char *created;
};

struct vp_vm {
        int64_t id;
        char *name;
        int64_t pool_id;
        int64_t idx;
        int64_t env_id;        /* where its domain is defined now */
        int64_t profile_id;    /* the hardware of that domain */
        int64_t host_id;       /* the host of env_id that holds that domain; 0 when unknown */
        char *uuid;
        char *macs;            /* comma separated */
        char *hostname;
        char *delta_path;
        char *owner;           /* "vm:<name>" or "migration:<id>" */
        int64_t generation;
        char *created;
};

/* A migration of a pool: the allocation of the target (env, profile) and
 * the state of the whole; its VMs' steps are vp_migvm rows. */
struct vp_migration {
        int64_t id;
        int64_t pool_id;
        char *pool_name;
        int64_t from_env_id;     /* 0 once the env is removed (finished migrations only) */
        int64_t to_env_id;
        int64_t from_profile_id;
        int64_t to_profile_id;
        char *from_env;          /* their names, kept after their removal for the history */
        char *to_env;
        char *from_profile;
        char *to_profile;
        char *state;           /* running | done | partial | aborted */
        int64_t parallel;
        int64_t shutdown_timeout;
        int64_t source_fenced;   /* unused since the fences table: kept so older catalogs need no rebuild */
        int64_t total;
        char *created;
        char *updated;
};

/* One VM of a migration and the last step it completed. */
struct vp_migvm {
        int64_t id;
        int64_t migration_id;
        int64_t vm_id;
        char *vm_name;
        char *step;            /* pending stopping locked provisioned handed_over done | returned */
        int64_t source_running;
        int64_t src_env_id;      /* 0 once the env is removed (finished migrations only) */
        int64_t src_profile_id;
        char *src_env;           /* its name, kept after its removal */
        int64_t src_host_id;     /* the host it left; 0 when unknown (a catalog before hosts) */
        int64_t dst_host_id;     /* the host placement gave it on the target */
        int64_t live;            /* 1: it moves live (a running VM between hosts of one env, same hardware) */
        int64_t generation;    /* the manifest generation after the last step */
        char *error;           /* "" when none */
        char *updated;
};

/* The append-only journal: every step of every VM, before the next begins. */
struct vp_journal {
        int64_t id;
        int64_t migration_id;
        char *vm_name;
        char *step;
        int64_t generation;
        char *detail;
        char *at;
};

/* A source env a migration found unreachable, declared powered off or
 * not: by its fence agent (exit status and output kept) or by the
 * operator's word (who said it). Kept by name: the env may be gone later. */
struct vp_fence {
        int64_t id;
        int64_t migration_id;
        char *env_name;
        char *host_name;       /* the host of env_name that did not answer ("" in fences before hosts) */
        char *method;          /* agent | operator (model.h) */
        char *command;         /* the agent's argv as JSON; "" for the operator */
        int64_t exit_status;   /* the agent's; -1 killed or timed out; 0 for the operator */
        char *output;          /* the agent's output (its tail), or the operator's name */
        int64_t fenced;        /* 1: powered off, as far as vpool can know */
        char *at;
};

/* One command that changed something: who ran it, what, and how it ended.
 * Migration steps are not repeated here: they are in the journal, and the
 * history reader merges them in (journal ids in (journal_from, journal_to]
 * were written while this command ran). */
struct vp_history {
        int64_t id;
        char *at;              /* start, ISO 8601 UTC */
        char *ended;           /* "" while running */
        char *user;            /* login name of the real uid */
        char *sudo_user;       /* SUDO_USER when run through sudo, else "" */
        char *host;            /* where the process runs (for the liveness check) */
        int64_t pid;
        int64_t pid_start;     /* the process's start time in clock ticks since boot */
        char *command;         /* argv, each word shell-quoted */
        char *noun;
        char *verb;
        char *subject;         /* the first argument: the name acted on */
        char *pool;            /* "" when none */
        char *vm;
        int64_t migration_id;  /* 0 when none */
        int64_t journal_from;  /* the last journal id before it began */
        int64_t journal_to;    /* the last journal id when it ended; 0 while running */
        char *outcome;         /* running | ok | failed: MESSAGE */
        char *via;             /* cli | api | policy (model.h); NULL or "" in rows before schema 6: cli */
        char *reason;          /* why a policy made the change; NULL or "" otherwise */
};

/* An API token: its secret is shown once when it is made and only its
 * SHA-256 is kept. */
struct vp_token {
        int64_t id;
        char *name;
        char *role;            /* viewer | operator | admin (model.h) */
        char *hash;            /* SHA-256 of the secret's 32 bytes, 64 lowercase hex digits */
        char *created;
        char *last_used;       /* when a request last presented it (within a minute); "" never */
};

/* What libguestfs found in a master image, by its digest (inspect.h): the
 * report is a JSON document (docs/json.md, inspection). */
struct vp_inspection {
        int64_t id;
        char *sha256;
        char *report;
        char *created;
};

/* Something a watcher of the catalog sees happen (docs/json.md, event). */
struct vp_event {
        int64_t id;
        char *at;              /* ISO 8601 UTC, milliseconds */
        char *kind;            /* step | migration | pool | host | job */
        char *subject;         /* the VM, migration id, pool, env/host or job id */
        char *pool;            /* NULL when none */
        int64_t migration_id;  /* 0 when none */
        char *vm;
        char *state;           /* the step or the state reached */
        char *detail;
};

extern const struct vp_table vp_table_event;
extern const struct vp_table vp_table_migration;
extern const struct vp_table vp_table_migvm;
extern const struct vp_table vp_table_journal;
extern const struct vp_table vp_table_env;
extern const struct vp_table vp_table_host;
extern const struct vp_table vp_table_image;
extern const struct vp_table vp_table_profile;
extern const struct vp_table vp_table_pool;
extern const struct vp_table vp_table_vm;
extern const struct vp_table vp_table_history;
extern const struct vp_table vp_table_fence;
extern const struct vp_table vp_table_token;
extern const struct vp_table vp_table_retirement;
extern const struct vp_table vp_table_inspection;

/* Whether NAME names a PostgreSQL catalog: a postgresql:// (postgres://)
 * URI or a libpq keyword string ("host=... dbname=..."); anything else
 * is the path of an SQLite file. */
bool vp_catalog_is_pg(const char *name);
/* NAME as messages and logs show it: a PostgreSQL connection string
 * without its password (malloc'd). */
char *vp_catalog_label(const char *name);

/* Open (CREATE: and create if missing, with its schema) the catalog at
 * PATH. A file that is not a vpool catalog, or is damaged, is refused and
 * never rewritten. Returns 0 and *ret (owned by the caller). */
int vp_catalog_open(const char *path, bool create, struct vp_catalog **ret, struct vp_error *err);
/* Open the catalog at PATH for reading only: nothing is written (no
 * upgrade: an older schema is -EROFS), so a user who may only read the
 * file can. Any write through it fails. */
int vp_catalog_open_read(const char *path, struct vp_catalog **ret, struct vp_error *err);
void vp_catalog_close(struct vp_catalog *c);
static inline void vp_catalog_closep(struct vp_catalog **c) { if (*c) vp_catalog_close(*c); }

/* Whether the catalog has table NAME. */
bool vp_catalog_has_table(struct vp_catalog *c, const char *name);

/* Transactions that take the catalog's write lock up front (SQLite's BEGIN
 * IMMEDIATE; on PostgreSQL an advisory lock of the whole catalog), so two
 * writers serialize before either reads. */
int vp_catalog_begin(struct vp_catalog *c, struct vp_error *err);
/* The same, for a transaction whose writes stand or fall together: the
 * caller rolls back on any failure, so no write is undone alone (on
 * PostgreSQL: no savepoint around each, which costs the server a
 * subtransaction per write). */
int vp_catalog_begin_whole(struct vp_catalog *c, struct vp_error *err);
int vp_catalog_commit(struct vp_catalog *c, struct vp_error *err);
void vp_catalog_rollback(struct vp_catalog *c);
/* Whether a transaction is open on C. */
bool vp_catalog_in_transaction(struct vp_catalog *c);

/* meta key/value (storage_root, schema). *ret malloc'd; -ENOENT if absent. */
int vp_catalog_get_meta(struct vp_catalog *c, const char *key, char **ret, struct vp_error *err);

/* A lock named NAME that one session at a time holds, across every
 * controller sharing a PostgreSQL catalog: an advisory lock held by a
 * connection of its own, whose socket is *RET_FD (the caller's: closing it,
 * or the process's death, releases the lock). -EBUSY when another session
 * holds it after WAIT_MS milliseconds (0: asked once); -EOPNOTSUPP for an
 * SQLite catalog (whose locks are files). */
int vp_catalog_lock(struct vp_catalog *c, const char *name, int wait_ms, int *ret_fd, struct vp_error *err);

/* The whole catalog as one JSON document, the same from either engine
 * (docs/json.md, "catalog export"): its meta and every table's rows, ids
 * kept, read in one snapshot. *RET is the caller's. */
int vp_catalog_export(struct vp_catalog *c, struct json_object **ret, struct vp_error *err);
/* DOC, an export of this schema, into C: a catalog just made by vpool init
 * (no row but its own history, which the export's replaces). Checked
 * whole before anything is written, written in one transaction, ids kept. */
int vp_catalog_import(struct vp_catalog *c, struct json_object *doc, struct vp_error *err);
/* The largest export read. */
#define VP_CATALOG_EXPORT_MAX ((size_t)1 << 30)
/* TEXT (LEN bytes, from LABEL) as an export this vpool can import: strict
 * JSON, its format, version and schema this vpool's, every table's columns
 * and values of their types. */
int vp_catalog_export_parse(const char *text, size_t len, const char *label, struct json_object **ret,
                            struct vp_error *err);
/* The export in file PATH (at most VP_CATALOG_EXPORT_MAX bytes) into C, as
 * vp_catalog_import. */
int vp_catalog_import_file(struct vp_catalog *c, const char *path, struct vp_error *err);
/* A consistent copy of C in FILE, which must not exist: SQLite's online
 * backup (a catalog file), or pg_dump's custom format (for pg_restore). */
int vp_catalog_backup(struct vp_catalog *c, const char *file, struct vp_error *err);
/* Whether some session holds NAME's lock: 1 or 0, negative errno when that
 * cannot be told; -EOPNOTSUPP for an SQLite catalog. Takes nothing. */
int vp_catalog_lock_held(struct vp_catalog *c, const char *name);
/* Wait at most TIMEOUT_MS for a sign that the session behind FD, a lock
 * vp_catalog_lock gave, ended (the server restarted, dropped it, or the
 * socket's keepalive gave up): true as soon as there is one, false when
 * the time passed without. An idle session's server sends nothing, so
 * anything it sends counts as its end: a false alarm, never a miss.
 * FD stays the caller's. */
bool vp_catalog_lock_lost(int fd, int timeout_ms);

/* For a process whose threads use the catalog side by side (vpoold):
 * called first, before any catalog is opened. */
void vp_catalog_threads_init(void);

/* A number that changes when another connection (another process) commits
 * (SQLite's data_version; on PostgreSQL, the notifications of new events
 * this connection has seen), so a watcher polls it cheaply. */
int vp_catalog_data_version(struct vp_catalog *c, int64_t *ret, struct vp_error *err);
/* The newest event's id, 0 when there is none. */
int vp_event_last_id(struct vp_catalog *c, int64_t *ret, struct vp_error *err);
/* The events after id AFTER, oldest first, at most LIMIT (free with
 * vp_rows_free(&vp_table_event, ...)). */
int vp_event_list_after(struct vp_catalog *c, int64_t after, size_t limit, struct vp_event **ret, size_t *ret_n,
                        struct vp_error *err);
/* Record E (its at now when NULL); sets its id. */
int vp_event_add(struct vp_catalog *c, struct vp_event *e, struct vp_error *err);
/* Forget all but the newest KEEP events. */
int vp_event_prune(struct vp_catalog *c, int64_t keep, struct vp_error *err);
int vp_catalog_set_meta(struct vp_catalog *c, const char *key, const char *value, struct vp_error *err);

/* Insert ROW (id ignored); sets row->id. -EEXIST with "KIND 'NAME' already
 * exists" on a duplicate name. */
int vp_row_insert(struct vp_catalog *c, const struct vp_table *t, void *row, struct vp_error *err);
/* Find the one row whose COL equals VALUE; -ENOENT "unknown KIND 'VALUE'". */
int vp_row_get(struct vp_catalog *c, const struct vp_table *t, const char *col, const char *value,
               void *ret, struct vp_error *err);
int vp_row_get_id(struct vp_catalog *c, const struct vp_table *t, int64_t id, void *ret,
                  struct vp_error *err);
/* All rows (COL = VALUE when COL is not NULL), ordered by id. *ret is an
 * array of N structs; free with vp_rows_free. */
int vp_row_list(struct vp_catalog *c, const struct vp_table *t, const char *col, const char *value,
                void **ret, size_t *ret_n, struct vp_error *err);
int vp_row_count(struct vp_catalog *c, const struct vp_table *t, const char *col, const char *value,
                 int64_t *ret, struct vp_error *err);
/* Rewrite every column of the row with ROW's id. */
int vp_row_update(struct vp_catalog *c, const struct vp_table *t, const void *row, struct vp_error *err);
/* Rewrite only COLS (a NULL-terminated list of column names) of the row
 * with ROW's id: what a hot path changes, and no index or reference check
 * for the rest. -EINVAL for a name the table does not have. */
int vp_row_update_cols(struct vp_catalog *c, const struct vp_table *t, const void *row, const char *const *cols,
                       struct vp_error *err);
/* Rows matching an SQL condition over the table's own columns, with one
 * optional integer parameter ?1 (WHERE is vpool's own text, never user input). */
int vp_row_query(struct vp_catalog *c, const struct vp_table *t, const char *where, int64_t param,
                 void **ret, size_t *ret_n, struct vp_error *err);
int vp_row_delete(struct vp_catalog *c, const struct vp_table *t, int64_t id, struct vp_error *err);
void vp_row_clear(const struct vp_table *t, void *row);
void vp_rows_free(const struct vp_table *t, void *rows, size_t n);
/* In ROWS, an array of N structs of T read from the catalog: the row whose
 * id is ID, or whose name is NAME (for tables with a name column). NULL
 * when none is; the row stays the array's. */
void *vp_rows_find_id(const struct vp_table *t, const void *rows, size_t n, int64_t id);
void *vp_rows_find_name(const struct vp_table *t, const void *rows, size_t n, const char *name);
/* The row as a JSON object, one field per column. */
struct json_object *vp_row_to_json(const struct vp_table *t, const void *row);

/* Current UTC time as ISO 8601 (malloc'd). */
char *vp_now_iso(void);
