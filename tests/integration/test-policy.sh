#!/bin/bash
# vpoold's policies, as an operator sees them: a host put in maintenance
# from the command line is drained by the daemon (or only reported, as its
# env says), and an env marked retiring has its pools migrated to another
# env in waves, only inside its window; a retirement reported, cancelled,
# completed; the daemon SIGKILLed in the middle of a wave finishing it after
# its restart. Env "old" is host A; env "new" hosts B and C. Every move
# appears in the history through the policy, with its reason.
. "$(dirname "$0")/lib.sh"

TEST_PREFIX=pol
VPOOLD_BIN=${VPOOLD_BIN:-$top/build/src/daemon/vpoold}
TEST_HOSTS=("$HOSTA" "$HOSTB" "$HOSTC")
require_hosts "${TEST_HOSTS[@]}"
setup_workdir
t_start=$SECONDS

vpool init --storage "$STORAGE" >/dev/null || bail "init failed"
vpool env add old --uri "$(uri_of "$HOSTA")" --domain-type qemu >/dev/null || bail "env add old"
vpool env add new --host "$HOSTB=$(uri_of "$HOSTB")" --host "$HOSTC=$(uri_of "$HOSTC")" --domain-type qemu \
    >/dev/null || bail "env add new"
vpool image add guest --file "$GUEST_DIR/master.qcow2" --kernel "$GUEST_KERNEL" \
    --initrd "$GUEST_DIR/initrd.img" --cmdline "$(cat "$GUEST_DIR/cmdline")" >/dev/null || bail "image add"
add_desktop_image
vpool profile add pc-ide --machine pc --disk-bus ide --nic e1000 --vcpus 1 --memory 256M >/dev/null ||
    bail "profile add"
vpool profile add q35-sata --machine q35 --disk-bus sata --nic e1000 --vcpus 1 --memory 256M >/dev/null ||
    bail "profile add"

# --- the daemon: a look every second -----------------------------------------------------
sock=$WORK/vpoold.sock
policy_daemon() { VPOOL_SHUTDOWN_TIMEOUT=5 start_daemon "$WORK/vpoold.log" --listen "unix:$sock" --policy-interval 1; }
trap 'stop_daemon; cleanup_workdir' EXIT

# wait_for SECONDS CONDITION: until the shell text CONDITION holds (evaluated
# anew each time); false when it never did.
wait_for() {
    local until=$((SECONDS + $1))
    while ! eval "$2" >/dev/null 2>&1; do
        [ $SECONDS -lt $until ] || return 1
        sleep 0.5
    done
}
# policy_rows ACTOR: the history's rows through that policy, as JSON lines.
policy_rows() {
    vpool history --via policy --json | jq -c --arg a "$1" '.[] | select(.type == "command" and .user == $a)'
}
vms_on() { vpool vm list --pool "$1" --json | jq -r --arg h "$2" '[.[] | select(.host == $h)] | length'; }
env_of() { vpool pool show "$1" --json | jq -r .env; }
# HH:MM, MINUTES from now in local time.
hhmm() { date -d "@$(($(date +%s) + $1 * 60))" +%H:%M; }

# --- refused settings: a clear error, nothing changed --------------------------------
vpool pool create polx --image guest --env old --profile pc-ide --size 1 >/dev/null || bail "pool create polx"
expect_fail "retire: to itself" 1 "cannot retire env 'old' to itself" vpool env retire old --to old
expect_fail "retire: an unknown target" 1 "unknown env 'nope'" vpool env retire old --to nope
expect_fail "retire: an unknown env" 1 "unknown env 'nope'" vpool env retire nope --to new
expect_fail "retire: an unknown profile" 1 "unknown profile 'nope'" vpool env retire old --to new --profile nope
expect_fail "retire: a window out of the day" 1 "invalid window '25:00-01:00'" \
    vpool env retire old --to new --window 25:00-01:00
expect_fail "retire: a window that is not one" 1 "invalid window 'tonight'" vpool env retire old --to new --window tonight
expect_fail "retire: an empty window" 1 "ends where it starts" vpool env retire old --to new --window 06:00-06:00
expect_fail "retire: a wave of 0" 1 "wave" vpool env retire old --to new --wave 0
expect_fail "retire: a wave too large" 1 "wave" vpool env retire old --to new --wave 1000
expect_fail "retire: no --to" 2 "missing --to ENV" vpool env retire old
expect_fail "retire: --cancel with settings" 2 "--cancel takes no --to" vpool env retire old --cancel --to new
expect_fail "retire: --cancel of an env not retiring" 1 "env 'old' is not retiring" vpool env retire old --cancel
expect_fail "retire: a name with a traversal" 1 "env" vpool env retire ../old --to new
expect_fail "env set: an unknown maintenance policy" 1 "invalid --on-maintenance 'evacuate': expected one of drain, report, none" \
    vpool env set new --on-maintenance evacuate
