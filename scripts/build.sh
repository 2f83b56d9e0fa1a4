#!/bin/bash
# Configure and build vpool into build/ (warnings are errors), and, with
# --asan, a second tree build-asan/ with AddressSanitizer and
# UndefinedBehaviorSanitizer.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

setup() {
    local dir=$1
    shift
    local log
    log=$(mktemp)
    if [ -f "$dir/build.ninja" ]; then
        meson configure "$dir" -Dwerror=true "$@" >"$log" 2>&1 || { cat "$log" >&2; rm -f "$log"; return 1; }
    else
        meson setup "$dir" -Dwerror=true "$@" >"$log" 2>&1 || { cat "$log" >&2; rm -f "$log"; return 1; }
    fi
    rm -f "$log"
    # Quiet when it works; the compiler's words when it does not.
    if ! ninja -C "$dir" >"$dir/ninja.log" 2>&1; then
        grep -v '^\[' "$dir/ninja.log" >&2 || cat "$dir/ninja.log" >&2
        return 1
    fi
}

setup build
if [ "${1:-}" = "--asan" ]; then
    setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
fi
