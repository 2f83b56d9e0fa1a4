#!/bin/bash
# vpool's benchmark: what moving a pool costs with vpool, with a migration
# that copies every disk, and with nothing but the libvirt calls themselves,
# side by side in one run on two local hosts.
#
# Set-up: a master image of 1 GiB of real data; for each pool size N, a pool
# of N defined VMs whose user deltas each hold 64 MiB of their own written
# data. Then, alternating, RUNS times each:
#
#   vpool      `vpool migrate` of the pool to the other host and another
#              hardware profile (pc/IDE/e1000 -> q35/virtio/virtio)
#   floor      for each VM only the libvirt work: define the edited domain on
#              the target, undefine it on the source, one virsh connection
#              per host, no checks, no journal, no locking
#   full copy  (N = 10 only) what a migration without shared user deltas
#              does: for each VM flatten master + delta into a standalone
#              image on the target's storage (qemu-img convert, then fsync),
#              define it on the target, undefine on the source
#
# Each timed move is followed by an untimed one back, so every run moves the
# same way. Also times `vpool pool create --size N` (defined, not started),
# and, with 4 running guests, each VM's downtime: from the shutdown request
# to its guest's boot line on the target, for vpool and for the floor (which
# also measures the guest's own shutdown and boot).
#
# The cluster section does the same between two environments of three hosts
# each, N = 1000 by default: `vpool pool create --size N` (defined, not
# started) on the first env, timed, and how evenly placement spread the VMs
# over its hosts; then, alternating RUNS times, `vpool migrate` of the pool
# to the other env and hardware (and back, untimed) and the raw libvirt floor
# of the same move (bench/cluster.py): the same defines on the same target
# hosts and undefines on the same source hosts, with vpool's parallelism
# (PARALLEL workers, one libvirt connection per host per worker). Its
# deltas hold only what pool create wrote. Each run also times a third
# move, vpool with bench/noflush.c preloaded (no flush waited for): what
# the durability of each step costs, as an analysis.
#
# Writes BENCHMARKS.md (the tables, the machine, the command) and prints it;
# with --only, writes build/bench/report.md unless --out says otherwise.
#
#   bench/run.sh [--sizes "10 100 1000"] [--runs R] [--out FILE]
#                [--only SECTION,...] [--parallel P]
#                (sections: migrate,downtime,cluster,live,api,console,catalog)
#
# --sizes sets the pool sizes of the migrate and cluster sections (defaults
# "10 100 1000" and "1000"); --parallel is vpool's --parallel in the cluster
# section and the floor's worker count (default 8). The migrate and
# downtime sections (and live) use two test hosts of their own
# (scripts/hosts.sh), VPOOL_BENCH_HOSTS="SRC DST" (default "benchsrc
# benchdst"); the cluster section six, three sources then three targets,
# VPOOL_BENCH_CLUSTER_HOSTS="S1 S2 S3 T1 T2 T3" (default benchcs1..3,
# benchct1..3).
#
# The live section: the downtime of a live move (bench/live.py), one
# running test guest moved between the pair of hosts by vpool's live move
# and by `virsh migrate --live`, rounds alternating; the medians and their
# ratio go to the report (and build/bench/live.json).
#
# The api section: vpoold under load (bench/api.sh, bench/api.py): wrk
# with 64 connections against GET /v1/pools beside the CLI's reads of the
# same list, and the delay from a journal commit to its Server-Sent Event.
#
# The console section: the web console in Debian's Chromium
# (bench/console.sh, bench/console.mjs): from the page's request to the
# estate's table rendered for a pool of 1000 defined VMs, median of RUNS.
#
# The catalog section: the same migration of a pool of N defined VMs (the
# largest of --sizes, default 1000) between the pair of hosts with the
# catalog in SQLite and in PostgreSQL (a private server started by
# tests/pg.sh, on the same disk), runs alternating (bench/catalog.sh).
#
# Needs about 70 GiB free under /var/tmp for N = 1000 (64 MiB per VM).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
sizes=
runs=5
out=
only=migrate,downtime,cluster,live,api,console,catalog
parallel=8
cmdline="bench/run.sh $*"
while [ $# -gt 0 ]; do
    case $1 in
        --sizes) sizes=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --only) only=$2; out=${out:-$top/build/bench/report.md}; shift 2 ;;
        --parallel) parallel=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
for n in $sizes; do
    case $n in ''|*[!0-9]*|0) echo "bench: bad pool size '$n'" >&2; exit 2 ;; esac
