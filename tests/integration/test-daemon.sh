#!/bin/bash
# vpoold over its unix socket and over HTTPS, driven with curl and jq as a
# client would: every route served and described by the OpenAPI document,
# each role allowed and refused, every error status with its problem
# document, bad bodies and names, a pool created, started and migrated
# through the API with its events streamed (and resumed with
# Last-Event-ID), the history naming who asked, systemd's notifications.
. "$(dirname "$0")/lib.sh"

TEST_PREFIX=d
VPOOLD_BIN=${VPOOLD_BIN:-$top/build/src/daemon/vpoold}
require_hosts "$HOSTA" "$HOSTB"
for c in curl certtool python3; do command -v "$c" >/dev/null || bail "$c is missing (scripts/deps.sh installs it)"; done
setup_workdir
standard_setup
add_desktop_image
vpool profile add q35-virtio --machine q35 --disk-bus virtio --nic virtio --vcpus 1 --memory 256M >/dev/null ||
    bail "profile add failed"

# --- a certificate for 127.0.0.1, signed by a CA of the test's own --------------------
pki=$WORK/pki
mkdir -p "$pki"
certtool --generate-privkey --outfile "$pki/ca.key" >/dev/null 2>&1
printf 'cn = "vpoold test CA"\nca\ncert_signing_key\nexpiration_days = 2\n' >"$pki/ca.info"
certtool --generate-self-signed --load-privkey "$pki/ca.key" --template "$pki/ca.info" --outfile "$pki/ca.pem" \
    >/dev/null 2>&1 || bail "CA"
certtool --generate-privkey --outfile "$pki/key.pem" >/dev/null 2>&1
printf 'cn = "127.0.0.1"\nip_address = "127.0.0.1"\ntls_www_server\nencryption_key\nsigning_key\nexpiration_days = 2\n' \
    >"$pki/srv.info"
certtool --generate-certificate --load-privkey "$pki/key.pem" --load-ca-certificate "$pki/ca.pem" \
    --load-ca-privkey "$pki/ca.key" --template "$pki/srv.info" --outfile "$pki/cert.pem" >/dev/null 2>&1 ||
    bail "server certificate"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
sock=$WORK/vpoold.sock
base=https://127.0.0.1:$port

trap 'stop_daemon; cleanup_workdir' EXIT

start_daemon "$WORK/vpoold.log" --listen "unix:$sock,$base" --tls-cert "$pki/cert.pem" --tls-key "$pki/key.pem" ||
    bail "vpoold did not start: $(cat "$WORK/vpoold.log")"
ok "vpoold answers on its unix socket and on HTTPS"

# req METHOD PATH [BODY] [CURL ARGS...] over the unix socket, as root:
# prints the body, then the status on a last line of its own.
ureq() {
    local m=$1 p=$2 body=${3:-}
    shift 3 2>/dev/null || shift $#
    curl -s --unix-socket "$sock" -X "$m" ${body:+-H 'Content-Type: application/json' --data-binary "$body"} \
        -w '\n%{http_code}' "$@" "http://vpoold$p"
}
# treq TOKEN METHOD PATH [BODY] [CURL ARGS...] over HTTPS.
treq() {
    local t=$1 m=$2 p=$3 body=${4:-}
    shift 4 2>/dev/null || shift $#
    curl -s --cacert "$pki/ca.pem" -X "$m" ${t:+-H "Authorization: Bearer $t"} \
        ${body:+-H 'Content-Type: application/json' --data-binary "$body"} -w '\n%{http_code}' "$@" "$base$p"
}
status_of() { tail -n1 <<<"$1"; }
body_of() { sed '$d' <<<"$1"; }

