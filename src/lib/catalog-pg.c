/* The catalog on PostgreSQL, through libpq: a database several
 * controllers share.
 *
 * What it keeps of SQLite's guarantees, and how:
 * - Every commit is durable before it returns: the session sets
 *   synchronous_commit on, whatever the server's default.
 * - Writers serialize as they do on SQLite, where a transaction begins with
 *   BEGIN IMMEDIATE: a transaction begins by taking one transaction-scoped
 *   advisory lock for the whole catalog (pg_advisory_xact_lock), and a
 *   write outside a transaction is run as one of its own that takes it. So
 *   every read-modify-write vpool does inside a transaction sees every
 *   earlier commit (READ COMMITTED takes a new snapshot per statement),
 *   there is no serialization failure to retry, and the event ids (one
 *   sequence) are handed out in commit order, which the event stream's
 *   readers rely on. Readers never wait. The price is SQLite's: one writer
 *   at a time; vpool's writes are small and its parallel migrations
 *   already share their commits.
 * - A write that fails inside a transaction (a duplicate name, a row still
 *   referred to) undoes that statement alone, as on SQLite, not the whole
 *   transaction: it runs under a savepoint.
 * - A connection is used by one thread at a time; each thread that has a
 *   catalog of its own on SQLite has a connection of its own here.
 * - Pool locks are session advisory locks (vp_catalog_lock): a
 *   connection of their own holds each, and the server releases it when
 *   that connection dies with its process. */
#include "catalog-engine.h"

#include <ctype.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "runcmd.h"

/* Catalogs of schema 11 and later can live on PostgreSQL. */
#define PG_FIRST_SCHEMA 11
#define PG_CACHE 64
#define PG_PARAMS 64

struct pg_slot {
        char *sql;              /* as vpool wrote it, with ?N */
        char name[16];          /* the prepared statement's name on this connection */
};

struct pg {
        pthread_mutex_t cache_lock;
        struct pg_slot cache[PG_CACHE];
        unsigned evict, serial;
        unsigned generation;    /* connections made again: a statement prepared before is gone */
        bool readonly, listening;
        int64_t notified;       /* notifications of new events seen */
        char state[6];          /* SQLSTATE of the last failure, "" when none was given */
        char *message;          /* and its message */
};

struct cat_stmt {
        char *sql;              /* as vpool wrote it */
        char name[16];          /* the prepared statement */
        unsigned generation;    /* of the connection it was prepared on */
        bool write;             /* INSERT, UPDATE or DELETE */
        int nparams;
        const char *values[PG_PARAMS];
        char ints[PG_PARAMS][24];
        PGresult *res;
        int row;
};

#define CONN(c) ((PGconn *)(c)->db)
#define PGP(c) ((struct pg *)(c)->priv)

/* ---- names ---------------------------------------------------------------- */

bool vp_catalog_is_pg(const char *name)
{
        if (!name)
                return false;
        if (strncmp(name, "postgresql://", 13) == 0 || strncmp(name, "postgres://", 11) == 0)
                return true;
        /* A keyword string begins with a word and '=': a path to a file
         * never does (paths of catalogs are absolute). */
        size_t n = 0;
        while (islower((unsigned char)name[n]) || name[n] == '_')
                n++;
        while (name[n] == ' ')
                n++;
        return n > 0 && name[n] == '=';
}

/* The key=value words of a keyword string, without password=...; a URI
 * without the password of its user part or its password= parameter. */
char *vp_catalog_label(const char *name)
{
        if (!vp_catalog_is_pg(name))
                return vp_strdup(name);
        char *out = vp_xcalloc(1, strlen(name) + 1);
        const char *p = name;
        size_t o = 0;
        if (strstr(name, "://")) {
                const char *auth = strstr(name, "://") + 3;
                const char *end = auth + strcspn(auth, "/?");
                const char *at = memchr(auth, '@', (size_t)(end - auth));
                const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
                size_t head = (size_t)((colon ? colon : auth) - name);
                memcpy(out, name, head);
                o = head;
                p = colon ? at : auth;
                size_t path = strcspn(p, "?");
                memcpy(out + o, p, path);
                o += path;
                p += path;
                /* The rest, parameter by parameter, password= left out. */
                while (*p) {
                        size_t l = strcspn(p + 1, "&") + 1;
                        bool secret = (*p == '?' || *p == '&') && strncmp(p + 1, "password=", 9) == 0;
                        if (!secret) {
                                memcpy(out + o, p, l);
                                o += l;
                        } else if (*p == '?' && p[l] == '&') {
                                out[o++] = '?';
                                l++;
                        }
                        p += l;
                }
                out[o] = 0;
                return out;
        }
        /* Keyword form: words split on blanks; a quoted value may hold blanks. */
        while (*p) {
                while (*p == ' ' || *p == '\t')
                        p++;
                const char *w = p;
                bool quoted = false;
                while (*p && (quoted || (*p != ' ' && *p != '\t'))) {
                        if (*p == '\\' && p[1])
                                p++;
                        else if (*p == '\'')
                                quoted = !quoted;
                        p++;
                }
                size_t l = (size_t)(p - w);
                if (l && strncmp(w, "password", 8) != 0) {
                        if (o)
                                out[o++] = ' ';
                        memcpy(out + o, w, l);
                        o += l;
                }
        }
        out[o] = 0;
        return out;
}

