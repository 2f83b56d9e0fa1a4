#include "cli.h"

#include <assert.h>
#include <getopt.h>
#include <string.h>

#include "name.h"
#include "parse.h"

/* "NOUN VERB", or just "NOUN" for a noun that is its own verb (named as the noun). */
static const char *verb_words(const struct vp_cli *cli, const struct cli_verb *v, char *buf, size_t n)
{
        if (streq(cli->noun, v->name))
                snprintf(buf, n, "%s", v->name);
        else
                snprintf(buf, n, "%s %s", cli->noun, v->name);
        return buf;
}

static void verb_help(struct vp_cli *cli, const struct cli_verb *v)
{
        char w[64];
        printf("Usage: vpool %s%s%s\n\n%s\n\nCommon options:\n"
               "  --json    print one JSON document (read verbs)\n"
               "  --quiet   print only the result\n"
               "  --help    show this help\n",
               verb_words(cli, v, w, sizeof(w)), *v->usage ? " " : "", v->usage, v->help);
}

/* One process runs one command: its last failure is a process-wide fact. */
static char last_failure[1024];

const char *cli_last_failure(void)
{
        return last_failure;
}

void cli_note_failure(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(last_failure, sizeof(last_failure), fmt, ap);
        va_end(ap);
}

int cli_usage_error(struct vp_cli *cli, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(last_failure, sizeof(last_failure), fmt, ap);
        va_end(ap);
        fprintf(stderr, "vpool: %s", last_failure);
        if (cli->noun)
                fprintf(stderr, " (try 'vpool %s%s%s --help')\n", cli->noun, cli->verb ? " " : "",
                        cli->verb ? cli->verb : "");
        else
                fprintf(stderr, " (try 'vpool --help')\n");
        return -EINVAL;
}

/* Parse ARGV (argv[0] the word before the options) by V's option table,
 * plus --json, --quiet and --help, into *RET. Returns 0, 1 when --help was
 * printed, or -EINVAL after printing a usage error. */
static int parse_args(struct vp_cli *cli, const struct cli_verb *v, int argc, char **argv, struct cli_args *ret)
{
        size_t n = 0;
        while (v->opts && v->opts[n].name)
                n++;
        assert(n <= CLI_MAX_OPTS);
        struct option *lo = vp_xcalloc(n + 4, sizeof(*lo));
        for (size_t i = 0; i < n; i++)
                lo[i] = (struct option){ v->opts[i].name, v->opts[i].value ? required_argument : no_argument, NULL,
                                         (int)(1000 + i) };
        lo[n] = (struct option){ "json", no_argument, NULL, 'j' };
        lo[n + 1] = (struct option){ "quiet", no_argument, NULL, 'q' };
        lo[n + 2] = (struct option){ "help", no_argument, NULL, 'h' };

        *ret = (struct cli_args){ .verb = v };
        int r = 0;
        optind = 0;
        opterr = 0;
        for (;;) {
                int c = getopt_long(argc, argv, ":hq", lo, NULL);
                if (c == -1)
                        break;
                if (c == 'h') {
                        verb_help(cli, v);
                        r = 1;
                        goto out;
                } else if (c == 'j') {
                        cli->json = true;
                } else if (c == 'q') {
                        cli->quiet = true;
                } else if (c >= 1000 && (size_t)(c - 1000) < n) {
                        if (v->opts[c - 1000].repeat && ret->given[c - 1000]) {
                                if (ret->nmore >= CLI_MAX_REPEAT - 1) {
                                        r = cli_usage_error(cli, "option '--%s' given more than %d times",
                                                            v->opts[c - 1000].name, CLI_MAX_REPEAT);
                                        goto out;
                                }
                                ret->more[ret->nmore++] = optarg;
                                continue;
                        }
                        ret->given[c - 1000] = true;
                        ret->value[c - 1000] = optarg;
                } else if (c == ':') {
                        r = cli_usage_error(cli, "option '%s' needs a value", argv[optind - 1]);
                        goto out;
                } else {
                        char pb[64];
                        r = cli_usage_error(cli, "unknown option '%s'",
                                            vp_printable(argv[optind - 1], pb, sizeof(pb)));
                        goto out;
                }
        }
        ret->pos = argv + optind;
        ret->npos = argc - optind;
        cli->subject = ret->npos > 0 ? ret->pos[0] : NULL;
        if (ret->npos < v->minpos || ret->npos > v->maxpos) {
                char w[64];
                r = cli_usage_error(cli, "expected: vpool %s%s%s", verb_words(cli, v, w, sizeof(w)),
                                    *v->usage ? " " : "", v->usage);
        }
out:
        free(lo);
        return r;
}

