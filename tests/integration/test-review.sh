#!/bin/bash
# Regression tests of defects a review found: a start failure reported as
# it is, read verbs that take no pool lock, fsck --repair acting only on
# what still holds under the pool's lock, envs and profiles removable once
# only finished migrations used them, and read verbs for a user who may
# only read the catalog.
. "$(dirname "$0")/lib.sh"

TEST_PREFIX=r
require_hosts "$HOSTA" "$HOSTB"
command -v strace >/dev/null || bail "strace is missing (scripts/deps.sh installs it)"
command -v gdb >/dev/null || bail "gdb is missing (scripts/deps.sh installs it)"
setup_workdir
standard_setup
add_desktop_image
vpool profile add q35-virtio --machine q35 --disk-bus virtio --nic virtio --vcpus 1 --memory 256M >/dev/null ||
    bail "profile add failed"

migration_of() { awk '/^migration [0-9]+$/ {print $2; exit}' "$1"; }

# --- a start failure is reported as libvirt gave it -------------------------------
# Every word with "lock" in it ("block", "-blockdev", a VM's name) once read
# as "locked by another QEMU". Here the target's definition gains a disk
# whose file is missing.
vpool pool create rblock --image desktop --env "$HOSTA" --profile pc-ide --size 1 --start >/dev/null ||
    bail "create rblock"
wait_boot 300 1 rblock-001 || bail "rblock-001 did not boot"
VPOOL_FAULT=migrate.handed_over:1 vpool migrate rblock --to "$HOSTB" >"$WORK/out" 2>&1
check_eq "migration of rblock killed once rblock-001 was handed over" "137" "$?"
idb=$(migration_of "$WORK/out")
virsh_on "$HOSTB" dumpxml --inactive rblock-001 >"$WORK/good.xml"
sed "s|</devices>|<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/nonexistent/extra.img'/><target dev='vdz' bus='virtio'/></disk></devices>|" \
    "$WORK/good.xml" >"$WORK/bad.xml"
virsh_on "$HOSTB" define "$WORK/bad.xml" >/dev/null || bail "redefine rblock-001"
vpool migrate resume "$idb" >"$WORK/out" 2>&1
check_eq "resume with a target that cannot start fails" "1" "$?"
error=$(vpool --json migrate status "$idb" | jq -r '.vms[0].error')
check "the VM's error is libvirt's: the missing disk" grep -q "/nonexistent/extra.img" <<<"$error"
check "the VM's error does not claim a disk lock" bash -c '! grep -q "locked by another QEMU" <<<"$1"' - "$error"
virsh_on "$HOSTB" define "$WORK/good.xml" >/dev/null || bail "restore rblock-001"
check "resume then finishes rblock" vpool migrate resume "$idb"

# --- read verbs take no pool lock -------------------------------------------------
# A lock taken to look, however briefly, made a resume starting at that
# moment fail as busy: what the reads ask of the lock files is traced.
vpool pool create rlk --image guest --env "$HOSTA" --profile pc-ide --size 1 >/dev/null || bail "create rlk"
VPOOL_FAULT=migrate.locked:1 vpool migrate rlk --to "$HOSTB" >"$WORK/out" 2>&1
check_eq "migration of rlk killed once rlk-001 was locked" "137" "$?"
idl=$(migration_of "$WORK/out")
# On PostgreSQL the lock is the server's: what the reads send it is traced.
for verb in "migrate list" "migrate status $idl" "migrate status $idl --watch"; do
    if catalog_is_pg; then
        # shellcheck disable=SC2086
        timeout 60 strace -f -qq -s 4096 -e trace=sendto,write -o "$WORK/trace" "$VPOOL_BIN" $verb >"$WORK/out" 2>&1
        check "$verb: looked at the pool's lock" grep -q "FROM pg_locks WHERE locktype = 'advisory'" "$WORK/trace"
        check_eq "$verb: took no lock on it" "" "$(grep -oE 'pg_(try_)?advisory_lock\([^)]*\)' "$WORK/trace")"
    else
        # shellcheck disable=SC2086
        timeout 60 strace -f -qq -y -e trace=flock,fcntl -o "$WORK/trace" "$VPOOL_BIN" $verb >"$WORK/out" 2>&1
        check "$verb: looked at the pool's lock" grep -q "pool-rlk.lock" "$WORK/trace"
        check_eq "$verb: took no lock on it" "" \
            "$(grep 'pool-rlk.lock' "$WORK/trace" | grep -E 'LOCK_EX|LOCK_SH|F_(OFD_)?SETLKW?,')"
    fi
    check "$verb: says the migration is interrupted" grep -q "interrupted" "$WORK/out"
done
check "resume finishes rlk" vpool migrate resume "$idl"

# --- fsck --repair under the pool's lock --------------------------------------------
# A pool created while fsck lists the domains: fsck is stopped (gdb) right
# before it lists the first env's domains, with its catalog read already.
gdb -q -batch -ex 'break vp_hv_inspect_all' -ex run \
    -ex "shell \"$VPOOL_BIN\" pool create rf1 --image guest --env $HOSTA --profile pc-ide --size 1 >/dev/null" \
    -ex 'delete' -ex 'continue' --args "$VPOOL_BIN" fsck --repair >"$WORK/fsck" 2>&1
check_eq "the pool created meanwhile exists" "rf1" "$(vpool --json pool list | jq -r '.[] | select(.name == "rf1") | .name')"
check_eq "fsck --repair left its domain alone" "rf1-001" "$(domains_on "$HOSTA" rf1)"
check "fsck --repair did not report it stale" bash -c '! grep -q "stale-domain: .*rf1-001" "$1"' - "$WORK/fsck"
check "a fresh fsck is clean" vpool fsck

