#!/bin/bash
# What abort, resume and a returning host leave: an abort removes vpool's
# own definition of a VM on the target and nothing else; an abort after
# every VM was handed over leaves the pool where its VMs are; a source that
# still holds a domain when the pool is retired ends the migration partial,
# saying what is left; resume redefines a handed-over VM whose target
# definition was lost; a stale definition of a removed pool cannot open the
# overlay of a new pool of the same name.
. "$(dirname "$0")/lib.sh"

TEST_PREFIX=r
require_hosts "$HOSTA" "$HOSTB"
setup_workdir
standard_setup
add_desktop_image
vpool profile add q35-virtio --machine q35 --disk-bus virtio --nic virtio --vcpus 1 --memory 128M >/dev/null

# migrate_killed POOL POINT [ARGS...]: a migration of POOL to host B killed
# at fault point POINT; its id into $id.
migrate_killed() {
    local pool=$1 point=$2
    shift 2
    VPOOL_FAULT=$point vpool migrate "$pool" --to "$HOSTB" --profile q35-virtio "$@" >/dev/null 2>"$WORK/err"
    local rc=$?
    check_eq "migrate $pool killed at $point" "137" "$rc"
    [ "$rc" = 137 ] || diag "$(cat "$WORK/err")"
    id=$(vpool migrate list --json | jq -r --arg p "$pool" '[.[] | select(.pool == $p)] | last | .id')
}

# A domain of NAME that vpool never defined, with a UUID of its own.
define_foreign() {
    local host=$1 name=$2
    cat >"$WORK/foreign.xml" <<EOF
<domain type='qemu'>
  <name>$name</name>
  <memory unit='MiB'>64</memory>
  <os><type arch='x86_64'>hvm</type></os>
</domain>
EOF
    virsh_on "$host" define "$WORK/foreign.xml" >/dev/null
}

fails() { ! "$@"; }

# The envs of VMs, on one line; a pool's env, profile and state.
envs_of() {
    local vm
    for vm in "$@"; do vpool vm show "$vm" --json | jq -r .env; done | xargs
}
pool_where() { vpool pool show "$1" --json | jq -r '"\(.env) \(.profile) \(.state)"'; }

uuid_on() { virsh_on "$1" domuuid "$2" 2>/dev/null | head -1; }

# --- 1. abort removes vpool's own definition on the target, nothing else -------
check "pool r1 created on host A" vpool pool create r1 --image guest --env "$HOSTA" --profile pc-ide --size 1
for point in migrate.stopping:1 migrate.locked:1; do
    migrate_killed r1 "$point"
    check "a foreign domain r1-001 defined on host B" define_foreign "$HOSTB" r1-001
    foreign=$(uuid_on "$HOSTB" r1-001)
    check "abort of migration $id (killed at $point) exits 0" vpool migrate abort "$id"
    check_eq "killed at $point: the foreign domain on host B survives the abort" "$foreign" \
        "$(uuid_on "$HOSTB" r1-001)"
    check_eq "killed at $point: r1-001 is back on host A" "$HOSTA $(vpool vm show r1-001 --json | jq -r .uuid)" \
        "$(vpool vm show r1-001 --json | jq -r .env) $(uuid_on "$HOSTA" r1-001)"
    virsh_on "$HOSTB" undefine r1-001 >/dev/null
done
migrate_killed r1 migrate.provisioned:1
check_eq "killed at provisioned: host B holds vpool's definition of r1-001" \
    "$(vpool vm show r1-001 --json | jq -r .uuid)" "$(uuid_on "$HOSTB" r1-001)"
check "abort of migration $id (killed at provisioned) exits 0" vpool migrate abort "$id"
check_eq "killed at provisioned: the abort removed vpool's definition from host B" "" "$(domains_on "$HOSTB" r1)"

# --- 2. an abort after every VM was handed over: the pool is where its VMs are --
check "pool r2 created on host A" vpool pool create r2 --image guest --env "$HOSTA" --profile pc-ide --size 2
migrate_killed r2 migrate.handed_over:2 --parallel 1
check "abort of migration $id (every VM handed over) exits 0" vpool migrate abort "$id"
check_eq "both VMs stayed on host B" "$HOSTB $HOSTB" "$(envs_of r2-001 r2-002)"
check_eq "the pool is recorded on host B with the target profile" "$HOSTB q35-virtio active" "$(pool_where r2)"
check_eq "fsck finds nothing after that abort" "" "$(fsck_kinds)"
# One VM handed over, the other still pending: the abort splits the pool,
# which stays recorded on host A, and says so.
check "pool r4 created on host A" vpool pool create r4 --image guest --env "$HOSTA" --profile pc-ide --size 2
migrate_killed r4 migrate.handed_over:1 --parallel 1
check "abort of migration $id (one VM handed over) exits 0" vpool migrate abort "$id"
check_eq "r4-001 stayed on host B, r4-002 is on host A" "$HOSTB $HOSTA" "$(envs_of r4-001 r4-002)"
check_eq "the pool stays recorded on host A" "$HOSTA pc-ide active" "$(pool_where r4)"
check "the history says how many VMs stayed and what gathers them" \
    grep -q "1 of 2 VMs stay on env '$HOSTB'.*'vpool migrate r4 --to $HOSTB --profile q35-virtio'" \
    <<<"$(vpool history)"
check "that migration gathers the pool on host B" vpool migrate r4 --to "$HOSTB" --profile q35-virtio
check_eq "both VMs of r4 on host B, and the pool too" "$HOSTB $HOSTB $HOSTB q35-virtio active" \
    "$(envs_of r4-001 r4-002) $(pool_where r4)"

