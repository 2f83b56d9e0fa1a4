#include "token.h"

#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "name.h"
#include "sha256.h"

/* The secret's random bytes: 256 bits, as many as its hash keeps. */
#define SECRET_BYTES 32
/* How long a token's last use may lag behind: a busy API must not write
 * the catalog for every request. */
#define LAST_USED_PERIOD 60

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The 32 bytes of IN as 43 base64url characters (no padding) and a NUL. */
static void encode(const uint8_t in[SECRET_BYTES], char out[VP_TOKEN_SECRET_LEN - 4 + 1])
{
        size_t o = 0;
        uint32_t acc = 0;
        int bits = 0;
        for (size_t i = 0; i < SECRET_BYTES; i++) {
                acc = (acc << 8) | in[i];
                bits += 8;
                while (bits >= 6) {
                        bits -= 6;
                        out[o++] = b64url[(acc >> bits) & 63];
                }
        }
        if (bits > 0)
                out[o++] = b64url[(acc << (6 - bits)) & 63];
        out[o] = 0;
}

/* SECRET's 32 bytes into OUT, when it is exactly a secret's form: the
 * prefix, 43 base64url characters, and the 2 bits past the last byte zero
 * (so each secret has one spelling only). */
static bool decode(const char *secret, uint8_t out[SECRET_BYTES])
{
        size_t plen = strlen(VP_TOKEN_PREFIX);
        if (!secret || strnlen(secret, VP_TOKEN_SECRET_LEN + 1) != VP_TOKEN_SECRET_LEN ||
            strncmp(secret, VP_TOKEN_PREFIX, plen) != 0)
                return false;
        uint32_t acc = 0;
        int bits = 0;
        size_t o = 0;
        for (const char *p = secret + plen; *p; p++) {
                const char *at = strchr(b64url, *p);
                if (!at)
                        return false;
                acc = (acc << 6) | (uint32_t)(at - b64url);
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[o++] = (uint8_t)(acc >> bits);
                }
        }
        return o == SECRET_BYTES && (acc & ((1u << bits) - 1)) == 0;
}

/* The stored form of a secret: the SHA-256 of its bytes. A secret of 256
 * random bits cannot be guessed or found from its hash by trying, so it
 * needs no slow password hash (bcrypt, argon2), which would only cost
 * every API request its time. */
static void secret_hash(const uint8_t bytes[SECRET_BYTES], char hex[65])
{
        struct vp_sha256 s;
        vp_sha256_init(&s);
        vp_sha256_update(&s, bytes, SECRET_BYTES);
        vp_sha256_final_hex(&s, hex);
}

/* Whether hex digests A (64 digits) and B are equal, in a time that does
 * not depend on where they differ. */
static bool same_hash(const char *a, const char *b)
{
        if (!b || strlen(b) != 64)
                return false;
        unsigned char d = 0;
        for (size_t i = 0; i < 64; i++)
                d |= (unsigned char)(a[i] ^ b[i]);
        return d == 0;
}

static int random_bytes(uint8_t *buf, size_t n, struct vp_error *err)
{
        size_t got = 0;
        while (got < n) {
                ssize_t k = getrandom(buf + got, n - got, 0);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return vp_err(err, -errno, "cannot draw a random token: %s", strerror(errno));
                got += (size_t)k;
        }
        return 0;
}

int vp_token_name_check(const char *name, struct vp_error *err)
{
        if (name && strncasecmp(name, VP_TOKEN_PREFIX, strlen(VP_TOKEN_PREFIX)) == 0)
                return vp_err(err, -EINVAL, "invalid token name: a name may not start with '" VP_TOKEN_PREFIX
                              "', as secrets do");
        return vp_name_check("token", name, err);
}

int vp_token_add(struct vp_ctx *ctx, const char *name, enum vp_role role, char **ret_secret, struct vp_error *err)
{
        struct vp_token t = { 0 };
        int r = vp_token_add_row(ctx, name, role, &t, ret_secret, err);
        vp_row_clear(&vp_table_token, &t);
        return r;
}