# A stale domain of a pool another process holds is left, and said so.
virsh_on "$HOSTA" dumpxml --inactive rf1-001 |
    sed -e 's|<name>rf1-001</name>|<name>rf1-009</name>|' -e '/<uuid>/d' -e '/<mac address/d' >"$WORK/stale.xml"
virsh_on "$HOSTA" define "$WORK/stale.xml" >/dev/null || bail "define rf1-009"
pool_lock_hold rf1 || bail "cannot hold rf1's lock"
vpool fsck --repair >"$WORK/fsck" 2>&1
check_eq "fsck --repair with rf1 busy: problems left" "1" "$?"
check "it says why the stale domain stays" grep -q "^stale-domain: $HOSTA/rf1-009: .*not repaired: pool 'rf1' is busy" "$WORK/fsck"
check_eq "the stale domain is still there" "rf1-001 rf1-009" "$(domains_on "$HOSTA" rf1)"
pool_lock_release
vpool fsck --repair >"$WORK/fsck" 2>&1
check "with rf1 free, fsck --repair removes it" grep -q "^stale-domain: $HOSTA/rf1-009: .*(repaired: domain removed)" "$WORK/fsck"
check_eq "only the stale domain went" "rf1-001" "$(domains_on "$HOSTA" rf1)"
vpool pool rm rf1 >/dev/null || bail "pool rm rf1"

# --- envs and profiles only finished migrations used --------------------------------
vpool pool create rv2 --image guest --env "$HOSTA" --profile pc-ide --size 1 >/dev/null || bail "create rv2"
VPOOL_FAULT=migrate.locked:1 vpool migrate rv2 --to "$HOSTB" --profile q35-virtio >"$WORK/out" 2>&1
check_eq "migration of rv2 killed once rv2-001 was locked" "137" "$?"
idv=$(migration_of "$WORK/out")
expect_fail "profile rm: the unfinished migration using it is named" 1 \
    "^vpool: profile 'q35-virtio' is used by unfinished migration $idv \\(pool 'rv2'\\)$" vpool profile rm q35-virtio
check "abort returns rv2" vpool migrate abort "$idv"
check "profile rm: only an aborted migration used it" vpool profile rm q35-virtio
vpool pool rm rv2 >/dev/null || bail "pool rm rv2"
vpool pool rm rlk >/dev/null || bail "pool rm rlk"
check "env rm: only finished migrations used it" vpool env rm "$HOSTA"
check_eq "migrate list --json still names the removed env" "$HOSTA>$HOSTB $HOSTA>$HOSTB $HOSTA>$HOSTB" \
    "$(vpool --json migrate list | jq -r '.[] | "\(.from)>\(.to)"' | xargs)"
check "migrate list names it too" grep -Eq "^$idv +rv2 +$HOSTA +$HOSTB " <(vpool migrate list)
check_eq "migrate status names the env and the profile removed" "$HOSTA q35-virtio $HOSTA" \
    "$(vpool --json migrate status "$idv" | jq -r '"\(.from) \(.to_profile) \(.vms[0].source)"')"
check "history names the removed env" grep -q "env rm $HOSTA" <(vpool history)

# --- read verbs for a user who may only read the catalog ----------------------------
# On SQLite the catalog file's mode says who that is: a user the file is
# not writable for. On PostgreSQL it is a role granted SELECT alone.
if catalog_is_pg; then
    reader=vpit_reader_$$_$RANDOM
    catalog_sql "CREATE ROLE $reader LOGIN; GRANT USAGE ON SCHEMA public TO $reader;
        GRANT SELECT ON ALL TABLES IN SCHEMA public TO $reader" >/dev/null || bail "cannot create role $reader"
    check_eq "the role $reader may read the catalog's tables, write none" "t f f" \
        "$(catalog_sql "SELECT has_table_privilege('$reader', 'history', 'SELECT'),
            has_table_privilege('$reader', 'history', 'INSERT'), has_table_privilege('$reader', 'pools', 'UPDATE')" |
            tr '|' ' ')"
    as_reader() { VPOOL_CATALOG="${VPOOL_CATALOG/user=postgres/user=$reader}" "$VPOOL_BIN" "$@"; }
    who="the role $reader"
else
    cp "$VPOOL_BIN" "$WORK/vpool-bin"
    chmod 0644 "$VPOOL_CATALOG"
    check_eq "the catalog: root's, mode 0644" "root 644" "$(stat -c '%U %a' "$VPOOL_CATALOG")"
    as_reader() { runuser -u nobody -- "$WORK/vpool-bin" "$@"; }
    who="a user who may only read the catalog"
fi
for verb in "env list" "profile list" "image list" "pool list" "migrate list" "migrate status $idv" "history"; do
    # shellcheck disable=SC2086
    as_reader $verb >"$WORK/out" 2>&1
    check_eq "as $who: $verb works" "0 " "$? $(grep '^vpool:' "$WORK/out")"
done
expect_fail "a change by $who is refused, and changes nothing" 1 \
    "^vpool: catalog '.*' is read-only for this user: only commands that change nothing can run$" \
    as_reader profile rm pc-ide
if catalog_is_pg; then
    catalog_sql "DROP OWNED BY $reader; DROP ROLE $reader" >/dev/null || diag "role $reader left on the server"
fi
finish
