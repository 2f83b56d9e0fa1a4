#!/bin/bash
# The whole test suite, from a fresh Debian 12 machine: installs what it
# needs, builds with warnings as errors, runs the unit tests plain and under
# ASan + UBSan, checks the protocol model with SPIN, builds and installs the
# Debian package, fuzzes, builds the test guests, starts the simulated hosts
# and a PostgreSQL server, runs the integration suites on both catalog
# engines in two lanes and the web console in Chromium, and stops every
# daemon it started.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

# The first lane's hosts: A and B, and C for the suites that need a third
# (an env of three hosts).
hosts=(hosta hostb hosti)
export VPOOL_TEST_HOSTC=${hosts[2]}
# Each step with the minutes and seconds since the run began.
step() { printf '\n=== [%d:%02d] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

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

# The Debian package is built twice and installed into a debootstrap root,
# a job of its own on the other core, beside the unit tests and fuzzers.
package_log=build/meson-logs/package.out
meson test -C build --suite package --print-errorlogs --no-rebuild --logbase package >"$package_log" 2>&1 &
package_pid=$!

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

step "fuzzing the parsers of outside input: files on shared storage, API bodies, settings (30 s per target, ASan + UBSan)"
if scripts/fuzz.sh 30; then passed=$((passed + 1)); else failed=$((failed + 1)); rc=1; fi

step "the Debian package: scripts/deb.sh, then installed into a clean debootstrap root (begun after the build)"
wait "$package_pid" || rc=1
cat "$package_log"
tally build package

step "building the test guest, and the disk shaped like Windows"
scripts/build-guest.sh build/guest
scripts/build-windows-shape.sh build/windows-shape

step "the Debian 12 guests (debootstrap, begun after the build; kept in build/debian-guest once built)"
debian_rc=0
wait "$debian_pid" || debian_rc=$?
cat "$debian_log"
[ "$debian_rc" -eq 0 ] || { echo "scripts/build-debian-guest.sh failed ($debian_rc)" >&2; exit 1; }

# Two lanes at once, each on three hosts of its own (tests/lanes.sh): A, B,
# and C for the suites that need a third (an env of three hosts).
lane2_hosts=(hoste hostf hostj)
# The TLS suite's own hosts, reached as qemu+tls://, and two whose
# certificates it must refuse (another CA's, another address's).
tls_hosts=(hostg hosth)
export VPOOL_TEST_TLS_HOSTA=${tls_hosts[0]} VPOOL_TEST_TLS_HOSTB=${tls_hosts[1]}
bad_tls_hosts=("${tls_hosts[0]}-rogue" "${tls_hosts[0]}-wrongname")
# The clusters suite's: an env of three TLS hosts and one of two, and a host
# whose certificate another CA signed.
cluster_hosts=(hostw1 hostw2 hostw3 hostz1 hostz2)
export VPOOL_TEST_CLUSTER_HOSTS="${cluster_hosts[*]}"
export VPOOL_TEST_CLUSTER_ROGUE=${cluster_hosts[0]}-rogue
step "starting hosts ${hosts[*]} ${lane2_hosts[*]}, and ${tls_hosts[*]} ${bad_tls_hosts[*]}" \
    "${cluster_hosts[*]} $VPOOL_TEST_CLUSTER_ROGUE on TLS"
stop_hosts() {
    # The PostgreSQL server too, when the run ends before it stopped it.
    if [ -n "${pg_dir:-}" ] && [ -d "$pg_dir" ]; then tests/pg.sh stop "$pg_dir" >/dev/null 2>&1 || true; fi
    scripts/hosts.sh down "${hosts[@]}" "${lane2_hosts[@]}" "${tls_hosts[@]}" "${bad_tls_hosts[@]}" \
        "${cluster_hosts[@]}" "$VPOOL_TEST_CLUSTER_ROGUE" hostc hostd >/dev/null 2>&1 || true
}
trap stop_hosts EXIT
scripts/hosts.sh up --fresh "${hosts[@]}" "${lane2_hosts[@]}"
scripts/hosts.sh up --fresh --tls "${tls_hosts[@]}" "${cluster_hosts[@]}"
scripts/hosts.sh up --fresh --tls --cert rogue "${bad_tls_hosts[0]}" "$VPOOL_TEST_CLUSTER_ROGUE"
scripts/hosts.sh up --fresh --tls --cert wrong-name "${bad_tls_hosts[1]}"

pg_dir=$(mktemp -d /var/tmp/vpool-pg.XXXXXX)
step "a PostgreSQL server for the catalog's suites (tests/pg.sh, in $pg_dir)"
pg_ok=1
tests/pg.sh start "$pg_dir" >/dev/null || { echo "tests/pg.sh could not start PostgreSQL" >&2; pg_ok=0; rc=1; }
export VPOOL_LANES_PG_DIR=$pg_dir

# Every suite that touches the catalog runs twice, with the catalog in
# SQLite and in PostgreSQL (one private server, a database per test), the
# web console in Chromium (puppeteer-core, axe-core; screenshots in
# build/console-shots) too; catalog and failover run on both engines by
# themselves. Longest first (as measured on two cores with both lanes
# busy), so that the lanes end together.
suites=(crash guestfs hostile daemon clusters evacuate console badinput migrate completion operator fencing failover
    policy live recovery pool uefi json config tls cluster token review reliability catalog)
once=" failover catalog "
queue=build/meson-logs/lanes.queue
: >"$queue"
: >"$queue.done"
rm -rf "$queue".*.held
for suite in "${suites[@]}"; do
    echo "sqlite $suite" >>"$queue"
    [ "${once/ $suite /}" = "$once" ] || continue
    if [ "$pg_ok" = 1 ]; then echo "pg $suite" >>"$queue"; else failed=$((failed + 1)); fi
done
jobs_run=$(wc -l <"$queue")
# Whatever the suites, every test of meson's integration and browser suites
# is in the queue.
for suite in $(meson test -C build --list --no-rebuild --suite integration --suite browser 2>/dev/null |
    sed 's/.* \/ //'); do
    grep -q " $suite\$" "$queue" || { echo "scripts/test.sh: suite $suite is in no lane" >&2; failed=$((failed + 1)); rc=1; }
done
step "integration tests and the web console: $jobs_run runs on two lanes (${hosts[*]}; ${lane2_hosts[*]})"
rm -f build/meson-logs/it-*.json
tests/lanes.sh "$queue" 1 "${hosts[@]}" &
lane1=$!
tests/lanes.sh "$queue" 2 "${lane2_hosts[@]}" &
lane2=$!
wait "$lane1" || rc=1
wait "$lane2" || rc=1
if [ "$pg_ok" = 1 ]; then tests/pg.sh stop "$pg_dir" || rc=1; fi
echo "each run's time, longest first:"
sort -rn "$queue.done"
ran=0
for log in build/meson-logs/it-*.json; do
    [ -e "$log" ] || continue
    tally build "$(basename "$log" .json)"
    ran=$((ran + 1))
done
# A run begun that left no log (its meson stopped first) counts as failed.
[ "$ran" = "$jobs_run" ] || { failed=$((failed + jobs_run - ran)); rc=1; }

step "stopping hosts"
stop_hosts
trap - EXIT

echo
echo "$passed passed, $failed failed"
exit $rc
