/* libFuzzer target for the names of user delta collections as shared
 * storage hands them to fsck and the hand-over (vp_delta_dir_parse): every
 * name is refused or split into a VM name that passes the allowlist and a
 * UUID that is empty or well formed, and the two put back together are the
 * name read. */
#include <stdint.h>
#include <string.h>

#include "delta.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > 512)
                return 0;
        char *dir = vp_xcalloc(1, size + 1);
        memcpy(dir, data, size);
        char vm[VP_NAME_MAX + 1], uuid[37];
        if (vp_delta_dir_parse(dir, vm, uuid) == 0) {
                require(vp_name_check("vm", vm, NULL) == 0);
                size_t ul = strlen(uuid);
                require(ul == 0 || ul == 36);
                for (size_t i = 0; i < ul; i++)
                        require(i == 8 || i == 13 || i == 18 || i == 23 ? uuid[i] == '-'
                                                                          : strchr("0123456789abcdefABCDEF", uuid[i]) != NULL);
                char *back = ul ? vp_strdupf("%s.%s", vm, uuid) : vp_strdup(vm);
                require(strcmp(back, dir) == 0);
                free(back);
        }
        free(dir);
        return 0;
}
