/* The catalog's engines: SQLite (catalog-sqlite.c) and PostgreSQL
 * (catalog-pg.c) behind one small table of operations. catalog.c holds
 * what they share: the row API, the schema text, every query. Private to
 * the catalog: nothing outside catalog*.c includes it.
 *
 * The SQL both engines run is SQLite's spelling with `?N` placeholders;
 * the PostgreSQL engine rewrites them to `$N`. Where the engines differ
 * (types of ids, triggers, what the catalog's tables are called in the
 * system catalog) the difference is in one engine's file, commented. */
#pragma once
#include "catalog.h"

/* The schema this vpool writes. An older catalog is brought to it on open
 * by the engine's upgrade steps. */
#define VP_SCHEMA_VERSION 11

/* Why a statement failed, in words both engines map their codes to. */
enum cat_fail {
        CAT_FAIL_OTHER,
        CAT_FAIL_UNIQUE,        /* a duplicate of a unique column */
        CAT_FAIL_FOREIGN_KEY,   /* a reference to a missing row, or a row still referred to */
        CAT_FAIL_BUSY,          /* another writer held the catalog past the timeout */
        CAT_FAIL_FULL,          /* no space left */
        CAT_FAIL_DAMAGED,       /* not a catalog, or a table or column missing */
        CAT_FAIL_DENIED,        /* this user may read the catalog, not write it */
};

/* One statement being run: the engine's own. */
struct cat_stmt;

struct cat_engine {
        const char *name;
        /* Connect to C->target (CREATE: a new catalog may be made there;
         * READONLY: nothing is ever written). *ret_fresh: nothing is there
         * yet, the schema is to be written. */
        int (*open)(struct vp_catalog *c, bool create, bool readonly, bool *ret_fresh, struct vp_error *err);
        void (*close)(struct vp_catalog *c);
        /* Run SQL, one or more statements without parameters: 0 or -1. */
        int (*exec)(struct vp_catalog *c, const char *sql);
        /* SQL compiled (or found compiled) with placeholders ?1..?N: 0 or -1. */
        int (*prepare)(struct vp_catalog *c, const char *sql, struct cat_stmt **ret);
        /* Done with S: back to the engine's cache or freed. */
        void (*finish)(struct vp_catalog *c, struct cat_stmt *s);
        void (*bind_text)(struct cat_stmt *s, int idx, const char *v);
        void (*bind_int)(struct cat_stmt *s, int idx, int64_t v);
        void (*bind_null)(struct cat_stmt *s, int idx);
        /* Run S, or go to its next row: 1 a row is there, 0 no more, -1 failed. */
        int (*step)(struct vp_catalog *c, struct cat_stmt *s);
        /* Column I of the current row; NULL for SQL's NULL. */
        const char *(*text)(struct cat_stmt *s, int i);
        int64_t (*integer)(struct cat_stmt *s, int i);
        /* The last failure on C: what it means and the engine's words. */
        enum cat_fail (*fail)(struct vp_catalog *c);
        const char *(*message)(struct vp_catalog *c);
        /* A transaction that takes the catalog's write lock up front (what
         * SQLite's BEGIN IMMEDIATE does), so two writers never interleave. */
        int (*begin)(struct vp_catalog *c);
        bool (*in_transaction)(struct vp_catalog *c);
        /* A number that changes when another connection commits. */
        int (*data_version)(struct vp_catalog *c, int64_t *ret);
        /* The schema of a new catalog, run in one transaction. */
        char *(*schema)(void);
        /* Bring C from schema FROM to VP_SCHEMA_VERSION, a step at a time. */
        int (*upgrade)(struct vp_catalog *c, int from, struct vp_error *err);
        /* Tables' text in SQLite's spelling (catalog.c's) as this engine's. */
        char *(*ddl)(const char *sql);
        /* Each foreign key of table ?1 as rows (parent table, column, ON
         * DELETE action in SQL's words), and whether table ?1 exists. */
        const char *foreign_keys_sql;
        const char *has_table_sql;
        /* A transaction that reads one state of the whole catalog and
         * writes nothing (an export). */
        const char *read_snapshot_sql;
        /* After rows with ids of their own went into TABLE: the next id
         * handed out follows them. NULL: the engine does it by itself. */
        int (*ids_reset)(struct vp_catalog *c, const char *table, struct vp_error *err);
        /* A consistent copy of C in FILE (made empty by the caller), in
         * the engine's own format. */
        int (*backup)(struct vp_catalog *c, const char *file, struct vp_error *err);
};

struct vp_catalog {
        const struct cat_engine *e;
        char *path;             /* the catalog as messages name it: never a password */
        char *target;           /* what the engine opens: a file, or a libpq connection string */
        void *db;               /* sqlite3 *, PGconn * */
        void *priv;             /* the engine's own state */
        bool whole;             /* this transaction's writes stand or fall together (vp_catalog_begin_whole) */
};

extern const struct cat_engine vp_cat_sqlite;
extern const struct cat_engine vp_cat_pg;

/* Shared by the engines (catalog.c). */
/* The refusal of a user who may only read the catalog (-EROFS). */
int vp_cat_denied(struct vp_catalog *c, struct vp_error *err);
int vp_cat_db_err(struct vp_catalog *c, struct vp_error *err, const char *what);
int vp_cat_exec(struct vp_catalog *c, const char *sql, struct vp_error *err);
/* T's columns from FROM on, quoted, comma-separated. */
char *vp_cat_column_list(const struct vp_table *t, size_t from);
/* The update of every column of a row of T by its id: column I (I >= 1)
 * is placeholder I, the id the last, T->ncols. */
char *vp_cat_update_sql(const struct vp_table *t);
/* The schema version C records (see catalog.c). */
int vp_cat_schema_version(struct vp_catalog *c, struct vp_error *err);
/* Schema text shared by both engines: the tables and their columns, in
 * SQLite's words (catalog.c), and SQLite's triggers. */
char *vp_cat_tables_sql(void);
extern const char vp_cat_sqlite_triggers_sql[];
extern const char *const vp_cat_sqlite_upgrades[];
