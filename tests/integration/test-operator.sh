#!/bin/bash
# What an operator sees: the history of every change (migration steps merged
# in under the command that ran them), the migrate --json event stream,
# progress on a real terminal (tmux) and quiet output in a pipe, and
# migrate status --watch following a migration from another terminal.
. "$(dirname "$0")/lib.sh"

TEST_PREFIX=op
require_hosts "$HOSTA" "$HOSTB"
command -v tmux >/dev/null || bail "tmux is missing (scripts/deps.sh installs it)"
setup_workdir
tm() { tmux -S "$WORK/tmux.sock" "$@"; }
trap 'tm kill-server 2>/dev/null; cleanup_workdir' EXIT
standard_setup
add_desktop_image
vpool profile add q35-virtio --machine q35 --disk-bus virtio --nic virtio --vcpus 1 --memory 256M >/dev/null
me=$(id -un)
steps="stopping locked provisioned handed_over done"

# every_line_json FILE: each line of FILE is one JSON object.
every_line_json() {
    local l n=0
    while IFS= read -r l; do
        jq -e 'type == "object"' <<<"$l" >/dev/null 2>&1 || { echo "not a JSON object: $l"; return 1; }
        n=$((n + 1))
    done <"$1"
    [ "$n" -gt 0 ]
}

