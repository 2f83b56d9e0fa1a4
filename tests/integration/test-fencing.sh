#!/bin/bash
# Hosts that die and come back. A source whose libvirtd is gone while its
# guests still run: a connection retried within the grace period is not a
# dead host; past it, nothing is handed over without a fence. A fence agent
# that fails hands nothing over; the operator's word alone does not either
# while the old QEMUs still hold the deltas' locks (never two writers); an
# agent that powers the host off lets the deltas go to their new VMs, which
# boot with their data. The stale host returns with its old definitions:
# they cannot reach the deltas, fsck --repair removes them and nothing
# else. A target that dies mid-migration: resume after it returns, or abort
# without it; an abort too waits while a disk is locked.
. "$(dirname "$0")/lib.sh"

TEST_PREFIX=f
HOSTA=hostc
HOSTB=hostd
hosts_dir=${VPOOL_HOSTS_DIR:-/var/lib/vpool-hosts}
"$HOSTS_SH" up --fresh "$HOSTA" "$HOSTB" >/dev/null || bail "cannot start $HOSTA $HOSTB"
setup_workdir
trap 'cleanup_workdir; "$HOSTS_SH" down "$HOSTA" "$HOSTB" >/dev/null 2>&1' EXIT
# A dead source is given up on after 2 s here (30 s by default).
echo "source_grace = 2" >"$WORK/vpool.conf"
vpool init --storage "$STORAGE" >/dev/null
vpool env add "$HOSTA" --uri "$(uri_of "$HOSTA")" --domain-type qemu >/dev/null
vpool env add "$HOSTB" --uri "$(uri_of "$HOSTB")" --domain-type qemu >/dev/null
vpool image add guest --file "$GUEST_DIR/master.qcow2" --kernel "$GUEST_KERNEL" \
    --initrd "$GUEST_DIR/initrd.img" --cmdline "$(cat "$GUEST_DIR/cmdline")" >/dev/null
add_desktop_image
vpool profile add pc-ide --machine pc --disk-bus ide --nic e1000 --vcpus 1 --memory 128M >/dev/null

qemu_of() { pgrep -fc "guest=$1," || true; }
kill_libvirtd() { kill -9 "$(cat "$hosts_dir/$1/libvirtd.pid")"; sleep 1; }
steps_of() { vpool migrate status "$1" --json | jq -r '"\(.state) \([.vms[].step] | join(" "))"'; }
owners_of() {
    local vm d out=()
    for vm in "$@"; do
        d=$(vpool vm show "$vm" --json | jq -r .delta_path)
        out+=("$(jq -r '"\(.owner)@\(.generation)"' "$d/manifest.json")")
    done
    echo "${out[*]}"
}

# The fence agents: one whose BMC does not answer, one that powers the host
# off (here: stops the simulated host and every guest process it has).
cat >"$WORK/fence-fail" <<'AGENT'
#!/bin/sh
echo "ipmi: no route to the BMC of $VPOOL_FENCE_ENV"
exit 1
AGENT
cat >"$WORK/fence-off" <<AGENT
#!/bin/sh
echo "env=\$VPOOL_FENCE_ENV uri=\$VPOOL_FENCE_URI host=[\$VPOOL_FENCE_HOST] args=\$*" >>"$WORK/fence-off.log"
exec "$HOSTS_SH" down "\$1"
AGENT
chmod 755 "$WORK/fence-fail" "$WORK/fence-off"

vpool pool create f1 --image desktop --env "$HOSTA" --profile pc-ide --size 2 --start >/dev/null || bail "create f1"
vpool pool create f2 --image desktop --env "$HOSTA" --profile pc-ide --size 1 --start >/dev/null || bail "create f2"
check "f1 and f2 guests up on $HOSTA" wait_boot 240 1 f1-001 f1-002 f2-001
source_qemus=$(pgrep -f "guest=f[12]-00[12]," | xargs)

