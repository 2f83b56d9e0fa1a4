#!/bin/bash
# Hostile images: whoever can write to shared storage, or hands vpool an
# image, controls every byte of it. Each hostile image is refused by
# 'image add' (exit 1, one line, nothing changed), and each hostile file
# planted on shared storage in place of a VM's overlay or of a master image
# is refused by every operation that meets it: vm start, pool start,
# migrate, image verify, pool create, and reported by fsck. A symbolic link
# in any path a domain names is refused the same way, and every start (an
# abort's and a resumed migration's too) checks what vm start checks.
#
# The images are made here at run time with qemu-img, printf and dd only, by
# patching single header fields of a good image (offsets from QEMU's
# docs/interop/qcow2.txt; every field is big endian).
. "$(dirname "$0")/lib.sh"

TEST_PREFIX=hostile
require_hosts "$HOSTA" "$HOSTB"
command -v qemu-img >/dev/null || bail "qemu-img not found"
setup_workdir
standard_setup

H=$WORK/hostile
mkdir -p "$H"

# refusal CHECK...: run a check, counting the refusals it saw.
tried=0
refused=0
refusal() {
    "$@" >"$WORK/refusal.tap"
    tried=$((tried + 1))
    if head -1 "$WORK/refusal.tap" | grep -q '^ok'; then refused=$((refused + 1)); fi
    cat "$WORK/refusal.tap"
}

# --- byte patching ---------------------------------------------------------

# put_be BYTES FILE OFFSET VALUE: VALUE as a BYTES-byte big-endian field.
put_be() {
    local bytes=$1 file=$2 off=$3 val=$4 hex esc
    hex=$(printf "%0$((bytes * 2))x" "$val")
    hex=${hex: -$((bytes * 2))}
    esc=$(sed 's/../\\x&/g' <<<"$hex")
    # shellcheck disable=SC2059 # the escapes are the point
    printf "$esc" | dd of="$file" bs=1 seek="$off" conv=notrunc status=none
}
put_be32() { put_be 4 "$@"; }
put_be64() { put_be 8 "$@"; }

# get_be32 FILE OFFSET
get_be32() {
    local b
    read -ra b <<<"$(od -An -tu1 -j "$2" -N4 "$1")"
    echo $(((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]))
}

# variant NAME: a copy of the good image to patch, its path on stdout.
good=$H/good.qcow2
qemu-img create -q -f qcow2 "$good" 64M || bail "qemu-img create failed"
variant() {
    cp "$good" "$H/$1.qcow2"
    echo "$H/$1.qcow2"
}

# drop_backing_format FILE: hide the backing format extension (the first
# extension qemu-img writes after the header) behind an unknown type, which
# readers skip: what is left is a backing file without a format, which
# qemu-img refuses to create but QEMU would probe.
drop_backing_format() {
    local hl
    hl=$(get_be32 "$1" 100)
    [ "$(get_be32 "$1" "$hl")" = $((0xe2792aca)) ] || bail "no backing format extension at $hl in $1"
    put_be32 "$1" "$hl" 0x7a7a7a7a
}

# --- the corpus --------------------------------------------------------------
# name|regex of the one line 'image add' must print|how to make it

cluster=65536 # qemu-img's default; the good image's header cluster
size=$(stat -c %s "$good")
declare -a names=() regexes=()
add() {
    names+=("$1")
    regexes+=("$2")
}

qemu-img create -q -f qcow2 -u -b /etc/shadow -F raw "$H/backing-shadow.qcow2" 64M
add backing-shadow "has a backing file '/etc/shadow'"

qemu-img create -q -f qcow2 -u -b ../../etc/passwd -F raw "$H/backing-relative.qcow2" 64M
add backing-relative "has a backing file '\.\./\.\./etc/passwd'"

qemu-img create -q -f qcow2 -u -b /etc/shadow -F raw "$H/backing-no-format.qcow2" 64M
drop_backing_format "$H/backing-no-format.qcow2"
add backing-no-format "has a backing file '/etc/shadow'"

qemu-img create -q -f qcow2 -o data_file="$H/ext.raw" "$H/data-file.qcow2" 64M
add data-file "has an external data file '$H/ext.raw'"

# The data file feature bit alone, with no name: QEMU would then want one
# from its command line.
f=$(variant data-file-bit)
put_be64 "$f" 72 4
add data-file-bit "has an external data file"

put_be64 "$(variant size-2e63)" 24 $((1 << 63))
add size-2e63 "impossible virtual size 9223372036854775808"

put_be64 "$(variant size-zero)" 24 0
add size-zero "impossible virtual size 0"

