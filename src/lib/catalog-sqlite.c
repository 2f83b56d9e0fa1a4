/* The catalog on SQLite: one file on local disk, the embedded default. */
#include "catalog-engine.h"

#include <pthread.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>

/* A statement kept prepared for the next query of the same text: the row
 * functions build the same few texts again and again (a migration's steps
 * are three statements each), and compiling them cost more than running
 * them. One in use by a thread is busy; another thread compiles its own. */
struct stmt_slot {
        char *sql;
        sqlite3_stmt *s;
        bool busy;
};
#define STMT_CACHE 24

struct lite {
        pthread_mutex_t cache_lock;
        struct stmt_slot cache[STMT_CACHE];
        unsigned evict;                /* the slot the next new statement may take */
};

#define DB(c) ((sqlite3 *)(c)->db)
#define LITE(c) ((struct lite *)(c)->priv)
#define STMT(s) ((sqlite3_stmt *)(s))

static int lite_exec(struct vp_catalog *c, const char *sql)
{
        return sqlite3_exec(DB(c), sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

static void lite_close(struct vp_catalog *c)
{
        struct lite *l = LITE(c);
        if (l) {
                for (size_t i = 0; i < STMT_CACHE; i++) {
                        sqlite3_finalize(l->cache[i].s);
                        free(l->cache[i].sql);
                }
                pthread_mutex_destroy(&l->cache_lock);
                free(l);
        }
        sqlite3_close_v2(DB(c));
}

/* Whether PATH is a catalog to open: a regular file that is not empty, or,
 * with CREATE, absent (*ret_fresh then). */
static int check_catalog_file(const char *path, bool create, bool *ret_fresh, struct vp_error *err)
{
        struct stat st;
        *ret_fresh = false;
        if (stat(path, &st) < 0) {
                if (errno != ENOENT)
                        return vp_err(err, -errno, "catalog '%s': %s", path, strerror(errno));
                if (!create)
                        return vp_err(err, -ENOENT,
                                      "catalog '%s' does not exist; run 'vpool init --storage DIR' first",
                                      path);
                *ret_fresh = true;
        } else if (!S_ISREG(st.st_mode)) {
                return vp_err(err, -EINVAL, "catalog '%s' is not a regular file", path);
        } else if (st.st_size == 0) {
                /* An empty file is not an empty catalog: something truncated it. */
                return vp_err(err, -EBADMSG, "catalog '%s' is empty (damaged?); refusing to use it", path);
        }
        return 0;
}

static int lite_open(struct vp_catalog *c, bool create, bool readonly, bool *ret_fresh, struct vp_error *err)
{
        bool fresh;
        int r = check_catalog_file(c->target, create && !readonly, &fresh, err);
        if (r < 0)
                return r;
        struct lite *l = vp_xcalloc(1, sizeof(*l));
        pthread_mutex_init(&l->cache_lock, NULL);
        c->priv = l;
        int flags = (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX |
                    (fresh ? SQLITE_OPEN_CREATE : 0);
        sqlite3 *db = NULL;
        int rc = sqlite3_open_v2(c->target, &db, flags, NULL);
        c->db = db;
        if (rc != SQLITE_OK)
                return vp_cat_db_err(c, err, "cannot open");
        /* SQLite opens a file it may not write read-only without a word. */
        if (!readonly && sqlite3_db_readonly(db, "main") == 1)
                return vp_cat_denied(c, err);
        sqlite3_busy_timeout(db, 30000);
        sqlite3_extended_result_codes(db, 0);
        /* A WAL catalog can be read without write access only while its
         * -wal and -shm files exist: writers leave them in place. */
        int persist = 1;
        if (!readonly)
                sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
        r = vp_cat_exec(c, readonly ? "PRAGMA foreign_keys=ON;" : "PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL;",
                        err);
        if (r >= 0 && fresh)
                r = vp_cat_exec(c, "PRAGMA journal_mode=WAL;", err);
        *ret_fresh = fresh;
        return r;
}

static int lite_prepare_new(struct vp_catalog *c, const char *sql, sqlite3_stmt **ret)
{
        return sqlite3_prepare_v2(DB(c), sql, -1, ret, NULL) == SQLITE_OK ? 0 : -1;
}

/* SQL's statement, from the cache or compiled (and kept when a slot is
 * free or idle); given back by lite_finish. */
static int lite_prepare(struct vp_catalog *c, const char *sql, struct cat_stmt **ret)
{
        struct lite *l = LITE(c);
        pthread_mutex_lock(&l->cache_lock);
        for (size_t i = 0; i < STMT_CACHE; i++) {
                struct stmt_slot *e = &l->cache[i];
                if (e->s && !e->busy && streq(e->sql, sql)) {
                        e->busy = true;
                        *ret = (struct cat_stmt *)e->s;
                        pthread_mutex_unlock(&l->cache_lock);
                        return 0;
                }
        }
        pthread_mutex_unlock(&l->cache_lock);
        sqlite3_stmt *s = NULL;
        if (lite_prepare_new(c, sql, &s) < 0)
                return -1;
        pthread_mutex_lock(&l->cache_lock);
        for (size_t n = 0; n < STMT_CACHE; n++) {
                struct stmt_slot *e = &l->cache[l->evict];
                l->evict = (l->evict + 1) % STMT_CACHE;
                if (e->busy)
                        continue;
                sqlite3_finalize(e->s);
                free(e->sql);
                *e = (struct stmt_slot){ .sql = vp_strdup(sql), .s = s, .busy = true };
                break;
        }
        pthread_mutex_unlock(&l->cache_lock);
        *ret = (struct cat_stmt *)s;
        return 0;
}

/* S back to the cache, ready for its next use; one the cache did not keep
 * is finalized. */
static void lite_finish(struct vp_catalog *c, struct cat_stmt *cs)
{
        sqlite3_stmt *s = STMT(cs);
        struct lite *l = LITE(c);
        pthread_mutex_lock(&l->cache_lock);
        for (size_t i = 0; i < STMT_CACHE; i++)
                if (l->cache[i].s == s) {
                        sqlite3_reset(s);
                        sqlite3_clear_bindings(s);
                        l->cache[i].busy = false;
                        pthread_mutex_unlock(&l->cache_lock);
                        return;
                }
        pthread_mutex_unlock(&l->cache_lock);
        sqlite3_finalize(s);
}

static void lite_bind_text(struct cat_stmt *s, int idx, const char *v)
{
        sqlite3_bind_text(STMT(s), idx, v, -1, SQLITE_STATIC);
}

static void lite_bind_int(struct cat_stmt *s, int idx, int64_t v)
{
        sqlite3_bind_int64(STMT(s), idx, v);
}

static void lite_bind_null(struct cat_stmt *s, int idx)
{
        sqlite3_bind_null(STMT(s), idx);
}

static int lite_step(struct vp_catalog *c, struct cat_stmt *s)
{
        int rc = sqlite3_step(STMT(s));
        return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static const char *lite_text(struct cat_stmt *s, int i)
{
        return (const char *)sqlite3_column_text(STMT(s), i);
}

static int64_t lite_integer(struct cat_stmt *s, int i)
{
        return sqlite3_column_int64(STMT(s), i);
}

static enum cat_fail lite_fail(struct vp_catalog *c)
{
        if (!DB(c))
                return CAT_FAIL_OTHER;
        switch (sqlite3_extended_errcode(DB(c))) {
        case SQLITE_CONSTRAINT_UNIQUE:
        case SQLITE_CONSTRAINT_PRIMARYKEY:
                return CAT_FAIL_UNIQUE;
        case SQLITE_CONSTRAINT_FOREIGNKEY:
                return CAT_FAIL_FOREIGN_KEY;
        }
        switch (sqlite3_errcode(DB(c))) {
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return CAT_FAIL_BUSY;
        case SQLITE_FULL:
                return CAT_FAIL_FULL;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return CAT_FAIL_DAMAGED;
        }
        return CAT_FAIL_OTHER;
}

static const char *lite_message(struct vp_catalog *c)
{
        return DB(c) ? sqlite3_errmsg(DB(c)) : "out of memory";
}

static int lite_begin(struct vp_catalog *c)
{
        return lite_exec(c, "BEGIN IMMEDIATE;");
}

static bool lite_in_transaction(struct vp_catalog *c)
{
        return !sqlite3_get_autocommit(DB(c));
}

static int lite_data_version(struct vp_catalog *c, int64_t *ret)
{
        sqlite3_stmt *s = NULL;
        if (lite_prepare_new(c, "PRAGMA data_version", &s) < 0)
                return -1;
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
                *ret = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        return rc == SQLITE_ROW ? 0 : -1;
}

static char *lite_schema(void)
{
        _cleanup_free_ char *tables = vp_cat_tables_sql();
        return vp_strdupf("%s%s", tables, vp_cat_sqlite_triggers_sql);
}

/* Whether every reference in C holds (what foreign keys would refuse). */
static int check_references(struct vp_catalog *c, struct vp_error *err)
{
        sqlite3_stmt *s = NULL;
        if (lite_prepare_new(c, "PRAGMA foreign_key_check", &s) < 0)
                return vp_cat_db_err(c, err, "cannot check references");
        int rc = sqlite3_step(s), r = 0;
        if (rc == SQLITE_ROW)
                r = vp_err(err, -EBADMSG, "catalog '%s': a row of '%s' refers to a missing row of '%s'", c->path,
                           (const char *)sqlite3_column_text(s, 0), (const char *)sqlite3_column_text(s, 2));
        else if (rc != SQLITE_DONE)
                r = vp_cat_db_err(c, err, "cannot check references");
        sqlite3_finalize(s);
        return r;
}

/* A step may rebuild a table others refer to, which SQLite allows only
 * with foreign keys off (outside any transaction); each step checks every
 * reference before it commits instead. */
static int lite_upgrade(struct vp_catalog *c, int from, struct vp_error *err)
{
        int r = vp_cat_exec(c, "PRAGMA foreign_keys=OFF;", err);
        for (int v = from; r >= 0 && v < VP_SCHEMA_VERSION; v++) {
                _cleanup_free_ char *sql = vp_strdupf("%sUPDATE meta SET value = '%d' WHERE key = 'schema';",
                                                      vp_cat_sqlite_upgrades[v], v + 1);
                if ((r = vp_cat_exec(c, "BEGIN IMMEDIATE;", err)) >= 0 && (r = vp_cat_exec(c, sql, err)) >= 0 &&
                    (r = check_references(c, err)) >= 0)
                        r = vp_cat_exec(c, "COMMIT;", err);
                vp_catalog_rollback(c);
        }
        int k = vp_cat_exec(c, "PRAGMA foreign_keys=ON;", r < 0 ? NULL : err);
        return r < 0 ? r : k;
}

void vp_catalog_threads_init(void)
{
        /* SQLite counts every allocation under one global mutex unless told
         * not to: with several threads reading at once, that mutex is what
         * they would wait on. */
        sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* SQLite's online backup: a page-for-page copy of one state of the
 * catalog, itself a catalog any vpool opens. */
static int lite_backup(struct vp_catalog *c, const char *file, struct vp_error *err)
{
        sqlite3 *dst = NULL;
        int rc = sqlite3_open_v2(file, &dst, SQLITE_OPEN_READWRITE, NULL);
        sqlite3_backup *b = rc == SQLITE_OK ? sqlite3_backup_init(dst, "main", DB(c), "main") : NULL;
        if (b) {
                while ((rc = sqlite3_backup_step(b, -1)) == SQLITE_BUSY || rc == SQLITE_LOCKED)
                        sqlite3_sleep(50);
                sqlite3_backup_finish(b);
        }
        int r = 0;
        if (!b || rc != SQLITE_DONE)
                r = vp_err(err, -EIO, "catalog '%s': backup to '%s' failed: %s", c->path, file,
                           dst ? sqlite3_errmsg(dst) : "out of memory");
        sqlite3_close(dst);
        return r;
}

const struct cat_engine vp_cat_sqlite = {
        .name = "sqlite",
        .open = lite_open,
        .close = lite_close,
        .exec = lite_exec,
        .prepare = lite_prepare,
        .finish = lite_finish,
        .bind_text = lite_bind_text,
        .bind_int = lite_bind_int,
        .bind_null = lite_bind_null,
        .step = lite_step,
        .text = lite_text,
        .integer = lite_integer,
        .fail = lite_fail,
        .message = lite_message,
        .begin = lite_begin,
        .in_transaction = lite_in_transaction,
        .data_version = lite_data_version,
        .schema = lite_schema,
        .upgrade = lite_upgrade,
        .ddl = vp_strdup,
        .foreign_keys_sql = "SELECT \"table\", \"from\", on_delete FROM pragma_foreign_key_list(?1)",
        .has_table_sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
        .read_snapshot_sql = "BEGIN;",
        .backup = lite_backup,
};
