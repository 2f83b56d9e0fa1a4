#!/bin/bash
# Crash at every durable step. For pool create and for migrate, with one VM
# and with several, vpool is killed (SIGKILL, through the fault points) at
# each step in turn; then the same create (or resume) finishes the job, or
# pool rm (or abort) undoes it, and fsck is clean. No delta is lost, none has
# two owners, no temp file stays, no domain is left defined by mistake.
# Then a 20-VM migration is killed at random moments, many rounds. Finally
# every surviving guest boots and reads its own data.
. "$(dirname "$0")/lib.sh"

TEST_PREFIX=c
require_hosts "$HOSTA" "$HOSTB"
setup_workdir
standard_setup
vpool profile add q35-virtio --machine q35 --disk-bus virtio --nic virtio --vcpus 1 --memory 128M >/dev/null
vpool profile add pc-small --machine pc --disk-bus ide --nic e1000 --vcpus 1 --memory 128M >/dev/null

injected=0
runs=0
lost=0
doubly=0
round=0

# Every VM of the catalog has its collection with manifest and overlay;
# no delta is attached twice; no temp file is left anywhere on storage.
# (The catalog's VMs in one list, their manifests read by one jq: the
# catalog holds every pool made so far, up to 72 VMs.)
audit() {
    local what=$1 vm d f o kinds
    local -A path=() overlay=()
    while read -r vm d; do
        path[$vm]=$d
    done < <(vpool vm list --json | jq -r '.[] | "\(.name) \(.delta_path)"')
    while read -r f o; do
        overlay[${f%/manifest.json}]=$o
    done < <(for d in "${path[@]}"; do [ -f "$d/manifest.json" ] && echo "$d/manifest.json"; done |
        xargs -r jq -r '"\(input_filename) \(.overlay)"' 2>/dev/null)
    for vm in "${!path[@]}"; do
        d=${path[$vm]}
        if [ -z "${overlay[$d]:-}" ] || [ ! -f "$d/${overlay[$d]}" ]; then
            lost=$((lost + 1))
            not_ok "$what: delta of $vm lost"
        fi
    done
    kinds=$(fsck_kinds)
    if grep -qw delta-shared <<<"$kinds"; then doubly=$((doubly + 1)); fi
    check_eq "$what: fsck clean" "" "$kinds"
    check_eq "$what: no temp file on storage" "" "$(find "$STORAGE" -name '*.tmp.*' -o -name '.*.importing' | xargs)"
}

pools_done=()

# --- pool create -------------------------------------------------------------
for size in 1 3; do
    points=("create.allocated:1" "create.active:1")
    for k in $(seq "$size"); do points+=("create.delta:$k" "create.defined:$k"); done
    for pt in "${points[@]}"; do
        round=$((round + 1))
        p=cc$round
        VPOOL_FAULT=$pt vpool pool create "$p" --image guest --env "$HOSTA" --profile pc-small --size "$size" \
            >/dev/null 2>"$WORK/err"
        rc=$?
        injected=$((injected + 1))
        runs=$((runs + 1))
        check_eq "create size $size killed at $pt" "137" "$rc"
        [ "$rc" = 137 ] || sed 's/^/#   /' "$WORK/err" >&2
        if [ "$pt" = create.active:1 ]; then
            # Killed right after the pool was marked active: it is whole.
            check_eq "create size $size killed at $pt: the pool is complete" "active $size" \
                "$(vpool pool show "$p" --json | jq -r '"\(.state) \(.vms | length)"')"
            pools_done+=("$p")
            audit "create size $size at $pt"
            continue
        fi
        # Every commit before the kill stands: the pool's rows, allocated
        # before any disk or domain was made.
        check_eq "create size $size killed at $pt: the catalog holds the pool creating, its $size VMs" \
            "creating $size" "$(vpool pool show "$p" --json | jq -r '"\(.state) \(.vms | length)"')"
        check_eq "create size $size killed at $pt: fsck names the unfinished pool" "pool-unfinished" "$(fsck_kinds)"
        if [ $((round % 2)) = 0 ]; then
            check "create size $size killed at $pt: the same create finishes it" \
                vpool pool create "$p" --image guest --env "$HOSTA" --profile pc-small --size "$size"
            runs=$((runs + 1))
            check_eq "create size $size killed at $pt: all $size domains defined" "$size" \
                "$(virsh_on "$HOSTA" list --all --name | grep -c "^$p-")"
            pools_done+=("$p")
        else
            check "create size $size killed at $pt: pool rm undoes it" vpool pool rm "$p"
            runs=$((runs + 1))
            check_eq "create size $size killed at $pt: no domain left" "0" \
                "$(virsh_on "$HOSTA" list --all --name | grep -c "^$p-")"
            check "create size $size killed at $pt: no collection left" test ! -e "$STORAGE/deltas/$p"
        fi
        audit "create size $size at $pt"
    done