# api_fail DESC STATUS REGEX REQ-COMMAND...: the status, a problem document
# whose detail matches, and nothing changed.
api_fail() {
    local desc=$1 want=$2 regex=$3 before after out st body problems=()
    shift 3
    before=$(snapshot)
    out=$("$@")
    after=$(snapshot)
    st=$(status_of "$out")
    body=$(body_of "$out")
    [ "$st" = "$want" ] || problems+=("status $st, expected $want")
    jq -e --argjson s "$want" '.status == $s' <<<"$body" >/dev/null 2>&1 || problems+=("status field: $body")
    printf '%s\n' "$body" >"$WORK/problem.json"
    while IFS= read -r p; do problems+=("$p"); done < <(validate api_problem "$WORK/problem.json")
    [[ $(jq -r .detail <<<"$body" 2>/dev/null) =~ $regex ]] || problems+=("detail does not match /$regex/: $body")
    [ "$before" = "$after" ] || problems+=("state changed:" "$(diff <(echo "$before") <(echo "$after") | head -20)")
    if [ ${#problems[@]} -eq 0 ]; then ok "$desc"; else not_ok "$desc" "${problems[@]}"; fi
}

# --- the answers' shapes, from docs/json.md and docs/api.md ------------------------------
. "$(dirname "$0")/jsonspec.sh"
spec=$(json_spec "$top/docs/json.md" "$top/docs/api.md") || bail "cannot read the JSON references"
: >"$WORK/seen"
declare -A checked
# api_check ROUTE OUT: OUT (a body and its status) is what docs/api.md says
# ROUTE answers; prints the problems found (it runs in a subshell: the
# caller notes the route as checked).
api_check() {
    local route=$1 out=$2 answers item i=0
    answers=$(jq -r --arg r "$route" '.routes[$r] // empty' <<<"$spec")
    [ -n "$answers" ] || { echo "$route is not in docs/api.md"; return; }
    body_of "$out" >"$WORK/api.json"
    case $answers in
        "page of "*)
            validate page "$WORK/api.json"
            item=${answers#page of }
            while IFS= read -r line; do
                printf '%s\n' "$line" >"$WORK/item.json"
                validate "$item" "$WORK/item.json" | sed "s/^/items[$i]: /"
                i=$((i + 1))
            done < <(jq -c '.items[]' "$WORK/api.json" 2>/dev/null) ;;
        *) validate "$answers" "$WORK/api.json" ;;
    esac
}
# answer DESC ROUTE STATUS OUT: OUT has STATUS and the document ROUTE answers.
answer() {
    local desc=$1 route=$2 want=$3 out=$4 problems
    checked[$route]=1
    problems=$(api_check "$route" "$out")
    [ "$(status_of "$out")" = "$want" ] || problems="status $(status_of "$out"), expected $want: $(body_of "$out" | head -c 300)
$problems"
    if [ -z "$problems" ]; then ok "$desc"; else not_ok "$desc" "$problems"; fi
}

# wait_job ID: the job's final state.
wait_job() {
    local s i
    for i in $(seq 600); do
        s=$(ureq GET "/v1/jobs/$1" | sed '$d' | jq -r .state)
        case $s in
            done) echo "$s"; return 0 ;;
            failed) echo "$s: $(ureq GET "/v1/jobs/$1" | sed '$d' | jq -r .error)"; return 0 ;;
        esac
        sleep 0.5
    done
    echo "$s"
}

# --- the routes and the OpenAPI document -------------------------------------------------
out=$(ureq GET /v1/openapi.json)
check_eq "GET /v1/openapi.json" 200 "$(status_of "$out")"
body_of "$out" >"$WORK/openapi.json"
check "the OpenAPI document is OpenAPI 3" jq -e '.openapi | startswith("3.")' "$WORK/openapi.json"
"$VPOOLD_BIN" --routes | awk '{print tolower($1), $2}' | sort >"$WORK/routes"
jq -r '.paths | to_entries[] | .key as $p | .value | keys[] | "\(.) \($p)"' "$WORK/openapi.json" | sort \
    >"$WORK/documented"
check_eq "the OpenAPI document describes exactly the routes served" "$(cat "$WORK/routes")" \
    "$(cat "$WORK/documented")"
check_eq "each route's role is the document's x-vpool-role" \
    "$("$VPOOLD_BIN" --routes | awk '{print tolower($1), $2, $3}' | sort)" \
    "$(jq -r '.paths | to_entries[] | .key as $p | .value | to_entries[] | "\(.key) \($p) \(.value["x-vpool-role"])"' \
        "$WORK/openapi.json" | sort)"
