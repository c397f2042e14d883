#!/usr/bin/env bash
# make deb: builds swiftpostmap_VERSION_ARCH.deb with dpkg-deb from the release binary.
#
#   make-deb.sh BIN VERSION OUTDIR
#
# The package holds /usr/bin/swiftpostmap, the man page (gzip'd, as Debian ships them) and
# the bash, zsh and fish completions. The binary links libdb, liblmdb, tinycdb and the Swift
# runtime statically, so the package depends only on glibc: on the libc6 version it was
# built against or later. It suggests postfix (whose tables it writes) and does not replace
# Postfix's own postmap and postalias.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:?usage: make-deb.sh BIN VERSION OUTDIR}"
version="${2:?usage: make-deb.sh BIN VERSION OUTDIR}"
outdir="${3:?usage: make-deb.sh BIN VERSION OUTDIR}"
arch=$(dpkg --print-architecture)
libc=$(dpkg-query -W -f='${Version}' libc6 | sed 's/-.*//')
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

DESTDIR="$stage" PREFIX=/usr ZSHDIR=/usr/share/zsh/vendor-completions GZIP_MAN=1 \
    scripts/install.sh install "$bin" >/dev/null
# dpkg keeps its own list of a package's files: no manifest in the package.
rm -rf "$stage/usr/share/swiftpostmap"
install -D -m 0644 /dev/stdin "$stage/usr/share/doc/swiftpostmap/copyright" <<COPYRIGHT
swiftpostmap: a replacement for Postfix's postmap(1) and postalias(1).
The binary includes, linked statically: Berkeley DB 5.3 (Sleepycat licence), LMDB (OpenLDAP
Public License), tinycdb (public domain) and the Swift runtime (Apache License 2.0 with
Runtime Library Exception). See /usr/share/common-licenses for the texts Debian ships.
COPYRIGHT

mkdir -p "$stage/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: swiftpostmap
Version: $version
Architecture: $arch
Maintainer: swiftpostmap developers <root@localhost>
Installed-Size: $size
Depends: libc6 (>= $libc)
Suggests: postfix
Section: mail
Priority: optional
Description: compile, query and check Postfix lookup tables without Postfix
 A drop-in replacement for postmap(1) and postalias(1) that writes hash, btree,
 lmdb and cdb tables Postfix reads, and checks map sources offline: lint,
 address resolution, expectation tests, verify, diff and integrity checks.
CONTROL
(cd "$stage" && find usr -type f -exec md5sum {} + | sort -k2) > "$stage/DEBIAN/md5sums"
find "$stage" -type d -exec chmod 0755 {} +
mkdir -p "$outdir"
deb="$outdir/swiftpostmap_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zgzip --build "$stage" "$deb" >/dev/null
echo "$deb"
