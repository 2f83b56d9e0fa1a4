#!/bin/bash
# A host that fails, as vpoold sees it and acts: an env of three hosts with
# running guests of the test guest spread over them, each with its own
# data; vpoold watching every host. The env's host-failure policy set and
# refused as the CLI shows it; in report mode a dead host moves nothing and
# the history says what would have been done; without a fence agent
# nothing moves either, and the history says why; a host whose libvirtd
# dies and comes back within the grace period (a flap) moves nothing; a
# host whose libvirtd and guests are killed is detected, fenced by the
# env's agent past the grace period and evacuated, its guests booting on
# the other hosts with their own disks, the history naming the policy and
# its reason; vpoold SIGKILLed in the middle of an evacuation finishes it
# once started again; fsck clean once the fenced host is back and its stale
# definitions are repaired away.
. "$(dirname "$0")/lib.sh"

TEST_PREFIX=ev
VPOOLD_BIN=${VPOOLD_BIN:-$top/build/src/daemon/vpoold}
TEST_HOSTS=("$HOSTA" "$HOSTB" "$HOSTC")
hosts_dir=${VPOOL_HOSTS_DIR:-/var/lib/vpool-hosts}
command -v curl >/dev/null || bail "curl is missing (scripts/deps.sh installs it)"
"$HOSTS_SH" up --fresh "${TEST_HOSTS[@]}" >/dev/null || bail "cannot start ${TEST_HOSTS[*]}"
require_hosts "${TEST_HOSTS[@]}"
setup_workdir
t_suite=$SECONDS
# A source found dead is not waited for long by a resumed migration.
echo "source_grace = 2" >"$WORK/vpool.conf"
sock=$WORK/vpoold.sock
# vpoold on the suite's socket, its log in the work folder (lib.sh's start_daemon).
evac_daemon() { start_daemon "$WORK/vpoold.log" --listen "unix:$sock"; }
trap 'stop_daemon; cleanup_workdir; "$HOSTS_SH" down "${TEST_HOSTS[@]}" >/dev/null 2>&1' EXIT