# --- 3. a source that still holds a domain at retirement ------------------------
check "pool r3 created on host A" vpool pool create r3 --image guest --env "$HOSTA" --profile pc-ide --size 1
virsh_on "$HOSTA" dumpxml --inactive r3-001 >"$WORK/r3-001.xml"
migrate_killed r3 migrate.done:1
check "host A defines r3-001 again (a host that returns with its old definition)" \
    virsh_on "$HOSTA" define "$WORK/r3-001.xml"
vpool migrate resume "$id" >/dev/null 2>"$WORK/err"
rc=$?
check_eq "resume exits 1: the source cannot be retired" "1" "$rc"
check "the error names the domain left on the source" grep -q "env '$HOSTA' still holds domain 'r3-001'" "$WORK/err"
check "the error names the commands that finish the migration" \
    grep -q "vpool fsck --repair.*vpool migrate resume $id" "$WORK/err"
check_eq "the migration is partial, not running" "partial" \
    "$(vpool migrate status "$id" --json | jq -r .state)"
vpool fsck --repair >/dev/null
check_eq "fsck --repair removes the stale definition" "" "$(domains_on "$HOSTA" r3)"
check "resume then finishes the migration" vpool migrate resume "$id"
check_eq "the pool is recorded on host B" "$HOSTB done" \
    "$(vpool pool show r3 --json | jq -r .env) $(vpool migrate status "$id" --json | jq -r .state)"

# --- 4. resume at handed_over redefines a target definition that was lost -------
check "pool r5 created and started on host A" \
    vpool pool create r5 --image desktop --env "$HOSTA" --profile pc-ide --size 1 --start
check "r5-001 booted once on host A" wait_boot 180 1 r5-001
uuid5=$(vpool vm show r5-001 --json | jq -r .uuid)
migrate_killed r5 migrate.handed_over:1 --shutdown-timeout 60
check "its target definition is lost (undefined by hand)" virsh_on "$HOSTB" undefine r5-001
check "a foreign domain r5-001 defined on host B" define_foreign "$HOSTB" r5-001
foreign=$(uuid_on "$HOSTB" r5-001)
vpool migrate resume "$id" >/dev/null 2>"$WORK/err"
rc=$?
check_eq "resume refuses a domain of another UUID in the VM's place" "1" "$rc"
check "the refusal names the domain and both UUIDs" \
    grep -q "domain named 'r5-001' with UUID $foreign, not the VM's $uuid5" "$WORK/err"
check_eq "the foreign domain is neither replaced nor started" "$foreign shut off" \
    "$(uuid_on "$HOSTB" r5-001) $(virsh_on "$HOSTB" domstate r5-001 | head -1)"
virsh_on "$HOSTB" undefine r5-001 >/dev/null
check "resume finishes the migration" vpool migrate resume "$id"
check_eq "host B has r5-001 again, with the VM's UUID" "$uuid5" "$(uuid_on "$HOSTB" r5-001)"
check "r5-001 boots on host B (it ran on host A)" wait_boot 180 2 r5-001
check_eq "r5-001 on host B reads its own data" "$uuid5 $uuid5" \
    "$(console_field r5-001 uuid) $(console_field r5-001 owner)"
check_eq "fsck finds nothing after that resume" "" "$(fsck_kinds)"
vpool vm stop r5-001 --force >/dev/null 2>&1
# Aborted instead: the VM stays on host B, defined again, and starts there.
check "pool r6 created on host A" vpool pool create r6 --image guest --env "$HOSTA" --profile pc-ide --size 1
migrate_killed r6 migrate.handed_over:1
check "r6-001's target definition is lost (undefined by hand)" virsh_on "$HOSTB" undefine r6-001
check "abort of migration $id exits 0" vpool migrate abort "$id"
check_eq "host B has r6-001 again, with the VM's UUID" "$(vpool vm show r6-001 --json | jq -r .uuid)" \
    "$(uuid_on "$HOSTB" r6-001)"
check "vm start starts r6-001 on host B" vpool vm start r6-001
check "r6-001 boots on host B" wait_boot 180 1 r6-001

# --- 5. a removed pool's stale definition and a new pool of the same name -------
check "pool r7 created on host B" vpool pool create r7 --image guest --env "$HOSTB" --profile pc-ide --size 1
virsh_on "$HOSTB" dumpxml --inactive r7-001 >"$WORK/r7-001.xml"
old_overlay=$(overlay_of r7-001)
check "pool r7 removed" vpool pool rm r7
check "pool r7 created again on host A" vpool pool create r7 --image guest --env "$HOSTA" --profile pc-ide --size 1
new_overlay=$(overlay_of r7-001)
sum=$(sha256sum "$new_overlay" | cut -d' ' -f1)
check "host B defines the old r7-001 again (a host that returns with its old definition)" \
    virsh_on "$HOSTB" define "$WORK/r7-001.xml"
check "the old definition names an overlay that does not exist" test ! -e "$old_overlay"
check "the old definition cannot start" fails virsh_on "$HOSTB" start r7-001
# Had it started, its guest writes its boot to the disk it opened, then
# powers off.
for _ in $(seq 180); do
    [ "$(virsh_on "$HOSTB" domstate r7-001 2>/dev/null | head -1)" = running ] || break
    sleep 1
done
check_eq "the new user's overlay is unchanged" "$sum" "$(sha256sum "$new_overlay" | cut -d' ' -f1)"
check_eq "fsck reports the old definition as stale" "stale-domain" "$(fsck_kinds)"
vpool fsck --repair >/dev/null
check_eq "fsck --repair removes it" "" "$(domains_on "$HOSTB" r7)"
check "the new r7-001 starts on host A and boots" eval 'vpool vm start r7-001 && wait_boot 180 1 r7-001'

finish
