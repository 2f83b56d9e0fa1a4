#!/bin/bash
# An env of three hosts: what each host has, placement across them (spread,
# pack, a host in maintenance or down gets no VM, an env too small refused
# with nothing created), adding and removing hosts and what is refused, and
# fsck per host: a VM's domain defined by hand on another host is stale and
# --repair removes it, a VM left on no host and a host that does not answer
# are reported.
. "$(dirname "$0")/lib.sh"

TEST_PREFIX=k
TEST_HOSTS=("$HOSTA" "$HOSTB" "$HOSTC")
require_hosts "$HOSTA" "$HOSTB" "$HOSTC"
setup_workdir

# The libvirt host behind each host of env dc.
declare -A LV=([a]=$HOSTA [b]=$HOSTB [c]=$HOSTC)

vpool init --storage "$STORAGE" >/dev/null || bail "init failed"
vpool image add guest --file "$GUEST_DIR/master.qcow2" --kernel "$GUEST_KERNEL" \
    --initrd "$GUEST_DIR/initrd.img" --cmdline "$(cat "$GUEST_DIR/cmdline")" >/dev/null || bail "image add failed"
vpool profile add big --machine pc --disk-bus ide --nic e1000 --vcpus 1 --memory 1G >/dev/null ||
    bail "profile add big failed"
vpool profile add huge --machine pc --disk-bus ide --nic e1000 --vcpus 1 --memory 64G >/dev/null ||
    bail "profile add huge failed"

# hosts_of VM...: the host vm list records for each, on one line.
hosts_of() {
    local vm
    for vm in "$@"; do vpool vm show "$vm" --json | jq -r '.host // "-"'; done | xargs
}
# count_by_host POOL: "a=N b=N c=N" from vm list's HOST column.
count_by_host() {
    vpool vm list --pool "$1" | awk 'NR > 1 { n[$3]++ } END { printf "a=%d b=%d c=%d", n["a"], n["b"], n["c"] }'
}
host_field() { vpool env host list dc --json | jq -r --arg h "$1" ".[] | select(.name == \$h) | .$2"; }
problems() { vpool fsck --json | jq -c "[.problems[] | select(.kind == \"$1\")]"; }

# --- an env of hosts: bad specs, duplicates, a host that does not answer ----------
expect_fail "env add --host with a bad name" 1 "^vpool: invalid host name 'bad name'" \
    vpool env add dc --host "bad name=$(uri_of "$HOSTA")"
expect_fail "env add --host with one name twice" 1 "^vpool: env 'dc': host 'a' .* is given twice" \
    vpool env add dc --host "a=$(uri_of "$HOSTA")" --host "a=$(uri_of "$HOSTB")"
expect_fail "env add --host with a host that does not answer" 1 "^vpool: env 'dc': host 'b': cannot connect" \
    vpool env add dc --host "a=$(uri_of "$HOSTA")" --host "b=qemu+unix:///system?socket=$WORK/none.sock"
expect_fail "env add --host with a URI naming no host and no name" 1 "names no host" \
    vpool env add dc --host "$(uri_of "$HOSTA")" --host "b=$(uri_of "$HOSTB")"
check_eq "nothing recorded: no env" "0" "$(vpool env list --json | jq length)"

check "env add dc of three hosts" vpool env add dc --domain-type qemu --host "a=$(uri_of "$HOSTA")" \
    --host "b=$(uri_of "$HOSTB")" --host "c=$(uri_of "$HOSTC")"
check_eq "env list: dc has 3 hosts" "dc 3" "$(vpool env list | awk '$1 == "dc" { print $1, $2 }')"
show=$(vpool env show dc --json)
check_eq "env show --json: host_count" "3" "$(jq .host_count <<<"$show")"
check_eq "env show --json: each host by name" "a b c" "$(jq -r '.hosts[].name' <<<"$show" | xargs)"
check_eq "env show --json: each host reachable, not in maintenance, no VM" "true false 0 true false 0 true false 0" \
    "$(jq -r '.hosts[] | "\(.reachable) \(.maintenance) \(.vm_count)"' <<<"$show" | xargs)"
