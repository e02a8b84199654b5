# Every Debian package lcr's scripts install, by the step that needs it. Sourced by those
# scripts and by scripts/check-setup.sh, which simulates installing all of them on a machine
# that has none: a package named here that cannot be installed is red in the test command.

# scripts/setup.sh: building lcr, the test rootfs, the peers and clients the tests drive.
PKGS_SETUP="build-essential pkg-config libseccomp-dev busybox-static file runc crun iproute2 procps
openssh-server openssh-client podman containerd uidmap zstd iptables strace python3 bsdutils util-linux"

# scripts/install-criu.sh: fetching and building CRIU from source.
PKGS_CRIU_BUILD="build-essential pkgconf libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev
protobuf-compiler libnl-3-dev libnet1-dev libcap-dev libbsd-dev libgnutls28-dev libnftables-dev
uuid-dev libaio-dev python3-protobuf xz-utils dpkg-dev"

# scripts/kernel-lane/: Debian's kernels under qemu (one guest, then two joined by a virtual
# link), initramfs trees with busybox, CRIU and lcr; xz unpacks 6.12's modules.
PKGS_KERNEL_LANE="qemu-system-x86 busybox-static kmod cpio gcc libc6-dev bc tar iproute2 iptables
python3 openssh-server openssh-client xz-utils coreutils"

# scripts/bench/: the peers measured beside lcr and the tools that time them.
PKGS_BENCH="runc crun time gcc libc6-dev python3 zstd gzip tar openssh-server openssh-client iproute2
util-linux"

# scripts/make-services-rootfs.sh: mmdebstrap on this machine, and the packages it puts into
# the services rootfs (from the same mirror; named here so check-setup sees them resolve).
PKGS_SERVICES="mmdebstrap"
PKGS_SERVICES_ROOTFS="redis-server redis-tools postgresql python3 procps"

PKGS_ALL="$PKGS_SETUP $PKGS_CRIU_BUILD $PKGS_KERNEL_LANE $PKGS_BENCH $PKGS_SERVICES $PKGS_SERVICES_ROOTFS"
