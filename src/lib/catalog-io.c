/* A whole catalog out and in: one JSON document of its meta and every
 * table's rows (docs/json.md, "catalog export"), the same on both engines,
 * so a catalog moves from SQLite to PostgreSQL and back; and a backup in
 * the engine's own format. */
#include "catalog-engine.h"

#include <ctype.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include "name.h"

#define EXPORT_FORMAT "vpool-catalog"
#define EXPORT_VERSION 1

/* Every table, parents before the rows that refer to them. The events come
 * last: the triggers write events of their own as the other tables fill,
 * and those give way to the exported ones. */
static const struct vp_table *const io_tables[] = {
        &vp_table_env,     &vp_table_host,        &vp_table_image,       &vp_table_profile, &vp_table_pool,
        &vp_table_vm,      &vp_table_migration,   &vp_table_migvm,       &vp_table_journal, &vp_table_fence,
        &vp_table_history, &vp_table_token,       &vp_table_retirement,  &vp_table_inspection,
        &vp_table_event,
};

/* Rows whose insert a trigger rewrites (the names a migration keeps of its
 * envs and profiles, found by id: an env removed since has none to find):
 * written again as exported once inserted. */
static bool rewritten_on_insert(const struct vp_table *t)
{
        return t == &vp_table_migration || t == &vp_table_migvm;
}

struct io_stmt {
        struct vp_catalog *c;
        struct cat_stmt *s;
};

static void io_stmt_finish(struct io_stmt *s)
{
        if (s->s)
                s->c->e->finish(s->c, s->s);
}
#define _cleanup_io_stmt_ __attribute__((cleanup(io_stmt_finish)))

static int io_prepare(struct vp_catalog *c, const char *sql, struct io_stmt *s, struct vp_error *err)
{
        s->c = c;
        if (c->e->prepare(c, sql, &s->s) < 0) {
                s->s = NULL;
                return vp_cat_db_err(c, err, "cannot prepare a query");
        }
        return 0;
}

/* ---- export ----------------------------------------------------------------- */

static struct json_object *column_value(struct vp_catalog *c, struct cat_stmt *s, const struct vp_col *col, int i)
{
        const char *v = c->e->text(s, i);
        if (!v)
                return NULL;
        if (col->type == VP_COL_TEXT)
                return json_object_new_string(v);
        return json_object_new_int64(c->e->integer(s, i));
}

static int export_table(struct vp_catalog *c, const struct vp_table *t, struct json_object *tables,
                        struct vp_error *err)
{
        _cleanup_free_ char *cols = vp_cat_column_list(t, 0);
        _cleanup_free_ char *sql = vp_strdupf("SELECT %s FROM %s ORDER BY 1", cols, t->name);
        _cleanup_io_stmt_ struct io_stmt s = { 0 };
        int r = io_prepare(c, sql, &s, err);
        if (r < 0)
                return r;
        struct json_object *names = json_object_new_array(), *rows = json_object_new_array();
        for (size_t i = 0; i < t->ncols; i++)
                json_object_array_add(names, json_object_new_string(t->cols[i].name));
        while ((r = c->e->step(c, s.s)) > 0) {
                struct json_object *row = json_object_new_array();
                for (size_t i = 0; i < t->ncols; i++)
                        json_object_array_add(row, column_value(c, s.s, &t->cols[i], (int)i));
                json_object_array_add(rows, row);
        }
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "columns", names);
        json_object_object_add(o, "rows", rows);
        json_object_object_add(tables, t->name, o);
        return r < 0 ? vp_cat_db_err(c, err, "read failed") : 0;
}

static int export_meta(struct vp_catalog *c, struct json_object *meta, struct vp_error *err)
{
        _cleanup_io_stmt_ struct io_stmt s = { 0 };
        int r = io_prepare(c, "SELECT key, value FROM meta ORDER BY key", &s, err);
        if (r < 0)
                return r;
        while ((r = c->e->step(c, s.s)) > 0)
                json_object_object_add(meta, c->e->text(s.s, 0), json_object_new_string(c->e->text(s.s, 1)));
        return r < 0 ? vp_cat_db_err(c, err, "read failed") : 0;
}

