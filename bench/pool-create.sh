#!/bin/bash
# Times `vpool pool create --size N` (domains defined, not started) against
# the least a script can do for the same result: for each VM one
# `qemu-img create` overlay and one domain definition through one libvirt
# connection (virsh reading a batch of define commands), no checks, no
# catalog, no manifests. Alternates the two, RUNS times each, and prints
# medians and the ratio.
#
#   bench/pool-create.sh [N] [RUNS]     (defaults: 200 3)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-200}
runs=${2:-3}
cd "$top"
scripts/deps.sh >/dev/null
scripts/build.sh
scripts/build-guest.sh build/guest >/dev/null

host=benchhost
scripts/hosts.sh up "$host" >/dev/null
uri=$(scripts/hosts.sh uri "$host")
work=$(mktemp -d /var/tmp/vpool-bench.XXXXXX)
chmod 755 "$work"
cleanup() {
    for d in $(virsh -q -c "$uri" list --all --name); do virsh -q -c "$uri" undefine "$d" >/dev/null 2>&1 || true; done
    scripts/hosts.sh down "$host" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

export VPOOL_CATALOG=$work/catalog.db
vpool=build/src/cli/vpool
$vpool init --storage "$work/storage" >/dev/null
$vpool env add bench --uri "$uri" --domain-type qemu >/dev/null
$vpool image add guest --file build/guest/master.qcow2 --kernel build/guest/vmlinuz \
    --initrd build/guest/initrd.img --cmdline "$(cat build/guest/cmdline)" >/dev/null
$vpool profile add pc-ide --machine pc --disk-bus ide --nic e1000 --vcpus 1 --memory 256 >/dev/null
master=$work/storage/images/guest.qcow2

now() { date +%s.%N; }

vpool_run() {
    local t0 t1
    t0=$(now)
    $vpool pool create bp --image guest --env bench --profile pc-ide --size "$n" --quiet
    t1=$(now)
    $vpool pool rm bp --quiet
    echo "$t1 - $t0" | bc
}

floor_run() {
    local t0 t1 i name dir cmds=$work/floor.virsh
    : >"$cmds"
    t0=$(now)
    for i in $(seq -w 1 "$n"); do
        name=fl-$i
        dir=$work/floor/$name
        mkdir -p "$dir"
        qemu-img create -q -f qcow2 -b "$master" -F qcow2 "$dir/overlay.qcow2"
        cat >"$dir/domain.xml" <<XML
<domain type='qemu'><name>$name</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os><features><acpi/></features>
<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
<source file='$dir/overlay.qcow2'/><target dev='hda' bus='ide'/></disk>
<interface type='user'><model type='e1000'/></interface></devices></domain>
XML
        echo "define $dir/domain.xml" >>"$cmds"
    done
    virsh -q -c "$uri" <"$cmds" >/dev/null
    t1=$(now)
    for i in $(seq -w 1 "$n"); do echo "undefine fl-$i"; done | virsh -q -c "$uri" >/dev/null
    rm -rf "$work/floor"
    echo "$t1 - $t0" | bc
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

v=() f=()
for r in $(seq "$runs"); do
    v+=("$(vpool_run)")
    f+=("$(floor_run)")
done
vm=$(printf '%s\n' "${v[@]}" | median)
fm=$(printf '%s\n' "${f[@]}" | median)
printf 'pool create, N=%s, %s runs each (machine: %s cores)\n' "$n" "$runs" "$(nproc)"
printf '%-34s %8s s  %7.1f ms/VM   runs: %s\n' "vpool pool create" "$vm" "$(echo "$vm * 1000 / $n" | bc -l)" "${v[*]}"
printf '%-34s %8s s  %7.1f ms/VM   runs: %s\n' "floor (qemu-img + virsh define)" "$fm" "$(echo "$fm * 1000 / $n" | bc -l)" "${f[*]}"
printf 'ratio vpool / floor: %.2f\n' "$(echo "$vm / $fm" | bc -l)"
