#!/bin/bash
# Hosts that die and come back. A source whose libvirtd is gone while its
# guests still run: vpool refuses to hand their deltas over, --source-fenced
# lets it proceed, and QEMU's image lock still keeps the targets from
# starting while the old processes hold the disks (never two writers). The
# stale host returns with its old definitions: they cannot reach the deltas,
# fsck names them, fsck --repair removes them and nothing else. A target that
# dies mid-migration: resume after it returns, or abort without it.
. "$(dirname "$0")/lib.sh"

TEST_PREFIX=f
HOSTA=hostc
HOSTB=hostd
hosts_dir=${VPOOL_HOSTS_DIR:-/var/lib/vpool-hosts}
"$HOSTS_SH" up "$HOSTA" "$HOSTB" >/dev/null || bail "cannot start $HOSTA $HOSTB"
setup_workdir
trap 'cleanup_workdir; "$HOSTS_SH" down "$HOSTA" "$HOSTB" >/dev/null 2>&1' EXIT
vpool init --storage "$STORAGE" >/dev/null
vpool env add "$HOSTA" --uri "$(uri_of "$HOSTA")" --domain-type qemu >/dev/null
vpool env add "$HOSTB" --uri "$(uri_of "$HOSTB")" --domain-type qemu >/dev/null
vpool image add guest --file "$GUEST_DIR/master.qcow2" --kernel "$GUEST_DIR/vmlinuz" \
    --initrd "$GUEST_DIR/initrd.img" --cmdline "$(cat "$GUEST_DIR/cmdline")" >/dev/null
add_desktop_image
vpool profile add pc-ide --machine pc --disk-bus ide --nic e1000 --vcpus 1 --memory 128M >/dev/null

qemu_of() { pgrep -fc "guest=$1," || true; }

# --- the source's libvirtd dies while its guests run ------------------------------
vpool pool create f1 --image desktop --env "$HOSTA" --profile pc-ide --size 2 --start >/dev/null || bail "create f1"
check "f1 guests up on $HOSTA" wait_boot 180 1 f1-001 f1-002
kill -9 "$(cat "$hosts_dir/$HOSTA/libvirtd.pid")"
sleep 1
check_eq "the guests' QEMU processes outlive libvirtd" "1 1" "$(qemu_of f1-001) $(qemu_of f1-002)"
expect_fail "an unreachable source is not handed over" 1 \
    "env '$HOSTA': cannot connect.*vm 'f1-001' may still run there and hold its delta.*--source-fenced" \
    vpool migrate f1 --to "$HOSTB"

vpool migrate f1 --to "$HOSTB" --source-fenced >"$WORK/out" 2>"$WORK/err"
check_eq "with --source-fenced, the targets refuse to start: exit 1" "1" "$?"
id=$(awk '/^migration [0-9]+$/ {print $2; exit}' "$WORK/out")
check "the refusal says the disk is locked by the source's QEMU" grep -q "locked by another QEMU process" "$WORK/err"
for vm in f1-001 f1-002; do
    check_eq "$vm: not running on $HOSTB" "shut off" "$(virsh_on "$HOSTB" domstate "$vm")"
    check_eq "$vm: one QEMU process only (never two writers)" "1" "$(qemu_of "$vm")"
done
check_eq "the migration is partial, VMs handed over, waiting to start" "partial handed_over handed_over" \
    "$(vpool migrate status "$id" --json | jq -r '"\(.state) \([.vms[].step] | join(" "))"')"

# The host is powered off for real: its processes die with it.
"$HOSTS_SH" down "$HOSTA" >/dev/null
check_eq "source processes gone" "0 0" "$(qemu_of f1-001) $(qemu_of f1-002)"
check "resume starts the VMs on $HOSTB" vpool migrate resume "$id"
check "f1 guests booted on $HOSTB" wait_boot 180 2 f1-001 f1-002
for vm in f1-001 f1-002; do
    check_eq "$vm reads its own data on $HOSTB" "$(vpool vm show "$vm" --json | jq -r .uuid)" "$(console_field "$vm" owner)"
done
check "pool f1 stops" vpool pool stop f1 --timeout 60

# --- the stale host returns ----------------------------------------------------------
"$HOSTS_SH" up "$HOSTA" >/dev/null || bail "cannot restart $HOSTA"
check_eq "$HOSTA came back with its old definitions" "f1-001 f1-002" \
    "$(virsh_on "$HOSTA" list --all --name | grep '^f1-' | sort | xargs)"
