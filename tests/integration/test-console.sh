#!/bin/bash
# The web console in a real browser: Debian's Chromium, headless, driven by
# puppeteer-core (tests/browser/console.mjs) against a real vpoold and real
# hosts. An operator signs in, sees the estate, moves a pool with the
# wizard and watches it reach done; the CLI then finds the VMs moved. A
# viewer sees no action button; a refused move shows the API's message;
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
vpool pool create w1 --image guest --env "$HOSTA" --size 2 --profile pc-ide >/dev/null || bail "pool create failed"

op=$(vpool --json token add console-op --role operator | jq -r .token)
viewer=$(vpool --json token add console-viewer --role viewer | jq -r .token)
[ -n "$op" ] && [ -n "$viewer" ] || bail "token add failed"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
"$VPOOLD_BIN" --foreground --listen "http://127.0.0.1:$port" --console "$top/console" 2>"$WORK/vpoold.log" &
daemon_pid=$!
trap 'kill "$daemon_pid" 2>/dev/null; wait "$daemon_pid" 2>/dev/null; cleanup_workdir' EXIT
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
    VPOOL_CHROMIUM=$CHROMIUM VPOOL_SHOTS=$SHOTS \
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
[ "$rc" = 0 ] || diag "$(tail -20 "$WORK/browser.err")"

# --- what the CLI sees after the wizard's move -----------------------------------------------
check_eq "vpool vm list: both VMs of w1 are on $HOSTB now" "$HOSTB $HOSTB" \
    "$(vpool --json vm list --pool w1 | jq -r '[.[].env] | join(" ")')"
check_eq "the pool is on $HOSTB, active" "$HOSTB active" "$(vpool --json pool show w1 | jq -r '"\(.env) \(.state)"')"
check_eq "the history names the operator's token as who moved it" "console-op" \
    "$(vpool --json history --pool w1 | jq -r '[.[] | select(.type == "command" and .noun == "migration")][0].user')"
shots=$(find "$SHOTS" -name '*.png' | wc -l)
check "screenshots of each view at both sizes ($shots)" test "$shots" -ge 12
finish
