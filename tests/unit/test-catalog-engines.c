/* The catalog's behaviour on both engines: every test runs on a fresh
 * SQLite file and on a fresh PostgreSQL database. The server is the one
 * tests/pg.sh run started (VPOOL_TEST_PG, its conninfo); meson runs this
 * program through it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "core.h"

static char dir[64];
static char name[512];          /* the catalog of the test being run */
static bool pg;
static int serial;

/* A new PostgreSQL database, its conninfo into NAME. */
static int new_database(void)
{
        const char *base = getenv("VPOOL_TEST_PG");
        if (!base) {
                fprintf(stderr, "VPOOL_TEST_PG is not set: run through tests/pg.sh run\n");
                return -1;
        }
        PGconn *conn = PQconnectdb(base);
        if (PQstatus(conn) != CONNECTION_OK) {
                fprintf(stderr, "%s", PQerrorMessage(conn));
                PQfinish(conn);
                return -1;
        }
        char sql[96];
        snprintf(sql, sizeof(sql), "CREATE DATABASE t%d_%d", (int)getpid(), ++serial);
        PGresult *res = PQexec(conn, sql);
        int r = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
        PQclear(res);
        PQfinish(conn);
        snprintf(name, sizeof(name), "%s dbname=t%d_%d", base, (int)getpid(), serial);
        return r;
}

static int setup_engine(bool on_pg)
{
        pg = on_pg;
        strcpy(dir, "/tmp/vp-engines-test-XXXXXX");
        if (!mkdtemp(dir))
                return -1;
        if (pg)
                return new_database();
        snprintf(name, sizeof(name), "%s/catalog.db", dir);
        return 0;
}

static int setup_sqlite(void **state) { (void)state; return setup_engine(false); }
static int setup_pg(void **state) { (void)state; return setup_engine(true); }

static int teardown(void **state)
{
        (void)state;
        char cmd[200];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        return system(cmd) == 0 ? 0 : -1;
}

static struct vp_catalog *open_new(void)
{
        struct vp_catalog *c = NULL;
        struct vp_error err = { 0 };
        int r = vp_catalog_open(name, true, &c, &err);
        if (r < 0)
                fprintf(stderr, "open: %s\n", err.msg);
        assert_int_equal(r, 0);
        return c;
}

struct refs {
        int64_t env, image, profile, pool;
};

static void add_refs(struct vp_catalog *c, struct refs *f)
{
        struct vp_error err = { 0 };
        struct vp_env e = { .name = (char *)"dc1", .uri = (char *)"qemu:///system", .memory_kib = 1LL << 40 };
        struct vp_image im = { .name = (char *)"gold", .path = (char *)"/s/images/gold.qcow2", .format = (char *)"qcow2",
                               .sha256 = (char *)"00", .virtual_size = 5LL << 32 };
        struct vp_profile pr = { .name = (char *)"pc", .machine = (char *)"pc", .disk_bus = (char *)"ide",
                                 .nic = (char *)"e1000" };
        assert_int_equal(vp_row_insert(c, &vp_table_env, &e, &err), 0);
        assert_int_equal(vp_row_insert(c, &vp_table_image, &im, &err), 0);
        assert_int_equal(vp_row_insert(c, &vp_table_profile, &pr, &err), 0);
        struct vp_pool p = { .name = (char *)"desk", .image_id = im.id, .env_id = e.id, .profile_id = pr.id,
                             .size = 1, .state = (char *)"active" };
        assert_int_equal(vp_row_insert(c, &vp_table_pool, &p, &err), 0);
        *f = (struct refs){ e.id, im.id, pr.id, p.id };
}

/* Rows go in and come back alike, 64-bit numbers whole; the constraint
 * failures say what they mean. */
