#!/bin/bash
# Migration: a running pool moves from host A (pc, IDE, e1000) to host B
# (q35, virtio-blk, virtio-net) by handing over its user deltas; dry runs,
# preflight refusals, SIGKILL then resume, SIGKILL then abort, env drain,
# and fsck finding what a test plants.
. "$(dirname "$0")/lib.sh"

TEST_PREFIX=m
require_hosts "$HOSTA" "$HOSTB"
setup_workdir
standard_setup
add_desktop_image
vpool profile add q35-virtio --machine q35 --disk-bus virtio --nic virtio --vcpus 2 --memory 384M >/dev/null
master=$STORAGE/images/desktop.qcow2
master_sha=$(sha256sum "$master" | cut -d' ' -f1)

# --- 1. a running pool moves to other hosts and other hardware ------------------
vms="m1-001 m1-002 m1-003"
check "pool m1 created and started on host A" \
    vpool pool create m1 --image desktop --env "$HOSTA" --profile pc-ide --size 3 --start
check "each guest booted once on host A, writing its own data" wait_boot 180 1 $vms
declare -A uuid mac inode
for vm in $vms; do
    show=$(vpool vm show "$vm" --json)
    uuid[$vm]=$(jq -r .uuid <<<"$show")
    mac[$vm]=$(jq -r '.macs[0]' <<<"$show")
    inode[$vm]=$(stat -c %i "$(overlay_of "$vm")")
    check_eq "$vm first boot: its own UUID on IDE" "${uuid[$vm]} sda" "$(console_field "$vm" uuid) $(console_field "$vm" disk)"
done

out=$(vpool migrate m1 --to "$HOSTB" --profile q35-virtio --shutdown-timeout 60 2>"$WORK/err")
rc=$?
check_eq "migrate m1 exits 0" "0" "$rc"
check "migrate prints the migration id first" grep -Eq '^migration [0-9]+$' <<<"$(head -1 <<<"$out")"
id1=$(head -1 <<<"$out" | awk '{print $2}')
check_eq "host A keeps no domain of the pool" "" "$(domains_on "$HOSTA" m1)"
check_eq "host B has the 3 domains" "$vms" "$(domains_on "$HOSTB" m1)"
for vm in $vms; do
    xml=$(virsh_on "$HOSTB" dumpxml --inactive "$vm")
    check "$vm on host B: machine q35" grep -q "machine='pc-q35" <<<"$xml"
    check "$vm on host B: virtio disk" grep -q "bus='virtio'" <<<"$xml"
    check "$vm on host B: virtio NIC" grep -q "<model type='virtio'/>" <<<"$xml"
    check "$vm on host B: same MAC" grep -q "<mac address='${mac[$vm]}'/>" <<<"$xml"
    check "$vm on host B: same UUID" grep -q "<uuid>${uuid[$vm]}</uuid>" <<<"$xml"
    check "$vm on host B: no IDE left" test "$(grep -c "bus='ide'" <<<"$xml")" = 0
    check_eq "$vm: same delta inode (no data copied)" "${inode[$vm]}" "$(stat -c %i "$(overlay_of "$vm")")"
    check_eq "$vm: the overlay's name carries generation 3" "overlay.g3.qcow2" "$(basename "$(overlay_of "$vm")")"
    check_eq "$vm: manifest owned by the VM at generation 3" "vm:$vm 3" \
        "$(jq -r '"\(.owner) \(.generation)"' "$(delta_of "$vm")/manifest.json")"
done
check "every target guest booted (it was running before)" wait_boot 180 2 $vms
for vm in $vms; do
    diag "$(console_line "$vm")"
    check_eq "$vm on host B: its own UUID" "${uuid[$vm]}" "$(console_field "$vm" uuid)"
    check_eq "$vm on host B: its own data (first owner kept)" "${uuid[$vm]}" "$(console_field "$vm" owner)"
    check_eq "$vm on host B: boot count continues" "2" "$(console_field "$vm" boot)"
    check_eq "$vm on host B: disk found on the virtio bus" "vda" "$(console_field "$vm" disk)"
    check_eq "$vm on host B: virtio NIC driver" "virtio_net" "$(console_field "$vm" nic)"
    check_eq "$vm state" "running" "$(vm_state "$vm")"
done
check_eq "master image unchanged" "$master_sha" "$(sha256sum "$master" | cut -d' ' -f1)"
check_eq "pool m1 now on host B with the new profile" "$HOSTB q35-virtio active" \
    "$(vpool pool show m1 --json | jq -r '"\(.env) \(.profile) \(.state)"')"
check_eq "migration $id1 listed as done 3/3" "done 3 3" \
    "$(vpool migrate list --json | jq -r ".[] | select(.id == $id1) | \"\(.state) \(.done) \(.total)\"")"
