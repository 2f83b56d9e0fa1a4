# TAP output for the shell test suites (docs, integration, package):
# ok / not_ok with their diagnostics, and the checks built on them.
# Sourced; the suite calls finish last.

tap_n=0
tap_failed=0

ok() { tap_n=$((tap_n + 1)); echo "ok $tap_n - $*"; }
not_ok() {
    tap_n=$((tap_n + 1))
    tap_failed=$((tap_failed + 1))
    # The reasons go to stderr as well: a test runner that parses stdout
    # as TAP shows a failing test's stderr, so a failure explains itself.
    # (Written twice, not through tee /dev/stderr: reopening stderr
    # truncates it when it is a file.)
    local text
    text=$(
        echo "not ok $tap_n - $1"
        shift
        local line
        for line in "$@"; do printf '%s\n' "$line" | sed 's/^/#   /'; done
    )
    printf '%s\n' "$text"
    printf '%s\n' "$text" >&2
}
# diag TEXT...: a TAP comment, every line of TEXT prefixed.
diag() { printf '%s\n' "$*" | sed 's/^/# /'; }
bail() { echo "Bail out! $*"; echo "Bail out! $*" >&2; exit 1; }

finish() {
    echo "1..$tap_n"
    [ "$tap_failed" -eq 0 ]
}

# check DESCRIPTION COMMAND...: ok when COMMAND succeeds.
check() {
    local desc=$1 out
    shift
    if out=$("$@" 2>&1); then
        ok "$desc"
    else
        not_ok "$desc" "command failed: $*" "$out"
    fi
}

# check_eq DESCRIPTION EXPECTED ACTUAL
check_eq() {
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "expected: $2" "actual:   $3"; fi
}
