#!/bin/bash
# The man page renders without a warning, carries the program's version, and
# documents every noun, verb and option that vpool's own --help shows, each
# option under its verb.
. "$(dirname "$0")/lib.sh"

man_page=${1:?usage: test-manpage.sh MANPAGE}
[ -r "$man_page" ] || bail "no man page at $man_page"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

out=$(groff -man -ww -z "$man_page" 2>&1)
check_eq "groff -man -ww: no warning" "" "$out"
out=$(MANWIDTH=80 man --warnings -l "$man_page" 2>&1 >/dev/null)
check_eq "man --warnings -l: no warning" "" "$out"
# man(1) as a person runs it, through its pager-less path.
MANWIDTH=80 MANPAGER=cat PAGER=cat man -l "$man_page" >"$work/man.txt" 2>"$work/man.err"
check_eq "man -l renders it" "0" "$?"
if grep -q '^NAME' "$work/man.txt" && grep -q '^EXAMPLES' "$work/man.txt"; then
    ok "rendered page has NAME and EXAMPLES"
else
    not_ok "rendered page has NAME and EXAMPLES" "$(head -5 "$work/man.txt")"
fi

version=$("$VPOOL_BIN" --version | awk '{ print $2 }')
check_eq "the page's version is the program's" "vpool $version" \
    "$(sed -n 's/^\.TH VPOOL 1 "[^"]*" "\([^"]*\)".*/\1/p' "$man_page")"

# Plain text, wide and unhyphenated, so that a command's synopsis is one line.
groff -man -Tascii -P-cbou -rLL=320n -rHY=0 "$man_page" 2>/dev/null >"$work/page.txt"
section() { awk -v s="$1" '/^[A-Z]/ { f = ($0 == s); next } f' "$work/page.txt"; }
section OPTIONS >"$work/options.txt"
section COMMANDS >"$work/commands.txt"

for o in $("$VPOOL_BIN" --help | awk '/^Global options:/ { f = 1; next } f && NF == 0 { exit } f' |
           grep -o -- '--[a-z][a-z-]*' | sort -u); do
    if grep -qE -- "^       (-[a-z], )?$o\b" "$work/options.txt"; then
        ok "global option $o in OPTIONS"
    else
        not_ok "global option $o in OPTIONS"
    fi
done

# block "NOUN VERB": the text of that command's entry in COMMANDS, from its
# synopsis line (indented 7) to the next synopsis or noun heading.
block() {
    awk -v c="vpool $1" '
        /^   [a-z]/ || /^       vpool / { f = (index($0, "       " c " ") == 1 || $0 == "       " c) }
        f' "$work/commands.txt"
}

ncommands=0
while read -r cmd; do
    ncommands=$((ncommands + 1))
    b=$(block "$cmd")
    if [ -z "$b" ]; then
        not_ok "'vpool $cmd' has an entry in COMMANDS"
        continue
    fi
    ok "'vpool $cmd' has an entry in COMMANDS"
    noun=${cmd%% *}
    if grep -qx "   $noun" "$work/commands.txt"; then :; else
        not_ok "noun '$noun' has a heading in COMMANDS"
    fi
    missing=()
    for o in $(cli_options "$cmd"); do
        case $o in --json|--quiet|--help) continue ;; esac
        # In the synopsis and described in the option list below it.
        grep -q -- "^       vpool $cmd .*$o\b" <<<"$b" || missing+=("$o not in the synopsis")
        grep -qE -- "^              $o\b|, $o\b" <<<"$b" || missing+=("$o not described")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        ok "'vpool $cmd': every option documented"
    else
        not_ok "'vpool $cmd': every option documented" "${missing[@]}"
    fi
done < <(cli_commands)
if [ "$ncommands" -ge 30 ]; then ok "$ncommands commands checked"; else not_ok "only $ncommands commands checked"; fi

# What a reader looks for besides the commands.
for s in SYNOPSIS DESCRIPTION OPTIONS COMMANDS CONFIGURATION OUTPUT "EXIT STATUS" ENVIRONMENT FILES EXAMPLES "SEE ALSO"; do
    if grep -qx "$s" "$work/page.txt"; then ok "section $s"; else not_ok "section $s"; fi
done
for w in VPOOL_CATALOG /etc/vpool/vpool.conf /var/lib/vpool/catalog.db bash-completion/completions/vpool; do
    if grep -qF -- "$w" "$work/page.txt"; then ok "mentions $w"; else not_ok "mentions $w"; fi
done

finish
