#!/bin/bash
# Every bad input gets one clear line on stderr, exit 1 (2 for usage), and
# leaves catalog, storage and both hosts exactly as they were.
. "$(dirname "$0")/lib.sh"

TEST_PREFIX=bad
require_hosts "$HOSTA" "$HOSTB"
setup_workdir
standard_setup
vpool profile add q35-virtio --machine q35 --disk-bus virtio --nic virtio --vcpus 1 --memory 256 >/dev/null
vpool pool create bad --image guest --env "$HOSTA" --profile pc-ide --size 1 >/dev/null || bail "pool create failed"

img=$GUEST_DIR/master.qcow2
long=$(printf 'a%.0s' $(seq 64))
ok63=$(printf 'b%.0s' $(seq 63))

# --- names -----------------------------------------------------------------
for name in '../x' 'a/b' '' "$long" '.hidden' 'x y' $'tab\there' $'nl\nx' 'semi;colon' "quo'te"; do
    shown=$(printf '%q' "$name")
    expect_fail "pool name $shown refused" 1 "invalid pool name" \
        vpool pool create --image guest --env "$HOSTA" --profile pc-ide --size 1 -- "$name"
    expect_fail "env name $shown refused" 1 "invalid env name" vpool env add --uri "$(uri_of "$HOSTA")" -- "$name"
    expect_fail "image name $shown refused" 1 "invalid image name" vpool image add --file "$img" -- "$name"
    expect_fail "profile name $shown refused" 1 "invalid profile name" \
        vpool profile add --machine pc --disk-bus ide --nic e1000 --vcpus 1 --memory 128 -- "$name"
done
expect_fail "name starting with '-' refused" 1 "invalid pool name '-x'" \
    vpool pool create --image guest --env "$HOSTA" --profile pc-ide --size 1 -- -x
expect_fail "name starting with '-' without -- is an unknown option" 2 "unknown option '-x'" \
    vpool pool create -x --image guest --env "$HOSTA" --profile pc-ide --size 1
expect_fail "63-character pool name leaves no room for VM numbers" 1 "too long" \
    vpool pool create "$ok63" --image guest --env "$HOSTA" --profile pc-ide --size 1
expect_fail "vm show with a traversal name" 1 "invalid vm name" vpool vm show ../../etc

# --- duplicates and unknowns -------------------------------------------------
expect_fail "duplicate env" 1 "env '$HOSTA' already exists" vpool env add "$HOSTA" --uri "$(uri_of "$HOSTA")"
expect_fail "duplicate image" 1 "image 'guest' already exists" vpool image add guest --file "$img"
expect_fail "duplicate profile" 1 "profile 'pc-ide' already exists" \
    vpool profile add pc-ide --machine pc --disk-bus ide --nic e1000 --vcpus 1 --memory 128
expect_fail "duplicate pool" 1 "pool 'bad' already exists" \
    vpool pool create bad --image guest --env "$HOSTA" --profile pc-ide --size 1
expect_fail "unknown env" 1 "unknown env 'nowhere'" \
    vpool pool create p1 --image guest --env nowhere --profile pc-ide --size 1
expect_fail "unknown image" 1 "unknown image 'noimg'" \
    vpool pool create p1 --image noimg --env "$HOSTA" --profile pc-ide --size 1
expect_fail "unknown profile" 1 "unknown profile 'noprof'" \
    vpool pool create p1 --image guest --env "$HOSTA" --profile noprof --size 1
expect_fail "unknown vm" 1 "unknown vm 'ghost-001'" vpool vm start ghost-001
expect_fail "unknown pool" 1 "unknown pool 'ghost'" vpool pool rm ghost

# --- URIs and unreachable hosts ---------------------------------------------
expect_fail "unreachable URI" 1 "cannot connect to 'qemu\+unix:///system\?socket=/nonexistent/sock'" \
    vpool env add dead --uri 'qemu+unix:///system?socket=/nonexistent/sock'
expect_fail "malformed URI (no scheme)" 1 "malformed libvirt URI" vpool env add bad1 --uri 'not a uri'
expect_fail "malformed URI (bad driver)" 1 "(malformed libvirt URI|cannot connect)" vpool env add bad2 --uri 'qe$mu:///system'
expect_fail "unknown libvirt driver" 1 "cannot connect to 'nosuchdriver:///system'" vpool env add bad3 --uri 'nosuchdriver:///system'
expect_fail "empty URI" 1 "empty libvirt URI" vpool env add bad4 --uri ''

# An env that was reachable when added and is down now.
"$HOSTS_SH" up --fresh hostc >/dev/null || bail "cannot start hostc"
vpool env add hostc --uri "$(uri_of hostc)" >/dev/null || bail "env add hostc failed"
"$HOSTS_SH" down hostc >/dev/null || bail "cannot stop hostc"
snap_a=$(virsh_on "$HOSTA" list --all --name | sort)
# What vpool saw of the host (unreachable since when) is recorded in its
# row; nothing else may change.
before=$(catalog_dump; find "$STORAGE" | sort)
out=$(vpool pool create p2 --image guest --env hostc --profile pc-ide --size 2 2>&1 >/dev/null)
rc=$?
after=$(catalog_dump; find "$STORAGE" | sort)
check_eq "pool create on a host that went down: exit 1" 1 "$rc"
check "pool create on a host that went down: names env and cause" grep -Eq "^vpool: env 'hostc': cannot connect" <<<"$out"
check_eq "pool create on a host that went down: nothing changed" "$before" "$after"
check_eq "the host is shown unreachable, since when it was found so" "false true" \
    "$(vpool env host list hostc --json | jq -r '.[0] | "\(.reachable) \(.unreachable_since != null)"')"
