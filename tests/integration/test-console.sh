#!/bin/bash
# The web console in a real browser: Debian's Chromium, headless, driven by
# puppeteer-core (tests/browser/console.mjs) against a real vpoold and real
# hosts. An operator signs in, sees the estate, moves a pool with the
# wizard and watches it reach done; the CLI then finds the VMs moved. A
# migration the CLI left interrupted is resumed from its page and followed
# to done, one it left partial is aborted from its page, and the CLI finds
# each VM where the page said. A viewer sees no action button, on those
# migrations either; a refused move shows the API's message; values shown
# are text, markup in an error too;
# axe-core finds no serious or critical violation on any view; screenshots
# of each view at 1366x768 and 390x844 go to build/console-shots/.
. "$(dirname "$0")/lib.sh"

TEST_PREFIX=w
VPOOLD_BIN=${VPOOLD_BIN:-$top/build/src/daemon/vpoold}
CHROMIUM=${VPOOL_CHROMIUM:-/usr/bin/chromium}
SHOTS=${VPOOL_CONSOLE_SHOTS:-$top/build/console-shots}
require_hosts "$HOSTA" "$HOSTB"
for c in node curl python3; do command -v "$c" >/dev/null || bail "$c is missing (scripts/deps.sh installs it)"; done
[ -x "$CHROMIUM" ] || bail "$CHROMIUM is missing (scripts/deps.sh installs chromium)"
[ -d "$top/tests/browser/node_modules/puppeteer-core" ] && [ -d "$top/tests/browser/node_modules/axe-core" ] ||
    bail "tests/browser/node_modules is missing (scripts/deps.sh runs npm ci there)"
setup_workdir
standard_setup
vpool profile add q35-virtio --machine q35 --disk-bus virtio --nic virtio --vcpus 1 --memory 256M >/dev/null ||
    bail "profile add failed"
for p in w1 w3; do
    vpool pool create "$p" --image guest --env "$HOSTA" --size 2 --profile pc-ide >/dev/null || bail "pool create $p failed"
done
add_desktop_image
vpool pool create w2 --image desktop --env "$HOSTA" --size 2 --profile pc-ide --start >/dev/null ||
    bail "pool create w2 failed"
wait_boot 300 1 w2-001 w2-002 || bail "the desktops of w2 did not boot"

# Two migrations the command line left unfinished, for the page to resume
# and to abort. w2's, of running desktops: vpool killed after its first
# VM's lock, as a crash leaves it (interrupted: running, and no process
# works on it), the second VM still running on $HOSTA.
VPOOL_FAULT=migrate.locked:1 vpool migrate w2 --to "$HOSTB" --profile q35-virtio --parallel 1 --shutdown-timeout 60 \
    >/dev/null 2>&1
check_eq "a CLI migration of w2 killed after its first lock" 137 "$?"
resume_id=$(vpool --json migrate list | jq -r '.[] | select(.pool == "w2") | .id')
check_eq "it is left interrupted, no VM moved, w2-002 still running" "interrupted 0/2 running" \
    "$(vpool --json migrate status "$resume_id" | jq -r '"\(.state) \(.done)/\(.total)"') $(vm_state w2-002)"
# w3's: its second VM's overlay held by a process whose command line names
# a guest in markup, so the VM is not handed over and the run ends partial
# with an error that carries it. The holder stays until the page has tried
# a resume (refused for it), then the page ends it and aborts.
lock_disk "$(overlay_of w3-002)" -name 'guest=<img src=x onerror="window.__xss=1">,debug-threads=on'
vpool migrate w3 --to "$HOSTB" --profile q35-virtio --parallel 1 --shutdown-timeout 2 >/dev/null 2>&1
check_eq "a CLI migration of w3 whose second VM's disk is held exits 1" 1 "$?"
abort_id=$(vpool --json migrate list | jq -r '.[] | select(.pool == "w3") | .id')
check_eq "it ends partial, one VM moved, the other's error naming the holder" "partial 1/2 true" \
    "$(vpool --json migrate status "$abort_id" |
        jq -r '"\(.state) \(.done)/\(.total) \(.vms[1].error | test("guest <img src=x"))"')"

