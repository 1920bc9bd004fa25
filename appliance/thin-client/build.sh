#!/usr/bin/env bash
# Builds the BIC thin client (issue 13): a small Debian 12 live system that boots straight
# into a full-screen Chromium (kiosk mode, under the cage Wayland compositor) showing the user
# portal of a configured CCC. docs/thin-client.md describes it.
#
#   appliance/thin-client/build.sh        (`make thin-client`; run as root)
#
# Output, in build/thin-client/ (or BIC_THIN_OUT):
#   bic-thin-client-amd64.iso   hybrid ISO (BIOS + UEFI): burn it or dd it onto a USB stick
#   pxe/vmlinuz, pxe/initrd.img, pxe/filesystem.squashfs, pxe/boot.ipxe, pxe/pxelinux.cfg
#                               the same system for network boot (live-boot's fetch=)
#   packages.txt                what is inside
# The root file system (mmdebstrap from the archive) is cached in build/thin-client/base/<key>
# (key: hash of the package list, the mirror and the files that shape it), so a rebuild after a
# change to grub.cfg takes seconds. Downloaded .debs are kept in build/thin-client/cache.
#
# Settings (environment):
#   BIC_THIN_MIRROR     Debian mirror (default: this machine's apt sources, else deb.debian.org)
#   BIC_THIN_OUT        output directory (default build/thin-client)
#   BIC_THIN_CONFIG     a thin.cfg to put on the ISO as /bic/thin.cfg (docs/thin-client.md)
#   BIC_THIN_CA         a PEM CA certificate to put on the ISO as /bic/ca.pem
#   BIC_THIN_REBUILD=1  rebuild the root file system even when a cached one matches
#   BIC_THIN_ZSTD       zstd level of the squashfs (default 15: built once, read at every boot)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$REPO/appliance/thin-client
OUT=${BIC_THIN_OUT:-$REPO/build/thin-client}
B=$REPO/build/thin-client
W=$B/work
CACHE=$B/cache

[ "$(id -u)" = 0 ] || { echo "thin-client: run as root" >&2; exit 1; }
for t in mmdebstrap mksquashfs grub-mkrescue xorriso mformat sha256sum; do
    command -v $t > /dev/null || { echo "thin-client: $t is missing (make deps)" >&2; exit 1; }
done
[ -d /usr/lib/grub/i386-pc ] && [ -d /usr/lib/grub/x86_64-efi ] \
    || { echo "thin-client: grub-pc-bin and grub-efi-amd64-bin are needed (make deps)" >&2; exit 1; }

