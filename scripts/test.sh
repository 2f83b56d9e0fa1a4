#!/bin/bash
# The whole test suite, from a fresh Debian 12 machine: installs what it
# needs, builds with warnings as errors, runs the unit tests plain and under
# ASan + UBSan, checks the protocol model with SPIN, builds the test guest,
# starts two simulated hosts, runs the integration tests against them and
# stops every daemon it started.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

# The main lane's hosts: A and B, and C for the suites that need a third
# (an env of three hosts).
hosts=(hosta hostb hosti)
export VPOOL_TEST_HOSTC=${hosts[2]}
step() { printf '\n=== %s\n' "$*"; }

step "installing dependencies"
scripts/deps.sh

step "building (werror, and ASan+UBSan)"
scripts/build.sh --asan

# The Debian 12 guests take minutes of debootstrap, mostly waiting for
# Debian's mirror: built in the background while the unit tests, the
# package and the fuzzers run, and waited for before the integration tests.
mkdir -p build/meson-logs
debian_log=build/meson-logs/debian-guest.log
scripts/build-debian-guest.sh build/debian-guest >"$debian_log" 2>&1 &
debian_pid=$!

passed=0
failed=0
# Count the test programs meson ran, from its machine-readable log.
tally() {
    local log=$1/meson-logs/${2:-testlog}.json p f
    p=$(jq -s '[.[] | select(.result == "OK")] | length' "$log")
    f=$(jq -s '[.[] | select(.result != "OK" and .result != "SKIP")] | length' "$log")
    passed=$((passed + p))
    failed=$((failed + f))
}

rc=0
step "unit tests"
meson test -C build --suite unit --print-errorlogs || rc=1
tally build
step "unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C build-asan --suite unit --print-errorlogs || rc=1
tally build-asan

step "documentation: --help, --version and the man page against them"
meson test -C build --suite docs --print-errorlogs || rc=1
tally build

step "the protocol model: SPIN over model/handover.pml, and its steps against the code's"
meson test -C build --suite model --print-errorlogs || rc=1
tally build

step "the Debian package: scripts/deb.sh, then installed into a clean debootstrap root"
meson test -C build --suite package --print-errorlogs || rc=1
tally build

step "fuzzing the parsers of outside input: files on shared storage, API bodies, settings (30 s per target, ASan + UBSan)"
if scripts/fuzz.sh 30; then passed=$((passed + 1)); else failed=$((failed + 1)); rc=1; fi

step "building the test guest, and the disk shaped like Windows"
scripts/build-guest.sh build/guest
scripts/build-windows-shape.sh build/windows-shape

step "the Debian 12 guests (debootstrap, begun after the build; kept in build/debian-guest once built)"
debian_rc=0
wait "$debian_pid" || debian_rc=$?
cat "$debian_log"
[ "$debian_rc" -eq 0 ] || { echo "scripts/build-debian-guest.sh failed ($debian_rc)" >&2; exit 1; }

# Two lanes at once on hosts of their own: the slowest suites (crash, uefi,
# live, evacuate on hoste/hostf, and hostj for evacuate's third host;
# clusters on its five TLS hosts) beside all the others, which share
# hosta/hostb/hosti (and hostc/hostd).
slow_hosts=(hoste hostf hostj)
# The TLS suite's own hosts, reached as qemu+tls://, and two whose
# certificates it must refuse (another CA's, another address's).
tls_hosts=(hostg hosth)
export VPOOL_TEST_TLS_HOSTA=${tls_hosts[0]} VPOOL_TEST_TLS_HOSTB=${tls_hosts[1]}
bad_tls_hosts=("${tls_hosts[0]}-rogue" "${tls_hosts[0]}-wrongname")
# The clusters suite's: an env of three TLS hosts and one of two, and a host
# whose certificate another CA signed.
cluster_hosts=(hostw1 hostw2 hostw3 hostz1 hostz2)
export VPOOL_TEST_CLUSTER_HOSTS="${cluster_hosts[*]}"
cluster_rogue=${cluster_hosts[0]}-rogue
step "starting hosts ${hosts[*]} ${slow_hosts[*]}, and ${tls_hosts[*]} ${bad_tls_hosts[*]}" \
    "${cluster_hosts[*]} $cluster_rogue on TLS"
stop_hosts() {
    # The PostgreSQL server too, when the run ends before it stopped it.
    if [ -n "${pg_dir:-}" ] && [ -d "$pg_dir" ]; then tests/pg.sh stop "$pg_dir" >/dev/null 2>&1 || true; fi
    scripts/hosts.sh down "${hosts[@]}" "${slow_hosts[@]}" "${tls_hosts[@]}" "${bad_tls_hosts[@]}" \
        "${cluster_hosts[@]}" "$cluster_rogue" hostc hostd >/dev/null 2>&1 || true
}
trap stop_hosts EXIT
scripts/hosts.sh up --fresh "${hosts[@]}" "${slow_hosts[@]}"
scripts/hosts.sh up --fresh --tls "${tls_hosts[@]}" "${cluster_hosts[@]}"
scripts/hosts.sh up --fresh --tls --cert rogue "${bad_tls_hosts[0]}" "$cluster_rogue"
scripts/hosts.sh up --fresh --tls --cert wrong-name "${bad_tls_hosts[1]}"

