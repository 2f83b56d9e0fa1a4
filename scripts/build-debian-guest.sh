#!/bin/bash
# Builds two Debian 12 master images with debootstrap, the way a desktop
# installed from Debian's installer looks to vpool: systemd, Debian's kernel
# (linux-image-amd64) and initramfs-tools, extlinux on an MBR disk (or
# Debian's signed shim and GRUB on a GPT disk's EFI system partition), the
# network configured by interface name in /etc/network/interfaces (ens2, the
# name of the e1000 in slot 2 of the pc machines vpool defines: they have no
# video device) and dbus + logind so the ACPI
# power button powers it off.
#
#   build-debian-guest.sh OUTDIR
#
# OUTDIR/debian12.qcow2         initramfs of MODULES=most (IDE, SATA, virtio)
# OUTDIR/debian12-novirtio.qcow2 initramfs of MODULES=list naming only the
#                               IDE and SATA drivers: it cannot boot from virtio
# OUTDIR/debian12-uefi.qcow2    the first one's tree on a GPT disk that boots
#                               with UEFI alone, Secure Boot too: Debian's
#                               signed shim and GRUB on an EFI system
#                               partition mounted at /boot/efi; no BIOS boot
#                               code
# Skipped while both exist and are newer than this script: a rebuild takes
# minutes (the packages come from Debian's mirror) and would invalidate every
# overlay made on the old masters.
#
# Each boot prints one line on ttyS0 (docs/test-guest.md, "Debian guest"):
#   VPOOL-DEBIAN uuid=U boot=N disk=D owner=O nic=DRIVER ifaces=NAMES net=up|down master=M
# and a clean shutdown, from systemd, prints VPOOL-DEBIAN shutdown uuid=U.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
outdir=$1
self=$(readlink -f "${BASH_SOURCE[0]}")
mirror=${VPOOL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
master_version="vpool-debian-master 1"
size=2G
export PATH="$PATH:/sbin:/usr/sbin"

up_to_date=1
for f in debian12.qcow2 debian12-novirtio.qcow2 debian12-uefi.qcow2; do
    if [ ! -s "$outdir/$f" ] || [ ! "$outdir/$f" -nt "$self" ]; then up_to_date=0; fi
done
if [ "$up_to_date" -eq 1 ]; then
    echo "build-debian-guest.sh: $outdir is up to date"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "build-debian-guest.sh: must run as root (debootstrap, mount)" >&2
    exit 1
fi
for tool in debootstrap extlinux sfdisk losetup mkfs.ext4 mkfs.vfat mmd mcopy dpkg-deb qemu-img; do
    command -v "$tool" >/dev/null || { echo "build-debian-guest.sh: '$tool' missing; run scripts/deps.sh" >&2; exit 1; }
done
mbr=/usr/lib/syslinux/mbr/mbr.bin
[ -r "$mbr" ] || { echo "build-debian-guest.sh: $mbr missing (syslinux-common)" >&2; exit 1; }

mkdir -p "$outdir"
chmod 755 "$outdir"
work=$(readlink -f "$(mktemp -d "$outdir/.debian.XXXXXX")")
root=$work/root
mnt=$work/mnt
loop=
cleanup() {
    for m in "$root/proc" "$root/sys" "$root/dev" "$mnt"; do
        mountpoint -q "$m" 2>/dev/null && umount -l "$m"
    done
    [ -n "$loop" ] && losetup -d "$loop" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

echo "build-debian-guest.sh: debootstrap bookworm from $mirror"
debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,udev,dbus,linux-image-amd64,initramfs-tools,zstd,ifupdown,iproute2,kmod,e2fsprogs \
    bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }

fsuuid=$(cat /proc/sys/kernel/random/uuid)
echo debian-desktop >"$root/etc/hostname"
printf 'UUID=%s / ext4 errors=remount-ro 0 1\n' "$fsuuid" >"$root/etc/fstab"
echo "$master_version" >"$root/master-version"
# As Debian's installer writes it: the interface by the name udev gave it.
cat >"$root/etc/network/interfaces" <<'EOF'
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback

allow-hotplug ens2
iface ens2 inet static
    address 192.0.2.10/24
EOF
: >"$root/etc/machine-id"

cat >"$root/usr/local/sbin/vpool-report" <<'EOF'
#!/bin/sh
# One line on the serial console per boot (and one at shutdown): what vpool's
# tests read to know this guest booted, from which disk, as whom.
state=/var/lib/vpool
mkdir -p $state
uuid=$(tr 'A-F' 'a-f' </sys/class/dmi/id/product_uuid)
if [ "$1" = stop ]; then
    echo "VPOOL-DEBIAN shutdown uuid=$uuid" >/dev/ttyS0
    exit 0
fi
count=$(( $(cat $state/bootcount 2>/dev/null || echo 0) + 1 ))
echo $count >$state/bootcount
[ -s $state/owner ] || echo "$uuid" >$state/owner
src=$(findmnt -no SOURCE /)
disk=$(basename "$(readlink -f /sys/class/block/$(basename "$src")/..)")
nic=none ifaces=
for d in /sys/class/net/*; do
    n=$(basename "$d")
    [ "$n" = lo ] && continue
    ifaces=${ifaces:+$ifaces,}$n
    [ -e "$d/device/driver" ] && nic=$(basename "$(readlink -f "$d/device/driver")")
done
# allow-hotplug: udev brings ens2 up (ifup@ens2) beside this service, so
# where ens2 exists its address is waited for, up to 30 s.
if [ -e /sys/class/net/ens2 ]; then
    i=0
    while [ $i -lt 60 ] && ! ip -o -4 addr show 2>/dev/null | grep -q '192\.0\.2\.10/'; do
        sleep 0.5
        i=$((i + 1))
    done
fi
net=down
ip -o -4 addr show 2>/dev/null | grep -q '192\.0\.2\.10/' && net=up
echo "boot=$count uuid=$uuid disk=$disk nic=$nic ifaces=$ifaces net=$net" >>$state/bootlog
sync
echo "VPOOL-DEBIAN uuid=$uuid boot=$count disk=$disk owner=$(cat $state/owner) nic=$nic ifaces=${ifaces:-none}" \
     "net=$net master=$(tr ' ' _ </master-version)" >/dev/ttyS0
EOF
chmod 755 "$root/usr/local/sbin/vpool-report"
cat >"$root/etc/systemd/system/vpool-report.service" <<'EOF'
[Unit]
Description=vpool test report on the serial console
After=local-fs.target networking.service network-online.target
Wants=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/vpool-report start
ExecStop=/usr/local/sbin/vpool-report stop

[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/vpool-report.service "$root/etc/systemd/system/multi-user.target.wants/vpool-report.service"
# No login prompt on the console the tests read.
ln -sf /dev/null "$root/etc/systemd/system/serial-getty@ttyS0.service"
# Fewer seconds under TCG: the network may come up later than boot.
mkdir -p "$root/etc/systemd/system/networking.service.d"
printf '[Service]\nTimeoutStartSec=20\n' >"$root/etc/systemd/system/networking.service.d/timeout.conf"

chroot_run() {
    mount --bind /proc "$root/proc"
    mount --bind /sys "$root/sys"
    mount --bind /dev "$root/dev"
    local rc=0
    chroot "$root" "$@" || rc=$?
    umount "$root/proc" "$root/sys" "$root/dev"
    return $rc
}

kver=$(basename "$(ls -d "$root"/lib/modules/* | sort -V | tail -n 1)")

# root_mount RAW START [SECTORS]: the root filesystem (ext4, the tree's
# UUID) made on RAW's partition at sector START (to the disk's end, or
# SECTORS long), the tree copied in, left mounted at $mnt.
root_mount() {
    local raw=$1 start=$2 sectors=${3:-}
    loop=$(losetup -f --show -o $((start * 512)) ${sectors:+--sizelimit $((sectors * 512))} "$raw")
    mkfs.ext4 -q -F -U "$fsuuid" -L root -O ^64bit "$loop"
    mkdir -p "$mnt"
    mount "$loop" "$mnt"
    cp -a "$root/." "$mnt/"
}

# root_umount: root_mount's mount and loop device undone.
root_umount() {
    umount "$mnt"
    losetup -d "$loop"
    loop=
}

# publish RAW OUT: RAW converted to OUTDIR/OUT, a qcow2 all may read; RAW removed.
publish() {
    qemu-img convert -f raw -O qcow2 "$1" "$work/out.qcow2"
    rm -f "$1"
    chmod 644 "$work/out.qcow2"
    mv "$work/out.qcow2" "$outdir/$2"
}

# make_disk OUT: the root tree on an MBR disk with extlinux, as qcow2.
make_disk() {
    local out=$1 raw=$work/disk.raw
    rm -f "$raw"
    truncate -s "$size" "$raw"
    echo 'start=2048, type=83, bootable' | sfdisk -q "$raw"
    root_mount "$raw" 2048
    mkdir -p "$mnt/boot/extlinux"
    cat >"$mnt/boot/extlinux/extlinux.conf" <<EOF
DEFAULT debian
TIMEOUT 1
LABEL debian
    LINUX /boot/vmlinuz-$kver
    INITRD /boot/initrd.img-$kver
    APPEND root=UUID=$fsuuid ro console=ttyS0 quiet no_timer_check
EOF
    extlinux --install "$mnt/boot/extlinux" >/dev/null 2>&1
    root_umount
    dd if="$mbr" of="$raw" bs=440 count=1 conv=notrunc status=none
    publish "$raw" "$out"
}

# make_uefi_disk OUT: the root tree on a GPT disk that boots the way
# Debian's installer sets up UEFI with Secure Boot: Debian's signed shim and
# GRUB (from the shim-signed and grub-efi-amd64-signed packages) on the EFI
# system partition, as EFI/debian/ and as the removable-media default
# loader EFI/BOOT/BOOTX64.EFI (the firmware needs no boot entry), GRUB's
# configuration on the root, which the root's fstab mounts the partition
# over at /boot/efi. GRUB checks Debian's signed kernel through shim.
# Nothing on the disk boots with a BIOS.
make_uefi_disk() {
    local out=$1 raw=$work/disk.raw esp_sectors=$((128 * 2048)) volid root_start root_sectors
    local debs=$work/debs efi
    mkdir -p "$debs"
    (cd "$debs" && apt-get download shim-signed grub-efi-amd64-signed >"$work/download.log" 2>&1) ||
        { tail -n 5 "$work/download.log" >&2; exit 1; }
    for d in "$debs"/*.deb; do dpkg-deb -x "$d" "$debs/x"; done
    efi=$debs/x/usr/lib
    rm -f "$raw"
    truncate -s "$size" "$raw"
    # The root partition ends 1 MiB before the disk does: GPT keeps its
    # backup table in the last sectors, which the filesystem must not cover.
    root_start=$((2048 + esp_sectors))
    root_sectors=$(($(stat -c %s "$raw") / 512 - root_start - 2048))
    printf '%s\n' 'label: gpt' \
        "start=2048, size=$esp_sectors, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=esp" \
        "start=$root_start, size=$root_sectors, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root" |
        sfdisk -q "$raw"
    volid=$(od -An -N4 -tx4 /dev/urandom | tr -d ' ' | tr 'a-f' 'A-F')
    # FAT written with mtools (mkfs.vfat, mmd, mcopy) at the partition's
    # offset in the raw disk: no vfat mount needed.
    local fat=$raw@@$((2048 * 512)) tmp=$work/esp-files
    mkfs.vfat -F 32 -s 1 -i "$volid" -n ESP --offset 2048 "$raw" $((esp_sectors / 2)) >/dev/null 2>&1
    mkdir -p "$tmp"
    # GRUB's image looks for its configuration in EFI/debian, where it
    # hands over to the one on the root.
    printf '%s\n' "search.fs_uuid $fsuuid root" "set prefix=(\$root)'/boot/grub'" 'configfile $prefix/grub.cfg' \
        >"$tmp/grub.cfg"
    mmd -i "$fat" ::/EFI ::/EFI/BOOT ::/EFI/debian
    mcopy -i "$fat" "$efi/shim/shimx64.efi.signed" ::/EFI/BOOT/BOOTX64.EFI
    mcopy -i "$fat" "$efi/grub/x86_64-efi-signed/grubx64.efi.signed" ::/EFI/BOOT/grubx64.efi
    mcopy -i "$fat" "$efi/shim/shimx64.efi.signed" ::/EFI/debian/shimx64.efi
    mcopy -i "$fat" "$efi/grub/x86_64-efi-signed/grubx64.efi.signed" ::/EFI/debian/grubx64.efi
    mcopy -i "$fat" "$tmp/grub.cfg" ::/EFI/debian/grub.cfg
    root_mount "$raw" "$root_start" "$root_sectors"
    mkdir -p "$mnt/boot/efi" "$mnt/boot/grub"
    printf 'UUID=%s-%s /boot/efi vfat umask=0077,nofail 0 2\n' "${volid:0:4}" "${volid:4:4}" >>"$mnt/etc/fstab"
    printf '%s\n' 'set timeout=0' "menuentry 'Debian GNU/Linux 12' {" "    search.fs_uuid $fsuuid root" \
        "    linux /boot/vmlinuz-$kver root=UUID=$fsuuid ro console=ttyS0 quiet no_timer_check" \
        "    initrd /boot/initrd.img-$kver" '}' >"$mnt/boot/grub/grub.cfg"
    root_umount
    publish "$raw" "$out"
}

echo "build-debian-guest.sh: $outdir/debian12.qcow2 (kernel $kver)"
make_disk debian12.qcow2
echo "build-debian-guest.sh: $outdir/debian12-uefi.qcow2 (GPT, signed shim and GRUB on its EFI system partition)"
make_uefi_disk debian12-uefi.qcow2

echo "build-debian-guest.sh: $outdir/debian12-novirtio.qcow2 (initramfs without virtio)"
sed -i 's/^MODULES=.*/MODULES=list/' "$root/etc/initramfs-tools/initramfs.conf"
printf '%s\n' ata_piix ata_generic ahci libahci libata sd_mod scsi_mod ext4 crc32c_generic \
    >"$root/etc/initramfs-tools/modules"
chroot_run update-initramfs -u -k "$kver" >"$work/initramfs.log" 2>&1 ||
    { tail -n 20 "$work/initramfs.log" >&2; exit 1; }
make_disk debian12-novirtio.qcow2
echo "build-debian-guest.sh: done"
