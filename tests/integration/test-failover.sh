#!/bin/bash
# Two vpoold on one PostgreSQL catalog: one leads, the other serves reads,
# refuses changes (503, Retry-After, the leader's address) and takes over.
# The leader SIGKILLed in the middle of a migration: the follower leads
# within the bounded time (the figure is printed) and finishes the
# migration from the journal; the PostgreSQL server restarted in the middle
# of another: the leader stops (no two act at once) and the other finishes
# it. Nothing lost or owned twice, fsck clean, the history naming vpoold.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/jsonspec.sh"

TEST_PREFIX=fo
VPOOLD_BIN=${VPOOLD_BIN:-$top/build/src/daemon/vpoold}
require_hosts "$HOSTA" "$HOSTB"
for c in curl jq; do command -v "$c" >/dev/null || bail "$c is missing (scripts/deps.sh installs it)"; done
# A server of the suite's own: it is restarted below.
export VPOOL_TEST_CATALOG=pg
unset VPOOL_TEST_PG_DIR
setup_workdir
t_suite=$SECONDS
spec=$(json_spec "$top/docs/json.md" "$top/docs/api.md") || bail "cannot read the JSON references"
standard_setup
add_desktop_image
vpool profile add q35-virtio --machine q35 --disk-bus virtio --nic virtio --vcpus 1 --memory 256M >/dev/null ||
    bail "profile add failed"

interval=2
declare -A pid socks
for n in a b; do
    socks[$n]=$WORK/vpoold-$n.sock
    # Each its own configuration, as on two machines.
    printf 'listen = unix:%s\nadvertise = unix:%s\nleader_interval = %s\n' "${socks[$n]}" "${socks[$n]}" "$interval" \
        >"$WORK/$n.conf"
done
# start_one N: vpoold N in the foreground, its stderr into vpoold-N.log,
# waited for until it answers (lib.sh's start_daemon on its socket).
start_one() {
    local n=$1 sock=${socks[$1]} r
    start_daemon "$WORK/vpoold-$n.log" --config "$WORK/$n.conf"
    r=$?
    pid[$n]=$daemon_pid
    daemon_pid=
    return $r
}
stop_all() {
    local n
    for n in a b; do
        [ -n "${pid[$n]:-}" ] || continue
        kill "${pid[$n]}" 2>/dev/null
        wait "${pid[$n]}" 2>/dev/null
        pid[$n]=
    done
    [ -z "${sampler:-}" ] || kill "$sampler" 2>/dev/null
}
trap 'stop_all; cleanup_workdir' EXIT

# api N METHOD PATH [BODY]: the body, then the status on a line of its own.
api() {
    local n=$1 m=$2 p=$3 body=${4:-}
    curl -s --unix-socket "${socks[$n]}" -X "$m" ${body:+-H 'Content-Type: application/json' --data-binary "$body"} \
        -w '\n%{http_code}' "http://vpoold$p"
}
get() { api "$1" GET "$2" | sed '$d'; }
role_of() { get "$1" /v1 2>/dev/null | jq -r '.controller.role // "down"' 2>/dev/null || echo down; }
ms() { date +%s%3N; }
# wait_role N ROLE TIMEOUT: N says ROLE within TIMEOUT seconds.
wait_role() {
    local deadline=$((SECONDS + $3))
    until [ "$(role_of "$1")" = "$2" ]; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.05
    done
}
# wait_step N MIGRATION STEP TIMEOUT: the first event of MIGRATION reaching
# STEP, read through vpoold N, printed.
wait_step() {
    local deadline=$((SECONDS + $4)) e
    while [ $SECONDS -lt $deadline ]; do
        e=$(get "$1" '/v1/events?since=0&limit=10000' | jq -c --argjson m "$2" --arg s "$3" \
            '.items[] | select(.kind == "step" and .migration == $m and .state == $s)' | head -1)
        [ -n "$e" ] && { echo "$e"; return 0; }
        sleep 0.2
    done
    return 1
}
mig_state() { vpool migrate status "$1" --json | jq -r .state; }
# Every VM of POOL on ENV, each owning its own delta: "ENV ENV ENV".
envs_of() { vpool vm list --pool "$1" --json | jq -r '[.[].env] | join(" ")'; }
# Every guest of POOL runs with its own disk, booted more than BOOTS[vm] times.
declare -A uuid boots
booted_again() {
    local vm
    for vm in $(vpool vm list --pool "$1" --json | jq -r '.[].name'); do
        [ "$(console_field "$vm" owner)" = "${uuid[$vm]}" ] && [ "$(console_field "$vm" boot)" -gt "${boots[$vm]}" ] ||
            return 1
    done
}
# Both leading at one moment: the sampler writes each look at both roles.
sample_roles() { while :; do echo "$(ms) $(role_of a) $(role_of b)"; sleep 0.1; done; }

