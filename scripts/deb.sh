#!/bin/bash
# Build the Debian package of vpool from this tree, in one command:
#
#   scripts/deb.sh [OUTDIR]     ->  OUTDIR/vpool_<version>_<arch>.deb  (OUTDIR: build/)
#
# It configures and builds build-deb/ anew (prefix /usr, warnings as errors),
# installs it stripped into a staging root with 'meson install', adds the
# package's metadata (dependencies on shared libraries computed by
# dpkg-shlibdeps, the conffile /etc/vpool/vpool.conf) and runs dpkg-deb.
# Needs meson, ninja and dpkg-dev (scripts/deps.sh); not root. Prints the
# path of the package.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
out=${1:-$top/build}
bdir=$top/build-deb

log=$(mktemp)
stage=$(mktemp -d)
trap 'rm -rf "$log" "$stage"' EXIT
fail() { cat "$log" >&2; echo "deb.sh: $*" >&2; exit 1; }

# A fresh tree with Debian's hardening flags (fortified functions, stack
# protector, full RELRO), as a Debian build would use them; meson reads them at
# setup. Only what the package holds is built.
rm -rf "$bdir"
eval "$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --export=sh)"
meson setup "$bdir" --prefix=/usr --sysconfdir=/etc -Dwerror=true >"$log" 2>&1 || fail "meson setup failed"
ninja -C "$bdir" src/cli/vpool >"$log" 2>&1 || fail "build failed"

# dpkg-shlibdeps wants the files where a debian/ source tree would put them.
root=$stage/debian/vpool
meson install -C "$bdir" --destdir "$root" --strip --no-rebuild >"$log" 2>&1 || fail "meson install failed"
for f in usr/bin/vpool usr/share/man/man1/vpool.1 usr/share/bash-completion/completions/vpool etc/vpool/vpool.conf; do
    [ -f "$root/$f" ] || fail "meson install did not install /$f"
done

version=$(meson introspect --projectinfo "$bdir" | sed -n 's/.*"version": *"\([^"]*\)".*/\1/p')
[ -n "$version" ] || fail "cannot read the project's version"
# The package's date is the last commit's, so that a rebuild of the same
# tree gives the same package; DEBFULLNAME and DEBEMAIL name the maintainer.
when=$(git log -1 --format=%ct 2>/dev/null || date +%s)
maintainer="${DEBFULLNAME:-vpool maintainers} <${DEBEMAIL:-vpool@example.org}>"

# Debian policy: manual pages compressed, a copyright file and a changelog,
# sane modes.
gzip -9n "$root/usr/share/man/man1/vpool.1"
doc=$root/usr/share/doc/vpool
mkdir -p "$doc"
cat >"$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: vpool

Files: *
Copyright: $(date -u -d "@$when" +%Y) the vpool authors
License: GPL-2+
 This program is free software; you can redistribute it and/or modify it
 under the terms of the GNU General Public License as published by the Free
 Software Foundation; either version 2 of the License, or (at your option)
 any later version.
 .
 On Debian systems, the complete text of the GNU General Public License
 version 2 can be found in '/usr/share/common-licenses/GPL-2'.
EOF
printf 'vpool (%s) unstable; urgency=medium\n\n  * Built from the source tree.\n\n -- %s  %s\n' \
    "$version" "$maintainer" "$(date -u -R -d "@$when")" | gzip -9n >"$doc/changelog.gz"
gzip -9n <README.md >"$doc/README.md.gz"
gzip -9n <docs/migration.md >"$doc/migration.md.gz"
chmod -R u=rwX,go=rX "$root"
chmod 755 "$root/usr/bin/vpool"

arch=$(dpkg --print-architecture)
mkdir -p "$stage/debian"
: >"$stage/debian/control"
shlibs=$(cd "$stage" && dpkg-shlibdeps -O debian/vpool/usr/bin/vpool 2>"$log") || fail "dpkg-shlibdeps failed"
shlibs=${shlibs#shlibs:Depends=}
[ -n "$shlibs" ] || fail "dpkg-shlibdeps found no dependency"

mkdir -p "$root/DEBIAN"
(cd "$root" && find etc -type f -printf '/%p\n' | sort) >"$root/DEBIAN/conffiles"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<EOF
Package: vpool
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Depends: $shlibs, qemu-utils
Recommends: libvirt-daemon-system, qemu-system-x86
Suggests: bash-completion, ovmf, sqlite3
Section: admin
Priority: optional
Description: move VDI desktop pools between hypervisors by handing over user deltas
 vpool manages pools of virtual machines cloned from one master image, each
 keeping its user's changes in a user delta collection on shared storage. It
 moves a whole pool to other libvirt hosts and other virtual hardware without
 copying disk data, journaling every step so that an interrupted migration
 can be resumed or undone, and checks the invariants with 'vpool fsck'.
 .
 This package holds the vpool command, its manual page, its bash completion
 and the default configuration. The hypervisor hosts need libvirtd and QEMU
 (libvirt-daemon-system, qemu-system-x86).
EOF
chmod 644 "$root/DEBIAN/"*

# Every file dated by the last commit, and dpkg-deb told the same.
find "$root" -exec touch -h -d "@$when" {} +
mkdir -p "$out"
deb=$out/vpool_${version}_${arch}.deb
SOURCE_DATE_EPOCH=$when dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >"$log" 2>&1 ||
    fail "dpkg-deb failed"
echo "$deb"
