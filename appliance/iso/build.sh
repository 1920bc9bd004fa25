#!/usr/bin/env bash
# Builds the BIC installer ISO (hybrid BIOS + UEFI) from Debian 12's archive and our packages.
#
#   appliance/iso/build.sh        (`make iso`; run as root)
#
# Output: build/appliance/bic-<version>-amd64.iso.
#
# Two parts, so that a rebuild after a code change takes seconds:
#   base   the Debian system (mmdebstrap from the archive: kernel, systemd, nginx, MariaDB,
#          libvirt, QEMU, ... and every dependency of our packages), squashed, with its live
#          kernel and initrd. Cached in build/appliance/base/<key>/, the key being a hash of
#          the package list, the mirror, BASE_FORMAT and the files that shape the base
#          (base.sh, the installer units). Only the newest base is kept.
#   bic    our packages and the installer, in /bic/ on the ISO: the installer unsquashes the
#          base onto the target disk and installs /bic/pool/*.deb there with dpkg (offline:
#          their dependencies are in the base).
# Downloaded .debs are kept in build/appliance/cache and reused (a base rebuilt with a full
# cache needs no network).
#
# Settings (environment):
#   BIC_ISO_MIRROR    the Debian mirror (default: the first deb.debian.org-style URI in this
#                     machine's apt sources, else http://deb.debian.org/debian)
#   BIC_ISO_ANSWERS   an answer file to put on the ISO as /bic/answers.cfg (docs/install.md);
#                     the default menu entry then installs unattended
#   BIC_ISO_OUT       the ISO's path
#   BIC_ISO_REBUILD=1 rebuild the base even when a cached one matches (e.g. to pick up
#                     security updates from the archive)
#   BIC_ISO_ZSTD      zstd level of the squashfs (default 6; higher packs smaller, slower)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$REPO/appliance/iso
B=$REPO/build/appliance
W=$B/work
CACHE=$B/cache

[ "$(id -u)" = 0 ] || { echo "iso: run as root" >&2; exit 1; }
for t in mmdebstrap mksquashfs grub-mkrescue xorriso mformat sha256sum; do
    command -v $t > /dev/null || { echo "iso: $t is missing (make deps)" >&2; exit 1; }
done
[ -d /usr/lib/grub/i386-pc ] && [ -d /usr/lib/grub/x86_64-efi ] \
    || { echo "iso: grub-pc-bin and grub-efi-amd64-bin are needed (make deps)" >&2; exit 1; }

