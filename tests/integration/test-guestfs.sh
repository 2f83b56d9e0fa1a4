#!/bin/bash
# A real distribution: three Debian 12 masters built by
# scripts/build-debian-guest.sh, inspected by image add with libguestfs.
# The one with a full initramfs runs on pc/IDE/e1000, is shut down by
# systemd on ACPI and moved to q35/virtio, where it boots from /dev/vda with
# its own files and UUID; its network, configured by interface name, is a
# move refused without --accept-nic-rename. The one whose initramfs lacks
# virtio is refused for the virtio profile by inspection alone. The one on
# a GPT disk with Debian's signed shim and GRUB on its EFI system partition is found to boot
# with UEFI only, refused for a BIOS profile and booted with UEFI and Secure Boot. A disk
# shaped like Windows 10 (scripts/build-windows-shape.sh: its registry,
# viostor.sys, no netkvm.sys) is inspected as Windows, and a virtio NIC is
# refused for it. A disk with no operating system, and an encrypted one, need
# the operator's declaration, and get a warning.
. "$(dirname "$0")/lib.sh"

TEST_PREFIX=deb
DEBIAN_DIR=${VPOOL_DEBIAN_DIR:-$top/build/debian-guest}
WINDOWS_DIR=${VPOOL_WINDOWS_DIR:-$top/build/windows-shape}
# KVM does not work on the machines the suite runs on: the appliance runs
# under emulation unless the caller says otherwise.
export LIBGUESTFS_BACKEND=${LIBGUESTFS_BACKEND:-direct}
export LIBGUESTFS_BACKEND_SETTINGS=${LIBGUESTFS_BACKEND_SETTINGS:-force_tcg}
# About 20 s on an idle machine, but its appliance boots under TCG: minutes when
# other guests load it.
export VPOOL_INSPECT_TIMEOUT=${VPOOL_INSPECT_TIMEOUT:-1800}
require_hosts "$HOSTA" "$HOSTB"
for f in debian12.qcow2 debian12-novirtio.qcow2 debian12-uefi.qcow2; do
    [ -r "$DEBIAN_DIR/$f" ] || bail "$DEBIAN_DIR/$f missing (scripts/build-debian-guest.sh $DEBIAN_DIR)"
done
[ -r "$WINDOWS_DIR/windows10.qcow2" ] ||
    bail "$WINDOWS_DIR/windows10.qcow2 missing (scripts/build-windows-shape.sh $WINDOWS_DIR)"
setup_workdir
# Debian under TCG on a busy machine: minutes to boot, not seconds.
boot_timeout=900

vpool init --storage "$STORAGE" >/dev/null || bail "init failed"
vpool env add "$HOSTA" --uri "$(uri_of "$HOSTA")" --domain-type qemu >/dev/null || bail "env add $HOSTA failed"
vpool env add "$HOSTB" --uri "$(uri_of "$HOSTB")" --domain-type qemu >/dev/null || bail "env add $HOSTB failed"
vpool profile add pc-ide --machine pc --disk-bus ide --nic e1000 --vcpus 1 --memory 512M >/dev/null ||
    bail "profile add pc-ide failed"
vpool profile add q35-virtio --machine q35 --disk-bus virtio --nic virtio --vcpus 1 --memory 512M >/dev/null ||
    bail "profile add q35-virtio failed"
vpool profile add q35-uefi --machine q35 --disk-bus sata --nic e1000 --vcpus 1 --memory 512M --firmware uefi \
    >/dev/null || bail "profile add q35-uefi failed"
vpool profile add q35-vblk --machine q35 --disk-bus virtio --nic e1000 --vcpus 1 --memory 512M >/dev/null ||
    bail "profile add q35-vblk failed"