/* FNV-1a of WHAT: the advisory lock key of a name. Locks are per
 * database, so two catalogs in two databases never meet. */
static int64_t lock_key(const char *what)
{
        uint64_t h = 0xcbf29ce484222325ULL;
        for (const char *p = what; *p; p++) {
                h ^= (unsigned char)*p;
                h *= 0x100000001b3ULL;
        }
        return (int64_t)h;
}
#define CATALOG_LOCK "vpool catalog"

/* ---- failures --------------------------------------------------------- */

/* The first line of libpq's words, which end with a newline. */
static char *first_line(const char *m)
{
        if (!m || !*m)
                return vp_strdup("unknown error");
        char *out = vp_strdup(m);
        out[strcspn(out, "\n")] = 0;
        return out;
}

static void set_failure(struct vp_catalog *c, const PGresult *res)
{
        struct pg *g = PGP(c);
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        snprintf(g->state, sizeof(g->state), "%s", state ? state : "");
        free(g->message);
        g->message = first_line(msg ? msg : PQerrorMessage(CONN(c)));
}

/* RES is a success (the caller's to clear); else the failure is kept, RES cleared. */
static bool result_ok(struct vp_catalog *c, PGresult *res)
{
        ExecStatusType st = PQresultStatus(res);
        if (res && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK))
                return true;
        set_failure(c, res);
        PQclear(res);
        return false;
}

static int run(struct vp_catalog *c, const char *sql)
{
        PGresult *res = PQexec(CONN(c), sql);
        if (!result_ok(c, res))
                return -1;
        PQclear(res);
        return 0;
}

static enum cat_fail pg_fail(struct vp_catalog *c)
{
        const char *s = PGP(c) ? PGP(c)->state : "";
        if (streq(s, "23505"))
                return CAT_FAIL_UNIQUE;
        if (streq(s, "23503"))
                return CAT_FAIL_FOREIGN_KEY;
        /* lock_not_available (the lock timeout), deadlock, serialization */
        if (streq(s, "55P03") || streq(s, "40P01") || streq(s, "40001"))
                return CAT_FAIL_BUSY;
        if (streq(s, "53100"))
                return CAT_FAIL_FULL;
        if (streq(s, "42P01") || streq(s, "42703"))
                return CAT_FAIL_DAMAGED;
        /* insufficient_privilege: a role granted SELECT alone */
        if (streq(s, "42501"))
                return CAT_FAIL_DENIED;
        return CAT_FAIL_OTHER;
}

static const char *pg_message(struct vp_catalog *c)
{
        return PGP(c) && PGP(c)->message ? PGP(c)->message : "unknown error";
}

/* ---- connections -------------------------------------------------------- */

/* The session as vpool needs it: durable commits, a writer waits for
 * another at most as long as on SQLite (its busy timeout), the server's
 * notices kept to itself. */
static int session_setup(struct vp_catalog *c)
{
        return run(c, PGP(c)->readonly
                      ? "SET synchronous_commit = on; SET lock_timeout = '30s'; SET client_min_messages = warning;"
                        " SET default_transaction_read_only = on;"
                      : "SET synchronous_commit = on; SET lock_timeout = '30s'; SET client_min_messages = warning;");
}

static void forget_prepared(struct pg *g)
{
        for (size_t i = 0; i < PG_CACHE; i++) {
                free(g->cache[i].sql);
                g->cache[i].sql = NULL;
        }
        g->listening = false;
}

/* A connection lost (the server restarted) is made again before the next
 * statement. Inside a transaction, that transaction is lost and its next
 * statement or commit fails (its caller rolls back); outside one, a read or
 * the beginning of a transaction that failed because the connection was
 * lost is tried once more (lost_idle): nothing had changed. */
static void reconnect_if_lost(struct vp_catalog *c)
{
        if (PQstatus(CONN(c)) != CONNECTION_BAD)
                return;
        PQreset(CONN(c));
        if (PQstatus(CONN(c)) != CONNECTION_OK)
                return;
        pthread_mutex_lock(&PGP(c)->cache_lock);
        forget_prepared(PGP(c));
        PGP(c)->generation++;
        pthread_mutex_unlock(&PGP(c)->cache_lock);
        session_setup(c);
}

