#include "runcmd.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

/* Only the tail of stderr matters for the message; cap what we keep so a
 * chatty or hostile child cannot make us allocate without bound. */
#define STDERR_KEEP (64 * 1024)

static void posix_spawn_file_actions_destroyp(posix_spawn_file_actions_t **p)
{
        if (*p)
                posix_spawn_file_actions_destroy(*p);
}

static void posix_spawnattr_destroyp(posix_spawnattr_t **p)
{
        if (*p)
                posix_spawnattr_destroy(*p);
}

static const char *base_name(const char *path)
{
        const char *slash = strrchr(path, '/');
        return slash ? slash + 1 : path;
}

/* Read FD to EOF, keeping only the last STDERR_KEEP bytes in BUF.
 * Returns the number of bytes kept. */
static size_t drain_tail(int fd, char *buf)
{
        size_t len = 0;
        char chunk[4096];

        for (;;) {
                ssize_t n = read(fd, chunk, sizeof(chunk));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (n == 0)
                        break;
                if (len + (size_t) n > STDERR_KEEP) {
                        size_t drop = len + (size_t) n - STDERR_KEEP;
                        if (drop > len)
                                drop = len;
                        memmove(buf, buf + drop, len - drop);
                        len -= drop;
                }
                memcpy(buf + len, chunk, (size_t) n);
                len += (size_t) n;
        }
        return len;
}

/* Copy LINE into BUF with control and non-ASCII bytes escaped as \xNN.
 * Quotes are kept as they are: the line is not a quoted subject. */
static const char *escape_line(const char *line, char *buf, size_t bufsz)
{
        static const char hex[] = "0123456789abcdef";
        size_t o = 0;

        for (const unsigned char *p = (const unsigned char *) line; *p; p++) {
                bool esc = *p < 0x20 || *p >= 0x7f;
                if (o + (esc ? 4 : 1) + 1 > bufsz)
                        break;
                if (esc) {
                        buf[o++] = '\\';
                        buf[o++] = 'x';
                        buf[o++] = hex[*p >> 4];
                        buf[o++] = hex[*p & 0xf];
                } else {
                        buf[o++] = (char) *p;
                }
        }
        buf[o] = '\0';
        return buf;
}

/* Find the last line of BUF[0..len) with something other than white
 * space on it and NUL-terminate it in place. */
static const char *last_line(char *buf, size_t len)
{
        size_t end = len;

        for (;;) {
                while (end > 0 && (buf[end - 1] == '\n' || buf[end - 1] == '\r' ||
                                   buf[end - 1] == ' ' || buf[end - 1] == '\t'))
                        end--;
                if (end == 0)
                        return NULL;
                size_t start = end;
                while (start > 0 && buf[start - 1] != '\n')
                        start--;
                buf[end] = '\0';
                while (buf[start] == ' ' || buf[start] == '\t' || buf[start] == '\r')
                        start++;
                if (buf[start])
                        return buf + start;
                end = start;
        }
}

/* The child's descriptors and signals: stdin and stdout on /dev/null,
 * stderr into the pipe's write end WFD, nothing else inherited, a clean
 * signal mask and SIGPIPE at its default. Returns 0 or a positive errno. */
