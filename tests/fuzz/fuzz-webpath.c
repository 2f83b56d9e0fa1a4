/* libFuzzer target for the request paths vpoold maps to the web console's
 * files (webpath.c): any path either names no file or names one plain
 * file of the console folder, one segment of [A-Za-z0-9._-], not hidden,
 * with a Content-Type; and "/v1" paths are the API's, never a file's. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "webpath.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *path = malloc(size + 1);
        memcpy(path, data, size);
        path[size] = 0;
        char name[80];
        const char *type = NULL;
        int r = vpd_web_path(path, name, sizeof(name), &type);
        require(r == 0 || r == -ENOENT);
        if (r == 0) {
                require(type && *type);
                require(name[0] && name[0] != '.');
                require(strlen(name) < sizeof(name));
                for (const char *p = name; *p; p++)
                        require((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                                *p == '-' || *p == '_' || *p == '.');
                require(!strstr(name, ".."));
                require(strchr(name, '.'));
        }
        /* A small buffer: refused, never overrun. */
        char small[4];
        int k = vpd_web_path(path, small, sizeof(small), &type);
        require(k == 0 || k == -ENOENT);
        if (vpd_web_is_api(path))
                require(strncmp(path, "/v1", 3) == 0);
        free(path);
        return 0;
}
