#!/bin/bash
# Live move of a running guest between two hosts of one env (the primitive
# `env host drain` moves each running VM with): its delta's disks handed to
# the next generation's names by hard links, the guest never stopping.
# Checked as a user would: the guest's boot count and console (one boot,
# no crash), its disk written after the move, the files' names, inodes and
# owners, the domains on both hosts; and a move the destination refuses
# leaves the guest running on the source with its files as they were.
. "$(dirname "$0")/lib.sh"

TEST_PREFIX=live
LIVE_MOVE=${VPOOL_LIVE_MOVE:-$(dirname "$VPOOL_BIN")/../../tests/tools/vp-live-move}
require_hosts "$HOSTA" "$HOSTB"
[ -x "$LIVE_MOVE" ] || bail "vp-live-move missing at $LIVE_MOVE (meson builds it in tests/tools)"
setup_workdir
standard_setup
add_desktop_image
A=$(uri_of "$HOSTA")
B=$(uri_of "$HOSTB")
vm=live-001

check "pool live (overlay and data disk) created and started on host A" \
    vpool pool create live --image desktop --env "$HOSTA" --profile pc-ide --size 1 --data-disk 16M --start
check "$vm booted on host A" wait_boot 120 1 "$vm"
t_boot=$SECONDS
d=$(delta_of "$vm")
ov=$d/overlay.qcow2
data=$d/$(jq -r .data_disk "$d/manifest.json")
check_eq "the delta's disks carry no generation yet" "$d/data.qcow2" "$data"
ov_inode=$(stat -c %i "$ov")
data_inode=$(stat -c %i "$data")
owner=$(stat -c %U:%G "$ov")
uuid=$(virsh_on "$HOSTA" domuuid "$vm")

# --- 1. a destination that refuses: still on the source, files as they were -------
# A stale definition of the same name (another UUID) on host B: libvirt
# refuses the incoming domain before the source pauses.
virsh_on "$HOSTB" define /dev/stdin >/dev/null <<XML || bail "cannot define the stale domain"
<domain type='qemu'><name>$vm</name><uuid>00000000-0000-4000-8000-00000000abcd</uuid>
<memory unit='MiB'>64</memory><os><type arch='x86_64' machine='pc'>hvm</type></os></domain>
XML
out=$("$LIVE_MOVE" "$A" "$B" "$vm" 2 "$ov=$d/overlay.g2.qcow2" "$data=$d/data.g2.qcow2" 2>&1)
rc=$?
diag "refused: $out"
check_eq "a refused move exits 1" 1 "$rc"
if [[ $out =~ "still runs on the source" ]] && [[ $out =~ "already" ]]; then
    ok "its error says the domain still runs on the source, with libvirt's reason"
else
    not_ok "its error says the domain still runs on the source, with libvirt's reason" "$out"
fi
check_eq "$vm still runs on host A" running "$(virsh_on "$HOSTA" domstate "$vm")"
check_eq "the delta holds its old names only" "data.qcow2 manifest.json overlay.qcow2" "$(ls "$d" | xargs)"
virsh_on "$HOSTB" undefine "$vm" >/dev/null || bail "cannot undefine the stale domain"

# --- 2. the move --------------------------------------------------------------------
# Under way long enough for the guest to have written its disk before.
sleep 6
t0=$SECONDS
check "$vm moved live from host A to host B" \
    "$LIVE_MOVE" "$A" "$B" "$vm" 2 "$ov=$d/overlay.g2.qcow2" "$data=$d/data.g2.qcow2"
t_moved=$SECONDS
diag "move took $((t_moved - t0)) s"
check_eq "$vm runs on host B" running "$(virsh_on "$HOSTB" domstate "$vm")"
check_eq "$vm is gone from host A" "" "$(virsh_on "$HOSTA" list --all --name | grep -x "$vm")"
check_eq "same UUID on host B" "$uuid" "$(virsh_on "$HOSTB" domuuid "$vm")"
check_eq "the delta holds the new names only" "data.g2.qcow2 manifest.json overlay.g2.qcow2" "$(ls "$d" | xargs)"
check_eq "the overlay is the same file (inode)" "$ov_inode" "$(stat -c %i "$d/overlay.g2.qcow2")"
check_eq "the data disk is the same file (inode)" "$data_inode" "$(stat -c %i "$d/data.g2.qcow2")"
check_eq "one name per disk (link count 1)" "1 1" "$(stat -c %h "$d/overlay.g2.qcow2" "$d/data.g2.qcow2" | xargs)"
# The source restores the owner of what its QEMU had open once it is done;
# the destination's QEMU, running as the qemu user, writes on.
check_eq "the overlay's owner is still QEMU's ($owner)" "$owner" "$(stat -c %U:%G "$d/overlay.g2.qcow2")"
check_eq "the data disk's owner is still QEMU's ($owner)" "$owner" "$(stat -c %U:%G "$d/data.g2.qcow2")"
persist=$(virsh_on "$HOSTB" dumpxml --inactive "$vm")
check_eq "host B's definition names the new overlay and data disk" \
    "$d/overlay.g2.qcow2 $d/data.g2.qcow2" \
    "$(grep -o "<source file='$d/[^']*'" <<<"$persist" | sed "s/<source file='//; s/'$//" | xargs)"