ov=$(overlay_of f1-001)
sum=$(sha256sum "$ov")
virsh_on "$HOSTA" start f1-001 >/dev/null 2>"$WORK/err"
check_eq "starting a stale definition fails" "shut off" "$(virsh_on "$HOSTA" domstate f1-001)"
check "it fails because its disk is no longer there" grep -q "overlay.qcow2" "$WORK/err"
check_eq "the delta's bytes are unchanged" "$sum" "$(sha256sum "$ov")"
out=$(vpool fsck)
check_eq "fsck exits 1" "1" "$?"
check "fsck names stale domain $HOSTA/f1-001" grep -q "stale-domain: $HOSTA/f1-001" <<<"$out"
check "fsck names stale domain $HOSTA/f1-002" grep -q "stale-domain: $HOSTA/f1-002" <<<"$out"
virsh_on "$HOSTA" define /dev/stdin >/dev/null <<XML
<domain type='qemu'><name>f-bystander</name><memory unit='MiB'>64</memory>
<os><type arch='x86_64'>hvm</type></os></domain>
XML
check "fsck --repair" vpool fsck --repair
check_eq "the stale domains are gone" "" "$(virsh_on "$HOSTA" list --all --name | grep '^f1-' | xargs)"
check_eq "a domain that is not vpool's stays" "f-bystander" "$(virsh_on "$HOSTA" list --all --name | grep '^f-bystander')"
check_eq "the VMs stay defined on $HOSTB" "f1-001 f1-002" "$(virsh_on "$HOSTB" list --all --name | grep '^f1-' | sort | xargs)"
check_eq "fsck clean after the repair" "" "$(fsck_kinds)"
virsh_on "$HOSTA" undefine f-bystander >/dev/null

# --- the target dies mid-migration: resume once it is back ------------------------------
vpool pool create f2 --image guest --env "$HOSTA" --profile pc-ide --size 3 >/dev/null || bail "create f2"
VPOOL_FAULT=migrate.done:1 vpool migrate f2 --to "$HOSTB" --parallel 1 >"$WORK/out" 2>&1
id=$(awk '/^migration [0-9]+$/ {print $2; exit}' "$WORK/out")
"$HOSTS_SH" down "$HOSTB" >/dev/null
vpool migrate resume "$id" >/dev/null 2>"$WORK/err"
check_eq "resume while the target is down: exit 1" "1" "$?"
check "it says the target is unreachable" grep -q "env '$HOSTB' is unreachable" "$WORK/err"
check_eq "the VMs not handed over are untouched on the source" "f2-002 f2-003" \
    "$(virsh_on "$HOSTA" list --all --name | grep '^f2-' | sort | xargs)"
"$HOSTS_SH" up "$HOSTB" >/dev/null || bail "cannot restart $HOSTB"
check "resume after the target returned" vpool migrate resume "$id"
check_eq "all of f2 on $HOSTB" "f2-001 f2-002 f2-003" "$(virsh_on "$HOSTB" list --all --name | grep '^f2-' | sort | xargs)"
check_eq "fsck clean" "" "$(fsck_kinds)"

# --- the target dies mid-migration: abort without it ---------------------------------------
vpool pool create f3 --image guest --env "$HOSTA" --profile pc-ide --size 3 >/dev/null || bail "create f3"
VPOOL_FAULT=migrate.provisioned:2 vpool migrate f3 --to "$HOSTB" --parallel 1 >"$WORK/out" 2>&1
id=$(awk '/^migration [0-9]+$/ {print $2; exit}' "$WORK/out")
"$HOSTS_SH" down "$HOSTB" >/dev/null
check "abort while the target is down" vpool migrate abort "$id"
check_eq "f3-002 and f3-003 back on $HOSTA" "f3-002 f3-003" \
    "$(virsh_on "$HOSTA" list --all --name | grep '^f3-' | sort | xargs)"
"$HOSTS_SH" up "$HOSTB" >/dev/null || bail "cannot restart $HOSTB"
check "fsck names the provisioned domain left on $HOSTB" grep -q "stale-domain: $HOSTB/f3-002" <<<"$(vpool fsck)"
check "fsck --repair removes it" vpool fsck --repair
check_eq "f3-001 (handed over) stays on $HOSTB, alone" "f3-001" \
    "$(virsh_on "$HOSTB" list --all --name | grep '^f3-' | sort | xargs)"
check_eq "fsck clean" "" "$(fsck_kinds)"

for p in f1 f2 f3; do vpool pool rm "$p" --force >/dev/null; done
finish
