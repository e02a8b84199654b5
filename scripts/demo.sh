#!/usr/bin/env bash
# The main job, end to end: set up the machine, then run a busybox container with lcr and
# show it working (state, ps, exec, pause/resume, stats, delete).
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
"$TOP/scripts/setup.sh"
ROOTFS=$("$TOP/scripts/make-rootfs.sh")
WORK=$(mktemp -d /tmp/lcr-demo.XXXXXX)
ID=demo-$$
ROOT=$WORK/state
cleanup() { lcr --root "$ROOT" delete --force "$ID" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

mkdir -p "$WORK/bundle"; cp -a "$ROOTFS" "$WORK/bundle/rootfs"
cd "$WORK/bundle"
lcr spec
# A counter that logs to a host directory mounted at /out; no terminal; limits to show.
python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /out/count; sleep 0.1; done"]
c["root"]["readonly"] = False
c["mounts"].append({"destination": "/out", "type": "bind", "source": "../out", "options": ["rbind", "rw"]})
c["linux"]["resources"]["memory"] = {"limit": 64 << 20}
c["linux"]["resources"]["pids"] = {"limit": 32}
json.dump(c, open("config.json", "w"), indent=2)
PY
mkdir -p "$WORK/out"
step lcr --root "$ROOT" run -d --bundle . "$ID"
sleep 0.5
step lcr --root "$ROOT" state "$ID"
step lcr --root "$ROOT" ps "$ID"
step lcr --root "$ROOT" exec "$ID" sh -c 'echo "inside: pid $$ on $(hostname), count $(cat /out/count)"'
step lcr --root "$ROOT" pause "$ID"
a=$(cat "$WORK/out/count"); sleep 0.5; b=$(cat "$WORK/out/count")
echo "paused: count $a -> $b (unchanged)"; [ "$a" = "$b" ]
step lcr --root "$ROOT" resume "$ID"
sleep 0.5; c=$(cat "$WORK/out/count"); echo "resumed: count $b -> $c"; [ "$c" -gt "$b" ]
step lcr --root "$ROOT" events --stats "$ID"
step lcr --root "$ROOT" list
step lcr check
step lcr features

# Checkpoint: the container is dumped by CRIU and removed; restore brings it back, under a
# new id and cgroup, counting on from where it stopped.
step lcr --root "$ROOT" checkpoint --image-path "$WORK/img" --print-stats "$ID"
at=$(cat "$WORK/out/count"); echo "checkpointed at count $at"
sleep 0.5; [ "$(cat "$WORK/out/count")" = "$at" ] || { echo "still counting after checkpoint" >&2; exit 1; }
ID2=$ID-restored
ID3=$ID-imported
cleanup() { for i in "$ID" "$ID2" "$ID3"; do lcr --root "$ROOT" delete --force "$i" >/dev/null 2>&1 || true; done; rm -rf "$WORK"; }
step lcr --root "$ROOT" restore -d --bundle . --image-path "$WORK/img" --print-stats "$ID2"
sleep 0.5; now=$(cat "$WORK/out/count"); echo "restored: count $at -> $now"; [ "$now" -gt "$at" ]
step lcr --root "$ROOT" state "$ID2"

# Archive: exported as one tar+zstd file (the container stays frozen until it is complete),
# inspected and verified without unpacking it, then imported under a third id.
step lcr --root "$ROOT" checkpoint --export "$WORK/app.tar.zst" "$ID2"
ls -l "$WORK/app.tar.zst"
step lcr image inspect "$WORK/app.tar.zst"
step lcr image verify "$WORK/app.tar.zst"
at=$(cat "$WORK/out/count"); echo "exported at count $at"
step lcr --root "$ROOT" restore -d --bundle . --import "$WORK/app.tar.zst" "$ID3"
sleep 0.5; now=$(cat "$WORK/out/count"); echo "imported: count $at -> $now"; [ "$now" -gt "$at" ]
step lcr --root "$ROOT" delete --force "$ID3"
echo; echo "demo: OK"