# Every GET without a parameter answers 200 as root; every route is there.
while read -r m p; do
    [ "$m" = get ] || continue
    case $p in *'{'*) continue ;; esac
    answer "GET $p as root on the socket" "GET $p" 200 "$(ureq GET "$p")"
done <"$WORK/routes"
unserved=0
while read -r m p; do
    path=$(sed -e 's/{id}/1/g' -e 's/{[a-z]*}/nosuch/g' <<<"$p")
    st=$(status_of "$(ureq "${m^^}" "$path" '{}')")
    # A route that is not served answers 404 "no such resource", which no
    # served route gives for a name it does not know.
    if [ "$st" = 404 ] && ureq "${m^^}" "$path" '{}' | grep -q 'no such resource'; then unserved=$((unserved + 1)); fi
done <"$WORK/documented"
check_eq "every documented route is served" 0 "$unserved"

# --- reads and their shapes ------------------------------------------------------------
out=$(ureq GET /v1)
check_eq "the index names root as admin on the socket" "root admin" "$(body_of "$out" | jq -r '"\(.you) \(.role)"')"
check_eq "envs are a page of both envs" "2 2 $HOSTA,$HOSTB" \
    "$(ureq GET /v1/envs | sed '$d' | jq -r '"\(.total) \(.items | length) \([.items[].name] | join(","))"')"
check_eq "a filter selects" "1 $HOSTB" "$(ureq GET "/v1/envs?name=$HOSTB" | sed '$d' | jq -r '"\(.total) \(.items[0].name)"')"
check_eq "a page: limit 1 offset 1" "2 1 $HOSTB" \
    "$(ureq GET '/v1/envs?limit=1&offset=1' | sed '$d' | jq -r '"\(.total) \(.items | length) \(.items[0].name)"')"
check_eq "GET /v1/envs/{env} is env show --json" "$(vpool env show "$HOSTA" --json | jq -c 'del(.hosts)')" \
    "$(ureq GET "/v1/envs/$HOSTA" | sed '$d' | jq -c 'del(.hosts)')"
answer "GET /v1/envs/{env}" "GET /v1/envs/{env}" 200 "$(ureq GET "/v1/envs/$HOSTA")"
answer "GET /v1/envs/{env}/hosts" "GET /v1/envs/{env}/hosts" 200 "$(ureq GET "/v1/envs/$HOSTA/hosts")"
check_eq "GET /v1/profiles/{profile} is profile show --json" "$(vpool profile show pc-ide --json | jq -c .)" \
    "$(ureq GET /v1/profiles/pc-ide | sed '$d' | jq -c .)"
answer "GET /v1/profiles/{profile}" "GET /v1/profiles/{profile}" 200 "$(ureq GET /v1/profiles/pc-ide)"
answer "GET /v1/images/{image}" "GET /v1/images/{image}" 200 "$(ureq GET /v1/images/guest)"

# --- bad requests: each a problem, nothing changed ---------------------------------------
api_fail "unknown resource: 404" 404 "no such resource" ureq GET /v1/nothing
api_fail "unknown pool: 404" 404 "unknown pool 'nosuch'" ureq GET /v1/pools/nosuch
api_fail "wrong method: 405" 405 "not allowed" ureq PUT /v1/pools
api_fail "a path with traversal: 400" 400 "may not hold '.' or '..' segments" ureq GET '/v1/pools/..%2F..%2Fetc'
api_fail "a name with a blank: 400" 400 "invalid pool name" ureq GET '/v1/pools/a%20b'
api_fail "a name with a control character: 400" 400 "invalid vm name" ureq GET '/v1/vms/a%01b'
api_fail "an unknown query parameter: 400" 400 "unknown query parameter 'colour'" ureq GET '/v1/pools?colour=red'
api_fail "a limit out of range: 400" 400 "limit" ureq GET '/v1/pools?limit=0'
api_fail "a body that is not JSON: 400" 400 "not one JSON document" ureq POST /v1/pools '{"name": '
api_fail "a body that is not an object: 400" 400 "must be a JSON object" ureq POST /v1/pools '[1, 2]'
api_fail "an unknown field: 400" 400 "unknown field 'colour'" ureq POST /v1/pools '{"colour": "red"}'
api_fail "a missing field: 400" 400 "missing field 'image'" ureq POST /v1/pools '{"name": "dx"}'
api_fail "a field of the wrong type: 400" 400 "'size' must be an integer" \
    ureq POST /v1/pools '{"name": "dx", "image": "guest", "env": "'"$HOSTA"'", "profile": "pc-ide", "size": "two"}'
