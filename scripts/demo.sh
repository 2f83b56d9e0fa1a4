#!/bin/bash
# The vpool demo, from a fresh Debian 12 machine: installs what it needs,
# builds vpool and the test guest, brings up two local hypervisor hosts,
# creates a pool of VMs from one master image, boots it twice and shows
# that each VM's changes live in its own user delta collection.
# Leaves the hosts running for exploration; `scripts/hosts.sh down hosta
# hostb` stops them.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

demo=${VPOOL_DEMO_DIR:-/var/lib/vpool-demo}
export VPOOL_CATALOG=$demo/catalog.db
vpool=$top/build/src/cli/vpool
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ vpool %s\n' "$*"; "$vpool" "$@"; }

say "installing dependencies and building"
scripts/deps.sh
scripts/build.sh
scripts/build-guest.sh build/guest

say "bringing up two hypervisor hosts"
scripts/hosts.sh up hosta hostb
uri_a=$(scripts/hosts.sh uri hosta)
uri_b=$(scripts/hosts.sh uri hostb)

# A demo run starts from nothing: forget an earlier run's domains and files.
for uri in "$uri_a" "$uri_b"; do
    for d in $(virsh -q -c "$uri" list --all --name); do
        case $d in desk-*)
            virsh -q -c "$uri" destroy "$d" >/dev/null 2>&1 || true
            virsh -q -c "$uri" undefine --nvram "$d" >/dev/null ;;
        esac
    done
done
rm -rf "$demo"
mkdir -p "$demo"
chmod 755 "$demo"

say "catalog, environments, master image, hardware profiles"
run init --storage "$demo/storage"
run env add hosta --uri "$uri_a"
run env add hostb --uri "$uri_b" --domain-type qemu
# The test guest as a desktop: it stays up until an ACPI shutdown.
run image add desktop --file build/guest/master.qcow2 --kernel build/guest/vmlinuz \
    --initrd build/guest/initrd.img --cmdline "$(cat build/guest/cmdline) vpool.stay=1"
run profile add pc-ide --machine pc --disk-bus ide --nic e1000 --vcpus 1 --memory 256M
run profile add q35-virtio --machine q35 --disk-bus virtio --nic virtio --vcpus 2 --memory 384M

vms="desk-001 desk-002 desk-003"
boot_line() { grep -a 'VPOOL-GUEST uuid=' "$demo/storage/logs/$1.log" 2>/dev/null | tail -1 | tr -d '\r'; }
wait_boot() {
    local vm
    for vm in $vms; do
        for _ in $(seq 360); do
            boot_line "$vm" | grep -q "boot=$1 " && break
            sleep 0.5
        done
        boot_line "$vm"
    done
}

say "a pool of 3 running VMs on hosta (pc, IDE, e1000), each with its own user delta collection"
run pool create desk --image desktop --env hosta --profile pc-ide --size 3 --start
find "$demo/storage/deltas" -type f | sort
echo "each guest counts its boots on its own disk and prints one line:"
wait_boot 1
run vm list --pool desk

say "migrate the pool to hostb and to other hardware (q35, virtio disk, virtio NIC)"
run migrate desk --to hostb --profile q35-virtio --dry-run
run migrate desk --to hostb --profile q35-virtio
echo "same guests, same UUIDs, same data; the disk is now found on the virtio bus:"
wait_boot 2
run migrate list
run vm list --pool desk
printf '\nhosta: %s\nhostb: %s\n' "$(virsh -q -c "$uri_a" list --all --name | xargs)" \
    "$(virsh -q -c "$uri_b" list --all --name | xargs)"

say "the master image is untouched and the invariants hold"
run image verify desktop
run fsck
run vm show desk-001
run pool stop desk

printf '\nhosts hosta and hostb are still up; stop them with: scripts/hosts.sh down hosta hostb\n'
printf 'explore with: VPOOL_CATALOG=%s %s pool show desk\n' "$VPOOL_CATALOG" "$vpool"
