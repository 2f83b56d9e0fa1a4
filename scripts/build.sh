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
    if [ -f "$dir/build.ninja" ]; then
        meson configure "$dir" -Dwerror=true "$@" >/dev/null
    else
        meson setup "$dir" -Dwerror=true "$@" >/dev/null
    fi
    ninja -C "$dir" >/dev/null
}

setup build
if [ "${1:-}" = "--asan" ]; then
    setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
fi
