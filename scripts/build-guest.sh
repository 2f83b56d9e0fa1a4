#!/bin/bash
# Builds the tiny vpool test guest from Debian packages only (see
# docs/test-guest.md for what the guest does and the XML it needs).
#
#   build-guest.sh OUTDIR
#
# Produces OUTDIR/vmlinuz, OUTDIR/vmlinux (the same kernel uncompressed),
# OUTDIR/initrd.img, OUTDIR/master.qcow2 and OUTDIR/cmdline. Skips the work
# when all five exist and are newer than this script and the installed
# kernel, because rebuilding master.qcow2 would silently invalidate every
# overlay already created on top of it.
set -euo pipefail

usage() { echo "usage: $0 OUTDIR" >&2; exit 2; }
[ $# -eq 1 ] || usage
outdir=$1

self=$(readlink -f "${BASH_SOURCE[0]}")
# no_timer_check: a kernel under TCG on a busy machine may find its timer
# interrupt too slow at boot ("IO-APIC + timer doesn't work!") and panic.
# cryptomgr.notests: the kernel's crypto self-tests, a tenth of a boot's
# CPU under TCG, prove nothing about vpool.
guest_cmdline="console=ttyS0 quiet panic=-1 printk.time=0 no_timer_check cryptomgr.notests"
# What the guest must be able to drive: IDE on pc (ata_piix), SATA on q35
# (ahci), virtio-blk, virtio-scsi (+ sd_mod for the disks behind it), and the
# NIC models libvirt offers for x86. crc32c_generic/crct10dif_generic are
# softdeps that busybox modprobe does not follow: ext4 cannot mount a
# metadata_csum filesystem without crc32c, and the accelerated crc32c-intel
# needs SSE4.2 that the TCG default CPU lacks.
guest_modules="crc32c_generic crc32c-intel crct10dif_generic crct10dif-pclmul ext4
virtio_pci virtio_blk virtio_scsi sd_mod ata_piix ahci
virtio_net e1000 e1000e 8139cp 8139too"
# Only loaded with vpool.stay=1, so the default boot does exactly what it did
# before: the ACPI power button driver and evdev, through which the button
# press reaches /init as /dev/input/eventN (the kernel has no
# /proc/acpi/event any more).
stay_modules="evdev button"
master_version="vpool-test-master 1"
master_size=64M

for tool in busybox modprobe depmod cpio gzip xz readelf mkfs.ext4 qemu-img; do
    if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/sbin/$tool" ] && [ ! -x "/usr/sbin/$tool" ]; then
        echo "build-guest.sh: '$tool' missing; run scripts/deps.sh" >&2
        exit 1
    fi
done
export PATH="$PATH:/sbin:/usr/sbin"

# The kernel that linux-image-amd64 currently points at, not whatever the
# build machine happens to be running (containers run a foreign kernel).
kver=$(dpkg-query -W -f='${Depends}' linux-image-amd64 2>/dev/null |
       sed -n 's/.*linux-image-\([^ ,]*\).*/\1/p')
if [ -z "$kver" ] || [ ! -e "/boot/vmlinuz-$kver" ]; then
    kver=$(find /boot -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sed 's/^vmlinuz-//' | sort -V | tail -n 1)
fi
kernel=/boot/vmlinuz-$kver
if [ -z "$kver" ] || [ ! -r "$kernel" ] || [ ! -d "/lib/modules/$kver" ]; then
    echo "build-guest.sh: no usable kernel in /boot (install linux-image-amd64)" >&2
    exit 1
fi

outputs=(vmlinuz vmlinux initrd.img master.qcow2 cmdline)
up_to_date=1
for f in "${outputs[@]}"; do
    if [ ! -s "$outdir/$f" ] || [ ! "$outdir/$f" -nt "$self" ] || [ ! "$outdir/$f" -nt "$kernel" ]; then
        up_to_date=0
    fi
done
if [ "$up_to_date" -eq 1 ] && [ "$(cat "$outdir/cmdline")" = "$guest_cmdline" ]; then
    echo "build-guest.sh: $outdir is up to date"
    exit 0
fi

mkdir -p "$outdir"
# libvirt runs qemu as libvirt-qemu, which must be able to reach these files.
chmod 755 "$outdir"
work=$(mktemp -d "$outdir/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# ---------------------------------------------------------------- initramfs
root=$work/initramfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,mnt,etc}
cp /bin/busybox "$root/bin/busybox"
# The initramfs has no libc, so a dynamically linked busybox (package
# "busybox") would not even start.
ldd_out=$(LC_ALL=C ldd "$root/bin/busybox" 2>&1 || true)
applets=$("$root/bin/busybox" --list)
if [[ $ldd_out != *"not a dynamic"* ]] || ! grep -qx modprobe <<<"$applets"; then
    echo "build-guest.sh: /bin/busybox is not the static full busybox (install busybox-static)" >&2
    exit 1
fi
# The kernel opens /dev/console before /init runs; without the node the
# init would start with no stdout. Only root can create it, and /init
# re-opens the console after mounting devtmpfs anyway.
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true

moddir=$root/lib/modules/$kver
mkdir -p "$moddir"
# modprobe --show-depends also lists softdeps, which busybox would miss.
for m in $guest_modules $stay_modules; do
    if ! out=$(modprobe -S "$kver" --show-depends "$m" 2>&1); then
        echo "build-guest.sh: module $m not found for $kver: $out" >&2
        exit 1
    fi
    printf '%s\n' "$out"
done | awk '$1 == "insmod" { print $2 }' | sort -u | while read -r path; do
    rel=${path#/lib/modules/"$kver"/}
    rel=${rel#/usr/lib/modules/"$kver"/}
    dest=$moddir/${rel%.ko*}.ko
    mkdir -p "$(dirname "$dest")"
    # busybox insmod only reads plain .ko files.
    case $path in
        *.ko.xz)  xz -dc "$path" >"$dest" ;;
        *.ko.zst) zstd -qdc "$path" >"$dest" ;;
        *.ko.gz)  gzip -dc "$path" >"$dest" ;;
        *)        cp "$path" "$dest" ;;
    esac