mirror() { # this machine's Debian mirror (deb822 or one-line sources)
    local u
    u=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2> /dev/null |
        grep -Eo 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -n 1 | tr -d ' ')
    echo "${u%/}"
}
MIRROR=${BIC_ISO_MIRROR:-$(mirror)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY=${MIRROR%/debian}/debian-security

t0=$SECONDS
step() { printf 'iso: [%4ds] %s\n' $((SECONDS - t0)) "$*"; }

ccc=$(ls -t "$REPO"/build/deb/bic-ccc_*.deb 2> /dev/null | head -n 1)
agent=$(ls -t "$REPO"/build/deb/bic-agent_*.deb 2> /dev/null | head -n 1)
[ -f "$ccc" ] && [ -f "$agent" ] || { echo "iso: build the packages first (make deb)" >&2; exit 1; }
version=$(dpkg-deb -f "$ccc" Version)
OUT=${BIC_ISO_OUT:-$B/bic-$version-amd64.iso}

# Everything in the base comes from the archive: the system, the installer's tools, and
# every dependency of our two packages (so that dpkg -i needs no network).
deps=$(for d in "$ccc" "$agent"; do dpkg-deb -f "$d" Depends; done | tr ',' '\n' |
    sed -e 's/(.*)//' -e 's/|.*//' -e 's/[[:space:]]//g' | grep -v '^$' | sort -u)
PKGS=$(printf '%s\n' linux-image-amd64 systemd systemd-sysv systemd-resolved udev dbus kmod \
    iproute2 netbase ca-certificates openssh-server curl less procps python3 openssl e2fsprogs \
    dosfstools fdisk squashfs-tools grub-pc-bin grub-efi-amd64-bin grub2-common initramfs-tools \
    live-boot dnsmasq-base $deps | sort -u | paste -sd,)
# bump when the base part of this script changes what the base contains
BASE_FORMAT=1
key=$( { echo "$PKGS"; echo "$MIRROR"; echo "$BASE_FORMAT"; cat "$HERE/base.sh" "$HERE"/rootfs/bic-installer.*; } |
    sha256sum | cut -c1-16)
BASE=$B/base/$key

mkdir -p "$CACHE" "$B/base"
if [ "${BIC_ISO_REBUILD:-0}" = 1 ] || [ ! -s "$BASE/filesystem.squashfs" ]; then
    rm -rf "$W" "$BASE.tmp"
    mkdir -p "$W" "$BASE.tmp"
    step "base $key: root file system (mmdebstrap bookworm from $MIRROR; cache: $(ls "$CACHE" | wc -l) debs)"
    export BIC_ISO_BASE=$BASE.tmp
    mmdebstrap --mode=root --variant=minbase --include="$PKGS" \
        --aptopt='APT::Install-Recommends "false"' \
        --skip=essential/unlink \
        --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
        --setup-hook="sync-in $CACHE /var/cache/apt/archives/" \
        --customize-hook="sync-out /var/cache/apt/archives $CACHE" \
        --customize-hook='rm -f "$1"/var/cache/apt/archives/*.deb' \
        --customize-hook="$HERE/base.sh" \
        bookworm "$W/rootfs" \
        "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" "deb $SECURITY bookworm-security main" \
        > "$W/mmdebstrap.log" 2>&1 \
        || { tail -n 40 "$W/mmdebstrap.log" >&2; echo "iso: mmdebstrap failed ($W/mmdebstrap.log)" >&2; exit 1; }
    step "base $key: squashfs (zstd level ${BIC_ISO_ZSTD:-6})"
    mksquashfs "$W/rootfs" "$BASE.tmp/filesystem.squashfs" -comp zstd -Xcompression-level "${BIC_ISO_ZSTD:-6}" \
        -noappend -quiet -no-progress > "$W/mksquashfs.log" 2>&1 \
        || { cat "$W/mksquashfs.log" >&2; echo "iso: mksquashfs failed" >&2; exit 1; }
    chroot "$W/rootfs" dpkg-query -W -f '${Package} ${Version}\n' > "$BASE.tmp/packages.txt"
    rm -rf "$W/rootfs" "$BASE"
    mv "$BASE.tmp" "$BASE"
    # only the newest base is kept
    for old in "$B"/base/*; do [ "$old" = "$BASE" ] || rm -rf "$old"; done
    # downloaded .debs no longer in the base
    (cd "$CACHE" && for f in *.deb; do
        p=${f%%_*}; grep -q "^$p " "$BASE/packages.txt" || rm -f "$f"; done)
else
    step "base $key: cached ($BASE)"
fi

step "ISO tree"
rm -rf "$W/iso"
mkdir -p "$W/iso/live" "$W/iso/bic/pool" "$W/iso/boot/grub"
for f in filesystem.squashfs vmlinuz initrd.img; do
    ln "$BASE/$f" "$W/iso/live/$f" 2> /dev/null || cp "$BASE/$f" "$W/iso/live/$f"
done
cp "$ccc" "$agent" "$W/iso/bic/pool/"
install -m 0755 "$HERE/rootfs/bic-install" "$HERE/rootfs/bic-firstboot" "$W/iso/bic/"
install -m 0644 "$HERE/rootfs/bic-firstboot.service" "$W/iso/bic/"
cp "$BASE/packages.txt" "$W/iso/bic/base-packages.txt"
extra=""
if [ -n "${BIC_ISO_ANSWERS:-}" ]; then
    install -m 0644 "$BIC_ISO_ANSWERS" "$W/iso/bic/answers.cfg"
    extra="bic.answers=/bic/answers.cfg"
fi
sed "s|@EXTRA@|$extra|" "$HERE/grub.cfg" > "$W/iso/boot/grub/grub.cfg"
echo "BIC $version, built $(date -u +%Y-%m-%dT%H:%MZ), base $key" > "$W/iso/bic/VERSION"

step "ISO (grub-mkrescue, BIOS + UEFI)"
mkdir -p "$(dirname "$OUT")"
# the default place keeps only the newest ISO
[ -n "${BIC_ISO_OUT:-}" ] || rm -f "$B"/bic-*-amd64.iso
grub-mkrescue -o "$OUT" "$W/iso" -- -volid BIC_INSTALL > "$W/grub-mkrescue.log" 2>&1 \
    || { cat "$W/grub-mkrescue.log" >&2; exit 1; }
rm -rf "$W/iso"
step "done: $OUT ($(du -h "$OUT" | cut -f1))"
