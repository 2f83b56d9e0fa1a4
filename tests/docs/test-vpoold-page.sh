#!/bin/bash
# vpoold(8) renders without a warning, carries the program's version, and
# documents every option 'vpoold --help' shows in its OPTIONS, and every
# setting of its own in CONFIGURATION; --help and --version exit 0 on
# stdout, a bad option exits 2 with the usage on stderr.
set -uo pipefail
source "$(dirname "$0")/../lib/tap.sh"

VPOOLD_BIN=${VPOOLD_BIN:?VPOOLD_BIN must name the vpoold program}
page=${1:?usage: test-vpoold-page.sh MANPAGE}
[ -r "$page" ] || bail "no man page at $page"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

check_eq "groff -man -ww: no warning" "" "$(groff -man -ww -z "$page" 2>&1)"
check_eq "man --warnings -l: no warning" "" "$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)"
version=$("$VPOOLD_BIN" --version 2>&1)
check_eq "vpoold --version" "vpoold $(sed -n 's/^\.TH VPOOLD 8 "[^"]*" "vpool \([^"]*\)".*/\1/p' "$page")" "$version"
"$VPOOLD_BIN" --help >"$work/help" 2>"$work/help.err"
check_eq "vpoold --help exits 0, nothing on stderr" "0|" "$?|$(cat "$work/help.err")"
"$VPOOLD_BIN" --no-such-option >"$work/bad" 2>"$work/bad.err"
check_eq "a bad option exits 2" 2 "$?"
check "and says so on stderr with the usage" grep -q "unknown option '--no-such-option'" "$work/bad.err"
check_eq "and nothing on stdout" "" "$(cat "$work/bad")"

groff -man -Tascii -P-cbou -rLL=250n -rHY=0 "$page" 2>/dev/null >"$work/page.txt"
section() { awk -v s="$1" '/^[A-Z]/ { f = ($0 == s); next } f' "$work/page.txt"; }
section OPTIONS >"$work/options.txt"
section CONFIGURATION >"$work/conf.txt"
options=$(grep -o -- '--[a-z][a-z-]*' "$work/help" | sort -u)
check "--help shows some options" test "$(wc -w <<<"$options")" -ge 8
for o in $options; do
    if grep -qE -- "^       $o\b" "$work/options.txt"; then
        ok "option $o in OPTIONS"
    else
        not_ok "option $o in OPTIONS"
    fi
done
for key in listen tls_cert tls_key rate_limit console policy_interval leader_interval advertise; do
    if grep -qE -- "^       ($key|.*, $key|$key, .*)\b" "$work/conf.txt"; then
        ok "setting $key in CONFIGURATION"
    else
        not_ok "setting $key in CONFIGURATION" "$(head -20 "$work/conf.txt")"
    fi
done
finish
