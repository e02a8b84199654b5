#!/bin/bash
# Builds the two-guest lane: the source guest on Debian 12's kernel (6.1) and the destination
# guest on bookworm-backports' (6.12), each with an initramfs of its own. Both kernels are
# fetched with `apt-get download` and never installed on the host. The source has the busybox
# rootfs, the bundles and the tests; the destination has no rootfs (it arrives with
# --rootfs copy), and Debian 12's CRIU 3.17 beside the current one (a destination that must
# refuse).
# Usage: WORK=/var/tmp/lcr-two-guests scripts/kernel-lane/two-guests/build.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); LANE=$(cd "$HERE/.." && pwd); TOP=$(cd "$LANE/../.." && pwd)
WORK=${WORK:-/var/tmp/lcr-two-guests}
CRIU=${CRIU:-/usr/local/sbin/criu}
LCR=${LCR:-${CARGO_TARGET_DIR:-$TOP/target}/release/lcr}
mkdir -p "$WORK"; cd "$WORK"

APT_WHO=two-guests
. "$TOP/scripts/lib/packages.sh"
. "$TOP/scripts/lib/apt.sh"
# shellcheck disable=SC2086  # the list is words
pkg_need "the kernel lane" $PKGS_KERNEL_LANE
[ -x "$LCR" ] || cargo build --release --manifest-path "$TOP/Cargo.toml" -q
[ -x "$CRIU" ] || "$TOP/scripts/install-criu.sh"
. "$LANE/lib.sh"

# GNU date: the guests compare their clocks to the millisecond (busybox's date has no %N).
guest_tools() { lane_copy "$1" "$(command -v date)" /usr/local/bin/date; }

# 1. The source: 6.1, the rootfs with memtouch, the bundles, the tests.
lane_kernel
echo "$KVER" > source.kver
R=$WORK/source.tree
lane_tree "$R"; guest_tools "$R"; lane_rootfs "$R"
python3 "$LANE/bundles.py" "$LCR" "$R/bundles" two
lane_modules "$R"
cp "$HERE/source-tests.sh" $R/source-tests.sh
lane_pack "$R" "$WORK/source.cpio"
echo "source: kernel $KVER, initramfs $(du -h source.cpio | cut -f1)"

# 2. The destination: 6.12 from backports, no rootfs, CRIU 3.17 under /opt for the refusal.
apt_add_backports || { echo "two-guests: cannot add $APT_BACKPORTS, where the destination's kernel comes from" >&2; exit 1; }
lane_kernel "$APT_BACKPORTS"
echo "$KVER" > destination.kver
R=$WORK/destination.tree
lane_tree "$R"; guest_tools "$R"
if [ ! -x old-criu/usr/sbin/criu ]; then
  rm -rf old-criu old-criu.deb.d; mkdir old-criu.deb.d
  (cd old-criu.deb.d && apt-get download criu) >old-criu.log 2>&1 ||
    { tail -5 old-criu.log >&2; echo "two-guests: apt-get download criu (Debian 12's CRIU, the old one) failed" >&2; exit 1; }
  dpkg -x old-criu.deb.d/*.deb old-criu; dpkg-deb -f old-criu.deb.d/*.deb Version > old-criu/VERSION
  rm -rf old-criu.deb.d
fi
lane_copy "$R" old-criu/usr/sbin/criu /opt/criu-old/criu
printf '#!/bin/sh\n# lcr with Debian 12'"'"'s CRIU first on PATH (the destination that must refuse)\nPATH=/opt/criu-old:$PATH exec /usr/local/bin/lcr "$@"\n' > $R/usr/local/bin/lcr-old-criu
cp "$HERE/there.sh" $R/usr/local/bin/lane-there
chmod 755 $R/usr/local/bin/lcr-old-criu $R/usr/local/bin/lane-there
lane_modules "$R"
cp "$HERE/destination.sh" $R/destination.sh
lane_pack "$R" "$WORK/destination.cpio"
echo "destination: kernel $KVER, old CRIU $(cat old-criu/VERSION), initramfs $(du -h destination.cpio | cut -f1)"
