#!/bin/bash
# Builds a disk shaped like a Windows 10 system disk, for the inspection of
# Windows masters: no Windows can be installed by the project's scripts, so
# this holds what libguestfs and vpool read of one, written here, and
# nothing that runs. An MBR disk with one NTFS partition (drive C: in the
# registry's MountedDevices) holding:
#
#   Windows/System32/cmd.exe          an x86-64 console program's headers
#                                     (libguestfs reads the architecture)
#   Windows/System32/config/SOFTWARE  a hive: Microsoft\Windows NT\
#                                     CurrentVersion says Windows 10 Pro,
#                                     10.0, Client
#   Windows/System32/config/SYSTEM    a hive: Select\Current, ControlSet001's
#                                     host name, MountedDevices
#   Windows/System32/drivers/viostor.sys
#                                     the virtio-win disk driver's name: the
#                                     guest could boot from virtio; no
#                                     netkvm.sys, so a virtio NIC is missing
#
#   build-windows-shape.sh OUTDIR     -> OUTDIR/windows10.qcow2
#
# Skipped while the image exists and is newer than this script and its
# helper (windows-shape.py).
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
outdir=$1
self=$(readlink -f "${BASH_SOURCE[0]}")
helper=$(dirname "$self")/windows-shape.py
out=$outdir/windows10.qcow2
export PATH="$PATH:/sbin:/usr/sbin"

if [ -s "$out" ] && [ "$out" -nt "$self" ] && [ "$out" -nt "$helper" ]; then
    echo "build-windows-shape.sh: $out is up to date"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "build-windows-shape.sh: must run as root (losetup, mount)" >&2
    exit 1
fi
for tool in sfdisk losetup mkntfs ntfs-3g hivexsh qemu-img; do
    command -v "$tool" >/dev/null || { echo "build-windows-shape.sh: '$tool' missing; run scripts/deps.sh" >&2; exit 1; }
done

mkdir -p "$outdir"
chmod 755 "$outdir"
work=$(mktemp -d "$outdir/.windows.XXXXXX")
mnt=$work/mnt
loop=
cleanup() {
    mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"
    [ -n "$loop" ] && losetup -d "$loop" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

raw=$work/disk.raw
disk_id=0x5650c001
start=2048
truncate -s 256M "$raw"
printf '%s\n' 'label: dos' "label-id: $disk_id" "start=$start, type=7, bootable" | sfdisk -q "$raw"
loop=$(losetup -f --show -o $((start * 512)) "$raw")
mkntfs -q -Q -F -L Windows -p "$start" -H 255 -S 63 "$loop" >/dev/null
mkdir -p "$mnt"
ntfs-3g "$loop" "$mnt"
sys32=$mnt/Windows/System32
mkdir -p "$sys32/config" "$sys32/drivers"
/usr/bin/python3 "$helper" pe "$sys32/cmd.exe"
cp "$sys32/cmd.exe" "$sys32/drivers/viostor.sys"

# hive FILE < COMMANDS: an empty hive filled by hivexsh's commands.
hive() {
    /usr/bin/python3 "$helper" hive "$1"
    hivexsh -w "$1" >/dev/null
}
hive "$sys32/config/SOFTWARE" <<'EOF'
add Microsoft
cd Microsoft
add Windows NT
cd Windows NT
add CurrentVersion
cd CurrentVersion
setval 5
ProductName
string:Windows 10 Pro
CurrentMajorVersionNumber
dword:0x0000000a
CurrentMinorVersionNumber
dword:0x00000000
CurrentBuild
string:19045
InstallationType
string:Client
commit
EOF
# C: is the partition: the disk's MBR signature and the partition's byte
# offset, little-endian, as Windows records a basic disk's volume.
c_drive=$(printf '%08x' "$disk_id" | sed 's/\(..\)\(..\)\(..\)\(..\)/\4,\3,\2,\1/'),$(printf '%016x' $((start * 512)) |
    sed 's/\(..\)\(..\)\(..\)\(..\)\(..\)\(..\)\(..\)\(..\)/\8,\7,\6,\5,\4,\3,\2,\1/')
hive "$sys32/config/SYSTEM" <<EOF
add Select
cd Select
setval 1
Current
dword:0x00000001
cd ..
add MountedDevices
cd MountedDevices
setval 1
\\DosDevices\\C:
hex:3:$c_drive
cd ..
add ControlSet001
cd ControlSet001
add Services
cd Services
add Tcpip
cd Tcpip
add Parameters
cd Parameters
setval 1
Hostname
string:WIN-DESKTOP
commit
EOF
umount "$mnt"
losetup -d "$loop"
loop=
qemu-img convert -f raw -O qcow2 "$raw" "$work/out.qcow2"
chmod 644 "$work/out.qcow2"
mv "$work/out.qcow2" "$out"
echo "build-windows-shape.sh: $out"
