#!/usr/bin/env bash
# mmdebstrap customize hook of appliance/iso/build.sh: $1 is the new root file system, the
# base shared by the live installer and the installed system (Debian's packages only; our
# packages are installed onto the target by the installer, from /bic/pool on the ISO).
# Adds the installer's units, takes the live kernel and initrd out into $BIC_ISO_BASE, then
# purges live-boot so that the installed system gets a normal initrd.
set -euo pipefail
R=$1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUTDIR=${BIC_ISO_BASE:?}
ch() { chroot "$R" "$@"; }

# the live installer: a unit that runs /bic/bic-install from the ISO when the kernel
# command line says bic.install (the ISO's GRUB menu); disabled again on the target
for u in bic-installer.service bic-installer.target; do
    install -m 0644 "$HERE/rootfs/$u" "$R/lib/systemd/system/$u"
done
ch systemctl enable bic-installer.service systemd-networkd.service > /dev/null 2>&1
ch systemctl enable systemd-resolved.service > /dev/null 2>&1 || true

# GRUB settings of the installed system (grub-*-bin ship no /etc/default/grub)
cat > "$R/etc/default/grub" <<G
GRUB_DEFAULT=0
GRUB_TIMEOUT=2
GRUB_DISTRIBUTOR="BIC appliance (Debian 12)"
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
G

# a DHCP default for the live system (the installer writes the target's)
mkdir -p "$R/etc/systemd/network"
printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n' > "$R/etc/systemd/network/50-bic.network"
# live-boot's initramfs writes /etc/network/interfaces, which needs the directory
mkdir -p "$R/etc/network"

# the live kernel and initrd for the ISO, then a normal initrd for the installed system
cp "$(ls "$R"/boot/vmlinuz-* | sort -V | tail -n 1)" "$OUTDIR/vmlinuz"
cp "$(ls "$R"/boot/initrd.img-* | sort -V | tail -n 1)" "$OUTDIR/initrd.img"
ch env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq live-boot live-boot-initramfs-tools > /dev/null
ch update-initramfs -u > /dev/null 2>&1

# no identity baked in: each installed system makes its own
: > "$R/etc/machine-id"
rm -f "$R/var/lib/dbus/machine-id" "$R"/etc/ssh/ssh_host_*
echo bic > "$R/etc/hostname"
rm -rf "$R"/var/lib/apt/lists/* "$R"/tmp/*
