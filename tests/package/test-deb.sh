#!/bin/bash
# The Debian package: built from debian/ by scripts/deb.sh (dpkg-buildpackage,
# debhelper, lintian), its metadata and contents, then installed with apt into
# a clean Debian root made by debootstrap (dependencies resolved from the
# archive), used there, and removed and purged. Needs root (debootstrap,
# chroot) and the Debian archive this machine's apt uses.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/docs/lib.sh"

[ "$(id -u)" = 0 ] || bail "needs root for debootstrap and chroot"
for p in debootstrap dpkg-deb dpkg-buildpackage dh lintian; do
    command -v "$p" >/dev/null || bail "$p missing (scripts/deps.sh)"
done

work=$(mktemp -d /var/tmp/vpool-deb.XXXXXX)
root=$work/root
cleanup() {
    mountpoint -q "$root/proc" && umount "$root/proc"
    rm -rf "$work"
}
trap cleanup EXIT

# in_root CMD...: run CMD in the clean root, as a person there would.
in_root() {
    chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive "$@"
}

# ---- the package ------------------------------------------------------------
SECONDS=0
deb=$("$top/scripts/deb.sh" "$work/out") || bail "scripts/deb.sh failed"
version=$("$VPOOL_BIN" --version | awk '{ print $2 }')
arch=$(dpkg --print-architecture)
check_eq "scripts/deb.sh names the package by version and architecture" "$work/out/vpool_${version}_$arch.deb" "$deb"
echo "# built in ${SECONDS}s"
# debhelper's files stay in the copy deb.sh builds in.
check_eq "the build leaves nothing in the tree's debian/ or top" "" \
    "$(cd "$top" && ls -d debian/vpool debian/.debhelper debian/files debian/*.substvars debian/*.debhelper.log obj-* 2>/dev/null)"
check_eq "lintian: no error, no warning (package and source)" "" \
    "$(lintian --fail-on error,warning "$top/build-deb/vpool_${version}_$arch.changes" "$top/build-deb/vpool_$version.dsc" 2>&1 |
       grep -v 'running with root privileges')"
# The second build skips the unit tests (the first ran them): what it makes
# must not depend on that either.
again=$(DEB_BUILD_OPTIONS=nocheck "$top/scripts/deb.sh" "$work/again") || bail "scripts/deb.sh failed the second time"
check_eq "a second build is the same package, byte for byte" "$(sha256sum <"$deb")" "$(sha256sum <"$again")"

field() { dpkg-deb -f "$deb" "$1"; }
check_eq "Package" "vpool" "$(field Package)"
check_eq "debian/changelog's version is meson.build's" "$version" "$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)"
check_eq "Version is the program's" "$version" "$(field Version)"
check_eq "Architecture" "$arch" "$(field Architecture)"
depends=$(field Depends)
for d in libvirt0 libsqlite3-0 libjson-c5 libxml2 libc6 qemu-utils libguestfs0; do
    if [[ ", $depends," == *", $d "* || ", $depends," == *", $d,"* ]]; then
        ok "Depends on $d"
    else
        not_ok "Depends on $d" "Depends: $depends"
    fi
done
recommends=$(field Recommends)
if [[ $recommends == *libvirt-daemon-system* ]]; then ok "Recommends libvirt-daemon-system"; else not_ok "Recommends libvirt-daemon-system" "Recommends: $recommends"; fi
check_eq "conffiles" "/etc/vpool/vpool.conf" "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles)"

