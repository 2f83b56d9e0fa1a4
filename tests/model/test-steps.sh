#!/bin/bash
# The model's step names are the journal's: the mtype declaration after
# "/* steps: */" in model/handover.pml lists vp_step's words (src/lib/model.c)
# in the enum's order.
. "$(dirname "$0")/../lib/tap.sh"

MODEL=${VPOOL_MODEL:?VPOOL_MODEL must name model/handover.pml}
STEPS_BIN=${VPOOL_STEPS_BIN:?VPOOL_STEPS_BIN must name the model-steps program}

code=$("$STEPS_BIN" | xargs)
model=$(awk 'f { print; exit } /\/\* steps: \*\// { f = 1 }' "$MODEL" |
    sed -n 's/^ *mtype *= *{\(.*\)} *; *$/\1/p' | tr ',' ' ' | xargs)

check_eq "the code has step words" "yes" "$([ -n "$code" ] && echo yes || echo no)"
check_eq "the model marks its step declaration (/* steps: */ then mtype = { ... };)" "yes" \
    "$([ -n "$model" ] && echo yes || echo no)"
check_eq "the model's steps are vp_step's, in order" "$code" "$model"

finish
