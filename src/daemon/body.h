/* The body of an API request: one JSON object whose fields are checked as
 * the CLI checks its options. Pure: no HTTP here, so the parser is fuzzed
 * on its own (tests/fuzz/fuzz-body.c). */
#pragma once
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* Why a body was refused: the field at fault ("" for the body as a whole)
 * and what to say. Every refusal is a 400. */
struct vpd_body_error {
        char field[64];
        char detail[512];
};

/* TEXT (LEN bytes; empty reads as {}) as a JSON object, at most 8 levels
 * deep, whose keys are all in ALLOWED (NULL-terminated). NULL with E
 * filled otherwise. */
struct json_object *vpd_body_parse(const char *text, size_t len, const char *const *allowed,
                                   struct vpd_body_error *e);

/* Field KEY of O. Absent: OUT untouched, true unless REQUIRED. Wrong type
 * or value: false with E filled. */
bool vpd_field_name(struct json_object *o, const char *key, const char *what, bool required, char *out,
                    size_t outsz, struct vpd_body_error *e);
bool vpd_field_uint(struct json_object *o, const char *key, int64_t min, int64_t max, bool required, int64_t *out,
                    struct vpd_body_error *e);
bool vpd_field_bool(struct json_object *o, const char *key, bool *out, struct vpd_body_error *e);
bool vpd_field_placement(struct json_object *o, enum vp_placement *out, struct vpd_body_error *e);
/* An array of at most MAX names of WHAT into OUT (each NAMESZ bytes). */
bool vpd_field_names(struct json_object *o, const char *key, const char *what, size_t max, char *out, size_t namesz,
                     size_t *n, struct vpd_body_error *e);
/* A line of text of at most OUTSZ - 1 bytes: a string, not empty, with no
 * NUL or control character. */
bool vpd_field_text(struct json_object *o, const char *key, bool required, char *out, size_t outsz,
                    struct vpd_body_error *e);
/* An array of 1 to MAX such lines into OUT (each TEXTSZ bytes). */
bool vpd_field_texts(struct json_object *o, const char *key, size_t max, char *out, size_t textsz, size_t *n,
                     struct vpd_body_error *e);
/* Whether O holds KEY as a JSON null (the readers above take it as absent;
 * a PATCH takes it as "none"). */
bool vpd_field_is_null(struct json_object *o, const char *key);