dpkg-deb -c "$deb" | awk '{ print $1, $2, $6 }' >"$work/contents"
for f in "-rwxr-xr-x ./usr/bin/vpool" "-rw-r--r-- ./usr/share/man/man1/vpool.1.gz" \
         "-rw-r--r-- ./usr/share/bash-completion/completions/vpool" "-rw-r--r-- ./etc/vpool/vpool.conf" \
         "-rw-r--r-- ./usr/lib/sysusers.d/vpool.conf" "-rw-r--r-- ./usr/share/doc/vpool/copyright" \
         "-rwxr-xr-x ./usr/sbin/vpoold" "-rw-r--r-- ./usr/share/man/man8/vpoold.8.gz" \
         "-rw-r--r-- ./lib/systemd/system/vpoold.service" "-rw-r--r-- ./usr/share/vpool/console/index.html" \
         "-rw-r--r-- ./usr/share/vpool/console/app.js"; do
    mode=${f%% *} path=${f#* }
    if grep -qx -- "$mode root/root $path" "$work/contents"; then
        ok "contains $path ($mode root/root)"
    else
        not_ok "contains $path ($mode root/root)" "$(grep -F -- "$path" "$work/contents")"
    fi
done
extra=$(awk '$1 !~ /^d/ { print $3 }' "$work/contents" | grep -vxE '\./usr/bin/vpool|\./usr/sbin/vpoold|\./usr/share/man/man8/vpoold\.8\.gz|\./lib/systemd/system/vpoold\.service|\./usr/share/man/man1/vpool\.1\.gz|\./usr/share/bash-completion/completions/vpool|\./etc/vpool/vpool\.conf|\./usr/lib/sysusers\.d/vpool\.conf|\./usr/share/doc/vpool/.*|\./usr/share/vpool/console/[a-z]+\.(html|js|css|svg)')
check_eq "nothing else in it (no headers, no test programs, no library)" "" "$extra"
dpkg-deb -x "$deb" "$work/x"
# The page names the console's folder under the build's prefix; the package's
# is /usr.
built_console=$("$VPOOL_BIN" --json config show | jq -r .console.value)
check_eq "the packaged man page is the built one (the console's folder under /usr)" \
    "$(sed "s#$built_console#/usr/share/vpool/console#g" "${VPOOL_MANPAGE:-$top/build/docs/vpool.1}")" \
    "$(zcat "$work/x/usr/share/man/man1/vpool.1.gz")"
check_eq "the packaged completion is the tree's" "$(cat "$top/completion/vpool.bash")" \
    "$(cat "$work/x/usr/share/bash-completion/completions/vpool")"
check_eq "the packaged binary is stripped" "" "$(readelf -S "$work/x/usr/bin/vpool" | grep -o '\.debug_info')"
check_eq "its debug symbols are in vpool-dbgsym" "./usr/lib/debug/.build-id/" \
    "$(dpkg-deb -c "$work/out/vpool-dbgsym_${version}_$arch.deb" | awk '$6 ~ /\.debug$/ { print substr($6, 1, 26); exit }')"
check_eq "the sysusers file declares the vpool system group" "g vpool - -" \
    "$(grep -v '^#' "$work/x/usr/lib/sysusers.d/vpool.conf")"
check "the package's postinst creates the group with systemd-sysusers" \
    sh -c "dpkg-deb --ctrl-tarfile '$deb' | tar -xOf - ./postinst | grep -qx '  *systemd-sysusers .* vpool.conf'"

# Debian's hardening flags (hardening=+all) are in the binary: PIE, full
# RELRO, the stack protector and fortified functions.
elf=$work/x/usr/bin/vpool
check_eq "hardening: PIE" "DYN" "$(readelf -h "$elf" | awk '$1 == "Type:" { print $2 }')"
check "hardening: RELRO" sh -c "readelf -lW '$elf' | grep -q GNU_RELRO"
check "hardening: bind now" sh -c "readelf -dW '$elf' | grep -q 'FLAGS.*BIND_NOW'"
check "hardening: stack protector" sh -c "readelf -sW --dyn-syms '$elf' | grep -q __stack_chk_fail"
check "hardening: fortified functions" sh -c "readelf -sW --dyn-syms '$elf' | grep -q '__[a-z]*_chk@'"

# deb.sh refuses a tree whose debian/changelog names another version than
# meson.build, before building anything.
mkdir "$work/skew"
tar -C "$top" --exclude=./.git --exclude='./build' --exclude='./build-*' --exclude=./tests/browser/node_modules -cf - . | tar -C "$work/skew" -xf -
sed -i '1s/(\([^)]*\))/(\1.1)/' "$work/skew/debian/changelog"
skew=$("$work/skew/scripts/deb.sh" "$work/skew/out" 2>&1)
rc=$?
if [ "$rc" -ne 0 ] && [[ $skew == *"meson.build says version $version, debian/changelog says $version.1"* ]] &&
   [ ! -e "$work/skew/out" ]; then
    ok "deb.sh refuses a changelog version other than meson.build's"
else
    not_ok "deb.sh refuses a changelog version other than meson.build's" "exit $rc" "$skew"
fi

# ---- a clean root -----------------------------------------------------------
# The suite this machine runs, from the mirror its apt uses.
. /etc/os-release
mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Identifier: Packages' |
         awk -v s="$VERSION_CODENAME" '$2 == s { print $1; exit }')
