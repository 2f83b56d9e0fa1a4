/* libFuzzer target for the reader of catalog exports: `vpool catalog
 * import FILE` takes a file an operator carried from elsewhere, and a
 * mistake in it must be refused before anything is written.
 *
 * Beyond "does not crash": every refusal carries a one-line message, and a
 * document accepted is accepted again once written out by json-c (what
 * `catalog export` writes). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct vp_error err = { 0 };
        struct json_object *doc = NULL, *again = NULL;
        char *text = malloc(size + 1);
        require(text);
        memcpy(text, data, size);
        text[size] = '\0';
        int r = vp_catalog_export_parse(text, size, "fuzz", &doc, &err);
        if (r < 0) {
                require_clean_error(r, &err);
                require(!doc);
        } else {
                require(r == 0 && doc);
                const char *out = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN);
                r = vp_catalog_export_parse(out, strlen(out), "fuzz", &again, &err);
                require(r == 0 && again);
                json_object_put(again);
                json_object_put(doc);
        }
        free(text);
        return 0;
}