mirror() { # this machine's Debian mirror (deb822 or one-line sources), as appliance/iso/build.sh
    local u
    u=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2> /dev/null |
        grep -Eo 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -n 1 | tr -d ' ')
    echo "${u%/}"
}
MIRROR=${BIC_THIN_MIRROR:-$(mirror)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY=${MIRROR%/debian}/debian-security

t0=$SECONDS
step() { printf 'thin-client: [%4ds] %s\n' $((SECONDS - t0)) "$*"; }

# The system: kernel + live-boot (squashfs root under a tmpfs overlay), systemd, networkd +
# resolved, cage (a Wayland compositor that shows one full-screen program; it insists on
# Xwayland, which starts only if an X11 program connects: none does) and Chromium.
# polkitd lets the kiosk user's cage activate its own logind session (libseat). No Recommends.
# curl checks that the portal answers; certutil puts the CCC's CA into Chromium's store; grim
# lets the session's watchdog look at the screen (/usr/lib/bic-thin/pagecheck).
PKGS=$(printf '%s\n' linux-image-amd64 live-boot initramfs-tools busybox zstd systemd systemd-sysv \
    systemd-resolved udev dbus libpam-systemd polkitd kmod iproute2 netbase ca-certificates curl \
    libnss3-tools cage xwayland chromium grim fonts-dejavu-core fonts-nanum xkb-data | sort -u | paste -sd,)
# bump when the build changes what the root file system contains
FORMAT=1
key=$( { echo "$PKGS"; echo "$MIRROR"; echo "$FORMAT"; cat "$HERE/customize.sh";
         find "$HERE/rootfs" -type f | sort | xargs cat; } | sha256sum | cut -c1-16)
BASE=$B/base/$key

mkdir -p "$CACHE" "$B/base" "$OUT"
# first build: seed the download cache from the appliance's (same archive, many shared .debs)
if [ -z "$(ls "$CACHE")" ] && [ -d "$REPO/build/appliance/cache" ]; then
    cp -l "$REPO"/build/appliance/cache/*.deb "$CACHE"/ 2> /dev/null || true
fi
if [ "${BIC_THIN_REBUILD:-0}" = 1 ] || [ ! -s "$BASE/filesystem.squashfs" ]; then
    rm -rf "$W" "$BASE.tmp"
    mkdir -p "$W" "$BASE.tmp"
    step "root file system $key (mmdebstrap bookworm from $MIRROR; cache: $(ls "$CACHE" | wc -l) debs)"
    export BIC_THIN_BASE=$BASE.tmp
    # no documentation, manual pages or translations in the image (copyright files stay)
    mmdebstrap --mode=root --variant=minbase --include="$PKGS" \
        --aptopt='APT::Install-Recommends "false"' \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
        --skip=essential/unlink \
        --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
        --setup-hook="sync-in $CACHE /var/cache/apt/archives/" \
        --customize-hook="sync-out /var/cache/apt/archives $CACHE" \
        --customize-hook='rm -f "$1"/var/cache/apt/archives/*.deb' \
        --customize-hook="$HERE/customize.sh" \
        bookworm "$W/rootfs" \
        "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" "deb $SECURITY bookworm-security main" \
        > "$W/mmdebstrap.log" 2>&1 \
        || { tail -n 40 "$W/mmdebstrap.log" >&2; echo "thin-client: mmdebstrap failed ($W/mmdebstrap.log)" >&2; exit 1; }
    step "squashfs (zstd level ${BIC_THIN_ZSTD:-15}; root file system $(du -sm "$W/rootfs" | cut -f1) MB)"
    chroot "$W/rootfs" dpkg-query -W -f '${Package} ${Version}\n' > "$BASE.tmp/packages.txt"
    mksquashfs "$W/rootfs" "$BASE.tmp/filesystem.squashfs" -comp zstd -Xcompression-level "${BIC_THIN_ZSTD:-15}" \
        -noappend -quiet -no-progress -processors 1 > "$W/mksquashfs.log" 2>&1 \
        || { cat "$W/mksquashfs.log" >&2; echo "thin-client: mksquashfs failed" >&2; exit 1; }
    rm -rf "$W/rootfs" "$BASE"
    mv "$BASE.tmp" "$BASE"
    for old in "$B"/base/*; do [ "$old" = "$BASE" ] || rm -rf "$old"; done
    (cd "$CACHE" && for f in *.deb; do
        p=${f%%_*}; grep -q "^$p " "$BASE/packages.txt" || rm -f "$f"; done)
else
    step "root file system $key: cached"
fi

step "ISO tree and PXE files"
rm -rf "$W/iso"
mkdir -p "$W/iso/live" "$W/iso/bic" "$W/iso/boot/grub" "$OUT/pxe"
for f in filesystem.squashfs vmlinuz initrd.img; do
    ln "$BASE/$f" "$W/iso/live/$f" 2> /dev/null || cp "$BASE/$f" "$W/iso/live/$f"
    rm -f "$OUT/pxe/$f"
    ln "$BASE/$f" "$OUT/pxe/$f" 2> /dev/null || cp "$BASE/$f" "$OUT/pxe/$f"
done
install -m 0644 "$HERE/thin.cfg.example" "$W/iso/bic/thin.cfg.example"
[ -z "${BIC_THIN_CONFIG:-}" ] || install -m 0644 "$BIC_THIN_CONFIG" "$W/iso/bic/thin.cfg"
[ -z "${BIC_THIN_CA:-}" ] || install -m 0644 "$BIC_THIN_CA" "$W/iso/bic/ca.pem"
cp "$HERE/grub.cfg" "$W/iso/boot/grub/grub.cfg"
echo "BIC thin client, built $(date -u +%Y-%m-%dT%H:%MZ), root $key" > "$W/iso/bic/VERSION"
cp "$BASE/packages.txt" "$OUT/packages.txt"
# network boot: an iPXE script and a PXELINUX entry (SERVER is the HTTP server of the files)
cat > "$OUT/pxe/boot.ipxe" <<'IPXE'
#!ipxe
# BIC thin client over the network. Serve this directory over HTTP, set SERVER and the CCC.
set server http://SERVER/bic-thin
dhcp
kernel ${server}/vmlinuz initrd=initrd.img boot=live fetch=${server}/filesystem.squashfs quiet loglevel=3 bic.ccc=https://CCC
initrd ${server}/initrd.img
boot
IPXE
cat > "$OUT/pxe/pxelinux.cfg" <<'PXE'
# BIC thin client: a pxelinux.cfg/default entry (kernel and initrd over TFTP, the root over HTTP)
DEFAULT bic-thin
LABEL bic-thin
  KERNEL bic-thin/vmlinuz
  INITRD bic-thin/initrd.img
  APPEND boot=live fetch=http://SERVER/bic-thin/filesystem.squashfs quiet loglevel=3 bic.ccc=https://CCC
PXE

step "ISO (grub-mkrescue, BIOS + UEFI)"
ISO=$OUT/bic-thin-client-amd64.iso
grub-mkrescue -o "$ISO.tmp" "$W/iso" -- -volid BIC_THIN > "$W/grub-mkrescue.log" 2>&1 \
    || { cat "$W/grub-mkrescue.log" >&2; exit 1; }
mv "$ISO.tmp" "$ISO"
rm -rf "$W/iso"
step "done: $ISO ($(du -m "$ISO" | cut -f1) MB; squashfs $(du -m "$BASE/filesystem.squashfs" | cut -f1) MB, kernel+initrd $(du -cm "$BASE/vmlinuz" "$BASE/initrd.img" | tail -n 1 | cut -f1) MB) and $OUT/pxe/"