# --- one refused connection is not a dead host ----------------------------------
kill_libvirtd "$HOSTA"
( sleep 3; "$HOSTS_SH" revive "$HOSTA" >/dev/null ) &
reviver=$!
out=$(VPOOL_SOURCE_GRACE=60 vpool migrate f1 --to "$HOSTB" --dry-run 2>&1)
check_eq "a source back within its grace period answers: the dry run passes" "0" "$?"
check "the plan has the source's VMs running" grep -Eq "f1-001.*$HOSTA.*running" <<<"$out"
wait "$reviver"
check_eq "the guests lived through the daemon's restart" "1 1 1" "$(qemu_of f1-001) $(qemu_of f1-002) $(qemu_of f2-001)"

# --- past the grace period, no fence: refused ----------------------------------------
kill_libvirtd "$HOSTA"
check_eq "the guests' QEMU processes outlive libvirtd" "1 1" "$(qemu_of f1-001) $(qemu_of f1-002)"
expect_fail "an unreachable source with no fence is not handed over" 1 \
    "env '$HOSTA' \(tried for [0-9]+ s\): cannot connect.*vm 'f1-001' may still run there.*--source-fenced $HOSTA.*--fence-cmd" \
    vpool migrate f1 --to "$HOSTB"
expect_fail "--source-fenced names the pool's env only" 1 "--source-fenced names env '$HOSTB', but pool 'f1' is on env '$HOSTA'" \
    vpool migrate f1 --to "$HOSTB" --source-fenced "$HOSTB"
expect_fail "a fence agent must be an absolute path" 1 "fence agent 'fence-fail' must be an absolute path" \
    vpool env set "$HOSTA" --fence-cmd "fence-fail --now"
expect_fail "a fence agent's quotes must close" 1 "a quote is not closed" \
    vpool env set "$HOSTA" --fence-cmd "$WORK/fence-fail 'open"
expect_fail "a fence agent must exist" 1 "fence agent '/nonexistent/agent': No such file" \
    vpool env set "$HOSTA" --fence-cmd "/nonexistent/agent"

# --- a fence agent that fails: nothing handed over -------------------------------------
check "env set --fence-cmd (failing agent)" vpool env set "$HOSTA" --fence-cmd "$WORK/fence-fail --reason 'BMC test'"
check_eq "env show names the agent as typed" "$WORK/fence-fail --reason 'BMC test'" \
    "$(vpool env show "$HOSTA" | sed -n 's/^fence agent: *//p')"
check_eq "env show --json gives its argv" "[\"$WORK/fence-fail\",\"--reason\",\"BMC test\"]" \
    "$(vpool env show "$HOSTA" --json | jq -c .fence_cmd)"
vpool migrate f1 --to "$HOSTB" >"$WORK/out" 2>"$WORK/err"
check_eq "the migration stops short: exit 1" "1" "$?"
id=$(awk '/^migration [0-9]+$/ {print $2; exit}' "$WORK/out")
check "it says the agent did not fence the host" grep -q "fence agent '$WORK/fence-fail --reason 'BMC test'' exited 1: not fenced" "$WORK/err"
check_eq "every VM waits at pending" "partial pending pending" "$(steps_of "$id")"
check_eq "the deltas stay with their VMs, untouched" "vm:f1-001@1 vm:f1-002@1" "$(owners_of f1-001 f1-002)"
check_eq "the fence is in migrate status --json" "agent 1 false ipmi: no route to the BMC of $HOSTA" \
    "$(vpool migrate status "$id" --json | jq -r '.fences[0] | "\(.method) \(.exit_status) \(.fenced) \(.output)"')"
check "migrate status shows it" grep -q "^fence: env $HOSTA, agent .*exit 1, NOT fenced" <<<"$(vpool migrate status "$id")"
check "history shows it under the migrate" grep -q "migration $id: pool f1 fence: env '$HOSTA': fence agent .* exited 1" <<<"$(vpool history)"

# --- the operator's word, wrongly given: the locks still hold ---------------------
vpool migrate resume "$id" --source-fenced "$HOSTA" >"$WORK/out" 2>"$WORK/err"
check_eq "resume --source-fenced while the guests live: exit 1" "1" "$?"
check "the hand-over waits on the lock of the running guest's disk" \
    grep -Eq "vm 'f1-001': disk 'overlay.g2.qcow2' of delta .* is still locked by pid [0-9]+ \(qemu[^,]*, guest f1-001\)" "$WORK/err"
