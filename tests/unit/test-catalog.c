#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "catalog.h"
#include "core.h"
#include "history.h"
#include "host.h"
#include "tmp-catalog.h"

static void test_missing_not_created(void **state)
{
        struct vp_catalog *c = NULL;
        struct vp_error err = { 0 };
        assert_int_equal(vp_catalog_open(path, false, &c, &err), -ENOENT);
        assert_non_null(strstr(err.msg, "vpool init"));
        struct stat st;
        assert_int_equal(stat(path, &st), -1);
}

static void test_rows(void **state)
{
        struct vp_catalog *c = NULL;
        struct vp_error err = { 0 };
        assert_int_equal(vp_catalog_open(path, true, &c, &err), 0);
        struct vp_env e = { .name = "hosta", .uri = "qemu:///system", .arch = "x86_64", .cpus = 2,
                            .memory_kib = 1024 };
        assert_int_equal(vp_row_insert(c, &vp_table_env, &e, &err), 0);
        assert_true(e.id > 0);
        struct vp_env dup = { .name = "hosta", .uri = "x" };
        assert_int_equal(vp_row_insert(c, &vp_table_env, &dup, &err), -EEXIST);
        assert_string_equal(err.msg, "env 'hosta' already exists");

        struct vp_env got = { 0 };
        assert_int_equal(vp_row_get(c, &vp_table_env, "name", "hosta", &got, &err), 0);
        assert_string_equal(got.uri, "qemu:///system");
        assert_int_equal(got.cpus, 2);
        assert_string_equal(got.machines, "");
        free(got.uri);
        got.uri = strdup("qemu+ssh://h/system");
        assert_int_equal(vp_row_update(c, &vp_table_env, &got, &err), 0);
        vp_row_clear(&vp_table_env, &got);
        assert_int_equal(vp_row_get_id(c, &vp_table_env, e.id, &got, &err), 0);
        assert_string_equal(got.uri, "qemu+ssh://h/system");
        vp_row_clear(&vp_table_env, &got);

        assert_int_equal(vp_row_get(c, &vp_table_env, "name", "nope", &got, &err), -ENOENT);
        assert_string_equal(err.msg, "unknown env 'nope'");
        /* A hostile value is data, never SQL. */
        assert_int_equal(vp_row_get(c, &vp_table_env, "name", "x' OR '1'='1", &got, &err), -ENOENT);
        /* Only known columns may be named. */
        assert_int_equal(vp_row_get(c, &vp_table_env, "name; DROP TABLE envs", "x", &got, &err), -EINVAL);

        /* A partial update rewrites the columns it names and leaves the
         * rest as stored, however the struct says otherwise; twice, so the
         * second runs the statement the first left prepared. */
        for (int round = 0; round < 2; round++) {
                /* The second round puts back what the checks below expect. */
                int64_t cpus = round ? 2 : 8, mem = round ? 1024 : 4096;
                struct vp_env part = { .id = e.id, .name = (char *)"renamed", .uri = (char *)"ignored",
                                       .cpus = cpus, .memory_kib = mem };
                static const char *const cols[] = { "cpus", "memory_kib", NULL };
                assert_int_equal(vp_row_update_cols(c, &vp_table_env, &part, cols, &err), 0);
                assert_int_equal(vp_row_get_id(c, &vp_table_env, e.id, &got, &err), 0);
                assert_string_equal(got.name, "hosta");
                assert_string_equal(got.uri, "qemu+ssh://h/system");
                assert_int_equal(got.cpus, cpus);
                assert_int_equal(got.memory_kib, mem);
                vp_row_clear(&vp_table_env, &got);
        }
        static const char *const bad[] = { "cpus", "cpus = 0; --", NULL };
        assert_int_equal(vp_row_update_cols(c, &vp_table_env, &e, bad, &err), -EINVAL);
        assert_string_equal(err.msg, "no column 'cpus = 0; --' in envs");

        /* Rollback leaves nothing. */
        assert_int_equal(vp_catalog_begin(c, &err), 0);
        struct vp_env e2 = { .name = "hostb", .uri = "u" };
        assert_int_equal(vp_row_insert(c, &vp_table_env, &e2, &err), 0);
        vp_catalog_rollback(c);
        int64_t n = -1;
        assert_int_equal(vp_row_count(c, &vp_table_env, NULL, NULL, &n, &err), 0);
        assert_int_equal(n, 1);

        void *rows;
        size_t nrows;
        assert_int_equal(vp_row_list(c, &vp_table_env, NULL, NULL, &rows, &nrows, &err), 0);
        assert_int_equal(nrows, 1);
        struct json_object *o = vp_row_to_json(&vp_table_env, rows);
        assert_string_equal(json_object_get_string(json_object_object_get(o, "name")), "hosta");
        assert_int_equal(json_object_get_int64(json_object_object_get(o, "cpus")), 2);
        json_object_put(o);
        /* Rows read are found again by id and by name; what is not there is NULL. */
        struct vp_env *found = vp_rows_find_id(&vp_table_env, rows, nrows, e.id);
        assert_ptr_equal(found, rows);
        assert_ptr_equal(vp_rows_find_name(&vp_table_env, rows, nrows, "hosta"), rows);
        assert_null(vp_rows_find_id(&vp_table_env, rows, nrows, e.id + 1000));
        assert_null(vp_rows_find_name(&vp_table_env, rows, nrows, "hostb"));
        assert_null(vp_rows_find_name(&vp_table_env, rows, nrows, NULL));
        /* The journal has no name column: nothing is found by name there. */
        assert_null(vp_rows_find_name(&vp_table_journal, rows, 0, "hosta"));
        vp_rows_free(&vp_table_env, rows, nrows);

        /* A pool pins its env: the foreign key refuses the delete. */
        struct vp_image im = { .name = "img", .path = "/p", .format = "qcow2", .sha256 = "00" };
        struct vp_profile pr = { .name = "pc", .machine = "pc", .disk_bus = "ide", .nic = "e1000" };
        assert_int_equal(vp_row_insert(c, &vp_table_image, &im, &err), 0);
        assert_int_equal(vp_row_insert(c, &vp_table_profile, &pr, &err), 0);
        struct vp_pool p = { .name = "desk", .image_id = im.id, .env_id = e.id, .profile_id = pr.id, .size = 1,
                             .state = "active" };
        assert_int_equal(vp_row_insert(c, &vp_table_pool, &p, &err), 0);
        assert_int_equal(vp_row_delete(c, &vp_table_env, e.id, &err), -EBUSY);
        vp_catalog_close(c);
        /* Reopen: data persisted. */
        assert_int_equal(vp_catalog_open(path, false, &c, &err), 0);
        assert_int_equal(vp_row_count(c, &vp_table_pool, "name", "desk", &n, &err), 0);
        assert_int_equal(n, 1);
        vp_catalog_close(c);
}

