#!/bin/bash
# Builds the lane: Debian 12's stock kernel (fetched with `apt-get download`, never installed
# as the host kernel) and an initramfs with busybox, CRIU, the release lcr, a busybox rootfs
# for containers, bundles (config.json made here, where python is), and the guest tests.
# Usage: WORK=/var/tmp/lcr-kernel-lane scripts/kernel-lane/build.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); TOP=$(cd "$HERE/../.." && pwd)
WORK=${WORK:-/var/tmp/lcr-kernel-lane}
CRIU=${CRIU:-/usr/local/sbin/criu}
LCR=${LCR:-${CARGO_TARGET_DIR:-$TOP/target}/release/lcr}
mkdir -p "$WORK"; cd "$WORK"

APT_WHO=kernel-lane
. "$TOP/scripts/lib/packages.sh"
. "$TOP/scripts/lib/apt.sh"
# shellcheck disable=SC2086  # the list is words
pkg_need "the kernel lane" $PKGS_KERNEL_LANE
[ -x "$LCR" ] || cargo build --release --manifest-path "$TOP/Cargo.toml" -q
[ -x "$CRIU" ] || "$TOP/scripts/install-criu.sh"

. "$HERE/lib.sh"
lane_kernel            # Debian 12's own kernel (6.1)
echo "$KVER" > kver
R=$WORK/initramfs
lane_tree "$R"
lane_rootfs "$R"
# Bundles, made here with the host's lcr spec and python.
python3 "$HERE/bundles.py" "$LCR" "$R/bundles"
lane_modules "$R"
cp "$HERE/guest-tests.sh" $R/guest-tests.sh; chmod +x $R/guest-tests.sh
lane_pack "$R" "$WORK/initramfs.cpio"
echo "kernel $KVER, initramfs $(du -h $WORK/initramfs.cpio | cut -f1)"