check_eq "env show --json: each host's memory and free memory" "3" \
    "$(jq '[.hosts[] | select(.memory_kib > 0 and .memory_free_kib > 0 and .memory_free_kib <= .memory_kib
             and .cpus > 0 and (.domains_defined | type) == "number")] | length' <<<"$show")"
check_eq "env show --json: each host's URI" "$(uri_of "$HOSTB")" "$(jq -r '.hosts[1].uri' <<<"$show")"
check "env show lists the hosts" grep -Eq "^b +yes +- +no " <<<"$(vpool env show dc)"

expect_fail "env host add: a name the env has" 1 "^vpool: env 'dc' already has a host 'a'$" \
    vpool env host add dc "$(uri_of "$HOSTA")" --name a
expect_fail "env host add: a URI the env has, under another name" 1 \
    "^vpool: env 'dc' already has host 'b' at '.*'$" vpool env host add dc "$(uri_of "$HOSTB")" --name d
expect_fail "env host add: a URI naming no host, no --name" 1 "names no host" \
    vpool env host add dc "$(uri_of "$HOSTA")"
expect_fail "env host add: to an unknown env" 1 "^vpool: unknown env 'nope'$" \
    vpool env host add nope "$(uri_of "$HOSTA")" --name a

# --- placement --------------------------------------------------------------------
check "pool create k1 --size 6 (spread)" vpool pool create k1 --image guest --env dc --profile big --size 6
check_eq "vm list: k1 spread evenly over a, b, c" "a=2 b=2 c=2" "$(count_by_host k1)"
check "vm list has a HOST column" grep -Eq "^NAME +ENV +HOST +STATE" <<<"$(vpool vm list)"
for h in a b c; do
    check_eq "host $h (${LV[$h]}) defines the k1 VMs vm list puts there" \
        "$(vpool vm list --pool k1 --json | jq -r --arg h "$h" '.[] | select(.host == $h) | .name' | xargs)" \
        "$(domains_on "${LV[$h]}" k1)"
done
check_eq "env host list: 2 VMs on each host" "2 2 2" "$(vpool env host list dc --json | jq -r '.[].vm_count' | xargs)"
check_eq "env host list: each host defines its 2 domains" "2 2 2" \
    "$(vpool env host list dc --json | jq -r '.[].domains_defined' | xargs)"

check "pool create k2 --size 3 --placement pack" \
    vpool pool create k2 --image guest --env dc --profile big --size 3 --placement pack
check_eq "pack puts k2 on one host" "1" "$(hosts_of k2-001 k2-002 k2-003 | tr ' ' '\n' | sort -u | wc -l)"
expect_fail "pool create --placement of an unknown word" 1 "^vpool: unknown placement 'random' \\(spread, pack\\)$" \
    vpool pool create k9 --image guest --env dc --profile big --size 1 --placement random

# A host in maintenance (drain sets it) gets no VM; resume ends it.
catalog_sql "UPDATE hosts SET maintenance = 1 WHERE name = 'b'" || bail "cannot set maintenance"
check_eq "env host list: b in maintenance" "true" "$(host_field b maintenance)"
check "pool create k3 --size 4 with b in maintenance" vpool pool create k3 --image guest --env dc --profile big --size 4
check_eq "b got none of k3" "a=2 b=0 c=2" "$(count_by_host k3)"
check "env host resume dc b" vpool env host resume dc b
check_eq "b out of maintenance" "false" "$(host_field b maintenance)"

# The env as a whole too small: refused naming the shortfall, nothing created.
expect_fail "pool create of VMs that cannot run anywhere: refused" 1 \
    "^vpool: env 'dc' cannot hold 2 running VMs of 65536 MiB \\(131072 MiB in all\\): its 3 usable hosts have [0-9]+ MiB free, room for 0 of them$" \
    vpool pool create k4 --image guest --env dc --profile huge --size 2 --start