# The Debian guest's last boot line on its console (docs/test-guest.md).
deb_line() { grep -a 'VPOOL-DEBIAN uuid=' "$STORAGE/logs/$1.log" 2>/dev/null | tail -1 | tr -d '\r'; }
deb_field() { deb_line "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
deb_shutdowns() { grep -ac 'VPOOL-DEBIAN shutdown uuid=' "$STORAGE/logs/$1.log" 2>/dev/null; }
wait_deb_boot() {
    local deadline=$((SECONDS + $1))
    while [ "$(deb_field "$3" boot)" != "$2" ]; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 2
    done
}

# ---- hostile images never reach libguestfs ------------------------------------------
# A stand-in for QEMU records every start of the appliance (libguestfs also
# runs it to read its version and features: those lines have no -kernel).
cat >"$WORK/hv" <<EOF
#!/bin/sh
echo "\$*" >>"$WORK/hv.log"
exec qemu-system-x86_64 "\$@"
EOF
chmod 755 "$WORK/hv"
qemu-img create -q -f qcow2 -b /etc/shadow -F raw "$WORK/shadow.qcow2"
qemu-img create -q -f qcow2 -o data_file="$WORK/data.raw" "$WORK/datafile.qcow2" 64M
for bad in shadow datafile; do
    LIBGUESTFS_HV=$WORK/hv expect_fail "image add refuses the $bad image by its header" 1 \
        "^vpool: .*(backing file|external data file)" vpool image add "$bad" --file "$WORK/$bad.qcow2"
done
appliances() { cat "$WORK/hv.log" 2>/dev/null | grep -c -- '-kernel'; }
check_eq "libguestfs's appliance never started for a hostile image" 0 "$(appliances)"

# ---- an inspection is bounded in time ---------------------------------------------------
# An appliance that never answers: its QEMU records its pid and sleeps.
cat >"$WORK/hv-hang" <<EOF
#!/bin/sh
case "\$*" in *-kernel*) echo \$\$ >>"$WORK/hang.pids"; exec sleep 3600 ;; esac
exec qemu-system-x86_64 "\$@"
EOF
chmod 755 "$WORK/hv-hang"
qemu-img create -q -f qcow2 "$WORK/blank.qcow2" 64M
VPOOL_INSPECT_TIMEOUT=120 LIBGUESTFS_HV=$WORK/hv-hang expect_fail "an inspection past its time is stopped" 1 \
    "^vpool: image 'blank': inspection failed .*: inspection took longer than 120 s \(starting the appliance\); its appliance was killed$" \
    vpool image add blank --file "$WORK/blank.qcow2"
check "the hung appliance was started" test -s "$WORK/hang.pids"
check_eq "and killed: no such process, or one only its parent has still to reap" "" \
    "$(ps -o stat= -p "$(cat "$WORK/hang.pids")" | grep -v '^Z')"

# ---- disks inspection cannot read: the operator's declaration, with a warning ------------
expect_fail "a disk with no operating system is refused without a declaration" 1 \
    "^vpool: image 'blank' cannot be inspected \(it found no operating system\): declare its hardware with --disk-buses, --nic-models and --firmware$" \
    vpool image add blank --file "$WORK/blank.qcow2"
# A LUKS volume (cryptsetup, a throw-away passphrase) on the whole disk.
truncate -s 64M "$WORK/luks.raw"
printf 'not-a-secret' | cryptsetup luksFormat --batch-mode --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
    "$WORK/luks.raw" - || bail "cryptsetup luksFormat failed"
qemu-img convert -f raw -O qcow2 "$WORK/luks.raw" "$WORK/luks.qcow2"
vpool image add luks --file "$WORK/luks.qcow2" --disk-buses virtio --nic-models virtio --firmware uefi \
    >"$WORK/out" 2>"$WORK/err"
check_eq "an encrypted disk, declared, is added with a warning" \
    "0 vpool: warning: image 'luks' cannot be inspected (its disk is encrypted): its declared hardware is taken on trust" \
    "$? $(cat "$WORK/err")"
check_eq "its declaration is recorded, and what inspection found" "virtio virtio uefi encrypted" \
    "$(vpool --json image show luks | jq -r '[.disk_buses, .nic_models, .firmwares, .inspection.status] | join(" ")')"

# ---- inspection of the Debian master --------------------------------------------------
start=$SECONDS
LIBGUESTFS_HV=$WORK/hv check "image add debian (inspected)" \
    vpool image add debian --file "$DEBIAN_DIR/debian12.qcow2"
diag "inspection of debian12.qcow2 with image add: $((SECONDS - start)) s"
master=$STORAGE/images/debian.qcow2
check_eq "the appliance ran once" 1 "$(appliances)"
check "the appliance's QEMU was not given the master itself (a throw-away overlay of it)" \
    bash -c "grep -q -- '-drive' '$WORK/hv.log' && ! grep -q -- '$master' '$WORK/hv.log'"
vpool --json image show debian >"$WORK/debian.json" || bail "image show debian"
# shown NAME EXPR: jq's EXPR of $WORK/NAME.json (what image show --json said).
shown() { jq -r "$2" "$WORK/$1.json"; }
check_eq "inspection found Debian 12 (linux)" "ok linux debian 12" \
    "$(shown debian '[.inspection.status, .inspection.os.type, .inspection.os.distribution,
             (.inspection.os.version | split(".")[0])] | join(" ")')"