api_fail "a migration's accept_nic_rename that is not a boolean: 400" 400 \
    "the field 'accept_nic_rename' must be true or false" \
    ureq POST /v1/pools/nope/migrations '{"to": "'"$HOSTB"'", "accept_nic_rename": "yes"}'
api_fail "a pool name with traversal in the body: 400" 400 "invalid pool name" \
    ureq POST /v1/pools '{"name": "../dx", "image": "guest", "env": "'"$HOSTA"'", "profile": "pc-ide", "size": 1}'
api_fail "an unknown image: 404, nothing made" 404 "unknown image 'nope'" \
    ureq POST /v1/pools '{"name": "dx", "image": "nope", "env": "'"$HOSTA"'", "profile": "pc-ide", "size": 1}'
api_fail "a body of another type: 415" 415 "application/json" \
    ureq POST /v1/pools '' -H 'Content-Type: text/plain' --data-binary '{"name": "dx"}'
head -c 100000 /dev/zero | tr '\0' ' ' >"$WORK/big"
api_fail "a body over 64 KiB: 413" 413 "larger than" \
    ureq POST /v1/pools '' -H 'Content-Type: application/json' --data-binary "@$WORK/big"
check_eq "a migration of an unknown id: 404" 404 "$(status_of "$(ureq POST /v1/migrations/999/resume '')")"
st=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$sock" -H "X-Big: $(head -c 40000 /dev/zero | tr '\0' a)" \
    http://vpoold/v1)
check "headers over the bound are refused (431 or 413)" bash -c '[ "$1" = 431 ] || [ "$1" = 413 ]' - "$st"

# --- tokens and roles over HTTPS ---------------------------------------------------------
viewer=$(vpool token add dview --role viewer --json | jq -r .token)
operator=$(vpool token add dop --role operator --json | jq -r .token)
admin=$(vpool token add dadmin --role admin --json | jq -r .token)
api_fail "HTTPS without a token: 401" 401 "no bearer token" treq "" GET /v1/pools
api_fail "HTTPS with a token never issued: 401" 401 "." treq "vpt_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')" GET /v1/pools
api_fail "HTTPS with a malformed token: 401" 401 "." treq "not-a-token" GET /v1/pools
check_eq "a viewer reads" 200 "$(status_of "$(treq "$viewer" GET /v1/pools)")"
check_eq "the index names the token and its role" "dview viewer" \
    "$(treq "$viewer" GET /v1 | sed '$d' | jq -r '"\(.you) \(.role)"')"
api_fail "a viewer may not start a pool: 403" 403 "needs the role operator" treq "$viewer" POST /v1/pools/dp1/start ''
api_fail "an operator may not create a pool: 403" 403 "needs the role admin" \
    treq "$operator" POST /v1/pools '{"name": "dp1", "image": "guest", "env": "'"$HOSTA"'", "profile": "pc-ide", "size": 2}'
check "TLS with an untrusted CA is refused by the client" \
    bash -c '! curl -s --cacert /etc/ssl/certs/ca-certificates.crt "$1/v1" >/dev/null' - "$base"

# --- a pool created, started, migrated through the API, its events streamed ------------
last=$(ureq GET '/v1/events?limit=1' | sed '$d' | jq -r .last_id)
(curl -sN --cacert "$pki/ca.pem" -H "Authorization: Bearer $viewer" -H 'Accept: text/event-stream' \
    "$base/v1/events?since=$last" >"$WORK/sse1" &
 echo $! >"$WORK/sse1.pid")