# --- a pool of running guests, and one of defined VMs ------------------------------------------
check "pool create fo1: 3 running guests on $HOSTA" \
    vpool pool create fo1 --image desktop --env "$HOSTA" --profile pc-ide --size 3 --start
check "pool create fo2: 3 VMs defined, not running" \
    vpool pool create fo2 --image guest --env "$HOSTA" --profile pc-ide --size 3
check "every guest of fo1 boots" wait_boot 300 1 fo1-001 fo1-002 fo1-003
for vm in fo1-001 fo1-002 fo1-003; do
    uuid[$vm]=$(vpool vm show "$vm" --json | jq -r .uuid)
    boots[$vm]=$(console_field "$vm" boot)
done

# --- one leads, the other follows ---------------------------------------------------------------
start_one a || bail "vpoold a did not start: $(cat "$WORK/vpoold-a.log")"
check "vpoold a leads" wait_role a leader 10
start_one b || bail "vpoold b did not start: $(cat "$WORK/vpoold-b.log")"
check_eq "GET /v1 of a: its role, its address, the catalog" "leader unix:${socks[a]} postgresql" \
    "$(get a /v1 | jq -r '.controller | "\(.role) \(.leader) \(.catalog)"')"
sed '$d' <<<"$(api b GET /v1)" >"$WORK/index.json"
check_eq "GET /v1 is an api_index, its controller an api_controller (docs/api.md)" "" \
    "$(validate api_index "$WORK/index.json")"
check_eq "GET /v1 of b: a follower, naming the leader" "follower unix:${socks[a]} postgresql" \
    "$(get b /v1 | jq -r '.controller | "\(.role) \(.leader) \(.catalog)"')"
check_eq "the follower serves reads: the same pools as the leader's" "$(get a /v1/pools | jq -c .)" \
    "$(get b /v1/pools | jq -c .)"
sampler_out=$WORK/roles
sample_roles >"$sampler_out" &
sampler=$!