check_eq "pool create on a host that went down: host A untouched" "$snap_a" "$(virsh_on "$HOSTA" list --all --name | sort)"
vpool env rm hostc >/dev/null

# --- hardware the env or the image does not offer -------------------------
vpool profile add oldq35 --machine pc-q35-1.0 --disk-bus virtio --nic virtio --vcpus 1 --memory 128 >/dev/null
expect_fail "machine type the env does not offer" 1 "env '$HOSTA' does not offer machine type 'pc-q35-1.0'" \
    vpool pool create p3 --image guest --env "$HOSTA" --profile oldq35 --size 1
vpool image add ideonly --file "$img" --disk-buses ide --nic-models e1000 --no-inspect >/dev/null || bail "image add ideonly"
expect_fail "disk bus the image has no driver for" 1 "image 'ideonly' declares no driver for disk bus 'virtio'" \
    vpool pool create p4 --image ideonly --env "$HOSTA" --profile q35-virtio --size 1
vpool profile add pc-virtionic --machine pc --disk-bus ide --nic virtio --vcpus 1 --memory 128 >/dev/null
expect_fail "NIC the image has no driver for" 1 "image 'ideonly' declares no driver for NIC model 'virtio'" \
    vpool pool create p5 --image ideonly --env "$HOSTA" --profile pc-virtionic --size 1
vpool profile add q35-uefi --machine q35 --disk-bus sata --nic e1000 --vcpus 1 --memory 128 --firmware uefi >/dev/null
expect_fail "firmware the image does not boot with" 1 "image 'guest' does not boot with firmware 'uefi'" \
    vpool pool create p6 --image guest --env "$HOSTA" --profile q35-uefi --size 1
expect_fail "IDE on q35 does not exist" 1 "has no IDE controller" \
    vpool profile add q35-ide --machine q35 --disk-bus ide --nic e1000 --vcpus 1 --memory 128
expect_fail "unknown machine type" 1 "unknown machine type 'sparc'" \
    vpool profile add x --machine sparc --disk-bus ide --nic e1000 --vcpus 1 --memory 128
expect_fail "unknown disk bus" 1 "unknown disk bus 'floppy'" \
    vpool profile add x --machine pc --disk-bus floppy --nic e1000 --vcpus 1 --memory 128
expect_fail "unknown NIC" 1 "unknown NIC model 'ne2k'" \
    vpool profile add x --machine pc --disk-bus ide --nic ne2k --vcpus 1 --memory 128
expect_fail "unknown bus in an image's list" 1 "unknown disk bus 'nvme'" \
    vpool image add x --file "$img" --disk-buses ide,nvme

# --- image files -----------------------------------------------------------
t=$WORK/files
mkdir -p "$t"
: >"$t/empty.qcow2"
head -c 100 "$img" >"$t/trunc.qcow2"
head -c 30 "$img" >"$t/tiny.qcow2"
qemu-img create -q -f qcow2 -b "$img" -F qcow2 "$t/overlay.qcow2"
qemu-img create -q -f qcow2 -o data_file="$t/ext.raw" "$t/datafile.qcow2" 16M
qemu-img create -q -f raw "$t/plain.raw" 16M
expect_fail "missing image file" 1 "cannot open '$t/missing.qcow2'" vpool image add x --file "$t/missing.qcow2"
expect_fail "empty image file" 1 "is empty" vpool image add x --file "$t/empty.qcow2"
expect_fail "truncated qcow2" 1 "truncated" vpool image add x --file "$t/tiny.qcow2"
expect_fail "qcow2 cut after its header" 1 "(truncated|past the end|beyond)" vpool image add x --file "$t/trunc.qcow2"
expect_fail "qcow2 declared raw" 1 "not a raw image" vpool image add x --file "$img" --format raw
expect_fail "raw declared qcow2" 1 "not a qcow2 image" vpool image add x --file "$t/plain.raw"
expect_fail "qcow2 with a backing file" 1 "has a backing file" vpool image add x --file "$t/overlay.qcow2"
expect_fail "qcow2 with an external data file" 1 "external data file" vpool image add x --file "$t/datafile.qcow2"
expect_fail "a directory as image" 1 "not a regular file" vpool image add x --file "$t"
expect_fail "unknown format" 1 "unknown image format 'vmdk'" vpool image add x --file "$img" --format vmdk
expect_fail "missing kernel file" 1 "kernel '$t/nokernel'" vpool image add x --file "$img" --kernel "$t/nokernel"