check_eq "host B's definition carries generation 2" "<vpool:generation>2</vpool:generation>" \
    "$(grep -o '<vpool:generation>[0-9]*</vpool:generation>' <<<"$persist")"

# --- 3. the guest lived on ------------------------------------------------------------
# Two of its 5 s heartbeats on the disk after the move, then a clean shutdown.
sleep 11
check_eq "one boot line on the console, boot=1 (no reboot)" "1 1" \
    "$(grep -ac 'VPOOL-GUEST uuid=' "$STORAGE/logs/$vm.log") $(console_field "$vm" boot)"
check_eq "no kernel panic on the console" 0 "$(grep -ac 'Kernel panic' "$STORAGE/logs/$vm.log")"
virsh_on "$HOSTB" shutdown "$vm" >/dev/null
deadline=$((SECONDS + 60))
while [ "$(virsh_on "$HOSTB" domstate "$vm")" != "shut off" ] && [ $SECONDS -lt $deadline ]; do sleep 0.5; done
check_eq "$vm shut down cleanly on host B" "VPOOL-GUEST shutdown uuid=$uuid" \
    "$(grep -a 'VPOOL-GUEST shutdown' "$STORAGE/logs/$vm.log" | tail -1 | tr -d '\r')"
qemu-img convert -f qcow2 -O raw "$d/overlay.g2.qcow2" "$WORK/disk.raw"
bootlog=$(debugfs -R "cat /bootlog" "$WORK/disk.raw" 2>/dev/null)
check_eq "the disk counts one boot" "1" "$(debugfs -R "cat /bootcount" "$WORK/disk.raw" 2>/dev/null)"
# The guest's uptime runs from its kernel's start, a few seconds before its
# boot line: a heartbeat past (move's end - boot line) + 6 s was written
# on host B.
after=$((t_moved - t_boot + 6))
last=$(grep -o '^alive boot=1 uptime=[0-9]*' <<<"$bootlog" | tail -1 | sed 's/.*uptime=//')
if [ -n "$last" ] && [ "$last" -ge "$after" ]; then
    ok "the guest wrote its disk after the move (last heartbeat at uptime $last s >= $after s)"
else
    not_ok "the guest wrote its disk after the move" "last heartbeat uptime '$last', expected >= $after" "$bootlog"
fi
check_eq "every heartbeat is of boot 1" "" "$(grep '^alive' <<<"$bootlog" | grep -v '^alive boot=1 ')"

# --- 4. vpool's own live moves: a host's drain, a crash, an abort ------------------------
# One env of both hosts; the pool goes to host a while b is in maintenance.
check "env duo of hosts a (A) and b (B)" vpool env add duo --domain-type qemu --host "a=$A" --host "b=$B"
check "host b in maintenance (a drain of a host holding nothing)" vpool env host drain duo b
check "pool livepair created on host a and started" \
    vpool pool create livepair --image desktop --env duo --profile pc-ide --size 2 --start
