#!/bin/bash
# API tokens from the command line: a secret printed once (alone on stdout,
# or in the --json document), only its SHA-256 in the catalog, never shown
# by list; every bad input refused with one clear line and a non-zero exit,
# changing nothing but the history; the history telling through what each
# change came (--via). Needs no hypervisor: a catalog and a storage root.
. "$(dirname "$0")/lib.sh"

TEST_PREFIX=ttok
# No host: snapshots compare the catalog and the storage alone.
TEST_HOSTS=()
setup_workdir
vpool init --storage "$STORAGE" >/dev/null || bail "init failed"

secret_re='^vpt_[A-Za-z0-9_-]{43}$'

# The SHA-256 of a secret's 32 bytes (base64url after its prefix), as the catalog keeps it.
secret_sha256() {
    local b=${1#vpt_}
    b=$(tr '_-' '/+' <<<"$b")
    printf '%s=' "$b" | base64 -d | sha256sum | awk '{ print $1 }'
}

# Whether FILE... hold the text S anywhere (the catalog and its write-ahead log).
holds() {
    local s=$1 f
    shift
    for f in "$@"; do
        [ -e "$f" ] && grep -aqF -- "$s" "$f" && return 0
    done
    return 1
}

# ---- add: the secret once ---------------------------------------------------------

vpool token add ci --role viewer >"$WORK/out" 2>"$WORK/err"
check_eq "token add: exit 0" 0 $?
check_eq "token add: one line on stdout" 1 "$(grep -c '' "$WORK/out")"
ci=$(cat "$WORK/out")
if [[ $ci =~ $secret_re ]]; then ok "token add: the secret is vpt_ and 43 base64url characters"; else
    not_ok "token add: the secret is vpt_ and 43 base64url characters" "got: $ci"; fi
check_eq "token add: stderr says it is shown once" \
    "vpool: token ci added with role viewer; its secret above is shown only this once" "$(cat "$WORK/err")"

vpool --quiet token add quiet-1 --role operator >"$WORK/out" 2>"$WORK/err"
check_eq "token add --quiet: the secret alone, nothing on stderr" "1 0" \
    "$(grep -cE "$secret_re" "$WORK/out") $(wc -c <"$WORK/err")"
quiet=$(cat "$WORK/out")

out=$(vpool token add ops --role admin --json)
check_eq "token add --json: name, role, token, created" "created name role token" \
    "$(jq -r 'keys | join(" ")' <<<"$out")"
check_eq "token add --json: its name and role" "ops admin" "$(jq -r '"\(.name) \(.role)"' <<<"$out")"
ops=$(jq -r .token <<<"$out")
if [[ $ops =~ $secret_re ]]; then ok "token add --json: the token is a secret"; else
    not_ok "token add --json: the token is a secret" "got: $ops"; fi
if [[ $(jq -r .created <<<"$out") =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ ]]; then
    ok "token add --json: created is an ISO 8601 UTC time"; else not_ok "token add --json: created is an ISO 8601 UTC time" "$out"; fi
check "three tokens, three different secrets" test "$(printf '%s\n' "$ci" "$quiet" "$ops" | sort -u | wc -l)" = 3

# ---- only the hash is kept --------------------------------------------------------

check_eq "the catalog keeps the SHA-256 of each secret's bytes" \
    "ci $(secret_sha256 "$ci") ops $(secret_sha256 "$ops")" \
    "$(catalog_sql "SELECT name, hash FROM tokens WHERE name IN ('ci', 'ops') ORDER BY name" | tr '|\n' '  ' | sed 's/ $//')"
# The catalog's bytes: SQLite's file and its log, or a dump of the
# PostgreSQL database.
if catalog_is_pg; then
    pg_dump "$VPOOL_CATALOG" >"$WORK/catalog.dump" || bail "cannot dump the catalog"
    catalog_files=("$WORK/catalog.dump")
else
    catalog_files=("$VPOOL_CATALOG" "$VPOOL_CATALOG-wal")
fi
check "the catalog's bytes are there to search" test -s "${catalog_files[0]}"
leaks=()
for s in "$ci" "$quiet" "$ops"; do
    holds "${s#vpt_}" "${catalog_files[@]}" && leaks+=("$s")
done
check_eq "no secret is in the catalog file or its log" "" "${leaks[*]}"

# ---- list: never a secret, never a hash ----------------------------------------

vpool token list >"$WORK/list" 2>"$WORK/err"
check_eq "token list: exit 0, nothing on stderr" "0 0" "$? $(wc -c <"$WORK/err")"
check_eq "token list: the header" "NAME ROLE CREATED LAST_USED" "$(head -1 "$WORK/list" | xargs)"
check_eq "token list: each token with its role, none used yet" "ci viewer - quiet-1 operator - ops admin -" \
    "$(awk 'NR > 1 { print $1, $2, $4 }' "$WORK/list" | xargs)"
vpool token list --json >"$WORK/list.json"
check_eq "token list --json: name, role, created, last_used each" "created last_used name role" \
    "$(jq -r 'map(keys | join(" ")) | unique | join(";")' "$WORK/list.json")"
check_eq "token list --json: last_used null before any use" "null" \
    "$(jq -r 'map(.last_used) | unique | map(tostring) | join(" ")' "$WORK/list.json")"
shown=()
for f in "$WORK/list" "$WORK/list.json"; do
    for s in "$ci" "$quiet" "$ops"; do holds "${s#vpt_}" "$f" && shown+=("$f: $s"); done
    grep -qE '[0-9a-f]{64}' "$f" && shown+=("$f: a hash")
done
check_eq "token list shows no secret and no hash" "" "${shown[*]}"

# ---- bad input: refused, one line, nothing changed but the history ------------------

expect_fail "token add: a duplicate name" 1 "^vpool: token 'ci' already exists$" vpool token add ci --role admin
expect_fail "token add: a path as a name" 1 "^vpool: invalid token name '\.\./x'" vpool token add ../x --role viewer
expect_fail "token add: a name with a space" 1 "^vpool: invalid token name 'a b'" vpool token add 'a b' --role viewer
expect_fail "token add: a name with a newline" 1 "^vpool: invalid token name 'x.*y'" vpool token add $'x\ny' --role viewer
expect_fail "token add: a name starting with a dot" 1 "^vpool: invalid token name '\.x'" vpool token add .x --role viewer
expect_fail "token add: a name of 64 characters" 1 "^vpool: invalid token name" vpool token add "$(printf 'a%.0s' {1..64})" --role viewer
expect_fail "token add: an empty name" 1 "^vpool: invalid token name ''" vpool token add '' --role viewer
expect_fail "token add: an unknown role" 1 "^vpool: unknown role 'root' \(viewer, operator, admin\)$" \
    vpool token add x --role root
expect_fail "token add: a role in capitals" 1 "^vpool: unknown role 'Admin' \(viewer, operator, admin\)$" \
    vpool token add x --role Admin
expect_fail "token add: an empty role" 1 "^vpool: unknown role '' " vpool token add x --role ''
expect_fail "token add: no --role" 2 "^vpool: missing --role \(try 'vpool token add --help'\)$" vpool token add x
expect_fail "token add: --role without its value" 2 "needs a value" vpool token add x --role
expect_fail "token add: no name" 2 "^vpool: expected: vpool token add NAME" vpool token add --role viewer
expect_fail "token add: two names" 2 "^vpool: expected: vpool token add NAME" vpool token add x y --role viewer
expect_fail "token add: an unknown option" 2 "^vpool: unknown option '--secret'" vpool token add x --role viewer --secret s
expect_fail "token rm: an unknown token" 1 "^vpool: unknown token 'nope'$" vpool token rm nope
expect_fail "token rm: a path as a name" 1 "^vpool: invalid token name '\.\./ci'" vpool token rm ../ci
expect_fail "token rm: no name" 2 "^vpool: expected: vpool token rm NAME" vpool token rm
# A secret typed where a name goes is refused before the history records
# the command line, and not repeated in the message.
expect_fail "token rm: a secret instead of a name" 1 \
    "^vpool: invalid token name: a name may not start with 'vpt_', as secrets do$" vpool token rm "$ops"
expect_fail "token add: a secret as a name" 1 \
    "^vpool: invalid token name: a name may not start with 'vpt_', as secrets do$" vpool token add "$ops" --role admin
expect_fail "token list: an argument" 2 "^vpool: expected: vpool token list" vpool token list ci
expect_fail "token: an unknown verb" 2 "^vpool: unknown verb 'show' for 'token'" vpool token show ci
expect_fail "history: an unknown --via" 1 "^vpool: unknown via 'ssh' \(cli, api, policy\)$" vpool history --via ssh
expect_fail "history: --via in capitals" 1 "^vpool: unknown via 'API' \(cli, api, policy\)$" vpool history --via API

# ---- rm -------------------------------------------------------------------------------

out=$(vpool token rm quiet-1 2>&1)
check_eq "token rm: says so" "token quiet-1 removed" "$out"
check_eq "token rm: the others stay" "ci ops" "$(vpool token list --json | jq -r 'map(.name) | join(" ")')"
check_eq "token rm: its row is gone from the catalog" "0" \
    "$(catalog_sql "SELECT count(*) FROM tokens WHERE name = 'quiet-1'")"
out=$(vpool token add quiet-1 --role viewer)
if [[ $out =~ $secret_re && $out != "$quiet" ]]; then ok "a removed name can be taken again, with a new secret"; else
    not_ok "a removed name can be taken again, with a new secret" "got: $out"; fi

# ---- history: through what ------------------------------------------------------------

check_eq "history: every command so far came through the command line" "cli" \
    "$(vpool history --json | jq -r 'map(.via) | unique | join(" ")')"
check_eq "history: the VIA column" "VIA" "$(vpool history | head -1 | awk '{ print $3 }')"
check_eq "history: the token commands are recorded, the failed ones as failed" "ok ok ok failed" \
    "$(vpool history --json | jq -r '[.[] | select(.noun == "token" and .verb == "add")][0:3] + [.[] | select(.noun == "token" and .verb == "add" and (.outcome | startswith("failed")))][0:1] | map(.outcome | split(":")[0]) | join(" ")')"
leaks=()
for s in "$ci" "$quiet" "$ops"; do
    vpool history --json | grep -qF -- "${s#vpt_}" && leaks+=("$s")
done
check_eq "history: no secret in it" "" "${leaks[*]}"

# What the daemon writes: a change through the API under its token's name,
# one a policy decided; and a row from before schema 6, without via.
catalog_sql "INSERT INTO history(at, ended, \"user\", sudo_user, host, pid, pid_start, command, noun, verb,
    subject, pool, vm, migration_id, journal_from, journal_to, outcome, via) VALUES
    ('2026-11-27T10:00:00Z', '2026-11-27T10:00:01Z', 'ci-bot', '', 'h', 1, 1, 'POST /v1/pools/p/start', 'pool',
     'start', 'p', 'p', '', 0, 0, 0, 'ok', 'api'),
    ('2026-11-27T10:00:02Z', '2026-11-27T10:00:03Z', 'host-failure', '', 'h', 1, 1, 'evacuate host h2', 'env',
     'drain', 'e', '', '', 0, 0, 0, 'ok', 'policy'),
    ('2026-11-27T10:00:04Z', '2026-11-27T10:00:05Z', 'alice', '', 'h', 1, 1, 'vpool image add gold', 'image',
     'add', 'gold', '', '', 0, 0, 0, 'ok', NULL)" || bail "cannot write history rows"
