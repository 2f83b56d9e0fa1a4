/* Leases on a delta's disks: QEMU's image locks, read with F_OFD_GETLK. */
#include "lease.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int vp_lease_held(int fd)
{
        /* A write lock over the whole file conflicts with every lock anyone
         * else holds: QEMU's are read locks on single bytes (100 + the
         * permission bits it uses, 200 + those it refuses to share). */
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
        if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
                return -errno;
        return fl.l_type != F_UNLCK;
}

/* The guest name in a QEMU's command line ("-name guest=NAME,..."), or the
 * command's own name, of process PID into BUF. */
static void describe_process(const char *pid, char *buf, size_t size)
{
        char path[300], comm[64] = "?";
        snprintf(path, sizeof(path), "/proc/%s/comm", pid);
        FILE *f = fopen(path, "re");
        if (f) {
                if (fgets(comm, sizeof(comm), f))
                        comm[strcspn(comm, "\n")] = '\0';
                fclose(f);
        }
        char args[8192];
        ssize_t n = 0;
        snprintf(path, sizeof(path), "/proc/%s/cmdline", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
                n = read(fd, args, sizeof(args) - 1);
                close(fd);
        }
        const char *guest = NULL;
        for (ssize_t i = 0; i < n; i += (ssize_t)strlen(args + i) + 1) {
                args[n] = '\0';
                if (strncmp(args + i, "guest=", 6) == 0) {
                        guest = args + i + 6;
                        break;
                }
        }
        if (guest)
                snprintf(buf, size, "pid %s (%s, guest %.*s)", pid, comm, (int)strcspn(guest, ","), guest);
        else
                snprintf(buf, size, "pid %s (%s)", pid, comm);
}

/* Does process PID have the file of ST open? */
static bool process_has_open(const char *pid, const struct stat *st)
{
        char path[300];
        snprintf(path, sizeof(path), "/proc/%s/fd", pid);
        DIR *d = opendir(path);
        if (!d)
                return false;
        bool found = false;
        struct dirent *e;
        while (!found && (e = readdir(d))) {
                struct stat fst;
                if (e->d_name[0] != '.' && fstatat(dirfd(d), e->d_name, &fst, 0) == 0)
                        found = fst.st_dev == st->st_dev && fst.st_ino == st->st_ino;
        }
        closedir(d);
        return found;
}

/* Who holds the file of ST: the first process of this machine that has it
 * open, or a process of another machine. OFD locks carry no pid, so an
 * open file stands in for the lock; the lock itself was seen first. */
static void find_holder(const struct stat *st, char *buf, size_t size)
{
        snprintf(buf, size, "a process on another machine (a host still running it)");
        DIR *proc = opendir("/proc");
        if (!proc)
                return;
        char self[16];
        snprintf(self, sizeof(self), "%d", (int)getpid());
        struct dirent *e;
        while ((e = readdir(proc))) {
                if (e->d_name[0] < '0' || e->d_name[0] > '9' || streq(e->d_name, self))
                        continue;
                if (process_has_open(e->d_name, st)) {
                        describe_process(e->d_name, buf, size);
                        break;
                }
        }
        closedir(proc);
}

static int check_disk(int dfd, const char *label, const char *name, struct vp_error *err)
{
        if (!name[0])
                return 0;
        int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) {
                if (errno == ENOENT)
                        return 0;
                return vp_err(err, -errno, "cannot open disk '%s' of delta '%s' to check its lease: %s", name, label,
                              strerror(errno));
        }
        struct stat st;
        int held = fstat(fd, &st) < 0 ? -errno : vp_lease_held(fd);
        close(fd);
        if (held < 0)
                return vp_err(err, held, "cannot read the locks on disk '%s' of delta '%s': %s", name, label,
                              strerror(-held));
        if (!held)
                return 0;
        char holder[256];
        find_holder(&st, holder, sizeof(holder));
        return vp_err(err, -EBUSY, "disk '%s' of delta '%s' is still locked by %s: no hand-over while any "
                      "process holds it", name, label, holder);
}

int vp_lease_check(int dfd, const char *label, const struct vp_manifest *m, struct vp_error *err)
{
        int k;
        if ((k = check_disk(dfd, label, m->overlay, err)) < 0 || (k = check_disk(dfd, label, m->data_disk, err)) < 0)
                return k;
        return check_disk(dfd, label, m->nvram, err);
}
