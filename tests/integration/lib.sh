# Shared helpers for the integration tests: TAP output, running vpool,
# snapshots of everything vpool may change, guests' console lines.
# Sourced by each test-*.sh; they run against real hosts brought up by
# scripts/hosts.sh and the test guest built by scripts/build-guest.sh.
set -uo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VPOOL_BIN=${VPOOL_BIN:-$top/build/src/cli/vpool}
GUEST_DIR=${VPOOL_GUEST_DIR:-$top/build/guest}
# The kernel of the test guest's BIOS images: uncompressed, started at its
# PVH entry point, it boots in half the time of vmlinuz under TCG. Images
# that may boot with UEFI take vmlinuz, which OVMF can load.
GUEST_KERNEL=$GUEST_DIR/vmlinux
HOSTS_SH=$top/scripts/hosts.sh
HOSTA=${VPOOL_TEST_HOSTA:-hosta}
HOSTB=${VPOOL_TEST_HOSTB:-hostb}
# The third host of the suites that build a cluster (test-cluster.sh).
HOSTC=${VPOOL_TEST_HOSTC:-hostg}
# The hosts a suite uses: cleaned up after it, compared by expect_fail.
TEST_HOSTS=("$HOSTA" "$HOSTB")

source "$top/tests/lib/tap.sh"

# A host's URI, from scripts/hosts.sh; remembered for the hosts the suite
# requires (require_hosts asks in the suite's own shell, so the commands
# substituted later, in subshells, find it without running hosts.sh again).
declare -A HOST_URI=()
uri_of() {
    if [ -n "${HOST_URI[$1]:-}" ]; then echo "${HOST_URI[$1]}"; else "$HOSTS_SH" uri "$1"; fi
}

virsh_on() {
    local host=$1
    shift
    virsh -q -c "$(uri_of "$host")" "$@"
}

# Every test gets a fresh catalog and storage root; libvirt's qemu user must
# be able to traverse the storage root, so it is not a private mktemp dir.
setup_workdir() {
    WORK=$(mktemp -d /var/tmp/vpool-it.XXXXXX)
    chmod 755 "$WORK"
    export VPOOL_CATALOG=$WORK/catalog.db
    # VPOOL_TEST_CATALOG=pg: the catalog is a PostgreSQL database, a fresh
    # one on the server tests/pg.sh started in VPOOL_TEST_PG_DIR, or on one
    # of the suite's own.
    if [ "${VPOOL_TEST_CATALOG:-sqlite}" = pg ]; then
        if [ -n "${VPOOL_TEST_PG_DIR:-}" ]; then
            VPOOL_CATALOG=$("$top/tests/pg.sh" createdb "$VPOOL_TEST_PG_DIR" "vpit_$$_$RANDOM") ||
                bail "cannot create a PostgreSQL database"
        else
            PG_OWN_DIR=$(mktemp -d /tmp/vpool-it-pg.XXXXXX)
            VPOOL_CATALOG=$("$top/tests/pg.sh" start "$PG_OWN_DIR") || bail "cannot start PostgreSQL"
        fi
    fi
    # The machine's own vpool.conf and settings must not steer a test.
    : >"$WORK/vpool.conf"
    export VPOOL_CONFIG=$WORK/vpool.conf
    unset VPOOL_STORAGE VPOOL_PARALLEL VPOOL_SHUTDOWN_TIMEOUT VPOOL_PROFILE
    STORAGE=$WORK/storage
    trap cleanup_workdir EXIT
}

# Domains a test defined on the hosts are removed even when it fails.
cleanup_workdir() {
    local h d
    for h in "${TEST_HOSTS[@]}"; do
        for d in $(virsh_on "$h" list --all --name 2>/dev/null); do
            case $d in
                "$TEST_PREFIX"*)
                    virsh_on "$h" destroy "$d" >/dev/null 2>&1
                    virsh_on "$h" undefine --nvram "$d" >/dev/null 2>&1 ;;
            esac
        done
    done
    [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
    [ -z "${PG_OWN_DIR:-}" ] || "$top/tests/pg.sh" stop "$PG_OWN_DIR"
}

catalog_is_pg() { [ "${VPOOL_TEST_CATALOG:-sqlite}" = pg ]; }

# catalog_sql SQL [CATALOG]: run SQL on the test's catalog (or CATALOG, of
# the same engine); rows as lines, columns separated by '|'.
catalog_sql() {
    if catalog_is_pg; then
        psql -X -q -A -t -v ON_ERROR_STOP=1 "${2:-$VPOOL_CATALOG}" -c "$1"
    else
        sqlite3 "${2:-$VPOOL_CATALOG}" "$1"
    fi
}

