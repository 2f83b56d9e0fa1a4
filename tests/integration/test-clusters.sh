#!/bin/bash
# Clusters end to end, as a user sees them: an env "east" of three hosts and
# an env "west" of two, every host reached as qemu+tls:// with certificate
# verification on. A pool of 12 running guests spread over east; one host
# drained live (the guests' own boot count unchanged); the pool migrated to
# west with other hardware, every guest booting there on its own disk; a
# source host killed in the middle of the migration back, the migration
# partial naming it, and `resume` finishing it once the host is back; a host
# whose certificate another CA signed refused; west refused for a pool it
# cannot hold.
#
# Each guest's own data: on its first boot the test guest writes /owner (the
# UUID of the domain that booted the disk first) and counts its boots in
# /bootcount, and prints both on its console at every boot. A guest that
# kept its disk prints its own UUID as owner and a boot count one past its
# last; another VM's disk would name another owner, a fresh one boot=1.
. "$(dirname "$0")/lib.sh"

TEST_PREFIX=vdi
read -r -a CLUSTER <<<"${VPOOL_TEST_CLUSTER_HOSTS:-hostw1 hostw2 hostw3 hostz1 hostz2}"
[ ${#CLUSTER[@]} = 5 ] || bail "VPOOL_TEST_CLUSTER_HOSTS must name 5 hosts (3 for east, 2 for west)"
EAST=("${CLUSTER[@]:0:3}")
WEST=("${CLUSTER[@]:3:2}")
ROGUE=${CLUSTER[0]}-rogue
TEST_HOSTS=("${CLUSTER[@]}")
# No-ops when scripts/test.sh started them already.
"$HOSTS_SH" up --tls "${CLUSTER[@]}" >/dev/null || bail "cannot start ${CLUSTER[*]} with TLS"
"$HOSTS_SH" up --tls --cert rogue "$ROGUE" >/dev/null || bail "cannot start $ROGUE"
require_hosts "${CLUSTER[@]}"
setup_workdir
# A source host that stops answering counts as unreachable after this long.
export VPOOL_SOURCE_GRACE=2

tls_uri() { "$HOSTS_SH" uri --tls "$1"; }
# diag_lines TEXT: each line of TEXT as a TAP comment.
diag_lines() { sed 's/^/# /' <<<"$1"; }
t_start=$SECONDS
pool=vdi
vms=$(for i in $(seq -w 1 12); do echo "$pool-0$i"; done | xargs)

# by_host HOST...: "HOST=N ..." from vm list's HOST column.
by_host() {
    vpool vm list --pool $pool | awk -v hosts="$*" 'NR > 1 { n[$3]++ }
        END { k = split(hosts, h, " "); for (i = 1; i <= k; i++) printf "%s%s=%d", (i > 1 ? " " : ""), h[i], n[h[i]] }'
}
# The same from vm list --json.
by_host_json() {
    local h list
    list=$(vpool vm list --pool $pool --json)
    for h in "$@"; do echo "$h=$(jq --arg h "$h" '[.[] | select(.host == $h)] | length' <<<"$list")"; done | xargs
}
# Each VM defined on exactly one host of the five, the host vm list names.
# Prints the VMs for which that is not so, with where they are defined.
misplaced() {
    local h vm list
    declare -A at=()
    for h in "${CLUSTER[@]}"; do
        for vm in $(virsh_on "$h" list --all --name | grep "^$pool-"); do at[$vm]+="$h "; done
    done
    list=$(vpool vm list --pool $pool --json)
    for vm in $vms; do
        [ "${at[$vm]:-}" = "$(jq -r --arg v "$vm" '.[] | select(.name == $v) | .host' <<<"$list") " ] ||
            echo "$vm on [${at[$vm]:-}]"
    done
}
# guest_ok VM BOOT DISK NIC: VM's last boot line names its own UUID as
# domain and owner, with that boot count, disk and NIC.
guest_ok() {
    local line
    line=$(console_line "$1")
    [ "$line" = "VPOOL-GUEST uuid=${uuid[$1]} boot=$2 disk=$3 owner=${uuid[$1]} nic=$4 master=vpool-test-master_1" ] ||
        { echo "$line"; return 1; }
}
boot_lines() { grep -ac 'VPOOL-GUEST uuid=' "$STORAGE/logs/$1.log"; }
states() { vpool vm list --pool $pool --json | jq -r '.[].state' | sort | uniq -c | sed -E 's/^ *([0-9]+) (.*)/\2=\1/' | xargs; }

# --- 1. two envs of TLS hosts -------------------------------------------------------
vpool init --storage "$STORAGE" >/dev/null || bail "init failed"
host_args() { local h; for h in "$@"; do printf -- '--host\n%s=%s\n' "$h" "$(tls_uri "$h")"; done; }
mapfile -t east_args < <(host_args "${EAST[@]}")
mapfile -t west_args < <(host_args "${WEST[@]}")
check "env add east: ${EAST[*]} over TLS" vpool env add east --domain-type qemu "${east_args[@]}"
check "env add west: ${WEST[*]} over TLS" vpool env add west --domain-type qemu "${west_args[@]}"
check_eq "env list: east of 3 hosts, west of 2" "east 3 west 2" "$(vpool env list | awk 'NR > 1 { print $1, $2 }' | xargs)"
for env in east west; do
    show=$(vpool env show $env --json)
    [ $env = east ] && want=("${EAST[@]}") || want=("${WEST[@]}")
    check_eq "env show $env --json: its hosts, each by its qemu+tls:// URI" \
        "$(for h in "${want[@]}"; do echo "$h $(tls_uri "$h")"; done | xargs)" \
        "$(jq -r '.hosts[] | "\(.name) \(.uri)"' <<<"$show" | xargs)"
    check_eq "env show $env --json: each host reachable, with memory and free memory" "${#want[@]}" \
        "$(jq '[.hosts[] | select(.reachable and .unreachable_since == null and .memory_kib > 0
                 and .memory_free_kib > 0 and .memory_free_kib <= .memory_kib and .cpus > 0)] | length' <<<"$show")"
