#!/usr/bin/env bash
# Container lifecycle speed: lcr against Debian's runc and crun on the same busybox bundle.
#   run      : `RUNTIME run ID` of /bin/true (create + start + wait + delete)
#   cycle    : `create`, `start`, `delete --force` as three commands
# Interleaved (lcr, runc, crun, lcr, …), N rounds (default 30); prints median and p95 in ms
# and the ratios lcr/runc and lcr/crun (below 1 = lcr faster).
# crun refuses a hybrid cgroup layout, so the whole loop runs in a private mount namespace
# with a tmpfs over /sys/fs/cgroup/unified — the same for all three runtimes.
set -euo pipefail
N=${1:-30}
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/scripts/bench/lib.sh"
WORK=$(mktemp -d /tmp/lcr-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/bundle"; cp -a "$ROOTFS" "$WORK/bundle/rootfs"
"$LCR" spec --bundle "$WORK/bundle"
python3 - "$WORK/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["linux"]["cgroupsPath"] = "/lcr-bench/CG"   # replaced per run below
json.dump(c, open(p, "w"), indent=1)
PY
export LCR N WORK
unshare -m --propagation private bash -s <<'INNER'
set -euo pipefail
mount -t tmpfs none /sys/fs/cgroup/unified
now() { date +%s%N; }
declare -A cfg
for rt in lcr runc crun; do
  mkdir -p "$WORK/b-$rt"
  sed -e "s#/lcr-bench/CG#/lcr-bench/$rt#" -e "s#\"path\": \"rootfs\"#\"path\": \"$WORK/bundle/rootfs\"#" \
    "$WORK/bundle/config.json" > "$WORK/b-$rt/config.json"
done
bin() { case $1 in lcr) echo "$LCR";; *) echo "$1";; esac; }
for i in $(seq 1 "$N"); do
  for rt in lcr runc crun; do
    B=$(bin $rt); R="$WORK/root-$rt"; id="b$i"
    t0=$(now); "$B" --root "$R" run --bundle "$WORK/b-$rt" "$id-r" >/dev/null; t1=$(now)
    echo "$rt run $(( (t1 - t0) / 1000 ))" >> "$WORK/times"
    t0=$(now)
    "$B" --root "$R" create --bundle "$WORK/b-$rt" "$id-c" </dev/null >/dev/null 2>&1
    "$B" --root "$R" start "$id-c"
    "$B" --root "$R" delete --force "$id-c"
    t1=$(now)
    echo "$rt cycle $(( (t1 - t0) / 1000 ))" >> "$WORK/times"
  done
done
INNER
remove_cgroups lcr-bench
python3 - "$WORK/times" "$N" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
t = {}
for rt, op, us in rows:
    t.setdefault((rt, op), []).append(int(us) / 1000)
def p95(v):
    v = sorted(v); return v[min(len(v) - 1, int(round(0.95 * (len(v) - 1))))]
print(f"lifecycle benchmark, {sys.argv[2]} interleaved rounds (ms)")
print(f"{'op':<7}{'runtime':<8}{'median':>9}{'p95':>9}")
for op in ("run", "cycle"):
    for rt in ("lcr", "runc", "crun"):
        v = t[(rt, op)]
        print(f"{op:<7}{rt:<8}{statistics.median(v):>9.2f}{p95(v):>9.2f}")
    m = {rt: statistics.median(t[(rt, op)]) for rt in ("lcr", "runc", "crun")}
    print(f"{op:<7}ratio   lcr/runc {m['lcr']/m['runc']:.2f}   lcr/crun {m['lcr']/m['crun']:.2f}")
PY