put_be64 "$(variant l1-past-end)" 40 $((cluster * 1024))
add l1-past-end "L1 table past the end of the file"

put_be64 "$(variant l1-unaligned)" 40 $((3 * cluster + 8))
add l1-unaligned "unaligned L1 table offset"

put_be32 "$(variant l1-too-small)" 36 0
add l1-too-small "L1 table too small for its virtual size"

put_be64 "$(variant refcount-past-end)" 48 $((cluster * 1024))
add refcount-past-end "refcount table past the end of the file"

put_be64 "$(variant refcount-in-header)" 48 0
add refcount-in-header "refcount table inside the header cluster"

f=$(variant snapshots-past-end)
put_be32 "$f" 60 1
put_be64 "$f" 64 $((cluster * 1024))
add snapshots-past-end "snapshot table past the end of the file"

put_be32 "$(variant cluster-bits-8)" 20 8
add cluster-bits-8 "unsupported cluster size \(cluster_bits 8,"

put_be32 "$(variant cluster-bits-22)" 20 22
add cluster-bits-22 "unsupported cluster size \(cluster_bits 22,"

f=$(variant backing-name-1024)
put_be64 "$f" 8 512
put_be32 "$f" 16 1024
add backing-name-1024 "backing file name that is too long \(1024 bytes"

f=$(variant backing-offset-past-end)
put_be64 "$f" 8 $((1 << 40))
put_be32 "$f" 16 11
add backing-offset-past-end "backing file name outside the header"

f=$(variant backing-offset-in-header)
put_be64 "$f" 8 16
put_be32 "$f" 16 11
add backing-offset-in-header "backing file name outside the header"

for n in 0 4 71 103; do
    head -c "$n" "$good" >"$H/truncated-$n.qcow2"
done
add truncated-0 "is empty"
add truncated-4 "is truncated"
add truncated-71 "is truncated"
add truncated-103 "is truncated"
head -c "$cluster" "$good" >"$H/header-only.qcow2"
add header-only "past the end of the file"
head -c $((size - 8)) "$good" >"$H/truncated-l1.qcow2"
add truncated-l1 "L1 table past the end of the file"

put_be32 "$(variant version-1)" 4 1
add version-1 "unsupported qcow2 version 1"

put_be32 "$(variant version-4)" 4 4
add version-4 "unsupported qcow2 version 4"

put_be32 "$(variant encrypted-aes)" 32 1
add encrypted-aes "is encrypted"

# LUKS (crypt_method 2) as qemu-img would write it, without paying for the
# key derivation qemu-img benchmarks at create time.
put_be32 "$(variant encrypted-luks)" 32 2
add encrypted-luks "is encrypted"

put_be64 "$(variant corrupt)" 72 2
add corrupt "is marked corrupt"

put_be64 "$(variant incompat-bit-5)" 72 $((1 << 5))
add incompat-bit-5 "unknown incompatible features \(0x20\)"

put_be64 "$(variant incompat-bit-63)" 72 $((1 << 63))
add incompat-bit-63 "unknown incompatible features \(0x8000000000000000\)"

put_be32 "$(variant header-length-huge)" 100 $((cluster + 8))
add header-length-huge "invalid header length"

# An extension whose length runs past the header cluster.
f=$(variant extension-overrun)
put_be32 "$f" "$(get_be32 "$f" 100)" 0x12345678
put_be32 "$f" $(($(get_be32 "$f" 100) + 4)) $((cluster * 2))
add extension-overrun "malformed header extension 0x12345678"

# A compression type the header does not announce.
f=$(variant compression-unannounced)
put_be32 "$f" 104 $((1 << 24))
add compression-unannounced "compression type that does not match"

# Names are not for guessing formats: a qcow2 header inside a file given as
# raw, and a VMDK given as qcow2.
cp "$good" "$H/qcow2-as-raw.raw"
add qcow2-as-raw "is not a raw image: it starts with a qcow2 header"
qemu-img create -q -f vmdk "$H/vmdk-as-qcow2.qcow2" 16M
add vmdk-as-qcow2 "is not a qcow2 image"

# The source of 'image add' is the user's own path and may be a link; what
# it reaches is judged like any other file.
ln -s /etc/passwd "$H/symlink-passwd.qcow2"
add symlink-passwd "is not a qcow2 image"
ln -s "$H/backing-shadow.qcow2" "$H/symlink-to-hostile.qcow2"
add symlink-to-hostile "has a backing file '/etc/shadow'"