/* Whether a statement that failed, run while no transaction was open (IDLE),
 * failed because the connection was lost, and it is back. */
static bool lost_idle(struct vp_catalog *c, bool idle)
{
        if (!idle || PQstatus(CONN(c)) != CONNECTION_BAD)
                return false;
        reconnect_if_lost(c);
        return PQstatus(CONN(c)) == CONNECTION_OK;
}

static bool idle(struct vp_catalog *c)
{
        return PQtransactionStatus(CONN(c)) == PQTRANS_IDLE;
}

static int connect_error(struct vp_catalog *c, PGconn *conn, struct vp_error *err)
{
        _cleanup_free_ char *m = first_line(PQerrorMessage(conn));
        /* libpq's words begin with where it tried: the catalog's name says that. */
        const char *why = strstr(m, "failed: ") ? strstr(m, "failed: ") + 8 : m;
        int code = strstr(m, "does not exist") ? -ENOENT
                 : strstr(m, "authentication") || strstr(m, "password") || strstr(m, "permission") ? -EACCES
                 : -ECONNREFUSED;
        return vp_err(err, code, "catalog '%s': cannot connect to PostgreSQL: %s", c->path, why);
}

/* 1 when the catalog's meta table exists; else 0, the number of tables
 * the schema holds in *ret. (Asked in that order: the first is one lookup,
 * the second plans a view of three system catalogs, on every command.) */
static int table_count(struct vp_catalog *c, int64_t *ret)
{
        PGresult *res = PQexec(CONN(c), "SELECT to_regclass('meta') IS NOT NULL");
        if (!result_ok(c, res))
                return -1;
        bool meta = PQgetvalue(res, 0, 0)[0] == 't';
        PQclear(res);
        if (meta)
                return 1;
        res = PQexec(CONN(c), "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()");
        if (!result_ok(c, res))
                return -1;
        *ret = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        return 0;
}

static int pg_open(struct vp_catalog *c, bool create, bool readonly, bool *ret_fresh, struct vp_error *err)
{
        struct pg *g = vp_xcalloc(1, sizeof(*g));
        pthread_mutex_init(&g->cache_lock, NULL);
        g->readonly = readonly;
        c->priv = g;
        PGconn *conn = PQconnectdb(c->target);
        c->db = conn;
        if (!conn)
                return vp_err(err, -ENOMEM, "catalog '%s': out of memory", c->path);
        if (PQstatus(conn) != CONNECTION_OK)
                return connect_error(c, conn, err);
        if (session_setup(c) < 0)
                return vp_cat_db_err(c, err, "cannot set up the session");
        int64_t tables = 0;
        int meta = table_count(c, &tables);
        if (meta < 0)
                return vp_cat_db_err(c, err, "cannot read the database");
        *ret_fresh = false;
        if (meta)
                return 0;
        if (tables > 0)
                return vp_err(err, -EBADMSG, "catalog '%s': the database holds tables but no vpool catalog; "
                              "refusing to use it", c->path);
        if (!create || readonly)
                return vp_err(err, -ENOENT, "catalog '%s' is an empty database; run 'vpool init --storage DIR' first",
                              c->path);
        *ret_fresh = true;
        return 0;
}

static void pg_close(struct vp_catalog *c)
{
        struct pg *g = PGP(c);
        PQfinish(CONN(c));
        if (!g)
                return;
        forget_prepared(g);
        free(g->message);
        pthread_mutex_destroy(&g->cache_lock);
        free(g);
}

static int pg_exec(struct vp_catalog *c, const char *sql)
{
        reconnect_if_lost(c);
        /* PostgreSQL answers COMMIT of a failed transaction with a rollback,
         * not an error: vpool must not take that for a commit. */
        if (streq(sql, "COMMIT;") && PQtransactionStatus(CONN(c)) == PQTRANS_INERROR) {
                snprintf(PGP(c)->state, sizeof(PGP(c)->state), "25P02");
                free(PGP(c)->message);
                PGP(c)->message = vp_strdup("the transaction failed before its commit");
                run(c, "ROLLBACK;");
                return -1;
        }
        return run(c, sql);
}