expect_fail "env set: nothing to set" 2 "nothing to set" vpool env set new
expect_fail "env host maintenance: an unknown host" 1 "no host 'nohost'" vpool env host maintenance new nohost
vpool env retire new --to old >/dev/null || bail "retire new"
expect_fail "retire: no chain (to an env itself retiring)" 1 "env 'new' is itself retiring" \
    vpool env retire old --to new
vpool env retire new --cancel >/dev/null || bail "cancel new"
check_eq "env show: the defaults (drain, not retiring)" "drain null" \
    "$(vpool env show new --json | jq -c -r '"\(.on_maintenance) \(.retirement)"')"
vpool pool rm polx >/dev/null || bail "pool rm polx"

policy_daemon || bail "vpoold did not start: $(cat "$WORK/vpoold.log")"
ok "vpoold starts with its policies"

# --- maintenance: set from the CLI, drained by the daemon ----------------------------------
vpool pool create polm --image guest --env new --profile pc-ide --size 4 >/dev/null || bail "pool create polm"
check_eq "pool polm spread over both hosts of new" "2 2" "$(vms_on polm "$HOSTB") $(vms_on polm "$HOSTC")"
out=$(vpool env host maintenance new "$HOSTB")
check_eq "env host maintenance says so" "host $HOSTB of env new in maintenance" "$out"
if wait_for 90 '[ "$(vms_on polm "$HOSTB")" = 0 ]'; then ok "vpoold drained $HOSTB"; else
    not_ok "vpoold drained $HOSTB" "$(vpool vm list --pool polm)" "$(tail -5 "$WORK/vpoold.log")"; fi
wait_for 30 '[ "$(policy_rows maintenance | jq -r .outcome)" = ok ]'
check_eq "the drain in the history: through policy maintenance, with its reason" \
    "host drain new/$HOSTB ok host $HOSTB of env new in maintenance with 2 VMs" \
    "$(policy_rows maintenance | jq -r '"\(.noun) \(.verb) \(.subject) \(.outcome) \(.reason)"')"
check_eq "its domains left $HOSTB for $HOSTC" "0 4" \
    "$(domains_on "$HOSTB" polm | wc -w) $(domains_on "$HOSTC" polm | wc -w)"
check_eq "the migration steps ran under the policy's row" "true" \
    "$(vpool history --via policy --json | jq '[.[] | select(.type == "step")] | length > 0')"
vpool env host resume new "$HOSTB" >/dev/null || bail "resume $HOSTB"

# --- maintenance in report mode: logged and recorded, nothing moves ---------------------------
out=$(vpool env set new --on-maintenance report)
check_eq "env set --on-maintenance says so" "env new: on maintenance report" "$out"
vpool env host maintenance new "$HOSTC" >/dev/null || bail "maintenance $HOSTC"
wait_for 20 '[ -n "$(policy_rows maintenance | jq -r "select(.reason | test(\"report mode\"))")" ]'
sleep 3
check_eq "report: still 4 VMs on $HOSTC, 4 domains there" "4 4" \
    "$(vms_on polm "$HOSTC") $(domains_on "$HOSTC" polm | wc -w)"
check_eq "report: recorded once, with what it would do" \
    "1 host $HOSTC of env new in maintenance with 4 VMs; report mode: nothing moved" \
    "$(policy_rows maintenance | jq -r 'select(.reason | test("report mode"))' | jq -s -r '"\(length) \(.[0].reason)"')"
check "report: the log says it" grep -q "report mode: would drain it" "$WORK/vpoold.log"
vpool env set new --on-maintenance none >/dev/null || bail "on-maintenance none"
check_eq "env show: on maintenance none" "none" "$(vpool env show new --json | jq -r .on_maintenance)"
vpool env host resume new "$HOSTC" >/dev/null || bail "resume $HOSTC"

# --- retire: pools of old, one of them running -----------------------------------------------
for p in polr1 polr3 polr4 polr5; do
    vpool pool create $p --image guest --env old --profile pc-ide --size 1 >/dev/null || bail "pool create $p"
