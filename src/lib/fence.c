#include "fence.h"

#include <fcntl.h>
#include <json-c/json.h>
#include <libxml/uri.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "model.h"

extern char **environ;

/* The next word of *P into a new string, or NULL at the end; -EINVAL in
 * *ERR_CODE for an unclosed quote. */
static char *next_word(const char **p, int *err_code)
{
        const char *s = *p;
        while (*s == ' ' || *s == '\t')
                s++;
        if (!*s) {
                *p = s;
                return NULL;
        }
        char *w = vp_xcalloc(1, strlen(s) + 1);
        size_t n = 0;
        while (*s && *s != ' ' && *s != '\t') {
                if (*s == '\'' || *s == '"') {
                        const char *end = strchr(s + 1, *s);
                        if (!end) {
                                *err_code = -EINVAL;
                                free(w);
                                return NULL;
                        }
                        memcpy(w + n, s + 1, (size_t)(end - s - 1));
                        n += (size_t)(end - s - 1);
                        s = end + 1;
                } else {
                        w[n++] = *s++;
                }
        }
        *p = s;
        return w;
}

static int check_program(const char *prog, struct vp_error *err)
{
        struct stat st;
        if (prog[0] != '/')
                return vp_err(err, -EINVAL, "fence agent '%s' must be an absolute path (no shell looks it up)", prog);
        if (stat(prog, &st) < 0)
                return vp_err(err, -errno, "fence agent '%s': %s", prog, strerror(errno));
        if (!S_ISREG(st.st_mode) || access(prog, X_OK) < 0)
                return vp_err(err, -EACCES, "fence agent '%s' is not an executable file", prog);
        return 0;
}

int vp_fence_cmd_split(const char *text, char **ret_json, struct vp_error *err)
{
        for (const char *c = text; *c; c++)
                if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
                        return vp_err(err, -EINVAL, "fence agent: control characters are not allowed");
        struct json_object *a = json_object_new_array();
        const char *p = text;
        int code = 0;
        char *w;
        while ((w = next_word(&p, &code))) {
                json_object_array_add(a, json_object_new_string(w));
                free(w);
        }
        int k = 0;
        size_t n = json_object_array_length(a);
        if (code < 0)
                k = vp_err(err, -EINVAL, "fence agent: a quote is not closed");
        else if (n == 0 || !*json_object_get_string(json_object_array_get_idx(a, 0)))
                k = vp_err(err, -EINVAL, "fence agent: no program");
        else if (n > VP_FENCE_ARGS_MAX)
                k = vp_err(err, -EINVAL, "fence agent: more than %d words", VP_FENCE_ARGS_MAX);
        if (k >= 0)
                *ret_json = vp_strdup(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN |
                                                                       JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(a);
        return k;
}

int vp_fence_cmd_parse(const char *text, char **ret_json, struct vp_error *err)
{
        _cleanup_free_ char *json = NULL;
        int k = vp_fence_cmd_split(text, &json, err);
        if (k < 0)
                return k;
        struct json_object *a = json_tokener_parse(json);
        k = check_program(json_object_get_string(json_object_array_get_idx(a, 0)), err);
        json_object_put(a);
        if (k >= 0)
                *ret_json = TAKE_PTR(json);
        return k;
}

/* The argv stored as JSON, NULL-terminated (malloc'd, strings owned by O). */
static const char **argv_of(struct json_object *o)
{
        size_t n = json_object_is_type(o, json_type_array) ? json_object_array_length(o) : 0;
        if (n == 0 || n > VP_FENCE_ARGS_MAX)
                return NULL;
        const char **argv = vp_xcalloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++) {
                argv[i] = json_object_get_string(json_object_array_get_idx(o, i));
                if (!argv[i] || (i == 0 && !*argv[i])) {
                        free(argv);
                        return NULL;
                }
        }
        return argv;
}

/* WORD as vp_fence_cmd_split reads it back: bare when it can be, else in
 * '...' with each ' written as "'". */
static char *quote_word(const char *word)
{
        if (*word && !strpbrk(word, " \t'\""))
                return vp_strdup(word);
        char *out = vp_xcalloc(1, strlen(word) * 5 + 3);
        char *o = out;
        *o++ = '\'';
        for (const char *c = word; *c; c++) {
                if (*c == '\'') {
                        memcpy(o, "'\"'\"'", 5);
                        o += 5;
                } else {
                        *o++ = *c;
                }
        }
        *o++ = '\'';
        return out;
}

char *vp_fence_cmd_show(const char *json)
{
        if (!json || !*json)
                return NULL;
        struct json_object *o = json_tokener_parse(json);
        _cleanup_free_ const char **argv = argv_of(o);
        char *out = NULL;
        for (size_t i = 0; argv && argv[i]; i++) {
                _cleanup_free_ char *w = quote_word(argv[i]);
                char *next = vp_strdupf("%s%s%s", out ? out : "", out ? " " : "", w);
                free(out);
                out = next;
        }
        json_object_put(o);
        return out;
}

/* The host part of URI ("" for a local socket). */
static char *uri_host(const char *uri)
{
        xmlURIPtr u = xmlParseURI(uri);
        char *h = vp_strdup(u && u->server ? u->server : "");
        xmlFreeURI(u);
        return h;
}