static void test_rows(void **state)
{
        struct vp_catalog *c = open_new();
        struct vp_error err = { 0 };
        struct refs f;
        add_refs(c, &f);
        struct vp_env got = { 0 };
        assert_int_equal(vp_row_get(c, &vp_table_env, "name", "dc1", &got, &err), 0);
        assert_int_equal(got.memory_kib, 1LL << 40);
        assert_string_equal(got.machines, "");
        vp_row_clear(&vp_table_env, &got);
        struct vp_image im = { 0 };
        assert_int_equal(vp_row_get_id(c, &vp_table_image, f.image, &im, &err), 0);
        assert_int_equal(im.virtual_size, 5LL << 32);
        vp_row_clear(&vp_table_image, &im);

        struct vp_env dup = { .name = (char *)"dc1", .uri = (char *)"x" };
        assert_int_equal(vp_row_insert(c, &vp_table_env, &dup, &err), -EEXIST);
        assert_string_equal(err.msg, "env 'dc1' already exists");
        assert_int_equal(vp_row_get(c, &vp_table_env, "name", "x' OR '1'='1", &got, &err), -ENOENT);
        assert_string_equal(err.msg, "unknown env 'x' OR '1'='1'");
        struct vp_pool orphan = { .name = (char *)"orphan", .image_id = f.image, .env_id = 999, .profile_id = f.profile,
                                  .size = 1, .state = (char *)"active" };
        assert_int_equal(vp_row_insert(c, &vp_table_pool, &orphan, &err), -ENOENT);
        assert_string_equal(err.msg, "pool 'orphan' refers to env id 999, which does not exist");
        assert_int_equal(vp_row_delete(c, &vp_table_image, f.image, &err), -EBUSY);
        assert_string_equal(err.msg, "image 'gold' is still used by 1 pool");

        /* A partial update and a query with a parameter used twice. */
        struct vp_env part = { .id = f.env, .cpus = 12 };
        static const char *const cols[] = { "cpus", NULL };
        assert_int_equal(vp_row_update_cols(c, &vp_table_env, &part, cols, &err), 0);
        void *rows = NULL;
        size_t n = 0;
        assert_int_equal(vp_row_query(c, &vp_table_env, "cpus = ?1 OR id = ?1", 12, &rows, &n, &err), 0);
        assert_int_equal(n, 1);
        assert_int_equal(((struct vp_env *)rows)[0].cpus, 12);
        vp_rows_free(&vp_table_env, rows, n);
        int64_t count = -1;
        assert_int_equal(vp_row_count(c, &vp_table_pool, "env_id", "1", &count, &err), 0);
        assert_int_equal(count, 1);

        /* The history's "user" column (a reserved word in PostgreSQL). */
        struct vp_history h = { .at = (char *)"2026-01-01T00:00:00Z", .user = (char *)"alice",
                                .command = (char *)"vpool pool create", .outcome = (char *)"ok" };
        assert_int_equal(vp_row_insert(c, &vp_table_history, &h, &err), 0);
        struct vp_history hg = { 0 };
        assert_int_equal(vp_row_get_id(c, &vp_table_history, h.id, &hg, &err), 0);
        assert_string_equal(hg.user, "alice");
        vp_row_clear(&vp_table_history, &hg);

        /* Kept across a reopen. */
        vp_catalog_close(c);
        assert_int_equal(vp_catalog_open(name, false, &c, &err), 0);
        assert_int_equal(vp_row_count(c, &vp_table_pool, "name", "desk", &count, &err), 0);
        assert_int_equal(count, 1);
        vp_catalog_close(c);
}

/* A failed write inside a transaction undoes itself alone; a rollback
 * undoes all; a commit keeps all. */
static void test_transactions(void **state)
{
        struct vp_catalog *c = open_new();
        struct vp_error err = { 0 };
        struct refs f;
        add_refs(c, &f);
        assert_int_equal(vp_catalog_begin(c, &err), 0);
        assert_true(vp_catalog_in_transaction(c));
        struct vp_env e2 = { .name = (char *)"dc2", .uri = (char *)"u" };
        assert_int_equal(vp_row_insert(c, &vp_table_env, &e2, &err), 0);
        struct vp_env dup = { .name = (char *)"dc1", .uri = (char *)"u" };
        assert_int_equal(vp_row_insert(c, &vp_table_env, &dup, &err), -EEXIST);
        assert_int_equal(vp_row_delete(c, &vp_table_env, f.env, &err), -EBUSY);
        assert_string_equal(err.msg, "env 'dc1' is still used by 1 pool");
        struct vp_env e3 = { .name = (char *)"dc3", .uri = (char *)"u" };
        assert_int_equal(vp_row_insert(c, &vp_table_env, &e3, &err), 0);
        assert_int_equal(vp_catalog_commit(c, &err), 0);
        assert_false(vp_catalog_in_transaction(c));
        int64_t n = 0;
        assert_int_equal(vp_row_count(c, &vp_table_env, NULL, NULL, &n, &err), 0);
        assert_int_equal(n, 3);

        assert_int_equal(vp_catalog_begin(c, &err), 0);
        struct vp_env e4 = { .name = (char *)"dc4", .uri = (char *)"u" };
        assert_int_equal(vp_row_insert(c, &vp_table_env, &e4, &err), 0);
        vp_catalog_rollback(c);
        assert_int_equal(vp_row_count(c, &vp_table_env, NULL, NULL, &n, &err), 0);
        assert_int_equal(n, 3);
        vp_catalog_close(c);
}

