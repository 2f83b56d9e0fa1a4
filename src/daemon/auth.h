/* Who may ask vpoold: bearer tokens (the catalog's, by their hash) and a
 * rate limit per client. */
#pragma once
#include "vpoold.h"

/* Check AUTH (an Authorization header's value) and set R's role and actor;
 * false with a 401 in REP when it is no valid bearer token. */
bool vpd_auth_token(struct vpd_request *r, const char *auth, struct vpd_reply *rep);

/* Set the requests per second one client (a token, a unix user) may send;
 * a burst of as many again is allowed. */
void vpd_auth_set_rate(int per_second);
int vpd_auth_rate_limit(void);
/* Count one request of R's client; false when it is over its limit. */
bool vpd_auth_rate_ok(const struct vpd_request *r);
