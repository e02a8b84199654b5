#!/usr/bin/env bash
# Installs a CRIU that works on this kernel (>= 4.1) as /usr/local/sbin/criu, idempotently.
#
# Debian 12 ships criu 3.17, which fails on kernels >= 6.13 ("Unexpected rt vDSO area bounds").
# We build the orig tarball of Debian's newer source package (sid), fetched as deb-src only so
# no binary package on the host can be upgraded from sid. See ../shared/MACHINE.md.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)

MIN_MAJOR=4 MIN_MINOR=1
PREFIX=${CRIU_PREFIX:-/usr/local/sbin}
BUILD_DIR=${CRIU_BUILD_DIR:-/var/cache/lcr/criu-build}

say() { echo "install-criu: $*"; }
die() { echo "install-criu: ERROR: $*" >&2; exit 1; }

criu_ok() { # $1 = criu binary; true when version >= MIN and `criu check` passes
  local bin=$1 ver major minor
  [ -x "$bin" ] || return 1
  ver=$("$bin" --version 2>/dev/null | awk '/^Version:/{print $2; exit}') || return 1
  [ -n "$ver" ] || return 1
  major=${ver%%.*}; minor=${ver#*.}; minor=${minor%%.*}
  if [ "$major" -lt $MIN_MAJOR ] || { [ "$major" -eq $MIN_MAJOR ] && [ "$minor" -lt $MIN_MINOR ]; }; then
    say "$bin is version $ver, older than $MIN_MAJOR.$MIN_MINOR"; return 1
  fi
  if ! "$bin" check >/tmp/criu-check.$$ 2>&1; then
    say "$bin $ver fails 'criu check':"; tail -5 /tmp/criu-check.$$ >&2; rm -f /tmp/criu-check.$$; return 1
  fi
  rm -f /tmp/criu-check.$$
  say "using $bin version $ver ('criu check' passed)"
}

[ "$(id -u)" = 0 ] || die "must run as root (installs packages and $PREFIX/criu)"

if criu_ok "$PREFIX/criu"; then exit 0; fi
if dpkg -s criu >/dev/null 2>&1; then
  say "Debian's criu package is installed; it is broken on this kernel, removing it"
  apt-get remove -y criu >/dev/null
fi

export DEBIAN_FRONTEND=noninteractive
SRC_LIST=/etc/apt/sources.list.d/lcr-sid-src.sources
if [ ! -f $SRC_LIST ]; then
  say "adding a deb-src (source only) entry for sid: $SRC_LIST"
  cat > $SRC_LIST <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  apt-get update -q >/dev/null || die "apt-get update failed"
elif ! ls /var/lib/apt/lists/*sid*Sources* >/dev/null 2>&1; then
  apt-get update -q >/dev/null || die "apt-get update failed"
fi

APT_WHO=install-criu
. "$HERE/lib/packages.sh"
. "$HERE/lib/apt.sh"
# shellcheck disable=SC2086  # the list is words
pkg_need "building CRIU" $PKGS_CRIU_BUILD

mkdir -p "$BUILD_DIR"; cd "$BUILD_DIR"
if ! ls criu_*.dsc >/dev/null 2>&1 || ! ls criu_*.orig.tar.* >/dev/null 2>&1; then
  say "downloading CRIU source (sid) into $BUILD_DIR"
  # The .debian.tar.xz part may be missing from the mirror (apt exits 100); the orig tarball is enough.
  apt-get source --download-only criu >source.log 2>&1 || true
fi
DSC=$(ls criu_*.dsc 2>/dev/null | sort -V | tail -1) || true
[ -n "$DSC" ] || { tail -5 source.log >&2; die "no criu .dsc downloaded by 'apt-get source --download-only criu' (is the sid deb-src entry $SRC_LIST reachable?)"; }
ORIG=$(ls criu_*.orig.tar.* 2>/dev/null | sort -V | tail -1) || true
[ -n "$ORIG" ] || die "no criu orig tarball downloaded next to $DSC"

# Verify the tarball against the SHA-256 that the .dsc lists for it.
want=$(awk -v f="$ORIG" '/^Checksums-Sha256:/{on=1; next} /^[^ ]/{on=0} on && $3==f {print $1}' "$DSC")
[ -n "$want" ] || die "$DSC lists no SHA-256 for $ORIG"
have=$(sha256sum "$ORIG" | cut -d' ' -f1)
[ "$want" = "$have" ] || die "$ORIG: SHA-256 $have does not match $DSC ($want)"
say "$ORIG: SHA-256 matches $DSC"

VER=${ORIG#criu_}; VER=${VER%.orig.tar.*}
SRC=criu-$VER
[ -d "$SRC" ] || tar xf "$ORIG"
say "building CRIU $VER (make -j$(nproc) criu)"
make -C "$SRC" -j"$(nproc)" criu >build.log 2>&1 || { tail -30 build.log >&2; die "CRIU build failed (log: $BUILD_DIR/build.log)"; }
install -m 0755 "$SRC/criu/criu" "$PREFIX/criu"
criu_ok "$PREFIX/criu" || die "freshly built $PREFIX/criu does not pass 'criu check'"
say "installed CRIU $VER as $PREFIX/criu"
