/* libFuzzer target for the manifest parser: manifest.json lives on shared
 * storage, where anything with write access may have left anything.
 *
 * Beyond "does not crash": every failure carries a one-line message, and
 * every manifest that parses survives vp_manifest_to_json and a second
 * parse unchanged, with the second serialization identical to the first
 * (what vpool writes it must read back as it was, or a hand-over could
 * silently change an owner or a generation). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Field by field: struct padding is not part of a manifest. */
static bool same_manifest(const struct vp_manifest *a, const struct vp_manifest *b)
{
        if (!streq(a->pool, b->pool) || !streq(a->vm, b->vm) || !streq(a->owner, b->owner) ||
            a->generation != b->generation || !streq(a->uuid, b->uuid) || a->nmacs != b->nmacs ||
            !streq(a->hostname, b->hostname) || !streq(a->master, b->master) ||
            !streq(a->master_format, b->master_format) || !streq(a->overlay, b->overlay) ||
            !streq(a->data_disk, b->data_disk) || !streq(a->nvram, b->nvram))
                return false;
        for (int i = 0; i < a->nmacs; i++)
                if (!streq(a->macs[i], b->macs[i]))
                        return false;
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct vp_manifest *m1, *m2, *m3;
        struct vp_error err = { 0 };
        char *text, *json1, *json2;
        int r;

        /* vp_manifest_read hands the parser a NUL-terminated file. */
        text = malloc(size + 1);
        require(text);
        memcpy(text, data, size);
        text[size] = '\0';

        /* A manifest is some 4 KiB of PATH_MAX; keep it off the stack. */
        m1 = calloc(3, sizeof(*m1));
        require(m1);
        m2 = m1 + 1;
        m3 = m1 + 2;

        r = vp_manifest_parse(text, "fuzz", m1, &err);
        if (r < 0) {
                require_clean_error(r, &err);
                goto out;
        }
        require(r == 0);
        require(m1->generation >= 1);
        require(m1->nmacs >= 0 && m1->nmacs <= VP_MAX_MACS);

        json1 = vp_manifest_to_json(m1);
        require(json1);
        r = vp_manifest_parse(json1, "fuzz", m2, &err);
        if (r < 0)
                fprintf(stderr, "fuzz-manifest: own output refused: %s\n%s", err.msg, json1);
        require(r == 0);
        require(same_manifest(m1, m2));

        json2 = vp_manifest_to_json(m2);
        require(json2);
        require(streq(json1, json2));
        require(vp_manifest_parse(json2, "fuzz", m3, &err) == 0 && same_manifest(m1, m3));
        free(json1);
        free(json2);
out:
        free(m1);
        free(text);
        return 0;
}
