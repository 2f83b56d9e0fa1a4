#!/bin/bash
# Simulated hypervisor hosts on one machine: each host is a libvirtd +
# virtlogd pair living in its own mount namespace, with private
# /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/cache/libvirt and
# /var/log/libvirt bind-mounted from the host's state folder, so hosts never
# see each other's domains, sockets or logs.
#
#   hosts.sh up NAME...      start hosts (no-op for hosts already up)
#   hosts.sh down NAME...    destroy their domains and stop the daemons
#   hosts.sh status [NAME...]  "NAME up|down URI" per host (all known if none)
#   hosts.sh uri NAME        print the libvirt URI of NAME
#   hosts.sh revive NAME     start NAME's libvirtd again after it died, in the
#                            host's namespace, leaving its guests running (as
#                            a daemon restart on a real host does)
#
# State: ${VPOOL_HOSTS_DIR:-/var/lib/vpool-hosts}/NAME
# URI:   qemu+unix:///system?socket=<state>/NAME/run/libvirt-sock
set -euo pipefail

hosts_dir=${VPOOL_HOSTS_DIR:-/var/lib/vpool-hosts}
start_timeout=${VPOOL_HOSTS_TIMEOUT:-60}
stop_timeout=20
export PATH="$PATH:/usr/sbin:/sbin"

die() { echo "hosts.sh: $*" >&2; exit 1; }

usage() {
    echo "usage: $0 up|down|revive NAME... | status [NAME...] | uri NAME" >&2
    exit 2
}

check_name() {
    # The name becomes a path component and part of a URI query.
    [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || die "invalid host name '$1'"
}

host_dir() { echo "$hosts_dir/$1"; }
host_sock() { echo "$(host_dir "$1")/run/libvirt-sock"; }
host_uri() { echo "qemu+unix:///system?socket=$(host_sock "$1")"; }

# Prints the pid recorded in PIDFILE if that process is still COMM; pid
# files outlive reboots and pids get reused.
live_pid() {
    local pidfile=$1 comm=$2 pid
    [ -r "$pidfile" ] || return 1
    pid=$(tr -dc '0-9' <"$pidfile")
    [ -n "$pid" ] || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] || return 1
    echo "$pid"
}

# answers NAME [SECONDS]: does NAME's libvirtd serve requests?
answers() {
    timeout "${2:-15}" virsh -q -c "$(host_uri "$1")" version >/dev/null 2>&1
}

wait_gone() {
    local pid=$1 deadline=$((SECONDS + $2))
    while kill -0 "$pid" 2>/dev/null; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.2
    done
}

stop_pid() {
    local pid=$1 what=$2
    kill -TERM "$pid" 2>/dev/null || return 0
    if ! wait_gone "$pid" "$stop_timeout"; then
        echo "hosts.sh: $what (pid $pid) ignored SIGTERM, killing" >&2
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 10 || die "$what (pid $pid) does not die"
    fi
}

# Rewrites KEY in a libvirt config file: drop any active setting, append ours.
set_conf() {
    local file=$1 key=$2 value=$3
    sed -i -E "/^[[:space:]]*${key}[[:space:]]*=/d" "$file"
    printf '%s = %s\n' "$key" "$value" >>"$file"
}

