#!/bin/bash
# Simulated hypervisor hosts on one machine: each host is a libvirtd +
# virtlogd pair living in its own mount namespace, with private
# /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/cache/libvirt and
# /var/log/libvirt bind-mounted from the host's state folder, so hosts never
# see each other's domains, sockets or logs.
#
#   hosts.sh up [--fresh] [--tls [--cert KIND]] NAME...
#                            start hosts (no-op for hosts already up, unless
#                            --tls asks for another transport or certificate);
#                            --fresh stops them first and starts them with no
#                            state at all: no domain a former run defined
#   hosts.sh down NAME...    destroy their domains and stop the daemons
#   hosts.sh status [NAME...]  "NAME up|down URI" per host (all known if none)
#   hosts.sh uri [--tls] NAME  print the libvirt URI of NAME
#   hosts.sh pki             print the folder of vpool's TLS client files
#   hosts.sh revive NAME     start NAME's libvirtd again after it died, in the
#                            host's namespace, leaving its guests running (as
#                            a daemon restart on a real host does)
#
# State: ${VPOOL_HOSTS_DIR:-/var/lib/vpool-hosts}/NAME
# URI:   qemu+unix:///system?socket=<state>/NAME/run/libvirt-sock
#
# With --tls a host also listens on libvirt's TLS port (16514) at its own
# loopback address 127.0.0.X (X from 2 up, allocated once and kept in
# NAME/addr), with certificate verification on both sides:
# URI:   qemu+tls://127.0.0.X/system?pkipath=<state>/pki/client
# The CA, vpool's client files and the hosts' private /etc/pki trees are made
# with certtool. KIND is "good" (the default: signed by the CA, naming the
# host's address), "rogue" (signed by another CA) or "wrong-name" (signed by
# the CA, naming another address): the last two are for tests that vpool
# refuses such a host. A TLS host's qemu listens for incoming live
# migrations at its address too, and its libvirtd reaches the other hosts'
# TLS ports with a client certificate of its own (peer-to-peer migration).
set -euo pipefail

hosts_dir=${VPOOL_HOSTS_DIR:-/var/lib/vpool-hosts}
start_timeout=${VPOOL_HOSTS_TIMEOUT:-60}
stop_timeout=20
export PATH="$PATH:/usr/sbin:/sbin"

die() { echo "hosts.sh: $*" >&2; exit 1; }

usage() {
    echo "usage: $0 up [--fresh] [--tls [--cert good|rogue|wrong-name]] NAME... | down|revive NAME..." >&2
    echo "       $0 status [NAME...] | uri [--tls] NAME | pki" >&2
    exit 2
}