static void test_damaged(void **state)
{
        struct vp_catalog *c = NULL;
        struct vp_error err = { 0 };
        char p2[160];
        snprintf(p2, sizeof(p2), "%s/garbage.db", dir);
        int fd = open(p2, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_int_equal(write(fd, "this is not a database at all, not even close......", 51), 51);
        close(fd);
        assert_true(vp_catalog_open(p2, false, &c, &err) < 0);
        assert_non_null(strstr(err.msg, p2));
        struct stat st;
        assert_int_equal(stat(p2, &st), 0);
        assert_int_equal(st.st_size, 51);   /* never rewritten */

        snprintf(p2, sizeof(p2), "%s/empty.db", dir);
        fd = open(p2, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        close(fd);
        assert_int_equal(vp_catalog_open(p2, true, &c, &err), -EBADMSG);
        assert_non_null(strstr(err.msg, "empty"));
}

/* A catalog DIR/NAME (its path into P) holding image 'gold' with STAMP,
 * then SQL run on the file directly: what an older vpool left. */
static void old_catalog(const char *name, const char *stamp, const char *sql, char p[160])
{
        struct vp_catalog *c = NULL;
        struct vp_error err = { 0 };
        snprintf(p, 160, "%s/%s", dir, name);
        assert_int_equal(vp_catalog_open(p, true, &c, &err), 0);
        struct vp_image im = {
                .name = (char *)"gold", .path = (char *)"/s/images/gold.qcow2", .format = (char *)"qcow2",
                .sha256 = (char *)"00", .created = (char *)"2026-01-01T00:00:00Z", .stamp = (char *)stamp,
        };
        assert_int_equal(vp_row_insert(c, &vp_table_image, &im, &err), 0);
        vp_catalog_close(c);
        sqlite3 *db;
        assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
}

/* What schema 11 added: the envs' host-failure policy. */
#define SCHEMA_10_SQL \
        "ALTER TABLE envs DROP COLUMN on_host_failure; ALTER TABLE envs DROP COLUMN evacuate_to;" \
        "ALTER TABLE envs DROP COLUMN grace;"
/* What schema 10 added: the inspections. */
#define SCHEMA_9_SQL SCHEMA_10_SQL "DROP TABLE inspections;"
/* What schema 9 added: the policies. */
#define SCHEMA_8_SQL SCHEMA_9_SQL "DROP TABLE retirements; ALTER TABLE envs DROP COLUMN on_maintenance;"
/* What schema 8 added: the history's reason. */
#define SCHEMA_7_SQL SCHEMA_8_SQL "ALTER TABLE history DROP COLUMN reason;"
/* What schema 7 added: the tokens and the history's via. */
#define SCHEMA_6_SQL SCHEMA_7_SQL "DROP TABLE tokens; ALTER TABLE history DROP COLUMN via;"

/* The tables as schema 4 had them: no hosts, no host columns. SQLite
 * cannot drop a column a foreign key names, so the two tables that refer
 * to hosts are rebuilt the old way (with the trigger migration_vms had). */
#define SCHEMA_4_VMS_SQL \
        "CREATE TABLE vms_4(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE," \
        " pool_id INTEGER NOT NULL REFERENCES pools(id), idx INTEGER NOT NULL," \
        " env_id INTEGER NOT NULL REFERENCES envs(id)," \
        " profile_id INTEGER NOT NULL REFERENCES profiles(id), uuid TEXT NOT NULL UNIQUE," \
        " macs TEXT NOT NULL, hostname TEXT, delta_path TEXT NOT NULL, owner TEXT NOT NULL," \
        " generation INTEGER NOT NULL, created TEXT);" \
        "INSERT INTO vms_4 SELECT id, name, pool_id, idx, env_id, profile_id, uuid, macs, hostname, delta_path," \
        " owner, generation, created FROM vms;" \
        "DROP TABLE vms; ALTER TABLE vms_4 RENAME TO vms;" \
        "CREATE INDEX vms_pool ON vms(pool_id); CREATE INDEX vms_env ON vms(env_id);"
/* Schema 5 had no events either: the table and the triggers that fill it go. */
#define SCHEMA_5_SQL \
        SCHEMA_6_SQL \
        "DROP TRIGGER events_step; DROP TRIGGER events_migration_new; DROP TRIGGER events_migration;" \
        "DROP TRIGGER events_pool_new; DROP TRIGGER events_pool; DROP TRIGGER events_pool_gone;" \
        "DROP TRIGGER events_host_maintenance; DROP TRIGGER events_host_reach; DROP TABLE events;"
#define SCHEMA_4_SQL \
        SCHEMA_5_SQL \
        SCHEMA_4_VMS_SQL \
        "CREATE TABLE migration_vms_4(id INTEGER PRIMARY KEY, vm_name TEXT NOT NULL," \
        " migration_id INTEGER NOT NULL REFERENCES migrations(id), vm_id INTEGER NOT NULL," \
        " step TEXT NOT NULL, source_running INTEGER NOT NULL," \
        " src_env_id INTEGER REFERENCES envs(id) ON DELETE SET NULL," \
        " src_profile_id INTEGER REFERENCES profiles(id) ON DELETE SET NULL, src_env TEXT," \
        " generation INTEGER NOT NULL, error TEXT, updated TEXT, UNIQUE(migration_id, vm_id));" \
        "INSERT INTO migration_vms_4 SELECT id, vm_name, migration_id, vm_id, step, source_running, src_env_id," \
        " src_profile_id, src_env, generation, error, updated FROM migration_vms;" \
        "DROP TABLE migration_vms; ALTER TABLE migration_vms_4 RENAME TO migration_vms;" \
        "CREATE TRIGGER migration_vms_names AFTER INSERT ON migration_vms BEGIN UPDATE migration_vms SET" \
        " src_env = (SELECT name FROM envs WHERE id = NEW.src_env_id) WHERE id = NEW.id; END;" \
        "DROP TABLE hosts; ALTER TABLE fences DROP COLUMN host_name;"

/* The one text value QUERY reads from the catalog file P, read directly. */
static void assert_sql_text(const char *p, const char *query, const char *want)
{
        sqlite3 *db;
        sqlite3_stmt *s;
        assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, query, -1, &s, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(s), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(s, 0), want);
        sqlite3_finalize(s);
        sqlite3_close(db);
}

/* A catalog of schema 1 (images without their stamp, envs without fence
 * agents, no fences) is upgraded in place on open, its rows kept; one of an
 * unknown schema is refused untouched. */
static void test_upgrade(void **state)
{
        struct vp_catalog *c = NULL;
        struct vp_error err = { 0 };
        char p2[160];
        old_catalog("old.db", NULL, SCHEMA_4_SQL "ALTER TABLE images DROP COLUMN stamp;"
                                    "ALTER TABLE envs DROP COLUMN fence_cmd; DROP TABLE fences;"
                                    "DROP INDEX history_at; DROP TABLE history;"
                                    "UPDATE meta SET value = '1' WHERE key = 'schema';", p2);

        assert_int_equal(vp_catalog_open(p2, false, &c, &err), 0);
        struct vp_image got = { 0 };
        assert_int_equal(vp_row_get(c, &vp_table_image, "name", "gold", &got, &err), 0);
        assert_string_equal(got.path, "/s/images/gold.qcow2");
        assert_true(!got.stamp || !*got.stamp);
        free(got.stamp);
        got.stamp = strdup("1:2:3:4.5:6.7");
        assert_int_equal(vp_row_update(c, &vp_table_image, &got, &err), 0);
        vp_row_clear(&vp_table_image, &got);
        char *v = NULL;
        assert_int_equal(vp_catalog_get_meta(c, "schema", &v, &err), 0);
        assert_string_equal(v, "11");
        free(v);
        struct vp_env e = { .name = (char *)"dc1", .uri = (char *)"test:///default",
                            .fence_cmd = (char *)"[\"/usr/sbin/fence_ipmilan\"]" };
        assert_int_equal(vp_row_insert(c, &vp_table_env, &e, &err), 0);
        struct vp_fence f = { .migration_id = 1, .env_name = (char *)"dc1", .method = (char *)"operator",
                              .output = (char *)"root", .fenced = 1, .at = (char *)"2026-01-01T00:00:00Z" };
        assert_int_equal(vp_row_insert(c, &vp_table_fence, &f, &err), 0);
        /* It had no history yet: the upgrade made it, with via. */
        struct vp_history h = { .at = (char *)"2026-01-01T00:00:00Z", .command = (char *)"vpool env add dc1",
                                .outcome = (char *)"ok", .via = (char *)"api" };
        assert_int_equal(vp_row_insert(c, &vp_table_history, &h, &err), 0);
        vp_catalog_close(c);

        sqlite3 *db;
        assert_int_equal(sqlite3_open(p2, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "UPDATE meta SET value = '99' WHERE key = 'schema';", NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);
        assert_int_equal(vp_catalog_open(p2, false, &c, &err), -EBADMSG);
        assert_non_null(strstr(err.msg, "schema"));
}

/* An upgrade step that fails leaves the catalog as it was, at its old
 * schema with its rows: each step is one transaction with its version. */
static void test_upgrade_step_fails(void **state)
{
        struct vp_error err = { 0 };
        char p2[160];
        /* Schema 1 by its number, yet the column the step adds is there:
         * the step's ALTER TABLE fails. */
        old_catalog("half.db", "1:2", "UPDATE meta SET value = '1' WHERE key = 'schema';", p2);
        for (int i = 0; i < 2; i++) {
                struct vp_catalog *c = NULL;
                assert_true(vp_catalog_open(p2, false, &c, &err) < 0);
                assert_null(c);
                assert_non_null(strstr(err.msg, p2));
                assert_non_null(strstr(err.msg, "stamp"));
        }
        assert_sql_text(p2, "SELECT value FROM meta WHERE key = 'schema'", "1");
        assert_sql_text(p2, "SELECT stamp FROM images WHERE name = 'gold'", "1:2");
}

/* A catalog of schema 2 (migrations holding every env and profile they
 * used, no fence agents) is upgraded: its migrations name them, and a finished one no
 * longer keeps its env from removal. */
static void test_upgrade_migration_names(void **state)
{
        struct vp_catalog *c = NULL;
        struct vp_error err = { 0 };
        char p2[160];
        old_catalog("v2.db", "1:2",
                    SCHEMA_5_SQL SCHEMA_4_VMS_SQL "DROP TABLE hosts;"
                    "DROP TABLE migration_vms; DROP TABLE migrations; DROP TABLE fences;"
                    "ALTER TABLE envs DROP COLUMN fence_cmd;"
                    "CREATE TABLE migrations(id INTEGER PRIMARY KEY, pool_name TEXT NOT NULL,"
                    " pool_id INTEGER NOT NULL, from_env_id INTEGER NOT NULL REFERENCES envs(id),"
                    " to_env_id INTEGER NOT NULL REFERENCES envs(id),"
                    " from_profile_id INTEGER NOT NULL REFERENCES profiles(id),"
                    " to_profile_id INTEGER NOT NULL REFERENCES profiles(id), state TEXT NOT NULL,"
                    " parallel INTEGER, shutdown_timeout INTEGER, source_fenced INTEGER NOT NULL DEFAULT 0,"
                    " total INTEGER, created TEXT, updated TEXT);"
                    "CREATE INDEX migrations_pool ON migrations(pool_id);"
                    "CREATE TABLE migration_vms(id INTEGER PRIMARY KEY, vm_name TEXT NOT NULL,"
                    " migration_id INTEGER NOT NULL REFERENCES migrations(id), vm_id INTEGER NOT NULL,"
                    " step TEXT NOT NULL, source_running INTEGER NOT NULL, src_env_id INTEGER NOT NULL,"
                    " src_profile_id INTEGER NOT NULL, generation INTEGER NOT NULL, error TEXT, updated TEXT,"
                    " UNIQUE(migration_id, vm_id));"
                    "INSERT INTO envs(id, name, uri) VALUES(1, 'old', 'u'), (2, 'new', 'u');"
                    "INSERT INTO profiles(id, name, machine, disk_bus, nic) VALUES(1, 'pc', 'pc', 'ide', 'e1000');"
                    "INSERT INTO migrations VALUES(7, 'desk', 3, 1, 2, 1, 1, 'done', 1, 60, 0, 1, 'a', 'b');"
                    "INSERT INTO migration_vms VALUES(1, 'desk-001', 7, 1, 'done', 1, 1, 1, 3, '', 'b');"
                    "UPDATE meta SET value = '2' WHERE key = 'schema';",
                    p2);
        assert_int_equal(vp_catalog_open(p2, false, &c, &err), 0);
        struct vp_ctx ctx = { .cat = c };
        assert_int_equal(vp_env_rm(&ctx, "old", &err), 0);
        struct vp_migration m = { 0 };
        assert_int_equal(vp_row_get_id(c, &vp_table_migration, 7, &m, &err), 0);
        assert_string_equal(m.from_env, "old");
        assert_string_equal(m.to_env, "new");
        assert_int_equal(m.from_env_id, 0);
        assert_int_equal(m.to_env_id, 2);
        vp_row_clear(&vp_table_migration, &m);
        struct vp_migvm mv = { 0 };
        assert_int_equal(vp_row_get_id(c, &vp_table_migvm, 1, &mv, &err), 0);
        assert_string_equal(mv.src_env, "old");
        vp_row_clear(&vp_table_migvm, &mv);
        vp_catalog_close(c);
        assert_sql_text(p2, "SELECT value FROM meta WHERE key = 'schema'", "11");
}

/* The id of the one host of env ENV_ID, which must have exactly one. */
static int64_t only_host(struct vp_ctx *ctx, int64_t env_id, const char *name, const char *uri)
{
        struct vp_error err = { 0 };
        struct vp_host *hs = NULL;
        size_t n = 0;
        assert_int_equal(vp_env_hosts(ctx, env_id, &hs, &n, &err), 0);
        assert_int_equal(n, 1);
        assert_string_equal(hs[0].name, name);
        assert_string_equal(hs[0].uri, uri);
        assert_int_equal(hs[0].maintenance, 0);
        assert_string_equal(hs[0].unreachable, "");
        int64_t id = hs[0].id;
        vp_rows_free(&vp_table_host, hs, n);
        return id;
}

/* A catalog of schema 4 (one URI per env) is upgraded: each env becomes a
 * cluster of one host named after it, with its URI and what it recorded of
 * the machine; every VM is on its env's host, and a migration's VM left the
 * host of its source env (where it went is not known). */
/* A catalog of schema 5 gains the event stream on open: the triggers
 * record a pool's life and a host's maintenance, and ids keep growing
 * after the oldest events are pruned. */
static void test_upgrade_events(void **state)
{
        struct vp_catalog *c = NULL;
        struct vp_error err = { 0 };
        char p2[160];
        old_catalog("v5.db", "1:2", SCHEMA_5_SQL "UPDATE meta SET value = '5' WHERE key = 'schema';", p2);
        assert_int_equal(vp_catalog_open(p2, false, &c, &err), 0);
        int64_t last = -1;
        assert_int_equal(vp_event_last_id(c, &last, &err), 0);
        assert_int_equal(last, 0);
        vp_catalog_close(c);
        sqlite3 *db;
        assert_int_equal(sqlite3_open(p2, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db,
                                      "INSERT INTO envs(id, name, uri) VALUES(1, 'e', 'qemu:///system');"
                                      "INSERT INTO hosts(env_id, name, uri) VALUES(1, 'h1', 'qemu:///system');"
                                      "INSERT INTO profiles(id, name, machine, disk_bus, nic) VALUES(1, 'pc', 'pc',"
                                      " 'ide', 'e1000');"
                                      "INSERT INTO pools(id, name, image_id, env_id, profile_id, size, state) VALUES"
                                      " (1, 'desk', 1, 1, 1, 2, 'creating');"
                                      "UPDATE pools SET state = 'active';"
                                      "UPDATE pools SET state = 'active';"
                                      "UPDATE hosts SET maintenance = 1;"
                                      "DELETE FROM pools;",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);
        assert_int_equal(vp_catalog_open(p2, false, &c, &err), 0);
        struct vp_event *evs = NULL;
        size_t n = 0;
        assert_int_equal(vp_event_list_after(c, 0, 100, &evs, &n, &err), 0);
        static const char *const want[][3] = {
                { "pool", "desk", "creating" }, { "pool", "desk", "active" }, { "host", "e/h1", "maintenance" },
                { "pool", "desk", "removed" },
        };
        assert_int_equal(n, ELEMENTSOF(want));
        for (size_t i = 0; i < n; i++) {
                assert_int_equal(evs[i].id, (int64_t)i + 1);
                assert_string_equal(evs[i].kind, want[i][0]);
                assert_string_equal(evs[i].subject, want[i][1]);
                assert_string_equal(evs[i].state, want[i][2]);
        }
        vp_rows_free(&vp_table_event, evs, n);
        struct vp_event e = { .kind = (char *)"job", .subject = (char *)"7", .state = (char *)"done" };
        assert_int_equal(vp_event_prune(c, 1, &err), 0);
        assert_int_equal(vp_event_add(c, &e, &err), 0);
        assert_int_equal(e.id, 5);
        assert_int_equal(vp_event_list_after(c, 0, 100, &evs, &n, &err), 0);
        assert_int_equal(n, 2);
        assert_int_equal(evs[0].id, 4);
        assert_non_null(strstr(evs[1].at, "Z"));
        vp_rows_free(&vp_table_event, evs, n);
        vp_catalog_close(c);
}

static void test_upgrade_hosts(void **state)
{
        struct vp_catalog *c = NULL;
        struct vp_error err = { 0 };
        char p2[160];
        old_catalog("v4.db", "1:2",
                    SCHEMA_4_SQL
                    "INSERT INTO envs(id, name, uri, hostname, arch, cpus, memory_kib, created) VALUES"
                    " (1, 'old', 'qemu+tls://a.example/system', 'a', 'x86_64', 4, 8192, '2026-01-01T00:00:00Z'),"
                    " (2, 'new', 'qemu:///system', 'b', 'x86_64', 8, 16384, '2026-01-02T00:00:00Z');"
                    "INSERT INTO profiles(id, name, machine, disk_bus, nic) VALUES(1, 'pc', 'pc', 'ide', 'e1000');"
                    "INSERT INTO pools(id, name, image_id, env_id, profile_id, size, state) VALUES"
                    " (1, 'desk', 1, 1, 1, 2, 'migrating'), (2, 'lab', 1, 2, 1, 1, 'active');"
                    "INSERT INTO vms(id, name, pool_id, idx, env_id, profile_id, uuid, macs, delta_path, owner,"
                    " generation) VALUES (1, 'desk-001', 1, 1, 1, 1, 'u1', 'm1', '/d1', 'vm:desk-001', 1),"
                    " (2, 'desk-002', 1, 2, 2, 1, 'u2', 'm2', '/d2', 'vm:desk-002', 3),"
                    " (3, 'lab-001', 2, 1, 2, 1, 'u3', 'm3', '/d3', 'vm:lab-001', 1);"
                    "INSERT INTO migrations(id, pool_name, pool_id, from_env_id, to_env_id, from_profile_id,"
                    " to_profile_id, state, total) VALUES(7, 'desk', 1, 1, 2, 1, 1, 'running', 2);"
                    "INSERT INTO migration_vms(id, vm_name, migration_id, vm_id, step, source_running, src_env_id,"
                    " src_profile_id, generation) VALUES(1, 'desk-002', 7, 2, 'done', 0, 1, 1, 3),"
                    " (2, 'desk-001', 7, 1, 'pending', 0, 1, 1, 1);"
                    "UPDATE meta SET value = '4' WHERE key = 'schema';",
                    p2);
        assert_int_equal(vp_catalog_open(p2, false, &c, &err), 0);
        struct vp_ctx ctx = { .cat = c };
        int64_t h_old = only_host(&ctx, 1, "old", "qemu+tls://a.example/system");
        int64_t h_new = only_host(&ctx, 2, "new", "qemu:///system");
        assert_true(h_old != h_new);
        struct vp_host h = { 0 };
        assert_int_equal(vp_row_get_id(c, &vp_table_host, h_old, &h, &err), 0);
        assert_string_equal(h.hostname, "a");
        assert_int_equal(h.cpus, 4);
        assert_int_equal(h.memory_kib, 8192);
        assert_string_equal(h.created, "2026-01-01T00:00:00Z");
        vp_row_clear(&vp_table_host, &h);

        static const struct {
                const char *vm;
                int64_t env;
        } want[] = { { "desk-001", 1 }, { "desk-002", 2 }, { "lab-001", 2 } };
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                struct vp_vm vm = { 0 };
                assert_int_equal(vp_row_get(c, &vp_table_vm, "name", want[i].vm, &vm, &err), 0);
                assert_int_equal(vm.host_id, want[i].env == 1 ? h_old : h_new);
                vp_row_clear(&vp_table_vm, &vm);
        }
        for (int64_t id = 1; id <= 2; id++) {
                struct vp_migvm mv = { 0 };
                assert_int_equal(vp_row_get_id(c, &vp_table_migvm, id, &mv, &err), 0);
                assert_int_equal(mv.src_host_id, h_old);
                assert_int_equal(mv.dst_host_id, 0);
                vp_row_clear(&vp_table_migvm, &mv);
        }
        /* The hosts are a cluster's now: a second one is added beside. */
        struct vp_host extra = { .env_id = 2, .name = (char *)"b2", .uri = (char *)"qemu+tls://b2/system",
                                 .unreachable = (char *)"" };
        assert_int_equal(vp_row_insert(c, &vp_table_host, &extra, &err), 0);
        vp_catalog_close(c);
        assert_sql_text(p2, "SELECT value FROM meta WHERE key = 'schema'", "11");
}

/* A catalog of schema 6 (no API) is upgraded: it gets the tokens, and its
 * history rows, all from the command line, read as through cli. */
static void test_upgrade_tokens(void **state)
{
        struct vp_catalog *c = NULL;
        struct vp_error err = { 0 };
        char p2[160];
        old_catalog("v6.db", "1:2",
                    SCHEMA_6_SQL
                    "INSERT INTO history(id, at, user, command, noun, verb, outcome)"
                    " VALUES(3, '2026-01-01T00:00:00Z', 'alice', 'vpool image add gold', 'image', 'add', 'ok');"
                    "UPDATE meta SET value = '6' WHERE key = 'schema';",
                    p2);
        /* Reading alone does not upgrade. */
        assert_int_equal(vp_catalog_open_read(p2, &c, &err), -EROFS);
        assert_int_equal(vp_catalog_open(p2, false, &c, &err), 0);
        struct vp_history h = { 0 };
        assert_int_equal(vp_row_get_id(c, &vp_table_history, 3, &h, &err), 0);
        assert_string_equal(h.user, "alice");
        assert_int_equal(vp_history_via(&h), VP_VIA_CLI);
        vp_row_clear(&vp_table_history, &h);
        struct vp_token t = { .name = (char *)"ci", .role = (char *)"viewer", .hash = (char *)"ab",
                              .created = (char *)"2026-01-02T00:00:00Z", .last_used = (char *)"" };
        assert_int_equal(vp_row_insert(c, &vp_table_token, &t, &err), 0);
        struct vp_token dup = { .name = (char *)"ci", .role = (char *)"admin", .hash = (char *)"cd",
                                .created = (char *)"2026-01-02T00:00:00Z", .last_used = (char *)"" };
        assert_int_equal(vp_row_insert(c, &vp_table_token, &dup, &err), -EEXIST);
        assert_string_equal(err.msg, "token 'ci' already exists");
        vp_catalog_close(c);
        assert_sql_text(p2, "SELECT value FROM meta WHERE key = 'schema'", "11");
        assert_sql_text(p2, "SELECT coalesce(via, 'NULL') FROM history WHERE id = 3", "NULL");
}

/* A catalog of schema 10: its envs do nothing when a host fails, after the
 * default grace period, until told otherwise. */
static void test_upgrade_host_failure(void **state)
{
        struct vp_catalog *c = NULL;
        struct vp_error err = { 0 };
        char p2[160];
        old_catalog("v10.db", "1:2",
                    SCHEMA_10_SQL
                    "INSERT INTO envs(id, name, uri, created) VALUES(4, 'dc1', 'qemu:///system', '2026-01-01T00:00:00Z');"
                    "UPDATE meta SET value = '10' WHERE key = 'schema';",
                    p2);
        assert_int_equal(vp_catalog_open(p2, false, &c, &err), 0);
        struct vp_env e = { 0 };
        assert_int_equal(vp_row_get_id(c, &vp_table_env, 4, &e, &err), 0);
        assert_string_equal(e.on_host_failure, "none");
        assert_string_equal(e.evacuate_to, "");
        assert_int_equal(e.grace, VP_HOST_FAILURE_GRACE);
        free(e.on_host_failure);
        e.on_host_failure = strdup("evacuate");
        assert_int_equal(vp_row_update(c, &vp_table_env, &e, &err), 0);
        vp_row_clear(&vp_table_env, &e);
        assert_int_equal(vp_row_get_id(c, &vp_table_env, 4, &e, &err), 0);
        assert_string_equal(e.on_host_failure, "evacuate");
        vp_row_clear(&vp_table_env, &e);
        vp_catalog_close(c);
        assert_sql_text(p2, "SELECT value FROM meta WHERE key = 'schema'", "11");
}

/* A catalog of schema 7 (no policies) is upgraded: its rows keep no
 * reason, and a policy's change records one. */
static void test_upgrade_reason(void **state)
{
        struct vp_catalog *c = NULL;
        struct vp_error err = { 0 };
        char p2[160];
        old_catalog("v7.db", "1:2",
                    SCHEMA_7_SQL
                    "INSERT INTO history(id, at, user, command, noun, verb, outcome, via)"
                    " VALUES(3, '2026-01-01T00:00:00Z', 'alice', 'vpool image add gold', 'image', 'add', 'ok', 'cli');"
                    "UPDATE meta SET value = '7' WHERE key = 'schema';",
                    p2);
        assert_int_equal(vp_catalog_open(p2, false, &c, &err), 0);
        struct vp_history h = { 0 };
        assert_int_equal(vp_row_get_id(c, &vp_table_history, 3, &h, &err), 0);
        assert_true(!h.reason || !*h.reason);
        vp_row_clear(&vp_table_history, &h);
        struct vp_actor policy = { .via = VP_VIA_POLICY, .name = "host-failure" };
        struct vp_history p = { .command = (char *)"evacuate dc1/h2", .noun = (char *)"env",
                                .verb = (char *)"evacuate", .reason = (char *)"host h2 unreachable for 45 s" };
        vp_history_who(&p, &policy);
        assert_int_equal(vp_history_begin(c, &p, &err), 0);
        struct vp_history back = { 0 };
        assert_int_equal(vp_row_get_id(c, &vp_table_history, p.id, &back, &err), 0);
        assert_string_equal(back.reason, "host h2 unreachable for 45 s");
        assert_string_equal(back.user, "host-failure");
        assert_int_equal(vp_history_via(&back), VP_VIA_POLICY);
        vp_row_clear(&vp_table_history, &back);
        free(p.user), free(p.sudo_user), free(p.host), free(p.via), free(p.at), free(p.ended), free(p.outcome);
        vp_catalog_close(c);
        assert_sql_text(p2, "SELECT value FROM meta WHERE key = 'schema'", "11");
}

/* A catalog of schema 8 (no policies) is upgraded: its envs take the
 * default for hosts in maintenance, none is retiring, and a retirement can
 * be recorded, going with its env and holding back the env it retires to. */
static void test_upgrade_policies(void **state)
{
        struct vp_catalog *c = NULL;
        struct vp_error err = { 0 };
        char p2[160];
        old_catalog("v8.db", "1:2",
                    SCHEMA_8_SQL
                    "INSERT INTO envs(id, name, uri) VALUES(1, 'old', 'u'), (2, 'new', 'u');"
                    "UPDATE meta SET value = '8' WHERE key = 'schema';",
                    p2);
        assert_int_equal(vp_catalog_open(p2, false, &c, &err), 0);
        struct vp_env e = { 0 };
        assert_int_equal(vp_row_get_id(c, &vp_table_env, 1, &e, &err), 0);
        assert_true(!e.on_maintenance || !*e.on_maintenance);
        vp_row_clear(&vp_table_env, &e);
        int64_t n = -1;
        assert_int_equal(vp_row_count(c, &vp_table_retirement, NULL, NULL, &n, &err), 0);
        assert_int_equal(n, 0);
        struct vp_retirement rt = { .env = (char *)"old", .env_id = 1, .to_env_id = 2, .time_window = (char *)"",
                                    .wave = 2, .state = (char *)"retiring", .created = (char *)"2026-01-01T00:00:00Z",
                                    .completed = (char *)"" };
        assert_int_equal(vp_row_insert(c, &vp_table_retirement, &rt, &err), 0);
        assert_int_equal(vp_row_delete(c, &vp_table_env, 2, &err), -EBUSY);
        assert_string_equal(err.msg, "env 'new' is still used by 1 retirement");
        assert_int_equal(vp_row_delete(c, &vp_table_env, 1, &err), 0);
        assert_int_equal(vp_row_count(c, &vp_table_retirement, NULL, NULL, &n, &err), 0);
        assert_int_equal(n, 0);
        vp_catalog_close(c);
        assert_sql_text(p2, "SELECT value FROM meta WHERE key = 'schema'", "11");
}

/* A catalog of schema 9 (no inspection) is upgraded: its images keep their
 * declarations, none has a report, and a report can be stored, once per
 * digest. */
static void test_upgrade_inspections(void **state)
{
        struct vp_catalog *c = NULL;
        struct vp_error err = { 0 };
        char p2[160];
        old_catalog("v9.db", NULL, SCHEMA_9_SQL "UPDATE meta SET value = '9' WHERE key = 'schema';", p2);
        assert_int_equal(vp_catalog_open(p2, false, &c, &err), 0);
        struct vp_image im = { 0 };
        assert_int_equal(vp_row_get(c, &vp_table_image, "name", "gold", &im, &err), 0);
        int64_t n = -1;
        assert_int_equal(vp_row_count(c, &vp_table_inspection, NULL, NULL, &n, &err), 0);
        assert_int_equal(n, 0);
        struct vp_inspection row = { .sha256 = im.sha256, .report = (char *)"{\"status\":\"no-os\"}",
                                     .created = (char *)"2026-01-02T00:00:00Z" };
        assert_int_equal(vp_row_insert(c, &vp_table_inspection, &row, &err), 0);
        assert_int_equal(vp_row_insert(c, &vp_table_inspection, &row, &err), -EEXIST);
        vp_row_clear(&vp_table_image, &im);
        vp_catalog_close(c);
        assert_sql_text(p2, "SELECT value FROM meta WHERE key = 'schema'", "11");
}

/* What a migration refers to: two envs, a profile, an image, and a pool
 * that moved from env 'old' to env 'new'. Fills the ids. */
struct refs {
        int64_t old_env, new_env, profile, image, pool;
};

static void add_refs(struct vp_catalog *c, struct refs *f)
{
        struct vp_error err = { 0 };
        struct vp_env a = { .name = (char *)"old", .uri = (char *)"test:///default" };
        struct vp_env b = { .name = (char *)"new", .uri = (char *)"test:///default" };
        struct vp_profile p = { .name = (char *)"pc", .machine = (char *)"pc", .disk_bus = (char *)"ide",
                                .nic = (char *)"e1000" };
        struct vp_image im = { .name = (char *)"gold", .path = (char *)"/s/images/gold.qcow2",
                               .format = (char *)"qcow2", .sha256 = (char *)"00" };
        assert_int_equal(vp_row_insert(c, &vp_table_env, &a, &err), 0);
        assert_int_equal(vp_row_insert(c, &vp_table_env, &b, &err), 0);
        assert_int_equal(vp_row_insert(c, &vp_table_profile, &p, &err), 0);
        assert_int_equal(vp_row_insert(c, &vp_table_image, &im, &err), 0);
        struct vp_pool pool = { .name = (char *)"desk", .image_id = im.id, .env_id = b.id, .profile_id = p.id,
                                .size = 1, .state = (char *)"active" };
        assert_int_equal(vp_row_insert(c, &vp_table_pool, &pool, &err), 0);
        *f = (struct refs){ a.id, b.id, p.id, im.id, pool.id };
}

/* A migration of the pool from 'old' to 'new' in STATE, with its one VM. */
static int64_t add_migration(struct vp_catalog *c, const struct refs *f, const char *state)
{
        struct vp_error err = { 0 };
        struct vp_migration m = { .pool_id = f->pool, .pool_name = (char *)"desk", .from_env_id = f->old_env,
                                  .to_env_id = f->new_env, .from_profile_id = f->profile,
                                  .to_profile_id = f->profile, .state = (char *)state, .total = 1 };
        assert_int_equal(vp_row_insert(c, &vp_table_migration, &m, &err), 0);
        struct vp_migvm mv = { .migration_id = m.id, .vm_id = 1, .vm_name = (char *)"desk-001",
                               .step = (char *)"done", .src_env_id = f->old_env, .src_profile_id = f->profile };
        assert_int_equal(vp_row_insert(c, &vp_table_migvm, &mv, &err), 0);
        return m.id;
}

/* An env a finished migration left is removed, the migration keeps its
 * name; an unfinished one keeps it, and says why. */
static void test_env_rm_keeps_history(void **state)
{
        struct vp_catalog *c = NULL;
        struct vp_error err = { 0 };
        char p2[160];
        snprintf(p2, sizeof(p2), "%s/history.db", dir);
        assert_int_equal(vp_catalog_open(p2, true, &c, &err), 0);
        struct refs f;
        add_refs(c, &f);
        struct vp_ctx ctx = { .cat = c };
        int64_t running = add_migration(c, &f, "running");
        assert_int_equal(vp_env_rm(&ctx, "old", &err), -EBUSY);
        assert_string_equal(err.msg, "env 'old' is used by unfinished migration 1 (pool 'desk')");
        struct vp_migration m = { 0 };
        assert_int_equal(vp_row_get_id(c, &vp_table_migration, running, &m, &err), 0);
        free(m.state);
        m.state = strdup("done");
        assert_int_equal(vp_row_update(c, &vp_table_migration, &m, &err), 0);
        vp_row_clear(&vp_table_migration, &m);
        add_migration(c, &f, "aborted");

        assert_int_equal(vp_env_rm(&ctx, "old", &err), 0);
        void *rows = NULL;
        size_t n = 0;
        assert_int_equal(vp_row_list(c, &vp_table_migration, NULL, NULL, &rows, &n, &err), 0);
        assert_int_equal(n, 2);
        for (size_t i = 0; i < n; i++) {
                struct vp_migration *mi = &((struct vp_migration *)rows)[i];
                assert_int_equal(mi->from_env_id, 0);
                assert_string_equal(mi->from_env, "old");
                assert_string_equal(mi->to_env, "new");
                assert_string_equal(mi->to_profile, "pc");
                /* A row whose env is gone is still written as it was read. */
                assert_int_equal(vp_row_update(c, &vp_table_migration, mi, &err), 0);
        }
        vp_rows_free(&vp_table_migration, rows, n);
        assert_int_equal(vp_row_list(c, &vp_table_migvm, NULL, NULL, &rows, &n, &err), 0);
        assert_int_equal(n, 2);
        assert_int_equal(((struct vp_migvm *)rows)[0].src_env_id, 0);
        assert_string_equal(((struct vp_migvm *)rows)[0].src_env, "old");
        vp_rows_free(&vp_table_migvm, rows, n);
        /* The env in use by a pool: the pool is named, not "in use". */
        assert_int_equal(vp_env_rm(&ctx, "new", &err), -EBUSY);
        assert_string_equal(err.msg, "env 'new' is used by pool 'desk'");
        vp_catalog_close(c);
}

/* SQLite's constraint failures say what they mean: a missing reference is
 * not "already exists", a row still referred to names what refers to it. */
static void test_constraint_messages(void **state)
{
        struct vp_catalog *c = NULL;
        struct vp_error err = { 0 };
        char p2[160];
        snprintf(p2, sizeof(p2), "%s/constraints.db", dir);
        assert_int_equal(vp_catalog_open(p2, true, &c, &err), 0);
        struct refs f;
        add_refs(c, &f);
        struct vp_pool orphan = { .name = (char *)"orphan", .image_id = f.image, .env_id = 999,
                                  .profile_id = f.profile, .size = 1, .state = (char *)"active" };
        assert_int_equal(vp_row_insert(c, &vp_table_pool, &orphan, &err), -ENOENT);
        assert_string_equal(err.msg, "pool 'orphan' refers to env id 999, which does not exist");
        struct vp_pool dup = { .name = (char *)"desk", .image_id = f.image, .env_id = f.new_env,
                               .profile_id = f.profile, .size = 1, .state = (char *)"active" };
        assert_int_equal(vp_row_insert(c, &vp_table_pool, &dup, &err), -EEXIST);
        assert_string_equal(err.msg, "pool 'desk' already exists");
        assert_int_equal(vp_row_delete(c, &vp_table_image, f.image, &err), -EBUSY);
        assert_string_equal(err.msg, "image 'gold' is still used by 1 pool");
        vp_catalog_close(c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_missing_not_created),
                cmocka_unit_test(test_rows),
                cmocka_unit_test(test_damaged),
                cmocka_unit_test(test_upgrade),
                cmocka_unit_test(test_upgrade_step_fails),
                cmocka_unit_test(test_upgrade_migration_names),
                cmocka_unit_test(test_upgrade_hosts),
                cmocka_unit_test(test_upgrade_events),
                cmocka_unit_test(test_upgrade_tokens),
                cmocka_unit_test(test_upgrade_reason),
                cmocka_unit_test(test_upgrade_policies),
                cmocka_unit_test(test_upgrade_inspections),
                cmocka_unit_test(test_upgrade_host_failure),
                cmocka_unit_test(test_env_rm_keeps_history),
                cmocka_unit_test(test_constraint_messages),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
