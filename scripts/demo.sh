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

say "catalog, environments, master image, hardware profile"
run init --storage "$demo/storage"
run env add hosta --uri "$uri_a"
run env add hostb --uri "$uri_b" --domain-type qemu
run image add guest --file build/guest/master.qcow2 --kernel build/guest/vmlinuz \
    --initrd build/guest/initrd.img --cmdline "$(cat build/guest/cmdline)"
run profile add pc-ide --machine pc --disk-bus ide --nic e1000 --vcpus 1 --memory 256M
run profile add q35-virtio --machine q35 --disk-bus virtio --nic virtio --vcpus 1 --memory 256M

say "a pool of 3 VMs on hosta, each with its own user delta collection"
run pool create desk --image guest --env hosta --profile pc-ide --size 3
run pool show desk
echo
find "$demo/storage/deltas" -type f | sort

wait_off() {
    local vm
    for vm in desk-001 desk-002 desk-003; do
        for _ in $(seq 240); do
            [ "$(virsh -q -c "$uri_a" domstate "$vm")" = "shut off" ] && break
            sleep 0.5
        done
    done
}

for boot in 1 2; do
    say "boot $boot: every guest counts its boots on its own disk, prints one line and powers off"
    run pool start desk
    wait_off
    for vm in desk-001 desk-002 desk-003; do
        grep -a VPOOL-GUEST "$demo/storage/logs/$vm.log" | tail -1 | tr -d '\r'
    done
done

say "the master image is untouched"
run image verify guest
say "what each VM owns"
run vm show desk-001

printf '\nhosts hosta and hostb are still up; stop them with: scripts/hosts.sh down hosta hostb\n'
printf 'explore with: VPOOL_CATALOG=%s %s pool show desk\n' "$VPOOL_CATALOG" "$vpool"