# GET PATH, retried while the answer is no list (a 429 when the test polls
# faster than the rate limit allows).
api_list() {
    local out i
    for i in $(seq 20); do
        out=$(curl -s --unix-socket "$sock" "http://vpoold$1")
        jq -e .items >/dev/null 2>&1 <<<"$out" && { echo "$out"; return 0; }
        sleep 0.5
    done
    return 1
}
# The events after id $1 (all of them when 0), one JSON object a line.
events_after() { api_list "/v1/events?since=$1&limit=10000" | jq -c '.items[]'; }
last_event() { api_list "/v1/events?since=0&limit=1" | jq -r .last_id; }
# wait_event SINCE TIMEOUT JQ-FILTER: the first event after SINCE matching, printed.
wait_event() {
    local since=$1 deadline=$((SECONDS + $2)) filter=$3 e
    while [ $SECONDS -lt $deadline ]; do
        e=$(events_after "$since" | jq -c "select($filter)" | head -1)
        [ -n "$e" ] && { echo "$e"; return 0; }
        sleep 0.3
    done
    # Printed only when the check fails: what the jobs and the policy did.
    {
        echo "no event matching: $filter; the jobs' events since $since, and vpoold's log of the policy:"
        events_after "$since" | jq -c 'select(.kind == "job")' | tail -20
        grep -E 'host-failure|job|migrat' "$WORK/vpoold.log" | tail -40
    } >&2
    return 1
}
policy_rows() { vpool history --via policy --json | jq -c '.[] | select(.type == "command")'; }
# The newest of the policy's rows matching the jq FILTER, waited for (TIMEOUT s).
policy_row() {
    local deadline=$((SECONDS + $1)) row
    while [ $SECONDS -lt $deadline ]; do
        row=$(policy_rows | jq -c "select($2)" | tail -1)
        [ -n "$row" ] && { echo "$row"; return 0; }
        sleep 0.5
    done
    return 1
}
host_of() { vpool vm show "$1" --json | jq -r .host; }
on_host() { vpool vm list --json | jq -r --arg h "$1" '[.[] | select(.host == $h) | .name] | sort | join(" ")'; }
kill_libvirtd() { kill -9 "$(cat "$hosts_dir/$1/libvirtd.pid")"; }
# The QEMU processes of HOST's guests, from their pid files.
guest_pids() {
    local f pid
    for f in "$hosts_dir/$1"/run/qemu/*.pid; do
        [ -e "$f" ] || continue
        pid=$(tr -dc 0-9 <"$f")
        [[ $(cat "/proc/$pid/comm" 2>/dev/null) == qemu* ]] && echo "$pid"
    done
    return 0
}
kill_guests() { local p; for p in $(guest_pids "$1"); do kill -9 "$p"; done; }
qemus_of() { guest_pids "$1" | wc -l; }
ms() { date +%s%3N; }
iso_ms() { date -d "$1" +%s%3N; }

# --- set-up: an env of three hosts, the policy refused and set ------------------------------
vpool init --storage "$STORAGE" >/dev/null || bail "init failed"
vpool env add ev --domain-type qemu --host "$HOSTA=$(uri_of "$HOSTA")" --host "$HOSTB=$(uri_of "$HOSTB")" \
    --host "$HOSTC=$(uri_of "$HOSTC")" >/dev/null || bail "env add ev"
vpool env add ev2 --domain-type qemu --host "$HOSTC=$(uri_of "$HOSTC")" >/dev/null || bail "env add ev2"
add_desktop_image
vpool profile add pc-ide --machine pc --disk-bus ide --nic e1000 --vcpus 1 --memory 128M >/dev/null ||
    bail "profile add failed"
# The fence agent: powers the host off (its guests and daemons stopped) and says so.
cat >"$WORK/fence-off" <<AGENT
#!/bin/sh
echo "\$(date +%s%3N) env=\$VPOOL_FENCE_ENV host=\$VPOOL_FENCE_HOST_NAME args=\$*" >>"$WORK/fence.log"
exec "$HOSTS_SH" down "\$1"
AGENT
chmod 755 "$WORK/fence-off"
: >"$WORK/fence.log"

check_eq "env show: no policy by default, after 60 s" "none (after 60 s)" \
    "$(vpool env show ev | sed -n 's/^on host failure: *//p')"
check_eq "env show --json: on_host_failure none, grace 60, evacuate_to null" "none 60 null" \
    "$(vpool env show ev --json | jq -r '"\(.on_host_failure) \(.grace) \(.evacuate_to)"')"
expect_fail "an unknown policy is refused" 1 "^vpool: unknown host-failure policy 'migrate': give none, report, evacuate or evacuate:ENV$" \
    vpool env set ev --on-host-failure migrate
expect_fail "evacuate:ENV names another env" 1 "evacuate:ev names env 'ev' itself" \
    vpool env set ev --on-host-failure evacuate:ev
expect_fail "evacuate:ENV names an env that exists" 1 "^vpool: --on-host-failure evacuate:nosuch: unknown env 'nosuch'$" \
    vpool env set ev --on-host-failure evacuate:nosuch
expect_fail "evacuate:ENV is a name" 1 "^vpool: --on-host-failure evacuate:ENV: " \
    vpool env set ev --on-host-failure 'evacuate:../x'
expect_fail "a grace of 0 is refused" 1 "^vpool: --grace '0' is out of range: must be between 1 and 86400$" \
    vpool env set ev --grace 0
expect_fail "a grace that is no number is refused" 1 "^vpool: invalid --grace '10s': expected a whole number$" \
    vpool env set ev --grace 10s
expect_fail "a bad grace changes nothing else given with it" 1 "--grace" \
    vpool env set ev --on-host-failure report --grace -1
expect_fail "an unknown env" 1 "^vpool: unknown env 'nosuch'$" vpool env set nosuch --on-host-failure report
vpool env set ev >/dev/null 2>"$WORK/err"
check_eq "env set with nothing to set: usage error, exit 2" "2" "$?"
check "it says what to give" grep -q "nothing to set: give --fence-cmd, --no-fence-cmd, --on-maintenance, --on-host-failure or --grace" "$WORK/err"
check "env set --on-host-failure evacuate:ev2 --grace 30" vpool env set ev --on-host-failure evacuate:ev2 --grace 30
check_eq "env show says so" "evacuate:ev2 (after 30 s)" "$(vpool env show ev | sed -n 's/^on host failure: *//p')"
check_eq "env set --json shows it" "evacuate ev2 30" \
    "$(vpool env set ev --json --grace 30 | jq -r '"\(.on_host_failure) \(.evacuate_to) \(.grace)"')"
# ev2 only gave evacuate:ENV a target: a host in two envs would have fsck
# take one env's domains for strays of the other.
check "env rm ev2" vpool env rm ev2
check "env set: a fence agent, --on-host-failure report --grace 8" \
    vpool env set ev --fence-cmd "$WORK/fence-off $HOSTB" --on-host-failure report --grace 8
check_eq "env show --json: report after 8 s" "report 8 null" \
    "$(vpool env show ev --json | jq -r '"\(.on_host_failure) \(.grace) \(.evacuate_to)"')"

# --- running guests spread over the three hosts ------------------------------------------------
check "pool create ev1: 3 running guests" \
    vpool pool create ev1 --image desktop --env ev --profile pc-ide --size 3 --start
check "pool create ev2p: 3 running guests" \
    vpool pool create ev2p --image desktop --env ev --profile pc-ide --size 3 --start
vms="ev1-001 ev1-002 ev1-003 ev2p-001 ev2p-002 ev2p-003"
check "every guest boots once" wait_boot 300 1 $vms
declare -A uuid boots
for vm in $vms; do uuid[$vm]=$(vpool vm show "$vm" --json | jq -r .uuid); done
on_b=$(on_host "$HOSTB")
check_eq "two guests on $HOSTB" "2" "$(wc -w <<<"$on_b")"
diag "on $HOSTB: $on_b"

evac_daemon || bail "vpoold did not start: $(cat "$WORK/vpoold.log")"
check "vpoold watches every host" wait_until 60 \
    grep -q "watch: host '$HOSTC' of env 'ev' answers" "$WORK/vpoold.log"

# --- report: a dead host moves nothing; the history says what would be done ---------------
since=$(last_event)
t_kill=$(ms)
kill_libvirtd "$HOSTB"
ev=$(wait_event "$since" 60 ".kind == \"host\" and .subject == \"ev/$HOSTB\" and .state == \"unreachable\"")
check "the watcher marks $HOSTB unreachable: an event" test -n "$ev"
diag "libvirtd killed -> unreachable event: $(($(iso_ms "$(jq -r .at <<<"$ev")") - t_kill)) ms"
row=$(policy_row 60 '.verb == "report" and .outcome != "running"')
check "report: the policy's history row, past the grace period" test -n "$row"
check_eq "it is the policy's: via policy, user host-failure, ok" "policy host-failure ok ev/$HOSTB" \
    "$(jq -r '"\(.via) \(.user) \(.outcome) \(.subject)"' <<<"$row")"
check "its reason says what it would do" grep -Eq \
    "^host '$HOSTB' of env 'ev' unreachable for (9|[1-9][0-9]+) s; report only: would fence it with '$WORK/fence-off $HOSTB', then move 2 VMs \(pools ev1, ev2p\) to the other hosts of env 'ev'$" \
    <<<"$(jq -r .reason <<<"$row")"
check "vpoold logs it" wait_until 10 grep -q "host-failure: host '$HOSTB' of env 'ev' unreachable for [0-9]* s; report only" "$WORK/vpoold.log"
check_eq "nothing moved" "$on_b" "$(on_host "$HOSTB")"
check_eq "the guests still run there" "2" "$(qemus_of "$HOSTB")"
check_eq "no fence agent ran" "" "$(cat "$WORK/fence.log")"
since=$(last_event)
"$HOSTS_SH" revive "$HOSTB" >/dev/null || bail "revive $HOSTB"
check "revived: reachable again (event)" wait_event "$since" 60 \
    ".kind == \"host\" and .subject == \"ev/$HOSTB\" and .state == \"reachable\""

# --- evacuate without a fence agent: nothing moves, the history says why ----------------------
check "env set --no-fence-cmd --on-host-failure evacuate" vpool env set ev --no-fence-cmd --on-host-failure evacuate
since=$(last_event)
kill_libvirtd "$HOSTB"
row=$(policy_row 60 '.verb == "evacuate" and .outcome != "running"')
check "no fence agent: the policy's history row" test -n "$row"
check_eq "it failed, and says why" \
    "failed: env 'ev' has no fence agent, so 2 VMs (pools ev1, ev2p) stay where they are ('vpool env set ev --fence-cmd PROG' gives it one)" \
    "$(jq -r .outcome <<<"$row")"
check "its reason starts with how long the host did not answer" grep -Eq "^host '$HOSTB' of env 'ev' unreachable for [0-9]+ s; env 'ev' has no fence agent" \
    <<<"$(jq -r .reason <<<"$row")"
check_eq "nothing moved" "$on_b" "$(on_host "$HOSTB")"
since=$(last_event)
"$HOSTS_SH" revive "$HOSTB" >/dev/null || bail "revive $HOSTB"
check "revived: reachable again" wait_event "$since" 60 \
    ".kind == \"host\" and .subject == \"ev/$HOSTB\" and .state == \"reachable\""

# --- a flap: back within the grace period, nothing moves ---------------------------------------
check "env set: a fence agent, evacuate after 25 s" \
    vpool env set ev --fence-cmd "$WORK/fence-off $HOSTB" --on-host-failure evacuate --grace 25
nrows=$(policy_rows | wc -l)
since=$(last_event)
t_flap=$SECONDS
kill_libvirtd "$HOSTB"
check "the flap: unreachable" wait_event "$since" 30 \
    ".kind == \"host\" and .subject == \"ev/$HOSTB\" and .state == \"unreachable\""
sleep 2
"$HOSTS_SH" revive "$HOSTB" >/dev/null || bail "revive $HOSTB"
check "the flap: reachable again within the grace period" wait_event "$since" 30 \
    ".kind == \"host\" and .subject == \"ev/$HOSTB\" and .state == \"reachable\""
diag "down and back in $((SECONDS - t_flap)) s (grace 25 s)"
sleep $((25 + 5 - (SECONDS - t_flap) > 0 ? 25 + 5 - (SECONDS - t_flap) : 0))
check_eq "past the grace period: no decision of the policy" "$nrows" "$(policy_rows | wc -l)"
check_eq "no fence agent ran" "" "$(cat "$WORK/fence.log")"
check_eq "nothing moved" "$on_b" "$(on_host "$HOSTB")"
check_eq "the guests still run there" "2" "$(qemus_of "$HOSTB")"

# --- the host dies: detected, fenced, evacuated; the guests boot elsewhere ---------------------
check "env set --grace 8" vpool env set ev --grace 8
since=$(last_event)
t_kill=$(ms)
kill_libvirtd "$HOSTB"
kill_guests "$HOSTB"
ev=$(wait_event "$since" 60 ".kind == \"host\" and .subject == \"ev/$HOSTB\" and .state == \"unreachable\"")
check "detected: the unreachable event" test -n "$ev"
t_detect=$(iso_ms "$(jq -r .at <<<"$ev")")
check "the evacuation job starts past the grace period" wait_event "$since" 60 \
    ".kind == \"job\" and .state == \"running\" and .detail == \"host.evacuate\""
check "its migrations end: every guest off $HOSTB" wait_until 300 eval '[ -z "$(on_host "$HOSTB")" ]'
check "the evacuation job is done" wait_event "$since" 300 \
    ".kind == \"job\" and .state == \"done\" and .detail == \"host.evacuate\""
t_fence=$(awk '{print $1}' "$WORK/fence.log" | head -1)
check_eq "the agent ran once, told which host" "env=ev host=$HOSTB args=$HOSTB" \
    "$(cut -d' ' -f2- "$WORK/fence.log")"
# The evacuation puts the host in maintenance before its first pool moves:
# the maintenance policy leaves that host to it, between pools too.
check_eq "the maintenance policy started no drain of $HOSTB beside it" "" \
    "$(policy_rows | jq -r --arg s "ev/$HOSTB" 'select(.verb == "drain" and .subject == $s) | .command')"
check "every moved guest boots on its new host with its own disk" wait_boot 300 2 $on_b
t_boot=$(ms)
for vm in $on_b; do
    h=$(host_of "$vm")
    check "$vm: on $HOSTA or $HOSTC now ($h)" test "$h" = "$HOSTA" -o "$h" = "$HOSTC"
    check_eq "$vm: reads its own data (owner, second boot)" "${uuid[$vm]} 2" \
        "$(console_field "$vm" owner) $(console_field "$vm" boot)"
    check_eq "$vm: running on $h" "running" "$(virsh_on "$h" domstate "$vm")"
done
for vm in $vms; do
    case " $on_b " in *" $vm "*) continue ;; esac
    check_eq "$vm (not on $HOSTB): untouched, first boot" "1" "$(console_field "$vm" boot)"