check_eq "inspection found extlinux booting it with BIOS, no EFI system partition" "extlinux bios false" \
    "$(shown debian '[.inspection.boot.bootloader, .inspection.boot.firmwares, .inspection.boot.efi_system_partition] | join(" ")')"
check_eq "its zstd initramfs drives every disk bus" "zstd ide,sata,virtio,scsi" \
    "$(shown debian '[.inspection.initramfs.compression, .inspection.disk_buses] | join(" ")')"
check_eq "its kernel drives every NIC model, nothing missing" "e1000,rtl8139,virtio 0" \
    "$(shown debian '[.inspection.nic_models, (.inspection.missing | length)] | join(" ")')"
check_eq "its network: ifupdown, by the interface name ens2" "ifupdown name ens2 true" \
    "$(shown debian '[.inspection.network.tools, .inspection.network.match, .inspection.network.interfaces,
             .inspection.network.breaks_on_rename] | join(" ")')"
check_eq "what the operator left out is what inspection found" "ide,sata,virtio,scsi e1000,rtl8139,virtio bios" \
    "$(shown debian '[.disk_buses, .nic_models, .firmwares] | join(" ")')"
diag "inspection: $(shown debian '.inspection | {os, boot, kernel, initramfs, disk_buses, nic_models, network, seconds} | tojson')"
check "image show prints the inspection" grep -q "^inspection: *debian 12" <<<"$(vpool image show debian)"
check "the master is unchanged by its inspection" vpool image verify debian

expect_fail "a declared firmware the guest cannot boot with is refused" 1 \
    "image 'debian-uefi' declares firmware 'uefi', but the guest boots with bios only \(extlinux, no EFI" \
    vpool image add debian-uefi --file "$DEBIAN_DIR/debian12.qcow2" --firmware uefi
LIBGUESTFS_HV=$WORK/hv check "the same master added again is not inspected again" \
    vpool image add debian2 --file "$DEBIAN_DIR/debian12.qcow2" --disk-buses virtio --nic-models virtio
check_eq "its appliance did not run a second time" 1 "$(appliances)"
check_eq "the declaration it agrees with is recorded" "virtio virtio" \
    "$(vpool --json image show debian2 | jq -r '[.disk_buses, .nic_models] | join(" ")')"

# ---- the master whose initramfs lacks virtio --------------------------------------------
# Refused at its first inspection: nothing is stored, the report neither
# (the add after it inspects again).
expect_fail "a declared virtio bus the initramfs cannot drive is refused" 1 \
    "image 'novirtio' declares disk bus 'virtio', but initramfs has no virtio_blk$" \
    vpool image add novirtio --file "$DEBIAN_DIR/debian12-novirtio.qcow2" --disk-buses ide,virtio
check "image add novirtio, its buses left to inspection" \
    vpool image add novirtio --file "$DEBIAN_DIR/debian12-novirtio.qcow2"
check_eq "inspection found IDE and SATA only, virtio_blk and virtio_scsi missing" \
    "ide,sata virtio_blk,virtio_scsi initramfs" \
    "$(vpool --json image show novirtio | jq -r '[.disk_buses, (.inspection.missing | map(.driver) | join(",")),
        (.inspection.missing | map(.place) | unique | join(","))] | join(" ")')"
expect_fail "pool create of novirtio on q35/virtio is refused by inspection, nothing created" 1 \
    "image 'novirtio': initramfs has no virtio_blk: the VMs would not boot on q35/virtio \(profile 'q35-virtio'\)" \
    vpool pool create debnv --image novirtio --env "$HOSTB" --profile q35-virtio --size 1
expect_fail "pool create of a BIOS-only guest with UEFI is refused" 1 \
    "image 'debian': the guest boots with bios only .*: the VMs would not boot with uefi" \
    vpool pool create debuefi --image debian --env "$HOSTB" --profile q35-uefi --size 1

# ---- a disk shaped like Windows 10 --------------------------------------------------------
expect_fail "a declared virtio NIC without netkvm is refused, nothing stored" 1 \
    "^vpool: image 'windows' declares NIC model 'virtio', but Windows has no netkvm driver$" \
    vpool image add windows --file "$WINDOWS_DIR/windows10.qcow2" --nic-models e1000,virtio
