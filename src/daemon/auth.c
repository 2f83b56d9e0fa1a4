#include "auth.h"

#include <string.h>
#include <strings.h>
#include <time.h>

#include "token.h"


bool vpd_auth_token(struct vpd_request *r, const char *auth, struct vpd_reply *rep)
{
        if (strncasecmp(auth, "Bearer ", 7) != 0) {
                vpd_problem(rep, 401, NULL, "the Authorization header must be 'Bearer TOKEN'");
                return false;
        }
        struct vp_error err = { 0 };
        struct vp_ctx *ctx = vpd_read_ctx(r->d, &err);
        if (!ctx) {
                vpd_problem_err(rep, &err);
                return false;
        }
        struct vp_token tok = { 0 };
        if (vp_token_verify(ctx, auth + 7, &tok, &err) < 0) {
                if (err.code == -EINVAL || err.code == -EACCES)
                        vpd_problem(rep, 401, NULL, "%s", err.msg);
                else
                        vpd_problem_err(rep, &err);
                return false;
        }
        snprintf(r->actor, sizeof(r->actor), "%s", tok.name);
        r->role = vp_role_from_string(tok.role);
        vp_row_clear(&vp_table_token, &tok);
        return true;
}

/* ---- the rate limit: a token bucket per client ---- */

#define BUCKETS 256

struct bucket {
        char who[128];
        double tokens;
        double at;                        /* when last filled, seconds */
};

static struct bucket buckets[BUCKETS];
static pthread_mutex_t buckets_lock = PTHREAD_MUTEX_INITIALIZER;
static int rate = 200;

void vpd_auth_set_rate(int per_second)
{
        rate = per_second;
}

int vpd_auth_rate_limit(void)
{
        return rate;
}

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* FNV-1a spreads the clients over the buckets. A client that finds its
 * bucket held by another takes it over full: with a few clients and 256
 * buckets that is rare, and it never refuses a client wrongly. */
static size_t slot_of(const char *who)
{
        uint32_t h = 2166136261u;
        for (const unsigned char *p = (const unsigned char *)who; *p; p++)
                h = (h ^ *p) * 16777619u;
        return h % BUCKETS;
}

bool vpd_auth_rate_ok(const struct vpd_request *r)
{
        double t = now_s(), burst = 2.0 * rate;
        pthread_mutex_lock(&buckets_lock);
        struct bucket *b = &buckets[slot_of(r->actor)];
        if (!streq(b->who, r->actor)) {
                snprintf(b->who, sizeof(b->who), "%s", r->actor);
                b->tokens = burst;
                b->at = t;
        }
        b->tokens += (t - b->at) * rate;
        if (b->tokens > burst)
                b->tokens = burst;
        b->at = t;
        bool ok = b->tokens >= 1.0;
        if (ok)
                b->tokens -= 1.0;
        pthread_mutex_unlock(&buckets_lock);
        return ok;
}