done
check_eq "$HOSTB is in maintenance" "true" \
    "$(vpool env show ev --json | jq -r --arg h "$HOSTB" '.hosts[] | select(.name == $h) | .maintenance')"
row=$(policy_row 30 '.verb == "evacuate" and .noun == "host" and .outcome == "ok"')
check_eq "history: the evacuation as the policy's" "policy host-failure ok" \
    "$(jq -r '"\(.via) \(.user) \(.outcome)"' <<<"$row")"
check "its reason: unreachable past the grace, fence agent exit 0" grep -Eq \
    "^host '$HOSTB' of env 'ev' unreachable for (9|[1-9][0-9]+) s; fence agent exit 0$" <<<"$(jq -r .reason <<<"$row")"
check_eq "history: one migration per pool, each the policy's with that reason" "ev1 ev2p" \
    "$(policy_rows | jq -r --arg r "$(jq -r .reason <<<"$row")" \
        'select(.noun == "migration" and .reason == $r and .outcome == "ok" and .migration != null) | .pool' | sort | xargs)"
check "vpool history (text) shows the reason" grep -q "reason: host '$HOSTB' of env 'ev' unreachable for [0-9]* s; fence agent exit 0" \
    <<<"$(vpool history --via policy)"
check "the fence is each migration's, journaled" grep -q "fence: host '$HOSTB' of env 'ev': fence agent .* exited 0: powered off" \
    <<<"$(vpool history)"
