#include "webpath.h"

#include <errno.h>
#include <string.h>

#define NAME_MAX_LEN 64

bool vpd_web_is_api(const char *path)
{
        return strncmp(path, "/v1", 3) == 0 && (path[3] == 0 || path[3] == '/');
}

static const struct {
        const char *ext, *type;
} types[] = {
        { ".html", "text/html; charset=utf-8" },
        { ".js", "text/javascript; charset=utf-8" },
        { ".css", "text/css; charset=utf-8" },
        { ".svg", "image/svg+xml" },
        { ".png", "image/png" },
        { ".txt", "text/plain; charset=utf-8" },
};

static bool name_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
               c == '.';
}

int vpd_web_path(const char *path, char *name, size_t n, const char **ret_type)
{
        if (!path || path[0] != '/')
                return -ENOENT;
        const char *file = path[1] ? path + 1 : "index.html";
        size_t len = strlen(file);
        /* One segment of plain characters: no '/', so no folder and no
         * traversal; no leading '.' and no "..", so no hidden file and
         * nothing a later reader could take for a parent. */
        if (len == 0 || len > NAME_MAX_LEN || len >= n || file[0] == '.' || strstr(file, ".."))
                return -ENOENT;
        for (size_t i = 0; i < len; i++)
                if (!name_char(file[i]))
                        return -ENOENT;
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
                size_t el = strlen(types[i].ext);
                if (len > el && strcmp(file + len - el, types[i].ext) == 0) {
                        memcpy(name, file, len + 1);
                        *ret_type = types[i].type;
                        return 0;
                }
        }
        return -ENOENT;
}