static bool pg_in_transaction(struct vp_catalog *c)
{
        PGTransactionStatusType t = PQtransactionStatus(CONN(c));
        return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

/* Run the undo SQL after a failure, keeping that failure as the one to
 * report (not the undo's own). */
static void undo_keeping_failure(struct vp_catalog *c, const char *sql)
{
        struct pg *g = PGP(c);
        char state[6];
        memcpy(state, g->state, sizeof(state));
        char *m = TAKE_PTR(g->message);
        PQclear(PQexec(CONN(c), sql));
        memcpy(g->state, state, sizeof(state));
        free(g->message);
        g->message = m;
}

static int pg_begin(struct vp_catalog *c)
{
        reconnect_if_lost(c);
        char sql[96];
        snprintf(sql, sizeof(sql), "BEGIN; SELECT pg_advisory_xact_lock(%lld);", (long long)lock_key(CATALOG_LOCK));
        bool was_idle = idle(c);
        if (run(c, sql) == 0 || (lost_idle(c, was_idle) && run(c, sql) == 0))
                return 0;
        /* The lock timeout is what to say. */
        undo_keeping_failure(c, "ROLLBACK;");
        return -1;
}

/* ---- statements ----------------------------------------------------------- */

/* SQL with ?N and ? written as PostgreSQL's $N (literals left alone);
 * *ret_n the highest number. */
static char *placeholders(const char *sql, int *ret_n)
{
        char *out = vp_xcalloc(1, strlen(sql) * 2 + 1);
        int next = 0, max = 0;
        bool quoted = false;
        char *o = out;
        for (const char *p = sql; *p; p++) {
                if (*p == '\'')
                        quoted = !quoted;
                if (*p != '?' || quoted) {
                        *o++ = *p;
                        continue;
                }
                int n = 0;
                while (isdigit((unsigned char)p[1]))
                        n = n * 10 + (*++p - '0');
                if (n == 0)
                        n = ++next;
                max = n > max ? n : max;
                o += sprintf(o, "$%d", n);
        }
        *ret_n = max;
        return out;
}

static bool is_write(const char *sql)
{
        while (isspace((unsigned char)*sql))
                sql++;
        return strncasecmp(sql, "INSERT", 6) == 0 || strncasecmp(sql, "UPDATE", 6) == 0 ||
               strncasecmp(sql, "DELETE", 6) == 0;
}

/* The name SQL is prepared under on this connection: found in the cache or
 * prepared now (and kept, the oldest let go when the cache is full). */
static int prepared_name(struct vp_catalog *c, const char *sql, char name[16], int *ret_n)
{
        struct pg *g = PGP(c);
        _cleanup_free_ char *text = placeholders(sql, ret_n);
        pthread_mutex_lock(&g->cache_lock);
        for (size_t i = 0; i < PG_CACHE; i++)
                if (g->cache[i].sql && streq(g->cache[i].sql, sql)) {
                        memcpy(name, g->cache[i].name, 16);
                        pthread_mutex_unlock(&g->cache_lock);
                        return 0;
                }
        struct pg_slot *e = &g->cache[g->evict];
        g->evict = (g->evict + 1) % PG_CACHE;
        if (e->sql) {
                char drop[40];
                snprintf(drop, sizeof(drop), "DEALLOCATE %s", e->name);
                PQclear(PQexec(CONN(c), drop));
                free(e->sql);
                e->sql = NULL;
        }
        snprintf(e->name, sizeof(e->name), "vp%u", ++g->serial);
        PGresult *res = PQprepare(CONN(c), e->name, text, 0, NULL);
        int r = result_ok(c, res) ? 0 : -1;
        if (r == 0) {
                PQclear(res);
                e->sql = vp_strdup(sql);
                memcpy(name, e->name, 16);
        }
        pthread_mutex_unlock(&g->cache_lock);
        return r;
}

static int pg_prepare(struct vp_catalog *c, const char *sql, struct cat_stmt **ret)
{
        reconnect_if_lost(c);
        struct cat_stmt *s = vp_xcalloc(1, sizeof(*s));
        bool was_idle = idle(c);
        s->generation = PGP(c)->generation;
        int r = prepared_name(c, sql, s->name, &s->nparams);
        if (r < 0 && lost_idle(c, was_idle)) {
                s->generation = PGP(c)->generation;
                r = prepared_name(c, sql, s->name, &s->nparams);
        }
        if (r < 0 || s->nparams > PG_PARAMS) {
                free(s);
                return -1;
        }
        s->sql = vp_strdup(sql);
        s->write = is_write(sql);
        s->row = -1;
        *ret = s;
        return 0;
}

static void pg_finish(struct vp_catalog *c, struct cat_stmt *s)
{
        PQclear(s->res);
        free(s->sql);
        free(s);
}

static void pg_bind_text(struct cat_stmt *s, int idx, const char *v)
{
        if (idx >= 1 && idx <= s->nparams)
                s->values[idx - 1] = v;
}

static void pg_bind_int(struct cat_stmt *s, int idx, int64_t v)
{
        if (idx < 1 || idx > s->nparams)
                return;
        snprintf(s->ints[idx - 1], sizeof(s->ints[0]), "%lld", (long long)v);
        s->values[idx - 1] = s->ints[idx - 1];
}

static void pg_bind_null(struct cat_stmt *s, int idx)
{
        if (idx >= 1 && idx <= s->nparams)
                s->values[idx - 1] = NULL;
}

/* Prepared on a connection since made again: prepared anew. */
static int prepared_here(struct vp_catalog *c, struct cat_stmt *s)
{
        int n;
        if (s->generation == PGP(c)->generation)
                return 0;
        s->generation = PGP(c)->generation;
        return prepared_name(c, s->sql, s->name, &n);
}

static PGresult *execute(struct vp_catalog *c, struct cat_stmt *s)
{
        if (prepared_here(c, s) < 0)
                return NULL;
        return PQexecPrepared(CONN(c), s->name, s->nparams, s->values, NULL, NULL, 0);
}

static bool status_ok(const PGresult *res)
{
        ExecStatusType st = PQresultStatus(res);
        return res && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK);
}

