#!/bin/bash
# The hand-over model checked exhaustively by SPIN: (1) never two writers
# (an assertion) and no invalid end state, (2) every ended run leaves the
# delta to its VM under the names of that VM's domain (LTL 'owned'), and
# (3) every run ends, under weak fairness (LTL 'ends'). Each run's figures
# are printed; any error, or a search that did not complete, fails.
. "$(dirname "$0")/lib.sh"

# run DESC NAME "PAN_CFLAGS" PAN_ARGS...
run() {
    local desc=$1 name=$2 cflags=$3 out
    shift 3
    if ! out=$(verify "$name" "" "$cflags" "$@"); then
        not_ok_text "$desc" "spin or the compiler failed:
$out"
        return
    fi
    local e
    e=$(errors "$name")
    if [ "$e" = 0 ] && complete "$name"; then
        ok "$desc ($(figures "$name"))"
    else
        not_ok_text "$desc" "errors: ${e:-?} ($(figures "$name"))
$(grep -E '^pan' "$work/$name/pan.out")
counterexample:
$(trail "$name" "")"
    fi
}

run "safety: never two writers, no invalid end state" safety "-DNOCLAIM"
run "LTL owned: an ended run leaves the delta to its VM and that VM's domain" owned "" -a -N owned
run "LTL ends: every run ends, under weak fairness" ends "" -a -f -N ends

finish