start=$SECONDS
check "image add windows (inspected)" vpool image add windows --file "$WINDOWS_DIR/windows10.qcow2"
diag "inspection of windows10.qcow2 with image add: $((SECONDS - start)) s"
vpool --json image show windows >"$WORK/windows.json" || bail "image show windows"
check_eq "inspection found Windows 10 Pro, 10.0, x86_64, from its registry and cmd.exe" \
    "ok windows windows 10.0 Windows 10 Pro x86_64" \
    "$(shown windows '[.inspection.status, .inspection.os.type, .inspection.os.distribution, .inspection.os.version,
             .inspection.os.product, .inspection.os.arch] | join(" ")')"
check_eq "booted by Windows' own loader with BIOS (an MBR disk)" "windows bios false" \
    "$(shown windows '[.inspection.boot.bootloader, .inspection.boot.firmwares, .inspection.boot.efi_system_partition] | join(" ")')"
check_eq "viostor.sys makes virtio a disk bus it can use; no kernel or initramfs is read" "ide,sata,virtio null null" \
    "$(shown windows '[.inspection.disk_buses, (.inspection.kernel | tojson), (.inspection.initramfs | tojson)] | join(" ")')"
check_eq "vioscsi and netkvm are missing from System32/drivers" \
    "scsi:vioscsi virtio:netkvm System32/drivers" \
    "$(shown windows '[(.inspection.missing | map("\(.hardware):\(.driver)") | join(" ")),
             (.inspection.missing | map(.place) | unique | join(","))] | join(" ")')"
check_eq "what the operator left out is what inspection found" "ide,sata,virtio e1000,rtl8139 bios" \
    "$(shown windows '[.disk_buses, .nic_models, .firmwares] | join(" ")')"
diag "inspection: $(shown windows '.inspection | {os, boot, disk_buses, nic_models, missing, seconds} | tojson')"
expect_fail "pool create of windows on q35/virtio is refused: no netkvm, nothing created" 1 \
    "^vpool: image 'windows': Windows has no netkvm driver: the VMs would have no network on NIC model virtio \(profile 'q35-virtio'\)$" \
    vpool pool create win --image windows --env "$HOSTB" --profile q35-virtio --size 1
check_eq "no domain of that pool was defined" "" "$(virsh_on "$HOSTB" list --all --name | grep '^win-' || true)"
check "pool create of windows on a virtio disk with an e1000 NIC (viostor present)" \
    vpool pool create win --image windows --env "$HOSTB" --profile q35-vblk --size 1
check_eq "its VM's disk is on the virtio bus" "virtio" \
    "$(virsh_on "$HOSTB" dumpxml win-001 | grep -o "<target dev='vda' bus='[a-z]*'" | sed "s/.*bus='//; s/'//")"
check "pool rm win" vpool pool rm win --quiet

# ---- the Debian desktop moved from pc/IDE/e1000 to q35/virtio -----------------------------
vm=deb1-001
check "pool deb1 created and started on $HOSTA (pc, IDE, e1000)" \
    vpool pool create deb1 --image debian --env "$HOSTA" --profile pc-ide --size 1 --start
check "$vm booted Debian from its IDE disk" wait_deb_boot "$boot_timeout" 1 "$vm"
diag "first boot: $(deb_line "$vm")"
uuid=$(vpool vm show "$vm" --json | jq -r .uuid)
check_eq "on pc/IDE/e1000: disk sda, e1000 as ens2, its network up, its UUID" \
    "sda e1000 ens2 up $uuid $uuid" \
    "$(for f in disk nic ifaces net uuid owner; do deb_field "$vm" "$f"; done | xargs)"

vpool migrate start deb1 --to "$HOSTB" --profile q35-virtio --dry-run >"$WORK/plan" 2>&1
check_eq "the dry run succeeds" 0 $?
check "the dry run shows the NIC rename" grep -q "^network: .*configured by interface name ens2.*refused without --accept-nic-rename" "$WORK/plan"
check_eq "the dry run's JSON names it" "true" \
    "$(vpool --json migrate start deb1 --to "$HOSTB" --profile q35-virtio --dry-run | jq '.nic_rename | test("ens2")')"
expect_fail "the move is refused without --accept-nic-rename" 1 \
    "pool 'deb1': the guest's network \(ifupdown\) is configured by interface name ens2; .*--accept-nic-rename" \
    vpool migrate start deb1 --to "$HOSTB" --profile q35-virtio