/* SAVEPOINT, S, RELEASE in one round trip (libpq's pipeline mode): the
 * writes of a migration's steps are the hot path. S's result, or NULL with
 * the first failure kept (the savepoint then still to be rolled back to). */
static PGresult *savepoint_pipelined(struct vp_catalog *c, struct cat_stmt *s)
{
        PGconn *conn = CONN(c);
        if (prepared_here(c, s) < 0 || !PQenterPipelineMode(conn)) {
                set_failure(c, NULL);
                return NULL;
        }
        bool sent = PQsendQueryParams(conn, "SAVEPOINT vp_write", 0, NULL, NULL, NULL, NULL, 0) &&
                    PQsendQueryPrepared(conn, s->name, s->nparams, s->values, NULL, NULL, 0) &&
                    PQsendQueryParams(conn, "RELEASE SAVEPOINT vp_write", 0, NULL, NULL, NULL, NULL, 0) &&
                    PQpipelineSync(conn);
        PGresult *mine = NULL, *failed = NULL;
        /* Each query's results end with a NULL; the sync's closes the lot. */
        for (int q = 0; sent;) {
                PGresult *r = PQgetResult(conn);
                if (!r) {
                        if (++q > 3)
                                break;
                        continue;
                }
                ExecStatusType st = PQresultStatus(r);
                if (st == PGRES_PIPELINE_SYNC) {
                        PQclear(r);
                        break;
                }
                if (!failed && st != PGRES_PIPELINE_ABORTED && !status_ok(r))
                        failed = r;
                else if (q == 1 && !mine)
                        mine = r;
                else
                        PQclear(r);
        }
        PQexitPipelineMode(conn);
        if (sent && !failed)
                return mine;
        set_failure(c, failed);
        PQclear(failed);
        PQclear(mine);
        return NULL;
}

/* Run the write S inside a transaction under a savepoint: a failure undoes
 * S alone. Outside one, in a transaction of its own that takes the
 * catalog's write lock (see the top of this file). */
static PGresult *execute_write(struct vp_catalog *c, struct cat_stmt *s)
{
        bool own = !pg_in_transaction(c);
        if (!own && c->whole) {
                /* No savepoint: a failure fails the transaction, which the
                 * caller rolls back whole. */
                PGresult *res = execute(c, s);
                if (status_ok(res))
                        return res;
                set_failure(c, res);
                PQclear(res);
                return NULL;
        }
        if (!own) {
                PGresult *res = savepoint_pipelined(c, s);
                if (!res)
                        undo_keeping_failure(c, "ROLLBACK TO SAVEPOINT vp_write; RELEASE SAVEPOINT vp_write;");
                return res;
        }
        if (pg_begin(c) < 0)
                return NULL;
        PGresult *res = execute(c, s);
        if (!status_ok(res)) {
                set_failure(c, res);
                undo_keeping_failure(c, "ROLLBACK;");
                PQclear(res);
                return NULL;
        }
        if (run(c, "COMMIT;") < 0) {
                PQclear(res);
                return NULL;
        }
        return res;
}

static int pg_step(struct vp_catalog *c, struct cat_stmt *s)
{
        if (!s->res) {
                PGresult *res;
                if (s->write) {
                        res = execute_write(c, s);
                } else {
                        bool was_idle = idle(c);
                        res = execute(c, s);
                        if (!result_ok(c, res))
                                res = lost_idle(c, was_idle) ? execute(c, s) : NULL;
                        if (res && !result_ok(c, res))
                                res = NULL;
                }
                if (!res)
                        return -1;
                s->res = res;
        }
        s->row++;
        return s->row < PQntuples(s->res) ? 1 : 0;
}