check_eq "journal-backed status: every VM done" "done done done" \
    "$(vpool migrate status "$id1" --json | jq -r '.vms[].step' | xargs)"
check_eq "fsck clean after the migration" "" "$(fsck_kinds)"
check "pool m1 stops gracefully" vpool pool stop m1 --timeout 60
check_eq "guests shut down cleanly" "3" "$(for vm in $vms; do grep -a 'VPOOL-GUEST shutdown' "$STORAGE/logs/$vm.log" | tail -1; done | grep -c shutdown)"

# --- 2. dry run: a plan, and nothing changes ------------------------------------
vpool pool create m2 --image desktop --env "$HOSTA" --profile pc-ide --size 2 >/dev/null || bail "create m2"
before=$(snapshot)
plan=$(vpool migrate m2 --to "$HOSTB" --profile q35-virtio --dry-run)
check_eq "dry run exits 0" "0" "$?"
check_eq "dry run changes nothing (catalog, storage, both hosts)" "$before" "$(snapshot)"
for d in "machine: pc -> q35" "disk bus: ide -> virtio" "NIC: e1000 -> virtio" "vCPUs: 1 -> 2" "memory: 256 MiB -> 384 MiB"; do
    check "dry run shows '$d'" grep -qF "$d" <<<"$plan"
done
for vm in m2-001 m2-002; do
    check "dry run lists $vm with source and target" grep -Eq "^$vm +$HOSTA/$HOSTA +$HOSTB/$HOSTB" <<<"$plan"
done
check_eq "dry run --json lists the hardware changes" "5" \
    "$(vpool migrate m2 --to "$HOSTB" --profile q35-virtio --dry-run --json | jq '.hardware_changes | length')"

# --- 3. preflight refusals: nothing touched -------------------------------------
vpool profile add oldq35 --machine pc-q35-1.0 --disk-bus virtio --nic virtio --vcpus 1 --memory 128 >/dev/null
expect_fail "target without the machine type" 1 "env '$HOSTB' does not offer machine type 'pc-q35-1.0'" \
    vpool migrate m2 --to "$HOSTB" --profile oldq35
vpool image add ideonly --file "$GUEST_DIR/master.qcow2" --disk-buses ide --nic-models e1000,virtio --no-inspect >/dev/null
vpool pool create m3 --image ideonly --env "$HOSTA" --profile pc-ide --size 1 >/dev/null || bail "create m3"
expect_fail "image without a driver for the target bus" 1 "image 'ideonly' declares no driver for disk bus 'virtio'" \
    vpool migrate m3 --to "$HOSTB" --profile q35-virtio
expect_fail "unknown target env" 1 "unknown env 'nowhere'" vpool migrate m2 --to nowhere
expect_fail "unknown target profile" 1 "unknown profile 'noprof'" vpool migrate m2 --to "$HOSTB" --profile noprof
expect_fail "nothing to migrate" 1 "nothing to migrate" vpool migrate m2 --to "$HOSTA"
expect_fail "parallelism 0" 1 "parallelism" vpool migrate m2 --to "$HOSTB" --parallel 0
expect_fail "missing --to" 2 "missing --to" vpool migrate m2
"$HOSTS_SH" up --fresh hostc >/dev/null || bail "cannot start hostc"
vpool env add hostc --uri "$(uri_of hostc)" --domain-type qemu >/dev/null || bail "env add hostc"
"$HOSTS_SH" down hostc >/dev/null
expect_fail "target env unreachable" 1 "env 'hostc': cannot connect" vpool migrate m2 --to hostc
vpool env rm hostc >/dev/null
cp "$GUEST_DIR/master.qcow2" "$WORK/victim.qcow2"
vpool image add victim --file "$WORK/victim.qcow2" --no-inspect >/dev/null
vpool pool create m4 --image victim --env "$HOSTA" --profile pc-ide --size 1 >/dev/null || bail "create m4"
chmod u+w "$STORAGE/images/victim.qcow2"
printf 'X' | dd of="$STORAGE/images/victim.qcow2" bs=1 seek=1048576 conv=notrunc status=none
expect_fail "master digest changed on storage" 1 "pool 'm4': master image '.*victim.qcow2' changed on storage" \
    vpool migrate m4 --to "$HOSTB"
