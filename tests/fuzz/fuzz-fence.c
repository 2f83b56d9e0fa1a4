/* libFuzzer target for the fence agent's argv as an operator types it
 * (vp_fence_cmd_split) and as vpool shows it back (vp_fence_cmd_show):
 * every input is split or refused with a clean error, and what show prints
 * of an argv splits back to the very same argv. */
#include <stdint.h>
#include <string.h>

#include "fence.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > 4096)
                return 0;
        char *text = vp_xcalloc(1, size + 1);
        memcpy(text, data, size);
        char *json = NULL;
        struct vp_error err = { 0 };
        int r = vp_fence_cmd_split(text, &json, &err);
        if (r < 0) {
                require_clean_error(r, &err);
                require(json == NULL);
        } else {
                char *shown = vp_fence_cmd_show(json), *again = NULL;
                require(shown != NULL);
                require(vp_fence_cmd_split(shown, &again, &err) == 0);
                require(strcmp(again, json) == 0);
                free(shown);
                free(again);
                free(json);
        }
        free(text);
        return 0;
}