# The catalog-touching suites run twice: with the catalog in SQLite, then
# in PostgreSQL (one private server, tests/pg.sh, a database per test), on
# the same lane's hosts right after. Each lane reruns its share, so both
# end at about the same time: the main lane the suites that use hostc/hostd
# and the TLS hosts, and the slow suites uefi, live, crash and evacuate
# (the last of them, as it powers its hosts off) on its own hosts; the slow
# lane the others, hostile, and the slow suites clusters and guestfs.
main_pg=(pool json recovery migrate daemon badinput fencing tls uefi live crash evacuate)
slow_pg=(operator policy config reliability completion review cluster token hostile clusters guestfs)
pg_dir=$(mktemp -d /var/tmp/vpool-pg.XXXXXX)
step "a PostgreSQL server for the catalog's suites (tests/pg.sh, in $pg_dir)"
pg_ok=1
tests/pg.sh start "$pg_dir" >/dev/null || { echo "tests/pg.sh could not start PostgreSQL" >&2; pg_ok=0; rc=1; }
# on_pg LOGBASE SUITE...: the suites again with the catalog in PostgreSQL.
on_pg() {
    local logbase=$1
    shift
    [ "$pg_ok" = 1 ] || return 1
    # (--suite: a unit test of the same name is not run again.)
    VPOOL_TEST_CATALOG=pg VPOOL_TEST_PG_DIR=$pg_dir meson test -C build --suite integration "$@" \
        --print-errorlogs --num-processes 1 --no-rebuild --logbase "$logbase"
}
# The slow lane, on its own hosts: its suites, then (its hosts and the
# clusters suite's up again with no state: evacuate, the last, powers its
# hosts off, and clusters kills one of its own) its share of the PostgreSQL
# reruns.
# Run in the background, a subshell: its hosts are its own.
slow_lane() {
    local r=0
    export VPOOL_TEST_HOSTA=${slow_hosts[0]} VPOOL_TEST_HOSTB=${slow_hosts[1]} VPOOL_TEST_HOSTC=${slow_hosts[2]}
    meson test -C build --suite slow --print-errorlogs --num-processes 1 --no-rebuild \
        --logbase integration-slow || r=1
    scripts/hosts.sh up --fresh "${slow_hosts[@]}" >/dev/null || r=1
    scripts/hosts.sh up --fresh --tls "${cluster_hosts[@]}" >/dev/null || r=1
    scripts/hosts.sh up --fresh --tls --cert rogue "$cluster_rogue" >/dev/null || r=1
    on_pg integration-slow-pg "${slow_pg[@]}" || r=1
    return $r
}

step "integration tests (the slow suites on ${slow_hosts[*]} alongside; their log follows)," \
    "then the catalog's suites on PostgreSQL"
slow_out=build/meson-logs/integration-slow.out
slow_lane >"$slow_out" 2>&1 &
slow_pid=$!
meson test -C build --suite integration --no-suite slow --print-errorlogs --num-processes 1 --no-rebuild \
    --logbase integration || rc=1
step "the main lane's share of the catalog's suites on PostgreSQL: ${main_pg[*]}"
on_pg integration-pg "${main_pg[@]}" || rc=1
wait "$slow_pid" || rc=1
cat "$slow_out"
tally build integration
tally build integration-slow
for log in integration-pg integration-slow-pg; do
    if [ -e "build/meson-logs/$log.json" ]; then tally build "$log"; else failed=$((failed + 1)); fi
done

# The main lane's evacuate rerun powered its hosts off: up again, with no state.
scripts/hosts.sh up --fresh "${hosts[@]}" >/dev/null || rc=1
step "the web console in Chromium (puppeteer-core, axe-core) on ${hosts[0]} ${hosts[1]}; screenshots in build/console-shots"
VPOOL_TEST_HOSTA=${hosts[0]} VPOOL_TEST_HOSTB=${hosts[1]} \
    meson test -C build --suite browser --print-errorlogs --num-processes 1 --no-rebuild --logbase browser || rc=1
tally build browser
step "the web console again, with the catalog in PostgreSQL"
if [ "$pg_ok" = 1 ]; then
    scripts/hosts.sh up --fresh "${hosts[@]}" >/dev/null || rc=1
    VPOOL_TEST_CATALOG=pg VPOOL_TEST_PG_DIR=$pg_dir VPOOL_TEST_HOSTA=${hosts[0]} VPOOL_TEST_HOSTB=${hosts[1]} \
        meson test -C build --suite browser --print-errorlogs --num-processes 1 --no-rebuild --logbase browser-pg || rc=1
    tally build browser-pg
    tests/pg.sh stop "$pg_dir" || rc=1
else
    failed=$((failed + 1))
fi

step "stopping hosts"
stop_hosts
trap - EXIT

echo
echo "$passed passed, $failed failed"
exit $rc