done
list=$(vpool env host list east)
check "env host list east: a table of the hosts" grep -Eq "^NAME +REACHABLE +SINCE +MAINT +CPUS +MEMORY +FREE" <<<"$list"
for h in "${EAST[@]}"; do
    check "env host list east: $h reachable, not in maintenance, no VM" \
        grep -Eq "^$h +yes +- +no +[0-9]+ +[0-9.]+ GiB +[0-9.]+ GiB +0 +0 +0 +qemu\+tls://" <<<"$list"
done

# The test guest, staying up.
add_desktop_image
vpool profile add pc-ide --machine pc --disk-bus ide --nic e1000 --vcpus 1 --memory 128M >/dev/null ||
    bail "profile add pc-ide failed"
vpool profile add q35-virtio --machine q35 --disk-bus virtio --nic virtio --vcpus 1 --memory 128M >/dev/null ||
    bail "profile add q35-virtio failed"

# --- 2. a host whose certificate another CA signed ------------------------------------
# First, while nothing runs: the snapshot compares every host's domains.
expect_fail "env host add east of $ROGUE (another CA's certificate): refused, naming its URI and the CA" 1 \
    "^vpool: .*cannot connect to '$(sed 's/[].[?+*()|^$\\]/\\&/g' <<<"$(tls_uri "$ROGUE")")': authentication failed: .*: the host's certificate is not signed by the CA in '.*/cacert\.pem', or does not name '[0-9.]+'$" \
    vpool env host add east "$(tls_uri "$ROGUE")" --name "$ROGUE"
check_eq "env host list east: still its 3 hosts" "${EAST[*]}" "$(vpool env host list east --json | jq -r '.[].name' | xargs)"

# --- 3. a pool of 12 running guests spread over east ------------------------------------
t0=$SECONDS
check "pool create $pool --size 12 --start on east" \
    vpool pool create $pool --image desktop --env east --profile pc-ide --size 12 --start
