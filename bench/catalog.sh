# shellcheck shell=bash disable=SC2154
# (the variables come from run.sh)
# bench/run.sh's catalog section (sourced by it; see there): the same
# migration with the catalog in SQLite and in PostgreSQL (a private server,
# tests/pg.sh, its data on the same disk). A pool of N defined VMs per
# catalog, on the pair of hosts; alternating RUNS times each, `vpool
# migrate` of the pool to the other host and hardware (timed) and back
# (untimed). Sets catdir, whose catalog.json holds the figures:
#   {"n", "runs", "parallel", "sqlite": [s...], "postgresql": [s...],
#    "sqlite_median", "postgresql_median", "ratio"}

catalog_one() {
    local label=$1 cat=$2 pool=$3 n=$4
    VPOOL_CATALOG=$cat $vpool init --storage "$catdir/storage-$label" >/dev/null
    VPOOL_CATALOG=$cat $vpool env add a --uri "$src" --domain-type qemu >/dev/null
    VPOOL_CATALOG=$cat $vpool env add b --uri "$dst" --domain-type qemu >/dev/null
    VPOOL_CATALOG=$cat $vpool image add guest --file build/guest/master.qcow2 --kernel build/guest/vmlinuz \
        --initrd build/guest/initrd.img --cmdline "$(cat build/guest/cmdline)" >/dev/null
    VPOOL_CATALOG=$cat $vpool profile add pc-ide --machine pc --disk-bus ide --nic e1000 --vcpus 1 --memory 256 >/dev/null
    VPOOL_CATALOG=$cat $vpool profile add q35-virtio --machine q35 --disk-bus virtio --nic virtio --vcpus 1 \
        --memory 256 >/dev/null
    VPOOL_CATALOG=$cat $vpool pool create "$pool" --image guest --env a --profile pc-ide --size "$n" --quiet
}

# One timed move of POOL in catalog CAT to b, and the untimed one back: prints the seconds.
catalog_move() {
    local cat=$1 pool=$2 t0 t1
    t0=$(now)
    VPOOL_CATALOG=$cat $vpool migrate "$pool" --to b --profile q35-virtio --parallel "$parallel" --quiet >/dev/null
    t1=$(now)
    VPOOL_CATALOG=$cat $vpool migrate "$pool" --to a --profile pc-ide --parallel "$parallel" --quiet >/dev/null
    calc "$t1 - $t0"
}

catalog_section() {
    local n=${catalog_size:-1000} r s=() p=() sm pm pg
    catdir=$work/catalog
    mkdir -p "$catdir"
    pg=$("$top/tests/pg.sh" start "$catdir/pg")
    catalog_one sqlite "$catdir/catalog.db" qs "$n"
    catalog_one postgresql "$pg" qp "$n"
    for r in $(seq "$runs"); do
        s+=("$(catalog_move "$catdir/catalog.db" qs)")
        p+=("$(catalog_move "$pg" qp)")
        log "catalog N=$n run $r: SQLite $(printf '%.2f' "${s[-1]}") s, PostgreSQL $(printf '%.2f' "${p[-1]}") s"
    done
    sm=$(printf '%s\n' "${s[@]}" | median)
    pm=$(printf '%s\n' "${p[@]}" | median)
    VPOOL_CATALOG=$catdir/catalog.db $vpool pool rm qs --quiet >/dev/null
    VPOOL_CATALOG=$pg $vpool pool rm qp --quiet >/dev/null
    "$top/tests/pg.sh" stop "$catdir/pg"
    jq -n --argjson n "$n" --argjson runs "$runs" --argjson parallel "$parallel" \
        --argjson s "[$(IFS=,; echo "${s[*]}")]" --argjson p "[$(IFS=,; echo "${p[*]}")]" \
        --argjson sm "$sm" --argjson pm "$pm" \
        '{n: $n, runs: $runs, parallel: $parallel, sqlite: $s, postgresql: $p,
          sqlite_median: $sm, postgresql_median: $pm, ratio: ($pm / $sm)}' >"$catdir/catalog.json"
    log "catalog N=$n: medians SQLite $(printf '%.2f' "$(calc "$sm * 1000 / $n")") ms per VM," \
        "PostgreSQL $(printf '%.2f' "$(calc "$pm * 1000 / $n")") ms per VM, ratio $(printf '%.2f' "$(calc "$pm / $sm")")"
}
