#!/usr/bin/env bash
# Builds a busybox root filesystem for test containers from Debian's busybox-static.
# Usage: make-rootfs.sh [DIR]   (default /var/cache/lcr/rootfs-busybox); prints DIR.
# Idempotent: an existing rootfs with the same busybox binary is kept.
set -euo pipefail
DIR=${1:-${LCR_ROOTFS:-/var/cache/lcr/rootfs-busybox}}
BB=/bin/busybox
if ! "$BB" --list >/dev/null 2>&1 || ! file -L "$BB" 2>/dev/null | grep -q static; then
  APT_WHO=make-rootfs
  . "$(dirname "$0")/lib/apt.sh"
  pkg_need "the test rootfs" busybox-static file
fi
if [ -x "$DIR/bin/busybox" ] && cmp -s "$BB" "$DIR/bin/busybox" && [ -e "$DIR/etc/passwd" ]; then
  echo "$DIR"; exit 0
fi
rm -rf "$DIR.tmp"; mkdir -p "$DIR.tmp"
cd "$DIR.tmp"
mkdir -p bin sbin etc proc sys dev tmp root var/log usr/bin usr/sbin
chmod 1777 tmp
cp "$BB" bin/busybox
for a in $(bin/busybox --list); do [ -e "bin/$a" ] || ln -s busybox "bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > etc/passwd
printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' > etc/group
echo "lcr-test" > etc/hostname
cd /
rm -rf "$DIR"; mv "$DIR.tmp" "$DIR"
echo "$DIR"