diag "pool create: $((SECONDS - t0)) s"
check_eq "vm list: spread 4/4/4 over east's hosts" "${EAST[0]}=4 ${EAST[1]}=4 ${EAST[2]}=4" "$(by_host "${EAST[@]}")"
check_eq "vm list --json: the same" "${EAST[0]}=4 ${EAST[1]}=4 ${EAST[2]}=4" "$(by_host_json "${EAST[@]}")"
check_eq "each VM's domain is on the host vm list names, and on no other" "" "$(misplaced)"
check_eq "every VM running" "running=12" "$(states)"
check "every guest booted (its console's boot line)" wait_boot 400 1 $vms
diag "all 12 guests up: $((SECONDS - t0)) s after pool create"
declare -A uuid
for vm in $vms; do uuid[$vm]=$(vpool vm show "$vm" --json | jq -r .uuid); done
for vm in $vms; do
    check "$vm: boot=1 on IDE and e1000, the disk its own" guest_ok "$vm" 1 sda e1000
done

# --- 4. west too small for the pool with much memory ------------------------------------
# Each VM as big as a whole host of west: not one of them fits.
big=$(($(vpool env show west --json | jq '.hosts[0].memory_kib') / 1024))
vpool profile add big --machine q35 --disk-bus virtio --nic virtio --vcpus 1 --memory "${big}M" >/dev/null ||
    bail "profile add big failed"
expect_fail "migrate to west with $big MiB per VM: refused, naming the shortfall" 1 \
    "^vpool: env 'west' cannot hold 12 running VMs of $big MiB \\([0-9]+ MiB in all\\): its 2 usable hosts have [0-9]+ MiB free, room for 0 of them$" \
    vpool migrate $pool --to west --profile big
check_eq "no migration recorded" "0" "$(vpool migrate list --json | jq length)"

# --- 5. a host drained live ----------------------------------------------------------------
drained=${EAST[0]}
on_drained=$(vpool vm list --pool $pool --json | jq -r --arg h "$drained" '.[] | select(.host == $h) | .name' | xargs)
t0=$SECONDS
out=$(vpool env host drain east "$drained" 2>&1)
check_eq "env host drain east $drained exits 0" "0" "$?"
diag "drain: $((SECONDS - t0)) s"
diag_lines "$out"
drain_id=$(sed -n 's/^migration \([0-9]*\)$/\1/p' <<<"$out")
check "it says the host is in maintenance" grep -q "^host $drained of env east in maintenance$" <<<"$out"
check "it says its migration moved the 4 VMs" grep -q "^migration $drain_id done: pool $pool, 4 VMs now on env east" <<<"$out"
check_eq "vm list: the other two east hosts hold 6 each" "$drained=0 ${EAST[1]}=6 ${EAST[2]}=6" "$(by_host "${EAST[@]}")"
check_eq "each VM's domain is on the host vm list names, and on no other" "" "$(misplaced)"
check_eq "$drained holds no domain" "" "$(virsh_on "$drained" list --all --name | xargs)"
check_eq "env host list --json: $drained in maintenance, no VM" "true 0" \
    "$(vpool env host list east --json | jq -r --arg h "$drained" '.[] | select(.name == $h) | "\(.maintenance) \(.vm_count)"')"
status=$(vpool --json migrate status "$drain_id")
check_eq "migrate status: its 4 VMs done, from $drained to the other hosts" \
    "$(for vm in $on_drained; do echo "$vm done $drained"; done | xargs)" \
    "$(jq -r --arg a "${EAST[1]}" --arg b "${EAST[2]}" \
        '.vms[] | "\(.vm) \(.step) \(.source_host)" + (if .target_host == $a or .target_host == $b then "" else " to " + .target_host end)' \
        <<<"$status" | xargs)"
