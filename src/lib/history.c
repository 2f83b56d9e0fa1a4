#include "history.h"

#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>

#include "name.h"

/* Field 22 of /proc/PID/stat: when the process started, in clock ticks
 * since boot. With the pid it names one process; a reused pid differs. */
static int64_t proc_start(pid_t pid)
{
        char path[64], buf[1024];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return -1;
        buf[n] = 0;
        /* The command name may hold spaces and parentheses: count from the last ')'. */
        char *p = strrchr(buf, ')');
        if (!p)
                return -1;
        p++;
        for (int field = 3; field < 22; field++) {
                p = strchr(p + 1, ' ');
                if (!p)
                        return -1;
        }
        return strtoll(p + 1, NULL, 10);
}

static char *hostname(void)
{
        char h[256] = "";
        if (gethostname(h, sizeof(h) - 1) < 0)
                h[0] = 0;
        h[sizeof(h) - 1] = 0;
        return vp_strdup(h);
}

/* A value fit to print: at most MAX bytes, printable, no spaces. */
static bool plain_word(const char *s, size_t max)
{
        if (!s || !*s || strlen(s) > max)
                return false;
        for (; *s; s++)
                if (!isgraph((unsigned char)*s))
                        return false;
        return true;
}

void vp_history_whoami(struct vp_history *h)
{
        uid_t uid = getuid();
        struct passwd pw, *res = NULL;
        char buf[4096];
        if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res && plain_word(res->pw_name, 64))
                h->user = vp_strdup(res->pw_name);
        else
                h->user = vp_strdupf("uid %u", (unsigned)uid);
        const char *su = getenv("SUDO_USER");
        h->sudo_user = vp_strdup(plain_word(su, 64) ? su : "");
        h->host = hostname();
        h->pid = getpid();
        h->pid_start = proc_start(getpid());
        h->via = vp_strdup(vp_via_to_string(VP_VIA_CLI));
}

void vp_history_who(struct vp_history *h, const struct vp_actor *actor)
{
        const char *via = actor ? vp_via_to_string(actor->via) : NULL;
        if (!via || actor->via == VP_VIA_CLI) {
                vp_history_whoami(h);
                return;
        }
        /* The name is the daemon's word, but a history row is printed on
         * terminals: kept only when it is a plain word. */
        char name[VP_ACTOR_NAME_MAX];
        snprintf(name, sizeof(name), "%.*s", (int)sizeof(actor->name), actor->name);
        h->user = vp_strdup(plain_word(name, sizeof(name) - 1) ? name : "?");
        h->sudo_user = vp_strdup("");
        h->host = hostname();
        h->pid = getpid();
        h->pid_start = proc_start(getpid());
        h->via = vp_strdup(via);
}

enum vp_via vp_history_via(const struct vp_history *h)
{
        enum vp_via v = h->via && *h->via ? vp_via_from_string(h->via) : VP_VIA_CLI;
        return v < 0 ? VP_VIA_CLI : v;
}

static bool safe_char(unsigned char c)
{
        return isalnum(c) || strchr("_./:=,@%+-", c);
}

/* Append WORD quoted to OUT (at least 4 * strlen + 8 bytes free). */
static size_t quote_word(char *out, const char *word)
{
        size_t o = 0;
        bool plain = *word != 0, ctl = false;
        for (const unsigned char *p = (const unsigned char *)word; *p; p++) {
                if (!safe_char(*p))
                        plain = false;
                if (*p < 0x20 || *p == 0x7f)
                        ctl = true;
        }
        if (plain) {
                strcpy(out, word);
                return strlen(word);
        }
        if (!ctl) {
                out[o++] = '\'';
                for (const char *p = word; *p; p++) {
                        if (*p == '\'') {
                                memcpy(out + o, "'\\''", 4);
                                o += 4;
                        } else {
                                out[o++] = *p;
                        }
                }
                out[o++] = '\'';
                out[o] = 0;
                return o;
        }
        /* Control characters never reach a terminal raw: bash's $'...' form. */
        out[o++] = '$';
        out[o++] = '\'';
        for (const unsigned char *p = (const unsigned char *)word; *p; p++) {
                if (*p < 0x20 || *p == 0x7f)
                        o += (size_t)sprintf(out + o, "\\x%02x", *p);
                else if (*p == '\'' || *p == '\\') {
                        out[o++] = '\\';
                        out[o++] = (char)*p;
                } else
                        out[o++] = (char)*p;
        }
        out[o++] = '\'';
        out[o] = 0;
        return o;
}

