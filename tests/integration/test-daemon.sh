#!/bin/bash
# vpoold over its unix socket and over HTTPS, driven with curl and jq as a
# client would: every route served and described by the OpenAPI document,
# each role allowed and refused, every error status with its problem
# document, bad bodies and names, a pool created, started and migrated
# through the API with its events streamed (and resumed with
# Last-Event-ID), envs, hosts, images and profiles added, changed and removed
# by the admin, the history naming who asked, systemd's notifications.
. "$(dirname "$0")/lib.sh"

TEST_PREFIX=d
VPOOLD_BIN=${VPOOLD_BIN:-$top/build/src/daemon/vpoold}
# Host C is free: envs and hosts are added and removed on it through the API.
TEST_HOSTS=("$HOSTA" "$HOSTB" "$HOSTC")
require_hosts "$HOSTA" "$HOSTB" "$HOSTC"
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

# --- the admin's routes: envs, their hosts and settings, images, profiles ---------------
# bad_field DESC FIELD REGEX REQ-COMMAND...: a 400 whose problem names FIELD; nothing changed.
bad_field() {
    local desc=$1 field=$2
    shift 2
    api_fail "$desc: 400" 400 "$@"
    check_eq "$desc: the problem names '$field'" "$field" "$(jq -r .field "$WORK/problem.json" 2>/dev/null)"
}
# admin_done DESC ROUTE OUT: a 202 with the route's job, which ends done.
admin_done() {
    answer "$1: 202" "$2" 202 "$3"
    check_eq "$1: its job ends done" done "$(wait_job "$(body_of "$3" | jq -r .id)")"
}
uric=$(uri_of "$HOSTC")
# Each route is the admin's (the maintenance an operator's): refused to the
# roles below, before its body is read.
while IFS='|' read -r rmethod rpath rbody; do
    for who in viewer operator; do
        api_fail "$rmethod $rpath by a $who: 403" 403 "needs the role admin" treq "${!who}" "$rmethod" "$rpath" "$rbody"
    done
done <<ROUTES
POST|/v1/envs|{"name": "dx", "uri": "$uric", "domain_type": "qemu"}
PATCH|/v1/envs/$HOSTA|{"grace": 30}
DELETE|/v1/envs/$HOSTB|
POST|/v1/envs/$HOSTA/retire|{"to": "$HOSTB"}
DELETE|/v1/envs/$HOSTA/retire|
POST|/v1/envs/$HOSTA/hosts|{"uri": "$uric", "name": "dx"}
DELETE|/v1/envs/$HOSTA/hosts/$HOSTA|
POST|/v1/images|{"name": "dx", "file": "$GUEST_DIR/master.qcow2", "no_inspect": true}
DELETE|/v1/images/guest|
POST|/v1/profiles|{"name": "dx", "machine": "pc", "disk_bus": "ide", "nic": "e1000", "vcpus": 1, "memory_mib": 256}
DELETE|/v1/profiles/pc-ide|
ROUTES
api_fail "a viewer may not put a host in maintenance: 403" 403 "needs the role operator" \
    treq "$viewer" POST "/v1/envs/$HOSTA/hosts/$HOSTA/maintenance" ''

# Profiles.
prof='{"name": "dprof", "machine": "q35", "disk_bus": "virtio", "nic": "virtio", "vcpus": 2, "memory_mib": 512, "firmware": "uefi"}'
admin_done "POST /v1/profiles by the admin" "POST /v1/profiles" "$(treq "$admin" POST /v1/profiles "$prof")"
check_eq "the CLI shows the profile as asked" "q35 virtio virtio 2 512 uefi" \
    "$(vpool profile show dprof --json | jq -r '"\(.machine) \(.disk_bus) \(.nic) \(.vcpus) \(.memory_mib) \(.firmware)"')"
check_eq "GET /v1/profiles/{profile} is profile show --json" "$(vpool profile show dprof --json | jq -c .)" \
    "$(ureq GET /v1/profiles/dprof | sed '$d' | jq -c .)"
check "vpool profile list shows it" grep -q '^dprof ' <<<"$(vpool profile list)"
api_fail "the same profile again: 409" 409 "profile 'dprof' already exists" treq "$admin" POST /v1/profiles "$prof"
bad_field "a profile without its NIC" nic "missing field 'nic'" treq "$admin" POST /v1/profiles \
    '{"name": "dp2", "machine": "pc", "disk_bus": "ide", "vcpus": 1, "memory_mib": 256}'