steps=$(vpool --json history --pool $pool | jq -c --argjson m "$drain_id" '[.[] | select(.type == "step" and .migration == $m)]')
for vm in $on_drained; do
    check "$vm: the journal says it moved live, with its downtime" jq -e --arg v "$vm" \
        '[.[] | select(.vm == $v) | .detail] as $d | ($d | index("live")) != null and
         any($d[]; test("^moved live to host \u0027[^\u0027]+\u0027, downtime [0-9]+ ms$")) and
         ($d | index("running (moved live)")) != null' <<<"$steps"
    check_eq "$vm: the guest never rebooted (one boot line, boot=1)" "1 1" "$(boot_lines "$vm") $(console_field "$vm" boot)"
done
diag_lines "$(jq -r '.[] | select((.detail // "") | test("^moved live")) | "\(.vm): \(.detail)"' <<<"$steps")"
check_eq "every VM running" "running=12" "$(states)"
check "env host resume east $drained" vpool env host resume east "$drained"
check_eq "env host list: $drained out of maintenance" "false" \
    "$(vpool env host list east --json | jq -r --arg h "$drained" '.[] | select(.name == $h) | .maintenance')"

# --- 6. to west, with other hardware ------------------------------------------------------
t0=$SECONDS
out=$(vpool migrate $pool --to west --profile q35-virtio --shutdown-timeout 60 2>&1)
check_eq "migrate $pool to west, q35 with virtio disk and NIC: exits 0" "0" "$?"
diag "migration to west: $((SECONDS - t0)) s"
check "it says the pool is on west with its new profile" grep -q "12 VMs now on env west with profile q35-virtio" <<<"$out"
check_eq "vm list: spread 6/6 over west's hosts" "${WEST[0]}=6 ${WEST[1]}=6" "$(by_host "${WEST[@]}")"
check_eq "east's hosts hold no domain" "" "$(for h in "${EAST[@]}"; do virsh_on "$h" list --all --name; done | xargs)"
check_eq "each VM's domain is on the host vm list names, and on no other" "" "$(misplaced)"
check "every guest booted again on west" wait_boot 400 2 $vms
diag "all 12 guests up on west: $((SECONDS - t0)) s after the migration began"
for vm in $vms; do
    check "$vm: boot=2 on virtio disk and NIC, its own disk" guest_ok "$vm" 2 vda virtio_net
done
# The live-moved guests were alive: each shut down on the migration's ACPI
# request, and only then.
check_eq "every guest shut down cleanly once, when the migration asked" \
    "$(for vm in $vms; do echo "$vm:1"; done | xargs)" \
    "$(for vm in $vms; do echo "$vm:$(grep -ac "VPOOL-GUEST shutdown uuid=${uuid[$vm]}" "$STORAGE/logs/$vm.log")"; done | xargs)"
check_eq "fsck clean" "" "$(fsck_kinds)"

# --- 7. a source host killed in the middle of the migration back ---------------------------
# One VM at a time, so that most are still pending when the host dies: its
# libvirtd killed at once, then its guests with it.
dead=${WEST[1]}
hosts_dir=${VPOOL_HOSTS_DIR:-/var/lib/vpool-hosts}
t0=$SECONDS
vpool migrate $pool --to east --profile pc-ide --parallel 1 --shutdown-timeout 60 >"$WORK/mig.out" 2>"$WORK/mig.err" &
mig_pid=$!
deadline=$((SECONDS + 300))
until id=$(sed -n 's/^migration \([0-9]*\)$/\1/p' "$WORK/mig.out") && [ -n "$id" ] &&
    [ "$(vpool migrate list --json | jq --argjson m "$id" '.[] | select(.id == $m) | .done')" -ge 2 ]; do
    [ $SECONDS -lt $deadline ] || break
    sleep 0.3
