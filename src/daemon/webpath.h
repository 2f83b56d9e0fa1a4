/* The console's files as a request path names them. Pure: no HTTP and no
 * file system here, so the check is fuzzed on its own
 * (tests/fuzz/fuzz-webpath.c). */
#pragma once
#include <stdbool.h>
#include <stddef.h>

/* Whether PATH (decoded) is the API's: "/v1" or under "/v1/". */
bool vpd_web_is_api(const char *path);

/* The file of the console folder PATH names, into NAME (N bytes), and its
 * Content-Type into *RET_TYPE (a static string): "/" is index.html; any
 * other path is one segment of letters, digits, '-', '_' and '.', not
 * beginning with '.' nor holding "..", whose extension the console uses. Returns 0, or
 * -ENOENT when PATH names no console file (a folder, a traversal, a control
 * character, an unknown extension). */
int vpd_web_path(const char *path, char *name, size_t n, const char **ret_type);
