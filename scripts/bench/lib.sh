# What every benchmark does first (sourced after it sets TOP): root, the packages the
# benchmarks need, the lcr to measure (LCR, else the one on PATH, else the release build)
# and the busybox rootfs (ROOTFS).
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
APT_WHO=bench; . "$TOP/scripts/lib/packages.sh"; . "$TOP/scripts/lib/apt.sh"
# shellcheck disable=SC2086  # the list is words
pkg_need "the benchmarks" $PKGS_BENCH
LCR=$(readlink -f "${LCR:-$(command -v lcr || echo "${CARGO_TARGET_DIR:-$TOP/target}/release/lcr")}")
ROOTFS=$("$TOP/scripts/make-rootfs.sh")

# Removes the benchmark's cgroup tree /$1 from every hierarchy (v1 and v2), deepest first.
remove_cgroups() {
  local d
  for d in /sys/fs/cgroup/*/"$1" /sys/fs/cgroup/"$1"; do
    [ -d "$d" ] || continue
    find "$d" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null
    rmdir "$d" 2>/dev/null || true
  done
}
