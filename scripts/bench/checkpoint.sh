#!/usr/bin/env bash
# Checkpoint and restore speed and image size: lcr against Debian's runc, both with the same
# CRIU, on the same busybox bundle running memtouch (M MiB touched; M = 64, 512, 2048).
# Interleaved rounds, alternating which runtime goes first, a sync before each timed step
# (default 3; `ROUNDS=5 scripts/bench/checkpoint.sh 64 512`); prints
# medians of checkpoint time, restore time, image size, and the ratios lcr/runc.
set -euo pipefail
SIZES=${*:-64 512 2048}
ROUNDS=${ROUNDS:-3}
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/scripts/bench/lib.sh"
# BENCH_DIR=/dev/shm keeps the images in memory, out of the way of disk writeback.
WORK=$(mktemp -d "${BENCH_DIR:-/var/tmp}/lcr-ckbench.XXXXXX")
cleanup() {
  for rt in lcr runc; do
    B=$([ $rt = lcr ] && echo "$LCR" || echo runc)
    for id in $("$B" --root "$WORK/root-$rt" list -q 2>/dev/null); do "$B" --root "$WORK/root-$rt" delete -f "$id" >/dev/null 2>&1 || true; done
  done
  remove_cgroups lcr-ckbench
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/rootfs"; cp -a "$ROOTFS/." "$WORK/rootfs/"
gcc -O2 -static -o "$WORK/rootfs/bin/memtouch" "$TOP/tests/workloads/memtouch.c"
mkdir -p "$WORK/out"
now() { date +%s%N; }
bundle() { # $1 runtime $2 MiB → bundle dir with its own cgroup path
  local b="$WORK/b-$1-$2"; mkdir -p "$b"
  "$LCR" spec --bundle "$b" >/dev/null 2>&1 || true
  python3 - "$b/config.json" "$WORK/rootfs" "$1" "$2" "$WORK/out" <<'PY'
import json, sys
p, rootfs, rt, mib, out = sys.argv[1:]
c = json.load(open(p))
c["root"] = {"path": rootfs, "readonly": False}
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/memtouch", mib, "/out/ready"]
c["linux"]["cgroupsPath"] = f"/lcr-ckbench/{rt}-{mib}"
c["mounts"].append({"destination": "/out", "type": "bind", "source": f"{out}/{rt}", "options": ["rbind", "rw"]})
json.dump(c, open(p, "w"), indent=1)
PY
  mkdir -p "$WORK/out/$1"; echo "$b"
}
for M in $SIZES; do
  for r in $(seq 1 "$ROUNDS"); do
    # Alternate who goes first, so writeback of the previous images hits both alike.
    order="lcr runc"; [ $((r % 2)) = 0 ] && order="runc lcr"
    for rt in $order; do
      B=$([ $rt = lcr ] && echo "$LCR" || echo runc)
      R="$WORK/root-$rt"; bd=$(bundle $rt "$M"); id="$rt-$M-$r"; img="$WORK/img-$id"
      rm -f "$WORK/out/$rt/ready"
      (cd "$bd" && "$B" --root "$R" run -d --bundle "$bd" "$id" </dev/null >/dev/null 2>&1)
      for _ in $(seq 1 600); do [ -s "$WORK/out/$rt/ready" ] && break; sleep 0.1; done
      [ -s "$WORK/out/$rt/ready" ] || { echo "$rt: workload did not start" >&2; exit 1; }
      sync
      t0=$(now); "$B" --root "$R" checkpoint --image-path "$img" "$id" </dev/null >/dev/null; t1=$(now)
      size=$(du -sb "$img" | cut -f1)
      sync
      t2=$(now); (cd "$bd" && "$B" --root "$R" restore -d --bundle "$bd" --image-path "$img" "$id" </dev/null >/dev/null 2>&1); t3=$(now)
      "$B" --root "$R" state "$id" | grep '"running"' >/dev/null || { echo "$rt: restored container not running" >&2; exit 1; }
      "$B" --root "$R" delete -f "$id" >/dev/null
      rm -rf "$img"
      echo "$M $rt $(( (t1 - t0) / 1000 )) $(( (t3 - t2) / 1000 )) $size" >> "$WORK/results"
    done
  done
done
python3 - "$WORK/results" "$ROUNDS" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
print(f"checkpoint benchmark, {sys.argv[2]} interleaved rounds, medians")
print(f"{'MiB':>6} {'runtime':<8}{'checkpoint ms':>15}{'restore ms':>12}{'image MiB':>11}")
for m in sorted({int(r[0]) for r in rows}):
    med = {}
    for rt in ("lcr", "runc"):
        v = [r for r in rows if int(r[0]) == m and r[1] == rt]
        med[rt] = [statistics.median(int(x[i]) for x in v) for i in (2, 3, 4)]
        c, rs, s = med[rt]
        print(f"{m:>6} {rt:<8}{c/1000:>15.1f}{rs/1000:>12.1f}{s/2**20:>11.1f}")
    l, r = med["lcr"], med["runc"]
    print(f"{m:>6} ratio    lcr/runc checkpoint {l[0]/r[0]:.2f}  restore {l[1]/r[1]:.2f}  size {l[2]/r[2]:.2f}")
PY