out=$(treq "$admin" POST /v1/pools '{"name": "dp1", "image": "desktop", "env": "'"$HOSTA"'", "profile": "pc-ide", "size": 2}' \
    -D "$WORK/h1")
answer "POST /v1/pools: 202 Accepted with its job" "POST /v1/pools" 202 "$out"
job=$(body_of "$out" | jq -r .id)
check "with a Location to poll" grep -qi "^location: /v1/jobs/$job" "$WORK/h1"
check_eq "the pool create job ends done" done "$(wait_job "$job")"
answer "GET /v1/jobs/{id}" "GET /v1/jobs/{id}" 200 "$(treq "$viewer" GET "/v1/jobs/$job")"
answer "GET /v1/pools/{pool}" "GET /v1/pools/{pool}" 200 "$(treq "$viewer" GET /v1/pools/dp1)"
answer "GET /v1/vms/{vm}" "GET /v1/vms/{vm}" 200 "$(treq "$viewer" GET /v1/vms/dp1-001)"
answer "GET /v1/vms?pool=dp1" "GET /v1/vms" 200 "$(treq "$viewer" GET '/v1/vms?pool=dp1')"
check_eq "the filter keeps the pool's 2 VMs" 2 "$(treq "$viewer" GET '/v1/vms?pool=dp1' | sed '$d' | jq .total)"
check_eq "the CLI sees the pool with 2 VMs" "active 2" "$(vpool pool show dp1 --json | jq -r '"\(.state) \(.vms | length)"')"
answer "an operator starts it: 202" "POST /v1/pools/{pool}/start" 202 "$(treq "$operator" POST /v1/pools/dp1/start '')"
check "both guests boot" wait_boot 300 1 dp1-001 dp1-002
answer "GET /v1/estate with a running pool" "GET /v1/estate" 200 "$(treq "$viewer" GET /v1/estate)"
check_eq "the estate counts the pool's VMs by state" '[{"state":"running","count":2}]' \
    "$(treq "$viewer" GET /v1/estate | sed '$d' | jq -c '.pools[] | select(.name == "dp1") | .vm_states')"
out=$(treq "$operator" POST /v1/pools/dp1/migrations '{"to": "'"$HOSTB"'", "profile": "q35-virtio", "dry_run": true}')
answer "a dry run answers its plan at once: 200" "POST /v1/pools/{pool}/migrations" 200 "$out"
check_eq "the plan names the pool, its 2 VMs and the target" "dp1 2 $HOSTB" \
    "$(body_of "$out" | jq -r '"\(.pool) \(.vms | length) \(.to_env)"')"
check_eq "the dry run changed nothing" "$HOSTA $HOSTA" "$(vpool vm list --pool dp1 --json | jq -r '[.[].env] | join(" ")')"
out=$(treq "$operator" POST /v1/pools/dp1/migrations '{"to": "'"$HOSTB"'", "profile": "q35-virtio"}' -D "$WORK/h2")
answer "POST /v1/pools/dp1/migrations: 202" "POST /v1/pools/{pool}/migrations" 202 "$out"
mig=$(body_of "$out" | jq -r .migration)
check "the Location is the migration" grep -qi "^location: /v1/migrations/$mig" "$WORK/h2"
# (The first one goes on meanwhile: the catalog changes, but not by this.)
out=$(treq "$operator" POST /v1/pools/dp1/migrations '{"to": "'"$HOSTB"'", "profile": "q35-virtio"}')
check_eq "a second migration of the busy pool: 409, naming the pool" "409 pool 'dp1'" \
    "$(status_of "$out") $(body_of "$out" | jq -r .detail | grep -o "pool 'dp1'" | head -1)"
for i in $(seq 600); do
    s=$(treq "$viewer" GET "/v1/migrations/$mig" | sed '$d' | jq -r .state)
    [ "$s" = running ] || break
    sleep 0.5
