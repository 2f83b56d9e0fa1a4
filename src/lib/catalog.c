#include "model.h"

#include "catalog-engine.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

#define COL(st, f, ty) { #f, ty, offsetof(struct st, f) }
#define T(st, f) COL(st, f, VP_COL_TEXT)
#define I(st, f) COL(st, f, VP_COL_INT)
#define R(st, f) COL(st, f, VP_COL_REF)

static const struct vp_col env_cols[] = {
        I(vp_env, id), T(vp_env, name), T(vp_env, uri), T(vp_env, hostname), T(vp_env, arch),
        T(vp_env, domain_types), T(vp_env, machines), T(vp_env, disk_buses),
        T(vp_env, nic_models), T(vp_env, firmwares), I(vp_env, cpus), I(vp_env, memory_kib),
        T(vp_env, created), T(vp_env, fence_cmd), T(vp_env, on_maintenance), T(vp_env, on_host_failure),
        T(vp_env, evacuate_to), I(vp_env, grace),
};
static const struct vp_col host_cols[] = {
        I(vp_host, id), I(vp_host, env_id), T(vp_host, name), T(vp_host, uri), T(vp_host, hostname),
        I(vp_host, cpus), I(vp_host, memory_kib), I(vp_host, maintenance), T(vp_host, unreachable),
        T(vp_host, created),
};
static const struct vp_col image_cols[] = {
        I(vp_image, id), T(vp_image, name), T(vp_image, path), T(vp_image, format),
        I(vp_image, virtual_size), I(vp_image, file_size), T(vp_image, sha256),
        T(vp_image, disk_buses), T(vp_image, nic_models), T(vp_image, firmwares),
        T(vp_image, kernel), T(vp_image, initrd), T(vp_image, cmdline), T(vp_image, created),
        T(vp_image, stamp),
};
static const struct vp_col profile_cols[] = {
        I(vp_profile, id), T(vp_profile, name), T(vp_profile, machine), T(vp_profile, disk_bus),
        T(vp_profile, nic), I(vp_profile, vcpus), I(vp_profile, memory_mib),
        T(vp_profile, firmware), T(vp_profile, cpu_mode), T(vp_profile, created),
};
static const struct vp_col pool_cols[] = {
        I(vp_pool, id), T(vp_pool, name), I(vp_pool, image_id), I(vp_pool, env_id),
        I(vp_pool, profile_id), I(vp_pool, size), I(vp_pool, data_disk_bytes),
        T(vp_pool, state), T(vp_pool, created),
};
static const struct vp_col vm_cols[] = {
        I(vp_vm, id), T(vp_vm, name), I(vp_vm, pool_id), I(vp_vm, idx), I(vp_vm, env_id),
        I(vp_vm, profile_id), R(vp_vm, host_id),
        T(vp_vm, uuid), T(vp_vm, macs), T(vp_vm, hostname), T(vp_vm, delta_path),
        T(vp_vm, owner), I(vp_vm, generation), T(vp_vm, created),
};

static const struct vp_col migration_cols[] = {
        I(vp_migration, id), T(vp_migration, pool_name), I(vp_migration, pool_id),
        R(vp_migration, from_env_id), R(vp_migration, to_env_id), R(vp_migration, from_profile_id),
        R(vp_migration, to_profile_id), T(vp_migration, from_env), T(vp_migration, to_env),
        T(vp_migration, from_profile), T(vp_migration, to_profile), T(vp_migration, state), I(vp_migration, parallel),
        I(vp_migration, shutdown_timeout), I(vp_migration, source_fenced), I(vp_migration, total), T(vp_migration, created),
        T(vp_migration, updated),
};
static const struct vp_col migvm_cols[] = {
        I(vp_migvm, id), T(vp_migvm, vm_name), I(vp_migvm, migration_id), I(vp_migvm, vm_id),
        T(vp_migvm, step), I(vp_migvm, source_running), R(vp_migvm, src_env_id),
        R(vp_migvm, src_profile_id), T(vp_migvm, src_env), R(vp_migvm, src_host_id),
        R(vp_migvm, dst_host_id), I(vp_migvm, live), I(vp_migvm, generation), T(vp_migvm, error), T(vp_migvm, updated),
};
static const struct vp_col journal_cols[] = {
        I(vp_journal, id), T(vp_journal, vm_name), I(vp_journal, migration_id), T(vp_journal, step),
        I(vp_journal, generation), T(vp_journal, detail), T(vp_journal, at),
};
static const struct vp_col event_cols[] = {
        I(vp_event, id), T(vp_event, at), T(vp_event, kind), T(vp_event, subject), T(vp_event, pool),
        I(vp_event, migration_id), T(vp_event, vm), T(vp_event, state), T(vp_event, detail),
};
static const struct vp_col fence_cols[] = {
        I(vp_fence, id), I(vp_fence, migration_id), T(vp_fence, env_name), T(vp_fence, host_name), T(vp_fence, method),
        T(vp_fence, command), I(vp_fence, exit_status), T(vp_fence, output), I(vp_fence, fenced),
        T(vp_fence, at),
};
static const struct vp_col history_cols[] = {
        I(vp_history, id), T(vp_history, at), T(vp_history, ended), T(vp_history, user),
        T(vp_history, sudo_user), T(vp_history, host), I(vp_history, pid), I(vp_history, pid_start),
        T(vp_history, command), T(vp_history, noun), T(vp_history, verb), T(vp_history, subject),
        T(vp_history, pool), T(vp_history, vm), I(vp_history, migration_id), I(vp_history, journal_from),
        I(vp_history, journal_to), T(vp_history, outcome), T(vp_history, via),
        T(vp_history, reason),
};
static const struct vp_col inspection_cols[] = {
        I(vp_inspection, id), T(vp_inspection, sha256), T(vp_inspection, report), T(vp_inspection, created),
};
static const struct vp_col token_cols[] = {
        I(vp_token, id), T(vp_token, name), T(vp_token, role), T(vp_token, hash), T(vp_token, created),
        T(vp_token, last_used),
};

static const struct vp_col retirement_cols[] = {
        I(vp_retirement, id), T(vp_retirement, env), I(vp_retirement, env_id), I(vp_retirement, to_env_id),
        R(vp_retirement, profile_id), T(vp_retirement, time_window), I(vp_retirement, wave),
        I(vp_retirement, report), T(vp_retirement, state), T(vp_retirement, created), T(vp_retirement, completed),
};

#define TABLE(var, sqlname, kindname, st, cols) \
        const struct vp_table var = { sqlname, kindname, cols, ELEMENTSOF(cols), sizeof(struct st) }

TABLE(vp_table_env, "envs", "env", vp_env, env_cols);
TABLE(vp_table_host, "hosts", "host", vp_host, host_cols);
TABLE(vp_table_image, "images", "image", vp_image, image_cols);
TABLE(vp_table_profile, "profiles", "profile", vp_profile, profile_cols);
TABLE(vp_table_pool, "pools", "pool", vp_pool, pool_cols);
TABLE(vp_table_vm, "vms", "vm", vp_vm, vm_cols);
TABLE(vp_table_migration, "migrations", "migration", vp_migration, migration_cols);
TABLE(vp_table_migvm, "migration_vms", "migration vm", vp_migvm, migvm_cols);
TABLE(vp_table_journal, "journal", "journal entry", vp_journal, journal_cols);
TABLE(vp_table_history, "history", "history entry", vp_history, history_cols);
TABLE(vp_table_fence, "fences", "fence", vp_fence, fence_cols);
TABLE(vp_table_event, "events", "event", vp_event, event_cols);
TABLE(vp_table_token, "tokens", "token", vp_token, token_cols);
TABLE(vp_table_retirement, "retirements", "retirement", vp_retirement, retirement_cols);
TABLE(vp_table_inspection, "inspections", "inspection", vp_inspection, inspection_cols);

