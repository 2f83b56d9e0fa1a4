# shellcheck shell=bash disable=SC2154
# (the variables come from run.sh)
# bench/run.sh's cluster section (sourced by it; see there): a pool of N
# defined VMs created on an env of three hosts and moved to another env of
# three hosts and other hardware, by vpool and by the raw libvirt floor
# (bench/cluster.py) with the same parallelism and the same placement.
#
# Uses run.sh's vpool, work, chosts, sizes, runs, parallel and its helpers;
# sets cdir, the folder of the section's figures:
#   results           "N create median_s runs...", "N host NAME VMs" (after
#                     pool create), "N target NAME VMs" (after vpool's
#                     move), "N unplanned VMs" (not where the dry run said),
#                     "N vpool|noflush|floor median_s runs..." (noflush:
#                     vpool with bench/noflush.c preloaded, no flush waited for)
#   moves-N           "VM SOURCE-HOST TARGET-HOST": vpool's, the floor's too
#   vpool-N-R.jsonl   vpool's event stream of run R
#   floor-N-R.json    the floor's run R (cluster.py run)
#   parallel          the workers of both

cluster_py() { /usr/bin/python3 "$top/bench/cluster.py" "$@"; }
# EXPR to two decimals, for the progress lines.
c2() { printf '%.2f' "$(echo "$*" | bc -l)"; }

cluster_setup() {
    local i h spec
    cdir=$work/cluster
    mkdir -p "$cdir"
    : >"$cdir/results"
    echo "$parallel" >"$cdir/parallel"
    chost_args=() csrc_args=() cdst_args=()
    for i in 0 1 2 3 4 5; do
        h=${chosts[$i]}
        spec=$h=$(scripts/hosts.sh uri "$h")
        chost_args+=(--host "$spec")
        if [ "$i" -lt 3 ]; then csrc_args+=(--host "$spec"); else cdst_args+=(--host "$spec"); fi
    done
    cc -Wall -Werror -shared -fPIC -O2 -o "$work/noflush.so" bench/noflush.c
    $vpool env add csrc "${csrc_args[@]}" --domain-type qemu >/dev/null
    $vpool env add cdst "${cdst_args[@]}" --domain-type qemu >/dev/null
    # Defined, never started: the test guest's small master does.
    $vpool image add guest --file build/guest/master.qcow2 --kernel build/guest/vmlinuz \
        --initrd build/guest/initrd.img --cmdline "$(cat build/guest/cmdline)" >/dev/null
}

# Times `pool create` of POOL (N VMs) NRUNS times; the last one stays.
cluster_create() {
    local n=$1 pool=$2 nruns=$3 r t0 t1 creates=() cm
    for r in $(seq "$nruns"); do
        t0=$(now)
        $vpool pool create "$pool" --image guest --env csrc --profile pc-ide --size "$n" --quiet
        t1=$(now)
        creates+=("$(calc "$t1 - $t0")")
        [ "$r" = "$nruns" ] || $vpool pool rm "$pool" --quiet >/dev/null
    done
    cm=$(printf '%s\n' "${creates[@]}" | median)
    echo "$n create $cm ${creates[*]}" >>"$cdir/results"
    log "cluster N=$n: pool create median $(c2 "$cm") s ($(c2 "$cm * 1000 / $n") ms per VM)"
}

# How many of POOL's VMs each source host holds, as the catalog says, and
# that libvirt agrees.
cluster_spread() {
    local n=$1 pool=$2 h uri count defined
    for h in "${chosts[@]:0:3}"; do
        count=$($vpool --json vm list --pool "$pool" | jq --arg h "$h" '[.[] | select(.host == $h)] | length')
        uri=$(scripts/hosts.sh uri "$h")
        defined=$(virsh -q -c "$uri" list --all --name | grep -c "^$pool-" || true)
        [ "$count" = "$defined" ] || { log "host $h: the catalog says $count VMs, libvirt $defined"; exit 1; }
        echo "$n host $h $count" >>"$cdir/results"
        log "cluster N=$n: host $h holds $count VMs (even: $(c2 "$n / 3"))"
    done
}

# "VM HOST" for each VM of POOL, sorted.
cluster_hosts_of() { $vpool --json vm list --pool "$1" | jq -r '.[] | "\(.name) \(.host)"' | sort; }