done
vpool pool create polr2 --image desktop --env old --profile pc-ide --size 2 --start >/dev/null || bail "pool create polr2"
wait_boot 120 1 polr2-001 polr2-002 || bail "polr2's guests did not boot"
still_old() { local p n=0; for p in polr1 polr2 polr3 polr4 polr5; do [ "$(env_of $p)" = old ] && n=$((n + 1)); done; echo $n; }
migrations() { vpool migrate list --json | jq 'length'; }
m0=$(migrations)

# A window that does not hold now: nothing moves.
window="$(hhmm 120)-$(hhmm 180)"
out=$(vpool env retire old --to new --wave 2 --window "$window")
check_eq "env retire says so" "env old: retiring to new, waves of 2 pools, window $window" "$out"
check_eq "env show: retiring, its settings" "new null $window 2 false retiring" \
    "$(vpool env show old --json | jq -r '.retirement | "\(.to) \(.profile) \(.window) \(.wave) \(.report) \(.state)"')"
check "env list shows the retirement" bash -c "\"$VPOOL_BIN\" env list | grep -q '^old .*to new (retiring)'"
sleep 4
check_eq "outside the window: nothing moved" "5 $m0" "$(still_old) $(migrations)"
check "outside the window: the log says so" grep -q "env old retiring to new, window $window: outside its window" \
    "$WORK/vpoold.log"

# Report mode: every pool recorded once with its wave, nothing moved.
vpool env retire old --to new --wave 2 --report >/dev/null || bail "retire --report"
wait_for 20 '[ "$(policy_rows retire | jq -s length)" = 5 ]'
sleep 2
check_eq "report: each pool once, with its wave" \
    "polr1 wave 1 of 3|polr2 wave 1 of 3|polr3 wave 2 of 3|polr4 wave 2 of 3|polr5 wave 3 of 3|" \
    "$(policy_rows retire | jq -r '"\(.pool) \(.reason | capture("(?<w>wave [0-9]+ of [0-9]+)").w)"' | tr '\n' '|')"
check_eq "report: nothing moved" "5 $m0" "$(still_old) $(migrations)"

# Cancel: the first wave (polr1) finishes, no other starts. The other pools
# are held busy (their pool locks, as another vpool would hold them) until
# the cancel is in, so a first wave quicker than the cancel cannot let a
# second one start before it.
pool_lock_hold polr2 polr3 polr4 polr5 || bail "cannot hold a pool's lock"
vpool env retire old --to new --wave 1 >/dev/null || bail "retire --wave 1"
wait_for 30 '[ "$(migrations)" -gt "$m0" ]' || not_ok "a first wave started"
out=$(vpool env retire old --cancel)
check_eq "env retire --cancel says so" "env old: retirement cancelled" "$out"
wait_for 60 '[ "$(env_of polr1)" = new ]'
# A look that read the retirement just before the cancel may still try the
# next pool: on PostgreSQL its lock is waited for up to a second (a killed
# holder's session ends that late), so the locks are kept past that.
sleep 3
pool_lock_release
sleep 4
check_eq "after cancel: polr1 moved, nothing else started" "new 4 $((m0 + 1))" \
    "$(env_of polr1) $(still_old) $(migrations)"
check_eq "env show: not retiring" "null" "$(vpool env show old --json | jq -c .retirement)"

# A window that holds now: waves of 2; vpoold killed while the first runs.
# polz's image has no driver for the new profile's disk bus: its move is
# refused, once, and not tried again.
vpool image add ideonly --file "$GUEST_DIR/master.qcow2" --disk-buses ide --no-inspect >/dev/null || bail "image add ideonly"
vpool pool create polz --image ideonly --env old --profile pc-ide --size 1 >/dev/null || bail "pool create polz"
window="$(hhmm -60)-$(hhmm 120)"
m1=$(migrations)
vpool env retire old --to new --profile q35-sata --wave 2 --window "$window" >/dev/null || bail "retire --window"
# polr2 runs: its guests are shut down first, which takes a while.
pr2_moving() {
    [ "$(catalog_sql "SELECT count(*) FROM migrations WHERE pool_name = 'polr2' AND state = 'running'")" = 1 ]
}
until=$((SECONDS + 60))
while ! pr2_moving && [ $SECONDS -lt $until ]; do sleep 0.1; done
if pr2_moving; then
    kill -9 "$daemon_pid"
    wait "$daemon_pid" 2>/dev/null
    daemon_pid=
    ok "vpoold SIGKILLed while the first wave runs"