prepare_host() {
    local name=$1 dir etc
    dir=$(host_dir "$name")
    etc=$dir/etc
    mkdir -p "$dir"/{run,lib,cache,log}
    # libvirt-qemu must be able to traverse into per-host folders (qemu
    # opens its monitor socket and state files below lib/ and run/).
    chmod 755 "$hosts_dir" "$dir"

    if [ ! -d "$etc" ]; then
        cp -a /etc/libvirt "$etc.tmp"
        # Every host would otherwise start the same virbr0/dnsmasq and
        # inherit whatever domains and pools the real host has defined.
        rm -f "$etc.tmp"/qemu/networks/autostart/*.xml
        rm -f "$etc.tmp"/qemu/*.xml "$etc.tmp"/qemu/autostart/*.xml
        rm -f "$etc.tmp"/storage/autostart/*.xml
        mv "$etc.tmp" "$etc"
    fi
    if [ ! -s "$dir/host-uuid" ]; then
        cat /proc/sys/kernel/random/uuid >"$dir/host-uuid"
    fi

    local d=$etc/libvirtd.conf
    # Root-only unix sockets are the access control; there is no polkit
    # agent (or D-Bus) in the containers this runs in.
    set_conf "$d" auth_unix_rw '"none"'
    set_conf "$d" auth_unix_ro '"none"'
    # With authentication off, the socket mode is what keeps non-root users
    # from getting root-equivalent control (libvirt's default here is 0777).
    set_conf "$d" unix_sock_rw_perms '"0700"'
    # Older libvirt advertised itself over mDNS by default; current versions
    # dropped mDNS and ignore the key.
    set_conf "$d" mdns_adv 0
    set_conf "$d" log_outputs '"3:file:/var/log/libvirt/libvirtd.log"'
    # All hosts share the machine's SMBIOS UUID, and libvirt refuses to
    # migrate between two hosts with the same UUID.
    set_conf "$d" host_uuid "\"$(cat "$dir/host-uuid")\""

    set_conf "$etc/virtlogd.conf" log_outputs '"3:file:/var/log/libvirt/virtlogd.log"'

    local q=$etc/qemu.conf
    # Without systemd-machined libvirt would build cgroups itself under the
    # daemon's cgroup in every controller; all hosts share that cgroup, so
    # two hosts running same-named domains share one machine/qemu-ID-NAME
    # cgroup (seen here: both hosts number domains from 1), and container
    # cgroup mounts are often read-only or partial. vpool needs no resource
    # control from libvirt.
    set_conf "$q" cgroup_controllers '[ ]'
    # Leases: every guest's QEMU holds its own image locks on the disks it
    # opens (on by default; nothing here may turn them off), and no lock
    # manager is configured: vpool checks those locks on the shared storage
    # before every hand-over (docs/migration.md, "Leases"). All hosts share
    # this machine's kernel, so their QEMUs' locks meet as NFSv4 clients'
    # meet on the server.
    sed -i -E '/^[[:space:]]*lock_manager[[:space:]]*=/d' "$q"
}

start_host() {
    local name=$1 dir
    dir=$(host_dir "$name")
    # Bind targets must exist in the shared tree; /run/libvirt usually does
    # not when no system libvirtd ever ran.
    mkdir -p /etc/libvirt /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt
    rm -f "$dir/libvirtd.pid" "$dir/virtlogd.pid"

    # The daemons daemonize (setsid + double fork), so the namespace lives on
    # with them after unshare's shell exits, and dies with the last of them.
    # They keep inherited fds, so the host lock (fd 9) must not reach them.
    # shellcheck disable=SC2016 # expanded by the inner shell
    HOSTDIR=$dir unshare -m --propagation private bash -c '
        set -eu
        mount --bind "$HOSTDIR/etc" /etc/libvirt
        mount --bind "$HOSTDIR/run" /run/libvirt
        mount --bind "$HOSTDIR/lib" /var/lib/libvirt
        mount --bind "$HOSTDIR/cache" /var/cache/libvirt
        mount --bind "$HOSTDIR/log" /var/log/libvirt
        virtlogd -d -p "$HOSTDIR/virtlogd.pid"
        libvirtd -d --pid-file "$HOSTDIR/libvirtd.pid"
    ' >>"$dir/start.log" 2>&1 9>&- || {
        tail -n 20 "$dir/start.log" >&2 || true
        return 1
    }

    local deadline=$((SECONDS + start_timeout))
    # The first request blocks until libvirtd has probed qemu (seconds,
    # cached in cache/ afterwards), so each try gets the remaining time.
    until answers "$name" $((deadline - SECONDS > 0 ? deadline - SECONDS : 1)); do
        if [ $SECONDS -ge $deadline ] || ! live_pid "$dir/libvirtd.pid" libvirtd >/dev/null; then
            echo "hosts.sh: $name: libvirtd did not answer on $(host_sock "$name") within ${start_timeout}s" >&2
            tail -n 20 "$dir/start.log" "$dir/log/libvirtd.log" >&2 2>/dev/null || true
            return 1
        fi
        sleep 0.3
    done
}

# Processes sharing the mount namespace of PID (dnsmasq and the like); qemu
# itself may sit in a nested namespace and is found through its pid file.
ns_members() {
    local ns p
    ns=$(readlink "/proc/$1/ns/mnt" 2>/dev/null) || return 0
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$ns" ] && echo "${p#/proc/}"
    done
    return 0
}

do_down() {
    local name=$1 dir lpid vpid pid ns_pids=() f dom
    dir=$(host_dir "$name")
    [ -d "$dir" ] || return 0
    lpid=$(live_pid "$dir/libvirtd.pid" libvirtd) || lpid=
    vpid=$(live_pid "$dir/virtlogd.pid" virtlogd) || vpid=

    if [ -n "$lpid" ] && answers "$name"; then
        # Destroy through libvirt first so it records the domains as shut off
        # and restores image ownership.
        while read -r dom; do
            [ -n "$dom" ] || continue
            virsh -q -c "$(host_uri "$name")" destroy "$dom" >/dev/null 2>&1 ||
                echo "hosts.sh: $name: destroy $dom failed" >&2
        done < <(timeout 15 virsh -q -c "$(host_uri "$name")" list --name 2>/dev/null || true)
    fi

    for f in "$dir"/run/qemu/*.pid; do
        [ -e "$f" ] || continue
        pid=$(tr -dc '0-9' <"$f")
        [ -n "$pid" ] || continue
        case $(cat "/proc/$pid/comm" 2>/dev/null) in
            qemu*) stop_pid "$pid" "$name qemu" ;;
        esac
    done

    if [ -n "$lpid" ]; then
        mapfile -t ns_pids < <(ns_members "$lpid")
    elif [ -n "$vpid" ]; then
        mapfile -t ns_pids < <(ns_members "$vpid")
    fi
    [ -z "$lpid" ] || stop_pid "$lpid" "$name libvirtd"
    [ -z "$vpid" ] || stop_pid "$vpid" "$name virtlogd"
    for pid in "${ns_pids[@]}"; do
        [ "$pid" = "$lpid" ] || [ "$pid" = "$vpid" ] || stop_pid "$pid" "$name helper"
    done
    rm -f "$dir/libvirtd.pid" "$dir/virtlogd.pid"
}

do_up() {
    local name=$1 dir
    dir=$(host_dir "$name")
    if live_pid "$dir/libvirtd.pid" libvirtd >/dev/null && answers "$name"; then
        echo "$name up $(host_uri "$name")"
        return 0
    fi
    # Half-started or crashed leftovers would hold the sockets.
    do_down "$name"
    prepare_host "$name"
    if ! start_host "$name"; then
        do_down "$name" || true
        die "$name: failed to start (logs in $dir)"
    fi
    echo "$name up $(host_uri "$name")"
}

do_revive() {
    local name=$1 dir vpid
    dir=$(host_dir "$name")
    if live_pid "$dir/libvirtd.pid" libvirtd >/dev/null; then
        echo "$name up $(host_uri "$name")"
        return 0
    fi
    # virtlogd keeps the host's mount namespace (and the guests' logs) alive.
    vpid=$(live_pid "$dir/virtlogd.pid" virtlogd) || die "$name: virtlogd is gone; use 'up'"
    rm -f "$dir/libvirtd.pid" "$(host_sock "$name")"
    nsenter -t "$vpid" -m libvirtd -d --pid-file "$dir/libvirtd.pid" >>"$dir/start.log" 2>&1 9>&- ||
        die "$name: libvirtd did not start again (logs in $dir)"
    local deadline=$((SECONDS + start_timeout))
    until answers "$name" 5; do
        [ $SECONDS -lt $deadline ] || die "$name: libvirtd did not answer again within ${start_timeout}s"
        sleep 0.3
    done
    echo "$name up $(host_uri "$name")"
}

do_status() {
    local name=$1 dir state=down
    dir=$(host_dir "$name")
    if live_pid "$dir/libvirtd.pid" libvirtd >/dev/null && answers "$name"; then
        state=up
    fi
    echo "$name $state $(host_uri "$name")"
}

# One operation per host at a time; up and down both rewrite its state.
with_lock() {
    local name=$1
    shift
    mkdir -p "$(host_dir "$name")"
    (
        flock -w $((start_timeout + 60)) 9 || die "$name: lock busy"
        "$@" "$name"
    ) 9>"$(host_dir "$name")/.lock"
}

[ $# -ge 1 ] || usage
cmd=$1
shift
for n in "$@"; do check_name "$n"; done

case $cmd in
    up|down|revive)
        [ $# -ge 1 ] || usage
        [ "$(id -u)" -eq 0 ] || die "must run as root (mount namespaces, libvirtd)"
        command -v libvirtd >/dev/null || die "libvirtd missing; run scripts/deps.sh"
        # Hosts start and stop in parallel (libvirtd's capability probe and
        # shutdown take seconds each); output is replayed in argument order.
        outs=$(mktemp -d)
        trap 'rm -rf "$outs"' EXIT
        pids=()
        for n in "$@"; do
            if [ "$cmd" = down ] && [ ! -d "$(host_dir "$n")" ]; then
                continue
            fi
            with_lock "$n" "do_$cmd" >"$outs/$n.out" 2>"$outs/$n.err" 9>&- &
            pids+=("$!:$n")
        done
        rc=0
        for p in "${pids[@]}"; do
            wait "${p%%:*}" || rc=1
            cat "$outs/${p#*:}.out"
            cat "$outs/${p#*:}.err" >&2
        done
        exit $rc
        ;;
    status)
        if [ $# -eq 0 ] && [ -d "$hosts_dir" ]; then
            for d in "$hosts_dir"/*/; do
                [ -d "$d/etc" ] && set -- "$@" "$(basename "$d")"
            done
        fi
        for n in "$@"; do do_status "$n"; done
        ;;
    uri)
        [ $# -eq 1 ] || usage
        host_uri "$1"
        ;;
    *)
        usage
        ;;
esac