bad_field "vcpus as a string" vcpus "must be an integer from 1 to 255" treq "$admin" POST /v1/profiles \
    '{"name": "dp2", "machine": "pc", "disk_bus": "ide", "nic": "e1000", "vcpus": "1", "memory_mib": 256}'
bad_field "memory below 16 MiB" memory_mib "from 16 to" treq "$admin" POST /v1/profiles \
    '{"name": "dp2", "machine": "pc", "disk_bus": "ide", "nic": "e1000", "vcpus": 1, "memory_mib": 8}'
bad_field "q35 with an IDE disk, in the CLI's words" disk_bus "machine type 'q35' has no IDE controller" \
    treq "$admin" POST /v1/profiles '{"name": "dp2", "machine": "q35", "disk_bus": "ide", "nic": "e1000", "vcpus": 1, "memory_mib": 256}'
bad_field "an unknown CPU mode" cpu_mode "unknown CPU mode 'fast'" treq "$admin" POST /v1/profiles \
    '{"name": "dp2", "machine": "pc", "disk_bus": "ide", "nic": "e1000", "vcpus": 1, "memory_mib": 256, "cpu_mode": "fast"}'
bad_field "a profile name with a traversal" name "invalid profile name" treq "$admin" POST /v1/profiles \
    '{"name": "../etc", "machine": "pc", "disk_bus": "ide", "nic": "e1000", "vcpus": 1, "memory_mib": 256}'
bad_field "a profile name with a control character" name "invalid profile name" treq "$admin" POST /v1/profiles \
    '{"name": "p\u0007x", "machine": "pc", "disk_bus": "ide", "nic": "e1000", "vcpus": 1, "memory_mib": 256}'
bad_field "an unknown field of a profile" memory "unknown field 'memory'" treq "$admin" POST /v1/profiles \
    '{"name": "dp2", "machine": "pc", "disk_bus": "ide", "nic": "e1000", "vcpus": 1, "memory": "256M"}'
api_fail "DELETE of an unknown profile: 404" 404 "unknown profile 'nosuch'" treq "$admin" DELETE /v1/profiles/nosuch ''
bad_field "a profile path with a control character" profile "invalid profile name" \
    treq "$admin" DELETE /v1/profiles/a%01b ''
admin_done "DELETE /v1/profiles/{profile} by the admin" "DELETE /v1/profiles/{profile}" \
    "$(treq "$admin" DELETE /v1/profiles/dprof '')"
check_eq "the profile is gone for the CLI" "" "$(vpool profile list --json | jq -r '.[].name | select(. == "dprof")')"

# Envs: one on host C, its settings, its retirement, its removal.
admin_done "POST /v1/envs by the admin" "POST /v1/envs" \
    "$(treq "$admin" POST /v1/envs '{"name": "denv", "uri": "'"$uric"'", "domain_type": "qemu"}')"
check_eq "the CLI shows the env with its host" "denv 1 qemu" \
    "$(vpool env show denv --json | jq -r '"\(.name) \(.hosts | length) \(.domain_types)"' | cut -d, -f1)"
check "vpool env list shows it" grep -q '^denv ' <<<"$(vpool env list)"
answer "GET /v1/envs/{env} of the env added" "GET /v1/envs/{env}" 200 "$(ureq GET /v1/envs/denv)"
api_fail "the same env again: 409" 409 "env 'denv' already exists" \
    treq "$admin" POST /v1/envs '{"name": "denv", "uri": "'"$uric"'", "domain_type": "qemu"}'
bad_field "an env without a name" name "missing field 'name'" treq "$admin" POST /v1/envs '{"uri": "'"$uric"'"}'
bad_field "an env without a host" uri "missing field 'uri' or 'hosts'" treq "$admin" POST /v1/envs '{"name": "dx"}'
bad_field "an env with uri and hosts" hosts "not both" \
    treq "$admin" POST /v1/envs '{"name": "dx", "uri": "'"$uric"'", "hosts": ["'"$uric"'"]}'
bad_field "hosts not an array" hosts "must be an array" treq "$admin" POST /v1/envs '{"name": "dx", "hosts": "'"$uric"'"}'
bad_field "an unknown domain type" domain_type "unknown domain type 'xen'" \
    treq "$admin" POST /v1/envs '{"name": "dx", "uri": "'"$uric"'", "domain_type": "xen"}'
bad_field "a fence agent that is not an absolute path" fence_cmd "must be an absolute path" \
    treq "$admin" POST /v1/envs '{"name": "dx", "uri": "'"$uric"'", "fence_cmd": "fence_ipmilan -a x"}'
bad_field "an env name with a traversal" name "invalid env name" \
    treq "$admin" POST /v1/envs '{"name": "../../etc", "uri": "'"$uric"'"}'
