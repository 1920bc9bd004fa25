#!/usr/bin/env bash
# Installs every Debian and npm package BIC needs to build, run and test.
# Idempotent and quick when everything is present (one dpkg-query, no network).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

DEBS=(
    # build
    build-essential pkg-config clang-format
    libfcgi-dev libmariadb-dev libjansson-dev libjwt-dev libargon2-dev libinih-dev
    libssl-dev libcurl4-openssl-dev libvirt-dev libcmocka-dev libmicrohttpd-dev libxml2-dev
    libnl-3-dev libnl-route-3-dev libqrencode-dev libldap-dev
    # run: the all-in-one stack
    mariadb-server mariadb-client nginx openssl novnc
    libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils dnsmasq-base
    # test
    python3 python3-cryptography curl chromium fonts-nanum nodejs slapd ldap-utils
    # fuzzing (issue 12): make fuzz, the fuzz smoke layer of make test
    clang libclang-rt-14-dev
    # appliance (issue 10): make deb, make iso, make test-appliance (OVMF for the UEFI boot)
    dpkg-dev mmdebstrap squashfs-tools xorriso grub-pc-bin grub-efi-amd64-bin mtools ovmf
)

missing=()
for p in "${DEBS[@]}"; do
    s=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$s" = installed ] || missing+=("$p")
done
# nodejs from another source (e.g. NodeSource) ships npm itself; Debian's needs the npm package.
if ! command -v npm > /dev/null 2>&1; then missing+=(npm); fi

if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { echo "deps: need root to install: ${missing[*]}" >&2; exit 1; }
    echo "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
fi

# npm packages of the browser tests (playwright-core only: it never downloads a browser).
if [ -f "$REPO/tests/browser/package.json" ] && [ ! -d "$REPO/tests/browser/node_modules/playwright-core" ]; then
    echo "deps: npm install in tests/browser"
    (cd "$REPO/tests/browser" && npm install --no-audit --no-fund --loglevel=error)
fi
exit 0
