# What the lanes' builds share (sourced by build.sh and two-guests/build.sh): a Debian kernel
# fetched with `apt-get download` (never installed as the host's kernel), an initramfs tree
# with busybox, CRIU, lcr and the tools they run, the kernel's modules, and the packing.
# Needs TOP (the checkout), WORK, CRIU and LCR set.

# lane_kernel [SUITE] — unpacks the kernel that linux-image-amd64 depends on (in SUITE, e.g.
# bookworm-backports; default the release) under $WORK/kernels/VERSION, cached; sets KVER and
# KDIR (the unpacked package: boot/vmlinuz-$KVER, lib/modules/$KVER).
lane_kernel() {
  local suite=${1:-} pkg; local -a topt=()
  [ -z "$suite" ] || topt=(-t "$suite")
  pkg=$(apt-cache depends "${topt[@]}" linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
  [ -n "$pkg" ] || { echo "kernel-lane: apt-cache finds no kernel package linux-image-amd64 depends on${suite:+ in $suite}" >&2; return 1; }
  KVER=${pkg#linux-image-}; KDIR=$WORK/kernels/$KVER
  [ -f "$KDIR/boot/vmlinuz-$KVER" ] && return 0
  local dl=$WORK/kernels/download; rm -rf "$dl"; mkdir -p "$dl"
  (cd "$dl" && apt-get download "$pkg") >"$dl.log" 2>&1 ||
    { tail -5 "$dl.log" >&2; echo "kernel-lane: apt-get download $pkg${suite:+ (from $suite)} failed" >&2; return 1; }
  rm -rf "$KDIR"; mkdir -p "$KDIR"; dpkg -x "$dl"/*.deb "$KDIR"; rm -rf "$dl"
  depmod -b "$KDIR" "$KVER"
}

# lane_copy R BINARY PATH — BINARY at PATH in the tree R, with the shared libraries ldd names.
lane_copy() {
  local r=$1 bin=$2 dest=$3 lib
  mkdir -p "$r$(dirname "$dest")"; cp "$bin" "$r$dest"
  if ldd "$bin" | grep -q 'not found'; then
    echo "kernel-lane: $bin needs libraries this host lacks: $(ldd "$bin" | awk '/not found/{print $1}' | paste -sd' ')" >&2; return 1
  fi
  for lib in $(ldd "$bin" | awk '/=>/{print $3} /^\s*\/lib/{print $1}'); do
    mkdir -p "$r$(dirname "$lib")"; cp -Ln "$lib" "$r$lib" 2>/dev/null || true
  done
}

# lane_tree R — a fresh initramfs tree at R: busybox, CRIU, lcr, the tools CRIU runs, OpenSSH,
# the guest's /init and the guest library.
lane_tree() {
  local r=$1 a t
  rm -rf "$r"
  mkdir -p $r/{bin,sbin,etc,proc,sys,dev,tmp,run,mnt/host,lib/modules,usr/local/sbin,usr/local/bin,usr/sbin,usr/bin,var/log,lib64}
  cp /bin/busybox $r/bin/busybox
  for a in $($r/bin/busybox --list); do [ -e $r/bin/$a ] || ln -s busybox $r/bin/$a; done
  lane_copy "$r" "$CRIU" /usr/local/sbin/criu
  lane_copy "$r" "$LCR" /usr/local/bin/lcr
  # CRIU runs GNU tar for tmpfs contents and iproute2's ip for routes: busybox's do not do.
  lane_copy "$r" "$(command -v tar)" /usr/local/sbin/tar
  lane_copy "$r" "$(command -v ip)" /usr/local/sbin/ip
  # CRIU saves and restores a network namespace's firewall with the iptables tools (Debian's
  # xtables multi-binary picks its job from its name).
  for t in iptables-save iptables-restore ip6tables-save ip6tables-restore; do
    lane_copy "$r" "$(readlink -f "$(command -v $t)")" /usr/local/sbin/$t
  done
  lane_copy "$r" /usr/sbin/sshd /usr/sbin/sshd
  lane_copy "$r" "$(command -v ssh)" /usr/bin/ssh
  lane_copy "$r" "$(command -v ssh-keygen)" /usr/bin/ssh-keygen
  local xt=/usr/lib/x86_64-linux-gnu/xtables   # its match extensions (CRIU's lock rules use `mark`)
  mkdir -p "$r$(dirname $xt)"; cp -a "$xt" "$r$xt"
  cp -L /lib64/ld-linux-x86-64.so.2 $r/lib64/
  cp "$TOP/scripts/kernel-lane/guest-init.sh" $r/init; chmod +x $r/init
  cp "$TOP/scripts/kernel-lane/guest-lib.sh" $r/guest-lib.sh
  # sshd drops privileges to the sshd user in /run/sshd.
  printf 'root:x:0:0:root:/root:/bin/sh\nsshd:x:100:65534::/run/sshd:/bin/false\n' > $r/etc/passwd
  printf 'root:x:0:\nnogroup:x:65534:\n' > $r/etc/group
}

# The modules every guest loads: 9p share, virtio (disk-less: pci, net), socket diag (CRIU dumps
# sockets through *_diag), overlay, veth, tun, nftables and the xtables matches CRIU's lock uses.
LANE_MODULES="virtio_pci virtio_net 9pnet_virtio 9p unix_diag tcp_diag udp_diag af_packet_diag netlink_diag overlay veth tun nf_tables nft_compat xt_mark nf_conntrack xt_conntrack"

# lane_modules R — the modules of $KDIR/$KVER in R with their dependencies, in load order in
# R/modules.load; compressed ones (6.12 ships .ko.xz) unpacked, as busybox's insmod wants.
lane_modules() {
  local r=$1 m ko rel
  : > $r/modules.load
  for m in $LANE_MODULES; do
    modprobe -d "$KDIR" -S "$KVER" --show-depends $m | awk '$1=="insmod"{print $2}' | while read -r ko; do
      rel=${ko#"$KDIR"}; rel=${rel%.xz}
      [ -e "$r$rel" ] || { mkdir -p "$r$(dirname "$rel")"
        case $ko in *.xz) xz -dc "$ko" > "$r$rel";; *) cp "$ko" "$r$rel";; esac; }
      grep -qx "$rel" $r/modules.load || echo "$rel" >> $r/modules.load
    done
  done
  [ -s $r/modules.load ] || { echo "kernel-lane: no modules found for $KVER in $KDIR" >&2; return 1; }
}

# lane_rootfs R — the busybox rootfs for containers at R/rootfs, with the memtouch workload.
lane_rootfs() {
  local r=$1
  cp -a "$("$TOP/scripts/make-rootfs.sh")" $r/rootfs
  gcc -O2 -static -o $r/rootfs/bin/memtouch "$TOP/tests/workloads/memtouch.c"
}

# lane_pack R OUT — the tree as a newc cpio archive.
lane_pack() { (cd "$1" && find . -print0 | cpio --null -o -H newc --quiet) > "$2"; }
