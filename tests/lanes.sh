#!/bin/bash
# Runs the integration suites on several lanes at once: each lane a set of
# hosts of its own, taking the next job from one queue shared by all, so
# the lanes end together whatever each job's length on the day.
#
#   tests/lanes.sh QUEUE LANE HOSTA HOSTB HOSTC
#
# QUEUE is a file of jobs, one per line, "ENGINE SUITE" (ENGINE sqlite or
# pg, SUITE a meson test's name), longest first. A lane takes the first job
# whose shared hosts no other lane holds, runs it with meson (its log
# build/meson-logs/it-ENGINE-SUITE.*), and goes on until the queue is empty.
# Shared hosts, held by one lane at a time (a directory each, next to the
# queue, made by the lane that holds them): hostc/hostd (badinput,
# migrate, fencing), the TLS suite's and the clusters suite's.
# Environment: VPOOL_LANES_PG_DIR, the directory of the PostgreSQL server
# (tests/pg.sh) for the pg jobs; VPOOL_TEST_CLUSTER_HOSTS and
# VPOOL_TEST_CLUSTER_ROGUE for the clusters suite.
# Prints one line per job begun and ended, with the time it took; the
# latter also to QUEUE.done.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

[ $# -eq 5 ] || { echo "usage: $0 QUEUE LANE HOSTA HOSTB HOSTC" >&2; exit 2; }
queue=$1 lane=$2
export VPOOL_TEST_HOSTA=$3 VPOOL_TEST_HOSTB=$4 VPOOL_TEST_HOSTC=$5
own_hosts=("$3" "$4" "$5")

# The shared hosts a suite uses, as the name of their lock.
shared_of() {
    case $1 in
        badinput | migrate | fencing) echo hostcd ;;
        tls) echo tls ;;
        clusters) echo clusters ;;
    esac
}

# take: the next job this lane may run, removed from the queue, in $job;
# its shared hosts held (a directory made, $held; not a lock on an open
# file, which every process the job starts would inherit: a libvirtd a
# suite starts would hold it for good). Fails when no job is left; waits
# while every job left needs hosts another lane holds.
held=
take() {
    local qfd line res rest
    while :; do
        exec {qfd}<>"$queue.lock"
        flock "$qfd"
        job= rest=()
        while IFS= read -r line; do
            [ -n "$line" ] || continue
            if [ -z "$job" ]; then
                res=$(shared_of "${line#* }")
                if [ -z "$res" ]; then
                    job=$line
                    continue
                fi
                if mkdir "$queue.$res.held" 2>/dev/null; then
                    job=$line held=$queue.$res.held
                    continue
                fi
            fi
            rest+=("$line")
        done <"$queue"
        if [ ${#rest[@]} -gt 0 ]; then printf '%s\n' "${rest[@]}" >"$queue"; else : >"$queue"; fi
        exec {qfd}>&-
        [ -n "$job" ] && return 0
        [ ${#rest[@]} -gt 0 ] || return 1
        sleep 5
    done
}

release() {
    if [ -n "$held" ]; then
        rmdir "$held"
        held=
    fi
}

rc=0
while take; do
    engine=${job%% *} suite=${job#* }
    if [ "$suite" = clusters ]; then
        # Its hosts as the suite expects them: up on TLS, none left down or
        # holding what a run before left.
        read -ra cluster <<<"${VPOOL_TEST_CLUSTER_HOSTS:-}"
        scripts/hosts.sh up --fresh --tls "${cluster[@]}" >/dev/null &&
            scripts/hosts.sh up --fresh --tls --cert rogue "${VPOOL_TEST_CLUSTER_ROGUE:-}" >/dev/null ||
            echo "lane $lane: cannot bring the clusters suite's hosts up" >&2
    fi
    begun=$SECONDS
    printf '[lane %s] %s on %s: begun\n' "$lane" "$suite" "$engine"
    # The server's directory for the pg jobs only: the suites that run on
    # PostgreSQL by themselves (failover restarts its server) start their own.
    env=(-u VPOOL_TEST_CATALOG -u VPOOL_TEST_PG_DIR)
    if [ "$engine" = pg ]; then
        env=(VPOOL_TEST_CATALOG=pg "VPOOL_TEST_PG_DIR=${VPOOL_LANES_PG_DIR:?}")
    fi
    # (A test's name, not a suite: the browser's console too.)
    env "${env[@]}" meson test -C build --suite integration --suite browser --no-rebuild --print-errorlogs --num-processes 1 \
        --logbase "it-$engine-$suite" "$suite" 2>&1 | sed -u "s/^/[lane $lane] /"
    r=${PIPESTATUS[0]}
    [ "$r" = 0 ] || rc=1
    release
    outcome=$([ "$r" = 0 ] && echo passed || echo FAILED)
    printf '[lane %s] %s on %s: %s in %d s\n' "$lane" "$suite" "$engine" "$outcome" $((SECONDS - begun))
    printf '%5d s  %-12s %-7s %s (lane %s)\n' $((SECONDS - begun)) "$suite" "$engine" "$outcome" "$lane" >>"$queue.done"
    if [ "$suite" = evacuate ]; then
        # It powers its hosts off: up again, with no state.
        scripts/hosts.sh up --fresh "${own_hosts[@]}" >/dev/null ||
            echo "lane $lane: cannot bring ${own_hosts[*]} up again" >&2
    fi
done
exit $rc
