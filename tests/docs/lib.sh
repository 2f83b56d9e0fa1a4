# Shared helpers of the docs tests: TAP output and the command tree read
# from vpool's own --help, so that the man page and the completion cannot
# drift from the program.
set -uo pipefail

VPOOL_BIN=${VPOOL_BIN:?VPOOL_BIN must name the vpool program}

tap_n=0
tap_failed=0
ok() { tap_n=$((tap_n + 1)); echo "ok $tap_n - $*"; }
not_ok() {
    tap_n=$((tap_n + 1))
    tap_failed=$((tap_failed + 1))
    echo "not ok $tap_n - $1"
    shift
    local line
    for line in "$@"; do echo "#   $line"; done
}
bail() { echo "Bail out! $*"; exit 1; }
finish() {
    echo "1..$tap_n"
    [ "$tap_failed" -eq 0 ]
}
# check DESCRIPTION COMMAND...: ok when COMMAND succeeds.
check() {
    local desc=$1 out
    shift
    if out=$("$@" 2>&1); then ok "$desc"; else not_ok "$desc" "command failed: $*" "$out"; fi
}
check_eq() {
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "expected: $2" "actual:   $3"; fi
}

# The nouns 'vpool --help' lists.
cli_nouns() {
    "$VPOOL_BIN" --help | awk '/^Nouns:/ { f = 1; next } f && /^  [a-z]/ { print $1; next } f { exit }'
}

# The verbs 'vpool NOUN --help' lists; none for a noun that is a command of
# its own (init, fsck).
cli_verbs() {
    "$VPOOL_BIN" "$1" --help | awk '/^Verbs:/ { f = 1; next } f && /^  [a-z]/ { print $1; next } f { exit }'
}

# Every command as "NOUN VERB", or "NOUN" alone for a noun without verbs.
cli_commands() {
    local n v verbs
    for n in $(cli_nouns); do
        verbs=$(cli_verbs "$n")
        if [ -z "$verbs" ]; then
            echo "$n"
        else
            for v in $verbs; do echo "$n $v"; done
        fi
    done
}

# The long options in the usage lines of 'vpool COMMAND --help' (up to the
# first blank line), one per line, without the common --json, --quiet, --help.
cli_options() {
    # shellcheck disable=SC2086
    "$VPOOL_BIN" $1 --help | awk 'NF == 0 { exit } { print }' |
        grep -o -- '--[a-z][a-z-]*' | sort -u
}