/* Fence records came with schema 4, as did the envs' fence agents. */
#define FENCES_SQL \
        "CREATE TABLE fences(id INTEGER PRIMARY KEY, migration_id INTEGER NOT NULL, env_name TEXT NOT NULL," \
        " method TEXT NOT NULL, command TEXT, exit_status INTEGER, output TEXT, fenced INTEGER NOT NULL," \
        " at TEXT NOT NULL);" \
        "CREATE INDEX fences_migration ON fences(migration_id);"

/* Hosts came with schema 5: an env was one libvirt URI before. A VM
 * records the host that holds its domain, a migration's VM the host it
 * left and the one placement gave it. A host goes with its env. */
#define HOSTS_SQL \
        "CREATE TABLE hosts(id INTEGER PRIMARY KEY, env_id INTEGER NOT NULL REFERENCES envs(id) ON DELETE CASCADE," \
        " name TEXT NOT NULL, uri TEXT NOT NULL, hostname TEXT, cpus INTEGER, memory_kib INTEGER," \
        " maintenance INTEGER NOT NULL DEFAULT 0, unreachable TEXT NOT NULL DEFAULT '', created TEXT," \
        " UNIQUE(env_id, name), UNIQUE(env_id, uri));" \
        "CREATE INDEX hosts_env ON hosts(env_id);"
#define HOST_REFS_SQL \
        "ALTER TABLE vms ADD COLUMN host_id INTEGER REFERENCES hosts(id) ON DELETE SET NULL;" \
        "ALTER TABLE migration_vms ADD COLUMN src_host_id INTEGER REFERENCES hosts(id) ON DELETE SET NULL;" \
        "ALTER TABLE migration_vms ADD COLUMN dst_host_id INTEGER REFERENCES hosts(id) ON DELETE SET NULL;" \
        "ALTER TABLE migration_vms ADD COLUMN live INTEGER NOT NULL DEFAULT 0;" \
        "CREATE INDEX vms_host ON vms(host_id);" \
        "ALTER TABLE fences ADD COLUMN host_name TEXT;"

/* Events came with schema 6: what a watcher of the catalog sees happen,
 * one sequence of ids (AUTOINCREMENT: never handed out twice, even after
 * the oldest are pruned). Triggers write the catalog's own changes, so
 * every writer (the CLI, the daemon) makes them alike: a migration's
 * journal steps and states, a pool's creation, states and removal, a
 * host's maintenance and reachability. The daemon adds its jobs'. */
#define EVENT_AT "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
#define EVENTS_TABLE_SQL \
        "CREATE TABLE events(id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, kind TEXT NOT NULL," \
        " subject TEXT, pool TEXT, migration_id INTEGER, vm TEXT, state TEXT, detail TEXT);"
/* SQLite's triggers; catalog-pg.c has the same in PL/pgSQL. */
#define EVENTS_TRIGGERS_SQL \
        "CREATE TRIGGER events_step AFTER INSERT ON journal BEGIN" \
        " INSERT INTO events(at, kind, subject, pool, migration_id, vm, state, detail) VALUES(" EVENT_AT "," \
        " 'step', NEW.vm_name, (SELECT pool_name FROM migrations WHERE id = NEW.migration_id)," \
        " NEW.migration_id, NEW.vm_name, NEW.step, NEW.detail); END;" \
        "CREATE TRIGGER events_migration_new AFTER INSERT ON migrations BEGIN" \
        " INSERT INTO events(at, kind, subject, pool, migration_id, state) VALUES(" EVENT_AT "," \
        " 'migration', NEW.id, NEW.pool_name, NEW.id, NEW.state); END;" \
        "CREATE TRIGGER events_migration AFTER UPDATE OF state ON migrations WHEN OLD.state IS NOT NEW.state BEGIN" \
        " INSERT INTO events(at, kind, subject, pool, migration_id, state) VALUES(" EVENT_AT "," \
        " 'migration', NEW.id, NEW.pool_name, NEW.id, NEW.state); END;" \
        "CREATE TRIGGER events_pool_new AFTER INSERT ON pools BEGIN" \
        " INSERT INTO events(at, kind, subject, pool, state) VALUES(" EVENT_AT ", 'pool', NEW.name, NEW.name," \
        " NEW.state); END;" \
        "CREATE TRIGGER events_pool AFTER UPDATE OF state ON pools WHEN OLD.state IS NOT NEW.state BEGIN" \
        " INSERT INTO events(at, kind, subject, pool, state) VALUES(" EVENT_AT ", 'pool', NEW.name, NEW.name," \
        " NEW.state); END;" \
        "CREATE TRIGGER events_pool_gone AFTER DELETE ON pools BEGIN" \
        " INSERT INTO events(at, kind, subject, pool, state) VALUES(" EVENT_AT ", 'pool', OLD.name, OLD.name," \
        " 'removed'); END;" \
        "CREATE TRIGGER events_host_maintenance AFTER UPDATE OF maintenance ON hosts" \
        " WHEN OLD.maintenance IS NOT NEW.maintenance BEGIN" \
        " INSERT INTO events(at, kind, subject, state) VALUES(" EVENT_AT ", 'host'," \
        " (SELECT name FROM envs WHERE id = NEW.env_id) || '/' || NEW.name," \
        " CASE NEW.maintenance WHEN 0 THEN 'in service' ELSE 'maintenance' END); END;" \
        "CREATE TRIGGER events_host_reach AFTER UPDATE OF unreachable ON hosts" \
        " WHEN (OLD.unreachable = '') IS NOT (NEW.unreachable = '') BEGIN" \
        " INSERT INTO events(at, kind, subject, state) VALUES(" EVENT_AT ", 'host'," \
        " (SELECT name FROM envs WHERE id = NEW.env_id) || '/' || NEW.name," \
        " CASE NEW.unreachable WHEN '' THEN 'reachable' ELSE 'unreachable' END); END;"
#define EVENTS_SQL EVENTS_TABLE_SQL EVENTS_TRIGGERS_SQL
/* Tokens and the history's via came with schema 7, with the API. A token
 * is found by the hash of its secret. An older row's via stays NULL: it
 * came through the command line, the only way there was. */
#define TOKENS_SQL \
        "CREATE TABLE tokens(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL," \
        " hash TEXT NOT NULL UNIQUE, created TEXT NOT NULL, last_used TEXT NOT NULL DEFAULT '');"
#define HISTORY_VIA_SQL "ALTER TABLE history ADD COLUMN via TEXT;"
/* Why a change was made, when vpool itself decided it (a policy): came with
 * schema 8. A person's or a client's change has none. */
#define HISTORY_REASON_SQL "ALTER TABLE history ADD COLUMN reason TEXT;"
/* The policies came with schema 9: what vpoold does with a host in
 * maintenance (NULL: the default), and the retirements. A retirement goes
 * with its env; the env and the profile it moves pools to cannot be
 * removed while it is there. Its id is never handed out again
 * (AUTOINCREMENT): a retirement asked again is a new one to the daemon. */
