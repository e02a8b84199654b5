#!/usr/bin/env bash
# Checkpoint archives: export and import time and archive size for memtouch workloads of
# M MiB (default 64 512 2048; pages filled "mixed": 1 KiB random + 3 KiB text each), against
# `tar | zstd -T0 -3` and `tar | gzip` (podman's older default) on the same image directory,
# in one run. Per size and round (default 3, `ROUNDS=5 scripts/bench/archive.sh 64`):
#   dump     lcr checkpoint --leave-running --image-path DIR           (the plain dump)
#   export   lcr checkpoint --leave-running --export FILE              (dump + archive)
#   import   lcr image unpack FILE DIR2                                (what restore --import adds)
#   pack     lcr image pack DIR FILE / tar|zstd -T0 -3 / tar|gzip      (same bytes)
#   unpack   lcr image unpack / zstd -dc|tar x / gzip -dc|tar x
# and the peak resident memory (GNU time's maxrss) of lcr and of zstd for pack and unpack.
# Prints medians, the ratios, and export+import overhead over the plain dump.
# FILL=sparse uses memtouch's one-byte-per-page pages instead; COMPRESS=none (or zstd:N) sets
# lcr's compression for export and pack.
set -euo pipefail
SIZES=${*:-64 512 2048}
ROUNDS=${ROUNDS:-3}
FILL=${FILL:-mixed}
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/scripts/bench/lib.sh"
# In memory by default: on this VM's disk, writeback of the previous step's gigabytes
# dominates every timing. BENCH_DIR=/var/tmp measures with the disk.
WORK=$(mktemp -d "${BENCH_DIR:-/dev/shm}/lcr-arbench.XXXXXX")
# lcr's temporary image directories (export without --image-path, import) go there too.
export TMPDIR=$WORK
R="$WORK/root"
cleanup() {
  for id in $("$LCR" --root "$R" list -q 2>/dev/null); do "$LCR" --root "$R" delete -f "$id" >/dev/null 2>&1 || true; done
  remove_cgroups lcr-arbench
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/rootfs" "$WORK/out"; cp -a "$ROOTFS/." "$WORK/rootfs/"
gcc -O2 -static -o "$WORK/rootfs/bin/memtouch" "$TOP/tests/workloads/memtouch.c"
now() { date +%s%N; }
ms() { echo $(( ($2 - $1) / 1000000 )); }
timed() { sync; local t0; t0=$(now); "$@"; echo $(( ($(now) - t0) / 1000000 )); }
for M in $SIZES; do
  b="$WORK/b-$M"; mkdir -p "$b"
  "$LCR" spec --bundle "$b" >/dev/null
  python3 - "$b/config.json" "$WORK/rootfs" "$M" "$WORK/out" "$FILL" <<'PY'
import json, sys
p, rootfs, mib, out, fill = sys.argv[1:]
c = json.load(open(p))
c["root"] = {"path": rootfs, "readonly": True}
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/memtouch", mib, "/out/ready", fill]
c["linux"]["cgroupsPath"] = f"/lcr-arbench/{mib}"
c["mounts"].append({"destination": "/out", "type": "bind", "source": out, "options": ["rbind", "rw"]})
json.dump(c, open(p, "w"), indent=1)
PY
  rm -f "$WORK/out/ready"; id="ar-$M"
  (cd "$b" && "$LCR" --root "$R" run -d --bundle "$b" "$id" </dev/null >/dev/null 2>&1)
  for _ in $(seq 1 1200); do [ -s "$WORK/out/ready" ] && break; sleep 0.1; done
  [ -s "$WORK/out/ready" ] || { echo "workload did not start" >&2; exit 1; }
  for r in $(seq 1 "$ROUNDS"); do
    d="$WORK/img"; f="$WORK/a.tar.zst"; u="$WORK/unpacked"
    rm -rf "$d" "$f" "$u"
    t_dump=$(timed "$LCR" --root "$R" checkpoint --leave-running --image-path "$d" "$id")
    t_export=$(timed "$LCR" --root "$R" checkpoint --leave-running --quiet --compress "${COMPRESS:-zstd}" --export "$f" "$id")
    t_import=$(timed "$LCR" image unpack -q "$f" "$u")
    rm -rf "$u" "$f"
    rss="/usr/bin/time -f %M -o"
    t_pack=$(timed $rss "$WORK/m1" "$LCR" image pack -q --compress "${COMPRESS:-zstd}" "$d" "$f"); s_lcr=$(stat -c %s "$f")
    t_unpack=$(timed $rss "$WORK/m2" "$LCR" image unpack -q "$f" "$u"); rm -rf "$u" "$f"
    t_zpack=$(timed sh -c "tar -C '$d' -cf - . | $rss '$WORK/m3' zstd -q -T0 -3 > '$WORK/z.tar.zst'"); s_z=$(stat -c %s "$WORK/z.tar.zst")
    mkdir "$u"; t_zunpack=$(timed sh -c "$rss '$WORK/m4' zstd -q -dc '$WORK/z.tar.zst' | tar -C '$u' -xf -"); rm -rf "$u" "$WORK/z.tar.zst"
    t_gpack=$(timed sh -c "tar -C '$d' -cf - . | gzip > '$WORK/g.tar.gz'"); s_g=$(stat -c %s "$WORK/g.tar.gz")
    mkdir "$u"; t_gunpack=$(timed sh -c "gzip -dc '$WORK/g.tar.gz' | tar -C '$u' -xf -"); rm -rf "$u" "$WORK/g.tar.gz"
    s_dir=$(du -sb "$d" | cut -f1)
    echo "$M $t_dump $t_export $t_import $t_pack $t_unpack $t_zpack $t_zunpack $t_gpack $t_gunpack $s_lcr $s_z $s_g $s_dir $(cat "$WORK/m1" "$WORK/m2" "$WORK/m3" "$WORK/m4" | tr '\n' ' ')" >> "$WORK/results"
  done
  "$LCR" --root "$R" delete -f "$id" >/dev/null
  rm -rf "$WORK/img"
done
python3 - "$WORK/results" "$ROUNDS" "$FILL" "${COMPRESS:-zstd}" <<'PY'
import sys, statistics
rows = [list(map(int, l.split())) for l in open(sys.argv[1])]
print(f"archive benchmark, {sys.argv[2]} rounds, pages '{sys.argv[3]}', lcr compression {sys.argv[4]}, medians (ms, MiB)")
print(f"{'MiB':>5} {'dump':>6} {'export':>7} {'import':>7} | {'pack lcr':>8} {'zstd':>6} {'gzip':>6} | {'unpack lcr':>10} {'zstd':>6} {'gzip':>6} | {'size lcr':>8} {'zstd-3':>7} {'gzip':>7} {'images':>7}")
for m in sorted({r[0] for r in rows}):
    v = [r for r in rows if r[0] == m]
    md = [statistics.median(r[i] for r in v) for i in range(18)]
    _, dump, exp, imp, pk, upk, zp, zu, gp, gu, sl, sz, sg, sd, m_pk, m_upk, m_zp, m_zu = md
    M = 2**20
    print(f"{m:>5} {dump:>6.0f} {exp:>7.0f} {imp:>7.0f} | {pk:>8.0f} {zp:>6.0f} {gp:>6.0f} | {upk:>10.0f} {zu:>6.0f} {gu:>6.0f} | {sl/M:>8.1f} {sz/M:>7.1f} {sg/M:>7.1f} {sd/M:>7.1f}")
    over = (exp - dump + imp) / dump
    print(f"{m:>5} ratios: pack lcr/zstd {pk/zp:.2f} lcr/gzip {pk/gp:.2f}; unpack lcr/zstd {upk/zu:.2f} lcr/gzip {upk/gu:.2f}; "
          f"size lcr/zstd-3 {sl/sz:.3f} lcr/gzip {sl/sg:.3f}; export+import over the plain dump +{over*100:.0f}%")
    print(f"{m:>5} peak memory (MiB): pack lcr {m_pk/1024:.0f}, zstd -T0 -3 {m_zp/1024:.0f}; unpack lcr {m_upk/1024:.0f}, zstd -d {m_zu/1024:.0f}")
PY