static const char *pg_text(struct cat_stmt *s, int i)
{
        if (!s->res || s->row < 0 || s->row >= PQntuples(s->res) || PQgetisnull(s->res, s->row, i))
                return NULL;
        return PQgetvalue(s->res, s->row, i);
}

static int64_t pg_integer(struct cat_stmt *s, int i)
{
        const char *v = pg_text(s, i);
        if (!v)
                return 0;
        /* A boolean (an expression's result) reads as SQLite's 1 or 0. */
        if (streq(v, "t") || streq(v, "f"))
                return v[0] == 't';
        return strtoll(v, NULL, 10);
}

/* Notifications of new events (the events table's trigger sends them on
 * commit) counted as they come: no round trip to the server, so a watcher
 * may ask every few milliseconds. */
static int pg_data_version(struct vp_catalog *c, int64_t *ret)
{
        struct pg *g = PGP(c);
        reconnect_if_lost(c);
        if (!g->listening) {
                if (run(c, "LISTEN vpool_events;") < 0)
                        return -1;
                g->listening = true;
                g->notified++;
        }
        if (!PQconsumeInput(CONN(c))) {
                set_failure(c, NULL);
                return -1;
        }
        for (PGnotify *n; (n = PQnotifies(CONN(c)));) {
                g->notified++;
                PQfreemem(n);
        }
        *ret = g->notified;
        return 0;
}

/* ---- schema --------------------------------------------------------------- */

/* The tables' text, SQLite's spelling, as PostgreSQL's: an id is a 64-bit
 * identity (never handed out twice, like SQLite's AUTOINCREMENT), every
 * integer 64 bits (SQLite's INTEGER is; PostgreSQL's is 32). */
