/* vp-live-move: move a running domain live to another host with its disks
 * handed to a new generation's names, as a host drain does.
 *
 *   vp-live-move [--stream-uri URI] [--timeout SEC] [--max-downtime MS]
 *                SRC_URI DST_URI NAME GENERATION OLD=NEW...
 *
 * Each NEW is made a hard link of OLD first (same inode: the source QEMU
 * keeps OLD open, the destination's opens NEW); after the move the OLD
 * names go, after a failure the NEW ones. Prints "downtime_ms=N total_ms=N"
 * (libvirt's figures) on success. Exit 0 moved, 1 failed, 2 usage. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hv.h"

static int usage(void)
{
        fprintf(stderr, "usage: vp-live-move [--stream-uri URI] [--timeout SEC] [--max-downtime MS] "
                        "SRC_URI DST_URI NAME GENERATION OLD=NEW...\n");
        return 2;
}

/* Link every NEW to its OLD; on failure undo the links made. */
static int link_all(struct vp_domxml_move *m, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (link(m[i].from, m[i].to) < 0) {
                        fprintf(stderr, "vp-live-move: cannot link '%s' to '%s': %s\n", m[i].to, m[i].from,
                                strerror(errno));
                        while (i-- > 0)
                                unlink(m[i].to);
                        return -1;
                }
        return 0;
}

static int unlink_all(const struct vp_domxml_move *m, size_t n, bool old)
{
        int rc = 0;
        for (size_t i = 0; i < n; i++) {
                const char *p = old ? m[i].from : m[i].to;
                if (unlink(p) < 0) {
                        fprintf(stderr, "vp-live-move: cannot remove '%s': %s\n", p, strerror(errno));
                        rc = -1;
                }
        }
        return rc;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "stream-uri", required_argument, NULL, 's' },
                { "timeout", required_argument, NULL, 't' },
                { "max-downtime", required_argument, NULL, 'd' },
                { 0 },
        };
        struct vp_hv_live how = { .timeout_sec = 120 };
        for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
                switch (c) {
                case 's': how.stream_uri = optarg; break;
                case 't': how.timeout_sec = atoi(optarg); break;
                case 'd': how.max_downtime_ms = atoi(optarg); break;
                default: return usage();
                }
        }
        if (argc - optind < 5 || how.timeout_sec <= 0)
                return usage();
        const char *src_uri = argv[optind], *name = argv[optind + 2];
        how.dst_uri = argv[optind + 1];
        how.generation = strtoll(argv[optind + 3], NULL, 10);
        size_t n = (size_t)(argc - optind - 4);
        struct vp_domxml_move *moves = vp_xcalloc(n, sizeof(*moves));
        for (size_t i = 0; i < n; i++) {
                char *arg = argv[optind + 4 + (int)i], *eq = strchr(arg, '=');
                if (!eq || eq == arg || !eq[1] || arg[0] != '/' || eq[1] != '/') {
                        free(moves);
                        return usage();
                }
                *eq = 0;
                moves[i] = (struct vp_domxml_move){ arg, eq + 1 };
        }
        how.moves = moves;
        how.nmoves = n;

        vp_hv_init();
        struct vp_error err = { 0 };
        _cleanup_conn_ virConnectPtr src = NULL, dst = NULL;
        int rc = 1;
        if (vp_hv_connect(src_uri, &src, &err) < 0 || vp_hv_connect(how.dst_uri, &dst, &err) < 0) {
                fprintf(stderr, "vp-live-move: %s\n", err.msg);
                goto out;
        }
        if (link_all(moves, n) < 0)
                goto out;
        struct vp_hv_live_stats st;
        if (vp_hv_migrate_live(src, dst, name, &how, &st, &err) < 0) {
                fprintf(stderr, "vp-live-move: %s\n", err.msg);
                /* Still on the source: the new names are nobody's. */
                if (err.code == -ETIMEDOUT || strstr(err.msg, "still runs on the source"))
                        unlink_all(moves, n, false);
                goto out;
        }
        if (unlink_all(moves, n, true) == 0)
                rc = 0;
        printf("downtime_ms=%lld total_ms=%lld\n", (long long)st.downtime_ms, (long long)st.total_ms);
out:
        free(moves);
        return rc;
}