struct racer {
        struct timespec began;
        int r;
};

static double seconds(const struct timespec *t)
{
        return (double)t->tv_sec + (double)t->tv_nsec / 1e9;
}

static void *race(void *arg)
{
        struct racer *w = arg;
        struct vp_catalog *c = NULL;
        struct vp_error err = { 0 };
        w->r = vp_catalog_open(name, false, &c, &err);
        if (w->r < 0)
                return NULL;
        if ((w->r = vp_catalog_begin(c, &err)) >= 0) {
                clock_gettime(CLOCK_MONOTONIC, &w->began);
                struct vp_env e = { .name = (char *)"racer", .uri = (char *)"u" };
                if ((w->r = vp_row_insert(c, &vp_table_env, &e, &err)) >= 0)
                        w->r = vp_catalog_commit(c, &err);
        }
        vp_catalog_close(c);
        return NULL;
}

/* Two writers: the second's transaction begins only once the first's
 * ended (BEGIN IMMEDIATE on SQLite, the catalog's advisory lock on
 * PostgreSQL), so neither reads what the other is about to change. */
static void test_writers_serialize(void **state)
{
        struct vp_catalog *c = open_new();
        struct vp_error err = { 0 };
        assert_int_equal(vp_catalog_begin(c, &err), 0);
        struct racer w = { 0 };
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, race, &w), 0);
        usleep(300 * 1000);
        struct timespec committed;
        clock_gettime(CLOCK_MONOTONIC, &committed);
        assert_int_equal(vp_catalog_commit(c, &err), 0);
        pthread_join(t, NULL);
        assert_int_equal(w.r, 0);
        assert_true(seconds(&w.began) >= seconds(&committed));
        vp_catalog_close(c);
}

/* The catalog's own changes write events, whichever engine; a watcher on
 * another connection sees its number change when they commit. */