expect_fail "env drain refuses it too without --accept-nic-rename" 1 \
    "pool 'deb1': the guest's network \(ifupdown\) is configured by interface name ens2; .*--accept-nic-rename" \
    vpool env drain "$HOSTA" --to "$HOSTB" --profile q35-virtio
check_eq "$vm still runs on $HOSTA" "running" "$(virsh_on "$HOSTA" domstate "$vm")"

start=$SECONDS
# The move itself by env drain: its --accept-nic-rename reaches the migration
# as migrate start's does.
check "the move with --accept-nic-rename (env drain)" \
    vpool env drain "$HOSTA" --to "$HOSTB" --profile q35-virtio --accept-nic-rename --shutdown-timeout 600
diag "migrate (ACPI shutdown by systemd included): $((SECONDS - start)) s"
check_eq "systemd shut it down on ACPI (its shutdown line, before the move)" 1 "$(deb_shutdowns "$vm")"
check "$vm booted again on $HOSTB" wait_deb_boot "$boot_timeout" 2 "$vm"
diag "second boot: $(deb_line "$vm")"
check_eq "on q35/virtio: disk vda, virtio_net renamed enp1s0 (network down, as accepted), same UUID, its first owner" \
    "vda virtio_net enp1s0 down $uuid $uuid vpool-debian-master_1" \
    "$(for f in disk nic ifaces net uuid owner master; do deb_field "$vm" "$f"; done | xargs)"
check_eq "$vm runs on $HOSTB only" "running -" \
    "$(virsh_on "$HOSTB" domstate "$vm") $(virsh_on "$HOSTA" domstate "$vm" 2>/dev/null || echo -)"
check "vm stop: ACPI shutdown by systemd" vpool vm stop "$vm" --timeout 600
check_eq "its second shutdown line" 2 "$(deb_shutdowns "$vm")"
check "fsck is clean" vpool fsck
check "the master is unchanged" vpool image verify debian

# ---- the Debian master that boots with UEFI alone ------------------------------------------
start=$SECONDS
check "image add debian-efi (inspected)" vpool image add debian-efi --file "$DEBIAN_DIR/debian12-uefi.qcow2"
diag "inspection of debian12-uefi.qcow2 with image add: $((SECONDS - start)) s"
vpool --json image show debian-efi >"$WORK/efi.json" || bail "image show debian-efi"
check_eq "inspection found Debian 12, booted by GRUB from its EFI system partition, UEFI only" \
    "ok debian grub uefi true" \
    "$(shown efi '[.inspection.status, .inspection.os.distribution, .inspection.boot.bootloader,
            .inspection.boot.firmwares, .inspection.boot.efi_system_partition] | join(" ")')"
check_eq "the firmware left out is what inspection found" "uefi" "$(shown efi .firmwares)"
diag "inspection: $(shown efi '.inspection | {os, boot, disk_buses, nic_models, seconds} | tojson')"
expect_fail "a declared BIOS is refused for it" 1 \
    "^vpool: image 'debian-efi2' declares firmware 'bios', but the guest boots with uefi only" \
    vpool image add debian-efi2 --file "$DEBIAN_DIR/debian12-uefi.qcow2" --firmware bios
expect_fail "pool create of it with BIOS (pc/IDE) is refused, nothing created" 1 \
    "^vpool: image 'debian-efi': the guest boots with uefi only .*: the VMs would not boot with bios" \
    vpool pool create debefi --image debian-efi --env "$HOSTA" --profile pc-ide --size 1
check_eq "no domain of that pool was defined" "" "$(virsh_on "$HOSTA" list --all --name | grep '^debefi-' || true)"
vm=debefi-001
check "pool create of it with UEFI (q35, SATA) and start" \
    vpool pool create debefi --image debian-efi --env "$HOSTA" --profile q35-uefi --size 1 --start
check "$vm booted Debian with Secure Boot: the firmware, shim, GRUB, the signed kernel" wait_deb_boot "$boot_timeout" 1 "$vm"
diag "UEFI boot: $(deb_line "$vm")"
check_eq "from its SATA disk, with its own UUID" "sda $(vpool vm show "$vm" --json | jq -r .uuid)" \
    "$(for f in disk uuid; do deb_field "$vm" "$f"; done | xargs)"
check "vm stop: ACPI shutdown by systemd" vpool vm stop "$vm" --timeout 600
check_eq "its shutdown line" 1 "$(deb_shutdowns "$vm")"
check "fsck is clean" vpool fsck

finish