check_name() {
    # The name becomes a path component and part of a URI query.
    [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || die "invalid host name '$1'"
}

host_dir() { echo "$hosts_dir/$1"; }
host_sock() { echo "$(host_dir "$1")/run/libvirt-sock"; }
host_uri() { echo "qemu+unix:///system?socket=$(host_sock "$1")"; }

pki_dir=$hosts_dir/pki
client_pki=$pki_dir/client
tls_port=16514

# The address NAME was given, if any.
host_addr() {
    local f
    f=$(host_dir "$1")/addr
    [ -s "$f" ] || return 1
    cat "$f"
}

host_tls_uri() {
    local addr
    addr=$(host_addr "$1") || die "$1 has no TLS address; start it with '$0 up --tls $1'"
    echo "qemu+tls://$addr/system?pkipath=$client_pki"
}

# The TLS certificate KIND a host was started with; empty when it serves
# only its unix socket.
host_tls_kind() {
    cat "$(host_dir "$1")/tls" 2>/dev/null || true
}

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

# Drops any active setting of KEY from a libvirt config file.
del_conf() {
    sed -i -E "/^[[:space:]]*${2}[[:space:]]*=/d" "$1"
}

# Rewrites KEY in a libvirt config file: drop any active setting, append ours.
set_conf() {
    local file=$1 key=$2 value=$3
    del_conf "$file" "$key"
    printf '%s = %s\n' "$key" "$value" >>"$file"
}

# Gives NAME the lowest free 127.0.0.X (X >= 2: 127.0.0.1 is every
# program's localhost) unless it has one. It is kept for good, so the host's
# URI and certificate stay the same across restarts.
alloc_addr() {
    local f x used
    f=$(host_dir "$1")/addr
    [ -s "$f" ] && return 0
    (
        flock -w 30 8 || die "address lock busy"
        used=$(cat "$hosts_dir"/*/addr 2>/dev/null || true)
        for ((x = 2; x < 255; x++)); do
            grep -qxF "127.0.0.$x" <<<"$used" || break
        done
        [ $x -lt 255 ] || die "no free loopback address left"
        echo "127.0.0.$x" >"$f.tmp"
        mv "$f.tmp" "$f"
    ) 8>"$hosts_dir/.addr.lock"
}

# new_key FILE: a private key only root reads.
new_key() {
    rm -f "$1"
    (umask 077 && certtool --generate-privkey --outfile "$1" >/dev/null 2>&1) ||
        die "certtool could not make the key $1"
}

# new_ca DIR CN: a self-signed CA in DIR/cacert.pem and DIR/cakey.pem.
new_ca() {
    local dir=$1 cn=$2
    [ -s "$dir/cacert.pem" ] && return 0
    mkdir -p "$dir"
    new_key "$dir/cakey.pem"
    printf '%s\n' "cn = \"$cn\"" ca cert_signing_key 'expiration_days = 3650' >"$dir/ca.info"
    certtool --generate-self-signed --load-privkey "$dir/cakey.pem" --template "$dir/ca.info" \
        --outfile "$dir/cacert.tmp" >"$dir/ca.log" 2>&1 || die "certtool could not make the CA in $dir"
    mv "$dir/cacert.tmp" "$dir/cacert.pem"
}

# sign_cert CA_DIR KEY CERT TEMPLATE_LINE...: a new KEY and its CERT signed
# by the CA in CA_DIR. The certificate is written last, so a CERT that
# exists always matches its KEY.
sign_cert() {
    local ca=$1 key=$2 cert=$3
    shift 3
    rm -f "$cert"
    mkdir -p "$(dirname "$key")" "$(dirname "$cert")"
    new_key "$key"
    printf '%s\n' "$@" signing_key encryption_key 'expiration_days = 3650' >"$cert.info"
    certtool --generate-certificate --load-privkey "$key" --load-ca-certificate "$ca/cacert.pem" \
        --load-ca-privkey "$ca/cakey.pem" --template "$cert.info" --outfile "$cert.tmp" >"$cert.log" 2>&1 ||
        die "certtool could not sign $cert"
    mv "$cert.tmp" "$cert"
}

# The CA every host and vpool trust, another CA nobody trusts (for the
# "rogue" hosts), and vpool's client files in the layout libvirt's
# ?pkipath= expects.
ensure_pki() {
    command -v certtool >/dev/null || die "certtool missing; run scripts/deps.sh"
    mkdir -p "$pki_dir"
    chmod 700 "$pki_dir"
    (
        flock -w 60 8 || die "pki lock busy"
        new_ca "$pki_dir/ca" "vpool test hosts CA"
        new_ca "$pki_dir/rogue-ca" "vpool rogue CA"
        if [ ! -s "$client_pki/clientcert.pem" ]; then
            mkdir -p "$client_pki"
            cp "$pki_dir/ca/cacert.pem" "$client_pki/cacert.pem"
            sign_cert "$pki_dir/ca" "$client_pki/clientkey.pem" "$client_pki/clientcert.pem" \
                'cn = "vpool"' tls_www_client
        fi
    ) 8>"$hosts_dir/.pki.lock"
}

# The host's private /etc/pki, in libvirt's default layout: the CA, its
# server certificate of KIND, and a client certificate with which its
# libvirtd reaches the other hosts for peer-to-peer migration.
host_pki() {
    local name=$1 kind=$2 addr pki ca=$pki_dir/ca cn
    addr=$(host_addr "$name")
    pki=$(host_dir "$name")/pki
    mkdir -p "$pki/CA" "$pki/libvirt/private"
    chmod 700 "$pki/libvirt/private"
    # libvirtd checks at start that its CA file vouches for its own server
    # certificate, so a rogue host trusts the rogue CA as well (and still
    # the real one, for vpool's client certificate).
    if [ "$kind" = rogue ]; then
        cat "$ca/cacert.pem" "$pki_dir/rogue-ca/cacert.pem" >"$pki/CA/cacert.pem"
    else
        cp "$ca/cacert.pem" "$pki/CA/cacert.pem"
    fi
    if [ ! -s "$pki/libvirt/clientcert.pem" ]; then
        sign_cert "$ca" "$pki/libvirt/private/clientkey.pem" "$pki/libvirt/clientcert.pem" \
            "cn = \"$name\"" tls_www_client
    fi
    [ "$(cat "$pki/server.made" 2>/dev/null)" = "$kind $addr" ] && [ -s "$pki/libvirt/servercert.pem" ] &&
        return 0
    cn=$addr
    case $kind in
        rogue) ca=$pki_dir/rogue-ca ;;
        # TEST-NET-1: an address that is no host of ours.
        wrong-name) cn=192.0.2.1 ;;
    esac
    sign_cert "$ca" "$pki/libvirt/private/serverkey.pem" "$pki/libvirt/servercert.pem" \
        "organization = \"vpool test hosts\"" "cn = \"$cn\"" "ip_address = \"$cn\"" tls_www_server
    echo "$kind $addr" >"$pki/server.made"
}

# libvirtd's TLS listener and qemu's migration address for a TLS host, or
# neither for a host that serves only its unix socket.
configure_tls() {
    local name=$1 d=$2 q=$3 addr key
    if [ -z "$(host_tls_kind "$name")" ]; then
        for key in listen_tls listen_tcp listen_addr tls_port key_file cert_file ca_file \
            tls_no_verify_certificate auth_tls; do
            del_conf "$d" "$key"
        done
        del_conf "$q" migration_address
        del_conf "$q" migration_host
        return 0
    fi
    addr=$(host_addr "$name")
    set_conf "$d" listen_tls 1
    set_conf "$d" listen_tcp 0
    set_conf "$d" listen_addr "\"$addr\""
    set_conf "$d" tls_port "\"$tls_port\""
    # The paths inside the host's namespace, where its pki/ is /etc/pki.
    set_conf "$d" key_file '"/etc/pki/libvirt/private/serverkey.pem"'
    set_conf "$d" cert_file '"/etc/pki/libvirt/servercert.pem"'
    set_conf "$d" ca_file '"/etc/pki/CA/cacert.pem"'
    # Clients must show a certificate signed by the CA; that certificate is
    # the whole authentication (no SASL, as with the unix socket).
    set_conf "$d" tls_no_verify_certificate 0
    set_conf "$d" auth_tls '"none"'
    # Incoming migrations: qemu listens at the host's own address, and the
    # source is told to connect there (the hosts share one hostname, which
    # would resolve to none of them).
    set_conf "$q" migration_address "\"$addr\""
    set_conf "$q" migration_host "\"$addr\""
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
    del_conf "$q" lock_manager

    configure_tls "$name" "$d" "$q"
}

# tls_answers NAME: does NAME's libvirtd accept our TLS client at its
# address? Only a host with a good certificate can.
tls_answers() {
    timeout 15 virsh -q -c "$(host_tls_uri "$1")" version >/dev/null 2>&1
}

# tls_listens NAME: is anything listening at NAME's TLS port?
tls_listens() {
    timeout 5 bash -c ": </dev/tcp/$(host_addr "$1")/$tls_port" 2>/dev/null
}

start_host() {
    local name=$1 dir tls=
    dir=$(host_dir "$name")
    # Bind targets must exist in the shared tree; /run/libvirt usually does
    # not when no system libvirtd ever ran.
    mkdir -p /etc/libvirt /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt
    if [ -n "$(host_tls_kind "$name")" ]; then
        # An empty mount point: the machine's own /etc/pki, if any, stays
        # as it is outside the host's namespace.
        mkdir -p /etc/pki
        tls=1
    fi
    rm -f "$dir/libvirtd.pid" "$dir/virtlogd.pid"

    # The daemons daemonize (setsid + double fork), so the namespace lives on
    # with them after unshare's shell exits, and dies with the last of them.
    # They keep inherited fds, so the host lock (fd 9) must not reach them.
    # shellcheck disable=SC2016 # expanded by the inner shell
    # Without systemd's socket activation, --listen is what makes libvirtd
    # open the TCP listeners libvirtd.conf asks for.
    HOSTDIR=$dir TLS=$tls unshare -m --propagation private bash -c '
        set -eu
        mount --bind "$HOSTDIR/etc" /etc/libvirt
        mount --bind "$HOSTDIR/run" /run/libvirt
        mount --bind "$HOSTDIR/lib" /var/lib/libvirt
        mount --bind "$HOSTDIR/cache" /var/cache/libvirt
        mount --bind "$HOSTDIR/log" /var/log/libvirt
        [ -z "$TLS" ] || mount --bind "$HOSTDIR/pki" /etc/pki
        virtlogd -d -p "$HOSTDIR/virtlogd.pid"
        libvirtd -d ${TLS:+--listen} --pid-file "$HOSTDIR/libvirtd.pid"
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
    [ -n "$tls" ] || return 0
    # The unix socket answers first; the TLS listener must be there too.
    until tls_listens "$name"; do
        if [ $SECONDS -ge $deadline ]; then
            echo "hosts.sh: $name: libvirtd does not listen on $(host_addr "$name"):$tls_port" >&2
            tail -n 20 "$dir/log/libvirtd.log" >&2 2>/dev/null || true
            return 1
        fi
        sleep 0.3
    done
    if [ "$(host_tls_kind "$name")" = good ] && ! tls_answers "$name"; then
        echo "hosts.sh: $name: libvirtd does not accept vpool's client certificate at $(host_tls_uri "$name")" >&2
        timeout 15 virsh -q -c "$(host_tls_uri "$name")" version 2>&1 | tail -n 3 >&2 || true
        return 1
    fi
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

# "NAME up URI", and the TLS URI after it for a host that listens on TLS.
up_line() {
    local name=$1
    if [ -n "$(host_tls_kind "$name")" ]; then
        echo "$name up $(host_uri "$name") $(host_tls_uri "$name")"
    else
        echo "$name up $(host_uri "$name")"
    fi
}

# Starts NAME, on TLS with a certificate of kind $tls_kind if that is set.
# A host already up stays as it is, unless it was asked for TLS with
# another certificate (or none): then it restarts, its domains destroyed.
do_up() {
    local name=$1 dir
    dir=$(host_dir "$name")
    if [ -n "$fresh" ]; then
        # Domains defined by a former run (one stopped half-way included)
        # live in etc/ and lib/; a test suite's hosts start without them.
        do_down "$name"
        rm -rf "${dir:?}"/{etc,lib,run,cache,log,pki} "$dir/start.log"
    elif live_pid "$dir/libvirtd.pid" libvirtd >/dev/null && answers "$name" &&
        { [ -z "$tls_kind" ] || [ "$(host_tls_kind "$name")" = "$tls_kind" ]; }; then
        up_line "$name"
        return 0
    fi
    # Half-started or crashed leftovers would hold the sockets.
    do_down "$name"
    if [ -n "$tls_kind" ]; then
        alloc_addr "$name"
        ensure_pki
        host_pki "$name" "$tls_kind"
        echo "$tls_kind" >"$dir/tls"
    else
        rm -f "$dir/tls"
    fi
    prepare_host "$name"
    if ! start_host "$name"; then
        do_down "$name" || true
        die "$name: failed to start (logs in $dir)"
    fi
    up_line "$name"
}

do_revive() {
    local name=$1 dir vpid listen
    dir=$(host_dir "$name")
    if live_pid "$dir/libvirtd.pid" libvirtd >/dev/null; then
        up_line "$name"
        return 0
    fi
    # virtlogd keeps the host's mount namespace (and the guests' logs) alive.
    vpid=$(live_pid "$dir/virtlogd.pid" virtlogd) || die "$name: virtlogd is gone; use 'up'"
    rm -f "$dir/libvirtd.pid" "$(host_sock "$name")"
    listen=()
    [ -z "$(host_tls_kind "$name")" ] || listen=(--listen)
    nsenter -t "$vpid" -m libvirtd -d "${listen[@]}" --pid-file "$dir/libvirtd.pid" >>"$dir/start.log" 2>&1 9>&- ||
        die "$name: libvirtd did not start again (logs in $dir)"
    local deadline=$((SECONDS + start_timeout))
    until answers "$name" 5; do
        [ $SECONDS -lt $deadline ] || die "$name: libvirtd did not answer again within ${start_timeout}s"
        sleep 0.3
    done
    up_line "$name"
}

do_status() {
    local name=$1 dir state=down
    dir=$(host_dir "$name")
    if live_pid "$dir/libvirtd.pid" libvirtd >/dev/null && answers "$name"; then
        state=up
    fi
    if [ -n "$(host_tls_kind "$name")" ]; then
        echo "$name $state $(host_uri "$name") $(host_tls_uri "$name")"
    else
        echo "$name $state $(host_uri "$name")"
    fi
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
tls_kind=
want_tls_uri=
fresh=
while [ $# -gt 0 ]; do
    case $1 in
        --fresh)
            [ "$cmd" = up ] || usage
            fresh=1 ;;
        --tls)
            [ "$cmd" = up ] || [ "$cmd" = uri ] || usage
            tls_kind=${tls_kind:-good}
            want_tls_uri=1 ;;
        --cert)
            if [ "$cmd" != up ] || [ $# -lt 2 ]; then usage; fi
            case $2 in
                good|rogue|wrong-name) tls_kind=$2 ;;
                *) die "unknown certificate kind '$2' (good, rogue or wrong-name)" ;;
            esac
            shift ;;
        --) shift; break ;;
        -*) usage ;;
        *) break ;;
    esac
    shift
done
[ -z "$tls_kind" ] || [ -n "$want_tls_uri" ] || die "--cert needs --tls"
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
        if [ -n "$want_tls_uri" ]; then
            host_tls_uri "$1"
        else
            host_uri "$1"
        fi
        ;;
    pki)
        [ $# -eq 0 ] || usage
        echo "$client_pki"
        ;;
    *)
        usage
        ;;
esac