check_eq "no pool k4" "" "$(vpool pool list --json | jq -r '.[] | select(.name == "k4") | .name')"
check_eq "no VM of k4" "0" "$(vpool vm list --json | jq '[.[] | select(.pool == "k4")] | length')"
check_eq "no domain of k4 on any host" "" "$(for h in a b c; do domains_on "${LV[$h]}" k4; done | xargs)"
check_eq "no delta of k4" "" "$(ls "$STORAGE/deltas/k4" 2>/dev/null)"
check_eq "fsck clean" "" "$(fsck_kinds)"

# --- fsck: a VM's domain defined by hand on another host ---------------------------------
vm=k1-001
home=$(hosts_of $vm)
other=$([ "$home" = a ] && echo b || echo a)
virsh_on "${LV[$home]}" dumpxml --inactive $vm >"$WORK/$vm.xml" || bail "dumpxml $vm"
check "$vm defined by hand on host $other too" virsh_on "${LV[$other]}" define "$WORK/$vm.xml"
stale=$(problems stale-domain)
check_eq "fsck: one stale domain, dc/$vm" "[\"dc/$vm\"]" "$(jq -c '[.[].subject]' <<<"$stale")"
check "fsck: it names the host it is on and the VM's host" \
    jq -e --arg o "$other" --arg h "$home" \
    '.[0].detail | test("^on host \u0027" + $o + "\u0027: .*lives on host \u0027" + $h + "\u0027 of env \u0027dc\u0027")' \
    <<<"$stale"
check "fsck names both domains holding the delta" grep -q "dc/$vm (host $home), dc/$vm (host $other)" <<<"$(vpool fsck)"

# Its own definition gone from its host: the one elsewhere may be its only
# one, and stays.
check "$vm undefined on its host $home" virsh_on "${LV[$home]}" undefine $vm
vpool fsck --repair >"$WORK/fsck"
check_eq "fsck --repair without the VM's own definition: problems left" "1" "$?"
check "it says the VM's host has no definition of it" \
    grep -q "^domain-missing: $vm: no domain on host '$home' of env 'dc'" "$WORK/fsck"
check "it leaves the definition on host $other, saying why" \
    grep -q "^stale-domain: dc/$vm: .*not repaired: host '$home' of env 'dc' does not hold vm '$vm'" "$WORK/fsck"
check_eq "$vm still defined on host $other" "$vm" "$(virsh_on "${LV[$other]}" list --all --name | grep -x $vm)"

check "$vm defined again on its host $home" virsh_on "${LV[$home]}" define "$WORK/$vm.xml"
vpool fsck --repair >"$WORK/fsck"
check_eq "fsck --repair exits 0: nothing left" "0" "$?"
check "it removed the definition on host $other" \
    grep -q "^stale-domain: dc/$vm: on host '$other'.*(repaired: domain removed)" "$WORK/fsck"
check_eq "no $vm on host $other" "" "$(virsh_on "${LV[$other]}" list --all --name | grep -x $vm)"
check_eq "$vm stays on host $home" "$vm" "$(virsh_on "${LV[$home]}" list --all --name | grep -x $vm)"
check_eq "fsck clean after the repair" "" "$(fsck_kinds)"

# --- removing hosts ------------------------------------------------------------------
expect_fail "env host rm of a host with VMs" 1 \
    "^vpool: host 'c' still holds [0-9]+ VMs; .*--force forgets the host" vpool env host rm dc c
expect_fail "env host rm of an unknown host" 1 "^vpool: env 'dc' has no host 'zz'$" vpool env host rm dc zz
expect_fail "env host rm of an unknown env" 1 "^vpool: unknown env 'nope'$" vpool env host rm nope a
check "env solo of one host" vpool env add solo --uri "$(uri_of "$HOSTC")" --domain-type qemu
check_eq "its host is named after it" "solo" "$(vpool env host list solo --json | jq -r '.[].name')"
expect_fail "env host rm of an env's last host" 1 "^vpool: host 'solo' is the last host of env 'solo'" \
    vpool env host rm solo solo
