#!/usr/bin/env bash
# Builds a minimal Debian 12 root filesystem with real services for tests and benchmarks:
# redis-server, postgresql (a cluster made with initdb in /var/lib/postgresql/lcr, owned by
# the postgres user) and python3, from Debian's mirror with mmdebstrap.
# Usage: make-services-rootfs.sh [DIR]   (default /var/cache/lcr/rootfs-services); prints DIR.
# Idempotent: a complete rootfs (its stamp file naming the same package list) is kept.
set -euo pipefail
DIR=${1:-${LCR_SERVICES_ROOTFS:-/var/cache/lcr/rootfs-services}}
HERE=$(cd "$(dirname "$0")" && pwd)
say() { echo "make-services-rootfs: $*" >&2; }
. "$HERE/lib/packages.sh"
INCLUDE=$(echo $PKGS_SERVICES_ROOTFS | tr ' ' ',')
STAMP="$DIR/.lcr-rootfs"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$INCLUDE" ]; then
  echo "$DIR"; exit 0
fi
if ! command -v mmdebstrap >/dev/null; then
  APT_WHO=make-services-rootfs
  . "$HERE/lib/apt.sh"
  pkg_need "the services rootfs" mmdebstrap
fi
MIRROR=${LCR_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
LOG=$(mktemp /tmp/lcr-mmdebstrap.XXXXXX)
say "building $DIR ($SUITE from $MIRROR: $INCLUDE)"
rm -rf "$DIR.tmp"; mkdir -p "$(dirname "$DIR")"
# The cluster is made at build time (as the postgres user, trust auth on the local socket and
# on loopback) so that a container starts postgres at once; the packaged cluster is not used.
if ! mmdebstrap --variant=apt --components=main --include="$INCLUDE" \
  --customize-hook='chroot "$1" runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb --no-sync -A trust -E UTF8 --locale=C -D /var/lib/postgresql/lcr >/dev/null' \
  --customize-hook='printf "listen_addresses = '"'"'127.0.0.1'"'"'\nunix_socket_directories = '"'"'/tmp'"'"'\nfsync = off\n" >> "$1/var/lib/postgresql/lcr/postgresql.conf"' \
  --customize-hook='rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*' \
  "$SUITE" "$DIR.tmp" "$MIRROR" >"$LOG" 2>&1; then
  say "mmdebstrap failed (log: $LOG):"; tail -15 "$LOG" | sed 's/^/    /' >&2
  rm -rf "$DIR.tmp"; exit 1
fi
rm -f "$LOG"
echo "$INCLUDE" > "$DIR.tmp/.lcr-rootfs"
rm -rf "$DIR"; mv "$DIR.tmp" "$DIR"
say "done: $(du -sh "$DIR" | cut -f1)"
echo "$DIR"