int vp_catalog_export(struct vp_catalog *c, struct json_object **ret, struct vp_error *err)
{
        int schema = vp_cat_schema_version(c, err);
        if (schema < 0)
                return schema;
        /* One read transaction: the tables agree with each other. */
        int r = vp_cat_exec(c, c->e->read_snapshot_sql, err);
        if (r < 0)
                return r;
        struct json_object *o = json_object_new_object(), *meta = json_object_new_object(),
                           *tables = json_object_new_object();
        _cleanup_free_ char *now = vp_now_iso();
        json_object_object_add(o, "format", json_object_new_string(EXPORT_FORMAT));
        json_object_object_add(o, "version", json_object_new_int(EXPORT_VERSION));
        json_object_object_add(o, "schema", json_object_new_int(schema));
        json_object_object_add(o, "engine", json_object_new_string(c->e->name));
        json_object_object_add(o, "exported", json_object_new_string(now));
        json_object_object_add(o, "meta", meta);
        json_object_object_add(o, "tables", tables);
        r = export_meta(c, meta, err);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(io_tables); i++)
                r = export_table(c, io_tables[i], tables, err);
        vp_catalog_rollback(c);
        if (r < 0) {
                json_object_put(o);
                return r;
        }
        *ret = o;
        return 0;
}

/* ---- import: the document checked whole first -------------------------------- */

static struct json_object *member(struct json_object *o, const char *key, enum json_type type)
{
        struct json_object *v = NULL;
        if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v) ||
            !json_object_is_type(v, type))
                return NULL;
        return v;
}

static int check_value(const struct vp_table *t, const struct vp_col *col, struct json_object *v, size_t row,
                       struct vp_error *err)
{
        if (!v)
                return 0;
        bool ok = col->type == VP_COL_TEXT ? json_object_is_type(v, json_type_string)
                                           : json_object_is_type(v, json_type_int);
        if (!ok)
                return vp_err(err, -EINVAL, "table '%s', row %zu: column '%s' must be %s or null", t->name, row + 1,
                              col->name, col->type == VP_COL_TEXT ? "a string" : "an integer");
        return 0;
}

static int check_table(const struct vp_table *t, struct json_object *tables, struct vp_error *err)
{
        struct json_object *o = NULL, *names, *rows;
        if (!json_object_object_get_ex(tables, t->name, &o))
                return vp_err(err, -EINVAL, "the export has no table '%s'", t->name);
        if (!(names = member(o, "columns", json_type_array)) || !(rows = member(o, "rows", json_type_array)))
                return vp_err(err, -EINVAL, "table '%s' needs its \"columns\" and \"rows\" arrays", t->name);
        bool same = json_object_array_length(names) == t->ncols;
        for (size_t i = 0; same && i < t->ncols; i++) {
                struct json_object *n = json_object_array_get_idx(names, i);
                same = json_object_is_type(n, json_type_string) && streq(json_object_get_string(n), t->cols[i].name);
        }
        if (!same)
                return vp_err(err, -EINVAL, "table '%s': its columns are not this vpool's, in its order", t->name);
        for (size_t r = 0; r < json_object_array_length(rows); r++) {
                struct json_object *row = json_object_array_get_idx(rows, r);
                if (!json_object_is_type(row, json_type_array) || json_object_array_length(row) != t->ncols)
                        return vp_err(err, -EINVAL, "table '%s', row %zu: not an array of %zu values", t->name, r + 1,
                                      t->ncols);
                for (size_t i = 0; i < t->ncols; i++) {
                        int k = check_value(t, &t->cols[i], json_object_array_get_idx(row, i), r, err);
                        if (k < 0)
                                return k;
                }
        }
        return 0;
}

static int check_export(struct json_object *doc, struct vp_error *err)
{
        struct json_object *f = member(doc, "format", json_type_string), *v = member(doc, "version", json_type_int),
                           *s = member(doc, "schema", json_type_int), *meta = member(doc, "meta", json_type_object),
                           *tables = member(doc, "tables", json_type_object);
        if (!f || !streq(json_object_get_string(f), EXPORT_FORMAT))
                return vp_err(err, -EINVAL, "not a vpool catalog export (no \"format\": \"" EXPORT_FORMAT "\")");
        if (!v || json_object_get_int(v) != EXPORT_VERSION)
                return vp_err(err, -EINVAL, "an export of version %s; this vpool reads version %d",
                              v ? json_object_get_string(v) : "(none)", EXPORT_VERSION);
        if (!s || json_object_get_int(s) != VP_SCHEMA_VERSION)
                return vp_err(err, -EINVAL, "an export of a catalog of schema %s; this vpool's is %d (export it "
                              "again with this vpool from a catalog it has opened)",
                              s ? json_object_get_string(s) : "(none)", VP_SCHEMA_VERSION);
        if (!meta || !tables)
                return vp_err(err, -EINVAL, "the export needs its \"meta\" and \"tables\" objects");
        struct json_object_iter it;
        json_object_object_foreachC(meta, it) {
                char pb[64];
                if (!json_object_is_type(it.val, json_type_string))
                        return vp_err(err, -EINVAL, "meta '%s' must be a string", vp_printable(it.key, pb, sizeof(pb)));
        }
        size_t known = 0;
        for (size_t i = 0; i < ELEMENTSOF(io_tables); i++) {
                int k = check_table(io_tables[i], tables, err);
                if (k < 0)
                        return k;
                known++;
        }
        if ((size_t)json_object_object_length(tables) != known)
                return vp_err(err, -EINVAL, "the export has tables this vpool does not know");
        return 0;
}