done
check_eq "the migration ends done" done "$s"
answer "GET /v1/migrations/{id}" "GET /v1/migrations/{id}" 200 "$(treq "$viewer" GET "/v1/migrations/$mig")"
check_eq "both VMs are on $HOSTB now" "$HOSTB $HOSTB" "$(vpool vm list --pool dp1 --json | jq -r '[.[].env] | join(" ")')"
check "both guests boot again on $HOSTB" wait_boot 300 2 dp1-001 dp1-002
sleep 0.5
kill "$(cat "$WORK/sse1.pid")" 2>/dev/null
grep '^data: ' "$WORK/sse1" | sed 's/^data: //' >"$WORK/ev1"
check_eq "the stream carried every VM's done step" "dp1-001 dp1-002" \
    "$(jq -r --argjson m "$mig" 'select(.kind == "step" and .migration == $m and .state == "done" and .vm != null) | .vm' \
        "$WORK/ev1" | sort | xargs)"
check "each record's id is its event's id" bash -c \
    'diff <(grep "^id: " "$1" | sed "s/^id: //") <(jq -r .id "$2")' - "$WORK/sse1" "$WORK/ev1"
check_eq "the list has the same events as the stream" "$(jq -c . "$WORK/ev1")" \
    "$(ureq GET "/v1/events?since=$last" | sed '$d' | jq -c '.items[] | select(.id <= '"$(jq -s 'last.id' "$WORK/ev1")"')')"
answer "GET /v1/events" "GET /v1/events" 200 "$(ureq GET "/v1/events?since=$last")"
# A client that reconnects with Last-Event-ID misses nothing and gets nothing twice.
mid=$(jq -s '.[length / 2 | floor].id' "$WORK/ev1")
timeout 2 curl -sN --cacert "$pki/ca.pem" -H "Authorization: Bearer $viewer" -H 'Accept: text/event-stream' \
    -H "Last-Event-ID: $mid" "$base/v1/events" | grep '^id: ' | sed 's/^id: //' >"$WORK/resumed"
check_eq "Last-Event-ID resumes right after it" "$(jq -r "select(.id > $mid) | .id" "$WORK/ev1" | head -n "$(wc -l <"$WORK/resumed")" | xargs)" \
    "$(head -n "$(jq -r "select(.id > $mid) | .id" "$WORK/ev1" | wc -l)" "$WORK/resumed" | xargs)"

# --- the history names who asked -------------------------------------------------------
hist=$(vpool history --pool dp1 --json)
check_eq "the history has the API's create as by the admin token" "dadmin" \
    "$(jq -r '[.[] | select(.type == "command" and .noun == "pool" and .verb == "create")][0].user' <<<"$hist")"
check_eq "and the migration as by the operator token" "dop" \
    "$(jq -r '[.[] | select(.type == "command" and (.command | startswith("POST /v1/pools/dp1/migrations")))][-1].user' <<<"$hist")"
check_eq "the jobs list shows both, with their actors" "dadmin dop dop" \
    "$(ureq GET '/v1/jobs?pool=dp1' | sed '$d' | jq -r '[.items[] | select(.state == "done") | .actor] | sort | join(" ")')"

# --- VMs, pools, migrations and hosts acted on -------------------------------------------
out=$(treq "$operator" POST /v1/vms/dp1-001/stop '{"timeout": 60}')
answer "POST /v1/vms/{vm}/stop: 202" "POST /v1/vms/{vm}/stop" 202 "$out"
check_eq "its job ends done" done "$(wait_job "$(body_of "$out" | jq -r .id)")"
check_eq "dp1-001 is shut off" "shut off" "$(vm_state dp1-001)"
out=$(treq "$operator" POST /v1/vms/dp1-001/start '')
answer "POST /v1/vms/{vm}/start: 202" "POST /v1/vms/{vm}/start" 202 "$out"
check_eq "its job ends done" done "$(wait_job "$(body_of "$out" | jq -r .id)")"
check_eq "dp1-001 runs again" running "$(vm_state dp1-001)"
check "and boots (its third boot)" wait_boot 300 3 dp1-001
out=$(treq "$operator" POST /v1/pools/dp1/stop '{"timeout": 120}')
answer "POST /v1/pools/{pool}/stop: 202" "POST /v1/pools/{pool}/stop" 202 "$out"
check_eq "its job ends done" done "$(wait_job "$(body_of "$out" | jq -r .id)")"
check_eq "both VMs are shut off" "shut off|shut off" "$(vm_state dp1-001)|$(vm_state dp1-002)"
# Interrupted migrations (the CLI killed after a lock) resumed and aborted through the API.
for act in resume abort; do
    # The resume lands the pool on host A, the abort leaves it there.
    if [ "$act" = resume ]; then to=$HOSTA prof=pc-ide; else to=$HOSTB prof=q35-virtio; fi
    VPOOL_FAULT=migrate.locked:1 vpool migrate dp1 --to "$to" --profile "$prof" --parallel 1 >"$WORK/out" 2>&1
    check_eq "a CLI migration killed after its first lock ($act)" 137 "$?"
    id=$(vpool migrate list --json | jq -r 'last.id')
    out=$(treq "$operator" POST "/v1/migrations/$id/$act" '')
    answer "POST /v1/migrations/{id}/$act: 202" "POST /v1/migrations/{id}/$act" 202 "$out"
    check_eq "its job ends done" done "$(wait_job "$(body_of "$out" | jq -r .id)")"
