#!/usr/bin/env bash
# Builds the Debian packages bic-ccc and bic-agent with dpkg-deb from staged trees.
#
#   appliance/deb/build.sh [OUTDIR]      (default build/deb; `make deb`)
#
# Expects the release binaries build/bicd and build/bic-agent (make all). Library
# dependencies are found from the binaries (ldd + dpkg -S), so they match this machine's
# Debian 12 packages.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$REPO/appliance/deb
OUT=${1:-$REPO/build/deb}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
STAGE=$OUT/stage
rev=$(git -C "$REPO" rev-parse --short HEAD 2> /dev/null || echo 0)
base=$(sed -n 's/^#define BIC_VERSION "\(.*\)"/\1/p' "$REPO/fcgi/version.h")
VERSION=${BIC_DEB_VERSION:-$base+git$rev}
ARCH=$(dpkg --print-architecture)

for b in bicd bic-consoled bic-agent; do
    [ -x "$REPO/build/$b" ] || { echo "deb: build/$b is missing (run make)" >&2; exit 1; }
done
# only the packages of this build stay in OUT (appliance/iso/build.sh takes the newest)
rm -f "$OUT"/bic-ccc_*.deb "$OUT"/bic-agent_*.deb

# shlibs BINARY...: "pkg1, pkg2" of the shared libraries the binaries load
shlibs() {
    local needed
    needed=$(objdump -p "$@" | awk '/NEEDED/{print $2}' | sort -u | paste -sd'|')
    ldd "$@" | awk -v n="^($needed)\$" '/=> \// && $1 ~ n {print $3}' | sort -u | while read -r lib; do
        real=$(readlink -f "$lib")
        dpkg -S "$lib" 2> /dev/null || dpkg -S "$real" 2> /dev/null || dpkg -S "/usr$lib" 2> /dev/null || true
    done | cut -d: -f1 | sort -u | paste -sd, | sed 's/,/, /g'
}

control() { # control DIR NAME DEPENDS DESCRIPTION...
    local dir=$1 name=$2 deps=$3; shift 3
    local size
    size=$(du -sk --exclude=DEBIAN "$dir" | cut -f1)
    cat > "$dir/DEBIAN/control" <<CTL
Package: $name
Version: $VERSION
Architecture: $ARCH
Maintainer: BIC project <bic@localhost>
Section: admin
Priority: optional
Installed-Size: $size
Depends: $deps
Homepage: https://github.com/bic-vdi/bic
Description: $1
$(shift; for l in "$@"; do echo " $l"; done)
CTL
}

finish() { # finish DIR: conffiles, md5sums, permissions, then dpkg-deb
    local dir=$1
    (cd "$dir" && find etc -type f 2> /dev/null | sed 's|^|/|' | sort) > "$dir/DEBIAN/conffiles"
    [ -s "$dir/DEBIAN/conffiles" ] || rm -f "$dir/DEBIAN/conffiles"
    (cd "$dir" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | sort | xargs -r md5sum) > "$dir/DEBIAN/md5sums"
    find "$dir" -type d -exec chmod 0755 {} +
    dpkg-deb --root-owner-group -Zxz -z6 --build "$dir" "$OUT" > /dev/null
}

strip_into() { # strip_into SRC DEST
    install -D -m 0755 "$1" "$2"
    objcopy --strip-debug --strip-unneeded "$2"
}

