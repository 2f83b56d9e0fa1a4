# Shared helpers of the docs tests: TAP output and the command tree read
# from vpool's own --help, so that the man page and the completion cannot
# drift from the program.
set -uo pipefail

VPOOL_BIN=${VPOOL_BIN:?VPOOL_BIN must name the vpool program}

source "$(dirname "${BASH_SOURCE[0]}")/../lib/tap.sh"

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