static void test_events(void **state)
{
        struct vp_catalog *c = open_new(), *w = NULL;
        struct vp_error err = { 0 };
        assert_int_equal(vp_catalog_open_read(name, &w, &err), 0);
        int64_t v0 = 0, v1 = 0;
        assert_int_equal(vp_catalog_data_version(w, &v0, &err), 0);
        struct refs f;
        add_refs(c, &f);
        struct vp_pool p = { 0 };
        assert_int_equal(vp_row_get_id(c, &vp_table_pool, f.pool, &p, &err), 0);
        free(p.state);
        p.state = strdup("migrating");
        assert_int_equal(vp_row_update(c, &vp_table_pool, &p, &err), 0);
        /* The same state again is no event. */
        assert_int_equal(vp_row_update(c, &vp_table_pool, &p, &err), 0);
        vp_row_clear(&vp_table_pool, &p);
        struct vp_migration m = { .pool_id = f.pool, .pool_name = (char *)"desk", .from_env_id = f.env,
                                  .to_env_id = f.env, .from_profile_id = f.profile, .to_profile_id = f.profile,
                                  .state = (char *)"running" };
        assert_int_equal(vp_row_insert(c, &vp_table_migration, &m, &err), 0);
        struct vp_journal j = { .migration_id = m.id, .vm_name = (char *)"desk-1", .step = (char *)"locked",
                                .generation = 2, .detail = (char *)"", .at = (char *)"2026-01-01T00:00:00Z" };
        assert_int_equal(vp_row_insert(c, &vp_table_journal, &j, &err), 0);
        struct vp_host h = { .env_id = f.env, .name = (char *)"h1", .uri = (char *)"qemu:///system",
                             .unreachable = (char *)"" };
        assert_int_equal(vp_row_insert(c, &vp_table_host, &h, &err), 0);
        h.maintenance = 1;
        assert_int_equal(vp_row_update(c, &vp_table_host, &h, &err), 0);
        struct vp_event job = { .kind = (char *)"job", .subject = (char *)"7", .state = (char *)"done" };
        assert_int_equal(vp_event_add(c, &job, &err), 0);
        assert_int_equal(vp_row_delete(c, &vp_table_pool, f.pool, &err), 0);

        struct vp_event *ev = NULL;
        size_t n = 0;
        assert_int_equal(vp_event_list_after(w, 0, 100, &ev, &n, &err), 0);
        const char *want[][3] = {
                { "pool", "desk", "active" }, { "pool", "desk", "migrating" }, { "migration", NULL, "running" },
                { "step", "desk-1", "locked" }, { "host", "dc1/h1", "maintenance" }, { "job", "7", "done" },
                { "pool", "desk", "removed" },
        };
        assert_int_equal(n, ELEMENTSOF(want));
        for (size_t i = 0; i < n; i++) {
                assert_string_equal(ev[i].kind, want[i][0]);
                if (want[i][1])
                        assert_string_equal(ev[i].subject, want[i][1]);
                assert_string_equal(ev[i].state, want[i][2]);
                assert_int_equal(strlen(ev[i].at), strlen("2026-01-01T00:00:00.000Z"));
                assert_true(i == 0 || ev[i].id > ev[i - 1].id);
        }
        assert_string_equal(ev[3].pool, "desk");
        int64_t last = 0;
        assert_int_equal(vp_event_last_id(w, &last, &err), 0);
        assert_int_equal(last, ev[n - 1].id);
        vp_rows_free(&vp_table_event, ev, n);
        for (int i = 0; i < 200 && v1 == v0; i++) {
                assert_int_equal(vp_catalog_data_version(w, &v1, &err), 0);
                usleep(5000);
        }
        assert_true(v1 != v0);
        /* Pruning keeps the newest. */
        assert_int_equal(vp_event_prune(c, 2, &err), 0);
        assert_int_equal(vp_event_list_after(w, 0, 100, &ev, &n, &err), 0);
        assert_int_equal(n, 2);
        vp_rows_free(&vp_table_event, ev, n);
        /* A reader writes nothing. */
        struct vp_env e = { .name = (char *)"nope", .uri = (char *)"u" };
        assert_true(vp_row_insert(w, &vp_table_env, &e, &err) < 0);
        vp_catalog_close(w);
        vp_catalog_close(c);
}

/* Meta values, the tables, a second open of the same catalog. */
static void test_meta(void **state)
{
        struct vp_catalog *c = open_new();
        struct vp_error err = { 0 };
        char *v = NULL;
        assert_int_equal(vp_catalog_get_meta(c, "schema", &v, &err), 0);
        assert_string_equal(v, "11");
        free(v);
        assert_int_equal(vp_catalog_get_meta(c, "storage_root", &v, &err), -ENOENT);
        assert_int_equal(vp_catalog_set_meta(c, "storage_root", "/a", &err), 0);
        assert_int_equal(vp_catalog_set_meta(c, "storage_root", "/b", &err), 0);
        assert_int_equal(vp_catalog_get_meta(c, "storage_root", &v, &err), 0);
        assert_string_equal(v, "/b");
        free(v);
        assert_true(vp_catalog_has_table(c, "history"));
        assert_true(vp_catalog_has_table(c, "events"));
        assert_false(vp_catalog_has_table(c, "nope"));
        vp_catalog_close(c);
}