check "it says resume retries" grep -q "'vpool migrate resume $id' retries once it is gone" "$WORK/err"
check_eq "the VMs wait at provisioned" "partial provisioned provisioned" "$(steps_of "$id")"
for vm in f1-001 f1-002; do
    check_eq "$vm: one QEMU process only (never two writers)" "1" "$(qemu_of "$vm")"
    check_eq "$vm: not running on $HOSTB" "shut off" "$(virsh_on "$HOSTB" domstate "$vm")"
done
check_eq "the deltas belong to the migration, not to any VM" "migration:$id@2 migration:$id@2" "$(owners_of f1-001 f1-002)"
check_eq "the operator's word is recorded with who gave it" "operator $(id -un) true" \
    "$(vpool migrate status "$id" --json | jq -r '.fences[1] | "\(.method) \(.asserted_by) \(.fenced)"')"
check "history shows who declared the host off" \
    grep -q "migration $id: pool f1 fence: env '$HOSTA' declared powered off by the operator ($(id -un))" <<<"$(vpool history)"
vpool migrate resume "$id" >/dev/null 2>"$WORK/err"
check_eq "resume again while the guests live: still exit 1" "1" "$?"
check_eq "still waiting at provisioned" "partial provisioned provisioned" "$(steps_of "$id")"

# --- an agent that powers the host off: hand-over, boot, data intact --------------------
check "env set --fence-cmd (an agent that powers off)" vpool env set "$HOSTA" --fence-cmd "$WORK/fence-off $HOSTA"
vpool migrate f2 --to "$HOSTB" >"$WORK/out" 2>"$WORK/err"
check_eq "f2 moves once its host is fenced: exit 0" "0" "$?"
id2=$(awk '/^migration [0-9]+$/ {print $2; exit}' "$WORK/out")
check_eq "the agent ran once, told what to fence" "env=$HOSTA uri=$(uri_of "$HOSTA") host=[] args=$HOSTA" \
    "$(cat "$WORK/fence-off.log")"
check_eq "the source's guest processes are gone" "" "$(for p in $source_qemus; do kill -0 "$p" 2>/dev/null && echo "$p"; done)"
check_eq "the fence is recorded as a success" "agent 0 true" \
    "$(vpool migrate status "$id2" --json | jq -r '.fences[0] | "\(.method) \(.exit_status) \(.fenced)"')"
check "f2-001 boots on $HOSTB" wait_boot 240 2 f2-001
check_eq "f2-001 reads its own data on $HOSTB" "$(vpool vm show f2-001 --json | jq -r .uuid)" "$(console_field f2-001 owner)"
check "resume f1 now that the locks are gone" vpool migrate resume "$id"
check "f1 guests booted on $HOSTB" wait_boot 240 2 f1-001 f1-002
for vm in f1-001 f1-002; do
    check_eq "$vm reads its own data on $HOSTB" "$(vpool vm show "$vm" --json | jq -r .uuid)" "$(console_field "$vm" owner)"
done
check_eq "the deltas belong to their VMs again" "vm:f1-001@3 vm:f1-002@3" "$(owners_of f1-001 f1-002)"
check "pools stop" vpool pool stop f1 --timeout 60
check "pools stop" vpool pool stop f2 --timeout 60
check "the agent can be taken away" vpool env set "$HOSTA" --no-fence-cmd
check_eq "env show says so" "none" "$(vpool env show "$HOSTA" | sed -n 's/^fence agent: *//p')"

# --- the stale host returns ----------------------------------------------------------
"$HOSTS_SH" up "$HOSTA" >/dev/null || bail "cannot restart $HOSTA"
check_eq "$HOSTA came back with its old definitions" "f1-001 f1-002 f2-001" \
    "$(virsh_on "$HOSTA" list --all --name | grep '^f[12]-' | sort | xargs)"
