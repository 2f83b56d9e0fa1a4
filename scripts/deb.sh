#!/bin/bash
# Build the Debian package of vpool from this tree, the way Debian builds
# packages, in one command:
#
#   scripts/deb.sh [OUTDIR]     ->  OUTDIR/vpool_<version>_<arch>.deb  (OUTDIR: build/)
#
# debian/ describes the package; dpkg-buildpackage -b builds it with
# debhelper (meson configures, builds, runs the unit tests and installs). It
# runs in a copy of the tree, build-deb/vpool/, so that debhelper's files
# (debian/vpool/, debian/.debhelper/, obj-*/) never land in the work tree;
# the copy always has the same path, so that the same tree gives the same
# package byte for byte. Then lintian checks the package and its source:
# any error or warning fails the build. Needs scripts/deps.sh; not root.
# DEB_BUILD_OPTIONS is passed on (nocheck skips the unit tests). Prints the
# path of the package.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
out=${1:-$top/build}
work=$top/build-deb

log=$(mktemp)
trap 'rm -f "$log"' EXIT
fail() { tail -n 40 "$log" >&2; echo "deb.sh: $*" >&2; exit 1; }

# One version, said twice: meson.build and debian/changelog must agree.
version=$(meson introspect --projectinfo meson.build | sed -n 's/.*"version": *"\([^"]*\)".*/\1/p')
changelog=$(dpkg-parsechangelog -S Version)
[ -n "$version" ] || fail "cannot read the project's version from meson.build"
[ "$version" = "$changelog" ] ||
    fail "meson.build says version $version, debian/changelog says $changelog: add a changelog entry (dch -v $version)"

# Two builds at once would share the copy.
mkdir -p "$work"
exec 9>"$work/.lock"
flock 9
src=$work/vpool
rm -rf "$src" "$work"/vpool_* "$work"/vpool-dbgsym_*
mkdir -p "$src"
# The tree as it is, edits included, without the build trees, git's files or
# the browser suite's npm packages (scripts/deps.sh installs them).
tar -C "$top" --exclude=./.git --exclude='./build' --exclude='./build-*' --exclude=./tests/browser/node_modules \
    -cf - . | tar -C "$src" -xf -

# The source package, from the clean copy, is made only for lintian, which
# checks debian/ there.
(cd "$work" && dpkg-source -b vpool) >"$log" 2>&1 || fail "dpkg-source failed"
if ! (cd "$src" && dpkg-buildpackage -b -us -uc) >"$log" 2>&1; then
    fail "dpkg-buildpackage failed"
fi

arch=$(dpkg --print-architecture)
deb=vpool_${version}_$arch.deb
[ -f "$work/$deb" ] || fail "dpkg-buildpackage made no $deb"
if ! lintian --fail-on error,warning "$work/vpool_${version}_$arch.changes" "$work/vpool_$version.dsc" >"$log" 2>&1; then
    fail "lintian finds errors or warnings"
fi

mkdir -p "$out"
cp "$work/$deb" "$work/vpool-dbgsym_${version}_$arch.deb" "$out/"
echo "$out/$deb"
