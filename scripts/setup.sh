#!/usr/bin/env bash
# One-time (idempotent) set-up of a fresh Debian 12 machine for lcr:
# apt packages, CRIU >= 4.1, the release build of lcr on PATH, and the busybox test rootfs.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); TOP=$(dirname "$HERE")
say() { echo "setup: $*"; }
[ "$(id -u)" = 0 ] || { echo "setup: must run as root" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive

APT_WHO=setup
. "$HERE/lib/packages.sh"
. "$HERE/lib/apt.sh"
# shellcheck disable=SC2086  # the list is words
pkg_need "scripts/setup.sh" $PKGS_SETUP

"$HERE/install-criu.sh"

say "building lcr (release)"
command -v cargo >/dev/null || { echo "setup: cargo not found: lcr needs a Rust toolchain (rustup) on PATH" >&2; exit 1; }
cargo build --release --manifest-path "$TOP/Cargo.toml" -q || { echo "setup: cargo build --release failed" >&2; exit 1; }
# Where cargo put it: CARGO_TARGET_DIR when the caller set one.
install -m 0755 "${CARGO_TARGET_DIR:-$TOP/target}/release/lcr" /usr/local/bin/lcr
say "installed $(command -v lcr)"

"$HERE/make-rootfs.sh" >/dev/null
say "done"