else
    not_ok "the first wave began (polr2 migrating)" "$(vpool migrate list)"
    stop_daemon
fi
policy_daemon || bail "vpoold did not start again: $(tail -5 "$WORK/vpoold.log")"
if wait_for 300 '[ "$(still_old)" = 0 ]'; then ok "every pool of old moved to new"; else
    not_ok "every pool of old moved to new" "$(vpool pool list)" "$(tail -5 "$WORK/vpoold.log")"; fi
check_eq "the interrupted migration resumed by vpoold" "true" \
    "$(vpool history --via policy --json | jq '[.[] | select(.type == "command" and .verb == "resume" and .pool == "polr2" and .outcome == "ok")] | length >= 1')"
check_eq "every migration done" "done done done done" \
    "$(vpool migrate list --json | jq -r --argjson m "$m1" '[.[] | select(.id > $m) | .state] | join(" ")')"
check_eq "with the retirement's profile" "q35-sata q35-sata q35-sata q35-sata" \
    "$(for p in polr2 polr3 polr4 polr5; do vpool pool show $p --json | jq -r .profile; done | xargs)"
check_eq "polr2 runs on new, its guests booted again" "running running 2 2" \
    "$(vm_state polr2-001) $(vm_state polr2-002) $(wait_boot 120 2 polr2-001 polr2-002; console_field polr2-001 boot) $(console_field polr2-002 boot)"
sleep 3
check_eq "polz: refused once, left where it is, not tried again" "old 1 failed" \
    "$(env_of polz) $(policy_rows retire | jq -s -r '[.[] | select(.pool == "polz" and .verb == "start")] | "\(length) \(.[0].outcome | split(":")[0])"')"
check "polz: the log says it is left to the operator" grep -q "not tried again until an operator acts" "$WORK/vpoold.log"
check_eq "the retirement waits for polz" "retiring" "$(vpool env show old --json | jq -r .retirement.state)"
vpool pool rm polz >/dev/null || bail "pool rm polz"
wait_for 30 '[ "$(vpool env show old --json | jq -r .retirement.state)" = complete ]'
check_eq "the retirement complete, shown" "complete true" \
    "$(vpool env show old --json | jq -r '.retirement | "\(.state) \(.completed != null)"')"
check_eq "its completion in the history" "env retire old env old retiring to new, window $window: it holds no pool any more" \
    "$(policy_rows retire | jq -r 'select(.verb == "retire") | "\(.noun) \(.verb) \(.subject) \(.reason)"')"
check_eq "the moves in the history through policy retire, with their waves" \
    "polr2 wave 1 of 3|polr3 wave 1 of 3|polr4 wave 2 of 3|polr5 wave 2 of 3|" \
    "$(policy_rows retire | jq -r --argjson m "$m1" 'select(.verb == "start" and .migration > $m)
        | "\(.pool) \(.reason | capture("(?<w>wave [0-9]+ of [0-9]+)").w)"' | sort | tr '\n' '|')"

# Waves: at most 2 migrations at once, the second wave after the first ended
# (from the events: each migration's first and last state).
spans=$(catalog_sql "SELECT pool, min(at), max(at) FROM events WHERE kind = 'migration'
    AND migration_id > $m1 GROUP BY migration_id, pool ORDER BY min(at)")
overlap=$(awk -F'|' '{ s[NR] = $2; e[NR] = $3 } END {
    m = 0; for (i = 1; i <= NR; i++) { n = 0; for (k = 1; k <= NR; k++) if (s[k] <= s[i] && s[i] < e[k]) n++; if (n > m) m = n }
    print m }' <<<"$spans")
check_eq "at most 2 migrations at once" "true" "$([ "$overlap" -le 2 ] && [ "$overlap" -ge 1 ] && echo true)"
check_eq "the second wave began once the first had ended" "true" \
    "$(awk -F'|' '$1 ~ /polr[23]/ { if ($3 > end) end = $3 } $1 ~ /polr[45]/ { if (start == "" || $2 < start) start = $2 }
        END { print (start >= end ? "true" : "false") }' <<<"$spans")"
check_eq "fsck finds nothing wrong" "" "$(fsck_kinds)"

stop_daemon
diag "vpoold's log: $(grep -c '' "$WORK/vpoold.log") lines; suite took $((SECONDS - t_start)) s"
finish
