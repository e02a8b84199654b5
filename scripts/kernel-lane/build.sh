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

# 1. The kernel linux-image-amd64 depends on (e.g. linux-image-6.1.0-xx-amd64), cached.
KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
KVER=${KPKG#linux-image-}
if [ ! -f kpkg/boot/vmlinuz-$KVER ]; then
  [ -n "$KPKG" ] || { echo "kernel-lane: apt-cache finds no kernel package linux-image-amd64 depends on" >&2; exit 1; }
  rm -f ${KPKG}_*.deb
  apt-get download "$KPKG" >download.log 2>&1 || { tail -5 download.log >&2; echo "kernel-lane: apt-get download $KPKG failed" >&2; exit 1; }
  rm -rf kpkg; mkdir kpkg; dpkg -x ${KPKG}_*.deb kpkg
  depmod -b kpkg "$KVER"
fi
echo "$KVER" > kver

# 2. The initramfs tree.
R=$WORK/initramfs; rm -rf "$R"
mkdir -p $R/{bin,sbin,etc,proc,sys,dev,tmp,run,mnt/host,lib/modules,usr/local/sbin,usr/local/bin,usr/sbin,usr/bin,var/log,lib64}
cp /bin/busybox $R/bin/busybox
for a in $($R/bin/busybox --list); do [ -e $R/bin/$a ] || ln -s busybox $R/bin/$a; done
copy_with_libs() { # $1 binary, $2 destination path in the initramfs
  cp "$1" "$R$2"
  for lib in $(ldd "$1" | awk '/=>/{print $3} /^\s*\/lib/{print $1}'); do
    mkdir -p "$R$(dirname "$lib")"; cp -Ln "$lib" "$R$lib" 2>/dev/null || true
  done
}
copy_with_libs "$CRIU" /usr/local/sbin/criu
copy_with_libs "$LCR" /usr/local/bin/lcr
# CRIU runs GNU tar for tmpfs contents and iproute2's ip for routes: busybox's do not do.
copy_with_libs "$(command -v tar)" /usr/local/sbin/tar
copy_with_libs "$(command -v ip)" /usr/local/sbin/ip
# CRIU saves and restores a network namespace's firewall with the iptables tools (Debian's
# xtables multi-binary picks its job from its name).
for t in iptables-save iptables-restore ip6tables-save ip6tables-restore; do
  copy_with_libs "$(readlink -f "$(command -v $t)")" /usr/local/sbin/$t
done
# OpenSSH for the migration test bed inside the guest (two network namespaces, sshd in one).
copy_with_libs /usr/sbin/sshd /usr/sbin/sshd
copy_with_libs "$(command -v ssh)" /usr/bin/ssh
copy_with_libs "$(command -v ssh-keygen)" /usr/bin/ssh-keygen
XT=/usr/lib/x86_64-linux-gnu/xtables   # its match extensions (CRIU's lock rules use `mark`)
mkdir -p "$R$(dirname $XT)"; cp -a "$XT" "$R$XT"
cp -L /lib64/ld-linux-x86-64.so.2 $R/lib64/
# Containers: the busybox rootfs with the memtouch workload.
ROOTFS=$("$TOP/scripts/make-rootfs.sh")
cp -a "$ROOTFS" $R/rootfs
gcc -O2 -static -o $R/rootfs/bin/memtouch "$TOP/tests/workloads/memtouch.c"
# Bundles, made here with the host's lcr spec and python.
python3 "$HERE/bundles.py" "$LCR" "$R/bundles"
# Modules: 9p share, virtio, socket diag (CRIU dumps sockets through *_diag), overlay, veth, tun, nft.
: > $R/modules.load
for m in virtio_pci 9pnet_virtio 9p unix_diag tcp_diag udp_diag af_packet_diag netlink_diag overlay veth tun nf_tables nft_compat xt_mark nf_conntrack xt_conntrack; do
  modprobe -d kpkg -S $KVER --show-depends $m | awk '$1=="insmod"{print $2}' | while read -r ko; do
    rel=${ko#$WORK/kpkg}; mkdir -p $R$(dirname $rel); cp -n $ko $R$rel
    grep -qx "$rel" $R/modules.load || echo "$rel" >> $R/modules.load
  done
done
cp "$HERE/guest-init.sh" $R/init; chmod +x $R/init
cp "$HERE/guest-tests.sh" $R/guest-tests.sh; chmod +x $R/guest-tests.sh
# sshd drops privileges to the sshd user in /run/sshd.
printf 'root:x:0:0:root:/root:/bin/sh\nsshd:x:100:65534::/run/sshd:/bin/false\n' > $R/etc/passwd
printf 'root:x:0:\nnogroup:x:65534:\n' > $R/etc/group
(cd $R && find . -print0 | cpio --null -o -H newc --quiet) > $WORK/initramfs.cpio
echo "kernel $KVER, initramfs $(du -h $WORK/initramfs.cpio | cut -f1)"