static int spawn_setup(posix_spawn_file_actions_t *fa, posix_spawnattr_t *attr, int wfd)
{
        sigset_t mask;
        /* The pipe is O_CLOEXEC, and dup2 onto fd 2 clears the flag on the
         * copy, so the child ends up with exactly stdin, stdout, stderr. The
         * dup2 goes first in case a caller with closed stdio got the pipe as
         * fd 0 or 1. */
        int r = posix_spawn_file_actions_adddup2(fa, wfd, STDERR_FILENO);
        if (r == 0)
                r = posix_spawn_file_actions_addopen(fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        if (r == 0)
                r = posix_spawn_file_actions_addopen(fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
#if defined(__GLIBC__) && defined(__GLIBC_PREREQ)
#if __GLIBC_PREREQ(2, 34)
        /* Belt and braces against descriptors some library opened without
         * O_CLOEXEC. */
        if (r == 0)
                r = posix_spawn_file_actions_addclosefrom_np(fa, STDERR_FILENO + 1);
#endif
#endif
        if (r != 0)
                return r;

        /* Do not let the caller's signal mask or an ignored SIGPIPE leak into
         * the child. */
        sigemptyset(&mask);
        r = posix_spawnattr_setsigmask(attr, &mask);
        if (r == 0) {
                sigaddset(&mask, SIGPIPE);
                r = posix_spawnattr_setsigdefault(attr, &mask);
        }
        if (r == 0)
                r = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        return r;
}

/* Why a child that did not exit 0 failed: its signal, the last line it
 * wrote on stderr (TAIL, LEN bytes), or its exit code. */
static int child_failure(const char *prog, int status, char *tail, size_t len, struct vp_error *err)
{
        char shown[512];
        if (WIFSIGNALED(status))
                return vp_err(err, -EIO, "%s failed: killed by signal %d (%s)", prog,
                              WTERMSIG(status), strsignal(WTERMSIG(status)));
        const char *line = last_line(tail, len);
        if (line) {
                /* qemu-img prefixes its messages with its own name. */
                size_t pl = strlen(prog);
                if (strncmp(line, prog, pl) == 0 && line[pl] == ':' && line[pl + 1] == ' ')
                        line += pl + 2;
                return vp_err(err, -EIO, "%s failed: %s", prog,
                              escape_line(line, shown, sizeof(shown)));
        }
        return vp_err(err, -EIO, "%s failed with exit code %d", prog,
                      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

int vp_spawn(const char *const argv[], struct vp_error *err)
{
        _cleanup_(posix_spawn_file_actions_destroyp) posix_spawn_file_actions_t *fa = NULL;
        _cleanup_(posix_spawnattr_destroyp) posix_spawnattr_t *attr = NULL;
        posix_spawn_file_actions_t fa_storage;
        posix_spawnattr_t attr_storage;
        _cleanup_close_ int rfd = -1, wfd = -1;
        _cleanup_free_ char *tail = NULL;
        const char *prog;
        size_t len;
        pid_t pid;
        int pipefd[2], r, status;

        if (!argv || !argv[0] || !argv[0][0])
                return vp_err(err, -EINVAL, "no program to run");
        prog = base_name(argv[0]);

        if (pipe2(pipefd, O_CLOEXEC) < 0) {
                r = -errno;
                return vp_err(err, r, "cannot run '%s': pipe: %s", prog, strerror(-r));
        }
        rfd = pipefd[0];
        wfd = pipefd[1];

        r = posix_spawn_file_actions_init(&fa_storage);
        if (r != 0)
                return vp_err(err, -r, "cannot run '%s': %s", prog, strerror(r));
        fa = &fa_storage;
        r = posix_spawnattr_init(&attr_storage);
        if (r != 0)
                return vp_err(err, -r, "cannot run '%s': %s", prog, strerror(r));
        attr = &attr_storage;
        if ((r = spawn_setup(fa, attr, wfd)) != 0)
                return vp_err(err, -r, "cannot run '%s': %s", prog, strerror(r));

        /* Allocated up front: once the child runs, its stderr must be
         * drained or it may block on a full pipe. */
        tail = malloc(STDERR_KEEP + 1);
        if (!tail)
                return vp_err(err, -ENOMEM, "cannot run '%s': out of memory", prog);

        r = posix_spawnp(&pid, argv[0], fa, attr, (char *const *) argv, environ);
        if (r == ENOENT)
                return vp_err(err, -ENOENT, "%s: not found", prog);
        if (r != 0)
                return vp_err(err, -r, "cannot run '%s': %s", prog, strerror(r));

        /* Close our copy of the write end so we see EOF when the child exits. */
        close(wfd);
        wfd = -1;

        len = drain_tail(rfd, tail);

        for (;;) {
                if (waitpid(pid, &status, 0) >= 0)
                        break;
                if (errno != EINTR) {
                        r = -errno;
                        return vp_err(err, r, "cannot wait for '%s': %s", prog, strerror(-r));
                }
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return 0;
        return child_failure(prog, status, tail, len, err);
}