# --- the follower refuses a change ----------------------------------------------------------------
before=$(snapshot)
out=$(curl -s --unix-socket "${socks[b]}" -X POST -H 'Content-Type: application/json' -D "$WORK/h-refused" \
    --data-binary '{"to": "'"$HOSTB"'"}' -w '\n%{http_code}' http://vpoold/v1/pools/fo2/migrations)
check_eq "a POST to the follower: 503" 503 "$(tail -n1 <<<"$out")"
check_eq "a problem document naming the leader" "503 unix:${socks[a]}" \
    "$(sed '$d' <<<"$out" | jq -r '"\(.status) \(.leader)"')"
check_eq "its detail says where changes go" "this vpoold follows: changes go to the leading vpoold, at unix:${socks[a]}" \
    "$(sed '$d' <<<"$out" | jq -r .detail)"
check "Content-Type application/problem+json" grep -qi '^content-type: application/problem+json' "$WORK/h-refused"
check "Retry-After: the leader interval" grep -qi "^retry-after: $interval" "$WORK/h-refused"
check_eq "a DELETE too: 503" 503 "$(api b DELETE /v1/pools/fo2 | tail -n1)"
check_eq "and nothing changed" "$before" "$(snapshot)"

# --- the leader SIGKILLed in the middle of a migration --------------------------------------------
out=$(api a POST /v1/pools/fo1/migrations '{"to": "'"$HOSTB"'", "profile": "q35-virtio", "parallel": 1}')
check_eq "a migration through the leader: 202" 202 "$(tail -n1 <<<"$out")"
mig=$(sed '$d' <<<"$out" | jq -r .migration)
mid=$(wait_step b "$mig" locked 300)
check "its first VM locked (read through the follower)" test -n "$mid"
kill -9 "${pid[a]}"
t_kill=$(ms)
wait "${pid[a]}" 2>/dev/null
pid[a]=
check "the follower leads within leader_interval + 3 s" wait_role b leader $((interval + 3))
takeover=$(($(ms) - t_kill))
diag "takeover after the leader's SIGKILL: $takeover ms (leader_interval $interval s)"
check "the new leader resumes the migration from the journal" wait_until 30 \
    grep -q "resuming migration $mig of pool fo1, interrupted when the leading vpoold stopped" "$WORK/vpoold-b.log"
check "migration $mig done" wait_until 600 eval '[ "$(mig_state "$mig")" = done ]'
check_eq "every VM of fo1 on $HOSTB" "$HOSTB $HOSTB $HOSTB" "$(envs_of fo1)"
check_eq "no domain of fo1 left on $HOSTA" "" "$(domains_on "$HOSTA" fo1)"
check_eq "three on $HOSTB" "fo1-001 fo1-002 fo1-003" "$(domains_on "$HOSTB" fo1)"
check "each guest boots on $HOSTB with its own disk" wait_until 300 booted_again fo1
check_eq "fsck: clean" "" "$(fsck_kinds)"
check "history: the resume is vpoold's, done" eval \
    'vpool history --via policy --json | jq -e --argjson m "$mig" ".[] | select(.type == \"command\" and .verb == \"resume\" and .migration == \$m and .user == \"vpoold\" and .outcome == \"ok\")" >/dev/null'
check "history: its reason is the leader's loss" eval \
    'vpool history --via policy --json | jq -e --argjson m "$mig" ".[] | select(.verb == \"resume\" and .migration == \$m and .reason == \"interrupted when the leading vpoold stopped\")" >/dev/null'
start_one a || bail "vpoold a did not start again: $(tail -5 "$WORK/vpoold-a.log")"
check_eq "a, started again, follows b" "follower unix:${socks[b]}" \
    "$(get a /v1 | jq -r '.controller | "\(.role) \(.leader)"')"

# --- the PostgreSQL server restarted in the middle of a migration --------------------------------
for vm in fo1-001 fo1-002 fo1-003; do boots[$vm]=$(console_field "$vm" boot); done
out=$(api b POST /v1/pools/fo1/migrations '{"to": "'"$HOSTA"'", "profile": "pc-ide", "parallel": 1}')
check_eq "a migration back through b: 202" 202 "$(tail -n1 <<<"$out")"
mig2=$(sed '$d' <<<"$out" | jq -r .migration)
check "its first VM locked" wait_step a "$mig2" locked 300
t_restart=$(ms)
"$top/tests/pg.sh" restart "$PG_OWN_DIR" || bail "cannot restart PostgreSQL"
wait "${pid[b]}"
rc=$?
pid[b]=
check_eq "b, its lock's session ended with a job under way, exits 75" 75 "$rc"
check "and says why" grep -q "lost the leader's lock (its connection to the catalog ended) with 1 job under way: exiting" \
    "$WORK/vpoold-b.log"
check "a leads" wait_role a leader $((interval + 10))
diag "takeover after the server's restart: $(($(ms) - t_restart)) ms"
check "a resumes the migration" wait_until 30 grep -q "resuming migration $mig2 of pool fo1" "$WORK/vpoold-a.log"
check "migration $mig2 done" wait_until 600 eval '[ "$(mig_state "$mig2")" = done ]'
check_eq "every VM of fo1 on $HOSTA" "$HOSTA $HOSTA $HOSTA" "$(envs_of fo1)"
check_eq "no domain of fo1 left on $HOSTB" "" "$(domains_on "$HOSTB" fo1)"
check "each guest boots on $HOSTA with its own disk" wait_until 300 booted_again fo1
check_eq "fsck: clean" "" "$(fsck_kinds)"

# --- a leader without jobs that loses its session follows, and leads again -------------------------
start_one b || bail "vpoold b did not start again: $(tail -5 "$WORK/vpoold-b.log")"
check "b follows" wait_role b follower 5
"$top/tests/pg.sh" restart "$PG_OWN_DIR" || bail "cannot restart PostgreSQL"
check "one of them leads again" wait_until $((interval + 10)) eval \
    '[ "$(role_of a)" = leader ] || [ "$(role_of b)" = leader ]'
check "both still run" eval 'kill -0 "${pid[a]}" && kill -0 "${pid[b]}"'
sleep $((2 * interval))
kill "$sampler"
wait "$sampler" 2>/dev/null
sampler=
check_eq "never both leading at one look ($(wc -l <"$sampler_out") looks)" "" \
    "$(grep ' leader leader$' "$sampler_out")"
check_eq "and one leads now" 1 "$( (role_of a; role_of b) | grep -c '^leader$')"
check "migrate pool fo2 through the leader, done" eval \
    'l=$( [ "$(role_of a)" = leader ] && echo a || echo b ); out=$(api $l POST /v1/pools/fo2/migrations "{\"to\": \"'"$HOSTB"'\"}"); m=$(sed "\$d" <<<"$out" | jq -r .migration); wait_until 300 eval "[ \"\$(mig_state $m)\" = done ]"'
check_eq "fsck: clean" "" "$(fsck_kinds)"
stop_all
check "both stop cleanly" eval 'grep -q "stopped" "$WORK/vpoold-a.log" && grep -q "stopped" "$WORK/vpoold-b.log"'

# --- the command line's migration whose server restarts: the pool's lock is gone with its session, so
# it stops before its next step (another controller may take the pool), and a resume finishes it -------
for vm in fo1-001 fo1-002 fo1-003; do boots[$vm]=$(console_field "$vm" boot); done
vpool --json migrate fo1 --to "$HOSTB" --parallel 1 >"$WORK/cli.jsonl" 2>"$WORK/cli.err" &
cli=$!
check "vpool migrate: its first VM locked" wait_until 300 grep -q '"locked"' "$WORK/cli.jsonl"
"$top/tests/pg.sh" restart "$PG_OWN_DIR" || bail "cannot restart PostgreSQL"
wait "$cli"
rc=$?
check_eq "it stops, failing" 1 "$rc"
# (With --json, a VM's failure is its event on stdout; the outcome is the last line.)
# Which comes first depends on where the restart catches the run: the
# check of the pool's lock before a step, or the step's commit itself.
if jq -r 'select(.error != null) | .error' "$WORK/cli.jsonl" |
    grep -Eq "the pool's lock was lost \(the catalog's server ended the session that held it\): stopped at step|cannot begin a transaction: (FATAL: +terminating connection|no connection to the server)"; then
    ok "a VM's event says why it stopped: the pool's lock lost, or the catalog's server gone at its step"
else
    not_ok "a VM's event says why it stopped: the pool's lock lost, or the catalog's server gone at its step" \
        "$(cat "$WORK/cli.jsonl" "$WORK/cli.err")"
fi
m3=$(vpool migrate list --json | jq -r '[.[] | select(.pool == "fo1")] | last | .id')
check_eq "its migration is not done" "" "$([ "$(mig_state "$m3")" = done ] && echo done)"
check "vpool migrate resume finishes it" vpool migrate resume "$m3"
check_eq "migration $m3 done" done "$(mig_state "$m3")"
check "each guest boots on $HOSTB with its own disk" wait_until 300 booted_again fo1
check_eq "fsck: clean after it" "" "$(fsck_kinds)"

# --- the command line's pool create whose lock's session ends: it stops before its next VM, the pool
# left creating (another controller may hold it now, so nothing is undone), and the same create
# finishes it -------------------------------------------------------------------------------------------
create=(vpool pool create fo9 --image guest --env "$HOSTB" --profile pc-ide --size 300)
"${create[@]}" >"$WORK/create.out" 2>"$WORK/create.err" &
cli=$!
made() { find "$STORAGE/deltas/fo9" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
check "pool create fo9: its first VMs made" wait_until 120 eval '[ "$(made)" -ge 5 ]'
catalog_sql "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted
    AND pid <> pg_backend_pid()" >/dev/null
wait "$cli"
check_eq "it stops, failing" 1 "$?"
check "saying the pool's lock was lost, and how to finish" grep -q \
    "^vpool: the pool's lock was lost (the catalog's server ended the session that held it): pool 'fo9' stopped creating so that no other process works on it alongside; the same 'vpool pool create' finishes it$" \
    "$WORK/create.err"
check_eq "the pool is left creating, not undone" creating \
    "$(vpool --json pool list | jq -r '.[] | select(.name == "fo9") | .state')"
left=$(made)
check "and not every VM was made ($left of 300)" test "$left" -lt 300
check "the same create finishes it" "${create[@]}" --quiet
check_eq "fo9 active, 300 VMs defined on $HOSTB" "active 300" \
    "$(vpool --json pool list | jq -r '.[] | select(.name == "fo9") | .state') $(virsh_on "$HOSTB" list --all --name | grep -c '^fo9-')"
check_eq "fsck: clean" "" "$(fsck_kinds)"
check "pool rm fo9" vpool pool rm fo9 --quiet
diag "suite: $((SECONDS - t_suite)) s"
finish