#define POLICIES_SQL \
        "ALTER TABLE envs ADD COLUMN on_maintenance TEXT;" \
        "CREATE TABLE retirements(id INTEGER PRIMARY KEY AUTOINCREMENT, env TEXT NOT NULL UNIQUE," \
        " env_id INTEGER NOT NULL UNIQUE REFERENCES envs(id) ON DELETE CASCADE," \
        " to_env_id INTEGER NOT NULL REFERENCES envs(id), profile_id INTEGER REFERENCES profiles(id)," \
        " time_window TEXT NOT NULL DEFAULT '', wave INTEGER NOT NULL, report INTEGER NOT NULL DEFAULT 0," \
        " state TEXT NOT NULL, created TEXT NOT NULL, completed TEXT NOT NULL DEFAULT '');"
/* The inspections came with schema 10. Keyed by digest, not by image: two images of one master share it, and a
 * master added again after its image was removed is not inspected again. */
#define INSPECTIONS_SQL \
        "CREATE TABLE inspections(id INTEGER PRIMARY KEY, sha256 TEXT NOT NULL UNIQUE, report TEXT NOT NULL," \
        " created TEXT NOT NULL);"
/* What an env does with a host that stops answering came with schema 11:
 * an env before it does nothing, after the default grace period. */
#define ENV_HOST_FAILURE_SQL \
        "ALTER TABLE envs ADD COLUMN on_host_failure TEXT NOT NULL DEFAULT 'none';" \
        "ALTER TABLE envs ADD COLUMN evacuate_to TEXT NOT NULL DEFAULT '';" \
        "ALTER TABLE envs ADD COLUMN grace INTEGER NOT NULL DEFAULT " STRINGIFY(VP_HOST_FAILURE_GRACE) ";"

/* Every table, to find which refer to which (constraint messages). */
static const struct vp_table *const all_tables[] = {
        &vp_table_env, &vp_table_host, &vp_table_image, &vp_table_profile, &vp_table_pool, &vp_table_vm,
        &vp_table_migration, &vp_table_migvm, &vp_table_journal, &vp_table_history, &vp_table_fence,
        &vp_table_event,
        &vp_table_token, &vp_table_retirement, &vp_table_inspection,
};

static const char *kind_of(const char *sqlname)
{
        for (size_t i = 0; i < ELEMENTSOF(all_tables); i++)
                if (streq(all_tables[i]->name, sqlname))
                        return all_tables[i]->kind;
        return sqlname;
}

/* The history table came after schema 1 was in use. It only adds, so it
 * moves no schema number: an older vpool ignores the table, and a catalog
 * made by an older vpool gets it on its first open by this one. */
#define HISTORY_SQL \
        "CREATE TABLE IF NOT EXISTS history(id INTEGER PRIMARY KEY, at TEXT NOT NULL, ended TEXT," \
        " \"user\" TEXT, sudo_user TEXT, host TEXT, pid INTEGER, pid_start INTEGER, command TEXT NOT NULL," \
        " noun TEXT, verb TEXT, subject TEXT, pool TEXT, vm TEXT, migration_id INTEGER," \
        " journal_from INTEGER, journal_to INTEGER, outcome TEXT NOT NULL);" \
        "CREATE INDEX IF NOT EXISTS history_at ON history(at);"

/* A migration names the envs and profiles it moved between by id while
 * they exist and by name for good: removing an env or profile that only
 * finished migrations used sets their ids NULL, and the history still
 * names it. The names are taken from the ids when the row is written. */
#define MIGRATIONS_SQL(table) \
        "CREATE TABLE " table "(id INTEGER PRIMARY KEY, pool_name TEXT NOT NULL," \
        " pool_id INTEGER NOT NULL, from_env_id INTEGER REFERENCES envs(id) ON DELETE SET NULL," \
        " to_env_id INTEGER REFERENCES envs(id) ON DELETE SET NULL," \
        " from_profile_id INTEGER REFERENCES profiles(id) ON DELETE SET NULL," \
        " to_profile_id INTEGER REFERENCES profiles(id) ON DELETE SET NULL," \
        " from_env TEXT, to_env TEXT, from_profile TEXT, to_profile TEXT, state TEXT NOT NULL," \
        " parallel INTEGER, shutdown_timeout INTEGER, source_fenced INTEGER NOT NULL DEFAULT 0," \
        " total INTEGER, created TEXT, updated TEXT);"
#define MIGRATION_VMS_SQL(table) \
        "CREATE TABLE " table "(id INTEGER PRIMARY KEY, vm_name TEXT NOT NULL," \
        " migration_id INTEGER NOT NULL REFERENCES migrations(id), vm_id INTEGER NOT NULL," \
        " step TEXT NOT NULL, source_running INTEGER NOT NULL," \
        " src_env_id INTEGER REFERENCES envs(id) ON DELETE SET NULL," \
        " src_profile_id INTEGER REFERENCES profiles(id) ON DELETE SET NULL, src_env TEXT," \
        " generation INTEGER NOT NULL, error TEXT, updated TEXT, UNIQUE(migration_id, vm_id));"
#define NAME_OF(table, id) "(SELECT name FROM " table " WHERE id = " id ")"
/* ID when TABLE still has that row, else NULL. */
#define ID_IN(table, id) "(SELECT id FROM " table " WHERE id = " id ")"
#define MIGRATION_NAMES_SQL \
        "CREATE TRIGGER migrations_names AFTER INSERT ON migrations BEGIN UPDATE migrations SET" \
        " from_env = " NAME_OF("envs", "NEW.from_env_id") ", to_env = " NAME_OF("envs", "NEW.to_env_id") "," \
        " from_profile = " NAME_OF("profiles", "NEW.from_profile_id") "," \
        " to_profile = " NAME_OF("profiles", "NEW.to_profile_id") " WHERE id = NEW.id; END;" \
        "CREATE TRIGGER migration_vms_names AFTER INSERT ON migration_vms BEGIN UPDATE migration_vms SET" \
        " src_env = " NAME_OF("envs", "NEW.src_env_id") " WHERE id = NEW.id; END;"

