# Shared helpers of the model suite: SPIN's verifier built and run over
# model/handover.pml, and what it reports read back.
set -uo pipefail

MODEL=${VPOOL_MODEL:?VPOOL_MODEL must name model/handover.pml}
PAN_CC=${VPOOL_PAN_CC:-cc}

source "$(dirname "${BASH_SOURCE[0]}")/../lib/tap.sh"

command -v spin >/dev/null || bail "spin not found (Debian's 'spin'; scripts/deps.sh installs it)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$MODEL" "$work/handover.pml"

# verify NAME "SPIN_DEFINES" "PAN_CFLAGS" PAN_ARGS...: generate the verifier
# for the model with SPIN_DEFINES (-DNO_LEASE ...), compile it with
# PAN_CFLAGS and run it with PAN_ARGS, in a directory of its own (the trail
# lands there). Its output goes to $work/NAME/pan.out; returns spin's or the
# compiler's failure, else 0 whatever pan found.
verify() {
    local name=$1 defs=$2 cflags=$3 dir=$work/$1
    shift 3
    mkdir -p "$dir"
    cp "$work/handover.pml" "$dir/"
    # shellcheck disable=SC2086
    (cd "$dir" && spin $defs -a handover.pml >spin.out 2>&1) || { cat "$dir/spin.out"; return 1; }
    # -O1: the verifier compiles in a third of -O2's time and runs about
    # as fast.
    # shellcheck disable=SC2086
    (cd "$dir" && $PAN_CC -O1 $cflags -o pan pan.c >cc.out 2>&1) || { cat "$dir/cc.out"; return 1; }
    # A deep enough stack for every run the model allows (pan says when
    # not: "max search depth too small").
    (cd "$dir" && ./pan -m1000000 "$@" >pan.out 2>&1)
    return 0
}

# not_ok DESC with TEXT's lines (any number) as its diagnostics.
not_ok_text() {
    local desc=$1 lines
    mapfile -t lines <<<"$2"
    not_ok "$desc" "${lines[@]}"
}

# The figures of run NAME: states stored, transitions, depth, seconds.
figures() {
    local out=$work/$1/pan.out
    printf 'states stored %s, transitions %s, depth %s, %s s' \
        "$(awk '/states, stored/ { print $1; exit }' "$out")" \
        "$(awk '/transitions \(=/ { print $1; exit }' "$out")" \
        "$(sed -n 's/.*depth reached \([0-9]*\).*/\1/p' "$out" | head -1)" \
        "$(sed -n 's/^pan: elapsed time \([0-9.e+-]*\) seconds.*/\1/p' "$out" | head -1)"
}

# The number of errors run NAME found.
errors() {
    sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$work/$1/pan.out" | head -1
}

# Whether run NAME explored everything it should have.
complete() {
    ! grep -qE 'max search depth too small|Search not completed|out of memory' "$work/$1/pan.out"
}

# The counterexample run NAME wrote, replayed: the model's MSC lines (what
# happened, in order) and spin's verdict. SPIN_DEFINES as for verify.
trail() {
    local name=$1 defs=$2
    # shellcheck disable=SC2086
    (cd "$work/$name" && spin $defs -t handover.pml 2>&1) |
        sed -n 's/^ *MSC: /  /p; s/^spin: \(.*\)/  spin: \1/p; s/^ *<<<<<START OF CYCLE>>>>>/  (from here, for ever:)/p'
}