# A VM recorded on a host of another env (as a migration that moved it
# without recording its new host leaves it): reported, its env's hosts
# searched for its domain.
vm=k3-001
vmhost=$(hosts_of $vm)
catalog_sql "UPDATE vms SET host_id = (SELECT id FROM hosts WHERE name = 'solo') WHERE name = '$vm'" ||
    bail "cannot record $vm on solo"
check_eq "fsck: $vm recorded on a host of another env" \
    "[{\"kind\":\"host-mismatch\",\"subject\":\"$vm\",\"detail\":\"recorded on host 'solo' of env 'solo', not of its env 'dc'; its domain is on host '$vmhost'\",\"repaired\":false}]" \
    "$(problems host-mismatch)"
catalog_sql "UPDATE vms SET host_id = (SELECT id FROM hosts WHERE name = '$vmhost') WHERE name = '$vm'"
check "env rm solo" vpool env rm solo

on_c=$(vpool vm list --json | jq -r '.[] | select(.host == "c") | .name' | xargs)
check "env host rm --force of host c, with VMs" vpool env host rm dc c --force
check_eq "env host list: a and b left" "a b" "$(vpool env host list dc --json | jq -r '.[].name' | xargs)"
check_eq "c's VMs are on no host" "$(for v in $on_c; do echo -; done | xargs)" "$(hosts_of $on_c)"
missing=$(problems host-missing)
check_eq "fsck reports each VM on no host" "$on_c" "$(jq -r '.[].subject' <<<"$missing" | xargs)"
check "fsck: no host of the env has their domains" \
    jq -e 'all(.[]; .detail == "recorded on no host of env \u0027dc\u0027; no host of env \u0027dc\u0027 has its domain")' <<<"$missing"
check "env host add dc c again" vpool env host add dc "$(uri_of "$HOSTC")" --name c
check "fsck: their domains are on host c" \
    jq -e 'length > 0 and all(.[]; .detail == "recorded on no host of env \u0027dc\u0027; its domain is on host \u0027c\u0027")' \
    <<<"$(problems host-missing)"
check_eq "fsck: no domain on c is stale (the env holds them)" "[]" "$(problems stale-domain)"

# --- a host that does not answer --------------------------------------------------------
"$HOSTS_SH" down "$HOSTC" >/dev/null || bail "cannot stop $HOSTC"
list=$(vpool env host list dc --json)
check_eq "env host list: c not reachable" "false" "$(jq -r '.[] | select(.name == "c") | .reachable' <<<"$list")"
check "env host list: c unreachable since a time" \
    jq -e '.[] | select(.name == "c") | .unreachable_since | test("^[0-9-]+T[0-9:]+Z$")' <<<"$list"
check_eq "env host list: a and b reachable, no time" "true null true null" \
    "$(jq -r '.[] | select(.name != "c") | "\(.reachable) \(.unreachable_since)"' <<<"$list" | xargs)"
check "env show: c not reachable" grep -Eq "^c +no +[0-9-]+T" <<<"$(vpool env show dc)"
vpool fsck >"$WORK/fsck"
check_eq "fsck exits 1" "1" "$?"
check "fsck reports host c unreachable, its domains not checked" \
    grep -q "^host-unreachable: dc/c: .*its domains were not checked" "$WORK/fsck"
check "pool create k5 places on the hosts that answer" vpool pool create k5 --image guest --env dc --profile big --size 2
check_eq "k5 on a and b" "a b" "$(hosts_of k5-001 k5-002 | tr ' ' '\n' | sort | xargs)"
check_eq "a command that writes records since when c does not answer" "1" \
    "$(catalog_sql "SELECT CASE WHEN unreachable != '' THEN 1 ELSE 0 END FROM hosts WHERE name = 'c'")"
"$HOSTS_SH" up "$HOSTC" >/dev/null || bail "cannot restart $HOSTC"
check_eq "env host list: c reachable again" "true null" \
    "$(vpool env host list dc --json | jq -r '.[] | select(.name == "c") | "\(.reachable) \(.unreachable_since)"')"

for p in k1 k2 k3 k5; do vpool pool rm "$p" >/dev/null 2>&1; done

finish
