/* API tokens: a name, a role (model.h) and a secret the holder presents as
 * a bearer token. The secret is shown once, when the token is made; the
 * catalog keeps only its SHA-256, so a copy of the catalog grants nothing.
 *
 * A secret reads "vpt_" then 43 base64url characters (32 random bytes, no
 * padding): the prefix lets a secret scanner or a log filter spot one. */
#pragma once
#include "core.h"

#define VP_TOKEN_PREFIX "vpt_"
/* The length of a secret: the prefix and 43 characters. */
#define VP_TOKEN_SECRET_LEN 47

/* Check NAME as a token's name: vp_name_check, and not of a secret's
 * beginning, so that a secret typed where a name goes is refused before it
 * reaches the history or a message (which then does not repeat it).
 * Returns 0 or -EINVAL. */
int vp_token_name_check(const char *name, struct vp_error *err);

/* Make token NAME (vp_token_name_check) with ROLE: -EINVAL for a bad name or
 * role, -EEXIST "token 'NAME' already exists"; nothing is written then.
 * On success *RET_SECRET is the secret (malloc'd, the caller's), which
 * nothing can show again. */
int vp_token_add(struct vp_ctx *ctx, const char *name, enum vp_role role, char **ret_secret, struct vp_error *err);
/* The same, and the row as stored into *RET (free with vp_row_clear), for
 * a front end that shows when it was made. */
int vp_token_add_row(struct vp_ctx *ctx, const char *name, enum vp_role role, struct vp_token *ret,
                     char **ret_secret, struct vp_error *err);

/* Token NAME as stored (-ENOENT "unknown token 'NAME'"); free with
 * vp_row_clear(&vp_table_token, ret). */
int vp_token_get(struct vp_ctx *ctx, const char *name, struct vp_token *ret, struct vp_error *err);

/* Every token, ordered by id: an array of *RET_N rows (free with
 * vp_rows_free(&vp_table_token, ...)). Their hashes are in the rows: a
 * front end shows vp_token_json, which leaves them out. */
int vp_token_list(struct vp_ctx *ctx, struct vp_token **ret, size_t *ret_n, struct vp_error *err);

/* Remove token NAME: its secret no longer verifies. -EINVAL for a bad
 * name (vp_token_name_check), -ENOENT "unknown token 'NAME'". */
int vp_token_rm(struct vp_ctx *ctx, const char *name, struct vp_error *err);

/* The token whose secret SECRET is, into *RET (free with vp_row_clear);
 * its role is vp_role_from_string(ret->role), always a role.
 * -EINVAL "malformed token" when SECRET is not of the secret's form (no
 * catalog lookup then), -EACCES "unknown token" when no token has it; any
 * other error is the catalog's. The message never holds the secret.
 * Records when the token was used, at most once a minute per token (not
 * through a read-only ctx); that write is best effort: a token that
 * verifies is not refused because the catalog was busy. */
int vp_token_verify(struct vp_ctx *ctx, const char *secret, struct vp_token *ret, struct vp_error *err);