done
check_eq "after the resume and the abort both VMs are on $HOSTA" "$HOSTA $HOSTA" \
    "$(vpool vm list --pool dp1 --json | jq -r '[.[].env] | join(" ")')"
check_eq "fsck is clean" "" "$(fsck_kinds)"
# A host holding nothing drained, then back in service.
out=$(treq "$operator" POST "/v1/envs/$HOSTB/hosts/$HOSTB/drain" '{"cold": true}')
answer "POST /v1/envs/{env}/hosts/{host}/drain: 202" "POST /v1/envs/{env}/hosts/{host}/drain" 202 "$out"
check_eq "its job ends done" done "$(wait_job "$(body_of "$out" | jq -r .id)")"
check_eq "the host is in maintenance" true "$(vpool env host list "$HOSTB" --json | jq '.[0].maintenance')"
out=$(treq "$operator" POST "/v1/envs/$HOSTB/hosts/$HOSTB/resume" '')
answer "POST /v1/envs/{env}/hosts/{host}/resume: 202" "POST /v1/envs/{env}/hosts/{host}/resume" 202 "$out"
check_eq "its job ends done" done "$(wait_job "$(body_of "$out" | jq -r .id)")"
check_eq "the host is in service" false "$(vpool env host list "$HOSTB" --json | jq '.[0].maintenance')"
answer "GET /v1/jobs?state=done" "GET /v1/jobs" 200 "$(treq "$viewer" GET '/v1/jobs?state=done')"

# --- a daemon killed in the middle of a migration finishes it when it starts again --------
stop_daemon
VPOOL_FAULT=migrate.provisioned:1 start_daemon "$WORK/vpoold-k.log" --listen "unix:$sock,$base" \
    --tls-cert "$pki/cert.pem" --tls-key "$pki/key.pem" || bail "vpoold did not start with a fault"
treq "$operator" POST /v1/pools/dp1/migrations '{"to": "'"$HOSTB"'", "profile": "q35-virtio", "parallel": 1}' \
    >"$WORK/killed.out" 2>&1
wait "$daemon_pid"
check_eq "vpoold died at the first VM's provisioned step" 137 "$?"
daemon_pid=
id=$(vpool migrate list --json | jq -r 'last.id')
check_eq "the migration is left interrupted" interrupted "$(vpool migrate status "$id" --json | jq -r .state)"
start_daemon "$WORK/vpoold-r.log" --listen "unix:$sock,$base" --tls-cert "$pki/cert.pem" --tls-key "$pki/key.pem" ||
    bail "vpoold did not start again"
for i in $(seq 600); do
    s=$(vpool migrate status "$id" --json | jq -r .state)
    [ "$s" = done ] && break
    sleep 0.5
done
check_eq "started again, vpoold finished it from the journal" done "$s"
check_eq "both VMs are on $HOSTB" "$HOSTB $HOSTB" "$(vpool vm list --pool dp1 --json | jq -r '[.[].env] | join(" ")')"
check_eq "the history says vpoold resumed it, as a policy" "vpoold policy ok" \
    "$(vpool history --json | jq -r --argjson m "$id" '[.[] | select(.type == "command" and .migration == $m and
        .verb == "resume")] | last | "\(.user) \(.via) \(.outcome)"')"