ov=$(overlay_of f1-001)
sum=$(sha256sum "$ov")
virsh_on "$HOSTA" start f1-001 >/dev/null 2>"$WORK/err"
check_eq "starting a stale definition fails" "shut off" "$(virsh_on "$HOSTA" domstate f1-001)"
check "it fails because its disk is no longer there" grep -q "overlay.qcow2" "$WORK/err"
check_eq "the delta's bytes are unchanged" "$sum" "$(sha256sum "$ov")"
out=$(vpool fsck)
check_eq "fsck exits 1" "1" "$?"
check "fsck names stale domain $HOSTA/f1-001" grep -q "stale-domain: $HOSTA/f1-001" <<<"$out"
check "fsck names stale domain $HOSTA/f2-001" grep -q "stale-domain: $HOSTA/f2-001" <<<"$out"
virsh_on "$HOSTA" define /dev/stdin >/dev/null <<XML
<domain type='qemu'><name>f-bystander</name><memory unit='MiB'>64</memory>
<os><type arch='x86_64'>hvm</type></os></domain>
XML
check "fsck --repair" vpool fsck --repair
check_eq "the stale domains are gone" "" "$(virsh_on "$HOSTA" list --all --name | grep '^f[12]-' | xargs)"
check_eq "a domain that is not vpool's stays" "f-bystander" "$(virsh_on "$HOSTA" list --all --name | grep '^f-bystander')"
check_eq "the VMs stay defined on $HOSTB" "f1-001 f1-002 f2-001" "$(virsh_on "$HOSTB" list --all --name | grep '^f[12]-' | sort | xargs)"
check_eq "fsck clean after the repair" "" "$(fsck_kinds)"
virsh_on "$HOSTA" undefine f-bystander >/dev/null
expect_fail "--source-fenced is refused for a source that answers" 1 \
    "env '$HOSTB' answers: --source-fenced is only for an env that does not" \
    vpool migrate f2 --to "$HOSTA" --source-fenced "$HOSTB"

# --- the target dies mid-migration: resume once it is back ------------------------------
vpool pool create f3 --image guest --env "$HOSTA" --profile pc-ide --size 3 >/dev/null || bail "create f3"
VPOOL_FAULT=migrate.done:1 vpool migrate f3 --to "$HOSTB" --parallel 1 >"$WORK/out" 2>&1
id=$(awk '/^migration [0-9]+$/ {print $2; exit}' "$WORK/out")
"$HOSTS_SH" down "$HOSTB" >/dev/null
vpool migrate resume "$id" >/dev/null 2>"$WORK/err"
check_eq "resume while the target is down: exit 1" "1" "$?"
check "it says the target is unreachable" grep -q "env '$HOSTB' is unreachable" "$WORK/err"
check_eq "the VMs not handed over are untouched on the source" "f3-002 f3-003" \
    "$(virsh_on "$HOSTA" list --all --name | grep '^f3-' | sort | xargs)"
"$HOSTS_SH" up "$HOSTB" >/dev/null || bail "cannot restart $HOSTB"
check "resume after the target returned" vpool migrate resume "$id"
check_eq "all of f3 on $HOSTB" "f3-001 f3-002 f3-003" "$(virsh_on "$HOSTB" list --all --name | grep '^f3-' | sort | xargs)"
check_eq "fsck clean" "" "$(fsck_kinds)"

# --- the target dies mid-migration: abort without it; a lock holds the abort ----------------
vpool pool create f4 --image guest --env "$HOSTA" --profile pc-ide --size 3 >/dev/null || bail "create f4"
VPOOL_FAULT=migrate.provisioned:2 vpool migrate f4 --to "$HOSTB" --parallel 1 >"$WORK/out" 2>&1
id=$(awk '/^migration [0-9]+$/ {print $2; exit}' "$WORK/out")
"$HOSTS_SH" down "$HOSTB" >/dev/null
# Some process (a backup agent, a QEMU started by hand) locks f4-002's disk.
lock_disk "$(overlay_of f4-002)"
locker=$LOCKER
vpool migrate abort "$id" >/dev/null 2>"$WORK/err"
check_eq "abort while a disk is locked: exit 1" "1" "$?"
check "it names the disk and the process" \
    grep -Eq "vm 'f4-002': disk 'overlay.g2.qcow2' .* is still locked by pid $locker \(python3\).*'vpool migrate abort $id' retries" "$WORK/err"