# After vpool's first move of POOL: the floor's moves (each VM from the
# host it was created on, SOURCES, to the host vpool put it on), how many
# VMs each target host got, and how many vpool did not put where its own
# plan (the dry run before) said.
cluster_placed() {
    local n=$1 pool=$2 sources=$3 h count off
    cluster_hosts_of "$pool" >"$cdir/targets-$n"
    join "$sources" "$cdir/targets-$n" >"$cdir/moves-$n"
    [ "$(wc -l <"$cdir/moves-$n")" = "$n" ] || { log "vpool's move left $(wc -l <"$cdir/moves-$n") of $n VMs"; exit 1; }
    for h in "${chosts[@]:3:3}"; do
        count=$(awk -v h="$h" '$3 == h' "$cdir/moves-$n" | wc -l)
        echo "$n target $h $count" >>"$cdir/results"
        log "cluster N=$n: vpool put $count VMs on host $h"
    done
    off=$(jq -r '.vms[] | "\(.vm) \(.target_host)"' "$cdir/plan-$n.json" | sort | comm -23 - "$cdir/targets-$n" | wc -l)
    echo "$n unplanned $off" >>"$cdir/results"
    [ "$off" = 0 ] || log "cluster N=$n: vpool put $off VMs on another host than its dry run's plan said"
}

# POOL back to csrc, untimed: every timed move starts from there.
cluster_back() { $vpool migrate "$1" --to csrc --profile pc-ide --parallel "$parallel" --quiet >/dev/null; }

# R alternating runs of vpool, vpool with no flush waited for (analysis)
# and the floor moving POOL to cdst.
cluster_moves() {
    local n=$1 pool=$2 nruns=$3 r t0 t1 v=() u=() f=() fl vm_ um fm
    cluster_hosts_of "$pool" >"$cdir/sources-$n"
    $vpool --json migrate "$pool" --to cdst --profile q35-virtio --parallel "$parallel" --dry-run >"$cdir/plan-$n.json"
    for r in $(seq "$nruns"); do
        t0=$(now)
        $vpool --json migrate "$pool" --to cdst --profile q35-virtio --parallel "$parallel" >"$cdir/vpool-$n-$r.jsonl"
        t1=$(now)
        v+=("$(calc "$t1 - $t0")")
        [ "$r" != 1 ] || cluster_placed "$n" "$pool" "$cdir/sources-$n"
        cluster_back "$pool"
        t0=$(now)
        LD_PRELOAD=$work/noflush.so $vpool migrate "$pool" --to cdst --profile q35-virtio --parallel "$parallel" \
            --quiet >/dev/null
        t1=$(now)
        u+=("$(calc "$t1 - $t0")")
        cluster_back "$pool"
        # The floor's source definitions are the pool's, back on csrc.
        [ "$r" != 1 ] || cluster_py prepare --moves "$cdir/moves-$n" --jobs "$work/jobs-$n.json" "${chost_args[@]}"
        cluster_py run --jobs "$work/jobs-$n.json" --parallel "$parallel" "${chost_args[@]}" >"$cdir/floor-$n-$r.json"
        fl=$(jq .total "$cdir/floor-$n-$r.json")
        f+=("$(calc "$fl")")
        log "cluster N=$n run $r: vpool $(c2 "${v[-1]}") s ($(c2 "${v[-1]} * 1000 / $n") ms per VM)," \
            "floor $(c2 "${f[-1]}") s ($(c2 "${f[-1]} * 1000 / $n") ms per VM), vpool / floor $(c2 "${v[-1]} / ${f[-1]}")," \
            "with no flush waited for $(c2 "${u[-1]}") s, / floor $(c2 "${u[-1]} / ${f[-1]}")"
    done
    vm_=$(printf '%s\n' "${v[@]}" | median)
    um=$(printf '%s\n' "${u[@]}" | median)
    fm=$(printf '%s\n' "${f[@]}" | median)
    echo "$n vpool $vm_ ${v[*]}" >>"$cdir/results"
    echo "$n noflush $um ${u[*]}" >>"$cdir/results"
    echo "$n floor $fm ${f[*]}" >>"$cdir/results"
    log "cluster N=$n: medians vpool $(c2 "$vm_ * 1000 / $n") ms per VM, floor $(c2 "$fm * 1000 / $n") ms" \
        "per VM, vpool / floor $(c2 "$vm_ / $fm"), with no flush waited for / floor $(c2 "$um / $fm")"
    cluster_py clean --jobs "$work/jobs-$n.json" "${chost_args[@]}"
}

cluster_section() {
    local n pool nruns
    cluster_setup
    for n in ${sizes:-1000}; do
        pool=c$n
        nruns=$runs
        [ "$n" -ge 1000 ] && [ "$nruns" -gt 3 ] && nruns=3
        cluster_create "$n" "$pool" "$nruns"
        cluster_spread "$n" "$pool"
        cluster_moves "$n" "$pool" "$nruns"
        $vpool pool rm "$pool" --quiet >/dev/null
    done
}