check "host b out of maintenance" vpool env host resume duo b
check "both livepair guests booted" wait_boot 120 1 livepair-001 livepair-002
check_eq "both on host a" "a a" "$(vpool vm list --pool livepair --json | jq -r '.[].host' | xargs)"
# Killed right after the first VM's live move, before its step was recorded.
VPOOL_FAULT=migrate.moved-live vpool env host drain duo a >/dev/null 2>"$WORK/drain.err"
rc=$?
check_eq "the drain was killed at migrate.moved-live" "137" "$rc$([ "$rc" = 137 ] || sed 's/^/ /' "$WORK/drain.err")"
check_eq "host a is in maintenance" true "$(vpool env host list duo --json | jq '.[] | select(.name == "a") | .maintenance')"
id=$(vpool migrate list --json | jq -r '[.[] | select(.pool == "livepair")] | last | .id')
check "resume finishes the drain" vpool migrate resume "$id"
check_eq "the migration is done" done "$(vpool migrate status "$id" --json | jq -r .state)"
check_eq "both livepair VMs on host b" "b b" "$(vpool vm list --pool livepair --json | jq -r '.[].host' | xargs)"
check_eq "both run on host B, none on host A" "running running|" \
    "$(virsh_on "$HOSTB" domstate livepair-001) $(virsh_on "$HOSTB" domstate livepair-002)|$(domains_on "$HOSTA" livepair)"
steps=$(vpool history --json | jq -r --arg id "$id" '.[] | select((.migration|tostring) == $id and .vm != null) |
    "\(.vm) \(.step) \(.detail)"')
diag "$steps"
check_eq "the journal says both moved live" 2 "$(grep -c 'moved live' <<<"$(grep ' done ' <<<"$steps")")"
check_eq "both guests never rebooted (boot=1, one boot line each)" "1 1 1 1" \
    "$(console_field livepair-001 boot) $(console_field livepair-002 boot) $(grep -ac 'VPOOL-GUEST uuid=' "$STORAGE/logs/livepair-001.log") $(grep -ac 'VPOOL-GUEST uuid=' "$STORAGE/logs/livepair-002.log")"
for v in livepair-001 livepair-002; do
    g=$(vpool vm show "$v" --json | jq -r .generation)
    check_eq "$v's delta holds its generation's names only" "manifest.json overlay.g$g.qcow2" "$(ls "$(delta_of "$v")" | xargs)"
done
# A resume of a live move caught after its lock: the VM still runs on its
# source (the lock changed no name it runs under) and moves live from there.
check "host a out of maintenance" vpool env host resume duo a
VPOOL_FAULT=migrate.locked vpool env host drain duo b --to a --parallel 1 >/dev/null 2>"$WORK/drain.err"
rc=$?
check_eq "a drain one VM at a time, killed after its first live lock" "137" \
    "$rc$([ "$rc" = 137 ] || sed 's/^/ /' "$WORK/drain.err")"
id=$(vpool migrate list --json | jq -r '[.[] | select(.pool == "livepair")] | last | .id')
check "resume moves the locked VM on from its source" vpool migrate resume "$id"
check_eq "that migration is done" done "$(vpool migrate status "$id" --json | jq -r .state)"
check_eq "both livepair VMs on host a" "a a" "$(vpool vm list --pool livepair --json | jq -r '.[].host' | xargs)"
check_eq "the journal says both moved live again" 2 "$(vpool history --json | jq -r --arg id "$id" \
    '.[] | select((.migration|tostring) == $id and .step == "done") | .detail' | grep -c 'moved live')"
check_eq "both run on host A, none on host B" "running running|" \
    "$(virsh_on "$HOSTA" domstate livepair-001) $(virsh_on "$HOSTA" domstate livepair-002)|$(domains_on "$HOSTB" livepair)"
check "host b out of maintenance" vpool env host resume duo b

# An abort of a live move caught after its lock: the VM comes back to its
# source, shut down and started again there; the names linked for the
# target are gone.
VPOOL_FAULT=migrate.locked vpool env host drain duo a --to b >/dev/null 2>"$WORK/drain.err"
rc=$?
check_eq "the drain was killed after a live lock" "137" "$rc$([ "$rc" = 137 ] || sed 's/^/ /' "$WORK/drain.err")"
id=$(vpool migrate list --json | jq -r '[.[] | select(.pool == "livepair")] | last | .id')
check "abort returns the VM" vpool migrate abort "$id"
check_eq "the migration is aborted" aborted "$(vpool migrate status "$id" --json | jq -r .state)"
check_eq "both livepair VMs on host a again" "a a" "$(vpool vm list --pool livepair --json | jq -r '.[].host' | xargs)"
check "every livepair guest runs again on host A" wait_boot 120 2 livepair-001
check_eq "the returned VM's delta holds its own names only" \
    "manifest.json overlay.g$(vpool vm show livepair-001 --json | jq -r .generation).qcow2" "$(ls "$(delta_of livepair-001)" | xargs)"
check_eq "host B holds no livepair domain" "" "$(domains_on "$HOSTB" livepair)"

finish
