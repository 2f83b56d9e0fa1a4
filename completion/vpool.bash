# bash completion for vpool(1)
#
# Nouns, verbs, options and their fixed values are read from vpool's own
# --help (cached for the life of the shell), so the completion follows the
# program it completes. The names of envs, images, profiles, pools,
# migrations and tokens come from the catalog through 'vpool --json NOUN list', which
# reads the catalog only and never contacts a hypervisor; VM names follow
# from each pool's name and size (POOL-001 .. POOL-N). A verb whose help
# lists verbs of its own ("env host") takes one of them next.

declare -gA _vpool_help_cache=()

# _vpool_help BIN [NOUN [VERB]]: the output of 'BIN [NOUN [VERB]] --help'.
_vpool_help() {
    local key="$*"
    if [[ -z ${_vpool_help_cache[$key]+set} ]]; then
        _vpool_help_cache[$key]=$("$@" --help 2>/dev/null)
    fi
    printf '%s\n' "${_vpool_help_cache[$key]}"
}

# _vpool_section BIN ARGS... -- HEADING: the first word of each indented line
# under HEADING ("Nouns:", "Verbs:") in the help of ARGS.
_vpool_section() {
    local heading=${*: -1} line in=0
    while IFS= read -r line; do
        if [[ $line == "$heading" ]]; then
            in=1
        elif ((in)); then
            [[ $line =~ ^\ \ ([a-z][a-z0-9-]*)\  ]] || break
            printf '%s\n' "${BASH_REMATCH[1]}"
        fi
    done < <(_vpool_help "${@:1:$#-2}")
}

# _vpool_usage BIN ARGS...: the usage lines of ARGS' help as one line, the
# leading "Usage: vpool ARGS" cut off.
_vpool_usage() {
    local line text=""
    while IFS= read -r line; do
        [[ -z $line ]] && break
        text+=" $line"
    done < <(_vpool_help "$@")
    text=${text# Usage: vpool}
    local w
    for w in "${@:2}"; do
        text=${text# "$w"}
    done
    # init and fsck print their name once.
    printf '%s\n' "$text"
}

# _vpool_catalog_names BIN CATARGS KIND: names of KIND (env, image, profile,
# pool, vm, migration, token) in the catalog; CATARGS is the --catalog option given.
_vpool_catalog_names() {
    local bin=$1 kind=$3
    local -a cat=()
    [[ -n $2 ]] && cat=(--catalog "$2")
    local noun=$kind key=name
    case $kind in
        vm) noun=pool ;;
        migration) noun=migrate key=id ;;
    esac
    local line name=""
    while IFS= read -r line; do
        if [[ $line =~ ^\ \ \ \ \"$key\":\"?([A-Za-z0-9_.-]+)\"?,?$ ]]; then
            name=${BASH_REMATCH[1]}
            [[ $kind != vm ]] && printf '%s\n' "$name"
        elif [[ $kind == vm && $line =~ ^\ \ \ \ \"size\":([0-9]+),?$ && -n $name ]]; then
            local i n=${BASH_REMATCH[1]}
            for ((i = 1; i <= n; i++)); do
                printf '%s-%03d\n' "$name" "$i"
            done
        fi
    done < <("$bin" "${cat[@]}" --json "$noun" list 2>/dev/null)
}

# The candidates for the value of option OPT, whose usage shows SPEC
# (a placeholder such as FILE, or choices such as pc|q35).
_vpool_option_values() {
    local bin=$1 catalog=$2 opt=$3 spec=$4 cur=$5
    case $opt in
        --env | --to | --source-fenced) _vpool_catalog_names "$bin" "$catalog" env; return ;;
        --image) _vpool_catalog_names "$bin" "$catalog" image; return ;;
        --profile) _vpool_catalog_names "$bin" "$catalog" profile; return ;;
        --pool) _vpool_catalog_names "$bin" "$catalog" pool; return ;;
        --vm) _vpool_catalog_names "$bin" "$catalog" vm; return ;;
        --on-host-failure)
            printf '%s\n' none report evacuate
            local env
            while IFS= read -r env; do printf 'evacuate:%s\n' "$env"; done < <(_vpool_catalog_names "$bin" "$catalog" env)
            return ;;
        --uri | --host) printf '%s\n' qemu:///system qemu:///session qemu+ssh:// qemu+tcp:// qemu+tls:// 'qemu+unix:///system?socket='; return ;;
    esac
    if [[ $spec == *'|'* ]]; then
        printf '%s\n' ${spec//|/ }
        return
    fi
    # Comma-separated lists of image add: complete the item after the last comma.
    local items=""
    case $opt in
        --disk-buses) items="ide sata virtio scsi" ;;
        --nic-models) items="e1000 rtl8139 virtio" ;;
        --firmware) items="bios uefi" ;;
    esac
    if [[ -n $items ]]; then
        local head="" i
        [[ $cur == *,* ]] && head=${cur%,*},
        for i in $items; do
            [[ ,$head == *,$i,* ]] || printf '%s\n' "$head$i"
        done
        return
    fi
    case $spec in
        FILE | PATH) compgen -f -- "$cur" ;;
        DIR) compgen -d -- "$cur" ;;
    esac
}