op=$(vpool --json token add console-op --role operator | jq -r .token)
viewer=$(vpool --json token add console-viewer --role viewer | jq -r .token)
[ -n "$op" ] && [ -n "$viewer" ] || bail "token add failed"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
"$VPOOLD_BIN" --foreground --listen "http://127.0.0.1:$port" --console "$top/console" 2>"$WORK/vpoold.log" &
daemon_pid=$!
trap 'kill "$daemon_pid" "$LOCKER" 2>/dev/null; wait "$daemon_pid" 2>/dev/null; cleanup_workdir' EXIT
for i in $(seq 100); do curl -sf "$base/" >/dev/null && break; sleep 0.1; done
curl -sf "$base/" >/dev/null || bail "vpoold did not start: $(cat "$WORK/vpoold.log")"

# --- the console's files and their headers, as a browser gets them ------------------------
hdr=$(curl -s -D - -o "$WORK/index.html" "$base/")
check "/ is the console's page" grep -q '<script type="module" src="app.js">' "$WORK/index.html"
for want in "Content-Security-Policy: .*script-src 'self'" "Content-Security-Policy: .*frame-ancestors 'none'" \
            "X-Content-Type-Options: nosniff" "Referrer-Policy: no-referrer" "Content-Type: text/html"; do
    if grep -qi "^$want" <<<"$hdr"; then ok "/ sends $want"; else not_ok "/ sends $want" "$hdr"; fi
done
check "the page has no inline script" sh -c "! grep -Eq '<script>|<script [^>]*>[^<]' '$WORK/index.html'"
check_eq "app.js is JavaScript" "text/javascript; charset=utf-8" \
    "$(curl -s -o /dev/null -w '%{content_type}' "$base/app.js")"
etag=$(curl -s -D - -o /dev/null "$base/app.js" | tr -d '\r' | awk -F': ' 'tolower($1) == "etag" { print $2 }')
check_eq "a file the browser has is a 304 (ETag)" 304 \
    "$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$base/app.js")"
for p in /../etc/passwd /%2e%2e/etc/passwd /.hidden /index.html/x /nosuch.js /app.exe "/a%00.js"; do
    out=$(curl -s --path-as-is -w '\n%{http_code}' "$base$p")
    check_eq "$p is a 404 naming no file" "404 no such file of the console" \
        "$(tail -n1 <<<"$out") $(sed '$d' <<<"$out" | jq -r .detail 2>/dev/null)"
done
check_eq "a console file cannot be written (405)" 405 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/app.js")"
check_eq "/v1 stays the API's (401 without a token)" 401 "$(curl -s -o /dev/null -w '%{http_code}' "$base/v1/pools")"

# --- the browser ----------------------------------------------------------------------------
rm -rf "$SHOTS"
mkdir -p "$SHOTS"
VPOOL_BASE=$base VPOOL_OP_TOKEN=$op VPOOL_VIEWER_TOKEN=$viewer VPOOL_POOL=w1 VPOOL_FROM=$HOSTA VPOOL_TO=$HOSTB VPOOL_PROFILE=q35-virtio \
    VPOOL_RESUME_ID=$resume_id VPOOL_ABORT_ID=$abort_id VPOOL_LOCKER=$LOCKER VPOOL_CHROMIUM=$CHROMIUM VPOOL_SHOTS=$SHOTS \
    node "$top/tests/browser/console.mjs" >"$WORK/browser.out" 2>"$WORK/browser.err"
rc=$?
# Its lines: "ok DESC" or "not ok DESC" then "# detail" lines.
while IFS= read -r line; do
    case $line in
        "ok "*) ok "${line#ok }" ;;
        "not ok "*) desc=${line#not ok }; not_ok "$desc" ;;
        "#"*) echo "$line" ;;
    esac
