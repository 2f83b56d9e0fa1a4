/* The history: one catalog row per command that changes something, written
 * as "running" before the work begins and given its outcome when it ends, so
 * a crash leaves a visible trace. Migration steps live in the journal; the
 * reader merges them in under the command that ran them. */
#pragma once
#include <time.h>

#include "catalog.h"
#include "model.h"

/* Fill H's user, sudo_user, host, pid, pid_start and via (cli) for this
 * process (strings malloc'd into H, which owns them). */
void vp_history_whoami(struct vp_history *h);
/* The same for a change ACTOR makes (NULL or via cli: vp_history_whoami).
 * Through the API or a policy, the user is the actor's name (a token's, a
 * socket peer's, a policy's), sudo_user is "", and host, pid and pid_start
 * are the serving process's, so a row it left running reads as interrupted
 * once it is gone. */
void vp_history_who(struct vp_history *h, const struct vp_actor *actor);
/* Through what H came, as stored or, for a row before schema 6, cli. */
enum vp_via vp_history_via(const struct vp_history *h);

/* ARGV as one line a POSIX shell reads back as the same words: plain words as
 * they are, others in single quotes, control characters as $'\xNN'. Longer
 * than MAX bytes, it is cut at a word and ends in " ...". Returns malloc'd. */
char *vp_shell_join(int argc, char *const *argv, size_t max);

/* Insert H as running: sets its at, ended, journal_from, journal_to, outcome
 * and id. The caller filled the rest. */
int vp_history_begin(struct vp_catalog *c, struct vp_history *h, struct vp_error *err);
/* Rewrite H (say, once its migration is known). */
int vp_history_update(struct vp_catalog *c, const struct vp_history *h, struct vp_error *err);
/* Record how H ended: OUTCOME is "ok" or "failed: MESSAGE". */
int vp_history_end(struct vp_catalog *c, struct vp_history *h, const char *outcome, struct vp_error *err);

/* H's outcome as a reader should see it: a "running" row whose process is
 * gone (on this host) is "interrupted". Static string or H's own. */
const char *vp_history_outcome(const struct vp_history *h);

/* --since T: an ISO date (2026-11-27), date and time (2026-11-27T10:00,
 * 2026-11-27 10:00:00, optional Z), all UTC like the times vpool records; or
 * an age before NOW: 90s, 30m, 1h, 2d, 1w. RET gets the ISO UTC instant. */
int vp_parse_since(const char *s, time_t now, char ret[32], struct vp_error *err);

struct vp_history_filter {
        const char *pool;      /* NULL: any */
        const char *vm;        /* commands on the VM or its whole pool, and its steps */
        const char *since;     /* ISO UTC instant from vp_parse_since, or NULL */
        const char *via;       /* a vp_via word: commands through it and the steps they ran; NULL any */
};

/* One line of the merged history: a command, or a journal entry (a
 * migration step) with the command that ran it when one is recorded. */
struct vp_history_item {
        const struct vp_history *cmd;
        const struct vp_journal *step;   /* NULL for a command */
        const char *pool;                /* the pool of the command or of the step's migration */
};

struct vp_history_log {
        struct vp_history *cmds;
        size_t ncmds;
        struct vp_journal *steps;
        size_t nsteps;
        struct vp_migration *migs;
        size_t nmigs;
        struct vp_history_item *items;   /* oldest first, filtered */
        size_t n;
};

/* Read the history matching F, oldest first. Returns 0 and fills *ret (free
 * with vp_history_log_free); -EINVAL when F->via is not a vp_via word. */
int vp_history_read(struct vp_catalog *c, const struct vp_history_filter *f, struct vp_history_log *ret,
                    struct vp_error *err);
void vp_history_log_free(struct vp_history_log *log);