check_eq "f4-002 waits where it was, f4-003 is back" "partial done provisioned returned" "$(steps_of "$id")"
kill "$locker"; wait "$locker" 2>/dev/null
check "abort once the lock is gone" vpool migrate abort "$id"
check_eq "f4-002 and f4-003 back on $HOSTA" "f4-002 f4-003" \
    "$(virsh_on "$HOSTA" list --all --name | grep '^f4-' | sort | xargs)"
"$HOSTS_SH" up "$HOSTB" >/dev/null || bail "cannot restart $HOSTB"
check "fsck names the provisioned domain left on $HOSTB" grep -q "stale-domain: $HOSTB/f4-002" <<<"$(vpool fsck)"
check "fsck --repair removes it" vpool fsck --repair
check_eq "f4-001 (handed over) stays on $HOSTB, alone" "f4-001" \
    "$(virsh_on "$HOSTB" list --all --name | grep '^f4-' | sort | xargs)"
check_eq "fsck clean" "" "$(fsck_kinds)"

# --- an abort cut short once it restarted the source ----------------------------------------
# The delta is the VM's again and its source runs it: a second abort (f5),
# or a resume (f6), finishes that return; neither hands the delta on again,
# neither waits on the lock of the guest it gave the delta back to.
vpool pool create f5 --image desktop --env "$HOSTA" --profile pc-ide --size 1 --start >/dev/null || bail "create f5"
vpool pool create f6 --image desktop --env "$HOSTA" --profile pc-ide --size 1 --start >/dev/null || bail "create f6"
check "f5 and f6 guests up on $HOSTA" wait_boot 240 1 f5-001 f6-001
declare -A mid
for p in f5 f6; do
    VPOOL_FAULT=migrate.provisioned:1 vpool migrate "$p" --to "$HOSTB" --shutdown-timeout 60 >"$WORK/out" 2>&1
    mid[$p]=$(awk '/^migration [0-9]+$/ {print $2; exit}' "$WORK/out")
    VPOOL_FAULT=migrate.source-restored:1 vpool migrate abort "${mid[$p]}" >/dev/null 2>&1
    check_eq "$p: an abort killed once $p-001 runs again on $HOSTA, its step not recorded" "provisioned 1 vm:$p-001@4" \
        "$(vpool migrate status "${mid[$p]}" --json | jq -r '.vms[0].step') $(qemu_of "$p-001") $(owners_of "$p-001")"
done
vpool migrate abort "${mid[f5]}" >/dev/null 2>"$WORK/err"
check_eq "f5: a second abort finishes the return" "aborted returned" "$(steps_of "${mid[f5]}")"
vpool migrate resume "${mid[f6]}" >/dev/null 2>"$WORK/err"
check_eq "f6: a resume finishes the return rather than take the delta again" "partial returned" "$(steps_of "${mid[f6]}")"
check "f6: abort ends it" vpool migrate abort "${mid[f6]}"
check_eq "f6: the migration aborted" "aborted returned" "$(steps_of "${mid[f6]}")"
check_eq "each VM runs once, on $HOSTA" "1 1 running running" \
    "$(qemu_of f5-001) $(qemu_of f6-001) $(virsh_on "$HOSTA" domstate f5-001) $(virsh_on "$HOSTA" domstate f6-001)"
check_eq "their deltas are theirs, given back once" "vm:f5-001@4 vm:f6-001@4" "$(owners_of f5-001 f6-001)"
check_eq "nothing of f5 or f6 on $HOSTB" "" "$(virsh_on "$HOSTB" list --all --name | grep '^f[56]-' | xargs)"
check_eq "fsck clean" "" "$(fsck_kinds)"

for p in f1 f2 f3 f4 f5 f6; do vpool pool rm "$p" --force >/dev/null; done
finish