vpool pool rm m3 >/dev/null
vpool pool rm m4 >/dev/null
# The preflight trusts the recorded digest only while the file's inode, size
# and times are the recorded ones; a touch alone costs a re-hash, not a refusal.
cp "$GUEST_DIR/master.qcow2" "$WORK/victim2.qcow2"
vpool image add victim2 --file "$WORK/victim2.qcow2" --no-inspect >/dev/null
vpool pool create m4 --image victim2 --env "$HOSTA" --profile pc-ide --size 1 >/dev/null || bail "create m4"
v2=$STORAGE/images/victim2.qcow2
touch "$v2"
check "master touched but unchanged: preflight passes" vpool migrate m4 --to "$HOSTB" --dry-run
# A write with the modification time set back still changes ctime.
chmod u+w "$v2"
cp -p "$v2" "$WORK/v2.ref"
printf 'Y' | dd of="$v2" bs=1 seek=1048576 conv=notrunc status=none
touch -r "$WORK/v2.ref" "$v2"
expect_fail "master changed, mtime set back: still caught" 1 "master image '.*victim2.qcow2' changed on storage" \
    vpool migrate m4 --to "$HOSTB" --dry-run
vpool pool rm m4 >/dev/null

d2=$(delta_of m2-002)
cp "$d2/manifest.json" "$WORK/m2.manifest"
jq '.generation = 9' "$WORK/m2.manifest" >"$d2/manifest.json"
expect_fail "a delta not cleanly held by its VM" 1 "delta of vm 'm2-002' is owned by 'vm:m2-002' at generation 9" \
    vpool migrate m2 --to "$HOSTB"
cp "$WORK/m2.manifest" "$d2/manifest.json"

# --- 4. SIGKILL after some VMs moved; resume finishes -------------------------
VPOOL_FAULT=migrate.done:1 vpool migrate m2 --to "$HOSTB" --profile q35-virtio --parallel 1 >"$WORK/out" 2>&1
check_eq "migration killed by SIGKILL" "137" "$?"
id2=$(awk '/^migration [0-9]+$/ {print $2; exit}' "$WORK/out")
check_eq "status: interrupted after one VM" "interrupted 1" \
    "$(vpool migrate status "$id2" --json | jq -r '"\(.state) \(.done)"')"
check_eq "fsck names the unfinished migration and nothing else" "migration-unfinished" "$(fsck_kinds)"
expect_fail "a second migration is refused, naming the unfinished one" 1 "unfinished migration $id2" \
    vpool migrate m2 --to "$HOSTB"
check "resume finishes it" vpool migrate resume "$id2"
check_eq "all of m2 on host B" "m2-001 m2-002" "$(domains_on "$HOSTB" m2)"
check_eq "none of m2 on host A" "" "$(domains_on "$HOSTA" m2)"
check_eq "fsck clean after resume" "" "$(fsck_kinds)"

# --- 5. SIGKILL mid-hand-over of a running pool; abort returns it ---------------
vms5="m5-001 m5-002 m5-003"
vpool pool create m5 --image desktop --env "$HOSTA" --profile pc-ide --size 3 --start >/dev/null || bail "create m5"
check "m5 guests up" wait_boot 180 1 $vms5
VPOOL_FAULT=migrate.manifest-to-vm:2 vpool migrate m5 --to "$HOSTB" --profile q35-virtio --parallel 1 \
    --shutdown-timeout 60 >"$WORK/out" 2>&1
check_eq "second migration killed mid-hand-over" "137" "$?"
id5=$(awk '/^migration [0-9]+$/ {print $2; exit}' "$WORK/out")
check_eq "fsck: mid-hand-over crash is one unfinished migration" "migration-unfinished" "$(fsck_kinds)"
check "abort returns every VM not handed over" vpool migrate abort "$id5"
check_eq "m5-001 (handed over before the crash) stays on host B" "m5-001" "$(domains_on "$HOSTB" m5)"
check_eq "m5-002 and m5-003 are back on host A" "m5-002 m5-003" "$(domains_on "$HOSTA" m5)"
check "m5-001 booted on host B" wait_boot 180 2 m5-001
check "m5-002 (stopped for its hand-over) runs again on host A" wait_boot 180 2 m5-002
check_eq "m5-003 (never touched) still runs its first boot" "1" "$(console_field m5-003 boot)"
for vm in m5-002 m5-003; do
    check_eq "$vm running on its source" "running $HOSTA" "$(vpool vm show "$vm" --json | jq -r '"\(.state) \(.env)"')"
    check_eq "$vm reads its own data, IDE again" "$(vpool vm show "$vm" --json | jq -r .uuid) sda" \
        "$(console_field "$vm" owner) $(console_field "$vm" disk)"
done
check_eq "fsck clean after abort" "" "$(fsck_kinds)"
vpool pool stop m5 --timeout 60 --force >/dev/null

# --- 6. fsck finds what is planted ------------------------------------------------
d1=$(delta_of m2-001)
virsh_on "$HOSTB" dumpxml --inactive m2-001 | sed -e 's/<name>m2-001</<name>m-intruder</' -e '/<uuid>/d' \
    >"$WORK/intruder.xml"