for i in "${!names[@]}"; do
    n=${names[$i]}
    file=$H/$n.qcow2
    fmt=qcow2
    [ -e "$file" ] || [ -L "$file" ] || { file=$H/$n.raw; fmt=raw; }
    [ -e "$file" ] || [ -L "$file" ] || bail "hostile image $n was not made"
    refusal expect_fail "image add refuses $n" 1 "^vpool: .*${regexes[$i]}" \
        vpool image add "h$i" --file "$file" --format "$fmt"
done
diag "refused $refused of $tried hostile images"
tried=0
refused=0
check_eq "no image was added" "guest" "$(vpool image list --json | jq -r '.[].name' | xargs)"

# --- hostile files on shared storage ---------------------------------------------

pool=hostile
vm=$pool-001
check "pool create $pool" vpool pool create "$pool" --image guest --env "$HOSTA" --profile pc-ide --size 1
delta=$(delta_of "$vm")
# Hand-overs rename the disks; the manifest says which file is the overlay now.
overlay=$delta/$(jq -r .overlay "$delta/manifest.json")
master=$STORAGE/images/guest.qcow2
{ [ -f "$overlay" ] && [ -f "$master" ]; } || bail "pool create left no overlay or master"
saved=$WORK/saved
mkdir -p "$saved"
mv "$overlay" "$saved/overlay.qcow2"

domstate() { virsh_on "$HOSTA" domstate "$vm" 2>&1; }

# plant NAME: put hostile variant NAME where the overlay was.
plant() {
    rm -f "$overlay"
    case $1 in
        backing-shadow)
            qemu-img create -q -f qcow2 -u -b /etc/shadow -F raw "$overlay" 64M ;;
        foreign-master)
            qemu-img create -q -f qcow2 "$saved/foreign.qcow2" 64M
            qemu-img create -q -f qcow2 -u -b "$saved/foreign.qcow2" -F qcow2 "$overlay" 64M ;;
        master-as-raw)
            # The right file, read as raw: the guest would see the master's
            # qcow2 metadata as its disk, and writes could reach it.
            qemu-img create -q -f qcow2 -u -b "$master" -F raw "$overlay" 64M ;;
        master-no-format)
            qemu-img create -q -f qcow2 -u -b "$master" -F qcow2 "$overlay" 64M
            drop_backing_format "$overlay" ;;
        symlink-passwd)
            ln -s /etc/passwd "$overlay" ;;
        symlink-to-good)
            # Even a link to a good overlay: links let a writer swap targets
            # between the check and the open.
            cp "$saved/overlay.qcow2" "$saved/good-copy.qcow2"
            ln -s "$saved/good-copy.qcow2" "$overlay" ;;
        truncated)
            head -c 100 "$saved/overlay.qcow2" >"$overlay" ;;
        data-file)
            qemu-img create -q -f qcow2 -u -b "$master" -F qcow2 -o data_file="$saved/ext.raw" "$overlay" 64M ;;
        corrupt)
            cp "$saved/overlay.qcow2" "$overlay"
            put_be64 "$overlay" 72 2 ;;
        raw-overlay)
            head -c 1048576 /dev/zero >"$overlay" ;;
        directory)
            mkdir "$overlay" ;;
    esac
}

planted=(backing-shadow foreign-master master-as-raw master-no-format symlink-passwd symlink-to-good
         truncated data-file corrupt raw-overlay directory)
for p in "${planted[@]}"; do
    plant "$p" || bail "cannot plant $p"
    for op in "vm start $vm" "pool start $pool" "migrate $pool --to $HOSTB --dry-run"; do
        # shellcheck disable=SC2086 # op is words
        refusal expect_fail "overlay $p: $op refused, naming the overlay" 1 "$overlay" vpool $op
    done
    check_eq "overlay $p: domain still shut off" "shut off" "$(domstate)"
    out=$(vpool fsck 2>&1)
    rc=$?
    check_eq "overlay $p: fsck exits 1" 1 "$rc"
    # fsck names the collection; the detail says what is wrong with the file.
    check "overlay $p: fsck reports the delta" grep -q "$delta" <<<"$out"
    diag "fsck: $(grep -m1 "$delta" <<<"$out")"
    rm -rf "$overlay"
done
mv "$saved/overlay.qcow2" "$overlay"