# ---------------------------------------------------------------- bic-ccc
d=$STAGE/bic-ccc
rm -rf "$d"; mkdir -p "$d/DEBIAN"
strip_into "$REPO/build/bicd" "$d/usr/sbin/bicd"
strip_into "$REPO/build/bic-consoled" "$d/usr/sbin/bic-consoled"
install -D -m 0755 "$HERE/ccc/bic-setup" "$d/usr/lib/bic/bic-setup"
install -D -m 0644 "$HERE/ccc/bicd.service" "$d/lib/systemd/system/bicd.service"
install -D -m 0644 "$HERE/ccc/bic-consoled.service" "$d/lib/systemd/system/bic-consoled.service"
install -D -m 0644 "$HERE/ccc/bic-setup.service" "$d/lib/systemd/system/bic-setup.service"
mkdir -p "$d/usr/share/bic/sql"
install -m 0644 "$REPO"/sql/*.sql "$d/usr/share/bic/sql/"
mkdir -p "$d/usr/share/bic"
cp -r "$REPO/portal-user" "$d/usr/share/bic/portal-user"
cp -r "$REPO/portal-admin" "$d/usr/share/bic/portal-admin"
find "$d/usr/share/bic" -type f -exec chmod 0644 {} +
# the nginx site: the http{} body of appliance/nginx/bic.conf.in, without what Debian's
# nginx.conf already sets, with the packaged paths and the standard ports; the limits are
# appliance/bic-stack's defaults (a new placeholder there stops this build below)
mkdir -p "$d/etc/nginx/sites-available"
{
    echo "# BIC control node (bic-ccc), generated from appliance/nginx/bic.conf.in."
    echo "# Included in http{} of /etc/nginx/nginx.conf through sites-enabled/bic."
    awk '/^http \{/{on=1; next} on && /^\}/{on=0} on' "$REPO/appliance/nginx/bic.conf.in" |
        grep -v -e '^    include /etc/nginx/mime.types;' -e '^    default_type application/octet-stream;' \
            -e '^    sendfile on;' -e '_temp_path @VAR@/nginx/' |
        sed -e 's/^    //' \
            -e 's|@VAR@/log/nginx-access.log|/var/log/nginx/bic-access.log|g' \
            -e 's|@VAR@/log/nginx-error.log|/var/log/nginx/bic-error.log|g' \
            -e 's|@VAR@/tls/|/etc/bic/tls/|g' \
            -e 's|@LISTEN@:@HTTPS_PORT@|443|g' -e 's|@LISTEN@:@HTTP_PORT@|80|g' \
            -e 's|\$host:@HTTPS_PORT@|$host|g' \
            -e 's|@BICD_SOCKET@|/run/bic/bicd.sock|g' -e 's|@BICD_AGENT_SOCKET@|/run/bic/bicd-agent.sock|g' \
            -e 's|@CONSOLED_SOCKET@|/run/bic-console/consoled.sock|g' \
            -e 's|@PORTAL_USER@|/usr/share/bic/portal-user|g' \
            -e 's|@PORTAL_ADMIN@|/usr/share/bic/portal-admin|g' \
            -e 's|@NOVNC@|/usr/share/novnc|g' \
            -e 's|@LOGIN_RATE@|5r/s|g' -e 's|@LOGIN_BURST@|20|g' \
            -e 's|@AGENT_RATE@|20r/s|g' -e 's|@AGENT_BURST@|200|g' -e 's|@USER_INFLIGHT@|128|g' \
            -e 's|@IMAGE_STORE@|/var/lib/bic/images|g' -e 's|@UPLOAD_MAX@|64g|g'
} > "$d/etc/nginx/sites-available/bic"
if grep -q '@[A-Z_]*@' "$d/etc/nginx/sites-available/bic"; then
    echo "deb: unfilled placeholders in the nginx site:" >&2
    grep -n '@[A-Z_]*@' "$d/etc/nginx/sites-available/bic" >&2; exit 1
fi
install -D -m 0644 "$REPO/README.md" "$d/usr/share/doc/bic-ccc/README.md"
[ -f "$REPO/docs/install.md" ] && install -m 0644 "$REPO/docs/install.md" "$d/usr/share/doc/bic-ccc/install.md"
for s in postinst prerm postrm; do install -m 0755 "$HERE/ccc/$s" "$d/DEBIAN/$s"; done
control "$d" bic-ccc "$(shlibs "$REPO/build/bicd" "$REPO/build/bic-consoled"), nginx, mariadb-server, mariadb-client, openssl, novnc, adduser, init-system-helpers" \
    "BIC virtual desktop infrastructure: control node (CCC)" \
    "bicd (the FastCGI control service), the user and admin web portals, the" \
    "nginx site (HTTPS on 443, HTTP redirected), the database migrations and the" \
    "systemd units. On installation it creates and migrates the database, makes a" \
    "self-signed TLS certificate and creates the admin account (shown once)."
finish "$d"

# ---------------------------------------------------------------- bic-agent
d=$STAGE/bic-agent
rm -rf "$d"; mkdir -p "$d/DEBIAN"
strip_into "$REPO/build/bic-agent" "$d/usr/sbin/bic-agent"
install -D -m 0644 "$HERE/agent/bic-agent.service" "$d/lib/systemd/system/bic-agent.service"
mkdir -p "$d/etc/bic"
sed -e 's|^ccc_url = .*|ccc_url = https://127.0.0.1:443|' \
    -e 's|^ca_file = .*|ca_file = /etc/bic/tls/cert.pem|' \
    "$REPO/agent/agent.ini.example" > "$d/etc/bic/agent.ini"
chmod 0600 "$d/etc/bic/agent.ini"
install -D -m 0644 "$REPO/agent/agent.ini.example" "$d/usr/share/doc/bic-agent/agent.ini.example"
[ -f "$REPO/docs/install.md" ] && install -m 0644 "$REPO/docs/install.md" "$d/usr/share/doc/bic-agent/install.md"
for s in postinst prerm postrm; do install -m 0755 "$HERE/agent/$s" "$d/DEBIAN/$s"; done
control "$d" bic-agent "$(shlibs "$REPO/build/bic-agent"), libvirt-daemon-system, libvirt-clients, qemu-system-x86, qemu-utils, init-system-helpers" \
    "BIC virtual desktop infrastructure: node agent (bServer)" \
    "bic-agent runs on every desktop host: it enrolls with the control node using a" \
    "token, reports host facts, load and libvirt domains, and runs signed tasks." \
    "Set ccc_url, ca_file and token in /etc/bic/agent.ini."
finish "$d"
rm -rf "$STAGE"
ls -l "$OUT"/*_"$VERSION"_"$ARCH".deb