done
for f in modules.builtin modules.builtin.modinfo modules.order; do
    if [ -e "/lib/modules/$kver/$f" ]; then cp "/lib/modules/$kver/$f" "$moddir/"; fi
done
depmod -b "$root" "$kver"
if [ ! -s "$moddir/modules.dep" ]; then
    echo "build-guest.sh: depmod produced no modules.dep" >&2
    exit 1
fi

cat >"$root/init" <<INIT
#!/bin/busybox sh
# vpool test guest: count this boot on the disk, report one line on ttyS0,
# power off; with vpool.stay=1 stay up until the ACPI power button. See
# docs/test-guest.md.
MODULES="$(printf '%s' "$guest_modules" | tr '\n' ' ')"
STAY_MODULES="$stay_modules"
INIT
cat >>"$root/init" <<'INIT'
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1

report() {
    # Keep kernel messages from splicing into the middle of the report line.
    echo 1 >/proc/sys/kernel/printk 2>/dev/null
    if [ -c /dev/ttyS0 ]; then
        echo "$*" >/dev/ttyS0
    else
        echo "$*"
    fi
}

heartbeat=
stop_heartbeat() {
    if [ -n "$heartbeat" ]; then
        kill "$heartbeat" 2>/dev/null
        # Only once it is gone is nothing left holding /mnt open.
        wait "$heartbeat" 2>/dev/null
        heartbeat=
    fi
}

halt_now() {
    sync
    poweroff -f
    # Only reached without ACPI; panic=-1 then turns this into a reboot.
    sleep 2
    exit 1
}

fail() {
    stop_heartbeat
    umount /mnt 2>/dev/null
    report "VPOOL-GUEST error=$1"
    halt_now
}

for m in $MODULES; do
    modprobe "$m" 2>/dev/null
done

# SCSI/ATA scanning is asynchronous; give the disk up to 10 s to appear.
disk=
i=0
while [ $i -lt 100 ]; do
    for d in sda vda hda; do
        if [ -b /dev/$d ]; then disk=$d; break 2; fi
    done
    usleep 100000
    i=$((i + 1))
done
[ -n "$disk" ] || fail no-disk

mount -t ext4 /dev/$disk /mnt || fail mount-failed-$disk

uuid=$(tr 'A-F' 'a-f' </sys/class/dmi/id/product_uuid 2>/dev/null)
[ -n "$uuid" ] || uuid=unknown

count=0
if [ -f /mnt/bootcount ]; then
    count=$(cat /mnt/bootcount)
    case $count in ''|*[!0-9]*) count=0 ;; esac
fi
count=$((count + 1))
echo "$count" >/mnt/bootcount || fail write-failed
if [ ! -s /mnt/owner ]; then
    echo "$uuid" >/mnt/owner || fail write-failed
fi
owner=$(cat /mnt/owner)
if [ -f /mnt/master-version ]; then
    master=$(tr ' ' '_' </mnt/master-version | tr -d '\n')
else
    master=none
fi

# PCI NIC drivers bind during modprobe, virtio ones slightly later.
nic=none
i=0
while [ $i -lt 20 ] && [ ! -e /sys/class/net/eth0 ]; do
    usleep 100000
    i=$((i + 1))
done
if [ -e /sys/class/net/eth0/device/driver ]; then
    nic=$(basename "$(readlink /sys/class/net/eth0/device/driver)")
fi

echo "boot=$count uuid=$uuid disk=$disk nic=$nic" >>/mnt/bootlog || fail write-failed
sync

stay=0
tick=0
for arg in $(cat /proc/cmdline); do
    case $arg in
        vpool.stay=1) stay=1 ;;
        vpool.tick=1) tick=1 ;;
    esac
done

if [ "$stay" -eq 0 ]; then
    umount /mnt || fail umount-failed
    report "VPOOL-GUEST uuid=$uuid boot=$count disk=$disk owner=$owner nic=$nic master=$master"
    halt_now
fi

