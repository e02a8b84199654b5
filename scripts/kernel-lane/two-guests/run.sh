#!/bin/bash
# Boots the two guests at once under qemu (software emulation), joined by one virtual link: a
# qemu `-netdev stream` over a unix socket in $WORK (no other network; 10.77.0.1 the source,
# 10.77.0.2 the destination). Each guest has its own results directory as a 9p share
# ($WORK/source, $WORK/destination) and nothing else in common. The ssh keys are made here
# for this run. While the source's tests run, this script serves their requests to cut and
# restore the link ($WORK/source/share/ctl/link-off|link-on) through the source's QMP socket;
# when they end, it tells the destination to stop.
# Usage: WORK=/var/tmp/lcr-two-guests [LANE_TESTS=link-cut,old-criu] scripts/kernel-lane/two-guests/run.sh
set -euo pipefail
WORK=${WORK:-/var/tmp/lcr-two-guests}
MEM=${MEM:-2G}; SMP=${SMP:-2}; TIMEOUT=${TIMEOUT:-1200}
S=$WORK/source; D=$WORK/destination; LINK=$WORK/link.sock
rm -rf "$S/share" "$D/share" "$LINK" "$WORK"/*.qmp; mkdir -p "$S/share/ctl" "$D/share"

# Keys for this run only: the destination's host key and the source's client key.
K=$WORK/keys; rm -rf "$K"; mkdir -p "$K" "$S/share/keys" "$D/share/keys"
ssh-keygen -q -t ed25519 -N '' -C two-guests-host -f "$K/host"
ssh-keygen -q -t ed25519 -N '' -C two-guests-client -f "$K/client"
cp "$K/host" "$K/host.pub" "$D/share/keys/"; cp "$K/client.pub" "$D/share/keys/authorized_keys"
cp "$K/client" "$S/share/keys/"; echo "10.77.0.2 $(cat "$K/host.pub")" > "$S/share/keys/known_hosts"

# qmp GUEST COMMAND [ARGUMENTS_JSON] — one QMP command to a guest's qemu; prints its answer.
qmp() {
  local args='{}'; [ $# -lt 3 ] || args=$3
  python3 - "$WORK/$1.qmp" "$2" "$args" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(10)
f = s.makefile("rw")
def ask(cmd, args):
    f.write(json.dumps({"execute": cmd, "arguments": args}) + "\n"); f.flush()
    while True:
        m = json.loads(f.readline())
        if "return" in m or "error" in m:
            return m
json.loads(f.readline())          # the greeting
ask("qmp_capabilities", {})
print(json.dumps(ask(sys.argv[2], json.loads(sys.argv[3]))))
PY
}

# boot NAME ROLE_ARGS NETDEV_ARGS — one guest in the background; its pid in $BOOTED.
boot() {
  local name=$1 args=$2 net=$3 kver; kver=$(cat "$WORK/$name.kver")
  timeout "$TIMEOUT" qemu-system-x86_64 -accel tcg,thread=multi -cpu max -m "$MEM" -smp "$SMP" \
    -nographic -no-reboot -kernel "$WORK/kernels/$kver/boot/vmlinuz-$kver" -initrd "$WORK/$name.cpio" \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 psi=1 $args" \
    -virtfs "local,path=$WORK/$name/share,mount_tag=host,security_model=none,id=host" \
    -netdev "stream,id=net0,addr.type=unix,addr.path=$LINK,$net" \
    -device "virtio-net-pci,netdev=net0" \
    -qmp "unix:$WORK/$name.qmp,server=on,wait=off" \
    </dev/null > "$WORK/$name/share/console.log" 2>&1 &
  BOOTED=$!
}

t0=$(date +%s.%N)
boot destination "lane_ip=10.77.0.2/24 probe_script=/destination.sh" "server=on"; dst=$BOOTED
for _ in $(seq 100); do [ -S "$LINK" ] && break; sleep 0.1; done
[ -S "$LINK" ] || { cat "$D/share/console.log"; echo "two-guests: the destination's qemu never opened $LINK" >&2; kill $dst; exit 1; }
boot source "lane_ip=10.77.0.1/24 probe_script=/source-tests.sh${LANE_TESTS:+ lane_tests=$LANE_TESTS}" "server=off"; src=$BOOTED
trap 'kill $src $dst 2>/dev/null || true' EXIT

while kill -0 $src 2>/dev/null; do
  for st in off on; do
    if [ -e "$S/share/ctl/link-$st" ]; then
      up=false; [ $st = on ] && up=true
      echo "link $st at $(echo "$(date +%s.%N) - $t0" | bc)s: $(qmp source set_link "{\"name\": \"net0\", \"up\": $up}")"
      rm -f "$S/share/ctl/link-$st"; touch "$S/share/ctl/link-$st.done"
    fi
  done
  sleep 0.2
done
wait $src || echo "two-guests: the source's qemu exited $?"
touch "$D/share/stop"
for _ in $(seq 600); do kill -0 $dst 2>/dev/null || break; sleep 0.1; done
if kill -0 $dst 2>/dev/null; then qmp destination quit >/dev/null || kill $dst; fi
wait $dst 2>/dev/null || true
echo "qemu wall time: $(echo "$(date +%s.%N) - $t0" | bc)s, two guests at once"