/* ---- import: writing ----------------------------------------------------------- */

static int count_rows(struct vp_catalog *c, const char *table, int64_t *ret, struct vp_error *err)
{
        _cleanup_free_ char *sql = vp_strdupf("SELECT COUNT(*) FROM %s", table);
        _cleanup_io_stmt_ struct io_stmt s = { 0 };
        int r = io_prepare(c, sql, &s, err);
        if (r < 0)
                return r;
        if (c->e->step(c, s.s) <= 0)
                return vp_cat_db_err(c, err, "read failed");
        *ret = c->e->integer(s.s, 0);
        return 0;
}

/* A catalog vpool init just made: no row but its meta and the history of
 * its init (which gives way to the exported history), and the events. */
static int check_empty(struct vp_catalog *c, struct vp_error *err)
{
        for (size_t i = 0; i < ELEMENTSOF(io_tables); i++) {
                if (io_tables[i] == &vp_table_history || io_tables[i] == &vp_table_event)
                        continue;
                int64_t n = 0;
                int r = count_rows(c, io_tables[i]->name, &n, err);
                if (r < 0)
                        return r;
                if (n)
                        return vp_err(err, -EEXIST, "catalog '%s' is not empty (its table '%s' has %lld rows): "
                                      "import into a catalog just made by 'vpool init'", c->path, io_tables[i]->name,
                                      (long long)n);
        }
        return 0;
}

static void bind_value(struct vp_catalog *c, struct cat_stmt *s, int idx, struct json_object *v)
{
        if (!v)
                c->e->bind_null(s, idx);
        else if (json_object_is_type(v, json_type_string))
                c->e->bind_text(s, idx, json_object_get_string(v));
        else
                c->e->bind_int(s, idx, json_object_get_int64(v));
}

static char *placeholders(size_t from, size_t n)
{
        char *s = vp_xcalloc(n * 8 + 1, 1);
        for (size_t i = 0; i < n; i++)
                sprintf(s + strlen(s), "%s?%zu", i ? "," : "", from + i);
        return s;
}

/* SQL run once per row of T: placeholder I+1 is column I, or with ID_LAST
 * (vp_cat_update_sql's) column I is placeholder I and the id the last. */
static int write_rows(struct vp_catalog *c, const struct vp_table *t, struct json_object *rows, const char *sql,
                      bool id_last, struct vp_error *err)
{
        for (size_t r = 0; r < json_object_array_length(rows); r++) {
                struct json_object *row = json_object_array_get_idx(rows, r);
                _cleanup_io_stmt_ struct io_stmt s = { 0 };
                int k = io_prepare(c, sql, &s, err);
                if (k < 0)
                        return k;
                for (size_t i = 0; i < t->ncols; i++)
                        bind_value(c, s.s, id_last ? (int)(i ? i : t->ncols) : (int)i + 1,
                                   json_object_array_get_idx(row, i));
                if (c->e->step(c, s.s) < 0) {
                        _cleanup_free_ char *what = vp_strdupf("table '%s', row %zu cannot be written", t->name, r + 1);
                        return vp_cat_db_err(c, err, what);
                }
        }
        return 0;
}

static int import_table(struct vp_catalog *c, const struct vp_table *t, struct json_object *tables,
                        struct vp_error *err)
{
        struct json_object *rows = member(member(tables, t->name, json_type_object), "rows", json_type_array);
        _cleanup_free_ char *cols = vp_cat_column_list(t, 0), *ph = placeholders(1, t->ncols);
        _cleanup_free_ char *insert = vp_strdupf("INSERT INTO %s(%s) VALUES(%s)", t->name, cols, ph);
        int r = 0;
        if (t == &vp_table_event || t == &vp_table_history) {
                _cleanup_free_ char *del = vp_strdupf("DELETE FROM %s", t->name);
                r = vp_cat_exec(c, del, err);
        }
        if (r >= 0)
                r = write_rows(c, t, rows, insert, false, err);
        if (r >= 0 && rewritten_on_insert(t)) {
                _cleanup_free_ char *update = vp_cat_update_sql(t);
                r = write_rows(c, t, rows, update, true, err);
        }
        if (r >= 0 && c->e->ids_reset && streq(t->cols[0].name, "id"))
                r = c->e->ids_reset(c, t->name, err);
        return r;
}