check "the guests' start is seen: vm events from their new hosts" wait_event "$since" 30 \
    ".kind == \"vm\" and .state == \"started\" and (.detail | test(\"^ev/($HOSTA|$HOSTC): booted\$\"))"
diag "timings: unreachable $((t_detect - t_kill)) ms after the kill; fence agent at +$((t_fence - t_kill)) ms (grace 8 s); guests booted at +$((t_boot - t_kill)) ms"

# --- the fenced host returns with its stale definitions; fsck --------------------------------
"$HOSTS_SH" up "$HOSTB" >/dev/null || bail "cannot restart $HOSTB"
check "$HOSTB answers again (event)" wait_event "$since" 60 \
    ".kind == \"host\" and .subject == \"ev/$HOSTB\" and .state == \"reachable\""
check "fsck --repair removes the stale definitions" vpool fsck --repair
check "vpool fsck: clean" vpool fsck
check_eq "$HOSTB holds no definition of the moved guests" "" "$(domains_on "$HOSTB" ev)"
check "env host resume ev $HOSTB" vpool env host resume ev "$HOSTB"

# --- vpoold SIGKILLed mid-evacuation finishes it once started again ---------------------------
for vm in $vms; do boots[$vm]=$(console_field "$vm" boot); done
# Each guest moves once, cold: it boots once more on $HOSTB.
vpool env host drain ev "$HOSTA" --to "$HOSTB" --cold >/dev/null || bail "drain $HOSTA"
vpool env host drain ev "$HOSTC" --to "$HOSTB" --cold >/dev/null || bail "drain $HOSTC"
vpool env host resume ev "$HOSTA" >/dev/null
vpool env host resume ev "$HOSTC" >/dev/null
check_eq "every guest gathered on $HOSTB" "$vms" "$(on_host "$HOSTB")"
for vm in $vms; do boots[$vm]=$((boots[$vm] + 1)); done
check "every guest booted there" eval 'for vm in $vms; do wait_boot 300 "${boots[$vm]}" "$vm" || exit 1; done'
since=$(last_event)
: >"$WORK/fence.log"
kill_libvirtd "$HOSTB"
kill_guests "$HOSTB"
mid=$(wait_event "$since" 120 '.kind == "step" and .state == "locked"')
kill -9 "$daemon_pid"
wait "$daemon_pid" 2>/dev/null
daemon_pid=
check "vpoold SIGKILLed at an evacuation's first hand-over step" test -n "$mid"
mig=$(jq -r .migration <<<"$mid")
check_eq "its migration is interrupted" "interrupted" "$(vpool migrate status "$mig" --json | jq -r .state)"
evac_daemon || bail "vpoold did not start again: $(tail -5 "$WORK/vpoold.log")"
check "started again: vpoold resumes it" wait_until 60 grep -q "resuming migration $mig of pool" "$WORK/vpoold.log"
check "every guest leaves $HOSTB" wait_until 400 eval '[ -z "$(on_host "$HOSTB")" ]'
check "migration $mig done" wait_until 120 eval '[ "$(vpool migrate status "$mig" --json | jq -r .state)" = done ]'
for vm in $vms; do
    want=$(($(grep -ac 'VPOOL-GUEST uuid=' "$STORAGE/logs/$vm.log") + 0))
    check "$vm boots on $(host_of "$vm") with its own disk" wait_until 300 \
        eval '[ "$(console_field '"$vm"' owner)" = "${uuid['"$vm"']}" ] && [ "$(console_field '"$vm"' boot)" -gt "${boots['"$vm"']}" ]'
done
check_eq "no guest on $HOSTB" "" "$(on_host "$HOSTB")"
check "the fence agent powered $HOSTB off before anything moved" grep -q "host=$HOSTB" "$WORK/fence.log"
check "history: the resume is vpoold's" eval \
    'vpool history --via policy --json | jq -e --argjson m "$mig" ".[] | select(.type == \"command\" and .verb == \"resume\" and .migration == \$m and .outcome == \"ok\")" >/dev/null'
"$HOSTS_SH" up "$HOSTB" >/dev/null || bail "cannot restart $HOSTB"
check "fsck --repair, then fsck clean" eval 'vpool fsck --repair >/dev/null && vpool fsck >/dev/null'
stop_daemon
check "vpoold stops cleanly" grep -q "stopped" "$WORK/vpoold.log"
diag "suite: $((SECONDS - t_suite)) s"
finish
