/* The group fixture of the unit tests that open catalogs: a fresh
 * directory DIR for the group, PATH a catalog file in it, all removed at the
 * end. Included by one test program each; hence static. */
#pragma once
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[64];
static char path[128];

static int setup(void **state)
{
        (void)state;
        strcpy(dir, "/tmp/vp-catalog-test-XXXXXX");
        if (!mkdtemp(dir))
                return -1;
        snprintf(path, sizeof(path), "%s/catalog.db", dir);
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        char cmd[200];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        return system(cmd) == 0 ? 0 : -1;
}
