#!/bin/bash
# libvirt's TLS transport: envs reached as qemu+tls:// with certificate
# verification on both sides. A pool created, started and migrated between
# two TLS hosts; the hosts' own peer-to-peer live migration over TLS; a host
# whose certificate another CA signed, one whose certificate names another
# address, and a client without a certificate, each refused with its cause
# and nothing recorded.
. "$(dirname "$0")/lib.sh"

TEST_PREFIX=tls
# Hosts of this suite's own, so it can run beside the others.
HOSTA=${VPOOL_TEST_TLS_HOSTA:-hostg}
HOSTB=${VPOOL_TEST_TLS_HOSTB:-hosth}
# Its domains are removed from these hosts at the end, pass or fail: the
# suite runs again on them (with the catalog in PostgreSQL).
TEST_HOSTS=("$HOSTA" "$HOSTB")
ROGUE=$HOSTA-rogue
WRONG=$HOSTA-wrongname
# No-ops when scripts/test.sh started them already.
"$HOSTS_SH" up --tls "$HOSTA" "$HOSTB" >/dev/null || bail "cannot start $HOSTA $HOSTB with TLS"
"$HOSTS_SH" up --tls --cert rogue "$ROGUE" >/dev/null || bail "cannot start $ROGUE"
"$HOSTS_SH" up --tls --cert wrong-name "$WRONG" >/dev/null || bail "cannot start $WRONG"
require_hosts "$HOSTA" "$HOSTB"
setup_workdir

tls_uri() { "$HOSTS_SH" uri --tls "$1"; }
uri_a=$(tls_uri "$HOSTA")
uri_b=$(tls_uri "$HOSTB")
addr_of() { sed -E 's|^qemu\+tls://([^/]*)/.*|\1|' <<<"$(tls_uri "$1")"; }

# --- 1. envs over TLS -------------------------------------------------------------
vpool init --storage "$STORAGE" >/dev/null || bail "init failed"
check "env $HOSTA added over TLS ($uri_a)" vpool env add "$HOSTA" --uri "$uri_a" --domain-type qemu
check "env $HOSTB added over TLS ($uri_b)" vpool env add "$HOSTB" --uri "$uri_b" --domain-type qemu
check "env show $HOSTA shows its TLS URI" grep -qF "$uri_a" <<<"$(vpool env show "$HOSTA")"
check_eq "env show $HOSTA: the host's CPUs, as libvirt's node info says over TLS" \
    "$(virsh -q -c "$uri_a" nodeinfo | sed -n 's/^CPU(s): *//p')" \
    "$(vpool env show "$HOSTA" --json | jq -r .cpus)"
add_desktop_image
vpool profile add pc-ide --machine pc --disk-bus ide --nic e1000 --vcpus 1 --memory 256M >/dev/null ||
    bail "profile add failed"

# --- 2. a pool on a TLS host, migrated to another TLS host ------------------------
vms="tls1-001 tls1-002"
check "pool of 2 created and started on $HOSTA over TLS" \
    vpool pool create tls1 --image desktop --env "$HOSTA" --profile pc-ide --size 2 --start
check_eq "both guests run on $HOSTA, as its TLS listener says" "$vms" \
    "$(virsh -q -c "$uri_a" list --name | grep '^tls1-' | sort | xargs)"
check "each guest booted once on $HOSTA" wait_boot 180 1 $vms
declare -A uuid
for vm in $vms; do uuid[$vm]=$(vpool vm show "$vm" --json | jq -r .uuid); done

check "pool tls1 migrated from $HOSTA to $HOSTB, both over TLS" \
    vpool migrate tls1 --to "$HOSTB" --shutdown-timeout 60
check_eq "$HOSTA keeps no domain of the pool" "" "$(virsh -q -c "$uri_a" list --all --name | grep '^tls1-' | xargs)"
check_eq "$HOSTB runs both guests" "$vms" "$(virsh -q -c "$uri_b" list --name | grep '^tls1-' | sort | xargs)"
check "every guest booted again on $HOSTB" wait_boot 180 2 $vms
for vm in $vms; do
    check_eq "$vm on $HOSTB: its own data (first owner kept)" "${uuid[$vm]}" "$(console_field "$vm" owner)"
done
check_eq "fsck clean after the migration" "" "$(fsck_kinds)"

# --- 3. bad certificates and a client without one ---------------------------------
ere() { sed 's/[].[?+*()|^$\\]/\\&/g' <<<"$1"; }
pki=$("$HOSTS_SH" pki)
envs_before=$(vpool env list)
for bad in "$ROGUE" "$WRONG"; do
    expect_fail "$bad: refused, naming its URI, the CA and the name its certificate must carry" 1 \
        "^vpool: cannot connect to '$(ere "$(tls_uri "$bad")")': authentication failed: .*: the host's certificate is not signed by the CA in '$(ere "$pki/cacert.pem")', or does not name '$(ere "$(addr_of "$bad")")'$" \
        vpool env add "$bad" --uri "$(tls_uri "$bad")"
done
# libvirt tells the exact reason only in its warnings, which vpool keeps off
# its stderr unless asked.
check "$ROGUE: LIBVIRT_DEBUG=warning shows libvirt's reason, an unknown issuer" \
    grep -q "hasn't got a known issuer" <<<"$(LIBVIRT_DEBUG=warning vpool env add "$ROGUE" --uri "$(tls_uri "$ROGUE")" 2>&1)"
check "$WRONG: LIBVIRT_DEBUG=warning shows libvirt's reason, another name" \
    grep -q "does not match the hostname $(addr_of "$WRONG")" <<<"$(LIBVIRT_DEBUG=warning vpool env add "$WRONG" --uri "$(tls_uri "$WRONG")" 2>&1)"
nocert=$WORK/pki-nocert
mkdir -p "$nocert"
cp "$pki/cacert.pem" "$nocert/"
expect_fail "a client without a certificate is refused, naming the missing file" 1 \
    "^vpool: cannot connect to 'qemu\+tls://.*': .*: no client certificate '$(ere "$nocert")/clientcert\.pem'$" \
    vpool env add nocert --uri "qemu+tls://$(addr_of "$HOSTA")/system?pkipath=$nocert"
check_eq "env list unchanged by the refusals" "$envs_before" "$(vpool env list)"

# --- 4. the hosts' own live migration, peer to peer over TLS ----------------------
# What host maintenance builds on: the source's libvirtd reaches the target's
# TLS port with its own client certificate, the target's QEMU listens at its
# address. Shared storage here is a local folder, which libvirt calls unsafe.
vm=${vms%% *}
check "$vm live-migrated by virsh from $HOSTB to $HOSTA, peer to peer over TLS" \
    virsh -q -c "$uri_b" migrate --live --p2p --persistent --undefinesource --unsafe "$vm" \
    "qemu+tls://$(addr_of "$HOSTA")/system"
check_eq "$vm runs on $HOSTA" "running" "$(virsh -q -c "$uri_a" domstate "$vm" 2>&1)"
check_eq "$vm's guest did not reboot (boot count unchanged)" "2" "$(console_field "$vm" boot)"
diag "downtime: $(virsh -q -c "$uri_a" domjobinfo --completed "$vm" | sed -n 's/^Total downtime: *//p' | tr -s ' ')"

finish
