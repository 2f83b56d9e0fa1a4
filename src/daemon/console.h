/* The web console's static files, served at / (console.c). */
#pragma once
#include "vpoold.h"

/* Open the folder of the setting console into D->console_fd (-1 when it
 * is unset or cannot be opened: logged, and / then answers 404). */
int vpd_console_open(struct vpd *d);
void vpd_console_close(struct vpd *d);

/* Answer R, a path outside /v1, with a file of the console or a problem,
 * each with the console's security headers; queues its own response. */
void vpd_console_serve(struct vpd_request *r, struct vpd_reply *rep);