done

# --- migrate -----------------------------------------------------------------
mpoints=(stopping source-stopped source-undefined renamed manifest-to-migration locked provisioned manifest-to-vm
         handed_over done)
# The journal's step each point comes after: every step is committed
# before the work of the next begins, so a kill there finds it recorded.
declare -A after_step=([stopping]=stopping [source-stopped]=stopping [source-undefined]=stopping
    [renamed]=stopping [manifest-to-migration]=stopping [locked]=locked [provisioned]=provisioned
    [manifest-to-vm]=provisioned [handed_over]=handed_over [done]=done)
# reached ID STEP: how many of migration ID's VMs the journal has at STEP
# or past it.
reached() {
    vpool migrate status "$1" --json | jq --arg s "$2" '["pending", "stopping", "locked", "provisioned",
        "handed_over", "done"] as $o | [.vms[] | .step as $t | select(($o | index($t)) >= ($o | index($s)))] | length'
}
for size in 1 3; do
    occ=$(( size == 1 ? 1 : 2 ))
    for point in "${mpoints[@]}"; do
        round=$((round + 1))
        p=cm$round
        vpool pool create "$p" --image guest --env "$HOSTA" --profile pc-small --size "$size" >/dev/null ||
            bail "create $p"
        pt=migrate.$point:$occ
        VPOOL_FAULT=$pt vpool migrate "$p" --to "$HOSTB" --profile q35-virtio --parallel 1 >"$WORK/out" 2>&1
        rc=$?
        injected=$((injected + 1))
        runs=$((runs + 1))
        id=$(awk '/^migration [0-9]+$/ {print $2; exit}' "$WORK/out")
        check_eq "migrate size $size killed at $pt" "137" "$rc"
        # The point's OCCth passage: OCC VMs got that far (a disk is renamed
        # at both hand-overs, so its second passage may be the first VM's).
        want=$([ "$point" = renamed ] && echo 1 || echo "$occ")
        got=$(reached "$id" "${after_step[$point]}")
        check "migrate size $size killed at $pt: the journal has $want VM(s) at ${after_step[$point]} or past" \
            test "${got:-0}" -ge "$want"
        check_eq "migrate size $size killed at $pt: fsck names the unfinished migration" "migration-unfinished" \
            "$(fsck_kinds)"
        if [ $((round % 2)) = 0 ]; then
            check "migrate size $size killed at $pt: resume finishes it" vpool migrate resume "$id"
            check_eq "migrate size $size killed at $pt: all on host B" "$size 0" \
                "$(virsh_on "$HOSTB" list --all --name | grep -c "^$p-") $(virsh_on "$HOSTA" list --all --name | grep -c "^$p-")"
        else
            check "migrate size $size killed at $pt: abort undoes it" vpool migrate abort "$id"
            handed=$(vpool migrate status "$id" --json | jq '[.vms[] | select(.step == "done" or .step == "handed_over")] | length')
            check_eq "migrate size $size killed at $pt: handed-over VMs on B, the rest back on A" \
                "$handed $((size - handed))" \
                "$(virsh_on "$HOSTB" list --all --name | grep -c "^$p-") $(virsh_on "$HOSTA" list --all --name | grep -c "^$p-")"
        fi
        runs=$((runs + 1))
        pools_done+=("$p")
        audit "migrate size $size at $pt"
    done