done
case $runs in ''|*[!0-9]*|0) echo "bench: bad run count '$runs'" >&2; exit 2 ;; esac
case $parallel in ''|*[!0-9]*|0) echo "bench: bad worker count '$parallel'" >&2; exit 2 ;; esac
for s in ${only//,/ }; do
    case $s in
        migrate|downtime|cluster|live|api|console|catalog) ;;
        *) echo "bench: unknown section '$s'" >&2; exit 2 ;;
    esac
done
read -r -a phosts <<<"${VPOOL_BENCH_HOSTS:-benchsrc benchdst}"
[ "${#phosts[@]}" = 2 ] || { echo "bench: VPOOL_BENCH_HOSTS names two hosts" >&2; exit 2; }
read -r -a chosts <<<"${VPOOL_BENCH_CLUSTER_HOSTS:-benchcs1 benchcs2 benchcs3 benchct1 benchct2 benchct3}"
[ "${#chosts[@]}" = 6 ] || { echo "bench: VPOOL_BENCH_CLUSTER_HOSTS names six hosts" >&2; exit 2; }
out=${out:-$top/BENCHMARKS.md}
has() { [[ ,$only, == *,$1,* ]]; }

cd "$top"
scripts/deps.sh >/dev/null
scripts/build.sh >/dev/null
scripts/build-guest.sh build/guest >/dev/null
vpool=$top/build/src/cli/vpool

