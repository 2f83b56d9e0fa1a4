#!/bin/bash
# --version and --help at every level: exit 0, the text on stdout, nothing
# on stderr, no catalog opened or created.
. "$(dirname "$0")/lib.sh"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export VPOOL_CATALOG=$work/catalog.db

# run_help DESC PREFIX ARGS...: exit 0, stdout starting with PREFIX, stderr empty.
run_help() {
    local desc=$1 prefix=$2 rc problems=()
    shift 2
    "$VPOOL_BIN" "$@" >"$work/out" 2>"$work/err"
    rc=$?
    [ "$rc" = 0 ] || problems+=("exit code $rc")
    [ -s "$work/err" ] && problems+=("stderr: $(cat "$work/err")")
    [[ $(head -1 "$work/out") == "$prefix"* ]] || problems+=("stdout does not start with '$prefix': $(head -1 "$work/out")")
    if [ ${#problems[@]} -eq 0 ]; then ok "$desc"; else not_ok "$desc" "command: vpool $*" "${problems[@]}"; fi
}

"$VPOOL_BIN" --version >"$work/out" 2>"$work/err"
check_eq "vpool --version exits 0" 0 $?
check_eq "vpool --version prints the project's version" "vpool ${VPOOL_VERSION:?}" "$(cat "$work/out")"
check_eq "vpool --version prints nothing on stderr" "" "$(cat "$work/err")"

run_help "vpool --help" "Usage: vpool " --help
run_help "vpool -h" "Usage: vpool " -h
run_help "vpool --json --help" "Usage: vpool " --json --help

nouns=$(cli_nouns | xargs)
check_eq "vpool --help lists the nouns" "init env image profile pool vm migrate fsck" \
    "$(printf '%s\n' $nouns | grep -xE 'init|env|image|profile|pool|vm|migrate|fsck' | xargs)"

for n in $nouns; do
    run_help "vpool $n --help" "Usage: vpool $n" "$n" --help
    run_help "vpool $n -h" "Usage: vpool $n" "$n" -h
    for v in $(cli_verbs "$n"); do
        run_help "vpool $n $v --help" "Usage: vpool $n $v" "$n" "$v" --help
        run_help "vpool $n $v -h" "Usage: vpool $n $v" "$n" "$v" -h
        run_help "vpool --quiet $n $v --help" "Usage: vpool $n $v" --quiet "$n" "$v" --help
    done
done

# A verb with verbs of its own (env host): each of those too.
while read -r c; do
    [[ $c == *" "*" "* ]] || continue
    # shellcheck disable=SC2086
    run_help "vpool $c --help" "Usage: vpool $c" $c --help
done < <(cli_commands)

check_eq "every noun with verbs lists some" "" \
    "$(for n in env image profile pool vm migrate; do [ -n "$(cli_verbs "$n")" ] || echo "$n"; done)"
count=$(cli_commands | wc -l)
if [ "$count" -ge 30 ]; then ok "$count commands found"; else not_ok "only $count commands found"; fi

# --help wins over missing or bad arguments, wherever it stands.
run_help "vpool pool create NAME --help (required options missing)" "Usage: vpool pool create" pool create p1 --help
run_help "vpool migrate POOL --help (the short form)" "Usage: vpool migrate start" migrate p1 --help
run_help "vpool fsck --help" "Usage: vpool fsck [--repair]" fsck --help
run_help "vpool init --help" "Usage: vpool init [--storage DIR]" init --help

# A noun's list shows one line per verb: no help text spills over.
bad=$("$VPOOL_BIN" migrate --help | awk '/^Verbs:/ { f = 1; next } f && NF == 0 { exit } f && !/^  [a-z]/')
check_eq "vpool migrate --help: one line per verb" "" "$bad"

check_eq "no catalog created by any of it" "" "$(ls -A "$work" | grep -v -e '^out$' -e '^err$')"

finish
