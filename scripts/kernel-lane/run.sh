#!/bin/bash
# Boot the Debian kernel + initramfs under qemu; results come back through a 9p share
# ($WORK/share -> /mnt/host in the guest) and the serial console log ($WORK/share/console.log).
# Usage: WORK=/tmp/kvmprobe ACCEL=auto|kvm|tcg MEM=2G SMP=2 ./run.sh [extra kernel args]
set -euo pipefail
WORK=${WORK:-/var/tmp/lcr-kernel-lane}; KVER=$(cat $WORK/kver)
MEM=${MEM:-2G}; SMP=${SMP:-2}; ACCEL=${ACCEL:-tcg}; SHARE=${SHARE:-$WORK/share}
mkdir -p "$SHARE"; rm -rf "$SHARE"/{results.txt,guest.log,criu-logs,console.log}
# Default is TCG (pure emulation). On this Firecracker guest /dev/kvm opens and KVM_CREATE_VM
# works, but: "-cpu host" aborts with "failed to set MSR 0x10a" (IA32_ARCH_CAPABILITIES); with
# "-cpu host,-arch-capabilities" SeaBIOS runs, then the Linux kernel hangs right after hand-off
# (qemu at 100% sys in KVM_RUN, no earlyprintk output). ACCEL=kvm is kept only for retesting.
# psi=1: Debian builds PSI in but off by default; lcr events reads memory pressure from it.
case $ACCEL in
  kvm)  A=(-accel kvm -cpu host,-arch-capabilities);;
  tcg)  A=(-accel tcg,thread=multi -cpu max);;
esac
echo "accel=$ACCEL mem=$MEM smp=$SMP"
t0=$(date +%s.%N)
timeout ${TIMEOUT:-900} qemu-system-x86_64 "${A[@]}" -m "$MEM" -smp "$SMP" -nographic -no-reboot \
  -kernel $WORK/kernels/$KVER/boot/vmlinuz-$KVER -initrd $WORK/initramfs.cpio \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 psi=1 ${*:-}" \
  -virtfs local,path=$SHARE,mount_tag=host,security_model=none,id=host \
  -nic none </dev/null 2>&1 | tee "$SHARE/console.log"
t1=$(date +%s.%N)
echo "qemu wall time: $(echo "$t1 - $t0" | bc)s (accel=$ACCEL)" | tee -a "$SHARE/console.log"