static int opt_index(const struct cli_args *a, const char *name)
{
        for (int i = 0; a->verb->opts && a->verb->opts[i].name; i++)
                if (streq(a->verb->opts[i].name, name))
                        return i;
        return -1;
}

const char *cli_opt(const struct cli_args *a, const char *name)
{
        int i = opt_index(a, name);
        return i >= 0 && a->given[i] ? a->value[i] : NULL;
}

size_t cli_opt_all(const struct cli_args *a, const char *name, const char *ret[CLI_MAX_REPEAT])
{
        const char *first = cli_opt(a, name);
        if (!first)
                return 0;
        ret[0] = first;
        for (size_t i = 0; i < a->nmore; i++)
                ret[i + 1] = a->more[i];
        return a->nmore + 1;
}

const char *cli_opt_or(const struct cli_args *a, const char *name, const char *def)
{
        const char *s = cli_opt(a, name);
        return s ? s : def;
}

bool cli_flag(const struct cli_args *a, const char *name)
{
        int i = opt_index(a, name);
        return i >= 0 && a->given[i];
}

int cli_act(struct vp_cli *cli, const struct cli_args *a)
{
        const struct cli_verb *v = a->verb;
        const char *name = a->pos[0], *timeout = cli_opt(a, "timeout");
        struct cli_act_opts o = { .timeout = 60, .force = cli_flag(a, "force"), .keep_deltas = cli_flag(a, "keep-deltas") };
        struct vp_error err = { 0 };
        uint64_t t;
        if (timeout) {
                if (vp_parse_uint("timeout", timeout, 0, 86400, &t, &err) < 0)
                        return cli_fail(&err);
                o.timeout = (int)t;
        }
        if (v->check_name && vp_name_check(cli->noun, name, &err) < 0)
                return cli_fail(&err);
        struct vp_ctx ctx;
        if (cli_open(cli, &ctx))
                return 1;
        int r = v->act(&ctx, name, &o, &err);
        vp_ctx_close(&ctx);
        if (r < 0)
                return cli_fail(&err);
        if (!cli->quiet && !cli->json)
                printf("%s %s %s\n", cli->noun, name, v->done);
        return 0;
}

int cli_read(struct vp_cli *cli, const char *name,
             int (*read)(struct vp_ctx *ctx, const char *name, struct json_object **ret, struct vp_error *err),
             struct json_object **ret)
{
        struct vp_error err = { 0 };
        /* A noun's word of verbs ("env host") takes its noun's names. */
        char kind[32];
        snprintf(kind, sizeof(kind), "%.*s", (int)strcspn(cli->noun, " "), cli->noun);
        if (vp_name_check(kind, name, &err) < 0)
                return cli_fail(&err);
        struct vp_ctx ctx;
        if (cli_open(cli, &ctx))
                return 1;
        int r = read(&ctx, name, ret, &err);
        vp_ctx_close(&ctx);
        return r < 0 ? cli_fail(&err) : 0;
}

int cli_show(struct vp_cli *cli, const struct cli_args *a,
             int (*describe)(struct vp_ctx *ctx, const char *name, struct json_object **ret, struct vp_error *err),
             void (*text)(struct json_object *o))
{
        struct json_object *o = NULL;
        int r = cli_read(cli, a->pos[0], describe, &o);
        if (r)
                return r;
        if (cli->json) {
                cli_print_json(o);
                return 0;
        }
        text(o);
        json_object_put(o);
        return 0;
}

/* Parse ARGV for V and run it: its exit code (0 after --help, 2 after a
 * usage error). */
static int run_verb(struct vp_cli *cli, const struct cli_verb *v, int argc, char **argv)
{
        struct cli_args a;
        cli->subject_kind = v->subject;
        int r = parse_args(cli, v, argc, argv, &a);
        if (r == 1)
                return 0;
        if (r < 0)
                return EXIT_USAGE;
        return v->fn(cli, &a);
}

static const struct cli_verb *find_verb(const struct cli_noun *n, const char *name)
{
        for (const struct cli_verb *v = n->verbs; v && v->name; v++)
                if (streq(v->name, name))
                        return v;
        return NULL;
}

