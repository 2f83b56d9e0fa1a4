#!/bin/bash
# The model's checks are not vacuous: broken variants of the protocol must
# be caught, each with the shortest counterexample SPIN finds printed. The
# OLD_* variants are what src/lib/migrate.c did when the model was written
# (docs/model.md).
. "$(dirname "$0")/lib.sh"

# expect_violation DESC NAME "SPIN_DEFINES" "PAN_CFLAGS" PATTERN PAN_ARGS...:
# ok when pan reports PATTERN for the variant.
expect_violation() {
    local desc=$1 name=$2 defs=$3 cflags=$4 pattern=$5 out
    shift 5
    # -O0: each variant fails within a few thousand states, the compile is
    # the cost. -DREACH lets -i (shorten the trail) work exactly.
    if ! out=$(verify "$name" "$defs" "-O0 -DREACH $cflags" "$@"); then
        not_ok_text "$desc" "spin or the compiler failed:
$out"
        return
    fi
    if grep -qF -- "$pattern" "$work/$name/pan.out"; then
        ok "$desc"
        diag "$(grep -m1 -F -- "$pattern" "$work/$name/pan.out")"
        diag "counterexample:"
        trail "$name" "$defs" | while IFS= read -r l; do diag "$l"; done
    else
        not_ok_text "$desc" "expected pan to report: $pattern
$(grep -E '^pan|errors' "$work/$name/pan.out")"
    fi
}

two_writers="assertion violated ((src_qemu+tgt_qemu)==0)"
expect_violation "without the lease check, two QEMUs open the delta" no-lease \
    "-DNO_LEASE" "-DNOCLAIM" "$two_writers" -i
expect_violation "an abort handing back one generation on, a leftover target domain opens the delta" back-bump \
    "-DBACK_BUMP=1" "-DNOCLAIM" "$two_writers" -i
expect_violation "without fsck --repair, a stale source domain keeps its lease and the run never ends" no-fsck \
    "-DNO_FSCK" "" "acceptance cycle" -a -f -N ends
expect_violation "a resume that moves a delta an abort handed back waits on a lease for ever" old-resume \
    "-DOLD_RESUME" "-DNOCLAIM" "invalid end state" -i
expect_violation "an abort that hands its own hand-back on again waits on a lease for ever" old-reclaim \
    "-DOLD_RECLAIM" "-DNOCLAIM" "invalid end state" -i
expect_violation "a resume that finds the target's domain gone ends done without one" old-start \
    "-DOLD_START" "-DNOCLAIM" "assertion violated (( !(own_mig)" -i

finish
