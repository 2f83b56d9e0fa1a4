#!/bin/bash
# Runs each libFuzzer target of tests/fuzz for SECONDS (default 60), one
# after the other, on a copy of its seed corpus, and reports per target the
# inputs run, the coverage reached and the crashes found. Exits 1 when any
# target crashed (or leaked, timed out or ran out of memory), printing where
# the input that did it was kept, so it can be replayed with
#   build-fuzz/tests/fuzz/fuzz-TARGET INPUT
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]
#
# The fuzz build lives in build-fuzz/ (clang, ASan + UBSan, -Dfuzz=true) and
# is configured on first use. The tree is never written to: the corpus the
# run grows is thrown away, only crash inputs are kept.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

targets=(qcow2 manifest names fence deltadir body webpath guestcfg catalogexport)
seconds=${1:-60}
builddir=build-fuzz

usage() {
    echo "usage: $0 [SECONDS_PER_TARGET]" >&2
    exit 2
}
[ $# -le 1 ] || usage
[[ $seconds =~ ^[1-9][0-9]*$ ]] || usage

command -v clang >/dev/null || { echo "fuzz.sh: clang not found (scripts/deps.sh installs it)" >&2; exit 1; }

# Configure once; a build-fuzz made by hand without the option gets it.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [ ! -f "$builddir/build.ninja" ]; then
    CC=clang meson setup "$builddir" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
        -Dwerror=true >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
elif [ "$(meson introspect --buildoptions "$builddir" | jq -r '.[] | select(.name == "fuzz") | .value')" != true ]; then
    meson configure "$builddir" -Dfuzz=true >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
fi
# Only the fuzz targets: the rest of the tree is the other builds' business.
if ! ninja -C "$builddir" "${targets[@]/#/tests/fuzz/fuzz-}" >"$log" 2>&1; then
    grep -v '^\[' "$log" >&2 || cat "$log" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/vpool-fuzz.XXXXXX")
trap 'rm -f "$log"; [ -n "${keep:-}" ] || rm -rf "$work"' EXIT

# Leaks count as failures; UBSan findings stop the run (the targets are also
# built with -fno-sanitize-recover) with a stack trace.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

crashed=0
printf '%-14s %8s %12s %10s %8s %8s %8s\n' target seconds runs exec/s cov corpus crashes
for t in "${targets[@]}"; do
    dir=$work/$t
    mkdir -p "$dir/corpus" "$dir/artifacts"
    cp -r "tests/fuzz/corpus/$t/." "$dir/corpus/"
    args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
          -artifact_prefix="$dir/artifacts/")
    [ -f "tests/fuzz/$t.dict" ] && args+=(-dict="tests/fuzz/$t.dict")

    start=$SECONDS
    rc=0
    "$builddir/tests/fuzz/fuzz-$t" "${args[@]}" "$dir/corpus" >"$dir/log" 2>&1 || rc=$?
    took=$((SECONDS - start))

    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log" | tail -1)
    # The last status line: "#N DONE cov: C ft: F corp: K/SIZE ...".
    status=$(grep -E '^#[0-9]+' "$dir/log" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status")
    corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$status")
    artifacts=("$dir"/artifacts/*)
    [ -e "${artifacts[0]}" ] || artifacts=()
    crashes=${#artifacts[@]}
    # A target that died without leaving an input (say, at start-up) failed too.
    if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then
        crashes=1
    fi
    printf '%-14s %8s %12s %10s %8s %8s %8s\n' "fuzz-$t" "$took" "${runs:-?}" "${rate:-?}" \
        "${cov:-?}" "${corp:-?}" "$crashes"

    if [ "$crashes" -gt 0 ]; then
        crashed=1
        keep=1
        # The sanitizer's report, without libFuzzer's progress lines, then
        # where to find the rest.
        grep -vE '^#[0-9]+|^(INFO|MERGE|Loading|Loaded)' "$dir/log" | tail -40 | sed "s/^/fuzz-$t: /" >&2
        echo "fuzz-$t failed (exit $rc); its log: $dir/log" >&2
        for a in "${artifacts[@]}"; do
            echo "fuzz-$t: crash input kept at $a" >&2
        done
    fi
done
exit $crashed