# The master image replaced by a symbolic link: to a copy of itself (the
# bytes pass every check, only the link is wrong) and to /etc/passwd.
mv "$master" "$saved/guest.qcow2"
for target in "$saved/guest.qcow2" /etc/passwd; do
    ln -s "$target" "$master"
    t=$(basename "$target")
    refusal expect_fail "master linked to $t: image verify refused" 1 "symbolic link" vpool image verify guest
    refusal expect_fail "master linked to $t: pool create refused" 1 "$master" \
        vpool pool create hostile2 --image guest --env "$HOSTA" --profile pc-ide --size 1
    refusal expect_fail "master linked to $t: migrate refused" 1 "$master" \
        vpool migrate "$pool" --to "$HOSTB" --dry-run
    out=$(vpool fsck 2>&1)
    rc=$?
    check_eq "master linked to $t: fsck exits 1" 1 "$rc"
    check "master linked to $t: fsck names the master" grep -q "$master" <<<"$out"
    diag "fsck: $(grep -m1 "$master" <<<"$out")"
    for op in "vm start $vm" "pool start $pool"; do
        # shellcheck disable=SC2086 # op is words
        refusal expect_fail "master linked to $t: $op refused" 1 "$master" vpool $op
        check_eq "master linked to $t: $op leaves the domain shut off" "shut off" "$(domstate)"
        # Should a start get through, the guest finishes before the next one.
        [ "$(domstate)" = "shut off" ] || wait_shutoff 120 "$vm" || bail "$vm did not power off"
    done
    rm "$master"
done
mv "$saved/guest.qcow2" "$master"
diag "refused $refused of $tried operations on planted files"

# --- symbolic links in every path a domain names ------------------------------------
# libvirt and QEMU follow links (virtlogd appends a guest's console to
# whatever the log path leads to): vpool hands them none. Each planted link
# is refused by every operation that would define or start a domain with
# it, naming the path, and nothing changes.
victim=$saved/victim
echo "not a console log" >"$victim"
log=$STORAGE/logs/$vm.log
[ ! -e "$log" ] || mv "$log" "$saved/console.log"
ln -s "$victim" "$log"
for op in "vm start $vm" "pool start $pool" "migrate $pool --to $HOSTB --dry-run"; do
    # shellcheck disable=SC2086 # op is words
    expect_fail "console log linked: $op refused, naming the log" 1 "$log.* is a symbolic link; refusing" vpool $op
done
ln -s "$victim" "$STORAGE/logs/hostile5-001.log"
expect_fail "console log of a new VM linked: pool create refused before anything is made" 1 \
    "$STORAGE/logs/hostile5-001.log.* is a symbolic link" \
    vpool pool create hostile5 --image guest --env "$HOSTA" --profile pc-ide --size 1
check_eq "the file the links lead to is untouched" "not a console log" "$(cat "$victim")"
rm "$log" "$STORAGE/logs/hostile5-001.log"
mkdir "$log"
expect_fail "console log a directory: vm start refused" 1 "$log' is not a regular file" vpool vm start "$vm"
rmdir "$log"
[ ! -e "$saved/console.log" ] || mv "$saved/console.log" "$log"

# The kernel the guest boots, linked to a copy of itself.
kernel=$STORAGE/images/guest.kernel
mv "$kernel" "$saved/guest.kernel"
ln -s "$saved/guest.kernel" "$kernel"
expect_fail "kernel linked: vm start refused, naming the kernel" 1 "$kernel.* is a symbolic link" vpool vm start "$vm"
rm "$kernel"
mv "$saved/guest.kernel" "$kernel"

# The UEFI variable store of a VM that never booted (absent until its first
# start) planted as a link, then as a directory.
vpool image add uguest --file "$GUEST_DIR/master.qcow2" --kernel "$GUEST_DIR/vmlinuz" \
    --initrd "$GUEST_DIR/initrd.img" --cmdline "$(cat "$GUEST_DIR/cmdline")" --firmware bios,uefi >/dev/null ||
    bail "image add uguest failed"
vpool profile add q35-uefi --machine q35 --disk-bus sata --nic e1000 --vcpus 1 --memory 256M \
    --firmware uefi >/dev/null || bail "profile add q35-uefi failed"
check "pool create hostileu (UEFI, never started)" \
    vpool pool create hostileu --image uguest --env "$HOSTA" --profile q35-uefi --size 1
udelta=$(delta_of hostileu-001)
nvram=$udelta/$(jq -r .nvram "$udelta/manifest.json")
[ ! -e "$nvram" ] || bail "a never-booted UEFI VM has a variable store"
ln -s "$victim" "$nvram"
for op in "vm start hostileu-001" "pool start hostileu" "migrate hostileu --to $HOSTB --dry-run" \
          "migrate hostileu --to $HOSTB"; do
    # shellcheck disable=SC2086 # op is words
    expect_fail "variable store linked: $op refused, naming it" 1 "$nvram.* is a symbolic link" vpool $op