check_eq "history --via api: the API's change, by its token's name" "ci-bot api POST /v1/pools/p/start" \
    "$(vpool history --via api --json | jq -r '.[] | "\(.user) \(.via) \(.command)"')"
check_eq "history --via policy: the policy's change" "host-failure policy" \
    "$(vpool history --via policy --json | jq -r '.[] | "\(.user) \(.via)"')"
check_eq "history: a row without via reads as cli" "cli" \
    "$(vpool history --json | jq -r '.[] | select(.user == "alice") | .via')"
check_eq "history --via cli: the command line's, the old row among them" "true true" \
    "$(vpool history --via cli --json | jq -r '"\(all(.via == "cli")) \(any(.user == "alice"))"')"
check_eq "history --via api, as text: USER VIA columns" "ci-bot api" \
    "$(vpool history --via api | awk 'NR == 2 { print $2, $3 }')"
n_all=$(vpool history --json | jq length)
n_parts=$(($(vpool history --via cli --json | jq length) + $(vpool history --via api --json | jq length) +
    $(vpool history --via policy --json | jq length)))
check_eq "history: --via cli, api and policy together are the whole history" "$n_all" "$n_parts"

# ---- completion -----------------------------------------------------------------------

# What bash offers for LINE with the completion script loaded.
complete_tokens() {
    PATH=$(dirname "$VPOOL_BIN"):$PATH LINE=$1 bash --norc --noprofile -c '
        . "$0" || exit 1
        COMP_LINE=$LINE COMP_POINT=${#LINE}
        _vpool vpool "" ""
        printf "%s\n" "${COMPREPLY[@]}"' "$top/completion/vpool.bash" | sort | xargs
}
check_eq "completion: token rm offers the tokens" "ci ops quiet-1" "$(complete_tokens "vpool token rm ")"
check_eq "completion: --role offers the roles" "admin operator viewer" "$(complete_tokens "vpool token add x --role ")"
check_eq "completion: history --via offers the ways" "api cli policy" "$(complete_tokens "vpool history --via ")"

finish
