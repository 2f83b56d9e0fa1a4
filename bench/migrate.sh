#!/bin/bash
# Times `vpool migrate` of a pool of N defined (not running) VMs to another
# host and another hardware profile, against the raw libvirt floor for the
# same move: for each VM define the edited domain on the target and undefine
# it on the source, through one virsh connection per host, with no checks,
# no journal and no locking. Alternates the two, RUNS times each (each run
# moves the pool there and back), and prints medians and the ratio.
#
#   bench/migrate.sh [N] [RUNS]     (defaults: 100 3)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-100}
runs=${2:-3}
cd "$top"
scripts/deps.sh >/dev/null
scripts/build.sh
scripts/build-guest.sh build/guest >/dev/null

hosts=(benchsrc benchdst)
scripts/hosts.sh up "${hosts[@]}" >/dev/null
src=$(scripts/hosts.sh uri benchsrc)
dst=$(scripts/hosts.sh uri benchdst)
work=$(mktemp -d /var/tmp/vpool-bench.XXXXXX)
chmod 755 "$work"
cleanup() {
    for uri in "$src" "$dst"; do
        for d in $(virsh -q -c "$uri" list --all --name); do virsh -q -c "$uri" undefine "$d" >/dev/null 2>&1 || true; done
    done
    scripts/hosts.sh down "${hosts[@]}" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

export VPOOL_CATALOG=$work/catalog.db
vpool=build/src/cli/vpool
$vpool init --storage "$work/storage" >/dev/null
$vpool env add src --uri "$src" --domain-type qemu >/dev/null
$vpool env add dst --uri "$dst" --domain-type qemu >/dev/null
$vpool image add guest --file build/guest/master.qcow2 --kernel build/guest/vmlinuz \
    --initrd build/guest/initrd.img --cmdline "$(cat build/guest/cmdline)" >/dev/null
$vpool profile add pc-ide --machine pc --disk-bus ide --nic e1000 --vcpus 1 --memory 256 >/dev/null
$vpool profile add q35-virtio --machine q35 --disk-bus virtio --nic virtio --vcpus 1 --memory 256 >/dev/null
$vpool pool create bm --image guest --env src --profile pc-ide --size "$n" --quiet

now() { date +%s.%N; }

vpool_run() {
    local t0 t1
    t0=$(now)
    /usr/bin/time -a -o "$work/rss" -f %M $vpool migrate bm --to dst --profile q35-virtio --quiet >/dev/null
    t1=$(now)
    # Back again, untimed, so every timed run moves the same way.
    $vpool migrate bm --to src --profile pc-ide --quiet >/dev/null
    echo "$t1 - $t0" | bc
}

# The floor moves copies of the same definitions between the hosts.
for i in $(seq -w 1 "$n"); do
    virsh -q -c "$src" dumpxml --inactive "bm-$(printf '%03d' "$((10#$i))")" |
        sed -e "s/<name>bm-/<name>fl-/" -e '/<uuid>/d' -e "s/machine='[^']*'/machine='q35'/" \
            -e "s/bus='ide'/bus='virtio'/" -e "s/dev='hda'/dev='vda'/" -e "/<address /d" \
            -e "/<controller[^>]*\/>/d" -e "/<controller/,/<\/controller>/d" \
            -e "s/<model type='e1000'\/>/<model type='virtio'\/>/" >"$work/fl-$i.xml"
done
: >"$work/setup.virsh"
for i in $(seq -w 1 "$n"); do
    sed -e "s/machine='q35'/machine='pc'/" -e "s/bus='virtio'/bus='ide'/" -e "s/dev='vda'/dev='hda'/" \
        -e "s/<model type='virtio'\/>/<model type='e1000'\/>/" "$work/fl-$i.xml" >"$work/fl-src-$i.xml"
    echo "define $work/fl-src-$i.xml" >>"$work/setup.virsh"
done
virsh -q -c "$src" <"$work/setup.virsh" >/dev/null
[ "$(virsh -q -c "$src" list --all --name | grep -c '^fl-')" = "$n" ] || { echo "bench: floor set-up failed" >&2; exit 1; }

floor_run() {
    local t0 t1 i
    t0=$(now)
    for i in $(seq -w 1 "$n"); do echo "define $work/fl-$i.xml"; done | virsh -q -c "$dst" >/dev/null
    for i in $(seq -w 1 "$n"); do echo "undefine fl-$(printf '%03d' "$((10#$i))")"; done | virsh -q -c "$src" >/dev/null
    t1=$(now)
    # Only a floor that really moved every definition counts.
    [ "$(virsh -q -c "$dst" list --all --name | grep -c '^fl-')" = "$n" ] || { echo "bench: floor run failed" >&2; exit 1; }
    for i in $(seq -w 1 "$n"); do echo "define $work/fl-src-$i.xml"; done | virsh -q -c "$src" >/dev/null
    for i in $(seq -w 1 "$n"); do echo "undefine fl-$(printf '%03d' "$((10#$i))")"; done | virsh -q -c "$dst" >/dev/null
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
printf 'migrate of N=%s defined VMs, pc/IDE -> q35/virtio, %s runs each (machine: %s cores)\n' "$n" "$runs" "$(nproc)"
printf '%-34s %8s s  %7.1f ms/VM   runs: %s\n' "vpool migrate" "$vm" "$(echo "$vm * 1000 / $n" | bc -l)" "${v[*]}"
printf '%-34s %8s s  %7.1f ms/VM   runs: %s\n' "floor (virsh define + undefine)" "$fm" "$(echo "$fm * 1000 / $n" | bc -l)" "${f[*]}"
printf 'ratio vpool / floor: %.2f\n' "$(echo "$vm / $fm" | bc -l)"
printf 'vpool peak resident memory: %s KiB\n' "$(sort -n "$work/rss" | tail -1)"
