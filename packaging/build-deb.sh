#!/usr/bin/env bash
# Builds metaflow-proxy_VERSION_ARCH.deb from a compiled binary with dpkg-deb (no extra tool):
#   cargo build --release --locked && packaging/build-deb.sh target/release/metaflow-proxy dist/
# The package installs the binary, the systemd unit (Type=notify), the configuration as a
# conffile (/etc/metaflow-proxy/metaflow-proxy.toml, data in /var/lib/metaflow-proxy), the man
# page and a logrotate rule, and creates the metaflow-proxy system user.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 BINARY OUTDIR" >&2
  exit 2
fi
binary=$1
outdir=$2
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)
arch=$(dpkg --print-architecture)
[ -x "$binary" ] || { echo "$0: $binary is not an executable" >&2; exit 1; }
[ -n "$version" ] || { echo "$0: no version in Cargo.toml" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
install -D -m 0755 "$binary" "$stage/usr/bin/metaflow-proxy"
install -D -m 0644 "$here/metaflow-proxy.service" "$stage/lib/systemd/system/metaflow-proxy.service"
install -D -m 0644 "$here/metaflow-proxy.logrotate" "$stage/etc/logrotate.d/metaflow-proxy"
install -d "$stage/usr/share/man/man1"
gzip -9n < "$here/metaflow-proxy.1" > "$stage/usr/share/man/man1/metaflow-proxy.1.gz"
install -d "$stage/etc/metaflow-proxy"
# The example file with the packaged data directory set.
sed 's|^# data-dir = "/var/lib/metaflow-proxy"|data-dir = "/var/lib/metaflow-proxy"|' \
  "$root/config/metaflow-proxy.toml" > "$stage/etc/metaflow-proxy/metaflow-proxy.toml"
chmod 0644 "$stage/etc/metaflow-proxy/metaflow-proxy.toml"
install -d -m 0755 "$stage/usr/share/doc/metaflow-proxy"
install -m 0644 "$root/README.md" "$stage/usr/share/doc/metaflow-proxy/README.md"

install -d "$stage/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: metaflow-proxy
Version: $version
Architecture: $arch
Maintainer: metaflow-proxy maintainers <metaflow-proxy@localhost>
Installed-Size: $size
Depends: libc6, adduser
Section: net
Priority: optional
Description: SIP media proxy that runs Kazoo metaflow codes on live calls
 A B2BUA-lite in front of a PBX: it relays SIP between phones and the PBX,
 anchors the RTP, decodes DTMF (RFC 4733, SIP INFO) and runs Kazoo Konami
 metaflow modules (transfer, record, hangup...) on the live call. Metaflows
 are managed through a Kazoo-compatible REST API.
CONTROL
echo "/etc/metaflow-proxy/metaflow-proxy.toml" > "$stage/DEBIAN/conffiles"
echo "/etc/logrotate.d/metaflow-proxy" >> "$stage/DEBIAN/conffiles"
cat > "$stage/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  if ! getent passwd metaflow-proxy >/dev/null; then
    adduser --system --group --home /var/lib/metaflow-proxy --no-create-home metaflow-proxy
  fi
  install -d -o metaflow-proxy -g metaflow-proxy -m 0750 /var/lib/metaflow-proxy
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
  fi
fi
POSTINST
cat > "$stage/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
  systemctl stop metaflow-proxy.service >/dev/null 2>&1 || true
fi
PRERM
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm"

mkdir -p "$outdir"
deb="$outdir/metaflow-proxy_${version}_${arch}.deb"
# DEB_COMPRESSION=none builds fast (tests); the default is dpkg-deb's own (xz).
dpkg-deb --root-owner-group ${DEB_COMPRESSION:+-Z"$DEB_COMPRESSION"} --build "$stage" "$deb" >/dev/null
echo "$deb"
