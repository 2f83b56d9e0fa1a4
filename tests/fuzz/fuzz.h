/* What every fuzz target asserts beyond "does not crash". */
#pragma once
#include <stdio.h>
#include <stdlib.h>

#include "util.h"

/* A broken promise stops the run like a crash, naming the line. */
#define require(cond)                                                                        \
        do {                                                                                 \
                if (!(cond)) {                                                               \
                        fprintf(stderr, "%s:%d: requirement failed: %s\n", __FILE__,         \
                                __LINE__, #cond);                                            \
                        abort();                                                             \
                }                                                                            \
        } while (0)

/* The CLI prints the message as the one line of a failure: it must be there,
 * carry the code returned, and nothing taken from the input may break it up
 * or drive a terminal. */
static inline void require_clean_error(int r, const struct vp_error *err)
{
        require(r < 0);
        require(err->code == r);
        require(err->msg[0] != '\0');
        for (const char *p = err->msg; *p; p++)
                require((unsigned char) *p >= 0x20 && (unsigned char) *p != 0x7f);
}