[ -n "$mirror" ] || bail "no apt source for $VERSION_CODENAME on this machine"
SECONDS=0
debootstrap --variant=minbase "$VERSION_CODENAME" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    bail "debootstrap failed: $(tail -3 "$work/debootstrap.log")"
echo "# debootstrap --variant=minbase $VERSION_CODENAME in ${SECONDS}s"
mount -t proc proc "$root/proc"
# No service starts inside the root.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
check "the clean root has no vpool, libvirt or qemu-img" \
    in_root sh -c '! command -v vpool && ! command -v qemu-img && ! dpkg -s libvirt0'

cp "$deb" "$root/tmp/"
SECONDS=0
# man-db comes along so that man(1) can find the page; Recommends (the
# hypervisor daemons) are left out, as on a management host.
if in_root apt-get install -y --no-install-recommends "/tmp/$(basename "$deb")" man-db >"$work/apt.log" 2>&1; then
    ok "apt-get install of the package resolves its dependencies (${SECONDS}s)"
else
    not_ok "apt-get install of the package resolves its dependencies" "$(tail -15 "$work/apt.log")"
fi
check_eq "dpkg says installed" "install ok installed" "$(in_root dpkg-query -W -f='${Status}' vpool)"
check_eq "vpool --version runs from the package" "vpool $version" "$(in_root vpool --version 2>&1)"
check "qemu-img came as a dependency" in_root qemu-img --version
check "vpool --help" in_root vpool --help
check_eq "man -w vpool finds the page" "/usr/share/man/man1/vpool.1.gz" "$(in_root man -w vpool 2>&1)"
page=$(in_root env MANWIDTH=80 man vpool 2>&1)
if grep -q 'vpool env add NAME' <<<"$page"; then ok "man vpool renders the page"; else not_ok "man vpool renders the page" "$(head -5 <<<"$page")"; fi
group=$(in_root getent group vpool)
if [[ $group =~ ^vpool:x:([0-9]+): ]] && [ "${BASH_REMATCH[1]}" -lt 1000 ]; then
    ok "the vpool system group exists ($group)"
else
    not_ok "the vpool system group exists" "getent group vpool: $group"
fi
check "the completion loads and registers itself" \
    in_root bash -c '. /usr/share/bash-completion/completions/vpool && complete -p vpool | grep -q -- "-F _vpool"'
conffiles=$(in_root dpkg-query -W -f='${Conffiles}' vpool)
if [[ $conffiles == *"/etc/vpool/vpool.conf "* ]]; then ok "/etc/vpool/vpool.conf is a conffile"; else not_ok "/etc/vpool/vpool.conf is a conffile" "$conffiles"; fi