/* What cannot be used is refused in one line naming the catalog. */
static void test_refusals(void **state)
{
        struct vp_catalog *c = NULL;
        struct vp_error err = { 0 };
        /* Nothing there yet, not asked to create. */
        assert_int_equal(vp_catalog_open(name, false, &c, &err), -ENOENT);
        assert_non_null(strstr(err.msg, "vpool init"));
        assert_null(strchr(err.msg, '\n'));
        /* A newer schema than this vpool's. */
        c = open_new();
        assert_int_equal(vp_catalog_set_meta(c, "schema", "12", &err), 0);
        vp_catalog_close(c);
        assert_int_equal(vp_catalog_open(name, false, &c, &err), -EBADMSG);
        assert_non_null(strstr(err.msg, "is of schema 12, newer than this vpool's (11)"));
        if (!pg)
                return;
        /* A server that does not answer, with a password in the name. */
        char bad[600];
        snprintf(bad, sizeof(bad), "postgresql://vpool:s3cret@127.0.0.1:1/vpool?password=s3cret&connect_timeout=2");
        assert_true(vp_catalog_open(bad, false, &c, &err) < 0);
        assert_null(strstr(err.msg, "s3cret"));
        assert_null(strchr(err.msg, '\n'));
        assert_non_null(strstr(err.msg, "catalog 'postgresql://vpool@127.0.0.1:1/vpool?connect_timeout=2'"));
        /* A database that does not exist. */
        snprintf(bad, sizeof(bad), "%s dbname=nosuchdb password=s3cret", getenv("VPOOL_TEST_PG"));
        assert_int_equal(vp_catalog_open(bad, true, &c, &err), -ENOENT);
        assert_null(strstr(err.msg, "s3cret"));
        assert_non_null(strstr(err.msg, "nosuchdb"));
        /* A database that holds something else. */
        PGconn *conn = PQconnectdb(name);
        PQclear(PQexec(conn, "DROP TABLE meta CASCADE"));
        PQfinish(conn);
        assert_int_equal(vp_catalog_open(name, true, &c, &err), -EBADMSG);
        assert_non_null(strstr(err.msg, "holds tables but no vpool catalog"));
}

static void test_labels(void **state)
{
        static const char *const cases[][2] = {
                { "/var/lib/vpool/catalog.db", "/var/lib/vpool/catalog.db" },
                { "postgresql://u:pw@db1:5432/vpool", "postgresql://u@db1:5432/vpool" },
                { "postgres://db1/vpool?password=pw&sslmode=require", "postgres://db1/vpool?sslmode=require" },
                { "postgresql://db1/vpool?sslmode=require&password=pw", "postgresql://db1/vpool?sslmode=require" },
                { "host=db1 password='a b' dbname=vpool", "host=db1 dbname=vpool" },
                { "host=db1 dbname=vpool password=pw", "host=db1 dbname=vpool" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *l = vp_catalog_label(cases[i][0]);
                assert_string_equal(l, cases[i][1]);
                free(l);
        }
        assert_true(vp_catalog_is_pg("host=/run/postgresql dbname=vpool"));
        assert_true(vp_catalog_is_pg("postgresql:///vpool"));
        assert_false(vp_catalog_is_pg("/srv/catalog.db"));
        assert_false(vp_catalog_is_pg("catalog.db"));
}

/* PostgreSQL's locks are the server's: held while their connection lives. */
static void test_locks(void **state)
{
        struct vp_catalog *c = open_new(), *other = NULL;
        struct vp_error err = { 0 };
        int fd = -1, fd2 = -1;
        if (!pg) {
                assert_int_equal(vp_catalog_lock(c, "vpool pool desk", 0, &fd, &err), -EOPNOTSUPP);
                assert_int_equal(vp_catalog_lock_held(c, "vpool pool desk"), -EOPNOTSUPP);
                vp_catalog_close(c);
                return;
        }
        assert_int_equal(vp_catalog_open(name, false, &other, &err), 0);
        assert_int_equal(vp_catalog_lock_held(other, "vpool pool desk"), 0);
        assert_int_equal(vp_catalog_lock(c, "vpool pool desk", 0, &fd, &err), 0);
        assert_int_equal(vp_catalog_lock_held(other, "vpool pool desk"), 1);
        assert_int_equal(vp_catalog_lock_held(other, "vpool pool other"), 0);
        assert_int_equal(vp_catalog_lock(other, "vpool pool desk", 0, &fd2, &err), -EBUSY);
        assert_int_equal(vp_catalog_lock(other, "vpool pool other", 0, &fd2, &err), 0);
        close(fd2);
        /* Waited for: still held after the wait, then released by its
         * session's end while the other waits, and taken at once. */
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(vp_catalog_lock(other, "vpool pool desk", 200, &fd2, &err), -EBUSY);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 >= 190);
        close(fd);
        assert_int_equal(vp_catalog_lock(other, "vpool pool desk", 5000, &fd2, &err), 0);
        close(fd2);
        assert_int_equal(vp_catalog_lock(c, "vpool pool desk", 5000, &fd, &err), 0);
        close(fd);
        int held = 1;
        for (int i = 0; i < 200 && held; i++) {
                held = vp_catalog_lock_held(other, "vpool pool desk");
                usleep(10000);
        }
        assert_int_equal(held, 0);
        assert_int_equal(vp_catalog_lock(other, "vpool pool desk", 0, &fd2, &err), 0);
        close(fd2);
        vp_catalog_close(other);
        vp_catalog_close(c);
}