bad_field "a URI with a control character" uri "control character" \
    treq "$admin" POST /v1/envs '{"name": "dx", "uri": "qemu:///system\nx"}'
out=$(treq "$admin" PATCH /v1/envs/denv \
    '{"on_maintenance": "report", "on_host_failure": "evacuate:'"$HOSTA"'", "grace": 45, "fence_cmd": "/bin/true --host x"}')
admin_done "PATCH /v1/envs/{env} by the admin" "PATCH /v1/envs/{env}" "$out"
check_eq "the CLI shows the settings" "report evacuate $HOSTA 45 true" \
    "$(vpool env show denv --json | jq -r '"\(.on_maintenance) \(.on_host_failure) \(.evacuate_to) \(.grace) \(.fence_cmd != null)"')"
admin_done "PATCH with a null fence agent" "PATCH /v1/envs/{env}" "$(treq "$admin" PATCH /v1/envs/denv '{"fence_cmd": null}')"
check_eq "takes the agent away, the rest unchanged" "null report" \
    "$(vpool env show denv --json | jq -r '"\(.fence_cmd) \(.on_maintenance)"')"
bad_field "a PATCH of an unknown policy word, in the CLI's words" on_maintenance "invalid --on-maintenance 'always'" \
    treq "$admin" PATCH /v1/envs/denv '{"on_maintenance": "always"}'
bad_field "a grace of 0" grace "from 1 to 86400" treq "$admin" PATCH /v1/envs/denv '{"grace": 0}'
bad_field "on_host_failure of a bad word" on_host_failure "unknown host-failure policy 'migrate'" \
    treq "$admin" PATCH /v1/envs/denv '{"on_host_failure": "migrate"}'
api_fail "a PATCH setting nothing: 400" 400 "nothing to set" treq "$admin" PATCH /v1/envs/denv '{}'
api_fail "evacuate:ENV naming the env itself: 400" 400 "names env 'denv' itself" \
    treq "$admin" PATCH /v1/envs/denv '{"on_host_failure": "evacuate:denv"}'
api_fail "a PATCH of an unknown env: 404" 404 "unknown env 'nosuch'" treq "$admin" PATCH /v1/envs/nosuch '{"grace": 30}'
# Refusals first: once retiring, the policy may find the env empty and mark
# its retirement complete at any moment.
bad_field "a retirement without a target" to "missing field 'to'" treq "$admin" POST /v1/envs/denv/retire '{}'
bad_field "a window past midnight's 24:00" window "invalid window" \
    treq "$admin" POST /v1/envs/denv/retire '{"to": "'"$HOSTA"'", "window": "25:00-06:00"}'
bad_field "a wave of 0" wave "from 1 to 256" treq "$admin" POST /v1/envs/denv/retire '{"to": "'"$HOSTA"'", "wave": 0}'
api_fail "retiring an env to itself: 400" 400 "cannot retire env 'denv' to itself" \
    treq "$admin" POST /v1/envs/denv/retire '{"to": "denv"}'
out=$(treq "$admin" POST /v1/envs/denv/retire '{"to": "'"$HOSTA"'", "window": "22:00-06:00", "wave": 2, "report": true}')
admin_done "POST /v1/envs/{env}/retire by the admin" "POST /v1/envs/{env}/retire" "$out"
check_eq "the CLI shows the retirement" "$HOSTA 22:00-06:00 2 true" \
    "$(vpool env show denv --json | jq -r '.retirement | "\(.to) \(.window) \(.wave) \(.report)"')"
admin_done "DELETE /v1/envs/{env}/retire by the admin" "DELETE /v1/envs/{env}/retire" \
    "$(treq "$admin" DELETE /v1/envs/denv/retire '')"
check_eq "the retirement is cancelled" null "$(vpool env show denv --json | jq -c .retirement)"
api_fail "cancelling it again: 404" 404 "env 'denv' is not retiring" treq "$admin" DELETE /v1/envs/denv/retire ''
api_fail "the env's last host may not go: 409" 409 "last host of env 'denv'" \
    treq "$admin" DELETE /v1/envs/denv/hosts/denv ''
admin_done "DELETE /v1/envs/{env} by the admin" "DELETE /v1/envs/{env}" "$(treq "$admin" DELETE /v1/envs/denv '')"
check_eq "the env is gone for the CLI" "" "$(vpool env list --json | jq -r '.[].name | select(. == "denv")')"
api_fail "DELETE of an unknown env: 404" 404 "unknown env 'nosuch'" treq "$admin" DELETE /v1/envs/nosuch ''
api_fail "an env path with a traversal: 400" 400 "." treq "$admin" DELETE /v1/envs/..%2F..%2Fetc ''

