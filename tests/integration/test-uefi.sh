#!/bin/bash
# UEFI VMs (q35 + OVMF, direct kernel boot): a guest boots under UEFI before
# and after a move, its variable store moving with its delta; a VM that
# never booted has no variable store yet (libvirt makes it at the first
# start, from the template of the firmware it picks on that host) and
# still migrates, aborts and boots.
. "$(dirname "$0")/lib.sh"

TEST_PREFIX=uefi
require_hosts "$HOSTA" "$HOSTB"
setup_workdir
standard_setup
vpool image add uguest --file "$GUEST_DIR/master.qcow2" --kernel "$GUEST_DIR/vmlinuz" \
    --initrd "$GUEST_DIR/initrd.img" --cmdline "$(cat "$GUEST_DIR/cmdline")" --firmware bios,uefi >/dev/null ||
    bail "image add uguest failed"
vpool profile add q35-uefi --machine q35 --disk-bus sata --nic e1000 --vcpus 1 --memory 256M \
    --firmware uefi >/dev/null || bail "profile add q35-uefi failed"
vpool profile add q35-uefi-virtio --machine q35 --disk-bus virtio --nic virtio --vcpus 1 --memory 256M \
    --firmware uefi >/dev/null || bail "profile add q35-uefi-virtio failed"

# OVMF under TCG takes a while to reach the kernel.
boot_timeout=600

# The variable store of VM, by the name its manifest gives ("" for none).
nvram_of() {
    local d
    d=$(vpool vm show "$1" --json | jq -r .delta_path)
    echo "$d/$(jq -r .nvram "$d/manifest.json")"
}

# --- 1. a UEFI guest boots, moves with its variable store, boots again ------------
vm=uefi1-001
check "pool uefi1 created and started on host A (UEFI)" \
    vpool pool create uefi1 --image uguest --env "$HOSTA" --profile q35-uefi --size 1 --start
check "$vm booted under UEFI on host A" wait_boot "$boot_timeout" 1 "$vm"
check "$vm powers off by itself" wait_shutoff 120 "$vm"
check "$vm domain asks for UEFI firmware" grep -q "<os firmware='efi'>" <<<"$(virsh_on "$HOSTA" dumpxml --inactive "$vm")"
nv=$(nvram_of "$vm")
check "libvirt made the variable store inside the delta" test -f "$nv"
nv_inode=$(stat -c %i "$nv")
nv_sha=$(sha256sum "$nv" | cut -d' ' -f1)
check "migrate uefi1 to host B (virtio)" vpool migrate uefi1 --to "$HOSTB" --profile q35-uefi-virtio
check_eq "host B has the domain" "$vm" "$(domains_on "$HOSTB" uefi1)"
nv2=$(nvram_of "$vm")
check "the variable store took the new generation's name" test "$nv2" != "$nv"
check_eq "the variable store is the same file (renamed, not copied)" "$nv_inode" "$(stat -c %i "$nv2")"
check_eq "its bytes are unchanged" "$nv_sha" "$(sha256sum "$nv2" | cut -d' ' -f1)"
check "host B's domain names that variable store" grep -q "<nvram[^>]*>$nv2</nvram>" \
    <<<"$(virsh_on "$HOSTB" dumpxml --inactive "$vm")"
check "vm start $vm on host B" vpool vm start "$vm"
check "$vm booted again under UEFI on host B (boot 2)" wait_boot "$boot_timeout" 2 "$vm"
check_eq "$vm found its disk on virtio after the move" "vda" "$(console_field "$vm" disk)"
check "$vm powers off by itself on host B" wait_shutoff 120 "$vm"

# --- 2. a UEFI VM that never booted: migrate, abort, boot --------------------------
vm=uefi2-001
check "pool uefi2 created on host A, never started" \
    vpool pool create uefi2 --image uguest --env "$HOSTA" --profile q35-uefi --size 1
nv=$(nvram_of "$vm")
check "no variable store before the first start" test ! -e "$nv"
check "migrate --dry-run of the never-booted VM passes preflight" \
    vpool migrate uefi2 --to "$HOSTB" --dry-run
check "migrate uefi2 to host B" vpool migrate uefi2 --to "$HOSTB"
check_eq "host A keeps no domain of uefi2" "" "$(domains_on "$HOSTA" uefi2)"
check_eq "host B has the domain" "$vm" "$(domains_on "$HOSTB" uefi2)"
check_eq "the manifest hands the VM over at generation 3" "vm:$vm 3" \
    "$(jq -r '"\(.owner) \(.generation)"' "$(vpool vm show "$vm" --json | jq -r .delta_path)/manifest.json")"
check "still no variable store" test ! -e "$(nvram_of "$vm")"
check "fsck is clean after the move" vpool fsck

# Back to host A, killed once the delta is locked, then aborted.
VPOOL_FAULT=migrate.locked:1 vpool migrate uefi2 --to "$HOSTA" >"$WORK/out" 2>&1
id=$(vpool migrate list --json | jq -r '[.[] | select(.pool == "uefi2")] | max_by(.id) | .id')
check_eq "the move back stopped at locked" "locked" \
    "$(vpool migrate status "$id" --json | jq -r '.vms[0].step')"
check "abort $id returns the never-booted VM" vpool migrate abort "$id"
check_eq "host B has the domain again" "$vm" "$(domains_on "$HOSTB" uefi2)"
check_eq "host A has none" "" "$(domains_on "$HOSTA" uefi2)"
check_eq "the manifest is the VM's again" "vm:$vm" \
    "$(jq -r .owner "$(vpool vm show "$vm" --json | jq -r .delta_path)/manifest.json")"
check "vm start $vm after the abort" vpool vm start "$vm"
check "$vm boots under UEFI for the first time" wait_boot "$boot_timeout" 1 "$vm"
check "$vm powers off by itself" wait_shutoff 120 "$vm"
check "the variable store now exists" test -f "$(nvram_of "$vm")"
check "fsck is clean" vpool fsck
check "pool rm uefi1" vpool pool rm uefi1
check "pool rm uefi2" vpool pool rm uefi2
finish
