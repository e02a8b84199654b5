# What every benchmark does first (sourced after it sets TOP): root, the packages the
# benchmarks need, the lcr to measure (LCR, else the one on PATH, else the release build)
# and the busybox rootfs (ROOTFS).
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
APT_WHO=bench; . "$TOP/scripts/lib/packages.sh"; . "$TOP/scripts/lib/apt.sh"
# shellcheck disable=SC2086  # the list is words
pkg_need "the benchmarks" $PKGS_BENCH
LCR=$(readlink -f "${LCR:-$(command -v lcr || echo "${CARGO_TARGET_DIR:-$TOP/target}/release/lcr")}")
ROOTFS=$("$TOP/scripts/make-rootfs.sh")