done

# --- random SIGKILL of a 20-VM migration ----------------------------------------
vpool pool create cr --image guest --env "$HOSTA" --profile pc-small --size 20 >/dev/null || bail "create cr"
to=$HOSTB
prof=q35-virtio
for r in $(seq 12); do
    "$VPOOL_BIN" migrate cr --to "$to" --profile "$prof" --parallel 4 >"$WORK/out" 2>&1 &
    pid=$!
    sleep "0.$((RANDOM % 6))$((RANDOM % 10))"
    kill -9 "$pid" 2>/dev/null && killed=yes || killed=no
    wait "$pid" 2>/dev/null
    runs=$((runs + 1))
    id=$(awk '/^migration [0-9]+$/ {print $2; exit}' "$WORK/out")
    if [ -z "$id" ]; then
        # Killed after the allocation committed but before the id reached
        # the output: the pool's unfinished migration is this one.
        id=$(vpool migrate list --json |
            jq -r '[.[] | select(.pool == "cr" and .state != "done" and .state != "aborted")] | last | .id // empty')
    fi
    if [ "$killed" = yes ]; then injected=$((injected + 1)); fi
    if [ -n "$id" ] && [ "$(vpool migrate status "$id" --json | jq -r .state)" != done ]; then
        if [ $((r % 3)) = 0 ]; then
            check "random round $r (killed: $killed): abort" vpool migrate abort "$id"
        else
            check "random round $r (killed: $killed): resume" vpool migrate resume "$id"
        fi
        runs=$((runs + 1))
    else
        ok "random round $r (killed: $killed): nothing to finish"
    fi
    audit "random round $r"
    where=$(vpool pool show cr --json | jq -r .env)
    state=$(vpool pool show cr --json | jq -r .state)
    check_eq "random round $r: pool at rest" "active" "$state"
    # Next round goes the other way, from wherever the pool now is.
    if [ "$where" = "$HOSTA" ]; then to=$HOSTB; prof=q35-virtio; else to=$HOSTA; prof=pc-small; fi
    # An abort may leave VMs on both envs; bring stragglers home first.
    n_a=$(virsh_on "$HOSTA" list --all --name | grep -c '^cr-')
    n_b=$(virsh_on "$HOSTB" list --all --name | grep -c '^cr-')
    check_eq "random round $r: 20 domains in all" "20" "$((n_a + n_b))"
done
pools_done+=(cr)

# --- every guest boots and reads its own data ----------------------------------
# Ten at a time: TCG on two cores.
all=()
declare -A uuid_of=()
for p in "${pools_done[@]}"; do
    while read -r vm u; do
        all+=("$vm")
        uuid_of[$vm]=$u
    done < <(vpool vm list --pool "$p" --json | jq -r '.[] | "\(.name) \(.uuid)"')
done
booted=0
for ((i = 0; i < ${#all[@]}; i += 10)); do
    batch=("${all[@]:i:10}")
    for vm in "${batch[@]}"; do vpool vm start "$vm" >/dev/null || not_ok "start $vm"; done
    wait_shutoff 300 "${batch[@]}" || not_ok "batch starting at $i did not power off"
    for vm in "${batch[@]}"; do
        u=${uuid_of[$vm]}
        if [ "$(console_field "$vm" uuid) $(console_field "$vm" owner) $(console_field "$vm" boot)" = "$u $u 1" ]; then
            booted=$((booted + 1))
        else
            not_ok "$vm boots with its own data" "console: $(console_line "$vm")"
        fi
    done
done
check_eq "every guest booted and read its own data" "${#all[@]}" "$booted"
audit "after booting"

diag "crash points injected: $injected in $runs runs; deltas lost: $lost; doubly owned: $doubly; guests booted: $booted"
check_eq "no delta lost" "0" "$lost"
check_eq "no delta doubly owned" "0" "$doubly"
for p in "${pools_done[@]}"; do vpool pool rm "$p" --force >/dev/null; done
finish