static int noun_help(const struct cli_noun *n, FILE *out)
{
        fprintf(out, "Usage: vpool %s VERB [ARGS]\n\n%s\n\nVerbs:\n", n->name, n->summary);
        /* A verb's first line of help; the rest is for 'vpool NOUN VERB --help'. */
        for (const struct cli_verb *v = n->verbs; v->name; v++)
                fprintf(out, "  %-8s %.*s\n", v->name, (int)strcspn(v->help, "\n"), v->help);
        fprintf(out, "\nRun 'vpool %s VERB --help' for a verb's options.\n", n->name);
        return 0;
}

int cli_run(struct vp_cli *cli, const struct cli_noun *n, int argc, char **argv)
{
        cli->noun = n->name;
        if (n->self) {
                cli->record = n->self->changes;
                return run_verb(cli, n->self, argc, argv);
        }
        const char *word = argc > 1 ? argv[1] : NULL;
        const struct cli_verb *v = word ? find_verb(n, word) : NULL;
        if (!v && n->implicit && word && word[0] != '-') {
                /* The word is the implicit verb's first argument: the noun's word stands for the verb. */
                v = find_verb(n, n->implicit);
                cli->verb = v->name;
                cli->record = v->changes;
                return run_verb(cli, v, argc, argv);
        }
        if (!word)
                return noun_help(n, stderr), EXIT_USAGE;
        if (streq(word, "--help") || streq(word, "-h") || streq(word, "help"))
                return noun_help(n, stdout);
        if (v && v->sub)
                return cli_run(cli, v->sub, argc - 1, argv + 1);
        if (v) {
                cli->verb = v->name;
                cli->record = v->changes;
                return run_verb(cli, v, argc - 1, argv + 1);
        }
        char pb[64];
        cli_usage_error(cli, "unknown verb '%s' for '%s'", vp_printable(word, pb, sizeof(pb)), n->name);
        return EXIT_USAGE;
}

int cli_fail(const struct vp_error *err)
{
        cli_note_failure("%s", err->msg[0] ? err->msg : "failed");
        fprintf(stderr, "vpool: %s\n", last_failure);
        return 1;
}

int cli_parse_placement(const struct cli_args *a, enum vp_placement *ret, struct vp_error *err)
{
        const char *word = cli_opt(a, "placement");
        char pb[64];
        *ret = VP_PLACE_SPREAD;
        if (!word)
                return 0;
        enum vp_placement p = vp_placement_from_string(word);
        if (p < 0)
                return vp_err(err, -EINVAL, "unknown placement '%s' (spread, pack)", vp_printable(word, pb, sizeof(pb)));
        *ret = p;
        return 0;
}

int cli_open(struct vp_cli *cli, struct vp_ctx *ctx)
{
        struct vp_error err = { 0 };
        vp_hv_init();
        /* A verb that changes nothing opens the catalog read-only: a user
         * who may only read it can run it. */
        int r = cli->record ? vp_ctx_open(ctx, cli->catalog, &err) : vp_ctx_open_read(ctx, cli->catalog, &err);
        if (r < 0) {
                vp_ctx_close(ctx);
                return cli_fail(&err);
        }
        ctx->source_grace = cli->conf->source_grace;
        ctx->fence_timeout = cli->conf->fence_timeout;
        /* Once per process: env drain opens the catalog for every pool it moves. */
        if (cli->record && !cli->hist && cli_history_start(cli) != 0) {
                vp_ctx_close(ctx);
                return 1;
        }
        return 0;
}