done
rm "$nvram"
mkdir "$nvram"
expect_fail "variable store a directory: migrate refused" 1 "$nvram' is not a regular file" \
    vpool migrate hostileu --to "$HOSTB"
rmdir "$nvram"
# Two stores beside the absent one: which is the user's is not for vpool to guess.
echo a >"$udelta/nvram.g7.fd"
echo b >"$udelta/nvram.g8.fd"
expect_fail "stray variable stores: migrate refused before the source is touched" 1 \
    "UEFI variable store '$(basename "$nvram")' is missing but 'nvram.g[78].fd' is there" \
    vpool migrate hostileu --to "$HOSTB"
rm "$udelta/nvram.g7.fd" "$udelta/nvram.g8.fd"
check "pool rm hostileu" vpool pool rm hostileu

# --- every start checks what vm start checks ----------------------------------------
# A migration cut short, then the master or an overlay spoiled before its
# abort or resume starts the VM: that start is refused with the very
# message vm start gives, and nothing runs.
add_desktop_image
dmaster=$STORAGE/images/desktop.qcow2

# migrated_until POOL POINT: POOL (one running desktop) migrated to host B
# and killed at fault point POINT.
migrated_until() {
    vpool pool create "$1" --image desktop --env "$HOSTA" --profile pc-ide --size 1 --start >/dev/null ||
        bail "pool create $1 failed"
    wait_boot 180 1 "$1-001" || bail "$1-001 did not boot"
    VPOOL_FAULT=$2:1 vpool migrate "$1" --to "$HOSTB" --shutdown-timeout 60 >/dev/null 2>&1
    mid=$(vpool migrate list --json | jq -r --arg p "$1" '[.[] | select(.pool == $p)] | max_by(.id) | .id')
}

# same_refusal DESC VM FILE: FILE (a verb's stderr) holds what vm start VM
# prints, and vm start refuses and changes nothing.
same_refusal() {
    local msg
    msg=$(vpool vm start "$2" 2>&1 >/dev/null)
    expect_fail "$1: vm start refused" 1 "not started" vpool vm start "$2"
    diag "vm start: $msg"
    check "$1: the same refusal as vm start's" grep -qF "${msg#vpool: }" "$3"
}

migrated_until hostile3 migrate.locked
vm3=hostile3-001
check_eq "hostile3 stopped at locked" "locked" "$(vpool migrate status "$mid" --json | jq -r '.vms[0].step')"
put_be64 "$(overlay_of "$vm3")" 72 2
vpool migrate abort "$mid" >/dev/null 2>"$WORK/abort.err"
check_eq "overlay marked corrupt: abort fails" 1 "$?"
same_refusal "overlay marked corrupt before the abort" "$vm3" "$WORK/abort.err"
check_eq "the source did not start it" "" "$(virsh_on "$HOSTA" list --name | grep "^$vm3$")"
put_be64 "$(overlay_of "$vm3")" 72 0
check "overlay mended: abort returns the VM" vpool migrate abort "$mid"
check_eq "it runs on host A again" "running" "$(virsh_on "$HOSTA" domstate "$vm3")"
check "pool rm hostile3" vpool pool rm hostile3 --force

migrated_until hostile4 migrate.handed_over
vm4=hostile4-001
check_eq "hostile4 stopped at handed_over" "handed_over" "$(vpool migrate status "$mid" --json | jq -r '.vms[0].step')"
mv "$dmaster" "$saved/desktop.qcow2"
qemu-img create -q -f qcow2 "$dmaster" 64M
vpool migrate resume "$mid" >/dev/null 2>"$WORK/resume.err"
check_eq "master replaced: resume fails" 1 "$?"
same_refusal "master replaced before the resume" "$vm4" "$WORK/resume.err"
check_eq "the target did not start it" "shut off" "$(virsh_on "$HOSTB" domstate "$vm4")"
rm "$dmaster"
mv "$saved/desktop.qcow2" "$dmaster"
check "master back: resume starts the VM on host B" vpool migrate resume "$mid"
check_eq "it runs on host B" "running" "$(virsh_on "$HOSTB" domstate "$vm4")"
check "pool rm hostile4" vpool pool rm hostile4 --force

# --- everything restored -------------------------------------------------------------
check "fsck is clean once everything is restored" vpool fsck
check "image verify passes again" vpool image verify guest --quiet
check "vm start works again" vpool vm start "$vm"
check "guest powers off by itself" wait_shutoff 120 "$vm"
check "pool rm $pool" vpool pool rm "$pool"

finish
