# The console section of bench/run.sh (sourced): how long the web console
# takes to show the estate of a thousand VMs. A catalog of its own with a
# pool of 1000 defined VMs (as bench/cluster.sh makes them) on the pair's
# first host, a viewer token, vpoold on loopback HTTP serving the console,
# then bench/console.mjs in Debian's Chromium: from the page's request to
# the estate's pool table rendered with its 1000 VMs counted, RUNS times
# after one to warm up. Sets $webdir (its figures in $webdir/console.json).
console_section() {
    webdir=$work/console
    mkdir -p "$webdir"
    local cat=$webdir/catalog.db port pid i token
    # shellcheck source=bench/api.sh
    . "$top/bench/api.sh"
    section_catalog "$cat" "$webdir/storage"
    log "console: a pool of 1000 defined VMs"
    VPOOL_CATALOG=$cat $vpool pool create estate --image guest --env a --profile pc-ide --size 1000 --quiet
    token=$(VPOOL_CATALOG=$cat $vpool token add bench --role viewer --json | jq -r .token)
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$top/build/src/daemon/vpoold" --foreground --catalog "$cat" --console "$top/console" \
        --listen "http://127.0.0.1:$port" 2>"$webdir/vpoold.log" &
    pid=$!
    for i in $(seq 100); do curl -sf "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
    log "console: request to rendered estate table, $runs runs"
    VPOOL_BASE=http://127.0.0.1:$port VPOOL_TOKEN=$token VPOOL_RUNS=$runs VPOOL_VMS=1000 \
        node "$top/bench/console.mjs" >"$webdir/console.json"
    kill "$pid"
    wait "$pid" || true
    VPOOL_CATALOG=$cat $vpool pool rm estate --quiet >/dev/null
    jq -r '"console: estate of \(.vms) VMs rendered in \(.median_ms | round) ms (median of \(.runs); " +
        "GET /v1/estate \(.api_median_ms | round) ms)"' "$webdir/console.json" >&2
}