# Host C added to env A, put in maintenance by an operator, removed.
out=$(treq "$admin" POST "/v1/envs/$HOSTA/hosts" '{"uri": "'"$uric"'", "name": "dhc"}')
admin_done "POST /v1/envs/{env}/hosts by the admin" "POST /v1/envs/{env}/hosts" "$out"
check_eq "the CLI lists the host in env A" "dhc false" \
    "$(vpool env host list "$HOSTA" --json | jq -r '.[] | select(.name == "dhc") | "\(.name) \(.maintenance)"')"
api_fail "the same host again: 409" 409 "dhc" treq "$admin" POST "/v1/envs/$HOSTA/hosts" '{"uri": "'"$uric"'", "name": "dhc"}'
bad_field "a host name with a traversal" name "invalid host name" \
    treq "$admin" POST "/v1/envs/$HOSTA/hosts" '{"uri": "'"$uric"'", "name": "../dhc"}'
bad_field "a URI naming no host and no name" uri "names no host" \
    treq "$admin" POST "/v1/envs/$HOSTA/hosts" '{"uri": "qemu:///system"}'
bad_field "a host without a URI" uri "missing field 'uri'" treq "$admin" POST "/v1/envs/$HOSTA/hosts" '{"name": "dx"}'
api_fail "a host of an unknown env: 404" 404 "unknown env 'nosuch'" \
    treq "$admin" POST /v1/envs/nosuch/hosts '{"uri": "'"$uric"'", "name": "dx"}'
out=$(treq "$operator" POST "/v1/envs/$HOSTA/hosts/dhc/maintenance" '')
admin_done "POST /v1/envs/{env}/hosts/{host}/maintenance by an operator" \
    "POST /v1/envs/{env}/hosts/{host}/maintenance" "$out"
check_eq "the host is in maintenance" true \
    "$(vpool env host list "$HOSTA" --json | jq -r '.[] | select(.name == "dhc") | .maintenance')"
api_fail "maintenance of an unknown host: 404" 404 "no host 'nosuch'" \
    treq "$operator" POST "/v1/envs/$HOSTA/hosts/nosuch/maintenance" ''
bad_field "a force that is not a boolean" force "true or false" \
    treq "$admin" DELETE "/v1/envs/$HOSTA/hosts/dhc" '{"force": "yes"}'
admin_done "DELETE /v1/envs/{env}/hosts/{host} by the admin" "DELETE /v1/envs/{env}/hosts/{host}" \
    "$(treq "$admin" DELETE "/v1/envs/$HOSTA/hosts/dhc" '')"
check_eq "env A has its one host again" "$HOSTA" "$(vpool env host list "$HOSTA" --json | jq -r '[.[].name] | join(" ")')"
api_fail "removing it again: 404" 404 "no host 'dhc'" treq "$admin" DELETE "/v1/envs/$HOSTA/hosts/dhc" ''

# Images: one on its declaration alone, one inspected (answered once the
# inspection began), both removed.
out=$(treq "$admin" POST /v1/images '{"name": "dimg", "file": "'"$GUEST_DIR/master.qcow2"'", "no_inspect": true}')
admin_done "POST /v1/images by the admin" "POST /v1/images" "$out"
check_eq "the CLI shows the image with the guest's digest and the defaults" \
    "$(vpool image show guest --json | jq -r .sha256) bios" "$(vpool image show dimg --json | jq -r '"\(.sha256) \(.firmwares)"')"
check_eq "GET /v1/images/{image} is image show --json" "$(vpool image show dimg --json | jq -c .)" \
    "$(ureq GET /v1/images/dimg | sed '$d' | jq -c .)"
check "vpool image list shows it" grep -q '^dimg ' <<<"$(vpool image list)"
api_fail "the same image again: 409" 409 "image 'dimg' already exists" \
    treq "$admin" POST /v1/images '{"name": "dimg", "file": "'"$GUEST_DIR/master.qcow2"'", "no_inspect": true}'
bad_field "an image without a file" file "missing field 'file'" treq "$admin" POST /v1/images '{"name": "dx"}'
bad_field "a relative file" file "absolute path" treq "$admin" POST /v1/images '{"name": "dx", "file": "master.qcow2"}'
bad_field "a file with a control character" file "control character" \
    treq "$admin" POST /v1/images '{"name": "dx", "file": "/tmp/a\u001b[2Jb"}'