done
kill -KILL "$(cat "$hosts_dir/$dead/libvirtd.pid")" || bail "cannot kill $dead's libvirtd"
"$HOSTS_SH" down "$dead" >/dev/null 2>&1 || bail "cannot take $dead down"
wait $mig_pid
check_eq "the migration exits 1" "1" "$?"
diag "migration back, until it stopped: $((SECONDS - t0)) s"
diag_lines "$(cat "$WORK/mig.err")"
check "it ends partial, VMs left" grep -Eq "^vpool: migration $id partial: ([0-9]|1[01]) of 12 VMs moved" "$WORK/mig.err"
status=$(vpool --json migrate status "$id")
check_eq "migrate status: partial" "partial" "$(jq -r .state <<<"$status")"
check_eq "migrate status: every VM left is one of $dead's, with an error naming it" "" \
    "$(jq -r --arg h "$dead" '.vms[] | select(.step != "done") |
        select(.source_host != $h or (.error | contains("host \u0027" + $h + "\u0027 of env \u0027west\u0027") | not)) |
        "\(.vm) from \(.source_host): \(.error)"' <<<"$status")"
check_eq "every VM of ${WEST[0]} moved" "" \
    "$(jq -r --arg h "${WEST[0]}" '.vms[] | select(.source_host == $h and .step != "done") | .vm' <<<"$status")"

t1=$SECONDS
out=$(vpool migrate resume "$id" 2>&1)
check_eq "resume while $dead is down: exits 1" "1" "$?"
check "it says $dead does not answer and is not fenced" \
    grep -q "host '$dead' of env 'west' does not answer and is not fenced" <<<"$out"

diag "resume while $dead is down: $((SECONDS - t1)) s"
t1=$SECONDS
"$HOSTS_SH" up --tls "$dead" >/dev/null || bail "cannot bring $dead back"
diag "$dead back up: $((SECONDS - t1)) s"
t1=$SECONDS
out=$(vpool migrate resume "$id" 2>&1)
check_eq "resume once $dead is back: exits 0" "0" "$?"
check "it says the migration is done" grep -q "^migration $id done" <<<"$out"
diag "resume: $((SECONDS - t1)) s"
check_eq "migrate status: 12/12 done" "done 12 12" "$(vpool --json migrate status "$id" | jq -r '"\(.state) \(.done) \(.total)"')"
check_eq "west's hosts hold no domain" "" "$(for h in "${WEST[@]}"; do virsh_on "$h" list --all --name; done | xargs)"
check_eq "each VM's domain is on the host vm list names, and on no other" "" "$(misplaced)"
check_eq "vm list: spread 4/4/4 over east again" "${EAST[0]}=4 ${EAST[1]}=4 ${EAST[2]}=4" "$(by_host "${EAST[@]}")"
check_eq "fsck clean" "" "$(fsck_kinds)"
# The guests that died with their host come back shut off; the others run.
list=$(vpool vm list --pool $pool --json)
status=$(vpool --json migrate status "$id")
check_eq "every VM of ${WEST[0]} runs on east" "" \
    "$(for vm in $(jq -r --arg h "${WEST[0]}" '.vms[] | select(.source_host == $h) | .vm' <<<"$status"); do
        jq -r --arg v "$vm" '.[] | select(.name == $v and .state != "running") | "\(.name) \(.state)"' <<<"$list"
    done)"
check_eq "only VMs of $dead are shut off" "" \
    "$(for vm in $(jq -r '.[] | select(.state != "running") | .name' <<<"$list"); do
        jq -r --arg v "$vm" --arg h "$dead" '.vms[] | select(.vm == $v and .source_host != $h) | .vm' <<<"$status"
    done)"
t1=$SECONDS
check "pool start $pool: the guests that died with $dead" vpool pool start $pool
diag "pool start: $((SECONDS - t1)) s"
check_eq "every VM running" "running=12" "$(states)"
diag "migration back and restart: $((SECONDS - t0)) s"

check "pool rm $pool --force" vpool pool rm $pool --force
check_eq "no domain left on any host" "" "$(for h in "${CLUSTER[@]}"; do virsh_on "$h" list --all --name; done | xargs)"
diag "suite: $((SECONDS - t_start)) s"

finish