# catalog_copy NAME: a copy of the test's catalog, of the same engine (a
# file next to it, or a new database on the same server); prints what
# --catalog takes to open it.
catalog_copy() {
    if catalog_is_pg; then
        local to
        to=$("$top/tests/pg.sh" createdb "${VPOOL_TEST_PG_DIR:-$PG_OWN_DIR}" "vpit_${1}_$$_$RANDOM") || return 1
        pg_dump --no-owner "$VPOOL_CATALOG" | psql -X -q -v ON_ERROR_STOP=1 "$to" >/dev/null || return 1
        echo "$to"
    else
        sqlite3 "$VPOOL_CATALOG" ".backup '$WORK/$1.db'" && echo "$WORK/$1.db"
    fi
}

# pool_lock_hold POOL...: hold each POOL's lock as a vpool process working
# on it would (its lock file, or its advisory lock on the PostgreSQL
# server, from one session of its own) until pool_lock_release.
HELD_LOCK_FDS=()
pool_lock_hold() {
    local p fd _
    if catalog_is_pg; then
        local take=()
        for p in "$@"; do
            take+=("pg_advisory_lock($(python3 -c 'import sys
h = 0xcbf29ce484222325
for b in sys.argv[1].encode():
    h = ((h ^ b) * 0x100000001b3) & (2**64 - 1)
print(h - 2**64 if h >= 2**63 else h)' "vpool pool $p"))")
        done
        psql -X -q "$VPOOL_CATALOG" -c "SELECT $(IFS=,; echo "${take[*]}")" -c "SELECT pg_sleep(3600) /* held */" \
            >/dev/null 2>&1 &
        HELD_LOCK_PID=$!
        for _ in $(seq 100); do
            [ "$(catalog_sql "SELECT count(*) FROM pg_stat_activity
                WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(3600) /* held */%'")" = 1 ] && return 0
            sleep 0.1
        done
        return 1
    fi
    for p in "$@"; do
        exec {fd}>>"$VPOOL_CATALOG.pool-$p.lock"
        HELD_LOCK_FDS+=("$fd")
        flock -n "$fd" || return 1
    done
}

pool_lock_release() {
    local fd
    if catalog_is_pg; then
        catalog_sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE query LIKE 'SELECT pg_sleep(3600) /* held */%'" >/dev/null
        wait "$HELD_LOCK_PID" 2>/dev/null
        return 0
    fi
    for fd in "${HELD_LOCK_FDS[@]}"; do exec {fd}>&-; done
    HELD_LOCK_FDS=()
}

# catalog_integrity: "ok" when the engine's own check finds the catalog
# sound: SQLite's integrity_check; on PostgreSQL, amcheck over every
# B-tree index of the catalog's tables, against their heaps (an error, or
# no index checked, is no "ok").
catalog_integrity() {
    if catalog_is_pg; then
        catalog_sql "CREATE EXTENSION IF NOT EXISTS amcheck" >/dev/null &&
            catalog_sql "SELECT CASE WHEN count(*) > 0 THEN 'ok' END FROM (SELECT bt_index_check(i.indexrelid, true)
                FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
                WHERE a.amname = 'btree' AND c.relnamespace = current_schema()::regnamespace) AS checked"
    else
        catalog_sql 'PRAGMA integrity_check'
    fi
}

# Whether the test's catalog was made (vpool init).
catalog_exists() {
    if catalog_is_pg; then
        [ "$(catalog_sql "SELECT to_regclass('meta') IS NOT NULL" 2>/dev/null)" = t ]
    else
        [ -e "$VPOOL_CATALOG" ]
    fi
}

vpool() { "$VPOOL_BIN" "$@"; }

require_hosts() {
    local h
    for h in "$@"; do
        HOST_URI[$h]=$("$HOSTS_SH" uri "$h") || bail "no URI for host $h"
        virsh -q -c "${HOST_URI[$h]}" version >/dev/null 2>&1 ||
            bail "host $h is not up (scripts/hosts.sh up $h)"
    done
    [ -r "$GUEST_DIR/master.qcow2" ] || bail "test guest missing in $GUEST_DIR (scripts/build-guest.sh)"
}

# The standard set-up: catalog, both envs, the guest image, profiles.
standard_setup() {
    vpool init --storage "$STORAGE" >/dev/null || bail "init failed"
    # Host A is probed for a working KVM (auto); host B is told to emulate.
    vpool env add "$HOSTA" --uri "$(uri_of "$HOSTA")" >/dev/null || bail "env add $HOSTA failed"
    vpool env add "$HOSTB" --uri "$(uri_of "$HOSTB")" --domain-type qemu >/dev/null || bail "env add $HOSTB failed"
    vpool image add guest --file "$GUEST_DIR/master.qcow2" --kernel "$GUEST_KERNEL" \
        --initrd "$GUEST_DIR/initrd.img" --cmdline "$(cat "$GUEST_DIR/cmdline")" >/dev/null ||
        bail "image add failed"
    vpool profile add pc-ide --machine pc --disk-bus ide --nic e1000 --vcpus 1 --memory 256M >/dev/null ||
        bail "profile add failed"
}

# The catalog as SQL, but for its logs (the history and the events: a
# command that fails changes nothing, and the logs say that it failed),
# and without when a host was last found unreachable or a token last used:
# what vpool saw of a host is noted by whatever command tried it, a failed
# one too, and a token's use by any request that showed it.
# On PostgreSQL, not the sequences (a failed insert uses an id up either);
# the rows sorted, as the order they lie on disk changes with an update.
catalog_dump() {
    if catalog_is_pg; then
        # One psql (pg_dump and its filters take four times as long, twice
        # a check): the tables' columns and indexes, then every row as JSON.
        psql -X -q -A -t -v ON_ERROR_STOP=1 "$VPOOL_CATALOG" <<'SQL'
SELECT 'table ' || table_name || ' ' || string_agg(column_name || ' ' || data_type || ' ' || is_nullable || ' ' ||
    coalesce(column_default, ''), ', ' ORDER BY ordinal_position)
    FROM information_schema.columns WHERE table_schema = current_schema() GROUP BY table_name ORDER BY table_name;
SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY indexname;
SELECT format('SELECT %L || '' '' || (to_jsonb(t) %s)::text FROM %I t ORDER BY 1', tablename,
    CASE tablename WHEN 'hosts' THEN '- ''unreachable''' WHEN 'tokens' THEN '- ''last_used''' ELSE '' END, tablename)
    FROM pg_tables WHERE schemaname = current_schema() AND tablename NOT IN ('history', 'events') ORDER BY tablename
\gexec
SQL
        return
    fi
    sqlite3 "$VPOOL_CATALOG" .dump | grep -Ev '^INSERT INTO (history|events) VALUES|^INSERT INTO sqlite_sequence' |
        sed -E -e "s/^(INSERT INTO hosts VALUES\\(([^,]*,){8})'[^']*'/\\1''/" \
            -e "s/^(INSERT INTO tokens VALUES\\(.*,)'[^']*'\\);\$/\\1'');/"
}

history_max() {
    catalog_exists && catalog_sql 'SELECT coalesce(max(id), 0) FROM history' 2>/dev/null
}

# Everything a failed command must leave as it was: catalog rows, files on
# storage (name, size, mode), and the domains of every host of the suite.
snapshot() {
    local h
    {
        echo "== catalog"
        catalog_exists && catalog_dump
        echo "== storage"
        # Running guests grow their overlays (overlay.gN.qcow2 once handed
        # over) and console logs: those count by name, inode and mode; every
        # other file by its size too.
        [ -d "$STORAGE" ] && (cd "$STORAGE" && find . \( -path './logs/*' -o -name 'overlay*.qcow2' \) \
            -printf '%p %y %i %m\n' -o -printf '%p %y %s %m\n' | sort)
        echo "== domains"
        for h in "${TEST_HOSTS[@]}"; do
            echo "-- $h"
            virsh_on "$h" list --all --name | sort
        done
    } 2>&1
}

# expect_fail DESC CODE REGEX COMMAND...: COMMAND exits CODE, prints exactly
# one line on stderr matching REGEX, nothing on stdout, and changes nothing;
# if the history recorded it, then as failed with that same message.
expect_fail() {
    local desc=$1 code=$2 regex=$3
    shift 3
    local before after out err rc hmax outcome msg
    before=$(snapshot)
    hmax=$(history_max)
    out=$("$@" 2>"$WORK/stderr")
    rc=$?
    err=$(cat "$WORK/stderr")
    after=$(snapshot)
    local problems=()
    if [ -n "$hmax" ]; then
        while IFS= read -r outcome; do
            msg=${outcome#failed: }
            [ "$msg" != "$outcome" ] && [ "${err#"vpool: $msg"}" != "$err" ] ||
                problems+=("history outcome '$outcome' is not the failure printed")
        done < <(catalog_sql "SELECT outcome FROM history WHERE id > $hmax")
    fi
    [ "$rc" = "$code" ] || problems+=("exit code $rc, expected $code")
    [ "$(printf '%s' "$err" | grep -c '')" = 1 ] || problems+=("stderr is not one line: $err")
    [[ $err =~ $regex ]] || problems+=("stderr '$err' does not match /$regex/")
    [ -z "$out" ] || problems+=("stdout not empty: $out")
    [ "$before" = "$after" ] || problems+=("state changed:" "$(diff <(echo "$before") <(echo "$after") | head -20)")
    if [ ${#problems[@]} -eq 0 ]; then
        ok "$desc"
    else
        not_ok "$desc" "command: $*" "${problems[@]}"
    fi
}

# The last console line of VM: "VPOOL-GUEST uuid=... boot=N disk=..."
console_line() {
    grep -a 'VPOOL-GUEST uuid=' "$STORAGE/logs/$1.log" 2>/dev/null | tail -1 | tr -d '\r'
}

console_field() {
    console_line "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

vm_state() { vpool vm show "$1" --json | jq -r .state; }

# wait_shutoff TIMEOUT VM...: every VM reaches "shut off".
wait_shutoff() {
    local timeout=$1 deadline vm
    shift
    deadline=$((SECONDS + timeout))
    local uri
    for vm in "$@"; do
        # Its host asked once: a guest that powers off stays where it is.
        uri=$(uri_of "$(vpool vm show "$vm" --json | jq -r .env)")
        while [ "$(virsh -q -c "$uri" domstate "$vm" 2>/dev/null)" != "shut off" ]; do
            [ $SECONDS -lt $deadline ] || return 1
            sleep 0.5
        done
    done
}

# wait_boot TIMEOUT COUNT VM...: each VM's console reports boot COUNT.
wait_boot() {
    local timeout=$1 count=$2 deadline vm
    shift 2
    deadline=$((SECONDS + timeout))
    for vm in "$@"; do
        while [ "$(console_field "$vm" boot)" != "$count" ]; do
            [ $SECONDS -lt $deadline ] || return 1
            sleep 0.5
        done
    done
}

# The "desktop" image: the test guest staying up until an ACPI shutdown.
add_desktop_image() {
    vpool image add desktop --file "$GUEST_DIR/master.qcow2" --kernel "$GUEST_KERNEL" \
        --initrd "$GUEST_DIR/initrd.img" --cmdline "$(cat "$GUEST_DIR/cmdline") vpool.stay=1" >/dev/null ||
        bail "image add desktop failed"
}

# start_daemon LOG ARGS...: $VPOOLD_BIN in the foreground, its stderr
# appended to LOG, waiting until it answers on the unix socket $sock (one of
# its ARGS' listeners); its pid in daemon_pid. stop_daemon: SIGTERM, waited for.
daemon_pid=
start_daemon() {
    local log=$1
    shift
    "$VPOOLD_BIN" --foreground "$@" 2>>"$log" &
    daemon_pid=$!
    local i
    for i in $(seq 200); do
        curl -s --unix-socket "$sock" http://vpoold/v1 >/dev/null 2>&1 && return 0
        kill -0 "$daemon_pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
# wait_until TIMEOUT COMMAND...: COMMAND succeeds within TIMEOUT seconds.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.5
    done
}
stop_daemon() { [ -z "$daemon_pid" ] || { kill "$daemon_pid" 2>/dev/null; wait "$daemon_pid"; }; daemon_pid=; }

domains_on() { virsh_on "$1" list --all --name | grep "^$2-" | sort | xargs; }

fsck_kinds() { vpool fsck --json | jq -r '.problems[].kind' | sort -u | xargs; }

# VM's user delta collection, where the catalog records it
# (deltas/POOL/VM.UUID).
delta_of() { vpool vm show "$1" --json | jq -r .delta_path; }

# The overlay file of VM's collection, by the name its manifest gives (it
# carries the generation once the delta has been handed over).
overlay_of() {
    local d
    d=$(delta_of "$1")
    echo "$d/$(jq -r .overlay "$d/manifest.json")"
}

# lock_disk FILE [ARG...]: a process of the test (a backup agent, a QEMU
# started by hand) locks FILE as QEMU does, a read lock on byte 100, until
# it is killed; its pid is in LOCKER once it holds the lock. ARGs end its
# command line (what vpool reads of a holder: "-name guest=NAME").
lock_disk() {
    : >"$WORK/locker.out"
    python3 -c '
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.lockf(fd, fcntl.LOCK_SH, 1, 100)
print("locked", flush=True)
time.sleep(900)' "$@" >"$WORK/locker.out" &
    LOCKER=$!
    while [ ! -s "$WORK/locker.out" ]; do sleep 0.1; done
}
