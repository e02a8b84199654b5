#!/usr/bin/env bash
# One-time (idempotent) set-up of a fresh Debian 12 machine for lcr:
# apt packages, CRIU >= 4.1, the release build of lcr on PATH, and the busybox test rootfs.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); TOP=$(dirname "$HERE")
say() { echo "setup: $*"; }
[ "$(id -u)" = 0 ] || { echo "setup: must run as root" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive

PKGS="build-essential pkg-config libseccomp-dev busybox-static runc crun iproute2 procps
openssh-server openssh-client podman uidmap zstd iptables strace"
missing=$(for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
  ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1 || apt-get update -q >/dev/null
  say "installing:" $missing
  apt-get install -y -q --no-install-recommends $missing >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $missing >/dev/null; }
fi

"$HERE/install-criu.sh"

say "building lcr (release)"
cargo build --release --manifest-path "$TOP/Cargo.toml" -q
install -m 0755 "$TOP/target/release/lcr" /usr/local/bin/lcr
say "installed $(command -v lcr)"

"$HERE/make-rootfs.sh" >/dev/null
say "done"
