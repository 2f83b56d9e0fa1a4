#!/bin/bash
# Faults around the edges: concurrent operators, damaged state on storage
# and in the catalog, and shared storage that runs full.
. "$(dirname "$0")/lib.sh"

TEST_PREFIX=r
require_hosts "$HOSTA" "$HOSTB"
setup_workdir
standard_setup
vpool profile add q35-virtio --machine q35 --disk-bus virtio --nic virtio --vcpus 1 --memory 128M >/dev/null

# --- two operators migrate one pool at the same moment --------------------------
vpool pool create r1 --image guest --env "$HOSTA" --profile pc-ide --size 6 >/dev/null || bail "create r1"
"$VPOOL_BIN" migrate r1 --to "$HOSTB" --profile q35-virtio --parallel 1 >"$WORK/o1" 2>"$WORK/e1" &
p1=$!
"$VPOOL_BIN" migrate r1 --to "$HOSTB" --profile q35-virtio --parallel 1 >"$WORK/o2" 2>"$WORK/e2" &
p2=$!
wait $p1; rc1=$?
wait $p2; rc2=$?
check_eq "of two simultaneous migrations exactly one succeeds" "1" "$(( (rc1 == 0) + (rc2 == 0) ))"
loser=$([ $rc1 = 0 ] && echo "$WORK/e2" || echo "$WORK/e1")
# The loser finds the pool busy, or its migration unfinished, or (on
# PostgreSQL, where a pool's lock is waited for up to a second) the pool
# already moved by the winner.
refusal="pool 'r1' (is busy|has an unfinished migration|already runs on env '$HOSTB' with profile 'q35-virtio'; nothing to migrate)"
if [ "$(grep -c '' "$loser")" = 1 ] && grep -Eq "^vpool: $refusal" "$loser"; then
    ok "the other is refused, naming the pool and the running migration, the unfinished one or the move done"
else
    not_ok "the other is refused, naming the pool and the running migration, the unfinished one or the move done" \
        "its stderr: $(cat "$loser")"
fi
check_eq "exactly one migration recorded" "1" "$(vpool migrate list --json | jq length)"
check_eq "all of r1 on host B" "6" "$(virsh_on "$HOSTB" list --all --name | grep -c '^r1-')"
check_eq "fsck clean" "" "$(fsck_kinds)"

# --- many pool creates at once ------------------------------------------------------
pids=()
for i in $(seq 8); do
    "$VPOOL_BIN" pool create "rc$i" --image guest --env "$HOSTA" --profile pc-ide --size 3 >/dev/null 2>"$WORK/ce$i" &
    pids+=($!)
done
# And two racing for the same name.
"$VPOOL_BIN" pool create rsame --image guest --env "$HOSTA" --profile pc-ide --size 2 >/dev/null 2>"$WORK/s1" &
s1=$!
"$VPOOL_BIN" pool create rsame --image guest --env "$HOSTA" --profile pc-ide --size 2 >/dev/null 2>"$WORK/s2" &
s2=$!
fails=0
for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
check_eq "8 concurrent creates of different pools all succeed" "0" "$fails"
wait $s1; r1=$?
wait $s2; r2=$?
check_eq "of two creates of one name exactly one succeeds" "1" "$(( (r1 == 0) + (r2 == 0) ))"
check "the other says why" grep -Eq "pool 'rsame' (is busy|already exists)" "$WORK/s1" "$WORK/s2"
check_eq "catalog intact: 9 new pools, 26 VMs" "9 26" \
    "$(vpool pool list --json | jq '[.[] | select(.name | startswith("rc") or . == "rsame")] | length') $(vpool vm list --json | jq '[.[] | select(.pool | startswith("rc") or . == "rsame")] | length')"
check_eq "catalog integrity check" "ok" "$(catalog_integrity)"
check_eq "fsck clean after the concurrent creates" "" "$(fsck_kinds)"
for i in $(seq 8); do vpool pool rm "rc$i" >/dev/null; done
vpool pool rm rsame >/dev/null

# --- damaged manifests are refused, never treated as empty or rewritten ---------------
vpool pool create rd --image guest --env "$HOSTA" --profile pc-ide --size 2 >/dev/null || bail "create rd"
m=$(delta_of rd-001)/manifest.json
cp "$m" "$WORK/manifest.good"
head -c 40 "$WORK/manifest.good" >"$m"
truncated=$(sha256sum "$m")
expect_fail "truncated manifest: migrate refuses" 1 "manifest '.*rd-001\.[0-9a-f-]*' is damaged" vpool migrate rd --to "$HOSTB"
expect_fail "truncated manifest: vm start refuses" 1 "manifest '.*rd-001\.[0-9a-f-]*' is damaged" vpool vm start rd-001
check "truncated manifest: fsck reports it" grep -q "manifest-damaged: $(delta_of rd-001)" <<<"$(vpool fsck)"
check_eq "truncated manifest left as it was" "$truncated" "$(sha256sum "$m")"
printf '{"version": 1, "pool": "rd", "vm": "rd-001", "owner": "vm:rd-001", "generation": "one"}' >"$m"
expect_fail "garbled manifest: migrate refuses" 1 "manifest '.*rd-001\.[0-9a-f-]*' is damaged" vpool migrate rd --to "$HOSTB"
: >"$m"
expect_fail "empty manifest: migrate refuses" 1 "manifest '.*rd-001\.[0-9a-f-]*' is damaged: empty" vpool migrate rd --to "$HOSTB"
cp "$WORK/manifest.good" "$m"
check_eq "fsck clean once restored" "" "$(fsck_kinds)"