char *vp_shell_join(int argc, char *const *argv, size_t max)
{
        size_t cap = max + 8, len = 0;
        char *out = vp_xcalloc(1, cap);
        for (int i = 0; i < argc; i++) {
                size_t wl = strlen(argv[i]);
                char *q = vp_xcalloc(1, 4 * wl + 8);
                size_t ql = quote_word(q, argv[i]);
                if (len + (i ? 1 : 0) + ql > max) {
                        free(q);
                        strcpy(out + len, " ...");
                        return out;
                }
                if (i)
                        out[len++] = ' ';
                memcpy(out + len, q, ql + 1);
                len += ql;
                free(q);
        }
        return out;
}

static int journal_max(struct vp_catalog *c, int64_t *ret, struct vp_error *err)
{
        void *rows = NULL;
        size_t n = 0;
        int k = vp_row_query(c, &vp_table_journal, "id = (SELECT max(id) FROM journal)", 0, &rows, &n, err);
        if (k < 0)
                return k;
        *ret = n ? ((struct vp_journal *)rows)[0].id : 0;
        vp_rows_free(&vp_table_journal, rows, n);
        return 0;
}

static void set_text(char **field, char *value)
{
        free(*field);
        *field = value;
}

int vp_history_begin(struct vp_catalog *c, struct vp_history *h, struct vp_error *err)
{
        set_text(&h->at, vp_now_iso());
        set_text(&h->ended, vp_strdup(""));
        set_text(&h->outcome, vp_strdup("running"));
        h->journal_to = 0;
        /* The journal mark and the row in one transaction: marks then grow
         * with ids, which is what orders commands among journal entries. */
        int k = vp_catalog_begin(c, err);
        if (k >= 0 && (k = journal_max(c, &h->journal_from, err)) >= 0 &&
            (k = vp_row_insert(c, &vp_table_history, h, err)) >= 0)
                k = vp_catalog_commit(c, err);
        if (k < 0)
                vp_catalog_rollback(c);
        return k;
}

int vp_history_update(struct vp_catalog *c, const struct vp_history *h, struct vp_error *err)
{
        return vp_row_update(c, &vp_table_history, h, err);
}

int vp_history_end(struct vp_catalog *c, struct vp_history *h, const char *outcome, struct vp_error *err)
{
        set_text(&h->ended, vp_now_iso());
        set_text(&h->outcome, vp_strdup(outcome));
        int k = vp_catalog_begin(c, err);
        if (k >= 0 && (k = journal_max(c, &h->journal_to, err)) >= 0 &&
            (k = vp_row_update(c, &vp_table_history, h, err)) >= 0)
                k = vp_catalog_commit(c, err);
        if (k < 0)
                vp_catalog_rollback(c);
        return k;
}

const char *vp_history_outcome(const struct vp_history *h)
{
        if (!streq(h->outcome, "running"))
                return h->outcome;
        _cleanup_free_ char *me = hostname();
        /* Another host's processes cannot be seen from here. */
        if (!streq(me, h->host))
                return h->outcome;
        if (h->pid > 0 && h->pid <= INT_MAX && proc_start((pid_t)h->pid) == h->pid_start)
                return h->outcome;
        return "interrupted";
}