# --- 1. the --json event stream --------------------------------------------------
vpool pool create op1 --image guest --env "$HOSTA" --profile pc-ide --size 3 >/dev/null || bail "create op1"
vpool --json migrate op1 --to "$HOSTB" --profile q35-virtio >"$WORK/events" 2>"$WORK/err"
check_eq "migrate --json exits 0" "0" "$?"
check_eq "migrate --json: nothing on stderr" "" "$(cat "$WORK/err")"
check "migrate --json: every line is one JSON object" every_line_json "$WORK/events"
id1=$(head -1 "$WORK/events" | jq -r 'select(.vm == null and .step == "allocated") | .migration')
check "the first event is the allocation, with the migration id" test -n "$id1"
for vm in op1-001 op1-002 op1-003; do
    check_eq "$vm: every step, in order" "$steps" "$(jq -r "select(.vm == \"$vm\") | .step" "$WORK/events" | xargs)"
    check_eq "$vm: a generation with every step (bumped at lock and hand-over)" "1 2 2 3 3" \
        "$(jq -r "select(.vm == \"$vm\") | .generation" "$WORK/events" | xargs)"
    check_eq "$vm: times never go back, no error" "true" \
        "$(jq -s "[.[] | select(.vm == \"$vm\")] | (map(.time) | . == sort) and all(.error == null)" "$WORK/events")"
done
check_eq "the last line is the outcome" "$id1 done 3" "$(tail -1 "$WORK/events" | jq -r '"\(.migration) \(.state) \(.total)"')"

# --- 2. history: kills, resume, abort, a failure ------------------------------------
vpool pool create op2 --image guest --env "$HOSTA" --profile pc-ide --size 2 >/dev/null || bail "create op2"
VPOOL_FAULT=migrate.provisioned:2 vpool migrate op2 --to "$HOSTB" --profile q35-virtio --parallel 1 >"$WORK/out" 2>&1
check_eq "migration of op2 killed after op2-002 was provisioned" "137" "$?"
id2=$(awk '/^migration [0-9]+$/ {print $2; exit}' "$WORK/out")
check_eq "history: the killed migration shows as interrupted" "interrupted" \
    "$(vpool history --json | jq -r '[.[] | select(.type == "command")] | last | .outcome')"
check "resume finishes op2" vpool migrate resume "$id2"
sleep 1.1
t_mid=$(date -u +%Y-%m-%dT%H:%M:%SZ)
vpool pool create op3 --image guest --env "$HOSTA" --profile pc-ide --size 2 >/dev/null || bail "create op3"
VPOOL_FAULT=migrate.locked:2 vpool migrate op3 --to "$HOSTB" --parallel 1 >"$WORK/out" 2>&1
check_eq "migration of op3 killed after op3-002 was locked" "137" "$?"
id3=$(awk '/^migration [0-9]+$/ {print $2; exit}' "$WORK/out")
timeout 20 "$VPOOL_BIN" migrate status "$id3" --watch >"$WORK/out" 2>&1
check_eq "watch of an interrupted migration: exit 1 at once" "1" "$?"
check "watch of an interrupted migration: says so" grep -q "^migration $id3: .*: interrupted, 1/2 VMs done" "$WORK/out"
check "abort returns op3-002" vpool migrate abort "$id3"
expect_fail "a command that fails" 1 "^vpool: unknown pool 'nosuch'$" vpool pool start nosuch

vpool history --json >"$WORK/h.json"
check_eq "history --json: one array of commands and steps" "true" \
    "$(jq 'type == "array" and all(.[]; .type == "command" or .type == "step")' "$WORK/h.json")"
check_eq "every command, oldest first, with its outcome" \
"init - ok
env add ok
env add ok
image add ok
profile add ok
image add ok
profile add ok
pool create ok
migrate start ok
pool create ok
migrate start interrupted
migrate resume ok
pool create ok
migrate start interrupted
migrate abort ok
pool start failed: unknown pool 'nosuch'" \
    "$(jq -r '.[] | select(.type == "command") | "\(.noun) \(.verb // "-") \(.outcome)"' "$WORK/h.json")"
check_eq "command ids ascend" "true" "$(jq '[.[] | select(.type == "command") | .id] | . == sort' "$WORK/h.json")"
check_eq "every command by this user" "$me" "$(jq -r '[.[] | select(.type == "command") | .user] | unique | join(" ")' "$WORK/h.json")"
check_eq "the command as typed" "vpool --json migrate op1 --to $HOSTB --profile q35-virtio" \
    "$(jq -r ".[] | select(.type == \"command\" and .migration == $id1) | .command" "$WORK/h.json")"
check_eq "a resume names its pool and migration" "op2 $id2" \
    "$(jq -r '.[] | select(.type == "command" and .verb == "resume") | "\(.pool) \(.migration)"' "$WORK/h.json")"
c1=$(jq -r ".[] | select(.type == \"command\" and .migration == $id1) | .id" "$WORK/h.json")
for vm in op1-001 op1-002 op1-003; do
    check_eq "history: $vm's steps, in order, each ok under the migrate command, by $me" \
        "$(for s in $steps; do printf '%s:ok:%s:%s ' "$s" "$c1" "$me"; done)" \
        "$(jq -r ".[] | select(.type == \"step\" and .vm == \"$vm\") | \"\(.step):\(.outcome):\(.command_id):\(.user)\"" \
            "$WORK/h.json" | xargs -I{} printf '%s ' {})"
done
cs=$(jq -r ".[] | select(.type == \"command\" and .verb == \"start\" and .migration == $id2) | .id" "$WORK/h.json")
cr=$(jq -r '.[] | select(.type == "command" and .verb == "resume") | .id' "$WORK/h.json")
check_eq "history: op2-001's steps all under the killed command" \
    "stopping:$cs locked:$cs provisioned:$cs handed_over:$cs done:$cs" \
    "$(jq -r '.[] | select(.type == "step" and .vm == "op2-001") | "\(.step):\(.command_id)"' "$WORK/h.json" | xargs)"
check_eq "history: op2-002's steps split between the killed command and the resume" \
    "stopping:$cs locked:$cs provisioned:$cs handed_over:$cr done:$cr" \
    "$(jq -r '.[] | select(.type == "step" and .vm == "op2-002") | "\(.step):\(.command_id)"' "$WORK/h.json" | xargs)"
check_eq "history: migration $id2 as a whole: allocated, resumed, done" "allocated running done" \
    "$(jq -r ".[] | select(.type == \"step\" and .vm == null and .migration == $id2) | .step" "$WORK/h.json" | xargs)"
ca=$(jq -r '.[] | select(.type == "command" and .verb == "abort") | .id' "$WORK/h.json")
check_eq "history: op3-002 locked, then returned by the abort" \
    "$(jq -r ".[] | select(.type == \"command\" and .migration == $id3 and .verb == \"start\") | .id" "$WORK/h.json" |
        sed 's/.*/stopping:& locked:&/') returned:$ca" \
    "$(jq -r '.[] | select(.type == "step" and .vm == "op3-002") | "\(.step):\(.command_id)"' "$WORK/h.json" | xargs)"
check_eq "every step has a generation" "true" "$(jq '[.[] | select(.type == "step" and .vm != null) | .generation > 0] | all' "$WORK/h.json")"

vpool history >"$WORK/h.txt"
check "history (text): the failure and its reason" \
    grep -Pzq "Z  $me +cli +failed +vpool pool start nosuch\n +error: unknown pool 'nosuch'\n" "$WORK/h.txt"
check "history (text): the killed migration" grep -Eq "Z  $me +cli +interrupted +vpool migrate op2 --to $HOSTB" "$WORK/h.txt"
check "history (text): each step under its migration" grep -Eq "Z  $me +cli +migration $id2: op2-002 handed_over, generation 3$" "$WORK/h.txt"

# Filters.
check_eq "--pool op2: only op2, its 3 commands and 13 journal entries" "true 3 13" \
    "$(vpool history --pool op2 --json | jq -r '"\(all(.[]; .pool == "op2")) \([.[] | select(.type == "command")] | length) \([.[] | select(.type == "step")] | length)"')"
check_eq "--vm op2-002: its own steps and its pool's commands and migration-wide entries" "true 5 0" \
    "$(vpool history --vm op2-002 --json | jq -r '"\(all(.[]; .vm == "op2-002" or (.vm == null and .pool == "op2"))) \([.[] | select(.vm == "op2-002")] | length) \([.[] | select(.vm == "op2-001")] | length)"')"
check_eq "--since: what came after" "pool create|migrate start|migrate abort|pool start" \
    "$(vpool history --since "$t_mid" --json | jq -r '[.[] | select(.type == "command") | "\(.noun) \(.verb)"] | join("|")')"
check_eq "--since 1h: everything" "$(jq length "$WORK/h.json")" "$(vpool history --since 1h --json | jq length)"
check_eq "--since the future: nothing" "0" "$(vpool history --since 2999-01-01 --json | jq length)"
check_eq "--pool and --since together" "pool create|migrate start|migrate abort" \
    "$(vpool history --pool op3 --since "${t_mid%Z}" --json | jq -r '[.[] | select(.type == "command") | "\(.noun) \(.verb)"] | join("|")')"
expect_fail "--since that is no time" 1 "invalid time 'yesterday'" vpool history --since yesterday
expect_fail "--since a date that does not exist" 1 "invalid time '2026-02-30'" vpool history --since 2026-02-30
expect_fail "--vm that is no name" 1 "invalid vm name" vpool history --vm 'a b'
expect_fail "history takes no argument" 2 "expected: vpool history" vpool history op2

# Read-only verbs leave no trace; a repair does.
n0=$(history_max)
vpool pool list >/dev/null && vpool vm list >/dev/null && vpool migrate list >/dev/null &&
    vpool migrate status "$id1" >/dev/null && vpool fsck >/dev/null && vpool history >/dev/null &&
    vpool image verify guest >/dev/null && vpool pool show op1 >/dev/null &&
    vpool migrate op1 --to "$HOSTA" --profile pc-ide --dry-run >/dev/null
check_eq "read-only verbs and a dry run record nothing" "$n0" "$(history_max)"
vpool fsck --repair >/dev/null
check_eq "fsck --repair is recorded" "fsck repair ok" \
    "$(vpool history --json | jq -r 'last | "\(.noun) \(.verb) \(.outcome)"')"
SUDO_USER=alice vpool profile add via-sudo --machine pc --disk-bus ide --nic e1000 --vcpus 1 --memory 128 >/dev/null
check_eq "run through sudo: both users" "$me alice" "$(vpool history --json | jq -r 'last | "\(.user) \(.sudo_user)"')"
check "run through sudo: the text names both" grep -q "alice as $me .*vpool profile add via-sudo" <<<"$(vpool history)"

# A catalog from before the history table: opened as before, and it gets one.
old=$(catalog_copy old) || bail "cannot copy the catalog"
catalog_sql 'DROP INDEX history_at; DROP TABLE history' "$old" || bail "cannot drop the history table"
check "a catalog without a history table still opens" vpool --catalog "$old" pool list
vpool --catalog "$old" profile add late --machine pc --disk-bus ide --nic e1000 --vcpus 1 --memory 128 >/dev/null
check_eq "and records the next change" "profile|add|ok" "$(catalog_sql 'SELECT noun, verb, outcome FROM history' "$old")"

# --- 3. a pipe and --quiet: only the result ---------------------------------------
vpool migrate op1 --to "$HOSTA" --profile pc-ide 2>&1 | cat >"$WORK/out"
id=$(awk '/^migration [0-9]+$/ {print $2; exit}' "$WORK/out")
check_eq "in a pipe: the id and the result, nothing else" \
    "migration $id
migration $id done: pool op1, 3 VMs now on env $HOSTA with profile pc-ide" "$(cat "$WORK/out")"
check_eq "in a pipe: no carriage return or escape" "0" "$(grep -c $'[\r\e]' "$WORK/out")"
vpool --quiet migrate op1 --to "$HOSTB" --profile q35-virtio 2>&1 | cat >"$WORK/out"
check "--quiet in a pipe: the migration id alone" grep -Eqx 'migration [0-9]+' <<<"$(cat "$WORK/out")"
check_eq "--quiet in a pipe: one line" "1" "$(grep -c '' "$WORK/out")"

# --- 4. a real terminal: progress, --quiet, and --watch from another one ---------
# pane WINDOW: what the terminal shows now.
pane() { tm capture-pane -p -t "op:$1" 2>/dev/null; }
# wait_screen WINDOW REGEX SECONDS: until the terminal shows REGEX.
wait_screen() {
    local deadline=$((SECONDS + $3))
    until pane "$1" | grep -Eq "$2"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.2
    done
}
tm new-session -d -s op -n quiet -x 120 -y 30 \
    "'$VPOOL_BIN' --catalog '$VPOOL_CATALOG' --quiet migrate op1 --to $HOSTA --profile pc-ide; echo EXIT=\$?; sleep 900" ||
    bail "cannot start tmux"
check "--quiet on a terminal: ends" wait_screen quiet '^EXIT=' 120
check_eq "--quiet on a terminal: the id, then nothing but the exit" "0" \
    "$(pane quiet | grep -v '^$' | grep -Evc '^(migration [0-9]+|EXIT=0)$')"

vms4="op4-001 op4-002 op4-003 op4-004"
vpool pool create op4 --image desktop --env "$HOSTA" --profile pc-ide --size 4 --start >/dev/null || bail "create op4"
check "op4 guests up (they stay up until an ACPI shutdown)" wait_boot 240 1 $vms4
tm new-window -d -t op -n run \
    "'$VPOOL_BIN' --catalog '$VPOOL_CATALOG' migrate op4 --to $HOSTB --profile q35-virtio --parallel 1 --shutdown-timeout 60; echo EXIT=\$?; sleep 900"
check "the migration prints its id first" wait_screen run '^migration [0-9]+$' 60
id4=$(pane run | awk '/^migration [0-9]+$/ {print $2; exit}')
"$VPOOL_BIN" --json migrate status "$id4" --watch >"$WORK/watch.json" 2>"$WORK/watch.err" &
wpid=$!
tm new-window -d -t op -n watch \
    "'$VPOOL_BIN' --catalog '$VPOOL_CATALOG' migrate status $id4 --watch; echo WATCH-EXIT=\$?; sleep 900"
check_eq "history while it runs: running" "running" \
    "$(vpool history --json | jq -r "[.[] | select(.type == \"command\" and .migration == $id4)] | last | .outcome")"
progress="locked [0-9]  provisioned [0-9]  handed over [0-9]  done [1-3]/4  failed 0  [0-9]+s elapsed, ~[0-9]+s left"
check "progress on the terminal: VMs per step, failures, elapsed, estimate" wait_screen run "$progress" 120
check "--watch on another terminal: the same, live" \
    wait_screen watch "^migration $id4: locked [0-9]  provisioned [0-9]  handed over [0-9]  done [0-4]/4  failed 0  [0-9]+s elapsed" 60
diag "run:   $(pane run | grep elapsed)"
diag "watch: $(pane watch | grep elapsed)"
check "the migration ends" wait_screen run '^EXIT=' 240
check_eq "it exits 0 with its result" "migration $id4 done: pool op4, 4 VMs now on env $HOSTB with profile q35-virtio|EXIT=0" \
    "$(pane run | grep -E "^(migration $id4 done|EXIT=)" | paste -sd'|')"
check "--watch ends with the migration" wait_screen watch '^WATCH-EXIT=' 30
check_eq "--watch: the final status, exit 0" \
    "migration $id4: pool op4 from $HOSTA (pc-ide) to $HOSTB (q35-virtio): done, 4/4 VMs done|WATCH-EXIT=0" \
    "$(pane watch | grep -E "^(migration $id4: pool|WATCH-EXIT=)" | paste -sd'|')"
wait "$wpid"
check_eq "--json --watch exits 0" "0" "$?"
check "--json --watch: every line is one JSON object" every_line_json "$WORK/watch.json"
for vm in $vms4; do
    check_eq "--json --watch: $vm, every step in order" "$steps" \
        "$(jq -r "select(.vm == \"$vm\") | .step" "$WORK/watch.json" | xargs)"
done
check_eq "--json --watch: the event fields of migrate --json" "error generation migration step time vm" \
    "$(head -1 "$WORK/watch.json" | jq -r 'keys | join(" ")')"
check_eq "--json --watch: the last line is the outcome" "$id4 done 4" \
    "$(tail -1 "$WORK/watch.json" | jq -r '"\(.migration) \(.state) \(.total)"')"
check_eq "history once it ended: ok" "ok" \
    "$(vpool history --json | jq -r "[.[] | select(.type == \"command\" and .migration == $id4)] | last | .outcome")"
check "op4 guests booted on host B" wait_boot 240 2 $vms4

# A finished migration: its status at once.
SECONDS=0
vpool migrate status "$id4" --watch >"$WORK/out"
check_eq "--watch of a finished migration: exit 0" "0" "$?"
check "--watch of a finished migration: at once" test $SECONDS -le 3
check "--watch of a finished migration: its status" grep -q "^migration $id4: .*: done, 4/4 VMs done" "$WORK/out"
vpool migrate status "$id3" --watch >"$WORK/out"
check_eq "--watch of an aborted migration: exit 1" "1" "$?"
check "--watch of an aborted migration: its status" grep -q "^migration $id3: .*: aborted" "$WORK/out"

vpool pool stop op4 --timeout 60 --force >/dev/null
for p in op1 op2 op3 op4; do vpool pool rm "$p" --force >/dev/null; done
finish