static int import_meta(struct vp_catalog *c, struct json_object *meta, struct vp_error *err)
{
        struct json_object_iter it;
        json_object_object_foreachC(meta, it) {
                /* The schema is this vpool's (checked equal). */
                if (streq(it.key, "schema"))
                        continue;
                int r = vp_catalog_set_meta(c, it.key, json_object_get_string(it.val), err);
                if (r < 0)
                        return r;
        }
        return 0;
}

int vp_catalog_import(struct vp_catalog *c, struct json_object *doc, struct vp_error *err)
{
        int r = check_export(doc, err);
        if (r < 0)
                return r;
        int schema = vp_cat_schema_version(c, err);
        if (schema < 0)
                return schema;
        if ((r = vp_catalog_begin(c, err)) < 0)
                return r;
        struct json_object *tables = member(doc, "tables", json_type_object);
        r = check_empty(c, err);
        if (r >= 0)
                r = import_meta(c, member(doc, "meta", json_type_object), err);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(io_tables); i++)
                r = import_table(c, io_tables[i], tables, err);
        if (r >= 0)
                r = vp_catalog_commit(c, err);
        if (r < 0)
                vp_catalog_rollback(c);
        return r;
}

int vp_catalog_export_parse(const char *text, size_t len, const char *label, struct json_object **ret,
                            struct vp_error *err)
{
        struct json_tokener *tok = json_tokener_new();
        if (!tok)
                abort();
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        struct json_object *o = len <= INT32_MAX ? json_tokener_parse_ex(tok, text, (int)len) : NULL;
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        size_t used = tok->char_offset;
        json_tokener_free(tok);
        if (!o || jerr != json_tokener_success) {
                json_object_put(o);
                return vp_err(err, -EBADMSG, "'%s' is not JSON: %s", label,
                              len == 0                        ? "empty"
                              : jerr == json_tokener_continue ? "it ends before its document does"
                                                              : json_tokener_error_desc(jerr));
        }
        for (; used < len; used++)
                if (!isspace((unsigned char)text[used])) {
                        json_object_put(o);
                        return vp_err(err, -EBADMSG, "'%s' is not JSON: trailing data", label);
                }
        int r = check_export(o, err);
        if (r < 0) {
                json_object_put(o);
                vp_err_prefix(err, "'%s'", label);
                return r;
        }
        *ret = o;
        return 0;
}

/* PATH, a regular file of at most VP_CATALOG_EXPORT_MAX bytes, whole. */
static int read_export(const char *path, char **ret, size_t *ret_len, struct vp_error *err)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return vp_err(err, -errno, "cannot open '%s': %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return vp_err(err, -EINVAL, "'%s' is not a regular file", path);
        if ((uint64_t)st.st_size > VP_CATALOG_EXPORT_MAX)
                return vp_err(err, -EFBIG, "'%s' is larger than an export may be (%zu bytes)", path,
                              VP_CATALOG_EXPORT_MAX);
        size_t cap = (size_t)st.st_size + 1, n = 0;
        char *buf = vp_xcalloc(cap, 1);
        for (ssize_t k; n < cap - 1 && (k = read(fd, buf + n, cap - 1 - n)) != 0; n += (size_t)(k > 0 ? k : 0))
                if (k < 0 && errno != EINTR) {
                        int e = errno;
                        free(buf);
                        return vp_err(err, -e, "cannot read '%s': %s", path, strerror(e));
                }
        buf[n] = '\0';
        *ret = buf;
        *ret_len = n;
        return 0;
}

int vp_catalog_import_file(struct vp_catalog *c, const char *path, struct vp_error *err)
{
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = read_export(path, &text, &len, err);
        if (r < 0)
                return r;
        struct json_object *doc = NULL;
        if ((r = vp_catalog_export_parse(text, len, path, &doc, err)) < 0)
                return r;
        r = vp_catalog_import(c, doc, err);
        json_object_put(doc);
        return r;
}

/* ---- backup ---------------------------------------------------------------------- */

int vp_catalog_backup(struct vp_catalog *c, const char *file, struct vp_error *err)
{
        /* Never over something: made here, empty, for the engine to fill. */
        int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return vp_err(err, -errno, "cannot create '%s': %s", file, strerror(errno));
        close(fd);
        int r = c->e->backup(c, file, err);
        if (r < 0)
                unlink(file);
        return r;
}
