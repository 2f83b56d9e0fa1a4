#!/bin/bash
# Installs every Debian package vpool needs to build, run and test.
# Safe to re-run: packages already present are not touched, so a second run
# needs neither the network nor an apt-get update.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)

# libmicrohttpd-dev, libgnutls28-dev, libsystemd-dev: vpoold (HTTP, TLS, sd_notify).
# libguestfs-dev (with libguestfs0 and its appliance: supermin and the
# kernel), zlib1g-dev, libzstd-dev, liblzma-dev: image inspection reads the
# master and the initramfs inside it.
build_pkgs=(gcc meson ninja-build pkg-config libvirt-dev libxml2-dev libsqlite3-dev
            libjson-c-dev libpq-dev libcmocka-dev clang libclang-rt-14-dev
            libmicrohttpd-dev libgnutls28-dev libsystemd-dev
            libguestfs-dev libguestfs0 supermin zlib1g-dev libzstd-dev liblzma-dev)
runtime_pkgs=(libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils
              ovmf sqlite3)
# kmod: build-guest.sh resolves module dependencies with the host's modprobe/depmod.
# extlinux, syslinux-common, fdisk (and debootstrap, below): build-debian-guest.sh's
# Debian 12 masters (an MBR disk booted by extlinux).
# dosfstools, mtools: the UEFI master's EFI system partition, written
# without mounting it. ntfs-3g, libhivex-bin: build-windows-shape.sh's NTFS
# partition and registry hives.
guest_pkgs=(busybox-static linux-image-amd64 e2fsprogs cpio xz-utils gzip kmod
            extlinux syslinux-common fdisk dosfstools mtools ntfs-3g libhivex-bin)
# dpkg-dev, debhelper, lintian: scripts/deb.sh (dpkg-buildpackage from
# debian/); debootstrap: the package's test. The package's own Build-Depends
# (debian/control) are checked after these are in.
package_pkgs=(dpkg-dev debhelper lintian debootstrap)
# groff-base, man-db: the man page test renders it as man(1) does.
# openssl, python3, python3-libvirt: bench/ makes the master's data and times downtime.
# gnutls-bin: hosts.sh makes the TLS hosts' certificates with certtool.
# postgresql: tests/pg.sh starts a private server for the catalog's tests on
# PostgreSQL (its initdb and pg_ctl; the packaged cluster may stay stopped).
# spin: the model suite checks model/handover.pml with SPIN's verifier.
# cryptsetup-bin: the guestfs suite's encrypted disk.
# curl: the daemon's suite is an API client; wrk: bench/ loads the API.
# chromium, nodejs: the console's browser suite (tests/browser/) drives
# Debian's Chromium with puppeteer-core, which downloads no browser (npm
# below, unless the nodejs installed brings its own).
test_pkgs=(tmux jq bc procps time groff-base man-db openssl python3 python3-libvirt spin cryptsetup-bin gnutls-bin
           curl wrk chromium nodejs postgresql)

if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: must run as root (apt-get install)" >&2
    exit 1
fi

missing=()
for p in "${build_pkgs[@]}" "${runtime_pkgs[@]}" "${guest_pkgs[@]}" "${test_pkgs[@]}" "${package_pkgs[@]}"; do
    # "ii" alone means fully installed; half-configured or removed-with-config
    # states need apt-get to finish the job.
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    if [ "${status%% *}" != "ii" ]; then
        missing+=("$p")
    fi
done

# apt_get ARGS...: apt-get with no service started by a postinst: without
# systemd, postinst scripts that try to start services fail the whole
# install; policy-rc.d tells invoke-rc.d not to start anything.
apt_get() {
    local policy=/usr/sbin/policy-rc.d created_policy=0 rc=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        created_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get "$@" || rc=$?
    if [ "$created_policy" -eq 1 ]; then
        rm -f "$policy"
    fi
    if [ "$rc" -ne 0 ]; then
        echo "deps.sh: apt-get $1 failed (exit $rc)" >&2
        exit "$rc"
    fi
}

updated=0
if [ "${#missing[@]}" -gt 0 ]; then
    echo "deps.sh: installing ${missing[*]}"
    apt-get update
    updated=1
    apt_get install -y "${missing[@]}"
else
    echo "deps.sh: all packages present"
fi

# debian/control is the one list of what the package's build needs; apt
# reads it there.
if ! (cd "$top" && dpkg-checkbuilddeps) >/dev/null 2>&1; then
    echo "deps.sh: installing the Build-Depends of debian/control"
    [ "$updated" -eq 1 ] || apt-get update
    apt_get build-dep -y "$top/"
fi

# libvirt's qemu driver runs guests as libvirt-qemu:kvm; a minimal image where
# libvirt-daemon-system's postinst did not run leaves them missing.
if ! getent group kvm >/dev/null; then
    groupadd --system kvm
fi
if ! getent passwd libvirt-qemu >/dev/null; then
    useradd --system --gid kvm --home-dir /var/lib/libvirt --no-create-home \
        --shell /usr/sbin/nologin --comment "Libvirt Qemu" libvirt-qemu
fi

# The browser suite's npm packages, exactly as tests/browser/package-lock.json
# pins them (puppeteer-core and axe-core); again only when the lock changed.
browser=$top/tests/browser
if ! command -v npm >/dev/null; then
    [ "$updated" -eq 1 ] || apt-get update
    apt_get install -y npm
fi
if ! cmp -s "$browser/package-lock.json" "$browser/node_modules/.installed-lock.json" 2>/dev/null; then
    echo "deps.sh: npm ci in tests/browser"
    (cd "$browser" && npm ci --no-audit --no-fund --loglevel=error &&
        cp package-lock.json node_modules/.installed-lock.json)
fi
