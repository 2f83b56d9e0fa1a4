/* API tokens: a secret shown once and verified by its hash, roles in
 * order, the last use recorded at most once a minute, and every refusal
 * leaving the catalog as it was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "token.h"
#include "view.h"
#include "tmp-catalog.h"

static struct vp_catalog *cat;
static struct vp_ctx ctx;

static int open_catalog(void **state)
{
        struct vp_error err = { 0 };
        if (setup(state) < 0 || vp_catalog_open(path, true, &cat, &err) < 0)
                return -1;
        ctx = (struct vp_ctx){ .cat = cat };
        return 0;
}

static int close_catalog(void **state)
{
        vp_catalog_close(cat);
        cat = NULL;
        return teardown(state);
}

/* The tokens as rows, one line each: what a refusal must leave alone. */
static char *dump(void)
{
        struct vp_error err = { 0 };
        struct vp_token *ts = NULL;
        size_t n = 0;
        assert_int_equal(vp_token_list(&ctx, &ts, &n, &err), 0);
        size_t cap = 1 + n * 256, len = 0;
        char *out = calloc(1, cap);
        for (size_t i = 0; i < n; i++)
                len += (size_t)snprintf(out + len, cap - len, "%lld %s %s %s %s %s\n", (long long)ts[i].id, ts[i].name,
                                        ts[i].role, ts[i].hash, ts[i].created, ts[i].last_used);
        vp_rows_free(&vp_table_token, ts, n);
        return out;
}

static char *add(const char *name, enum vp_role role)
{
        struct vp_error err = { 0 };
        char *secret = NULL;
        assert_int_equal(vp_token_add(&ctx, name, role, &secret, &err), 0);
        assert_non_null(secret);
        return secret;
}