/* The environment the agent runs with: ours, and what to fence. */
static char **agent_environ(const struct vp_env *env, const char *host_name, const char *uri)
{
        size_t n = 0;
        while (environ[n])
                n++;
        char **envp = vp_xcalloc(n + 5, sizeof(char *));
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
                if (strncmp(environ[i], "VPOOL_FENCE_", 12) != 0)
                        envp[k++] = vp_strdup(environ[i]);
        _cleanup_free_ char *host = uri_host(uri);
        envp[k++] = vp_strdupf("VPOOL_FENCE_ENV=%s", env->name);
        envp[k++] = vp_strdupf("VPOOL_FENCE_HOST_NAME=%s", host_name);
        envp[k++] = vp_strdupf("VPOOL_FENCE_URI=%s", uri);
        envp[k++] = vp_strdupf("VPOOL_FENCE_HOST=%s", host);
        return envp;
}

static void free_environ(char **envp)
{
        for (size_t i = 0; envp && envp[i]; i++)
                free(envp[i]);
        free(envp);
}

/* Keep the last VP_FENCE_OUTPUT_MAX bytes read from FD in BUF (*LEN). */
static bool read_tail(int fd, char *buf, size_t *len)
{
        char chunk[1024];
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n <= 0)
                return n < 0 && errno == EINTR;
        if (*len + (size_t)n > VP_FENCE_OUTPUT_MAX) {
                size_t drop = *len + (size_t)n - VP_FENCE_OUTPUT_MAX;
                drop = drop > *len ? *len : drop;
                memmove(buf, buf + drop, *len - drop);
                *len -= drop;
        }
        size_t take = (size_t)n > VP_FENCE_OUTPUT_MAX ? VP_FENCE_OUTPUT_MAX : (size_t)n;
        memcpy(buf + *len, chunk + n - take, take);
        *len += take;
        return true;
}

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Collect PID's output from FD until it closes or TIMEOUT seconds pass
 * (then the agent's process group is killed). Returns its wait status, or
 * -1 when it was killed for the time. */
static int collect(pid_t pid, int fd, int timeout, char *buf, size_t *len)
{
        double deadline = now_s() + timeout;
        bool timed_out = false;
        for (;;) {
                int left = (int)((deadline - now_s()) * 1000);
                if (left <= 0) {
                        timed_out = true;
                        kill(-pid, SIGKILL);
                        break;
                }
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                int r = poll(&pfd, 1, left);
                if (r < 0 && errno != EINTR)
                        break;
                if (r > 0 && !read_tail(fd, buf, len))
                        break;
        }
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        return timed_out ? -1 : status;
}

/* The agent's output fit for the catalog and a terminal: printable,
 * newlines kept, trailing blank lines dropped. */
static char *clean_output(char *buf, size_t len)
{
        for (size_t i = 0; i < len; i++)
                if (((unsigned char)buf[i] < 0x20 && buf[i] != '\n' && buf[i] != '\t') || buf[i] == 0x7f)
                        buf[i] = '?';
        while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
                len--;
        buf[len] = '\0';
        return vp_strdup(buf);
}

static pid_t spawn_agent(const char **argv, char **envp, int wfd)
{
        pid_t pid = fork();
        if (pid != 0)
                return pid;
        /* Its own process group, so a timeout kills what it started too. */
        setpgid(0, 0);
        int null = open("/dev/null", O_RDONLY);
        if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(wfd, STDOUT_FILENO) < 0 || dup2(wfd, STDERR_FILENO) < 0)
                _exit(127);
        execve(argv[0], (char *const *)argv, envp);
        _exit(127);
}

int vp_fence_run(const struct vp_env *env, const char *host, const char *uri, int timeout, struct vp_fence *ret,
                 struct vp_error *err)
{
        struct json_object *o = env->fence_cmd ? json_tokener_parse(env->fence_cmd) : NULL;
        _cleanup_free_ const char **argv = argv_of(o);
        if (!argv) {
                json_object_put(o);
                return vp_err(err, -EINVAL, "env '%s' has no fence agent", env->name);
        }
        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC) < 0) {
                json_object_put(o);
                return vp_err(err, -errno, "cannot run the fence agent of env '%s': %s", env->name, strerror(errno));
        }
        char **envp = agent_environ(env, host, uri);
        pid_t pid = spawn_agent(argv, envp, pfd[1]);
        int spawn_errno = errno;
        close(pfd[1]);
        free_environ(envp);
        json_object_put(o);
        if (pid < 0) {
                close(pfd[0]);
                return vp_err(err, -spawn_errno, "cannot run the fence agent of env '%s': %s", env->name,
                              strerror(spawn_errno));
        }
        char buf[VP_FENCE_OUTPUT_MAX + 1];
        size_t len = 0;
        int status = collect(pid, pfd[0], timeout, buf, &len);
        close(pfd[0]);
        ret->method = vp_strdup(vp_fence_method_to_string(VP_FENCE_AGENT));
        ret->command = vp_strdup(env->fence_cmd);
        ret->output = clean_output(buf, len);
        ret->exit_status = status < 0 || !WIFEXITED(status) ? -1 : WEXITSTATUS(status);
        ret->fenced = status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (status < 0) {
                char *o2 = vp_strdupf("%s%s(no answer within %d s: killed)", ret->output, *ret->output ? "\n" : "",
                                      timeout);
                free(ret->output);
                ret->output = o2;
        }
        return 0;
}