# Stay mode. The press must be caught from the moment the line is out, since
# that is when a host may send it; ACPI forgets a press made before the
# button driver is loaded, so load it and open the device first.
for m in $STAY_MODULES; do
    modprobe "$m" 2>/dev/null
done
button=
for e in /sys/class/input/event*; do
    if [ "$(cat "$e/device/name" 2>/dev/null)" = "Power Button" ]; then
        button=/dev/input/${e##*/}
        break
    fi
done
# A failing "exec 3<" would kill PID 1 (kernel panic), so check first.
if [ -z "$button" ] || ! (: <"$button") 2>/dev/null; then
    fail no-power-button
fi
# One descriptor kept open for the whole wait: evdev queues events per open
# file, so nothing is lost between two reads.
exec 3<"$button"

# Proof of life: the disk keeps being written while the guest is up. The
# prefix differs from the per-boot "boot=" lines, and each line is synced so
# a destroyed guest loses at most the current one (the ext4 journal keeps
# the filesystem itself consistent either way).
(
    while sleep 5; do
        read -r up _ </proc/uptime
        echo "alive boot=$count uptime=${up%.*}" >>/mnt/bootlog
        sync
    done
) &
heartbeat=$!

report "VPOOL-GUEST uuid=$uuid boot=$count disk=$disk owner=$owner nic=$nic master=$master"

# A live move's downtime as the guest lives it: a line every 10 ms on the
# console; an observer on the host measures the longest silence. The
# guest's own clock stands still while it is paused, so only the arrival
# times tell.
ticker=
if [ "$tick" -eq 1 ]; then
    (
        n=0
        while :; do
            n=$((n + 1))
            echo "tick $n" >/dev/ttyS0
            usleep 10000
        done
    ) &
    ticker=$!
fi

# struct input_event on x86_64 is 24 bytes: struct timeval (16), then u16
# type, u16 code, s32 value. Wait for EV_KEY (1) KEY_POWER (116) pressed
# (value 1; 0 is the release). One read of 24 bytes returns exactly one event.
while :; do
    ev=$(dd bs=24 count=1 <&3 2>/dev/null | od -An -tu2 -j16 -N6)
    # An empty read means the device went away; waiting on would spin.
    [ -n "$ev" ] || fail power-button-read
    set -- $ev
    if [ "$1" = 1 ] && [ "$2" = 116 ] && [ "$3" = 1 ]; then
        break
    fi
done
exec 3<&-

[ -z "$ticker" ] || kill "$ticker" 2>/dev/null
stop_heartbeat
sync
umount /mnt || fail umount-failed
report "VPOOL-GUEST shutdown uuid=$uuid"
halt_now
INIT
chmod 755 "$root/init"

(cd "$root" && find . -print0 | LC_ALL=C sort -z |
    cpio --null -o -H newc -R 0:0 --quiet) | gzip -9 -n >"$work/initrd.img"

# ------------------------------------------------------------- master disk
fsroot=$work/master-root
mkdir -p "$fsroot/filler"
echo "$master_version" >"$fsroot/master-version"
# Non-zero filler so the qcow2 really carries data the overlays must read
# through; seq keeps it deterministic.
for i in 1 2 3 4; do
    seq $(((i - 1) * 200000 + 1)) $((i * 200000)) >"$fsroot/filler/part$i.txt"
done
mkfs.ext4 -q -F -L vpool-master -E root_owner=0:0 -d "$fsroot" "$work/master.raw" "$master_size" >/dev/null
qemu-img convert -f raw -O qcow2 "$work/master.raw" "$work/master.qcow2"

cp "$kernel" "$work/vmlinuz"
# The same kernel uncompressed, an ELF that QEMU starts at its PVH entry
# point: no BIOS boot sector, no decompression, which under TCG take about
# 3 of the 6.5 s a BIOS boot of this guest lasts. Only without UEFI (OVMF
# loads a PE kernel, vmlinuz). Debian compresses its kernel with xz: the
# payload starts at the first xz stream in the bzImage.
offset=$(grep -abo $'\xfd7zXZ\x00' "$kernel" | head -n 1 | cut -d: -f1)
[ -n "$offset" ] || { echo "build-guest.sh: no xz payload in $kernel" >&2; exit 1; }
tail -c +$((offset + 1)) "$kernel" | xz -dc >"$work/vmlinux" 2>/dev/null || true
# (xz ends with an error at the bytes past the stream; what counts is an ELF
# with Xen's PHYS32_ENTRY note, the PVH entry point.)
if ! readelf -n "$work/vmlinux" 2>/dev/null | grep -q 'Xen .*(0x00000012)'; then
    echo "build-guest.sh: $kernel has no PVH entry point (CONFIG_PVH)" >&2
    exit 1
fi
echo "$guest_cmdline" >"$work/cmdline"

# Rename into place so a guest still running from the previous build keeps
# its open files.
for f in "${outputs[@]}"; do
    chmod 644 "$work/$f"
    mv -f "$work/$f" "$outdir/$f"
done
echo "build-guest.sh: built $outdir (kernel $kver, $(stat -c %s "$outdir/initrd.img") byte initrd)"
