#!/usr/bin/env bash
# mmdebstrap customize hook of appliance/thin-client/build.sh: $1 is the thin client's root
# file system. Adds the kiosk (rootfs/), trims what a kiosk does not need, and takes the live
# kernel and initrd out into $BIC_THIN_BASE.
set -euo pipefail
R=$1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUTDIR=${BIC_THIN_BASE:?}
ch() { chroot "$R" "$@"; }

cp -a --no-preserve=ownership "$HERE/rootfs/." "$R/"
chmod 0755 "$R/usr/lib/bic-thin/config" "$R/usr/lib/bic-thin/session" "$R/usr/lib/bic-thin/pagecheck"

# the kiosk user: no password, no shell; cage gets the devices through its logind session
ch useradd --create-home --shell /usr/sbin/nologin --groups video,render,input kiosk

# boot straight into the kiosk: no getty anywhere (the serial one only with bic.debug=1)
ch systemctl enable bic-thin-config.service bic-kiosk.service bic-thin-debug.service \
    systemd-networkd.service systemd-resolved.service > /dev/null 2>&1
ch systemctl set-default graphical.target > /dev/null 2>&1
ch systemctl disable getty@tty1.service > /dev/null 2>&1 || true
mkdir -p "$R/etc/systemd/system-generators"
ln -sf /dev/null "$R/etc/systemd/system-generators/systemd-getty-generator"
# nothing that writes or waits: no apt timers, no disk checks, no wait for the network
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
    systemd-networkd-wait-online.service dpkg-db-backup.timer; do
    ch systemctl mask "$u" > /dev/null 2>&1 || true
done
echo bic-thin > "$R/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 bic-thin\n::1 localhost ip6-localhost ip6-loopback\n' > "$R/etc/hosts"
# live-boot's initramfs writes /etc/network/interfaces (network boot), which needs the directory
mkdir -p "$R/etc/network"

# Size. usrmerge (and with it perl) only converted the tree. chromium-common depends on
# x11-utils (xdpyinfo, ...), which pulls Mesa's OpenGL drivers and LLVM (~160 MB); the kiosk
# runs Chromium without a GPU (--disable-gpu) under cage's pixman renderer, so neither is
# loaded: they go, leaving dpkg's record of them broken on purpose (nobody runs apt here).
ch dpkg --purge --force-depends usrmerge libfile-find-rule-perl libnumber-compare-perl libtext-glob-perl \
    perl perl-modules-5.36 libperl5.36 x11-utils libgl1-mesa-dri libglx-mesa0 libllvm15 libz3-4 \
    > /dev/null 2>&1 || true
# Chromium: only the English and Korean user interface (the portal has both); no Vulkan
# validation layer (a debugging aid)
if [ -d "$R/usr/lib/chromium/locales" ]; then
    find "$R/usr/lib/chromium/locales" -name '*.pak' ! -name 'en-US.pak' ! -name 'ko.pak' -delete
fi
rm -f "$R/usr/lib/chromium/libVkLayer_khronos_validation.so"
# fonts: DejaVu, and of Nanum the Gothic faces the portal names
find "$R/usr/share/fonts/truetype/nanum" -name '*.ttf' ! -name 'NanumGothic.ttf' ! -name 'NanumGothicBold.ttf' -delete
ch fc-cache -f > /dev/null 2>&1 || true

# the kernel: drop module families a kiosk on a wired network never loads (sound, cameras
# and TV, Wi-Fi and Bluetooth, whose firmware is not in main anyway, InfiniBand, staging, ...)
for k in "$R"/lib/modules/*; do
    kv=$(basename "$k")
    for d in sound drivers/media drivers/infiniband drivers/staging drivers/isdn drivers/bluetooth \
        drivers/net/wireless drivers/net/can drivers/iio drivers/comedi drivers/target drivers/nfc \
        drivers/w1 drivers/gpu/drm/amd drivers/gpu/drm/radeon drivers/net/ethernet/mellanox \
        drivers/scsi/lpfc drivers/scsi/qla2xxx drivers/scsi/mpt3sas drivers/net/wwan \
        drivers/thunderbolt drivers/fpga net/bluetooth net/wireless net/mac80211 net/can \
        net/nfc net/sunrpc fs/nfs fs/nfsd fs/ocfs2 fs/xfs fs/btrfs fs/gfs2 fs/ceph fs/smb fs/f2fs \
        drivers/atm drivers/net/wan drivers/net/hamradio drivers/net/ieee802154 drivers/net/fddi \
        drivers/net/arcnet drivers/edac drivers/ntb drivers/rapidio drivers/gnss drivers/greybus \
        drivers/soundwire drivers/slimbus drivers/most drivers/mtd drivers/firewire \
        net/atm net/ax25 net/netrom net/rose net/appletalk net/x25 net/lapb net/ieee802154 \
        net/mac802154 net/rds net/tipc net/batman-adv net/openvswitch net/sctp net/dccp net/l2tp \
        fs/jfs fs/reiserfs fs/ntfs3 fs/ubifs fs/jffs2 fs/nilfs2 fs/afs fs/coda fs/9p fs/hfs fs/hfsplus \
        fs/ufs fs/minix fs/omfs fs/qnx4 fs/qnx6 fs/sysv fs/befs fs/bfs fs/efs fs/freevxfs \
        fs/orangefs fs/dlm; do
        rm -rf "${k:?}/kernel/$d"
    done
    ch depmod -a "$kv"
done
# initrd (live-boot, zstd: rootfs/etc/initramfs-tools/conf.d), then out of the image
ch update-initramfs -u -k all > /dev/null 2>&1
cp "$(ls "$R"/boot/vmlinuz-* | sort -V | tail -n 1)" "$OUTDIR/vmlinuz"
cp "$(ls "$R"/boot/initrd.img-* | sort -V | tail -n 1)" "$OUTDIR/initrd.img"
rm -f "$R"/boot/initrd.img-*

# no identity baked in; no package lists, caches or docs
: > "$R/etc/machine-id"
rm -f "$R/var/lib/dbus/machine-id"
rm -rf "$R"/var/lib/apt/lists/* "$R"/var/cache/apt/*.bin "$R"/var/cache/debconf/*-old "$R"/tmp/* \
    "$R"/usr/share/doc/*/changelog* "$R"/usr/share/groff "$R"/usr/share/bug