void cli_print_json(struct json_object *obj)
{
        puts(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(obj);
}

void table_init(struct cli_table *t, size_t ncols, ...)
{
        memset(t, 0, sizeof(*t));
        t->ncols = ncols;
        va_list ap;
        va_start(ap, ncols);
        t->cap = 16;
        t->cells = vp_xcalloc(t->cap * ncols, sizeof(char *));
        for (size_t i = 0; i < ncols; i++)
                t->cells[i] = vp_strdup(va_arg(ap, const char *));
        t->nrows = 1;
        va_end(ap);
}

void table_add(struct cli_table *t, ...)
{
        if (t->nrows == t->cap) {
                t->cap *= 2;
                char **n = realloc(t->cells, t->cap * t->ncols * sizeof(char *));
                if (!n)
                        abort();
                t->cells = n;
        }
        va_list ap;
        va_start(ap, t);
        for (size_t i = 0; i < t->ncols; i++) {
                const char *s = va_arg(ap, const char *);
                t->cells[t->nrows * t->ncols + i] = vp_strdup(s ? s : "-");
        }
        t->nrows++;
        va_end(ap);
}

void table_print(struct cli_table *t)
{
        size_t *w = vp_xcalloc(t->ncols, sizeof(size_t));
        for (size_t r = 0; r < t->nrows; r++)
                for (size_t c = 0; c < t->ncols; c++) {
                        size_t l = strlen(t->cells[r * t->ncols + c]);
                        if (l > w[c])
                                w[c] = l;
                }
        for (size_t r = 0; r < t->nrows; r++) {
                for (size_t c = 0; c < t->ncols; c++) {
                        const char *s = t->cells[r * t->ncols + c];
                        if (c + 1 < t->ncols)
                                printf("%-*s  ", (int)w[c], s);
                        else
                                printf("%s\n", s);
                }
        }
        for (size_t i = 0; i < t->nrows * t->ncols; i++)
                free(t->cells[i]);
        free(t->cells);
        free(w);
}

void print_field(const char *key, const char *fmt, ...)
{
        va_list ap;
        printf("%-20s ", key);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
}

char *format_bytes(int64_t b)
{
        const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
        double v = (double)b;
        size_t u = 0;
        while (v >= 1024 && u + 1 < ELEMENTSOF(units)) {
                v /= 1024;
                u++;
        }
        return u == 0 ? vp_strdupf("%lld B", (long long)b) : vp_strdupf("%.1f %s", v, units[u]);
}

const char *cli_str(struct json_object *o, const char *key)
{
        struct json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !v)
                return "";
        return json_object_get_string(v);
}

const char *cli_name(struct json_object *o, const char *key)
{
        return *cli_str(o, key) ? cli_str(o, key) : "?";
}

int64_t cli_int(struct json_object *o, const char *key)
{
        struct json_object *v;
        return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static char *cell(struct json_object *row, const struct cli_column *c)
{
        struct json_object *v;
        if (c->fmt == CLI_GONE)
                return vp_strdup(cli_name(row, c->key));
        if (!json_object_object_get_ex(row, c->key, &v) || !v)
                return vp_strdup("-");
        switch (c->fmt) {
        case CLI_OF_TOTAL:
                return vp_strdupf("%s/%s", json_object_get_string(v), cli_str(row, "total"));
        case CLI_BYTES:
                return format_bytes(json_object_get_int64(v));
        case CLI_KIB:
                return format_bytes(json_object_get_int64(v) * 1024);
        case CLI_SHORT:
                return vp_strdupf("%.12s", json_object_get_string(v));
        case CLI_YESNO:
                return vp_strdup(json_object_get_boolean(v) ? "yes" : "no");
        default:
                return vp_strdup(*json_object_get_string(v) ? json_object_get_string(v) : "-");
        }
}

void cli_print_table(struct json_object *a, const struct cli_column *cols, size_t ncols)
{
        size_t n = json_object_array_length(a);
        /* The table is built from the same JSON the --json output shows. */
        struct cli_table tb = { .ncols = ncols, .nrows = 1, .cap = 16 };
        tb.cells = vp_xcalloc(tb.cap * ncols, sizeof(char *));
        for (size_t c = 0; c < ncols; c++)
                tb.cells[c] = vp_strdup(cols[c].header);
        for (size_t i = 0; i < n; i++) {
                if (tb.nrows == tb.cap) {
                        tb.cap *= 2;
                        char **nc = realloc(tb.cells, tb.cap * ncols * sizeof(char *));
                        if (!nc)
                                abort();
                        tb.cells = nc;
                }
                struct json_object *row = json_object_array_get_idx(a, i);
                for (size_t c = 0; c < ncols; c++)
                        tb.cells[tb.nrows * ncols + c] = cell(row, &cols[c]);
                tb.nrows++;
        }
        table_print(&tb);
}

int cli_list(struct vp_cli *cli, int (*read)(struct vp_ctx *ctx, struct json_object **ret, struct vp_error *err),
             const struct cli_column *cols, size_t ncols)
{
        struct vp_ctx ctx;
        if (cli_open(cli, &ctx))
                return 1;
        struct vp_error err = { 0 };
        struct json_object *a = NULL;
        int r = read(&ctx, &a, &err);
        vp_ctx_close(&ctx);
        if (r < 0)
                return cli_fail(&err);
        if (cli->json) {
                cli_print_json(a);
                return 0;
        }
        cli_print_table(a, cols, ncols);
        json_object_put(a);
        return 0;
}