/* The server restarted between two commands of a long-lived process
 * (vpoold): the next statement connects again and works; a transaction
 * that was open is lost, and says so. */
static void test_reconnect(void **state)
{
        struct vp_catalog *c = open_new();
        struct vp_error err = { 0 };
        struct refs f;
        add_refs(c, &f);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "%s/tests/pg.sh restart '%s'", getenv("VP_SOURCE_ROOT"),
                 getenv("VPOOL_TEST_PG_DIR"));
        assert_int_equal(system(cmd), 0);
        int64_t n = 0;
        assert_int_equal(vp_row_count(c, &vp_table_pool, NULL, NULL, &n, &err), 0);
        assert_int_equal(n, 1);
        assert_int_equal(vp_catalog_begin(c, &err), 0);
        struct vp_env e = { .name = (char *)"dc2", .uri = (char *)"u" };
        assert_int_equal(vp_row_insert(c, &vp_table_env, &e, &err), 0);
        assert_int_equal(system(cmd), 0);
        assert_true(vp_catalog_commit(c, &err) < 0);
        assert_non_null(strstr(err.msg, "catalog '"));
        vp_catalog_rollback(c);
        assert_int_equal(vp_row_count(c, &vp_table_env, NULL, NULL, &n, &err), 0);
        assert_int_equal(n, 1);
        vp_catalog_close(c);
}

/* vpool init makes the catalog and the storage root, and nothing else:
 * a connection string is no path to make directories for. */
static void test_init(void **state)
{
        char storage[128], cwd[512];
        snprintf(storage, sizeof(storage), "%s/storage", dir);
        assert_non_null(getcwd(cwd, sizeof(cwd)));
        assert_int_equal(chdir(dir), 0);
        struct vp_error err = { 0 };
        int r = vp_init(name, storage, &err);
        assert_int_equal(chdir(cwd), 0);
        assert_int_equal(r, 0);
        char cmd[200];
        snprintf(cmd, sizeof(cmd), "test -d '%s/storage' && test \"$(ls '%s' | grep -c =)\" = 0", dir, dir);
        assert_int_equal(system(cmd), 0);
        struct vp_catalog *c = NULL;
        assert_int_equal(vp_catalog_open(name, false, &c, &err), 0);
        char *root = NULL;
        assert_int_equal(vp_catalog_get_meta(c, "storage_root", &root, &err), 0);
        assert_string_equal(root, storage);
        free(root);
        vp_catalog_close(c);
}

#define BOTH(fn) cmocka_unit_test_setup_teardown(fn, setup_sqlite, teardown), \
                 cmocka_unit_test_setup_teardown(fn, setup_pg, teardown)

int main(void)
{
        const struct CMUnitTest tests[] = {
                BOTH(test_rows), BOTH(test_transactions), BOTH(test_writers_serialize), BOTH(test_events),
                BOTH(test_meta), BOTH(test_refusals), BOTH(test_locks), BOTH(test_init),
                cmocka_unit_test(test_labels),
                cmocka_unit_test_setup_teardown(test_reconnect, setup_pg, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