int vp_token_add_row(struct vp_ctx *ctx, const char *name, enum vp_role role, struct vp_token *ret,
                     char **ret_secret, struct vp_error *err)
{
        int r = vp_token_name_check(name, err);
        if (r < 0)
                return r;
        if (!vp_role_to_string(role)) {
                _cleanup_free_ char *all = vp_role_list(", ");
                return vp_err(err, -EINVAL, "unknown role %d (%s)", (int)role, all);
        }
        uint8_t bytes[SECRET_BYTES];
        if ((r = random_bytes(bytes, sizeof(bytes), err)) < 0)
                return r;
        char hash[65], text[VP_TOKEN_SECRET_LEN - 4 + 1];
        secret_hash(bytes, hash);
        encode(bytes, text);
        explicit_bzero(bytes, sizeof(bytes));
        struct vp_token t = { .name = vp_strdup(name), .role = vp_strdup(vp_role_to_string(role)),
                              .hash = vp_strdup(hash), .created = vp_now_iso(), .last_used = vp_strdup("") };
        if ((r = vp_row_insert(ctx->cat, &vp_table_token, &t, err)) < 0) {
                explicit_bzero(text, sizeof(text));
                vp_row_clear(&vp_table_token, &t);
                return r;
        }
        *ret_secret = vp_strdupf(VP_TOKEN_PREFIX "%s", text);
        explicit_bzero(text, sizeof(text));
        *ret = t;
        return 0;
}

int vp_token_get(struct vp_ctx *ctx, const char *name, struct vp_token *ret, struct vp_error *err)
{
        int r = vp_token_name_check(name, err);
        if (r < 0)
                return r;
        return vp_row_get(ctx->cat, &vp_table_token, "name", name, ret, err);
}

int vp_token_list(struct vp_ctx *ctx, struct vp_token **ret, size_t *ret_n, struct vp_error *err)
{
        void *rows = NULL;
        int r = vp_row_list(ctx->cat, &vp_table_token, NULL, NULL, &rows, ret_n, err);
        if (r < 0)
                return r;
        *ret = rows;
        return 0;
}

int vp_token_rm(struct vp_ctx *ctx, const char *name, struct vp_error *err)
{
        struct vp_token t = { 0 };
        int r = vp_token_get(ctx, name, &t, err);
        if (r < 0)
                return r;
        r = vp_row_delete(ctx->cat, &vp_table_token, t.id, err);
        vp_row_clear(&vp_table_token, &t);
        return r;
}

/* Whether a token last used at LAST (ISO 8601, "" never) is to be stamped
 * again at NOW. The times are written alike, so they compare as text. */
static bool stale(const char *last, time_t now)
{
        if (!last || !*last)
                return true;
        time_t then = now - LAST_USED_PERIOD;
        struct tm tm;
        char cutoff[32];
        gmtime_r(&then, &tm);
        strftime(cutoff, sizeof(cutoff), "%Y-%m-%dT%H:%M:%SZ", &tm);
        return strcmp(last, cutoff) <= 0;
}

/* Record that T was used now, when its last use is older than a minute.
 * Best effort: the request it authenticates goes on either way. */
static void stamp_use(struct vp_ctx *ctx, struct vp_token *t)
{
        if (ctx->readonly || !stale(t->last_used, time(NULL)))
                return;
        char *before = t->last_used;
        t->last_used = vp_now_iso();
        if (vp_row_update(ctx->cat, &vp_table_token, t, NULL) < 0) {
                free(t->last_used);
                t->last_used = before;
                return;
        }
        free(before);
}

int vp_token_verify(struct vp_ctx *ctx, const char *secret, struct vp_token *ret, struct vp_error *err)
{
        uint8_t bytes[SECRET_BYTES];
        if (!decode(secret, bytes))
                return vp_err(err, -EINVAL, "malformed token: expected " VP_TOKEN_PREFIX
                              " and 43 base64url characters");
        char hash[65];
        secret_hash(bytes, hash);
        explicit_bzero(bytes, sizeof(bytes));
        /* The lookup goes by the hash: its timing tells an attacker about
         * the hash of what they sent, which brings them no nearer to any
         * stored secret. The comparison that decides is constant-time. */
        struct vp_token t = { 0 };
        struct vp_error e = { 0 };
        int r = vp_row_get(ctx->cat, &vp_table_token, "hash", hash, &t, &e);
        if (r < 0 && r != -ENOENT) {
                if (err)
                        *err = e;
                return r;
        }
        if (r == -ENOENT || !same_hash(hash, t.hash)) {
                vp_row_clear(&vp_table_token, &t);
                return vp_err(err, -EACCES, "unknown token");
        }
        if (vp_role_from_string(t.role) < 0) {
                r = vp_err(err, -EBADMSG, "token '%s' has an unknown role", t.name);
                vp_row_clear(&vp_table_token, &t);
                return r;
        }
        stamp_use(ctx, &t);
        *ret = t;
        return 0;
}