# The installed program at work, against the default catalog.
check "vpool init with the default catalog" in_root vpool init --storage /srv/vdi
check "vpool profile add" in_root vpool profile add std --machine q35 --disk-bus virtio --nic virtio --vcpus 2 --memory 2G
check_eq "vpool profile list --json" "std" "$(in_root vpool --json profile list | sed -n 's/^    "name":"\(.*\)",$/\1/p')"
check "the catalog is where the man page says" test -s "$root/var/lib/vpool/catalog.db"
check_eq "the completion offers the catalog's profiles" "std" "$(in_root bash -c '
    . /usr/share/bash-completion/completions/vpool
    COMP_LINE="vpool profile show "; COMP_POINT=${#COMP_LINE}; COMP_WORDS=(vpool profile show ""); COMP_CWORD=3
    _vpool vpool "" show; echo "${COMPREPLY[*]}"')"

# The service, started by hand in the root as its unit would (no systemd
# runs there): it answers on its socket, as root, with its version.
check_eq "man -w vpoold finds its page" "/usr/share/man/man8/vpoold.8.gz" "$(in_root man -w vpoold 2>&1)"
check "the unit is Type=notify and runs /usr/sbin/vpoold" \
    sh -c "grep -qx 'Type=notify' '$root/lib/systemd/system/vpoold.service' &&
           grep -qx 'ExecStart=/usr/sbin/vpoold' '$root/lib/systemd/system/vpoold.service'"
mkdir -p "$root/run/vpool"
# Not through in_root: a function in the background is a subshell, and
# its pid would not be vpoold's (chroot and env exec, so this one is).
chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin vpoold --foreground >"$work/vpoold.log" 2>&1 &
vpoold_pid=$!
for i in $(seq 100); do [ -S "$root/run/vpool/vpoold.sock" ] && break; sleep 0.1; done
answer=$(curl -s --unix-socket "$root/run/vpool/vpoold.sock" http://vpoold/v1)
check_eq "vpoold from the package answers on /run/vpool/vpoold.sock" "vpoold $version root admin" \
    "$(jq -r '"\(.service) \(.version) \(.you) \(.role)"' <<<"$answer" 2>&1)"
console=$(curl -s -D "$work/console.h" --unix-socket "$root/run/vpool/vpoold.sock" http://vpoold/)
check "vpoold from the package serves its console at /" grep -q '<script type="module" src="app.js">' <<<"$console"
check "the console's page has a Content-Security-Policy" grep -qi "^Content-Security-Policy: .*script-src 'self'" \
    "$work/console.h"
check_eq "the socket is group vpool, mode 0660" "vpool 660" "$(in_root stat -c '%G %a' /run/vpool/vpoold.sock)"
kill "$vpoold_pid" 2>/dev/null
wait "$vpoold_pid"
check "SIGTERM stops it and it removes its socket" test ! -e "$root/run/vpool/vpoold.sock"
diag "vpoold: $(tr '\n' ' ' <"$work/vpoold.log")"

# Remove keeps the edited conffile, purge takes it away; nothing else stays.
echo "parallel = 4" >>"$root/etc/vpool/vpool.conf"
check "dpkg -r vpool" in_root dpkg -r vpool
check "the binary is gone" test ! -e "$root/usr/bin/vpool"
check "vpoold is gone" test ! -e "$root/usr/sbin/vpoold"
check "the man page is gone" test ! -e "$root/usr/share/man/man1/vpool.1.gz"
check "the completion is gone" test ! -e "$root/usr/share/bash-completion/completions/vpool"
check "the edited conffile stays after remove" grep -qx "parallel = 4" "$root/etc/vpool/vpool.conf"
check_eq "dpkg says config-files" "deinstall ok config-files" "$(in_root dpkg-query -W -f='${Status}' vpool)"
check "dpkg -P vpool" in_root dpkg -P vpool
check "the conffile is gone after purge" test ! -e "$root/etc/vpool"
check "dpkg no longer knows vpool" in_root sh -c '! dpkg-query -W vpool 2>/dev/null'
left=$(awk '$1 !~ /^d/ { print substr($3, 2) }' "$work/contents" | while read -r f; do
    [ -e "$root$f" ] && echo "$f"; done)
check_eq "no file the package shipped is left after purge" "" "$left"
# Debian removes no system group on purge: files may still belong to it.
check "the vpool group stays after purge" in_root getent group vpool
check "the catalog (user data) is left alone" test -s "$root/var/lib/vpool/catalog.db"

finish
