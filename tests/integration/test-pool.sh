#!/bin/bash
# A pool of 3 VMs on host A (pc + IDE): deltas, domains, boots, boot
# counts, the master untouched, and a clean removal.
. "$(dirname "$0")/lib.sh"

TEST_PREFIX=tpool
require_hosts "$HOSTA" "$HOSTB"
setup_workdir
standard_setup

vms="tpool-001 tpool-002 tpool-003"
check "pool create tpool --size 3" vpool pool create tpool --image guest --env "$HOSTA" --profile pc-ide --size 3

check_eq "host A lists the 3 domains" "tpool-001 tpool-002 tpool-003" "$(virsh_on "$HOSTA" list --all --name | grep '^tpool-' | sort | xargs)"
check_eq "host B lists none of them" "" "$(virsh_on "$HOSTB" list --all --name | grep '^tpool-' | xargs)"
check_eq "catalog lists 3 VMs" "3" "$(vpool vm list --pool tpool --json | jq length)"

master=$STORAGE/images/guest.qcow2
master_sha=$(sha256sum "$master" | cut -d' ' -f1)
check_eq "image record holds the master's digest" "$master_sha" "$(vpool image show guest --json | jq -r .sha256)"

for vm in $vms; do
    # The collection's directory carries the VM's UUID, new at every create.
    d=$STORAGE/deltas/tpool/$vm.$(vpool vm show "$vm" --json | jq -r .uuid)
    info=$(qemu-img info --output=json -U "$d/overlay.qcow2")
    check_eq "$vm overlay backs onto the master by absolute path" "$master" "$(jq -r '."backing-filename"' <<<"$info")"
    check_eq "$vm overlay names the backing format" "qcow2" "$(jq -r '."backing-filename-format"' <<<"$info")"
    m=$(cat "$d/manifest.json")
    check_eq "$vm manifest owner" "vm:$vm" "$(jq -r .owner <<<"$m")"
    check_eq "$vm manifest generation" "1" "$(jq -r .generation <<<"$m")"
    show=$(vpool vm show "$vm" --json)
    check_eq "$vm show: env" "$HOSTA" "$(jq -r .env <<<"$show")"
    check_eq "$vm show: state" "shut off" "$(jq -r .state <<<"$show")"
    check_eq "$vm show: delta path" "$d" "$(jq -r .delta_path <<<"$show")"
    check_eq "$vm show: manifest UUID = catalog UUID" "$(jq -r .identity.uuid <<<"$m")" "$(jq -r .uuid <<<"$show")"
    check_eq "$vm show: MAC" "$(jq -r '.identity.macs[0]' <<<"$m")" "$(jq -r '.macs[0]' <<<"$show")"
    check_eq "$vm show: console log" "$STORAGE/logs/$vm.log" "$(jq -r .console_log <<<"$show")"
    xml=$(virsh_on "$HOSTA" dumpxml --inactive "$vm")
    check "$vm domain XML: master is the explicit backing store" grep -q "<source file='$master'" <<<"$xml"
    check "$vm domain XML: vpool metadata names the pool" grep -q "<vpool:pool>tpool</vpool:pool>" <<<"$xml"
    check "$vm domain XML: UUID" grep -q "<uuid>$(jq -r .uuid <<<"$show")</uuid>" <<<"$xml"
    check "$vm domain XML: IDE disk on machine pc" grep -Eq "bus='ide'" <<<"$xml"
done

for boot in 1 2; do
    check "pool start tpool (boot $boot)" vpool pool start tpool
    check "guests power off after boot $boot" wait_shutoff 120 $vms
    for vm in $vms; do
        uuid=$(vpool vm show "$vm" --json | jq -r .uuid)
        diag "$(console_line "$vm")"
        check_eq "$vm console shows its own UUID (boot $boot)" "$uuid" "$(console_field "$vm" uuid)"
        check_eq "$vm console shows boot count $boot" "$boot" "$(console_field "$vm" boot)"
        check_eq "$vm guest found its disk as sda (IDE via libata)" "sda" "$(console_field "$vm" disk)"
        check_eq "$vm disk remembers its first owner" "$uuid" "$(console_field "$vm" owner)"
    done
done

check_eq "master image bytes unchanged after boots" "$master_sha" "$(sha256sum "$master" | cut -d' ' -f1)"
check "image verify agrees" vpool image verify guest --quiet

# A pool with a data disk: the disk lives in the collection and the domain has it.
check "pool create with --data-disk" vpool pool create tpool2 --image guest --env "$HOSTA" --profile pc-ide --size 1 --data-disk 16M
check "data disk in the collection" test -f "$(delta_of tpool2-001)/data.qcow2"
check "data disk attached to the domain" grep -q "$(delta_of tpool2-001)/data.qcow2" <<<"$(virsh_on "$HOSTA" dumpxml tpool2-001)"
check "pool rm tpool2" vpool pool rm tpool2

check "pool rm tpool" vpool pool rm tpool
check_eq "no domain of the pool left on host A" "" "$(virsh_on "$HOSTA" list --all --name | grep '^tpool' | xargs)"
check "no collection left" test ! -e "$STORAGE/deltas/tpool"
check_eq "no VM rows left" "0" "$(vpool vm list --json | jq length)"
check_eq "no pool rows left" "0" "$(vpool pool list --json | jq length)"
check_eq "master image still unchanged" "$master_sha" "$(sha256sum "$master" | cut -d' ' -f1)"

finish