check_eq "fsck is clean after it" "" "$(fsck_kinds)"

# --- removal, rate limit, stop ------------------------------------------------------------
out=$(treq "$admin" DELETE /v1/pools/dp1 '{"force": true}')
answer "DELETE /v1/pools/{pool} by the admin: 202" "DELETE /v1/pools/{pool}" 202 "$out"
check_eq "its job ends done" done "$(wait_job "$(body_of "$out" | jq -r .id)")"
check_eq "the pool is gone" "" "$(vpool pool list --json | jq -r '.[].name' | grep '^dp1$')"
stop_daemon
check "SIGTERM stops vpoold and removes its socket" test ! -e "$sock"

# A daemon with a small rate limit: the requests past it are 429.
start_daemon "$WORK/vpoold2.log" --listen "unix:$sock" --rate-limit 2 || bail "vpoold did not start again"
codes=$(for i in $(seq 12); do curl -s -o /dev/null -w '%{http_code}\n' --unix-socket "$sock" http://vpoold/v1/pools; done |
    sort | uniq -c | awk '{print $2 ":" $1}' | xargs)
check "a client over its rate limit gets 429" grep -q '429:' <<<"$codes"
diag "12 quick requests at 2/s: $codes"
stop_daemon

# --- settings refused at start -------------------------------------------------------------
for bad in "http://10.9.8.7:80" "unix:relative.sock" "https://127.0.0.1:99999" "ftp://127.0.0.1:21"; do
    out=$("$VPOOLD_BIN" --foreground --listen "$bad" 2>&1)
    check_eq "vpoold --listen $bad exits 1" 1 "$?"
    check "and says why" grep -q "listener '$bad'" <<<"$out"
done
out=$("$VPOOLD_BIN" --foreground --listen "https://127.0.0.1:$port" 2>&1)
check_eq "https without certificate and key exits 1" "1|vpoold: an https:// listener needs tls_cert and tls_key" "$?|$out"

# --- systemd: READY=1 once listening, STOPPING=1 on SIGTERM --------------------------------
python3 - "$WORK/notify.sock" >"$WORK/notify.out" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(20)
for _ in range(3):
    try:
        print(s.recv(4096).decode().replace("\n", ";"), flush=True)
    except socket.timeout:
        break
PY
notify_pid=$!
for i in $(seq 50); do [ -S "$WORK/notify.sock" ] && break; sleep 0.1; done
NOTIFY_SOCKET=$WORK/notify.sock "$VPOOLD_BIN" --listen "unix:$sock" 2>"$WORK/vpoold3.log" &
daemon_pid=$!
for i in $(seq 50); do grep -q READY=1 "$WORK/notify.out" && break; sleep 0.1; done
check "under systemd vpoold says READY=1 once it listens" curl -sf --unix-socket "$sock" http://vpoold/v1 -o /dev/null
stop_daemon
wait "$notify_pid"
check "READY=1 came" grep -q 'READY=1' "$WORK/notify.out"
check "STOPPING=1 came on SIGTERM" grep -q 'STOPPING=1' "$WORK/notify.out"

# --- docs/api.md and the daemon agree -------------------------------------------------------
check_eq "docs/api.md names exactly the routes served" "$("$VPOOLD_BIN" --routes | awk '{print $1, $2}' | sort)" \
    "$(jq -r '.routes | keys[]' <<<"$spec" | sort)"
unchecked=$(jq -r '.routes | keys[]' <<<"$spec" | while IFS= read -r r; do [ -n "${checked[$r]:-}" ] || echo "$r"; done | xargs)
check_eq "every route of docs/api.md was checked here" "" "$unchecked"
unseen=$(comm -23 <(json_spec "$top/docs/api.md" | jq -r '.shapes | keys[]' | sort) \
    <(sed 's/^shape //' "$WORK/seen" | sort -u) | xargs)
check_eq "every document of docs/api.md was seen in some answer" "" "$unseen"

finish