int vp_parse_since(const char *s, time_t now, char ret[32], struct vp_error *err)
{
        char pb[64];
        struct tm tm = { 0 };
        time_t t;
        size_t len = strlen(s);
        if (len > 0 && len < 12 && strchr("smhdw", s[len - 1]) && strspn(s, "0123456789") == len - 1) {
                static const struct { char c; long long secs; } units[] = {
                        { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 'w', 7 * 86400 },
                };
                long long n = strtoll(s, NULL, 10), secs = 0;
                for (size_t i = 0; i < ELEMENTSOF(units); i++)
                        if (units[i].c == s[len - 1])
                                secs = units[i].secs;
                if (n > 100LL * 366 * 86400 / secs)
                        return vp_err(err, -ERANGE, "--since '%s' is too far back", s);
                t = now - (time_t)(n * secs);
        } else {
                int y, mo, d, H = 0, M = 0, S = 0, used = 0;
                char sep;
                bool ok = false;
                if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &used) == 3 && used == 10) {
                        const char *rest = s + used;
                        int u2 = 0;
                        if (!*rest)
                                ok = true;
                        else if (sscanf(rest, "%c%2d:%2d%n", &sep, &H, &M, &u2) == 3 && u2 == 6 &&
                                 (sep == 'T' || sep == ' ')) {
                                rest += u2;
                                int u3 = 0;
                                if (*rest == ':' && sscanf(rest, ":%2d%n", &S, &u3) == 1 && u3 == 3)
                                        rest += u3;
                                if (*rest == 'Z')
                                        rest++;
                                ok = !*rest;
                        }
                }
                if (!ok || len > 20 || !isdigit((unsigned char)s[0]))
                        return vp_err(err, -EINVAL, "invalid time '%s': expected a date like 2026-11-27, a date and "
                                      "time like 2026-11-27T10:00:00 (UTC), or an age like 30m, 2h, 1d",
                                      vp_printable(s, pb, sizeof(pb)));
                tm.tm_year = y - 1900;
                tm.tm_mon = mo - 1;
                tm.tm_mday = d;
                tm.tm_hour = H;
                tm.tm_min = M;
                tm.tm_sec = S;
                t = timegm(&tm);
                /* timegm normalizes 2026-02-30 into March: refuse instead. */
                struct tm back;
                gmtime_r(&t, &back);
                if (t == (time_t)-1 || back.tm_year != y - 1900 || back.tm_mon != mo - 1 || back.tm_mday != d ||
                    back.tm_hour != H || back.tm_min != M || back.tm_sec != S)
                        return vp_err(err, -EINVAL, "invalid time '%s': no such date or time",
                                      vp_printable(s, pb, sizeof(pb)));
        }
        gmtime_r(&t, &tm);
        strftime(ret, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
        return 0;
}

/* VMs are named POOL-NNN. */
static bool vm_of_pool(const char *vm, const char *pool)
{
        size_t pl = strlen(pool);
        if (strncmp(vm, pool, pl) != 0 || vm[pl] != '-' || !vm[pl + 1])
                return false;
        return strspn(vm + pl + 1, "0123456789") == strlen(vm + pl + 1);
}

/* A drain moves several pools: "env drain", a host's from the command line
 * ("env host drain") or from the daemon ("host drain"). */
static bool is_drain(const struct vp_history *h)
{
        return streq(h->verb, "drain") && (streq(h->noun, "env") || streq(h->noun, "env host") || streq(h->noun, "host"));
}

/* The command line's migrate verbs, and the daemon's migration jobs. */
static bool runs_migrations(const struct vp_history *h)
{
        return ((streq(h->noun, "migrate") || streq(h->noun, "migration")) &&
                (streq(h->verb, "start") || streq(h->verb, "resume") || streq(h->verb, "abort"))) ||
               is_drain(h);
}

static const char *migration_pool(const struct vp_history_log *log, int64_t id)
{
        size_t lo = 0, hi = log->nmigs;
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (log->migs[mid].id == id)
                        return log->migs[mid].pool_name;
                if (log->migs[mid].id < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return "";
}

/* The command that wrote journal entry J: the latest migration command that
 * was running when J was written, on J's migration; failing that (a command
 * that died before it learned its migration id, a drain of several pools),
 * one on J's pool. */
static const struct vp_history *step_command(const struct vp_history_log *log, const size_t *cand, size_t ncand,
                                             const struct vp_journal *j, const char *pool)
{
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = ncand; i-- > 0;) {
                        const struct vp_history *h = &log->cmds[cand[i]];
                        if (h->journal_from >= j->id || (h->journal_to && j->id > h->journal_to))
                                continue;
                        if (pass == 0 && h->migration_id == j->migration_id)
                                return h;
                        if (pass == 1 && (h->migration_id == 0 || is_drain(h)) &&
                            (!*h->pool || streq(h->pool, pool)))
                                return h;
                }
        return NULL;
}