done <"$WORK/browser.out"
check_eq "the browser script ran to its end" 0 "$rc"
kill "$LOCKER" 2>/dev/null
wait "$LOCKER" 2>/dev/null
[ "$rc" = 0 ] || diag "$(tail -20 "$WORK/browser.err")"

# --- what the CLI sees after the wizard's move -----------------------------------------------
check_eq "vpool vm list: both VMs of w1 are on $HOSTB now" "$HOSTB $HOSTB" \
    "$(vpool --json vm list --pool w1 | jq -r '[.[].env] | join(" ")')"
check_eq "the pool is on $HOSTB, active" "$HOSTB active" "$(vpool --json pool show w1 | jq -r '"\(.env) \(.state)"')"
check_eq "the history names the operator's token as who moved it" "console-op" \
    "$(vpool --json history --pool w1 | jq -r '[.[] | select(.type == "command" and .noun == "migration")][0].user')"

# --- what the CLI sees after the page's resume and abort -------------------------------------
check_eq "vpool migrate list: the resumed one done, the aborted one aborted" "done aborted" \
    "$(vpool --json migrate list | jq -r --argjson r "$resume_id" --argjson a "$abort_id" \
        '"\(.[] | select(.id == $r) | .state) \(.[] | select(.id == $a) | .state)"')"
check_eq "vpool migrate status: the resumed one moved both VMs" "done 2/2" \
    "$(vpool --json migrate status "$resume_id" | jq -r '"\(.state) \(.done)/\(.total)"')"
check_eq "vpool vm list: both VMs of w2 run on $HOSTB, their own owners" \
    "$HOSTB running vm:w2-001 $HOSTB running vm:w2-002" \
    "$(vpool --json vm list --pool w2 | jq -r '[.[] | .env, .state, .owner] | join(" ")')"
check "both desktops of w2 booted again there, from their own disks" wait_boot 300 2 w2-001 w2-002
check_eq "the pool w2 is on $HOSTB, active" "$HOSTB active" "$(vpool --json pool show w2 | jq -r '"\(.env) \(.state)"')"
check_eq "vpool migrate status: the aborted one gave w3-002 back, w3-001 had landed" "aborted done returned" \
    "$(vpool --json migrate status "$abort_id" | jq -r '[.state, (.vms[] | .step)] | join(" ")')"
check_eq "vpool vm list: w3-001 stays on $HOSTB, w3-002 is back on $HOSTA, their own owners" \
    "$HOSTB vm:w3-001 $HOSTA vm:w3-002" "$(vpool --json vm list --pool w3 | jq -r '[.[] | .env, .owner] | join(" ")')"
check_eq "the pool w3 stays recorded on $HOSTA, active" "$HOSTA active" \
    "$(vpool --json pool show w3 | jq -r '"\(.env) \(.state)"')"
check_eq "each domain is defined once, where the CLI says" "w1-001 w1-002 w2-001 w2-002 w3-001|w3-002" \
    "$(virsh_on "$HOSTB" list --all --name | sort | xargs)|$(virsh_on "$HOSTA" list --all --name | sort | xargs)"
check_eq "the history names the operator's token for the resume and the abort" "resume console-op api ok abort console-op api ok" \
    "$(vpool --json history | jq -r --argjson r "$resume_id" --argjson a "$abort_id" '[.[] | select(.type == "command" and
        ((.verb == "resume" and .migration == $r) or (.verb == "abort" and .migration == $a))) |
        "\(.verb) \(.user) \(.via) \(.outcome)"] | join(" ")')"
check_eq "fsck is clean" "" "$(fsck_kinds)"
shots=$(find "$SHOTS" -name '*.png' | wc -l)
check "screenshots of each view at both sizes ($shots)" test "$shots" -ge 26
finish
