#!/bin/bash
# Every command's --json output against docs/json.md, on a real catalog
# (envs, images, profiles, pools, VMs, migrations done, partial, resumed,
# interrupted and aborted, a drain, fsck problems, the history): the
# documents and keys the file's tables name, no other key, each value of
# its type, null only where the file allows it. Every command --help lists
# is in the file, every command and document of the file is exercised, so
# the file and the program cannot drift apart.
. "$(dirname "$0")/lib.sh"

TEST_PREFIX=tjson
doc=$top/docs/json.md
[ -r "$doc" ] || bail "no $doc"
for h in "$HOSTA" "$HOSTB"; do
    virsh -q -c "$(uri_of "$h")" version >/dev/null 2>&1 || bail "host $h is not up (scripts/hosts.sh up $h)"
done
setup_workdir

# ---- the tables of docs/json.md as one JSON spec, and the check of a document ----------
. "$(dirname "$0")/jsonspec.sh"
spec=$(json_spec "$doc") || bail "cannot read $doc"
check "docs/json.md documents some commands and documents" \
    jq -e '(.commands | length) >= 30 and (.shapes | length) >= 20' <<<"$spec"

# json_cmd COMMAND VPOOL-ARGS...: vpool --json VPOOL-ARGS exits $JSON_RC
# (default 0) and prints what docs/json.md says COMMAND prints.
declare -A ran
json_cmd() {
    local cmd=$1 prints rc problems=() line n=0 last alts
    shift
    ran[$cmd]=1
    prints=$(jq -r --arg c "$cmd" '.commands[$c] // empty' <<<"$spec")
    if [ -z "$prints" ]; then
        not_ok "'$cmd' is in docs/json.md"
        return
    fi
    vpool --json "$@" >"$WORK/out" 2>"$WORK/err"
    rc=$?
    [ "$rc" = "${JSON_RC:-0}" ] || problems+=("exit code $rc, expected ${JSON_RC:-0}: $(head -3 "$WORK/err")")
    case $prints in
        nothing)
            [ -s "$WORK/out" ] && problems+=("prints: $(head -c 200 "$WORK/out")") ;;
        "lines of "*)
            alts=${prints#lines of }
            [ -s "$WORK/out" ] || problems+=("prints nothing")
            while IFS= read -r line; do
                n=$((n + 1))
                printf '%s\n' "$line" >"$WORK/line"
                while IFS= read -r p; do problems+=("line $n: $p"); done < <(validate "$alts" "$WORK/line")
            done <"$WORK/out"
            # The stream ends with its last kind of document (the outcome).
            last=${alts##* or }
            tail -1 "$WORK/out" >"$WORK/line"
            [ -z "$(validate "$last" "$WORK/line")" ] || problems+=("the last line is not a $last")
            ;;
        *)
            while IFS= read -r p; do problems+=("$p"); done < <(validate "$prints" "$WORK/out") ;;
    esac
    if [ ${#problems[@]} -eq 0 ]; then
        ok "vpool --json $*: $prints"
    else
        not_ok "vpool --json $*: $prints" "${problems[@]:0:12}"
    fi
}

# ---- a catalog with something of everything ------------------------------------------
: >"$WORK/seen"
uria=$(uri_of "$HOSTA")
urib=$(uri_of "$HOSTB")
# A blank disk: its VMs run (the firmware finds nothing to boot) without a guest.
qemu-img create -q -f qcow2 "$WORK/blank.qcow2" 64M || bail "qemu-img create"
echo kernel >"$WORK/vmlinuz"
echo initrd >"$WORK/initrd"

json_cmd init init --storage "$STORAGE"
json_cmd "env add" env add "$HOSTA" --uri "$uria"
vpool env add "$HOSTB" --uri "$urib" --domain-type qemu >/dev/null || bail "env add $HOSTB"
vpool env add tjson-spare --uri "$urib" --domain-type qemu >/dev/null || bail "env add tjson-spare"
# The hosts of an env: one more, in maintenance and out, then removed
# (before any pool: the two envs would each see the other's domains).
json_cmd "env host add" env host add tjson-spare "$uria" --name tjson-h2
check_eq "env host add: both hosts, by name" "tjson-h2 tjson-spare" "$(jq -r '.[].name' "$WORK/out" | xargs)"
json_cmd "env host maintenance" env host maintenance tjson-spare tjson-h2
json_cmd "env host list" env host list tjson-spare
check_eq "env host list: live, one in maintenance" "true true" \
    "$(jq -r '[all(.[]; .reachable), any(.[]; .maintenance)] | join(" ")' "$WORK/out")"
json_cmd "env host resume" env host resume tjson-spare tjson-h2
json_cmd "env host rm" env host rm tjson-spare tjson-h2
json_cmd "env show" env show tjson-spare
check_eq "env show: one host left, counted" "1 1" "$(jq -r '"\(.host_count) \(.hosts | length)"' "$WORK/out")"
# A retirement, shown by env show and env list (the table's shape), then cancelled.
json_cmd "env retire" env retire tjson-spare --to "$HOSTA" --window 22:00-06:00 --wave 2 --report
check_eq "env retire: its settings" "$HOSTA 22:00-06:00 2 true retiring" \
    "$(jq -r '.retirement | "\(.to) \(.window) \(.wave) \(.report) \(.state)"' "$WORK/out")"
json_cmd "env list" env list
check_eq "env list: the retirement and the maintenance policy" "$HOSTA drain" \
    "$(jq -r '.[] | select(.name == "tjson-spare") | "\(.retirement.to) \(.on_maintenance)"' "$WORK/out")"
json_cmd "env retire" env retire tjson-spare --cancel
check_eq "env retire --cancel: no retirement" "null" "$(jq -c .retirement "$WORK/out")"
# A blank disk holds no OS for libguestfs to read: taken on its (default) declaration.
json_cmd "image add" image add blank --file "$WORK/blank.qcow2" --no-inspect
# What inspection stores for a Debian 12 master (test-guestfs.sh inspects a
# real one), given to blank's digest: every shape of an inspection without
# the appliance's minutes here. Its network is matched by MAC, so moves of
# its pools need no --accept-nic-rename.
blank_sha=$(vpool --json image show blank | jq -r .sha256)
report=$(jq -c . <<'EOF'
{"status": "ok", "os": {"type": "linux", "distribution": "debian", "version": "12.15", "product": "12.15",
 "arch": "x86_64"}, "boot": {"firmwares": "bios", "bootloader": "extlinux", "efi_system_partition": false},
 "kernel": "6.1.0-50-amd64", "initramfs": {"path": "/boot/initrd.img-6.1.0-50-amd64", "compression": "zstd",
 "modules": 210}, "disk_buses": "ide,sata,virtio", "nic_models": "e1000,rtl8139,virtio",
 "missing": [{"hardware": "scsi", "kind": "disk_bus", "driver": "virtio_scsi", "place": "initramfs"}],
 "network": {"tools": "networkd", "match": "mac", "interfaces": null, "breaks_on_rename": false}, "seconds": 21.5}
EOF
)
catalog_sql "INSERT INTO inspections(sha256, report, created)
    VALUES('$blank_sha', '$report', '2026-11-30T00:00:00Z')" || bail "inspection of blank"
vpool image add kblank --file "$WORK/blank.qcow2" --kernel "$WORK/vmlinuz" --initrd "$WORK/initrd" \
    --cmdline "console=ttyS0" >/dev/null || bail "image add kblank"
json_cmd "profile add" profile add p1 --machine pc --disk-bus ide --nic e1000 --vcpus 1 --memory 128M
vpool profile add p2 --machine q35 --disk-bus virtio --nic virtio --vcpus 1 --memory 128M --cpu host-model \
    >/dev/null || bail "profile add p2"
vpool profile add spare --machine q35 --disk-bus sata --nic none --vcpus 1 --memory 128M >/dev/null ||
    bail "profile add spare"
json_cmd "pool create" pool create tjson --image blank --env "$HOSTA" --profile p1 --size 2
vpool pool create tjsonr --image blank --env "$HOSTA" --profile p1 --size 1 --start >/dev/null ||
    bail "pool create tjsonr"
vpool pool create tjsona --image blank --env "$HOSTA" --profile p1 --size 1 >/dev/null ||
    bail "pool create tjsona"

for n in env image profile pool; do
    json_cmd "$n list" "$n" list
done
json_cmd "env show" env show "$HOSTA"
json_cmd "image show" image show blank
json_cmd "image show" image show kblank
json_cmd "image verify" image verify blank
json_cmd "profile show" profile show p1
json_cmd "profile show" profile show p2
json_cmd "pool show" pool show tjson
json_cmd "vm list" vm list
json_cmd "vm list" vm list --pool tjson
json_cmd "vm show" vm show tjson-001

# ---- migrations: done, partial then resumed, interrupted then aborted --------------------
json_cmd "migrate start --dry-run" migrate start tjson --to "$HOSTB" --profile p2 --dry-run
json_cmd "migrate start" migrate start tjson --to "$HOSTB" --profile p2 --parallel 1
id1=$(vpool migrate list --json | jq -r '.[] | select(.pool == "tjson") | .id')
json_cmd "migrate list" migrate list

# ---- a source that does not answer, declared off by its fence agent ------------------------
vpool env add tjson-gone --uri "$urib" --domain-type qemu >/dev/null || bail "env add tjson-gone"
json_cmd "env set" env set tjson-gone --fence-cmd "/bin/echo powered off"
vpool pool create tjsonf --image blank --env tjson-gone --profile p1 --size 1 >/dev/null || bail "pool create tjsonf"
# Its host is gone: the catalog is pointed at a socket nobody serves.
gone_host="env_id = (SELECT id FROM envs WHERE name = 'tjson-gone')"
catalog_sql "UPDATE hosts SET uri = 'qemu+unix:///system?socket=$WORK/gone.sock' WHERE $gone_host"
VPOOL_SOURCE_GRACE=0 vpool migrate tjsonf --to "$HOSTA" >/dev/null 2>&1 || bail "migrate tjsonf"
idf=$(vpool migrate list --json | jq -r '.[] | select(.pool == "tjsonf") | .id')
json_cmd "migrate status" migrate status "$idf"
check_eq "the fence: its agent's argv, exit status and output" '["/bin/echo","powered","off"] 0 powered off true' \
    "$(jq -r '.fences[0] | "\(.command | tojson) \(.exit_status) \(.output) \(.fenced)"' "$WORK/out")"
# The host is back: its stale definition goes, so later checks see a clean estate.
catalog_sql "UPDATE hosts SET uri = '$urib' WHERE $gone_host"
virsh_on "$HOSTB" undefine tjsonf-001 >/dev/null || bail "undefine tjsonf-001"
json_cmd "migrate status" migrate status "$id1"
json_cmd "migrate status --watch" migrate status "$id1" --watch

# Some process holds a lock on the VM's overlay: it is not handed over, the
# run ends partial.
lock_disk "$(overlay_of tjsonr-001)"
locker=$LOCKER
JSON_RC=1 json_cmd "migrate start" migrate tjsonr --to "$HOSTB" --shutdown-timeout 2
idr=$(vpool migrate list --json | jq -r '.[] | select(.pool == "tjsonr") | .id')
check_eq "the partial run's outcome says why" "partial true" \
    "$(tail -1 "$WORK/out" | jq -r '"\(.state) \(.error != null)"')"
json_cmd "migrate status" migrate status "$idr"
check_eq "the failed VM's error is in its status" "true" \
    "$(vpool migrate status "$idr" --json | jq '.vms[0].error | type == "string"')"
kill "$locker"
wait "$locker" 2>/dev/null
json_cmd "migrate resume" migrate resume "$idr"

VPOOL_FAULT=migrate.provisioned:1 vpool migrate tjsona --to "$HOSTB" >/dev/null 2>&1
check_eq "a migration killed after provisioning" "137" "$?"
ida=$(vpool migrate list --json | jq -r '.[] | select(.pool == "tjsona") | .id')
JSON_RC=1 json_cmd "migrate status --watch" migrate status "$ida" --watch
check_eq "the watch's outcome: interrupted" "interrupted" "$(tail -1 "$WORK/out" | jq -r .state)"
json_cmd "migrate status" migrate status "$ida"
json_cmd "migrate abort" migrate abort "$ida"

json_cmd "env drain" env drain "$HOSTB" --to "$HOSTA" --parallel 1 --shutdown-timeout 2
json_cmd "migrate list" migrate list


# ---- fsck, clean and not; a VM whose manifest cannot be read ------------------------------
json_cmd fsck fsck
m=$(vpool vm show tjson-001 --json | jq -r .delta_path)/manifest.json
cp "$m" "$WORK/manifest.save"
jq '.generation = 99' "$WORK/manifest.save" >"$m"
JSON_RC=1 json_cmd fsck fsck
check "fsck found the planted generation" jq -e '.problems | length > 0' "$WORK/out"
rm "$m"
json_cmd "vm show" vm show tjson-001
check_eq "an unreadable manifest: its error, no owner" "true null" \
    "$(jq -r '"\(.manifest_error | type == "string") \(.manifest_owner)"' "$WORK/out")"
cp "$WORK/manifest.save" "$m"
json_cmd "pool show" pool show tjson

# ---- config: a setting from the file, one from the environment -----------------------------
echo "parallel = 3" >"$VPOOL_CONFIG"
VPOOL_SHUTDOWN_TIMEOUT=30 json_cmd "config show" config show
check_eq "config: the file's line, the environment's variable" "3 true 1 VPOOL_SHUTDOWN_TIMEOUT" \
    "$(jq -r '"\(.parallel.value) \(.parallel.file == env.VPOOL_CONFIG) \(.parallel.line) \(.shutdown_timeout.variable)"' "$WORK/out")"
: >"$VPOOL_CONFIG"
json_cmd "config show" config show --profile p1

# ---- the verbs that print nothing -----------------------------------------------------
json_cmd "vm start" vm start tjson-001
json_cmd "vm stop" vm stop tjson-001 --timeout 1 --force
json_cmd "pool start" pool start tjsona
json_cmd "pool stop" pool stop tjsona --timeout 1 --force
json_cmd "pool rm" pool rm tjsona
json_cmd "image rm" image rm kblank
json_cmd "profile rm" profile rm spare
json_cmd "env rm" env rm tjson-spare

# ---- tokens: one used (last_used a string), one never (null) ----------------------------
json_cmd "token add" token add tjson-ci --role viewer
vpool --quiet token add tjson-ops --role admin >/dev/null || bail "token add tjson-ops"
catalog_sql "UPDATE tokens SET last_used = '2026-11-27T10:00:00Z' WHERE name = 'tjson-ci'"
json_cmd "token list" token list
check_eq "token list: one used, one never" "2026-11-27T10:00:00Z null" \
    "$(jq -r 'map(.last_used | tostring) | join(" ")' "$WORK/out")"
json_cmd "token rm" token rm tjson-ops

# ---- the catalog as a whole: exported, backed up, imported into a new one ------------------
json_cmd "catalog export" catalog export -
cp "$WORK/out" "$WORK/export.json"
json_cmd "catalog backup" catalog backup "$WORK/backup.db"
vpool --catalog "$WORK/imported.db" init --storage "$STORAGE" >/dev/null || bail "init of the import's catalog"
json_cmd "catalog import" --catalog "$WORK/imported.db" catalog import "$WORK/export.json"

json_cmd history history
check_eq "the history holds commands and steps" "command step" \
    "$(vpool history --json | jq -r 'map(.type) | unique | join(" ")')"
json_cmd history history --pool tjson

# ---- a host's drain: an env of both hosts, its pool on one, drained to the other -------------
# Last: this env sees the hosts the envs above see.
vpool env add tjson-pair --domain-type qemu --host "pa=$uria" --host "pb=$urib" >/dev/null || bail "env add tjson-pair"
vpool env host drain tjson-pair pb >/dev/null || bail "pb in maintenance"
vpool pool create tjsonp --image blank --env tjson-pair --profile p1 --size 1 >/dev/null || bail "pool create tjsonp"
vpool env host resume tjson-pair pb >/dev/null || bail "pb out of maintenance"
json_cmd "env host drain" env host drain tjson-pair pa
check_eq "env host drain: the VM now on pb" "pb" "$(vpool vm show tjsonp-001 --json | jq -r .host)"

# ---- the file and the program agree on what exists ----------------------------------------
nouns=$(vpool --help | awk '/^Nouns:/ { f = 1; next } f && /^  [a-z]/ { print $1; next } f { exit }')
undocumented=()
verbs_of() { vpool "$@" --help | awk '/^Verbs:/ { f = 1; next } f && /^  [a-z]/ { print $1; next } f { exit }'; }
# The commands under WORDS: WORDS itself, or each of its verbs' (a verb may
# have verbs of its own: env host add).
commands_of() {
    local v verbs
    verbs=$(verbs_of "$@")
    [ -n "$verbs" ] || { echo "$*"; return; }
    for v in $verbs; do commands_of "$@" "$v"; done
}
for n in $nouns; do
    while IFS= read -r c; do
        jq -e --arg c "$c" '.commands | has($c)' <<<"$spec" >/dev/null || undocumented+=("$c")
    done < <(commands_of "$n")
done
check_eq "every command --help lists is in docs/json.md" "" "${undocumented[*]}"
unrun=$(jq -r '.commands | keys[]' <<<"$spec" | while IFS= read -r c; do [ -n "${ran[$c]:-}" ] || echo "$c"; done | xargs)
check_eq "every command of docs/json.md was checked here" "" "$unrun"
unseen=$(comm -23 <(jq -r '.shapes | keys[]' <<<"$spec" | sort) <(sed 's/^shape //' "$WORK/seen" | sort -u) | xargs)
check_eq "every document of docs/json.md was seen in some output" "" "$unseen"

finish