# --- a damaged catalog is refused, never overwritten ------------------------------------
# A SQLite file's damage: on PostgreSQL, a small SQLite catalog of its own.
lite=$VPOOL_CATALOG
if catalog_is_pg; then
    lite=$WORK/lite.db
    VPOOL_CATALOG=$lite vpool init --storage "$WORK/lite-storage" >/dev/null || bail "cannot make a SQLite catalog"
    VPOOL_CATALOG=$lite vpool env add "$HOSTA" --uri "$(uri_of "$HOSTA")" --domain-type qemu >/dev/null ||
        bail "cannot fill the SQLite catalog"
fi
cp "$lite" "$WORK/cat.copy"
rm -f "$WORK/cat.copy-wal" "$WORK/cat.copy-shm"
sqlite3 "$lite" 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null
cp "$lite" "$WORK/broken.db"
size=$(stat -c %s "$WORK/broken.db")
truncate -s $((size / 2)) "$WORK/broken.db"
before=$(sha256sum "$WORK/broken.db")
"$VPOOL_BIN" --catalog "$WORK/broken.db" pool list >/dev/null 2>"$WORK/err"
check_eq "truncated catalog: exit 1" "1" "$?"
check "truncated catalog: a clear error naming it" grep -q "catalog '$WORK/broken.db'" "$WORK/err"
check_eq "truncated catalog: not rewritten" "$before" "$(sha256sum "$WORK/broken.db")"
dd if=/dev/urandom of="$WORK/broken.db" bs=1 seek=100 count=200 conv=notrunc status=none
"$VPOOL_BIN" --catalog "$WORK/broken.db" vm list >/dev/null 2>"$WORK/err"
check_eq "garbled catalog: exit 1" "1" "$?"

# --- shared storage runs full -------------------------------------------------------
small=$WORK/small
mkdir -p "$small"
mount -t tmpfs -o size=16m,mode=755 tmpfs "$small" || bail "cannot mount a small tmpfs"
trap 'umount "$small" 2>/dev/null; cleanup_workdir' EXIT
export VPOOL_CATALOG=$WORK/small-catalog.db
vpool init --storage "$small/storage" >/dev/null
vpool env add "$HOSTA" --uri "$(uri_of "$HOSTA")" --domain-type qemu >/dev/null
vpool env add "$HOSTB" --uri "$(uri_of "$HOSTB")" --domain-type qemu >/dev/null
vpool image add guest --file "$GUEST_DIR/master.qcow2" --no-inspect >/dev/null || bail "image add on small storage"
vpool profile add pc-ide --machine pc --disk-bus ide --nic e1000 --vcpus 1 --memory 128 >/dev/null
vpool profile add q35-virtio --machine q35 --disk-bus virtio --nic virtio --vcpus 1 --memory 128 >/dev/null
vpool pool create rf --image guest --env "$HOSTA" --profile pc-ide --size 2 >/dev/null || bail "create rf"
STORAGE=$small/storage
declare -A owner_before
for vm in rf-001 rf-002; do owner_before[$vm]=$(cat "$(delta_of "$vm")/manifest.json"); done
# Fill it up.
dd if=/dev/zero of="$small/filler" bs=64k status=none 2>/dev/null
expect_fail "pool create on full storage: clear error, nothing left" 1 "(No space left on device|qemu-img failed)" \
    vpool pool create rg --image guest --env "$HOSTA" --profile pc-ide --size 3
vpool migrate rf --to "$HOSTB" --profile q35-virtio >"$WORK/out" 2>"$WORK/err"
check_eq "migrate on full storage fails" "1" "$?"
check "migrate on full storage: says no space" grep -q "No space left on device" "$WORK/err"
for vm in rf-001 rf-002; do
    check_eq "$vm keeps its manifest (owner, generation) byte for byte" "${owner_before[$vm]}" \
        "$(cat "$(delta_of "$vm")/manifest.json")"
done
rm -f "$small/filler"
id=$(awk '/^migration [0-9]+$/ {print $2; exit}' "$WORK/out")
check "with room again, abort returns the VMs" vpool migrate abort "$id"
check_eq "rf back on host A" "rf-001 rf-002" "$(virsh_on "$HOSTA" list --all --name | grep '^rf-' | sort | xargs)"
check_eq "fsck clean after the full-storage episode" "" "$(fsck_kinds)"
vpool pool rm rf >/dev/null
finish
