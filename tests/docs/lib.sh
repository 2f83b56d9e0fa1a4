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

# The verbs 'vpool WORDS --help' lists; none for a noun that is a command of
# its own (init, fsck) or a verb.
cli_verbs() {
    "$VPOOL_BIN" "$@" --help | awk '/^Verbs:/ { f = 1; next } f && /^  [a-z]/ { print $1; next } f { exit }'
}

# The commands under WORDS: WORDS alone when it has no verbs, else those of
# each of its verbs (a verb may have verbs of its own: "env host add").
cli_commands_of() {
    local v verbs
    verbs=$(cli_verbs "$@")
    if [ -z "$verbs" ]; then
        echo "$*"
    else
        for v in $verbs; do cli_commands_of "$@" "$v"; done
    fi
}

# Every command as "NOUN VERB" ("NOUN VERB VERB" under a verb with verbs),
# or "NOUN" alone for a noun without verbs.
cli_commands() {
    local n
    for n in $(cli_nouns); do
        cli_commands_of "$n"
    done
}

# The long options in the usage lines of 'vpool COMMAND --help' (up to the
# first blank line), one per line, without the common --json, --quiet, --help.
cli_options() {
    # shellcheck disable=SC2086
    "$VPOOL_BIN" $1 --help | awk 'NF == 0 { exit } { print }' |
        grep -o -- '--[a-z][a-z-]*' | sort -u
}
