/* vpool token: the API's bearer tokens, each with a role. */
#include "cli.h"

#include <string.h>

#include "name.h"
#include "token.h"

static int token_add(struct vp_cli *cli, const struct cli_args *a);
static int token_list(struct vp_cli *cli, const struct cli_args *a);
static int token_rm(struct vp_cli *cli, const struct cli_args *a);

static const struct cli_verb verbs[] = {
        { .name = "add", .fn = token_add, .usage = "NAME --role viewer|operator|admin",
          .help = "Make an API token with a role and print its secret, this once only.\n"
                  "vpool keeps only the secret's SHA-256: a lost secret is replaced, not recovered.\n"
                  "A viewer may read everything; an operator may also start, stop, migrate, resume\n"
                  "and abort; an admin may do everything. The secret alone is printed on stdout\n"
                  "(TOKEN=$(vpool token add ci --role viewer)); with --json: its name, role, token\n"
                  "and when it was made.",
          .changes = true, .opts = CLI_OPTS(CLI_VALUE("role")), .minpos = 1, .maxpos = 1 },
        { .name = "list", .fn = token_list, .usage = "",
          .help = "List tokens: name, role, when made and when last used.\n"
                  "A use is noted at most once a minute. Secrets are never shown: vpool does not keep them." },
        { .name = "rm", .fn = token_rm, .usage = "NAME", .help = "Remove a token: its secret no longer works.",
          .changes = true, .minpos = 1, .maxpos = 1 },
        { 0 },
};

const struct cli_noun cli_noun_token = {
        .name = "token", .help = "API tokens and their roles", .summary = "Bearer tokens of the API, each with a role.",
        .verbs = verbs,
};

static int token_add(struct vp_cli *cli, const struct cli_args *a)
{
        const char *word = cli_opt(a, "role");
        if (!word)
                return cli_usage_error(cli, "missing --role"), EXIT_USAGE;
        struct vp_error err = { 0 };
        char pb[64];
        enum vp_role role = vp_role_from_string(word);
        if (role < 0) {
                _cleanup_free_ char *all = vp_role_list(", ");
                vp_err(&err, -EINVAL, "unknown role '%s' (%s)", vp_printable(word, pb, sizeof(pb)), all);
                return cli_fail(&err);
        }
        if (vp_token_name_check(a->pos[0], &err) < 0)
                return cli_fail(&err);
        struct vp_ctx ctx;
        if (cli_open(cli, &ctx))
                return 1;
        _cleanup_free_ char *secret = NULL;
        struct vp_token t = { 0 };
        int r = vp_token_add_row(&ctx, a->pos[0], role, &t, &secret, &err);
        vp_ctx_close(&ctx);
        if (r < 0)
                return cli_fail(&err);
        if (cli->json) {
                cli_print_json(vp_token_added_json(&t, secret));
        } else {
                /* The secret alone on stdout, for TOKEN=$(vpool token add ...). */
                puts(secret);
                if (!cli->quiet)
                        fprintf(stderr, "vpool: token %s added with role %s; its secret above is shown only this once\n",
                                t.name, t.role);
        }
        explicit_bzero(secret, strlen(secret));
        vp_row_clear(&vp_table_token, &t);
        return 0;
}

/* Like the other rm verbs, but a name that may be a secret is refused
 * before the history records the command line. */
static int token_rm(struct vp_cli *cli, const struct cli_args *a)
{
        struct vp_error err = { 0 };
        if (vp_token_name_check(a->pos[0], &err) < 0)
                return cli_fail(&err);
        struct vp_ctx ctx;
        if (cli_open(cli, &ctx))
                return 1;
        int r = vp_token_rm(&ctx, a->pos[0], &err);
        vp_ctx_close(&ctx);
        if (r < 0)
                return cli_fail(&err);
        if (!cli->quiet && !cli->json)
                printf("token %s removed\n", a->pos[0]);
        return 0;
}

static int token_list(struct vp_cli *cli, const struct cli_args *a)
{
        (void)a;
        static const struct cli_column cols[] = {
                { "NAME", "name", CLI_PLAIN }, { "ROLE", "role", CLI_PLAIN }, { "CREATED", "created", CLI_PLAIN },
                { "LAST_USED", "last_used", CLI_PLAIN },
        };
        return cli_list(cli, vp_token_list_json, cols, ELEMENTSOF(cols));
}