/* ISO 8601 UTC of NOW + DELTA seconds. */
static void iso(time_t delta, char out[32])
{
        time_t t = time(NULL) + delta;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void set_last_used(const char *name, const char *when)
{
        struct vp_error err = { 0 };
        struct vp_token t = { 0 };
        assert_int_equal(vp_token_get(&ctx, name, &t, &err), 0);
        free(t.last_used);
        t.last_used = strdup(when);
        assert_int_equal(vp_row_update(cat, &vp_table_token, &t, &err), 0);
        vp_row_clear(&vp_table_token, &t);
}

static char *last_used(const char *name)
{
        struct vp_error err = { 0 };
        struct vp_token t = { 0 };
        assert_int_equal(vp_token_get(&ctx, name, &t, &err), 0);
        char *s = strdup(t.last_used);
        vp_row_clear(&vp_table_token, &t);
        return s;
}

/* Whether the file at P holds the bytes of S. */
static bool file_holds(const char *p, const char *s)
{
        FILE *f = fopen(p, "rb");
        if (!f)
                return false;
        char buf[1 << 16];
        size_t n, keep = 0, sl = strlen(s);
        bool found = false;
        while (!found && (n = fread(buf + keep, 1, sizeof(buf) - keep, f)) > 0) {
                n += keep;
                found = memmem(buf, n, s, sl) != NULL;
                keep = n < sl ? n : sl - 1;
                memmove(buf, buf + n - keep, keep);
        }
        fclose(f);
        return found;
}

/* A new token's secret is vpt_ and 43 base64url characters, differs from
 * every other, verifies to its name and role, and is nowhere in the
 * catalog: only its SHA-256 is. */
static void test_add_verify(void **state)
{
        struct vp_error err = { 0 };
        char *a = add("ci", VP_ROLE_VIEWER), *b = add("ops.team-1", VP_ROLE_ADMIN);
        assert_int_equal(strlen(a), VP_TOKEN_SECRET_LEN);
        assert_int_equal(strncmp(a, "vpt_", 4), 0);
        assert_int_equal(strspn(a + 4, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 43);
        assert_string_not_equal(a, b);

        struct vp_token t = { 0 };
        assert_int_equal(vp_token_verify(&ctx, a, &t, &err), 0);
        assert_string_equal(t.name, "ci");
        assert_string_equal(t.role, "viewer");
        assert_int_equal(vp_role_from_string(t.role), VP_ROLE_VIEWER);
        assert_int_equal(strlen(t.hash), 64);
        assert_int_equal(strspn(t.hash, "0123456789abcdef"), 64);
        assert_true(*t.last_used);
        vp_row_clear(&vp_table_token, &t);
        assert_int_equal(vp_token_verify(&ctx, b, &t, &err), 0);
        assert_string_equal(t.name, "ops.team-1");
        assert_string_equal(t.role, "admin");
        vp_row_clear(&vp_table_token, &t);

        /* The list: both, by id, each stamped by its use. */
        struct vp_token *ts = NULL;
        size_t n = 0;
        assert_int_equal(vp_token_list(&ctx, &ts, &n, &err), 0);
        assert_int_equal(n, 2);
        assert_string_equal(ts[0].name, "ci");
        assert_string_equal(ts[1].name, "ops.team-1");
        assert_true(*ts[1].last_used);
        assert_true(*ts[1].created);
        vp_rows_free(&vp_table_token, ts, n);

        /* Not in the file (or its write-ahead log), whole or without its prefix. */
        vp_catalog_close(cat);
        char wal[160];
        snprintf(wal, sizeof(wal), "%s-wal", path);
        assert_false(file_holds(path, a + 4));
        assert_false(file_holds(wal, a + 4));
        assert_false(file_holds(path, b + 4));
        assert_false(file_holds(wal, b + 4));
        assert_int_equal(vp_catalog_open(path, false, &cat, &err), 0);
        ctx.cat = cat;

        /* The JSON of a token never holds its hash. */
        struct json_object *list = NULL;
        assert_int_equal(vp_token_list_json(&ctx, &list, &err), 0);
        const char *text = json_object_to_json_string(list);
        assert_null(strstr(text, "hash"));
        assert_non_null(strstr(text, "\"role\""));
        json_object_put(list);
        free(a);
        free(b);
}

/* Wrong, malformed and removed secrets are refused; a malformed one
 * without looking at the catalog (the ctx here has none to look at). */
static void test_verify_refused(void **state)
{
        struct vp_error err = { 0 };
        struct vp_token t = { 0 };
        char *a = add("ci", VP_ROLE_OPERATOR);

        /* Right form, no such token: one character changed. */
        char wrong[VP_TOKEN_SECRET_LEN + 1];
        strcpy(wrong, a);
        wrong[10] = wrong[10] == 'A' ? 'B' : 'A';
        assert_int_equal(vp_token_verify(&ctx, wrong, &t, &err), -EACCES);
        assert_string_equal(err.msg, "unknown token");

        char longer[VP_TOKEN_SECRET_LEN + 2], padded[VP_TOKEN_SECRET_LEN + 2], shorter[VP_TOKEN_SECRET_LEN],
                plus[VP_TOKEN_SECRET_LEN + 1], prefix[VP_TOKEN_SECRET_LEN + 1], loose[VP_TOKEN_SECRET_LEN + 1];
        snprintf(longer, sizeof(longer), "%sA", a);
        snprintf(padded, sizeof(padded), "%s=", a);
        snprintf(shorter, sizeof(shorter), "%s", a);
        strcpy(plus, a);
        plus[20] = '+';
        strcpy(prefix, a);
        prefix[0] = 'V';
        /* The last character carries 4 bits of the secret and 2 that must
         * be zero: 'B' is 000001, another spelling of what 'A' would say. */
        strcpy(loose, a);
        loose[VP_TOKEN_SECRET_LEN - 1] = 'B';
        const char *const malformed[] = { NULL, "", "vpt_", longer, padded, shorter, plus, prefix, loose,
                                          "Bearer vpt_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" };
        struct vp_ctx none = { 0 };
        for (size_t i = 0; i < ELEMENTSOF(malformed); i++) {
                memset(&err, 0, sizeof(err));
                assert_int_equal(vp_token_verify(&none, malformed[i], &t, &err), -EINVAL);
                assert_non_null(strstr(err.msg, "malformed token"));
                assert_null(strstr(err.msg, a + 4));
        }

        assert_int_equal(vp_token_verify(&ctx, a, &t, &err), 0);
        vp_row_clear(&vp_table_token, &t);
        assert_int_equal(vp_token_rm(&ctx, "ci", &err), 0);
        assert_int_equal(vp_token_verify(&ctx, a, &t, &err), -EACCES);
        assert_string_equal(err.msg, "unknown token");
        assert_int_equal(vp_token_rm(&ctx, "ci", &err), -ENOENT);
        assert_string_equal(err.msg, "unknown token 'ci'");
        assert_int_equal(vp_token_rm(&ctx, "../ci", &err), -EINVAL);
        assert_non_null(strstr(err.msg, "invalid token name '../ci'"));
        free(a);
}

/* A higher role may do what a lower one may, never the other way. */
static void test_roles_order(void **state)
{
        (void)state;
        assert_true(VP_ROLE_VIEWER < VP_ROLE_OPERATOR && VP_ROLE_OPERATOR < VP_ROLE_ADMIN);
        for (int have = 0; have < VP_ROLE_MAX; have++)
                for (int need = 0; need < VP_ROLE_MAX; need++)
                        assert_int_equal(vp_role_allows((enum vp_role)have, (enum vp_role)need), have >= need);
        assert_false(vp_role_allows(VP_ROLE_INVALID, VP_ROLE_VIEWER));
        assert_false(vp_role_allows(VP_ROLE_MAX, VP_ROLE_ADMIN));
        assert_false(vp_role_allows(VP_ROLE_ADMIN, VP_ROLE_MAX));
}

/* The last use is written when the one recorded is a minute old or more,
 * not at every request; never through a read-only ctx. */
static void test_last_used_throttled(void **state)
{
        struct vp_error err = { 0 };
        struct vp_token t = { 0 };
        char *a = add("ci", VP_ROLE_VIEWER);
        char *never = last_used("ci");
        assert_string_equal(never, "");
        free(never);

        char recent[32], old[32], before[32];
        iso(-30, recent);
        iso(-120, old);
        set_last_used("ci", recent);
        assert_int_equal(vp_token_verify(&ctx, a, &t, &err), 0);
        assert_string_equal(t.last_used, recent);
        vp_row_clear(&vp_table_token, &t);
        char *now = last_used("ci");
        assert_string_equal(now, recent);
        free(now);

        set_last_used("ci", old);
        ctx.readonly = true;
        assert_int_equal(vp_token_verify(&ctx, a, &t, &err), 0);
        vp_row_clear(&vp_table_token, &t);
        ctx.readonly = false;
        now = last_used("ci");
        assert_string_equal(now, old);
        free(now);

        iso(-1, before);
        assert_int_equal(vp_token_verify(&ctx, a, &t, &err), 0);
        assert_true(strcmp(t.last_used, before) >= 0);
        char *stamped = strdup(t.last_used);
        vp_row_clear(&vp_table_token, &t);
        now = last_used("ci");
        assert_string_equal(now, stamped);
        free(now);
        /* And not again right after. */
        set_last_used("ci", recent);
        assert_int_equal(vp_token_verify(&ctx, a, &t, &err), 0);
        vp_row_clear(&vp_table_token, &t);
        now = last_used("ci");
        assert_string_equal(now, recent);
        free(now);
        free(stamped);
        free(a);
}

/* A duplicate name, a bad name or a bad role is refused, named, and
 * nothing is written; the secret is not handed out. */
static void test_refused_writes_nothing(void **state)
{
        struct vp_error err = { 0 };
        char *a = add("ci", VP_ROLE_VIEWER);
        char *before = dump();
        char *secret = NULL;
        assert_int_equal(vp_token_add(&ctx, "ci", VP_ROLE_ADMIN, &secret, &err), -EEXIST);
        assert_string_equal(err.msg, "token 'ci' already exists");
        assert_null(secret);

        char big[80];
        memset(big, 'a', 64);
        big[64] = 0;
        /* A secret typed where a name goes, or a name one could take for a secret. */
        const char *const bad[] = { "", "../x", "a b", "-x", ".hidden", "x\ny", "caf\xc3\xa9", big, a, "vpt_ci", "VPT_x" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                memset(&err, 0, sizeof(err));
                assert_int_equal(vp_token_add(&ctx, bad[i], VP_ROLE_VIEWER, &secret, &err), -EINVAL);
                assert_non_null(strstr(err.msg, "invalid token name"));
                assert_null(strstr(err.msg, a + 4));
                assert_null(secret);
        }
        assert_int_equal(vp_token_rm(&ctx, a, &err), -EINVAL);
        assert_string_equal(err.msg, "invalid token name: a name may not start with 'vpt_', as secrets do");
        assert_int_equal(vp_token_add(&ctx, "other", VP_ROLE_MAX, &secret, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "viewer, operator, admin"));
        assert_int_equal(vp_token_add(&ctx, "other", VP_ROLE_INVALID, &secret, &err), -EINVAL);
        assert_null(secret);

        char *after = dump();
        assert_string_equal(before, after);
        free(before);
        free(after);
        free(a);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_add_verify, open_catalog, close_catalog),
                cmocka_unit_test_setup_teardown(test_verify_refused, open_catalog, close_catalog),
                cmocka_unit_test(test_roles_order),
                cmocka_unit_test_setup_teardown(test_last_used_throttled, open_catalog, close_catalog),
                cmocka_unit_test_setup_teardown(test_refused_writes_nothing, open_catalog, close_catalog),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