bad_field "an unknown disk bus, in the CLI's words" disk_buses "unknown disk bus 'floppy'" \
    treq "$admin" POST /v1/images '{"name": "dx", "file": "'"$GUEST_DIR/master.qcow2"'", "disk_buses": "ide,floppy"}'
bad_field "an initrd without a kernel" initrd "need --kernel" \
    treq "$admin" POST /v1/images '{"name": "dx", "file": "'"$GUEST_DIR/master.qcow2"'", "initrd": "'"$GUEST_DIR/initrd.img"'"}'
bad_field "no_inspect as a string" no_inspect "true or false" \
    treq "$admin" POST /v1/images '{"name": "dx", "file": "'"$GUEST_DIR/master.qcow2"'", "no_inspect": "yes"}'
bad_field "an image name with a traversal" name "invalid image name" \
    treq "$admin" POST /v1/images '{"name": "../../images/x", "file": "'"$GUEST_DIR/master.qcow2"'"}'
api_fail "a file that does not exist: 404" 404 "cannot open" \
    treq "$admin" POST /v1/images '{"name": "dx", "file": "/nonexistent/master.qcow2", "no_inspect": true}'
out=$(treq "$admin" POST /v1/images '{"name": "dimg2", "file": "'"$GUEST_DIR/master.qcow2"'", "disk_buses": "virtio",
    "nic_models": "virtio", "firmwares": "bios"}' -D "$WORK/h-img")
answer "an inspected image add: 202 while it inspects" "POST /v1/images" 202 "$out"
job=$(body_of "$out" | jq -r .id)
check_eq "answered while the job runs" running "$(body_of "$out" | jq -r .state)"
check "with a Location to the job" grep -qi "^location: /v1/jobs/$job" "$WORK/h-img"
check_eq "the inspection's job ends done" done "$(wait_job "$job")"
check_eq "the image has its inspection and its declaration" "true virtio" \
    "$(vpool image show dimg2 --json | jq -r '"\(.inspection != null) \(.disk_buses)"')"
api_fail "DELETE of an unknown image: 404" 404 "unknown image 'nosuch'" treq "$admin" DELETE /v1/images/nosuch ''
for im in dimg dimg2; do
    admin_done "DELETE /v1/images/{image} ($im) by the admin" "DELETE /v1/images/{image}" \
        "$(treq "$admin" DELETE "/v1/images/$im" '')"
done
check_eq "both images are gone for the CLI" "" "$(vpool image list --json | jq -r '.[].name | select(startswith("dimg"))')"

# The history names the token behind each change, through the API.
hist=$(vpool history --via api --json)
check_eq "the admin's changes are the admin token's" "dadmin" \
    "$(jq -r '[.[] | select(.type == "command" and .outcome == "ok" and (.noun == "env" or .noun == "image" or
        .noun == "profile" or (.noun == "host" and .verb != "maintenance"))) | .user] | unique | join(" ")' <<<"$hist")"
check_eq "the maintenance the operator token's" "dop" \
    "$(jq -r '[.[] | select(.type == "command" and .noun == "host" and .verb == "maintenance" and .outcome == "ok") |
        .user] | unique | join(" ")' <<<"$hist")"
check_eq "each add recorded ok, with what it added" \
    "$(printf '%s\n' "$HOSTA/dhc" denv dimg dimg2 dprof | LC_ALL=C sort | xargs)" \
    "$(jq -r '.[] | select(.type == "command" and .verb == "add" and .outcome == "ok") | .subject' <<<"$hist" |
        LC_ALL=C sort | xargs)"
check_eq "a refused change recorded as failed, in the library's words" "failed: profile 'dprof' already exists" \
    "$(jq -r '[.[] | select(.type == "command" and .noun == "profile" and .verb == "add" and .user == "dadmin" and
        .outcome != "ok")][0].outcome' <<<"$hist")"

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

# What a pool uses is refused to the admin, as the CLI refuses it.
api_fail "DELETE of the env a pool is on: 409" 409 "env '$HOSTB' is used by pool 'dp1'" \
    treq "$admin" DELETE "/v1/envs/$HOSTB" ''
api_fail "DELETE of the image a pool uses: 409" 409 "image 'desktop' is used by pool 'dp1'" \
    treq "$admin" DELETE /v1/images/desktop ''
api_fail "DELETE of the profile a pool uses: 409" 409 "profile 'q35-virtio' is used by pool 'dp1'" \
    treq "$admin" DELETE /v1/profiles/q35-virtio ''
api_fail "removing the host the pool's VMs are on: 409" 409 "host '$HOSTB' is the last host of env '$HOSTB'" \
    treq "$admin" DELETE "/v1/envs/$HOSTB/hosts/$HOSTB" ''

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