# The pair of hosts serves the migrate and downtime sections, the six the
# cluster section.
pair=0
{ has migrate || has downtime || has live || has api || has console || has catalog; } && pair=1
hosts=()
[ "$pair" = 1 ] && hosts+=("${phosts[@]}")
has cluster && hosts+=("${chosts[@]}")
# Its hosts are its own: started with no state, so no domain an earlier
# run left behind (one stopped half-way) clashes with this one's names.
scripts/hosts.sh up --fresh "${hosts[@]}" >/dev/null
src=$(scripts/hosts.sh uri "${phosts[0]}")
dst=$(scripts/hosts.sh uri "${phosts[1]}")
uris=()
for h in "${hosts[@]}"; do uris+=("$(scripts/hosts.sh uri "$h")"); done
work=$(mktemp -d /var/tmp/vpool-bench.XXXXXX)
chmod 755 "$work"
cleanup() {
    for uri in "${uris[@]}"; do
        for d in $(virsh -q -c "$uri" list --all --name 2>/dev/null); do
            virsh -q -c "$uri" destroy "$d" >/dev/null 2>&1 || true
            virsh -q -c "$uri" undefine "$d" >/dev/null 2>&1 || true
        done
    done
    scripts/hosts.sh down "${hosts[@]}" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

log() { echo "bench: $*" >&2; }
trap 'log "failed at line $LINENO: $BASH_COMMAND"' ERR
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR] = $1} END {printf "%.6f\n", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
calc() { printf '%.6f\n' "$(echo "$*" | bc -l)"; }
# Bytes of the files under DIR written (created or rewritten) after STAMP:
# a rename keeps a file's mtime, so a file only moved counts nothing.
written_since() { find "$1" -type f -newer "$2" -printf '%b\n' | awk '{s += $1 * 512} END {printf "%.0f\n", s}'; }

# ---- live move: one running guest, vpool's primitive and virsh --------------------
live=()
if has live; then
    mkdir -p "$work/live"
    export VPOOL_CATALOG=$work/live/catalog.db
    $vpool init --storage "$work/live/storage" >/dev/null
    $vpool env add a --uri "$src" --domain-type qemu >/dev/null
    $vpool env add b --uri "$dst" --domain-type qemu >/dev/null
    $vpool image add tick --file build/guest/master.qcow2 --kernel build/guest/vmlinuz \
        --initrd build/guest/initrd.img --cmdline "$(cat build/guest/cmdline) vpool.stay=1 vpool.tick=1" >/dev/null
    $vpool profile add pc-ide --machine pc --disk-bus ide --nic e1000 --vcpus 1 --memory 256 >/dev/null
    log "live: one running guest, $runs rounds each of vpool and virsh migrate --live"
    mkdir -p build/bench
    /usr/bin/python3 "$top/bench/live.py" --tool "$top/build/tests/tools/vp-live-move" --vpool "$vpool" \
        --a "$src" --b "$dst" --runs "$runs" >build/bench/live.json
    jq -r 'def ms: . * 1000 | round | tostring + " ms"; def x: . * 100 | round / 100 | tostring;
        "live move downtime, median of \(.runs) rounds each:",
        "  guest-observed  vpool \(.vpool.guest | ms)  virsh \(.virsh.guest | ms)  ratio \(.ratio_guest | x)",
        "  libvirt job     vpool \(.vpool.libvirt | ms)  virsh \(.virsh.libvirt | ms)  ratio \(.ratio_libvirt | x)",
        "  command wall    vpool \(.vpool.wall | ms)  virsh \(.virsh.wall | ms)"' build/bench/live.json
    live=(--live "$top/build/bench/live.json")
fi

# ---- the API: vpoold under load, its events' delay ---------------------------------
api=()
if has api; then
    # shellcheck source=bench/api.sh
    . "$top/bench/api.sh"
    api_section
    mkdir -p build/bench
    cp "$adir/api.json" build/bench/api.json
    api=(--api "$top/build/bench/api.json")
fi

# ---- the console: the estate of 1000 VMs in a browser ------------------------------
web=()
if has console; then
    # shellcheck source=bench/console.sh
    . "$top/bench/console.sh"
    console_section
    mkdir -p build/bench
    cp "$webdir/console.json" build/bench/console.json
    web=(--console "$top/build/bench/console.json")
fi

# ---- the catalog: SQLite against PostgreSQL ----------------------------------------
catalog=()
if has catalog; then
    # shellcheck source=bench/catalog.sh
    . "$top/bench/catalog.sh"
    catalog_size=$(printf '%s\n' ${sizes:-1000} | sort -n | tail -1)
    catalog_section
    mkdir -p build/bench
    cp "$catdir/catalog.json" build/bench/catalog.json
    catalog=(--catalog "$top/build/bench/catalog.json")
fi

export VPOOL_CATALOG=$work/catalog.db
$vpool init --storage "$work/storage" >/dev/null
$vpool profile add pc-ide --machine pc --disk-bus ide --nic e1000 --vcpus 1 --memory 256 >/dev/null
$vpool profile add q35-virtio --machine q35 --disk-bus virtio --nic virtio --vcpus 1 --memory 256 >/dev/null
# Results, one line each: "N contender median_s per_vm_ms bytes rss_kib runs..."
results=$work/results
: >"$results"
master_bytes=0

# ---- the master: 1 GiB of real data, bootable by the test guest ---------------
if [ "$pair" = 1 ]; then
    log "building the 1 GiB master image"
    mroot=$work/master-root
    mkdir -p "$mroot/data"
    qemu-img convert -f qcow2 -O raw build/guest/master.qcow2 "$work/guest.raw"
    debugfs -R "rdump / $mroot" "$work/guest.raw" >/dev/null 2>&1
    rm -rf "$mroot/lost+found" "$work/guest.raw"
    # Incompressible and deterministic: a keyed stream, 900 MiB in 9 files.
    for i in $(seq 1 9); do
        head -c $((100 << 20)) /dev/zero |
            openssl enc -aes-128-ctr -pass "pass:vpool-bench-$i" -nosalt -pbkdf2 >"$mroot/data/part$i.bin"
    done
    mkfs.ext4 -q -F -L vpool-master -E root_owner=0:0 -d "$mroot" "$work/master.raw" 1G >/dev/null
    qemu-img convert -f raw -O qcow2 "$work/master.raw" "$work/master.qcow2"
    rm -rf "$mroot" "$work/master.raw"
    master_bytes=$(stat -c %s "$work/master.qcow2")

    $vpool env add src --uri "$src" --domain-type qemu >/dev/null
    $vpool env add dst --uri "$dst" --domain-type qemu >/dev/null
    $vpool image add big --file "$work/master.qcow2" --kernel build/guest/vmlinuz --initrd build/guest/initrd.img \
        --cmdline "$(cat build/guest/cmdline) vpool.stay=1" >/dev/null
    rm -f "$work/master.qcow2"
    master=$($vpool --json image show big | jq -r .path)
fi

# The libvirt-only move of the domains in LIST (file of names) from one
# host to the other: one virsh per host reading all the commands.
virsh_batch() { virsh -q -c "$1" >/dev/null; }
to_target_xml() {
    sed -e "s/machine='pc[^']*'/machine='q35'/" -e "s/bus='ide'/bus='virtio'/" -e "s/dev='hd\([a-z]\)'/dev='vd\1'/" \
        -e "/<address /d" -e "/<controller[^>]*\/>/d" -e "/<controller/,/<\/controller>/d" \
        -e "s/<model type='e1000'\/>/<model type='virtio'\/>/"
}

migrate_sizes=${sizes:-10 100 1000}
has migrate || migrate_sizes=
for n in $migrate_sizes; do
    pool=p$n
    # At N = 1000 three runs of each are enough to take a median.
    nruns=$runs
    [ "$n" -ge 1000 ] && [ "$nruns" -gt 3 ] && nruns=3

    # ---- pool create ------------------------------------------------------------
    creates=()
    for r in $(seq "$nruns"); do
        t0=$(now)
        $vpool pool create "$pool" --image big --env src --profile pc-ide --size "$n" --quiet
        t1=$(now)
        creates+=("$(calc "$t1 - $t0")")
        if [ "$r" -lt "$nruns" ]; then
            $vpool pool rm "$pool" --quiet >/dev/null
        fi
    done
    cm=$(printf '%s\n' "${creates[@]}" | median)
    echo "$n create $cm $(calc "$cm * 1000 / $n") - - ${creates[*]}" >>"$results"
    log "N=$n: pool create median ${cm}s"

    mapfile -t vms < <(virsh -q -c "$src" list --all --name | grep "^$pool-" | sort)
    [ "${#vms[@]}" = "$n" ] || { log "pool $pool has ${#vms[@]} domains, not $n"; exit 1; }

    # ---- 64 MiB of each user's own data in its delta -----------------------------
    log "N=$n: writing 64 MiB into each of $n user deltas"
    # Each VM's user delta collection: a folder named after the VM and its
    # UUID, its overlay named after its generation.
    declare -A delta=()
    while read -r name path; do delta[$name]=$path; done < <($vpool --json vm list --pool "$pool" | jq -r '.[] | "\(.name) \(.delta_path)"')
    overlay() { echo "${delta[$1]}"/overlay*.qcow2; }
    # Each VM's own bytes: a pattern from its number, over 64 MiB of the
    # master's data area.
    for vm in "${vms[@]}"; do echo "$vm $(overlay "$vm")"; done | xargs -P 2 -n 2 bash -c \
        'qemu-io -f qcow2 -c "write -P $((10#${0##*-} % 250 + 1)) 512M 64M" "$1" >/dev/null'
    sync
    du_delta=$(du -sb "${delta[${vms[0]}]}" | cut -f1)
    [ "$du_delta" -ge $((64 << 20)) ] || { log "delta of ${vms[0]} holds $du_delta bytes, not 64 MiB"; exit 1; }

    # ---- the floor's definitions: copies of the pool's, under other names ---------
    tmpl=$(virsh -q -c "$src" dumpxml --inactive "${vms[0]}" | sed -e '/<uuid>/d' -e '/<mac address/d')
    mkdir -p "$work/xml"
    : >"$work/floor-setup"
    : >"$work/floor-there"
    : >"$work/floor-back-dst"
    for vm in "${vms[@]}"; do
        fl=fl${vm#"$pool"}
        sed -e "s/${vms[0]}/$vm/g" -e "s/<name>$vm</<name>$fl</" <<<"$tmpl" >"$work/xml/$fl-src.xml"
        to_target_xml <"$work/xml/$fl-src.xml" >"$work/xml/$fl-dst.xml"
        echo "define $work/xml/$fl-src.xml" >>"$work/floor-setup"
        echo "define $work/xml/$fl-dst.xml" >>"$work/floor-there"
        echo "undefine $fl" >>"$work/floor-back-dst"
    done
    virsh_batch "$src" <"$work/floor-setup"

    vpool_run() {
        local t0 t1 stamp=$work/stamp
        touch "$stamp"
        sleep 0.01
        t0=$(now)
        /usr/bin/time -a -o "$work/rss-$n" -f %M $vpool migrate "$pool" --to dst --profile q35-virtio --quiet >/dev/null
        t1=$(now)
        written_since "$work/storage" "$stamp" >>"$work/bytes-vpool-$n"
        $vpool migrate "$pool" --to src --profile pc-ide --quiet >/dev/null
        calc "$t1 - $t0"
    }
    floor_run() {
        local t0 t1
        t0=$(now)
        virsh_batch "$dst" <"$work/floor-there"
        virsh_batch "$src" <"$work/floor-back-dst"
        t1=$(now)
        # Only a floor that really moved every definition counts.
        [ "$(virsh -q -c "$dst" list --all --name | grep -c '^fl-')" = "$n" ] || { log "floor run failed"; exit 1; }
        virsh_batch "$src" <"$work/floor-setup"
        virsh_batch "$dst" <"$work/floor-back-dst"
        calc "$t1 - $t0"
    }
    full_run() {
        local t0 t1 vm fc stamp=$work/stamp
        mkdir -p "$work/storage/full"
        touch "$stamp"
        sleep 0.01
        t0=$(now)
        for vm in "${vms[@]}"; do
            fc=fc${vm#"$pool"}
            qemu-img convert -f qcow2 -O qcow2 "$(overlay "$vm")" "$work/storage/full/$fc.qcow2"
            sync "$work/storage/full/$fc.qcow2"
            sed -e "s/<name>fl-/<name>fc-/" -e "/<backingStore/,/<\/backingStore>/d" \
                -e "s|file='[^']*/overlay[^']*'|file='$work/storage/full/$fc.qcow2'|" \
                "$work/xml/fl${vm#"$pool"}-dst.xml" >"$work/xml/$fc.xml"
            virsh -q -c "$dst" define "$work/xml/$fc.xml" >/dev/null
            virsh -q -c "$src" undefine "fl${vm#"$pool"}" >/dev/null
        done
        t1=$(now)
        written_since "$work/storage" "$stamp" >>"$work/bytes-full-$n"
        [ "$(virsh -q -c "$dst" list --all --name | grep -c '^fc-')" = "$n" ] || { log "full copy run failed"; exit 1; }
        for vm in "${vms[@]}"; do echo "undefine fc${vm#"$pool"}"; done | virsh_batch "$dst"
        virsh_batch "$src" <"$work/floor-setup"
        rm -rf "$work/storage/full"
        calc "$t1 - $t0"
    }

    v=() f=() c=()
    : >"$work/rss-$n"
    : >"$work/bytes-vpool-$n"
    : >"$work/bytes-full-$n"
    for r in $(seq "$nruns"); do
        v+=("$(vpool_run)")
        f+=("$(floor_run)")
        if [ "$n" -le 10 ] && [ "$r" -le 3 ]; then
            c+=("$(full_run)")
        fi
        log "N=$n run $r: vpool ${v[-1]}s floor ${f[-1]}s${c:+ full copy ${c[-1]}s}"
    done
    vm_=$(printf '%s\n' "${v[@]}" | median)
    fm=$(printf '%s\n' "${f[@]}" | median)
    echo "$n vpool $vm_ $(calc "$vm_ * 1000 / $n") $(median <"$work/bytes-vpool-$n") $(sort -n "$work/rss-$n" | tail -1) ${v[*]}" >>"$results"
    echo "$n floor $fm $(calc "$fm * 1000 / $n") 0 - ${f[*]}" >>"$results"
    if [ "${#c[@]}" -gt 0 ]; then
        cm=$(printf '%s\n' "${c[@]}" | median)
        echo "$n full $cm $(calc "$cm * 1000 / $n") $(median <"$work/bytes-full-$n") - ${c[*]}" >>"$results"
    fi

    # Free the space before the next size.
    virsh_batch "$src" < <(for vm in "${vms[@]}"; do echo "undefine fl${vm#"$pool"}"; done)
    $vpool pool rm "$pool" --quiet >/dev/null
done

# ---- downtime of running guests ---------------------------------------------------
downtime=()
if has downtime; then
    log "downtime: 4 running guests, vpool and floor"
    /usr/bin/python3 "$top/bench/downtime.py" --vpool "$vpool" --src "$src" --dst "$dst" --work "$work" \
        --master "$master" >"$work/downtime"
    downtime=(--downtime "$work/downtime")
fi

# ---- a pool between two environments of three hosts each ---------------------------
cluster=()
if has cluster; then
    # shellcheck source=bench/cluster.sh
    . "$top/bench/cluster.sh"
    cluster_section
    cluster=(--cluster "$cdir")
fi

# ---- the report -------------------------------------------------------------------
# The raw figures stay in build/bench/ for a look behind the table.
mkdir -p build/bench
cp "$results" build/bench/
[ "${#downtime[@]}" = 0 ] || cp "$work/downtime" build/bench/
[ "${#cluster[@]}" = 0 ] || { rm -rf build/bench/cluster; cp -r "$cdir" build/bench/cluster; }
/usr/bin/python3 "$top/bench/report.py" --results "$results" "${downtime[@]}" "${cluster[@]}" "${live[@]}" "${api[@]}" "${web[@]}" "${catalog[@]}" \
    --command "$cmdline" \
    --master-bytes "$master_bytes" --vpool "$vpool" >"$out"
cat "$out"
