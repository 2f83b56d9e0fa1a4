# The api section of bench/run.sh (sourced): vpoold under load and the
# delay of its events. A catalog of its own with 20 pools of 5 defined VMs
# on the pair's first host, a viewer token, vpoold on a unix socket and on
# loopback HTTP (the rate limit lifted: one client is the whole load), then
# bench/api.py: wrk with 64 connections against GET /v1/pools beside
# `vpool --json pool list` run back to back, and the delay from a journal
# commit to its Server-Sent Event at a client. Sets $adir (its figures in
# $adir/api.json).
# section_catalog CATALOG STORAGE: a catalog of a section's own, its env
# "a" on the pair's first host, the test guest's image, the profile pc-ide.
section_catalog() {
    VPOOL_CATALOG=$1 $vpool init --storage "$2" >/dev/null
    VPOOL_CATALOG=$1 $vpool env add a --uri "$src" --domain-type qemu >/dev/null
    VPOOL_CATALOG=$1 $vpool image add guest --file build/guest/master.qcow2 --kernel build/guest/vmlinuz \
        --initrd build/guest/initrd.img --cmdline "$(cat build/guest/cmdline)" >/dev/null
    VPOOL_CATALOG=$1 $vpool profile add pc-ide --machine pc --disk-bus ide --nic e1000 --vcpus 1 --memory 256 >/dev/null
}

api_section() {
    adir=$work/api
    mkdir -p "$adir"
    local cat=$adir/catalog.db port pid i token
    section_catalog "$cat" "$adir/storage"
    for i in $(seq 20); do
        VPOOL_CATALOG=$cat $vpool pool create "api$i" --image guest --env a --profile pc-ide --size 5 --quiet
    done
    token=$(VPOOL_CATALOG=$cat $vpool token add bench --role viewer --json | jq -r .token)
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$top/build/src/daemon/vpoold" --foreground --catalog "$cat" --rate-limit 1000000 \
        --listen "unix:$adir/vpoold.sock,http://127.0.0.1:$port" 2>"$adir/vpoold.log" &
    pid=$!
    for i in $(seq 100); do [ -S "$adir/vpoold.sock" ] && break; sleep 0.1; done
    log "api: wrk -c 64 against GET /v1/pools (20 pools), the CLI's reads, 300 events' delay"
    VPOOL_CATALOG=$cat /usr/bin/python3 "$top/bench/api.py" --url "http://127.0.0.1:$port/v1/pools" \
        --token "$token" --socket "$adir/vpoold.sock" --catalog "$cat" --vpool "$vpool" >"$adir/api.json"
    kill "$pid"
    wait "$pid" || true
    for i in $(seq 20); do VPOOL_CATALOG=$cat $vpool pool rm "api$i" --quiet >/dev/null; done
    jq -r '"api: \(.wrk.requests_per_s | round) requests/s (p50 \(.wrk.p50_ms) ms, p99 \(.wrk.p99_ms) ms), " +
        "CLI \(.cli_reads_per_s * 10 | round / 10) reads/s; event delay p50 \(.events.p50_ms * 10 | round / 10) ms, " +
        "p99 \(.events.p99_ms * 10 | round / 10) ms"' "$adir/api.json" >&2
}