_vpool() {
    local line=${COMP_LINE:0:COMP_POINT}
    local -a words
    read -ra words <<<"$line"
    [[ $line =~ [[:space:]]$ || ${#words[@]} -eq 0 ]] && words+=("")
    local cur=${words[-1]}
    local bin=${words[0]}
    [[ $bin == "~/"* ]] && bin=$HOME/${bin#"~/"}
    COMPREPLY=()

    # Global options, then the noun, then its verb (and the verb's own
    # verb, as in "env host add"), then the rest.
    local i=1 catalog="" noun="" verb="" sub="" w
    local -a rest=()
    while ((i < ${#words[@]} - 1)); do
        w=${words[i]}
        if [[ -z $noun ]]; then
            case $w in
                --catalog) ((i++)); catalog=${words[i]} ;;
                --catalog=*) catalog=${w#--catalog=} ;;
                -*) ;;
                *) noun=$w ;;
            esac
        elif [[ -z $verb && $w != -* ]] && [[ -n $(_vpool_section "$bin" "$noun" -- "Verbs:") ]]; then
            verb=$w
            if [[ $noun == migrate ]] && ! _vpool_section "$bin" migrate -- "Verbs:" | grep -qx -- "$w"; then
                # "vpool migrate POOL --to ENV": the pool stands where the verb would.
                verb=start
                rest+=("$w")
            fi
        elif [[ -z $sub && $w != -* && ${#rest[@]} -eq 0 ]] &&
            [[ -n $(_vpool_section "$bin" "$noun" "$verb" -- "Verbs:") ]]; then
            sub=$w
        else
            rest+=("$w")
        fi
        ((i++))
    done

    local -a cands=()
    local usage="" haveverbs="" subverbs=""
    if [[ -n $noun ]]; then
        haveverbs=$(_vpool_section "$bin" "$noun" -- "Verbs:")
        [[ -n $verb && -z $sub && ${#rest[@]} -eq 0 ]] && subverbs=$(_vpool_section "$bin" "$noun" "$verb" -- "Verbs:")
        if [[ -n $sub ]]; then
            usage=$(_vpool_usage "$bin" "$noun" "$verb" "$sub")
        elif [[ -n $verb ]]; then
            usage=$(_vpool_usage "$bin" "$noun" "$verb")
        elif [[ -z $haveverbs ]]; then
            usage=$(_vpool_usage "$bin" "$noun")
        fi
    else
        usage=$(_vpool_help "$bin" | sed -n 's/^  \(--[a-z-]*\) \([A-Z]*\) .*/\1 \2/p; s/^  \(--[a-z-]*\)  .*/\1/p' | tr '\n' ' ')
    fi

    # Options in the usage, and the spec of the value of each that takes one.
    local -A spec=() many=()
    local -a opts=() toks
    read -ra toks <<<"${usage//[\[\]]/ }"
    for ((i = 0; i < ${#toks[@]}; i++)); do
        if [[ ${toks[i]} == --* ]]; then
            opts+=("${toks[i]}")
            # A value: NAME, NAME= ("--host [HOST=]URI"), NAME... or choices.
            if ((i + 1 < ${#toks[@]})) && [[ ${toks[i + 1]} != -* && ${toks[i + 1]} =~ ^[A-Z]+=?(\.\.\.)?$|\| ]]; then
                spec[${toks[i]}]=${toks[i + 1]}
            fi
            # An option given once per item ("--host [HOST=]URI...").
            [[ ${toks[i + 1]:-} == *... || ${toks[i + 2]:-} == [A-Z]*... ]] && many[${toks[i]}]=1
        fi
    done
    [[ -n $noun ]] && opts+=(--json --quiet --help)

    # The value of an option: "--opt VALUE" or "--opt=VALUE".
    local prev=""
    ((${#words[@]} >= 2)) && prev=${words[-2]}
    if [[ $cur == --*=* ]]; then
        local o=${cur%%=*} v
        if [[ -n ${spec[$o]+set} ]]; then
            while IFS= read -r v; do cands+=("$o=$v"); done < <(_vpool_option_values "$bin" "$catalog" "$o" "${spec[$o]}" "${cur#*=}")
        fi
    elif [[ $prev == --* && -n ${spec[$prev]+set} ]]; then
        local v
        while IFS= read -r v; do cands+=("$v"); done < <(_vpool_option_values "$bin" "$catalog" "$prev" "${spec[$prev]}" "$cur")
    elif [[ $cur == -* ]]; then
        local o
        for o in "${opts[@]}"; do
            # An option already given is not offered again, but for one given per item.
            [[ " ${rest[*]} " == *" $o "* && -z ${many[$o]:-} ]] || cands+=("$o")
        done
    elif [[ -z $noun ]]; then
        mapfile -t cands < <(_vpool_section "$bin" -- "Nouns:")
    elif [[ -n $subverbs ]]; then
        mapfile -t cands <<<"$subverbs"
    elif [[ -z $verb && -n $haveverbs ]]; then
        mapfile -t cands <<<"$haveverbs"
        [[ $noun == migrate ]] && mapfile -t -O "${#cands[@]}" cands < <(_vpool_catalog_names "$bin" "$catalog" pool)
    else
        # The first positional argument: a name of what the usage calls it.
        local npos=0 j
        for ((j = 0; j < ${#rest[@]}; j++)); do
            if [[ ${rest[j]} == --* ]]; then
                [[ ${rest[j]} != *=* && -n ${spec[${rest[j]}]+set} ]] && ((j++))
            else
                ((npos++))
            fi
        done
        local first=""
        read -r first _ <<<"$usage"
        if ((npos == 0)); then
            local kind=""
            case $first in
                NAME) [[ $verb != add && $verb != create ]] && kind=$noun ;;
                POOL) kind=pool ;;
                ENV) kind=env ;;
                ID) [[ $noun == migrate ]] && kind=migration ;;
            esac
            [[ -n $kind ]] && mapfile -t cands < <(_vpool_catalog_names "$bin" "$catalog" "$kind")
        fi
    fi

    local c
    for c in "${cands[@]}"; do
        [[ -n $c && $c == "$cur"* ]] && COMPREPLY+=("$c")
    done
    # bash splits the word at ':' and '=': hand back only the part after them.
    if [[ $cur == *[:=]* ]]; then
        local lead=${cur%"${cur##*[:=]}"}
        for i in "${!COMPREPLY[@]}"; do
            COMPREPLY[i]=${COMPREPLY[i]#"$lead"}
        done
    fi
    # A directory or a value still being built ("qemu+ssh://", "ide,") goes on.
    if ((${#COMPREPLY[@]} == 1)) && [[ ${COMPREPLY[0]} == */ || ${COMPREPLY[0]} == *[,=] || ${COMPREPLY[0]} == *:// ]]; then
        compopt -o nospace 2>/dev/null
    fi
    return 0
}

complete -F _vpool vpool
