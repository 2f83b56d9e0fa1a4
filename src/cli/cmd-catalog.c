/* vpool catalog: the whole catalog out and in (between SQLite and
 * PostgreSQL), and its backup. */
#include "cli.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>


static int catalog_export(struct vp_cli *cli, const struct cli_args *a);
static int catalog_import(struct vp_cli *cli, const struct cli_args *a);
static int catalog_backup(struct vp_cli *cli, const struct cli_args *a);

static const struct cli_verb verbs[] = {
        { .name = "export", .fn = catalog_export, .usage = "FILE",
          .help = "Write the whole catalog, history and journal included, to FILE (a new file; - for\n"
                  "stdout) as one JSON document, the same from SQLite or PostgreSQL, for 'catalog import'.",
          .minpos = 1, .maxpos = 1 },
        { .name = "import", .fn = catalog_import, .usage = "FILE",
          .help = "Load an export into the catalog, which must be new ('vpool init' made it, nothing\n"
                  "else): every row with its id, in one transaction; refused whole, with nothing\n"
                  "written, if any of it is not this vpool's.",
          .minpos = 1, .maxpos = 1 },
        { .name = "backup", .fn = catalog_backup, .usage = "FILE",
          .help = "Copy the catalog to FILE (a new file) while it is in use: with SQLite's online\n"
                  "backup a catalog file, with PostgreSQL pg_dump's custom format (pg_restore reads it).",
          .minpos = 1, .maxpos = 1 },
        { 0 },
};

const struct cli_noun cli_noun_catalog = {
        .name = "catalog", .help = "the catalog itself: export, import, backup",
        .summary = "The catalog as a whole: moved between SQLite and PostgreSQL, and backed up.", .verbs = verbs,
};

/* DOC written to PATH, created (never over a file), or to stdout for "-". */
static int write_export(const char *path, struct json_object *doc, struct vp_error *err)
{
        const char *text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN);
        if (streq(path, "-")) {
                puts(text);
                return fflush(stdout) == 0 ? 0 : vp_err(err, -EIO, "cannot write stdout");
        }
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return vp_err(err, -errno, "cannot create '%s': %s", path, strerror(errno));
        size_t n = strlen(text);
        bool ok = write(fd, text, n) == (ssize_t)n && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
        int e = errno;
        ok = close(fd) == 0 && ok;
        if (!ok) {
                unlink(path);
                return vp_err(err, -e, "cannot write '%s': %s", path, strerror(e));
        }
        return 0;
}

static int catalog_export(struct vp_cli *cli, const struct cli_args *a)
{
        struct vp_error err = { 0 };
        struct vp_ctx ctx;
        if (cli_open(cli, &ctx))
                return 1;
        struct json_object *doc = NULL;
        int r = vp_catalog_export(ctx.cat, &doc, &err);
        vp_ctx_close(&ctx);
        if (r >= 0)
                r = write_export(a->pos[0], doc, &err);
        json_object_put(doc);
        if (r < 0)
                return cli_fail(&err);
        if (!cli->quiet && !cli->json && !streq(a->pos[0], "-"))
                fprintf(stderr, "vpool: catalog exported to %s\n", a->pos[0]);
        return 0;
}

static int catalog_import(struct vp_cli *cli, const struct cli_args *a)
{
        struct vp_error err = { 0 };
        /* Opened here, not by cli_open: the command is recorded once the
         * history it replaces is in. */
        struct vp_catalog *c = NULL;
        int r = vp_catalog_open(cli->catalog, false, &c, &err);
        if (r >= 0)
                r = vp_catalog_import_file(c, a->pos[0], &err);
        if (c)
                vp_catalog_close(c);
        if (r < 0)
                return cli_fail(&err);
        if (cli_history_start(cli) != 0)
                return 1;
        _cleanup_free_ char *label = vp_catalog_label(cli->catalog);
        if (!cli->quiet && !cli->json)
                printf("catalog %s imported from %s\n", label, a->pos[0]);
        return 0;
}

static int catalog_backup(struct vp_cli *cli, const struct cli_args *a)
{
        struct vp_error err = { 0 };
        struct vp_ctx ctx;
        if (cli_open(cli, &ctx))
                return 1;
        int r = vp_catalog_backup(ctx.cat, a->pos[0], &err);
        vp_ctx_close(&ctx);
        if (r < 0)
                return cli_fail(&err);
        if (!cli->quiet && !cli->json)
                printf("catalog backed up to %s\n", a->pos[0]);
        return 0;
}
