#!/bin/bash
# Bash completion in a real bash against a real catalog: nouns, verbs and
# options as --help shows them, fixed option values, and the names of envs,
# images, profiles, pools, VMs and migrations. Also once through tmux, with
# the Tab key, as a person types.
. "$(dirname "$0")/lib.sh"

TEST_PREFIX=tcomp
require_hosts "$HOSTA" "$HOSTB"
setup_workdir
standard_setup
completion=$top/completion/vpool.bash

vpool profile add q35-virtio --machine q35 --disk-bus virtio --nic virtio --vcpus 1 --memory 256M >/dev/null ||
    bail "profile add failed"
vpool pool create tcomp --image guest --env "$HOSTA" --profile pc-ide --size 3 >/dev/null || bail "pool create failed"
vpool pool create tcompb --image guest --env "$HOSTA" --profile pc-ide --size 1 >/dev/null || bail "pool create failed"
vpool migrate tcompb --to "$HOSTB" --profile q35-virtio >/dev/null || bail "migrate failed"
mig=$(vpool migrate list --json | jq -r '.[0].id')

# complete LINE: what bash offers for LINE (the cursor at its end), sorted,
# one line, computed in a fresh bash that sources the completion script and
# calls the function 'complete -p vpool' names, with vpool on its PATH.
complete_line() {
    PATH=$(dirname "$VPOOL_BIN"):$PATH LINE=$1 bash --norc --noprofile -c '
        . "$0" || exit 1
        spec=$(complete -p vpool) || exit 1
        fn=${spec#*-F }
        fn=${fn%% *}
        COMP_LINE=$LINE
        COMP_POINT=${#LINE}
        read -ra COMP_WORDS <<<"$LINE"
        [[ $LINE == *" " ]] && COMP_WORDS+=("")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        COMPREPLY=()
        "$fn" vpool "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf "%s\n" "${COMPREPLY[@]}"' "$completion" | sort | xargs
}

# expect LINE EXPECTED: bash offers exactly EXPECTED (sorted, blank-separated).
expect() {
    check_eq "complete '$1'" "$(printf '%s\n' $2 | sort | xargs)" "$(complete_line "$1")"
}

check "the script registers a completion for vpool" \
    bash --norc -c ". '$completion' && complete -p vpool | grep -q -- '-F _vpool'"

# Nouns, verbs and options, against what the program says about itself.
nouns=$(vpool --help | awk '/^Nouns:/ { f = 1; next } f && /^  [a-z]/ { print $1; next } f { exit }')
expect "vpool " "$nouns"
expect "vpool p" "pool profile"
expect "vpool -" "$(vpool --help | awk '/^Global options:/ { f = 1; next } f && NF == 0 { exit } f && /^  --/ { print $1 }')"
for n in $nouns; do
    verbs=$(vpool "$n" --help | awk '/^Verbs:/ { f = 1; next } f && /^  [a-z]/ { print $1; next } f { exit }')
    if [ -z "$verbs" ]; then
        cmds=$n
    else
        # migrate also offers pool names where its verb would stand.
        if [ "$n" = migrate ]; then
            expect "vpool $n " "$verbs tcomp tcompb"
        else
            expect "vpool $n " "$verbs"
        fi
        cmds=$(for v in $verbs; do echo "$n:$v"; done)
    fi
    for c in $cmds; do
        c=${c/:/ }
        # shellcheck disable=SC2086
        opts=$(vpool $c --help | awk 'NF == 0 { exit } { print }' | grep -o -- '--[a-z][a-z-]*' | sort -u)
        expect "vpool $c --" "$opts --json --quiet --help"
    done
done
expect "vpool pool create tcompc --image guest --" \
    "--env --profile --size --data-disk --start --placement --json --quiet --help"

# A verb with verbs of its own: env host.
hverbs=$(vpool env host --help | awk '/^Verbs:/ { f = 1; next } f && /^  [a-z]/ { print $1; next } f { exit }')
check_eq "env host has its verbs" "add list rm drain maintenance resume" "$(xargs <<<"$hverbs")"
expect "vpool env host " "$hverbs"
expect "vpool env host r" "rm resume"
for v in $hverbs; do
    opts=$(vpool env host "$v" --help | awk 'NF == 0 { exit } { print }' | grep -o -- '--[a-z][a-z-]*' | sort -u)
    expect "vpool env host $v --" "$opts --json --quiet --help"
done
expect "vpool env host add " "$HOSTA $HOSTB"
expect "vpool env host list $HOSTA" "$HOSTA"
expect "vpool env host rm $HOSTA $HOSTA --" "--force --json --quiet --help"

# Fixed values, from the usage lines.
expect "vpool profile add p --machine " "pc q35"
expect "vpool profile add p --disk-bus v" "virtio"
expect "vpool profile add p --nic " "e1000 rtl8139 virtio none"
expect "vpool profile add p --firmware " "bios uefi"
expect "vpool env add e --domain-type " "auto kvm qemu"
expect "vpool pool create p --placement " "spread pack"
expect "vpool env set x --on-maintenance " "drain report none"
expect "vpool env retire x --to " "$(vpool env list --json | jq -r ".[].name")"
expect "vpool env add e --host qemu+t" "qemu+tcp:// qemu+tls://"
# --host is given once per host: offered again.
expect "vpool env add e --host a=qemu:///system --" "--uri --host --domain-type --fence-cmd --json --quiet --help"
expect "vpool image add i --format " "qcow2 raw"
expect "vpool image add i --disk-buses ide,s" "ide,sata ide,scsi"
mkdir -p "$WORK/dirs/alpha" "$WORK/dirs/beta"
expect "vpool init --storage $WORK/dirs/a" "$WORK/dirs/alpha"

# Names from the catalog.
expect "vpool env show " "$HOSTA $HOSTB"
expect "vpool env drain $HOSTA --to " "$HOSTA $HOSTB"
expect "vpool env set $HOSTA --on-host-failure " "none report evacuate evacuate:$HOSTA evacuate:$HOSTB"
expect "vpool image show " "guest"
expect "vpool image verify g" "guest"
expect "vpool profile rm " "pc-ide q35-virtio"
expect "vpool pool show " "tcomp tcompb"
expect "vpool pool stop tcompb" "tcompb"
expect "vpool pool create tcompc --image " "guest"
expect "vpool pool create tcompc --env=" "$HOSTA $HOSTB"
expect "vpool pool create tcompc --profile q" "q35-virtio"
expect "vpool vm start " "tcomp-001 tcomp-002 tcomp-003 tcompb-001"
expect "vpool vm show tcompb" "tcompb-001"
expect "vpool vm list --pool " "tcomp tcompb"
expect "vpool migrate start " "tcomp tcompb"
expect "vpool migrate tcomp --to " "$HOSTA $HOSTB"
expect "vpool migrate tcomp --to $HOSTB --profile " "pc-ide q35-virtio"
expect "vpool migrate status " "$mig"
expect "vpool migrate abort " "$mig"
# Only the first argument is a name; an option already given is not offered again.
expect "vpool pool show tcomp " ""
expect "vpool vm stop tcomp-001 --force --" "--timeout --json --quiet --help"
# A new name is not completed.
expect "vpool pool create " ""
# Another catalog, by --catalog; a missing one offers nothing and creates nothing.
mkdir "$WORK/other"
VPOOL_CATALOG=$WORK/other/catalog.db vpool init --storage "$WORK/other/storage" >/dev/null
VPOOL_CATALOG=$WORK/other/catalog.db vpool profile add only-here --machine pc --disk-bus ide --nic e1000 \
    --vcpus 1 --memory 256M >/dev/null
expect "vpool --catalog $WORK/other/catalog.db profile show " "only-here"
expect "vpool --catalog=$WORK/other/catalog.db profile show " "only-here"
expect "vpool --catalog $WORK/none.db profile show " ""
check "no catalog created by completing" test ! -e "$WORK/none.db"

# Through a terminal: tmux types the keys, the screen shows the result.
sock=$WORK/tmux.sock
tmux -S "$sock" new-session -d -x 200 -y 20 \
    "env PATH=$(dirname "$VPOOL_BIN"):\$PATH VPOOL_CATALOG=$(printf %q "$VPOOL_CATALOG") PS1='$ ' bash --norc --noprofile"
tmux -S "$sock" send-keys ". '$completion'" Enter
tmux -S "$sock" send-keys "vpool pool sh" Tab "tcompb" Tab
wait_screen() {
    local _
    for _ in $(seq 50); do
        screen=$(tmux -S "$sock" capture-pane -p)
        grep -Eq "$1" <<<"$screen" && return 0
        sleep 0.1
    done
    return 1
}
# (tmux drops the blank the completion leaves at the end of the line)
if wait_screen '^\$ vpool pool show tcompb *$'; then
    ok "Tab completes a verb and a pool name in a terminal"
else
    not_ok "Tab completes a verb and a pool name in a terminal" "screen:" "$screen"
fi
tmux -S "$sock" send-keys C-u "vpool vm start tcomp-00" Tab Tab
if wait_screen 'tcomp-001 +tcomp-002 +tcomp-003'; then
    ok "Tab Tab lists the VMs in a terminal"
else
    not_ok "Tab Tab lists the VMs in a terminal" "screen:" "$screen"
fi
tmux -S "$sock" kill-server 2>/dev/null

vpool pool rm tcomp >/dev/null
vpool pool rm tcompb >/dev/null
finish
