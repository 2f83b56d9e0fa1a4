/* For measurement only, never for use: loaded into vpool with LD_PRELOAD
 * by the cluster section of bench/run.sh, it makes every flush a process
 * asks for (fsync, fdatasync, syncfs) return at once without waiting for
 * the disk. A move timed this way is vpool's work without its durability:
 * the journal and the manifests still written, in the same order, but not
 * waited for. The difference to a normal move is what the guarantees of
 * each step cost; what remains over the raw libvirt floor is the rest. */
#include <fcntl.h>

static int checked(int fd)
{
        if (fcntl(fd, F_GETFD) < 0)
                return -1;
        return 0;
}

int fsync(int fd)
{
        return checked(fd);
}

int fdatasync(int fd)
{
        return checked(fd);
}

int syncfs(int fd)
{
        return checked(fd);
}