# --- sizes and counts ---------------------------------------------------------
for size in 0 abc -1 1.5 10000 99999999999999999999 ''; do
    expect_fail "pool size '$size' refused" 1 "pool size" \
        vpool pool create p7 --image guest --env "$HOSTA" --profile pc-ide --size "$size"
done
for dd in 0 12X -5 1.5G; do
    expect_fail "data disk size '$dd' refused" 1 "data disk size" \
        vpool pool create p7 --image guest --env "$HOSTA" --profile pc-ide --size 1 --data-disk "$dd"
done
for mem in 0 12X 1.5G -1 ''; do
    expect_fail "memory '$mem' refused" 1 "memory" \
        vpool profile add x --machine pc --disk-bus ide --nic e1000 --vcpus 1 --memory "$mem"
done
for vc in 0 -1 two 256; do
    expect_fail "vCPU count '$vc' refused" 1 "vCPU count" \
        vpool profile add x --machine pc --disk-bus ide --nic e1000 --vcpus "$vc" --memory 128
done
expect_fail "stop timeout that does not parse" 1 "timeout" vpool vm stop bad-001 --timeout soon

# --- in use ----------------------------------------------------------------------
expect_fail "env rm while a pool lives there" 1 "env '$HOSTA' is used by pool 'bad'" vpool env rm "$HOSTA"
expect_fail "image rm while a pool uses it" 1 "image 'guest' is used by pool 'bad'" vpool image rm guest
expect_fail "profile rm while a pool uses it" 1 "profile 'pc-ide' is used by pool 'bad'" vpool profile rm pc-ide

# --- usage errors (exit 2) -------------------------------------------------------
expect_fail "missing --uri" 2 "missing --uri" vpool env add x
expect_fail "unknown option" 2 "unknown option '--frobnicate'" vpool pool list --frobnicate
expect_fail "extra argument" 2 "expected: vpool env show NAME" vpool env show a b
expect_fail "unknown noun" 2 "unknown noun 'pools'" vpool pools list
expect_fail "unknown verb" 2 "unknown verb 'destroy'" vpool pool destroy bad
expect_fail "option without its value" 2 "needs a value" vpool pool create p8 --image
expect_fail "env set with nothing to set" 2 "nothing to set: give --fence-cmd, --no-fence-cmd, --on-maintenance, --on-host-failure or --grace" vpool env set "$HOSTA"
expect_fail "env set with both" 2 "give either --fence-cmd" vpool env set "$HOSTA" --fence-cmd /bin/true --no-fence-cmd
expect_fail "env drain fenced on another env" 2 "--source-fenced must name the env drained" \
    vpool env drain "$HOSTA" --to "$HOSTB" --source-fenced "$HOSTB"

# --- fence agents and the operator's word --------------------------------------------
expect_fail "fence agent on an unknown env" 1 "unknown env 'nowhere'" vpool env set nowhere --fence-cmd /bin/true
expect_fail "fence agent by a relative name" 1 "fence agent 'true' must be an absolute path" \
    vpool env set "$HOSTA" --fence-cmd true
printf '#!/bin/sh\nexit 0\n' >"$WORK/agent"
chmod 644 "$WORK/agent"
expect_fail "fence agent that is not executable" 1 "fence agent '$WORK/agent' is not an executable file" \
    vpool env set "$HOSTA" --fence-cmd "$WORK/agent"
expect_fail "fence agent with a control character" 1 "control characters are not allowed" \
    vpool env set "$HOSTA" --fence-cmd "$(printf '/bin/true\033[2J')"
expect_fail "env add with a bad fence agent adds nothing" 1 "a quote is not closed" \
    vpool env add fenced --uri "$(uri_of "$HOSTA")" --fence-cmd "/bin/true 'x"
expect_fail "--source-fenced with an invalid env name" 1 "invalid env name" \
    vpool migrate bad --to "$HOSTB" --source-fenced '../x'
expect_fail "--source-fenced for an env that answers" 1 "env '$HOSTA' answers: --source-fenced is only for an env that does not" \
    vpool migrate bad --to "$HOSTB" --source-fenced "$HOSTA"
expect_fail "resume --source-fenced of an unknown migration" 1 "unknown migration 999" \
    vpool migrate resume 999 --source-fenced "$HOSTA"
for v in -1 3601 soon; do
    expect_fail "source_grace '$v' refused" 1 "source grace period" env VPOOL_SOURCE_GRACE="$v" "$VPOOL_BIN" env list
done
expect_fail "fence_timeout 0 refused" 1 "fence timeout" env VPOOL_FENCE_TIMEOUT=0 "$VPOOL_BIN" env list

# --- damaged or missing catalog --------------------------------------------------
expect_fail "missing catalog" 1 "does not exist; run 'vpool init" vpool --catalog "$WORK/none.db" env list
echo "garbage garbage garbage garbage garbage garbage garbage garbage" >"$WORK/garbage.db"
expect_fail "garbled catalog refused" 1 "catalog '$WORK/garbage.db'" vpool --catalog "$WORK/garbage.db" env list
check_eq "garbled catalog not overwritten" "garbage garbage garbage garbage garbage garbage garbage garbage" "$(cat "$WORK/garbage.db")"

check "pool rm bad" vpool pool rm bad
finish