static const char schema_sql[] =
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE envs(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, uri TEXT NOT NULL,"
        " hostname TEXT, arch TEXT, domain_types TEXT, machines TEXT, disk_buses TEXT,"
        " nic_models TEXT, firmwares TEXT, cpus INTEGER, memory_kib INTEGER, created TEXT, fence_cmd TEXT);"
        "CREATE TABLE images(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, path TEXT NOT NULL,"
        " format TEXT NOT NULL, virtual_size INTEGER, file_size INTEGER, sha256 TEXT NOT NULL,"
        " disk_buses TEXT, nic_models TEXT, firmwares TEXT, kernel TEXT, initrd TEXT,"
        " cmdline TEXT, created TEXT, stamp TEXT);"
        "CREATE TABLE profiles(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
        " machine TEXT NOT NULL, disk_bus TEXT NOT NULL, nic TEXT NOT NULL, vcpus INTEGER,"
        " memory_mib INTEGER, firmware TEXT, cpu_mode TEXT, created TEXT);"
        "CREATE TABLE pools(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
        " image_id INTEGER NOT NULL REFERENCES images(id),"
        " env_id INTEGER NOT NULL REFERENCES envs(id),"
        " profile_id INTEGER NOT NULL REFERENCES profiles(id),"
        " size INTEGER NOT NULL, data_disk_bytes INTEGER, state TEXT NOT NULL, created TEXT);"
        "CREATE TABLE vms(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
        " pool_id INTEGER NOT NULL REFERENCES pools(id), idx INTEGER NOT NULL,"
        " env_id INTEGER NOT NULL REFERENCES envs(id),"
        " profile_id INTEGER NOT NULL REFERENCES profiles(id), uuid TEXT NOT NULL UNIQUE,"
        " macs TEXT NOT NULL, hostname TEXT, delta_path TEXT NOT NULL, owner TEXT NOT NULL,"
        " generation INTEGER NOT NULL, created TEXT);"
        "CREATE INDEX vms_pool ON vms(pool_id);"
        MIGRATIONS_SQL("migrations")
        "CREATE INDEX migrations_pool ON migrations(pool_id);"
        MIGRATION_VMS_SQL("migration_vms")
        "CREATE TABLE journal(id INTEGER PRIMARY KEY, vm_name TEXT, migration_id INTEGER NOT NULL,"
        " step TEXT NOT NULL, generation INTEGER, detail TEXT, at TEXT NOT NULL);"
        "CREATE INDEX journal_migration ON journal(migration_id);"
        "CREATE INDEX vms_env ON vms(env_id);";
/* The rest of a new catalog (one C string may not hold it all). */
static const char schema_tail_sql[] =
        HISTORY_SQL
        FENCES_SQL
        HOSTS_SQL
        HOST_REFS_SQL
        TOKENS_SQL
        HISTORY_VIA_SQL
        HISTORY_REASON_SQL
        POLICIES_SQL
        INSPECTIONS_SQL
        ENV_HOST_FAILURE_SQL
        EVENTS_TABLE_SQL
        "INSERT INTO meta(key, value) VALUES('schema', '" STRINGIFY(VP_SCHEMA_VERSION) "');";

/* The tables of a new catalog, in SQLite's words; the PostgreSQL engine
 * translates the types of their columns (catalog-pg.c). Their triggers
 * are each engine's. */
char *vp_cat_tables_sql(void)
{
        return vp_strdupf("%s%s", schema_sql, schema_tail_sql);
}

const char vp_cat_sqlite_triggers_sql[] = MIGRATION_NAMES_SQL EVENTS_TRIGGERS_SQL;

int vp_cat_denied(struct vp_catalog *c, struct vp_error *err)
{
        return vp_err(err, -EROFS, "catalog '%s' is read-only for this user: only commands that change nothing can run",
                      c->path);
}

int vp_cat_db_err(struct vp_catalog *c, struct vp_error *err, const char *what)
{
        enum cat_fail f = c->e->fail(c);
        if (f == CAT_FAIL_DENIED)
                return vp_cat_denied(c, err);
        int code = f == CAT_FAIL_BUSY ? -EBUSY : f == CAT_FAIL_FULL ? -ENOSPC : f == CAT_FAIL_DAMAGED ? -EBADMSG : -EIO;
        return vp_err(err, code, "catalog '%s': %s: %s", c->path, what, c->e->message(c));
}
#define db_err vp_cat_db_err

int vp_cat_exec(struct vp_catalog *c, const char *sql, struct vp_error *err)
{
        if (c->e->exec(c, sql) < 0)
                return db_err(c, err, "query failed");
        return 0;
}

/* A statement in use, given back to its engine when it goes out of scope. */
struct stmt_ref {
        struct vp_catalog *c;
        struct cat_stmt *s;
};
static void stmt_donep(struct stmt_ref *r)
{
        if (r->s)
                r->c->e->finish(r->c, r->s);
}
#define _cleanup_stmt_ _cleanup_(stmt_donep)

static int prepare(struct vp_catalog *c, const char *sql, struct stmt_ref *ret, struct vp_error *err)
{
        ret->c = c;
        if (c->e->prepare(c, sql, &ret->s) < 0) {
                ret->s = NULL;
                /* A query on a table that is not there means a foreign or damaged catalog. */
                if (c->e->fail(c) == CAT_FAIL_DAMAGED || c->e->fail(c) == CAT_FAIL_OTHER)
                        return vp_err(err, -EBADMSG, "catalog '%s' is damaged or not a vpool catalog: %s",
                                      c->path, c->e->message(c));
                return db_err(c, err, "cannot prepare");
        }
        return 0;
}

void vp_catalog_close(struct vp_catalog *c)
{
        if (!c)
                return;
        c->e->close(c);
        free(c->path);
        free(c->target);
        free(c);
}

/* Run SQL in one transaction of its own; rolled back when it fails. */
static int exec_transaction(struct vp_catalog *c, const char *sql, struct vp_error *err)
{
        int r = vp_catalog_begin(c, err);
        if (r >= 0 && (r = vp_cat_exec(c, sql, err)) >= 0)
                r = vp_cat_exec(c, "COMMIT;", err);
        vp_catalog_rollback(c);
        return r;
}

/* The schema version a catalog records, 1 to VP_SCHEMA_VERSION, or 0 when
 * it records none of these (written exactly as this vpool writes them);
 * -ESTALE (with the message) for a newer one. */
int vp_cat_schema_version(struct vp_catalog *c, struct vp_error *err)
{
        _cleanup_free_ char *schema = NULL;
        int r = vp_catalog_get_meta(c, "schema", &schema, err);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        for (int v = 1; v <= VP_SCHEMA_VERSION; v++) {
                char word[16];
                snprintf(word, sizeof(word), "%d", v);
                if (streq(schema, word))
                        return v;
        }
        return 0;
}
#define schema_version vp_cat_schema_version

/* upgrades[V] takes a catalog of schema V to V + 1; the next schema adds
 * one entry. Each runs in one transaction with the new version number, so
 * a catalog is always at one schema or the next, never between. */
const char *const vp_cat_sqlite_upgrades[] = {
        /* Schema 1 lacked the images' stamp: the column comes empty, so the
         * next check of each master hashes it. */
        [1] = "ALTER TABLE images ADD COLUMN stamp TEXT;",
        /* Schema 2 kept every env and profile a migration ever used
         * (NOT NULL references): the two migration tables are rebuilt
         * with nullable references and the names, an id whose row is gone
         * becoming NULL. Runs with foreign keys off (see catalog_upgrade). */
        [2] = MIGRATIONS_SQL("migrations_v3")
              "INSERT INTO migrations_v3(id, pool_name, pool_id, from_env_id, to_env_id, from_profile_id,"
              " to_profile_id, from_env, to_env, from_profile, to_profile, state, parallel, shutdown_timeout,"
              " source_fenced, total, created, updated)"
              " SELECT id, pool_name, pool_id, " ID_IN("envs", "from_env_id") "," ID_IN("envs", "to_env_id") ","
              " " ID_IN("profiles", "from_profile_id") "," ID_IN("profiles", "to_profile_id") ","
              " " NAME_OF("envs", "from_env_id") "," NAME_OF("envs", "to_env_id") ","
              " " NAME_OF("profiles", "from_profile_id") "," NAME_OF("profiles", "to_profile_id") ","
              " state, parallel, shutdown_timeout, source_fenced, total, created, updated FROM migrations;"
              "DROP TABLE migrations;"
              "ALTER TABLE migrations_v3 RENAME TO migrations;"
              "CREATE INDEX migrations_pool ON migrations(pool_id);"
              MIGRATION_VMS_SQL("migration_vms_v3")
              "INSERT INTO migration_vms_v3(id, vm_name, migration_id, vm_id, step, source_running, src_env_id,"
              " src_profile_id, src_env, generation, error, updated)"
              " SELECT id, vm_name, migration_id, vm_id, step, source_running,"
              " " ID_IN("envs", "src_env_id") "," ID_IN("profiles", "src_profile_id") ","
              " " NAME_OF("envs", "src_env_id") ", generation, error, updated FROM migration_vms;"
              "DROP TABLE migration_vms;"
              "ALTER TABLE migration_vms_v3 RENAME TO migration_vms;"
              MIGRATION_NAMES_SQL,
        /* Schema 3 had no fence agents: no env has one, no fence was run. */
        [3] = "ALTER TABLE envs ADD COLUMN fence_cmd TEXT;" FENCES_SQL,
        /* Schema 4 had one URI per env: each env becomes a cluster of that
         * one host, named after its env, which holds all its VMs. */
        [4] = HOSTS_SQL HOST_REFS_SQL
              "INSERT INTO hosts(env_id, name, uri, hostname, cpus, memory_kib, maintenance, unreachable, created)"
              " SELECT id, name, uri, hostname, cpus, memory_kib, 0, '', created FROM envs;"
              "UPDATE vms SET host_id = (SELECT id FROM hosts WHERE hosts.env_id = vms.env_id);"
              "UPDATE migration_vms SET src_host_id = (SELECT id FROM hosts WHERE hosts.env_id = migration_vms.src_env_id);",
        /* Schema 5 had no events: the stream begins with the upgrade. */
        [5] = EVENTS_SQL,
        /* Schema 6 had no API: no tokens, every change came through the
         * command line. A catalog from before the history (which then
         * came on the first open) gets it here, so via has a table to go to. */
        [6] = TOKENS_SQL HISTORY_SQL HISTORY_VIA_SQL,
        /* Schema 7 had no policies: no change had a reason of its own. */
        [7] = HISTORY_REASON_SQL,
        /* Schema 8 had no policies: every host in maintenance gets the
         * default, no env is retiring. */
        [8] = POLICIES_SQL,
        /* Schema 9 did not inspect images: none has a report, so each keeps
         * its declaration alone until it is added again. */
        [9] = INSPECTIONS_SQL,
        /* Schema 10 had no host-failure policy: every env does nothing. */
        [10] = ENV_HOST_FAILURE_SQL,
};
_Static_assert(ELEMENTSOF(vp_cat_sqlite_upgrades) == VP_SCHEMA_VERSION, "one upgrade for each schema before this one");

/* A catalog of this schema, or of an older one that is upgraded now
 * (unless READONLY: reading changes nothing); anything else is refused
 * untouched. */
static int check_schema(struct vp_catalog *c, bool readonly, struct vp_error *err)
{
        int v = schema_version(c, err);
        if (v > 0 && v < VP_SCHEMA_VERSION && readonly)
                return vp_err(err, -EROFS, "catalog '%s' is of schema %d and needs an upgrade to schema %d: run a "
                              "command that changes something, as a user who may write the catalog", c->path, v,
                              VP_SCHEMA_VERSION);
        if (v > 0 && v < VP_SCHEMA_VERSION) {
                int r = c->e->upgrade(c, v, err);
                if (r < 0)
                        return r;
                v = schema_version(c, err);
        }
        if (v < 0)
                return v;
        _cleanup_free_ char *word = NULL;
        if (v == 0 && vp_catalog_get_meta(c, "schema", &word, NULL) >= 0 && strspn(word, "0123456789") == strlen(word) &&
            strlen(word) < 10 && atoi(word) > VP_SCHEMA_VERSION)
                return vp_err(err, -EBADMSG, "catalog '%s' is of schema %s, newer than this vpool's (%d): "
                              "use a newer vpool", c->path, word, VP_SCHEMA_VERSION);
        if (v != VP_SCHEMA_VERSION)
                return vp_err(err, -EBADMSG, "catalog '%s' is not a vpool catalog of schema %d", c->path,
                              VP_SCHEMA_VERSION);
        return 0;
}

/* The history table came without a schema number (see HISTORY_SQL). Best
 * effort: a change would fail on its own write anyway. */
static void add_history(struct vp_catalog *c)
{
        if (!vp_catalog_has_table(c, "history")) {
                _cleanup_free_ char *sql = c->e->ddl(HISTORY_SQL HISTORY_VIA_SQL HISTORY_REASON_SQL);
                exec_transaction(c, sql, NULL);
        }
}

/* Open the catalog NAME (CREATE: create it when absent). READONLY: for a
 * command that changes nothing, which then works for a user who may only
 * read it: no upgrade, nothing written. */
static int catalog_open(const char *name, bool create, bool readonly, struct vp_catalog **ret,
                        struct vp_error *err)
{
        struct vp_catalog *c = vp_xcalloc(1, sizeof(*c));
        c->e = vp_catalog_is_pg(name) ? &vp_cat_pg : &vp_cat_sqlite;
        c->path = vp_catalog_label(name);
        c->target = vp_strdup(name);
        bool fresh = false;
        int r = c->e->open(c, create, readonly, &fresh, err);
        if (r >= 0 && fresh) {
                _cleanup_free_ char *sql = c->e->schema();
                r = exec_transaction(c, sql, err);
        }
        if (r >= 0)
                r = check_schema(c, readonly, err);
        if (r >= 0 && !fresh && !readonly)
                add_history(c);
        if (r < 0) {
                bool file = c->e == &vp_cat_sqlite && c->db;
                vp_catalog_close(c);
                if (fresh && file)
                        unlink(name);
                return r;
        }
        *ret = c;
        return 0;
}

int vp_catalog_open(const char *path, bool create, struct vp_catalog **ret, struct vp_error *err)
{
        return catalog_open(path, create, false, ret, err);
}

int vp_catalog_open_read(const char *path, struct vp_catalog **ret, struct vp_error *err)
{
        return catalog_open(path, false, true, ret, err);
}

bool vp_catalog_has_table(struct vp_catalog *c, const char *name)
{
        _cleanup_stmt_ struct stmt_ref s = { c, NULL };
        if (prepare(c, c->e->has_table_sql, &s, NULL) < 0)
                return false;
        c->e->bind_text(s.s, 1, name);
        return c->e->step(c, s.s) == 1;
}

int vp_catalog_begin(struct vp_catalog *c, struct vp_error *err)
{
        if (c->e->begin(c) < 0)
                return db_err(c, err, "cannot begin a transaction");
        return 0;
}

int vp_catalog_begin_whole(struct vp_catalog *c, struct vp_error *err)
{
        int k = vp_catalog_begin(c, err);
        if (k >= 0)
                c->whole = true;
        return k;
}

bool vp_catalog_in_transaction(struct vp_catalog *c)
{
        return c->e->in_transaction(c);
}

int vp_catalog_commit(struct vp_catalog *c, struct vp_error *err)
{
        c->whole = false;
        return vp_cat_exec(c, "COMMIT;", err);
}

void vp_catalog_rollback(struct vp_catalog *c)
{
        c->whole = false;
        if (c->e->in_transaction(c))
                c->e->exec(c, "ROLLBACK;");
}

int vp_catalog_get_meta(struct vp_catalog *c, const char *key, char **ret, struct vp_error *err)
{
        _cleanup_stmt_ struct stmt_ref s = { c, NULL };
        int r = prepare(c, "SELECT value FROM meta WHERE key = ?1", &s, err);
        if (r < 0)
                return r;
        c->e->bind_text(s.s, 1, key);
        r = c->e->step(c, s.s);
        if (r == 0)
                return vp_err(err, -ENOENT, "catalog has no '%s'", key);
        if (r < 0)
                return db_err(c, err, "read failed");
        *ret = vp_strdup(c->e->text(s.s, 0));
        return 0;
}

int vp_catalog_set_meta(struct vp_catalog *c, const char *key, const char *value, struct vp_error *err)
{
        _cleanup_stmt_ struct stmt_ref s = { c, NULL };
        int r = prepare(c, "INSERT INTO meta(key, value) VALUES(?1, ?2) "
                           "ON CONFLICT(key) DO UPDATE SET value = excluded.value", &s, err);
        if (r < 0)
                return r;
        c->e->bind_text(s.s, 1, key);
        c->e->bind_text(s.s, 2, value);
        if (c->e->step(c, s.s) < 0)
                return db_err(c, err, "write failed");
        return 0;
}

static char **text_field(const struct vp_col *col, void *row)
{
        return (char **)((char *)row + col->offset);
}

static int64_t *int_field(const struct vp_col *col, void *row)
{
        return (int64_t *)((char *)row + col->offset);
}

static void bind_col(struct stmt_ref *s, const struct vp_col *col, const void *row, int idx)
{
        const struct cat_engine *e = s->c->e;
        if (col->type == VP_COL_TEXT) {
                const char *v = *text_field(col, (void *)row);
                e->bind_text(s->s, idx, v ? v : "");
        } else if (col->type == VP_COL_REF && *int_field(col, (void *)row) == 0) {
                e->bind_null(s->s, idx);
        } else {
                e->bind_int(s->s, idx, *int_field(col, (void *)row));
        }
}

static void bind_row(struct stmt_ref *s, const struct vp_table *t, const void *row, int first)
{
        for (size_t i = 1; i < t->ncols; i++)
                bind_col(s, &t->cols[i], row, first + (int)i - 1);
}

static void load_row(struct stmt_ref *s, const struct vp_table *t, void *row)
{
        const struct cat_engine *e = s->c->e;
        memset(row, 0, t->size);
        for (size_t i = 0; i < t->ncols; i++) {
                const struct vp_col *col = &t->cols[i];
                if (col->type == VP_COL_TEXT)
                        *text_field(col, row) = vp_strdup(e->text(s->s, (int)i));
                else
                        *int_field(col, row) = e->integer(s->s, (int)i);
        }
}

char *vp_cat_column_list(const struct vp_table *t, size_t from)
{
        size_t len = 1;
        for (size_t i = from; i < t->ncols; i++)
                len += strlen(t->cols[i].name) + 4;
        char *out = vp_xcalloc(1, len);
        for (size_t i = from; i < t->ncols; i++) {
                if (i > from)
                        strcat(out, ", ");
                strcat(out, "\"");
                strcat(out, t->cols[i].name);
                strcat(out, "\"");
        }
        return out;
}

static bool valid_column(const struct vp_table *t, const char *col)
{
        for (size_t i = 0; i < t->ncols; i++)
                if (streq(t->cols[i].name, col))
                        return true;
        return false;
}

/* ---- what a constraint failure means ---------------------------------- */

/* The number of rows of TABLE whose COL is ID; 0 when that cannot be read.
 * TABLE and COL come from the catalog's own schema. */
static int64_t count_refs(struct vp_catalog *c, const char *table, const char *col, int64_t id)
{
        _cleanup_free_ char *sql = vp_strdupf("SELECT count(*) FROM \"%s\" WHERE \"%s\" = ?1", table, col);
        _cleanup_stmt_ struct stmt_ref s = { c, NULL };
        if (prepare(c, sql, &s, NULL) < 0)
                return 0;
        c->e->bind_int(s.s, 1, id);
        return c->e->step(c, s.s) == 1 ? c->e->integer(s.s, 0) : 0;
}

/* Each foreign key of TABLE: FN(ud, parent table, column, ON DELETE action);
 * a true return stops the walk. */
static void foreign_keys(struct vp_catalog *c, const char *table,
                         bool (*fn)(void *ud, const char *parent, const char *col, const char *on_delete), void *ud)
{
        _cleanup_stmt_ struct stmt_ref s = { c, NULL };
        if (prepare(c, c->e->foreign_keys_sql, &s, NULL) < 0)
                return;
        c->e->bind_text(s.s, 1, table);
        while (c->e->step(c, s.s) == 1) {
                const char *parent = c->e->text(s.s, 0);
                const char *col = c->e->text(s.s, 1);
                const char *on_delete = c->e->text(s.s, 2);
                if (parent && col && fn(ud, parent, col, on_delete ? on_delete : ""))
                        return;
        }
}

struct ref_walk {
        struct vp_catalog *c;
        const struct vp_table *t;      /* the table of the row */
        const char *child;             /* referrers: the table walked */
        const void *row;               /* missing_reference: the row written */
        int64_t id;
        char *out;
        size_t outsz;
};

static bool count_referrer(void *ud, const char *parent, const char *col, const char *on_delete)
{
        struct ref_walk *w = ud;
        /* A reference that becomes NULL does not hold a row back. */
        if (!streq(parent, w->t->name) || streq(on_delete, "SET NULL"))
                return false;
        int64_t n = count_refs(w->c, w->child, col, w->id);
        if (n > 0)
                snprintf(w->out, w->outsz, "%lld %s%s", (long long)n, kind_of(w->child), n == 1 ? "" : "s");
        return n > 0;
}

/* What holds row ID of T back from removal, "N KINDs", into OUT ("" when
 * nothing is found). */
static void referrers(struct vp_catalog *c, const struct vp_table *t, int64_t id, char *out, size_t outsz)
{
        struct ref_walk w = { .c = c, .t = t, .id = id, .out = out, .outsz = outsz };
        out[0] = 0;
        for (size_t i = 0; i < ELEMENTSOF(all_tables) && !out[0]; i++) {
                w.child = all_tables[i]->name;
                foreign_keys(c, w.child, count_referrer, &w);
        }
}

static bool find_missing(void *ud, const char *parent, const char *col, const char *on_delete)
{
        struct ref_walk *w = ud;
        for (size_t i = 1; i < w->t->ncols; i++) {
                const struct vp_col *k = &w->t->cols[i];
                if (k->type == VP_COL_TEXT || !streq(k->name, col))
                        continue;
                int64_t v = *int_field(k, (void *)w->row);
                if ((v != 0 || k->type != VP_COL_REF) && count_refs(w->c, parent, "id", v) == 0) {
                        snprintf(w->out, w->outsz, "%s id %lld", kind_of(parent), (long long)v);
                        return true;
                }
        }
        return false;
}

/* "KIND 'NAME'" of row ID of T, or "KIND ID" for a table without names. */
static void row_label(struct vp_catalog *c, const struct vp_table *t, int64_t id, char *out, size_t outsz)
{
        snprintf(out, outsz, "%s %lld", t->kind, (long long)id);
        if (!valid_column(t, "name"))
                return;
        _cleanup_free_ char *sql = vp_strdupf("SELECT name FROM %s WHERE id = ?1", t->name);
        _cleanup_stmt_ struct stmt_ref s = { c, NULL };
        if (prepare(c, sql, &s, NULL) < 0)
                return;
        c->e->bind_int(s.s, 1, id);
        if (c->e->step(c, s.s) == 1)
                snprintf(out, outsz, "%s '%s'", t->kind, c->e->text(s.s, 0));
}

/* The error of an insert or update of ROW in T that SQLite refused: a
 * duplicate is "already exists", a reference to a row that is not there
 * names it; anything else is SQLite's message after WHAT. */
static int write_failed(struct vp_catalog *c, const struct vp_table *t, const void *row, const char *what,
                        struct vp_error *err)
{
        enum cat_fail f = c->e->fail(c);
        const char *name = *text_field(&t->cols[1], (void *)row);
        if (f == CAT_FAIL_UNIQUE)
                return vp_err(err, -EEXIST, "%s '%s' already exists", t->kind, name ? name : "");
        if (f != CAT_FAIL_FOREIGN_KEY)
                return db_err(c, err, what);
        char ref[128] = "";
        struct ref_walk w = { .c = c, .t = t, .row = row, .out = ref, .outsz = sizeof(ref) };
        foreign_keys(c, t->name, find_missing, &w);
        return vp_err(err, -ENOENT, "%s '%s' refers to %s, which does not exist", t->kind, name ? name : "",
                      ref[0] ? ref : "a row");
}

int vp_row_insert(struct vp_catalog *c, const struct vp_table *t, void *row, struct vp_error *err)
{
        _cleanup_free_ char *cols = vp_cat_column_list(t, 1);
        size_t n = t->ncols - 1;
        _cleanup_free_ char *marks = vp_xcalloc(n, 3);
        for (size_t i = 0; i < n; i++)
                strcat(marks, i ? ",?" : "?");
        /* RETURNING: both engines say the id the row got (SQLite since 3.35). */
        _cleanup_free_ char *sql = vp_strdupf("INSERT INTO %s(%s) VALUES(%s) RETURNING id", t->name, cols, marks);
        _cleanup_stmt_ struct stmt_ref s = { c, NULL };
        int r = prepare(c, sql, &s, err);
        if (r < 0)
                return r;
        bind_row(&s, t, row, 1);
        if (c->e->step(c, s.s) != 1)
                return write_failed(c, t, row, "insert failed", err);
        *int_field(&t->cols[0], row) = c->e->integer(s.s, 0);
        return 0;
}

static int run_select(struct vp_catalog *c, const struct vp_table *t, const char *sql, bool bind,
                      const char *value, bool by_int, int64_t ival, void **ret, size_t *ret_n,
                      struct vp_error *err);

static int select_rows(struct vp_catalog *c, const struct vp_table *t, const char *col,
                       const char *value, bool by_int, int64_t ival, void **ret, size_t *ret_n,
                       struct vp_error *err)
{
        if (col && !valid_column(t, col))
                return vp_err(err, -EINVAL, "no column '%s' in %s", col, t->name);
        _cleanup_free_ char *cols = vp_cat_column_list(t, 0);
        _cleanup_free_ char *sql = col
                ? vp_strdupf("SELECT %s FROM %s WHERE %s = ?1 ORDER BY id", cols, t->name, col)
                : vp_strdupf("SELECT %s FROM %s ORDER BY id", cols, t->name);
        return run_select(c, t, sql, col != NULL, value, by_int, ival, ret, ret_n, err);
}

int vp_row_query(struct vp_catalog *c, const struct vp_table *t, const char *where, int64_t param,
                 void **ret, size_t *ret_n, struct vp_error *err)
{
        _cleanup_free_ char *cols = vp_cat_column_list(t, 0);
        _cleanup_free_ char *sql = vp_strdupf("SELECT %s FROM %s WHERE %s ORDER BY id", cols, t->name, where);
        return run_select(c, t, sql, strstr(where, "?1") != NULL, NULL, true, param, ret, ret_n, err);
}

static int run_select(struct vp_catalog *c, const struct vp_table *t, const char *sql, bool bind,
                      const char *value, bool by_int, int64_t ival, void **ret, size_t *ret_n,
                      struct vp_error *err)
{
        _cleanup_stmt_ struct stmt_ref s = { c, NULL };
        int r = prepare(c, sql, &s, err);
        if (r < 0)
                return r;
        if (bind) {
                if (by_int)
                        c->e->bind_int(s.s, 1, ival);
                else
                        c->e->bind_text(s.s, 1, value);
        }
        size_t n = 0, cap = 0;
        char *rows = NULL;
        for (;;) {
                r = c->e->step(c, s.s);
                if (r == 0)
                        break;
                if (r < 0) {
                        vp_rows_free(t, rows, n);
                        return db_err(c, err, "read failed");
                }
                if (n == cap) {
                        cap = cap ? cap * 2 : 16;
                        char *nr = realloc(rows, cap * t->size);
                        if (!nr)
                                abort();
                        rows = nr;
                }
                load_row(&s, t, rows + n * t->size);
                n++;
        }
        *ret = rows;
        *ret_n = n;
        return 0;
}

int vp_row_list(struct vp_catalog *c, const struct vp_table *t, const char *col, const char *value,
                void **ret, size_t *ret_n, struct vp_error *err)
{
        return select_rows(c, t, col, value, false, 0, ret, ret_n, err);
}

static int get_one(struct vp_catalog *c, const struct vp_table *t, const char *col, const char *value,
                   bool by_int, int64_t ival, void *ret, struct vp_error *err)
{
        void *rows = NULL;
        size_t n = 0;
        int r = select_rows(c, t, col, value, by_int, ival, &rows, &n, err);
        if (r < 0)
                return r;
        if (n == 0) {
                free(rows);
                if (by_int)
                        return vp_err(err, -ENOENT, "unknown %s id %lld", t->kind, (long long)ival);
                return vp_err(err, -ENOENT, "unknown %s '%s'", t->kind, value);
        }
        memcpy(ret, rows, t->size);
        for (size_t i = 1; i < n; i++)
                vp_row_clear(t, (char *)rows + i * t->size);
        free(rows);
        return 0;
}

int vp_row_get(struct vp_catalog *c, const struct vp_table *t, const char *col, const char *value,
               void *ret, struct vp_error *err)
{
        return get_one(c, t, col, value, false, 0, ret, err);
}

int vp_row_get_id(struct vp_catalog *c, const struct vp_table *t, int64_t id, void *ret,
                  struct vp_error *err)
{
        return get_one(c, t, "id", NULL, true, id, ret, err);
}

int vp_row_count(struct vp_catalog *c, const struct vp_table *t, const char *col, const char *value,
                 int64_t *ret, struct vp_error *err)
{
        if (col && !valid_column(t, col))
                return vp_err(err, -EINVAL, "no column '%s' in %s", col, t->name);
        _cleanup_free_ char *sql = col ? vp_strdupf("SELECT count(*) FROM %s WHERE %s = ?1", t->name, col)
                                       : vp_strdupf("SELECT count(*) FROM %s", t->name);
        _cleanup_stmt_ struct stmt_ref s = { c, NULL };
        int r = prepare(c, sql, &s, err);
        if (r < 0)
                return r;
        if (col)
                c->e->bind_text(s.s, 1, value);
        if (c->e->step(c, s.s) != 1)
                return db_err(c, err, "count failed");
        *ret = c->e->integer(s.s, 0);
        return 0;
}

char *vp_cat_update_sql(const struct vp_table *t)
{
        size_t len = 64 + strlen(t->name);
        for (size_t i = 1; i < t->ncols; i++)
                len += strlen(t->cols[i].name) + 8;
        char *sql = vp_xcalloc(1, len);
        int off = snprintf(sql, len, "UPDATE %s SET ", t->name);
        for (size_t i = 1; i < t->ncols; i++)
                off += snprintf(sql + off, len - (size_t)off, "%s\"%s\" = ?%zu", i > 1 ? ", " : "",
                                t->cols[i].name, i);
        snprintf(sql + off, len - (size_t)off, " WHERE id = ?%zu", t->ncols);
        return sql;
}

int vp_row_update(struct vp_catalog *c, const struct vp_table *t, const void *row, struct vp_error *err)
{
        _cleanup_free_ char *sql = vp_cat_update_sql(t);
        _cleanup_stmt_ struct stmt_ref s = { c, NULL };
        int r = prepare(c, sql, &s, err);
        if (r < 0)
                return r;
        bind_row(&s, t, row, 1);
        c->e->bind_int(s.s, (int)t->ncols, *int_field(&t->cols[0], (void *)row));
        if (c->e->step(c, s.s) < 0)
                return write_failed(c, t, row, "update failed", err);
        return 0;
}

static const struct vp_col *col_named(const struct vp_table *t, const char *name)
{
        for (size_t i = 1; i < t->ncols; i++)
                if (streq(t->cols[i].name, name))
                        return &t->cols[i];
        return NULL;
}

int vp_row_update_cols(struct vp_catalog *c, const struct vp_table *t, const void *row, const char *const *cols,
                       struct vp_error *err)
{
        size_t n = 0, len = 64 + strlen(t->name);
        for (; cols[n]; n++) {
                if (!col_named(t, cols[n]))
                        return vp_err(err, -EINVAL, "no column '%s' in %s", cols[n], t->name);
                len += strlen(cols[n]) + 16;
        }
        if (n == 0)
                return 0;
        _cleanup_free_ char *sql = vp_xcalloc(1, len);
        int off = snprintf(sql, len, "UPDATE %s SET ", t->name);
        for (size_t i = 0; i < n; i++)
                off += snprintf(sql + off, len - (size_t)off, "%s\"%s\" = ?%zu", i ? ", " : "", cols[i], i + 1);
        snprintf(sql + off, len - (size_t)off, " WHERE id = ?%zu", n + 1);
        _cleanup_stmt_ struct stmt_ref s = { c, NULL };
        int r = prepare(c, sql, &s, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                bind_col(&s, col_named(t, cols[i]), row, (int)i + 1);
        c->e->bind_int(s.s, (int)n + 1, *int_field(&t->cols[0], (void *)row));
        if (c->e->step(c, s.s) < 0)
                return write_failed(c, t, row, "update failed", err);
        return 0;
}

int vp_row_delete(struct vp_catalog *c, const struct vp_table *t, int64_t id, struct vp_error *err)
{
        _cleanup_free_ char *sql = vp_strdupf("DELETE FROM %s WHERE id = ?1", t->name);
        _cleanup_stmt_ struct stmt_ref s = { c, NULL };
        int r = prepare(c, sql, &s, err);
        if (r < 0)
                return r;
        c->e->bind_int(s.s, 1, id);
        if (c->e->step(c, s.s) < 0) {
                if (c->e->fail(c) != CAT_FAIL_FOREIGN_KEY)
                        return db_err(c, err, "delete failed");
                char who[128], what[160];
                referrers(c, t, id, who, sizeof(who));
                row_label(c, t, id, what, sizeof(what));
                return vp_err(err, -EBUSY, "%s is still used by %s", what, who[0] ? who : "another row");
        }
        return 0;
}

void vp_row_clear(const struct vp_table *t, void *row)
{
        if (!row)
                return;
        for (size_t i = 0; i < t->ncols; i++)
                if (t->cols[i].type == VP_COL_TEXT) {
                        char **f = text_field(&t->cols[i], row);
                        free(*f);
                        *f = NULL;
                }
}

void vp_rows_free(const struct vp_table *t, void *rows, size_t n)
{
        for (size_t i = 0; i < n; i++)
                vp_row_clear(t, (char *)rows + i * t->size);
        free(rows);
}

/* The column of T named NAME of TYPE, or NULL. */
static const struct vp_col *column(const struct vp_table *t, const char *name, enum vp_col_type type)
{
        for (size_t i = 0; i < t->ncols; i++)
                if (t->cols[i].type == type && streq(t->cols[i].name, name))
                        return &t->cols[i];
        return NULL;
}

void *vp_rows_find_id(const struct vp_table *t, const void *rows, size_t n, int64_t id)
{
        const struct vp_col *c = column(t, "id", VP_COL_INT);
        for (size_t i = 0; c && i < n; i++) {
                char *row = (char *)rows + i * t->size;
                if (*(const int64_t *)(row + c->offset) == id)
                        return row;
        }
        return NULL;
}

void *vp_rows_find_name(const struct vp_table *t, const void *rows, size_t n, const char *name)
{
        const struct vp_col *c = column(t, "name", VP_COL_TEXT);
        for (size_t i = 0; c && name && i < n; i++) {
                char *row = (char *)rows + i * t->size;
                const char *v = *(char *const *)(row + c->offset);
                if (v && streq(v, name))
                        return row;
        }
        return NULL;
}

struct json_object *vp_row_to_json(const struct vp_table *t, const void *row)
{
        struct json_object *o = json_object_new_object();
        for (size_t i = 0; i < t->ncols; i++) {
                const struct vp_col *col = &t->cols[i];
                if (col->type == VP_COL_TEXT) {
                        const char *v = *text_field(col, (void *)row);
                        json_object_object_add(o, col->name, json_object_new_string(v ? v : ""));
                } else {
                        json_object_object_add(o, col->name,
                                               json_object_new_int64(*int_field(col, (void *)row)));
                }
        }
        return o;
}

char *vp_now_iso(void)
{
        struct timespec ts;
        struct tm tm;
        char buf[32];

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
        return vp_strdup(buf);
}

/* ---- events -------------------------------------------------------------- */

int vp_catalog_data_version(struct vp_catalog *c, int64_t *ret, struct vp_error *err)
{
        if (c->e->data_version(c, ret) < 0)
                return db_err(c, err, "read failed");
        return 0;
}

int vp_event_last_id(struct vp_catalog *c, int64_t *ret, struct vp_error *err)
{
        _cleanup_stmt_ struct stmt_ref s = { c, NULL };
        int r = prepare(c, "SELECT coalesce(max(id), 0) FROM events", &s, err);
        if (r < 0)
                return r;
        if (c->e->step(c, s.s) != 1)
                return db_err(c, err, "read failed");
        *ret = c->e->integer(s.s, 0);
        return 0;
}

int vp_event_list_after(struct vp_catalog *c, int64_t after, size_t limit, struct vp_event **ret, size_t *ret_n,
                        struct vp_error *err)
{
        /* The ids are dense but for rolled back writes: a window of LIMIT ids
         * holds at most LIMIT events. */
        _cleanup_free_ char *where = vp_strdupf("id > ?1 AND id <= ?1 + %zu", limit);
        return vp_row_query(c, &vp_table_event, where, after, (void **)ret, ret_n, err);
}

int vp_event_add(struct vp_catalog *c, struct vp_event *e, struct vp_error *err)
{
        _cleanup_free_ char *at = NULL;
        if (!e->at) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                struct tm tm;
                gmtime_r(&ts.tv_sec, &tm);
                char buf[40];
                strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
                at = vp_strdupf("%s.%03ldZ", buf, ts.tv_nsec / 1000000);
                e->at = at;
        }
        int r = vp_row_insert(c, &vp_table_event, e, err);
        if (at)
                e->at = NULL;
        return r;
}

int vp_event_prune(struct vp_catalog *c, int64_t keep, struct vp_error *err)
{
        _cleanup_stmt_ struct stmt_ref s = { c, NULL };
        int r = prepare(c, "DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - ?1", &s, err);
        if (r < 0)
                return r;
        c->e->bind_int(s.s, 1, keep);
        if (c->e->step(c, s.s) < 0)
                return db_err(c, err, "prune failed");
        return 0;
}