static char *translate(const char *sql)
{
        static const struct { const char *from, *to; } words[] = {
                { "INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY" },
                { "INTEGER PRIMARY KEY", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY" },
                { "INTEGER", "BIGINT" },
        };
        size_t cap = strlen(sql) * 3 + 1, o = 0;
        char *out = vp_xcalloc(1, cap);
        for (const char *p = sql; *p;) {
                size_t i = 0;
                for (; i < ELEMENTSOF(words); i++) {
                        size_t l = strlen(words[i].from);
                        if (strncmp(p, words[i].from, l) == 0 && !isalnum((unsigned char)p[l]) && p[l] != '_') {
                                o += (size_t)sprintf(out + o, "%s", words[i].to);
                                p += l;
                                break;
                        }
                }
                if (i == ELEMENTSOF(words))
                        out[o++] = *p++;
        }
        return out;
}

/* The triggers, PostgreSQL's spelling of catalog.c's SQLite triggers (one
 * function each; what they write is the same). Events are stamped with the
 * clock at the statement (SQLite's 'now'), UTC, milliseconds; each event
 * wakes the listeners of vpool_events when its transaction commits. */
#define PG_EVENT_AT "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define PG_TRIGGER(name, when, table, body) \
        "CREATE FUNCTION " name "() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN " body " RETURN NULL; END $$;" \
        "CREATE TRIGGER " name " AFTER " when " ON " table " FOR EACH ROW EXECUTE FUNCTION " name "();"
static const char pg_triggers_sql[] =
        PG_TRIGGER("migrations_names", "INSERT", "migrations",
                   "UPDATE migrations SET from_env = (SELECT name FROM envs WHERE id = NEW.from_env_id),"
                   " to_env = (SELECT name FROM envs WHERE id = NEW.to_env_id),"
                   " from_profile = (SELECT name FROM profiles WHERE id = NEW.from_profile_id),"
                   " to_profile = (SELECT name FROM profiles WHERE id = NEW.to_profile_id) WHERE id = NEW.id;")
        PG_TRIGGER("migration_vms_names", "INSERT", "migration_vms",
                   "UPDATE migration_vms SET src_env = (SELECT name FROM envs WHERE id = NEW.src_env_id)"
                   " WHERE id = NEW.id;")
        PG_TRIGGER("events_step", "INSERT", "journal",
                   "INSERT INTO events(at, kind, subject, pool, migration_id, vm, state, detail) VALUES(" PG_EVENT_AT ","
                   " 'step', NEW.vm_name, (SELECT pool_name FROM migrations WHERE id = NEW.migration_id),"
                   " NEW.migration_id, NEW.vm_name, NEW.step, NEW.detail);")
        PG_TRIGGER("events_migration", "INSERT OR UPDATE OF state", "migrations",
                   "IF TG_OP = 'INSERT' OR OLD.state IS DISTINCT FROM NEW.state THEN"
                   " INSERT INTO events(at, kind, subject, pool, migration_id, state) VALUES(" PG_EVENT_AT ","
                   " 'migration', NEW.id, NEW.pool_name, NEW.id, NEW.state); END IF;")
        PG_TRIGGER("events_pool", "INSERT OR UPDATE OF state OR DELETE", "pools",
                   "IF TG_OP = 'DELETE' THEN"
                   " INSERT INTO events(at, kind, subject, pool, state) VALUES(" PG_EVENT_AT ", 'pool', OLD.name,"
                   " OLD.name, 'removed');"
                   " ELSIF TG_OP = 'INSERT' OR OLD.state IS DISTINCT FROM NEW.state THEN"
                   " INSERT INTO events(at, kind, subject, pool, state) VALUES(" PG_EVENT_AT ", 'pool', NEW.name,"
                   " NEW.name, NEW.state); END IF;")
        PG_TRIGGER("events_host", "UPDATE OF maintenance, unreachable", "hosts",
                   "IF OLD.maintenance IS DISTINCT FROM NEW.maintenance THEN"
                   " INSERT INTO events(at, kind, subject, state) VALUES(" PG_EVENT_AT ", 'host',"
                   " (SELECT name FROM envs WHERE id = NEW.env_id) || '/' || NEW.name,"
                   " CASE NEW.maintenance WHEN 0 THEN 'in service' ELSE 'maintenance' END); END IF;"
                   " IF (OLD.unreachable = '') IS DISTINCT FROM (NEW.unreachable = '') THEN"
                   " INSERT INTO events(at, kind, subject, state) VALUES(" PG_EVENT_AT ", 'host',"
                   " (SELECT name FROM envs WHERE id = NEW.env_id) || '/' || NEW.name,"
                   " CASE NEW.unreachable WHEN '' THEN 'reachable' ELSE 'unreachable' END); END IF;")
        "CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " PERFORM pg_notify('vpool_events', ''); RETURN NULL; END $$;"
        "CREATE TRIGGER events_notify AFTER INSERT ON events FOR EACH STATEMENT EXECUTE FUNCTION events_notify();";

static char *pg_schema(void)
{
        _cleanup_free_ char *tables = vp_cat_tables_sql();
        _cleanup_free_ char *pg = translate(tables);
        return vp_strdupf("%s%s", pg, pg_triggers_sql);
}

/* PostgreSQL's own text of an upgrade step, where SQLite's does not
 * translate (a trigger, a table rebuilt); NULL: SQLite's, translated. */
static const char *const pg_upgrades[VP_SCHEMA_VERSION] = { NULL };

static int pg_upgrade(struct vp_catalog *c, int from, struct vp_error *err)
{
        if (from < PG_FIRST_SCHEMA)
                return vp_err(err, -EBADMSG, "catalog '%s' is not a vpool catalog of schema %d", c->path,
                              VP_SCHEMA_VERSION);
        int r = 0;
        for (int v = from; r >= 0 && v < VP_SCHEMA_VERSION; v++) {
                _cleanup_free_ char *step = pg_upgrades[v] ? vp_strdup(pg_upgrades[v])
                                                           : translate(vp_cat_sqlite_upgrades[v]);
                _cleanup_free_ char *sql = vp_strdupf("%sUPDATE meta SET value = '%d' WHERE key = 'schema';", step,
                                                      v + 1);
                if ((r = vp_catalog_begin(c, err)) >= 0 && (r = vp_cat_exec(c, sql, err)) >= 0)
                        r = vp_cat_exec(c, "COMMIT;", err);
                vp_catalog_rollback(c);
        }
        return r;
}

/* pg_dump's custom format (pg_restore reads it), of the catalog's database
 * as one snapshot. The connection string is pg_dump's argument: a
 * password written in it shows in the process list while it runs (a
 * ~/.pgpass, or PGPASSWORD, keeps it out). */
static int pg_backup(struct vp_catalog *c, const char *file, struct vp_error *err)
{
        const char *argv[] = { "pg_dump", "--format=custom", "--no-password", "--file", file, "--dbname", c->target,
                               NULL };
        int r = vp_spawn(argv, err);
        if (r < 0)
                vp_err_prefix(err, "catalog '%s': backup to '%s'", c->path, file);
        return r;
}

/* An identity column hands out ids from its sequence, which rows written
 * with their own ids do not move. */
static int pg_ids_reset(struct vp_catalog *c, const char *table, struct vp_error *err)
{
        _cleanup_free_ char *sql = vp_strdupf("SELECT setval(pg_get_serial_sequence('%s', 'id'),"
                                              " COALESCE((SELECT MAX(id) FROM %s), 0) + 1, false);",
                                              table, table);
        return vp_cat_exec(c, sql, err);
}

const struct cat_engine vp_cat_pg = {
        .name = "postgresql",
        .open = pg_open,
        .close = pg_close,
        .exec = pg_exec,
        .prepare = pg_prepare,
        .finish = pg_finish,
        .bind_text = pg_bind_text,
        .bind_int = pg_bind_int,
        .bind_null = pg_bind_null,
        .step = pg_step,
        .text = pg_text,
        .integer = pg_integer,
        .fail = pg_fail,
        .message = pg_message,
        .begin = pg_begin,
        .in_transaction = pg_in_transaction,
        .data_version = pg_data_version,
        .schema = pg_schema,
        .upgrade = pg_upgrade,
        .ddl = translate,
        .foreign_keys_sql =
                "SELECT p.relname, a.attname, CASE k.confdeltype WHEN 'n' THEN 'SET NULL' WHEN 'c' THEN 'CASCADE'"
                " WHEN 'r' THEN 'RESTRICT' WHEN 'd' THEN 'SET DEFAULT' ELSE 'NO ACTION' END"
                " FROM pg_constraint k JOIN pg_class p ON p.oid = k.confrelid"
                " JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]"
                " WHERE k.contype = 'f' AND k.conrelid = to_regclass(?1) ORDER BY k.oid",
        .has_table_sql = "SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = ?1",
        .read_snapshot_sql = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;",
        .ids_reset = pg_ids_reset,
        .backup = pg_backup,
};

/* ---- locks across controllers -------------------------------------------- */

int vp_catalog_lock(struct vp_catalog *c, const char *name, int wait_ms, int *ret_fd, struct vp_error *err)
{
        if (c->e != &vp_cat_pg)
                return -EOPNOTSUPP;
        PGconn *conn = PQconnectdb(c->target);
        if (!conn || PQstatus(conn) != CONNECTION_OK) {
                _cleanup_free_ char *m = first_line(conn ? PQerrorMessage(conn) : NULL);
                PQfinish(conn);
                return vp_err(err, -ECONNREFUSED, "catalog '%s': cannot connect to take a lock: %s", c->path, m);
        }
        char sql[160];
        if (wait_ms > 0)
                snprintf(sql, sizeof(sql), "SET lock_timeout = %d; SELECT pg_advisory_lock(%lld)", wait_ms,
                         (long long)lock_key(name));
        else
                snprintf(sql, sizeof(sql), "SELECT pg_try_advisory_lock(%lld)", (long long)lock_key(name));
        PGresult *res = PQexec(conn, sql);
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        int r = 0;
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                _cleanup_free_ char *m = first_line(PQerrorMessage(conn));
                r = state && streq(state, "55P03") ? -EBUSY
                                                   : vp_err(err, -EIO, "catalog '%s': cannot take a lock: %s", c->path, m);
        } else if (PQgetvalue(res, 0, 0)[0] == 'f') {
                r = -EBUSY;
        }
        PQclear(res);
        /* The session holds the lock while its socket is open: the caller
         * gets the socket, and libpq, which would end the session when it
         * lets the connection go, says goodbye to /dev/null instead. */
        int fd = r < 0 ? -1 : fcntl(PQsocket(conn), F_DUPFD_CLOEXEC, 3);
        int null = fd < 0 ? -1 : open("/dev/null", O_RDWR | O_CLOEXEC);
        if (r >= 0 && (fd < 0 || null < 0 || dup3(null, PQsocket(conn), O_CLOEXEC) < 0))
                r = vp_err(err, -errno, "cannot keep the lock's connection: %s", strerror(errno));
        if (null >= 0)
                close(null);
        PQfinish(conn);
        if (r < 0) {
                if (fd >= 0)
                        close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

int vp_catalog_lock_held(struct vp_catalog *c, const char *name)
{
        if (c->e != &vp_cat_pg)
                return -EOPNOTSUPP;
        uint64_t k = (uint64_t)lock_key(name);
        /* A bigint key shows in pg_locks as its two halves, objsubid 1. */
        _cleanup_free_ char *sql = vp_strdupf(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND classid = %u AND objid = %u", (unsigned)(k >> 32), (unsigned)(k & 0xffffffffu));
        reconnect_if_lost(c);
        PGresult *res = PQexec(CONN(c), sql);
        if (!result_ok(c, res))
                return -EIO;
        int held = strtoll(PQgetvalue(res, 0, 0), NULL, 10) > 0;
        PQclear(res);
        return held;
}

bool vp_catalog_lock_lost(int fd, int timeout_ms)
{
        /* libpq left the session idle after its answer to the lock: a
         * server going away says so (ErrorResponse "terminating connection
         * due to administrator command") and closes; nothing else comes
         * unasked (the session listens to no channel). Writing to it is not
         * an option: over TLS the stream is libpq's, gone with its state. */
        struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };
        int k;
        while ((k = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
                ;
        return k != 0;
}