static bool wanted(const struct vp_history_filter *f, const struct vp_history_item *it)
{
        const char *at = it->step ? it->step->at : it->cmd->at;
        if (f->since && strcmp(at, f->since) < 0)
                return false;
        /* A step goes with the command that ran it; one no recorded command ran is nobody's. */
        if (f->via && (!it->cmd || vp_history_via(it->cmd) != vp_via_from_string(f->via)))
                return false;
        if (f->pool && !streq(it->pool, f->pool))
                return false;
        if (f->vm) {
                const char *vm = it->step ? it->step->vm_name : it->cmd->vm;
                if (*vm)
                        return streq(vm, f->vm);
                /* Whole-pool commands and migration-wide entries concern each VM. */
                return *it->pool && vm_of_pool(f->vm, it->pool);
        }
        return true;
}

int vp_history_read(struct vp_catalog *c, const struct vp_history_filter *f, struct vp_history_log *ret,
                    struct vp_error *err)
{
        struct vp_history_log log = { 0 };
        void *rows;
        int k;
        char pb[64];
        if (f->via && vp_via_from_string(f->via) < 0) {
                _cleanup_free_ char *all = vp_via_list(", ");
                return vp_err(err, -EINVAL, "unknown via '%s' (%s)", vp_printable(f->via, pb, sizeof(pb)), all);
        }
        /* A catalog of an older vpool that this user may not write has none yet. */
        if (vp_catalog_has_table(c, "history")) {
                if ((k = vp_row_list(c, &vp_table_history, NULL, NULL, &rows, &log.ncmds, err)) < 0)
                        return k;
                log.cmds = rows;
        }
        if ((k = vp_row_list(c, &vp_table_journal, NULL, NULL, &rows, &log.nsteps, err)) < 0)
                goto fail;
        log.steps = rows;
        if ((k = vp_row_list(c, &vp_table_migration, NULL, NULL, &rows, &log.nmigs, err)) < 0)
                goto fail;
        log.migs = rows;

        size_t *cand = vp_xcalloc(log.ncmds + 1, sizeof(size_t)), ncand = 0;
        for (size_t i = 0; i < log.ncmds; i++)
                if (runs_migrations(&log.cmds[i]))
                        cand[ncand++] = i;
        log.items = vp_xcalloc(log.ncmds + log.nsteps + 1, sizeof(*log.items));
        /* A command comes after the journal entries written before it began. */
        size_t i = 0, s = 0;
        while (i < log.ncmds || s < log.nsteps) {
                struct vp_history_item it = { 0 };
                if (s < log.nsteps && (i == log.ncmds || log.steps[s].id <= log.cmds[i].journal_from)) {
                        it.step = &log.steps[s++];
                        it.pool = migration_pool(&log, it.step->migration_id);
                        it.cmd = step_command(&log, cand, ncand, it.step, it.pool);
                } else {
                        it.cmd = &log.cmds[i++];
                        it.pool = it.cmd->pool;
                }
                if (wanted(f, &it))
                        log.items[log.n++] = it;
        }
        free(cand);
        *ret = log;
        return 0;
fail:
        vp_history_log_free(&log);
        return k;
}

void vp_history_log_free(struct vp_history_log *log)
{
        vp_rows_free(&vp_table_history, log->cmds, log->ncmds);
        vp_rows_free(&vp_table_journal, log->steps, log->nsteps);
        vp_rows_free(&vp_table_migration, log->migs, log->nmigs);
        free(log->items);
        memset(log, 0, sizeof(*log));
}