virsh_on "$HOSTA" define "$WORK/intruder.xml" >/dev/null
check_eq "fsck: delta attached to two domains" "delta-shared" \
    "$(vpool fsck --json | jq -r ".problems[] | select(.subject == \"$d1\") | .kind" | grep -x delta-shared)"
check "fsck names both domains" grep -q "$HOSTA/m-intruder" <<<"$(vpool fsck)"
vpool fsck >/dev/null
check_eq "fsck exits 1 on a problem" "1" "$?"
virsh_on "$HOSTA" undefine m-intruder >/dev/null

cp "$d1/manifest.json" "$WORK/manifest.save"
jq '.owner = "vm:m2-002"' "$WORK/manifest.save" >"$d1/manifest.json"
check "fsck: manifest owner disagrees with the catalog" grep -q "owner-mismatch: $d1" <<<"$(vpool fsck)"
cp "$WORK/manifest.save" "$d1/manifest.json"

ov1=$(overlay_of m2-001)
mv "$ov1" "$WORK/overlay.save"
qemu-img create -q -f qcow2 -b "$GUEST_DIR/master.qcow2" -F qcow2 "$ov1"
check "fsck: overlay with a foreign backing file" grep -q "foreign-backing: $d1" <<<"$(vpool fsck)"
mv "$WORK/overlay.save" "$ov1"
check_eq "fsck clean once every plant is gone" "" "$(fsck_kinds)"

# --- 7. env drain moves two pools off an env ---------------------------------------
vpool pool rm m5 --force >/dev/null
vpool pool create md1 --image desktop --env "$HOSTA" --profile pc-ide --size 2 >/dev/null || bail "create md1"
vpool pool create md2 --image guest --env "$HOSTA" --profile pc-ide --size 1 >/dev/null || bail "create md2"
out=$(vpool env drain "$HOSTA" --to "$HOSTB" 2>&1)
check_eq "env drain exits 0" "0" "$?"
check_eq "drain ran one migration per pool" "2" "$(grep -c '^migration [0-9]*$' <<<"$out")"
check_eq "no pool left on host A" "0" "$(vpool pool list --json | jq "[.[] | select(.env == \"$HOSTA\")] | length")"
check_eq "host A has no domain left" "" "$(virsh_on "$HOSTA" list --all --name | grep -E '^m[0-9d]' | xargs)"
check_eq "host B has md1 and md2" "md1-001 md1-002 md2-001" "$(virsh_on "$HOSTB" list --all --name | grep '^md' | sort | xargs)"
check_eq "fsck clean after drain" "" "$(fsck_kinds)"

# --- 8. one VM failing does not stop the others -------------------------------------
vpool pool create m8 --image desktop --env "$HOSTA" --profile pc-ide --size 3 --start >/dev/null || bail "create m8"
check "m8 guests up" wait_boot 180 1 m8-001 m8-002 m8-003
vpool profile add huge --machine q35 --disk-bus virtio --nic virtio --vcpus 1 --memory 1T >/dev/null
expect_fail "target without the memory for the running VMs" 1 "env '$HOSTB' cannot hold 3 running VMs of 1048576 MiB \\(3145728 MiB in all\\): its 1 usable host has [0-9]+ MiB free, room for 0 of them" \
    vpool migrate m8 --to "$HOSTB" --profile huge
# Some process (a backup agent, say) holds a lock on m8-002's overlay:
# that one VM is not handed over (the lease check); preflight does not look
# at locks, since the source's own QEMU holds them until it stops.
lock_disk "$(overlay_of m8-002)"
locker=$LOCKER
vpool migrate m8 --to "$HOSTB" --shutdown-timeout 60 >"$WORK/out" 2>"$WORK/err"
check_eq "a migration with a failing VM exits 1" "1" "$?"
id8=$(awk '/^migration [0-9]+$/ {print $2; exit}' "$WORK/out")
check "the failure names the VM" grep -q "m8-002" "$WORK/err"
check_eq "it ends partial" "partial" "$(vpool migrate status "$id8" --json | jq -r .state)"
check_eq "the other VMs landed" "done done" \
    "$(vpool migrate status "$id8" --json | jq -r '.vms[] | select(.vm != "m8-002") | .step' | xargs)"
check "status shows the failed VM's error: the lock and its holder" grep -q "still locked by pid $locker (python3)" \
    <<<"$(vpool migrate status "$id8" --json | jq -r '.vms[] | select(.vm == "m8-002") | .error')"
kill "$locker"
wait "$locker" 2>/dev/null
check "resume finishes the failed VM" vpool migrate resume "$id8"
check "m8 guests run on host B" wait_boot 180 2 m8-001 m8-002 m8-003
check_eq "fsck clean after the partial migration was resumed" "" "$(fsck_kinds)"

for p in m1 m2 m8 md1 md2; do vpool pool rm "$p" --force >/dev/null; done
finish
