#!/usr/bin/env bash
# Migration speed: `lcr migrate` (stop-copy and post-copy) of a memtouch container of M MiB
# (M = 64, 512, 2048) between two network namespaces joined by a veth pair, the destination
# with its own sshd, measured in the same run beside
#   local    `lcr checkpoint` + `lcr restore` of the same container on one host,
#   naive    `lcr checkpoint --export - | ssh DEST lcr restore --import -`,
#   ceiling  `ssh DEST 'cat >/dev/null'` of as many bytes as the migration sent.
# Downtime two ways: lcr's report (freeze here → running there) and the workload's own
# (the largest gap between its 10 ms clock stamps). Prints medians and the ratios of the
# issue's aims: downtime / (local checkpoint + restore), page rate / ssh ceiling, total /
# naive, post-copy downtime (aim <= 300 ms, flat in M). Post-copy needs fs.pipe-max-size
# >= 4 MiB: raised for the run and put back. WORKLOAD=busy rewrites half the pages
# continuously (default quiet: 8 pages per 100 ms). `ROUNDS=3 scripts/bench/migrate.sh 64 512`.
set -euo pipefail
SIZES=${*:-64 512 2048}
ROUNDS=${ROUNDS:-3}
WORKLOAD=${WORKLOAD:-quiet}
case $WORKLOAD in quiet|busy) ;; *) echo "WORKLOAD must be quiet or busy, not $WORKLOAD" >&2; exit 2;; esac
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/scripts/bench/lib.sh"
# Images in memory on both sides by default (BENCH_DIR=/var/tmp for disk): local checkpoint
# and restore, and the destination's images (--dest-images), on the same kind of storage.
WORK=$(mktemp -d "${BENCH_DIR:-/dev/shm}/lcr-migbench.XXXXXX")
SRC=lcr-migbench-src-$$ DST=lcr-migbench-dst-$$ ADDR=10.251.0.2
SSHD_PID= MADE_PRIVSEP=
PIPE_MAX=$(cat /proc/sys/fs/pipe-max-size)
cleanup() {
  echo "$PIPE_MAX" > /proc/sys/fs/pipe-max-size
  for root in "$WORK/src" "$WORK/dst"; do
    for id in $("$LCR" --root "$root" list -q 2>/dev/null); do "$LCR" --root "$root" delete -f "$id" >/dev/null 2>&1 || true; done
  done
  [ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null || true
  ip netns del "$SRC" 2>/dev/null || true; ip netns del "$DST" 2>/dev/null || true
  [ -n "$MADE_PRIVSEP" ] && rmdir /run/sshd 2>/dev/null || true
  remove_cgroups lcr-migbench
  rm -rf "$WORK"
}
trap cleanup EXIT
[ "$PIPE_MAX" -ge 4194304 ] || echo 4194304 > /proc/sys/fs/pipe-max-size

# Two hosts: namespaces, a veth pair, sshd in the destination (keys made for this run).
ip netns add "$SRC"; ip netns add "$DST"
ip link add "lmb$$a" type veth peer name "lmb$$b"
ip link set "lmb$$a" netns "$SRC"; ip link set "lmb$$b" netns "$DST"
ip -n "$SRC" addr add 10.251.0.1/24 dev "lmb$$a"; ip -n "$DST" addr add "$ADDR/24" dev "lmb$$b"
for ns in "$SRC" "$DST"; do ip -n "$ns" link set lo up; done
ip -n "$SRC" link set "lmb$$a" up; ip -n "$DST" link set "lmb$$b" up
ssh-keygen -q -t ed25519 -N '' -f "$WORK/host"; ssh-keygen -q -t ed25519 -N '' -f "$WORK/client"
cp "$WORK/client.pub" "$WORK/authorized_keys"; echo "$ADDR $(cat "$WORK/host.pub")" > "$WORK/known_hosts"
cat > "$WORK/sshd_config" <<EOF
ListenAddress $ADDR
HostKey $WORK/host
PidFile $WORK/sshd.pid
AuthorizedKeysFile $WORK/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
UsePAM no
StrictModes no
EOF
[ -d /run/sshd ] || { mkdir /run/sshd; MADE_PRIVSEP=1; }
nsenter --net=/run/netns/"$DST" /usr/sbin/sshd -D -e -f "$WORK/sshd_config" 2>"$WORK/sshd.log" &
SSHD_PID=$!
SSH="$WORK/ssh"
cat > "$SSH" <<EOF
#!/bin/sh
exec nsenter --net=/run/netns/$SRC ssh -F /dev/null -i $WORK/client -o IdentitiesOnly=yes -o UserKnownHostsFile=$WORK/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes "\$@"
EOF
chmod 755 "$SSH"
for _ in $(seq 1 100); do "$SSH" "root@$ADDR" true 2>/dev/null && break; sleep 0.1; done

mkdir -p "$WORK/rootfs"; cp -a "$ROOTFS/." "$WORK/rootfs/"
gcc -O2 -static -o "$WORK/rootfs/bin/memtouch" "$TOP/tests/workloads/memtouch.c"
mkdir -p "$WORK/out"
now() { date +%s%N; }
bundle() { # $1 name $2 MiB → a bundle on the shared rootfs, its own cgroup
  local b="$WORK/b-$1"; mkdir -p "$b"
  "$LCR" spec --bundle "$b" >/dev/null 2>&1 || true
  python3 - "$b/config.json" "$WORK/rootfs" "$1" "$2" "$WORK/out" "$WORKLOAD" <<'PY'
import json, sys
p, rootfs, name, mib, out, workload = sys.argv[1:]
c = json.load(open(p))
c["root"] = {"path": rootfs, "readonly": False}
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/memtouch", mib, "/out/ready", "sparse", "stamp"] + (["busy"] if workload == "busy" else [])
c["linux"]["cgroupsPath"] = f"/lcr-migbench/{name}"
c["mounts"].append({"destination": "/out", "type": "bind", "source": out, "options": ["rbind", "rw"]})
json.dump(c, open(p, "w"), indent=1)
PY
  echo "$b"
}
start() { # $1 id $2 bundle $3 log: memtouch running, its output appended to the log
  rm -f "$WORK/out/ready"
  "$LCR" --root "$WORK/src" run -d --bundle "$2" "$1" </dev/null >>"$3" 2>&1
  for _ in $(seq 1 600); do [ -s "$WORK/out/ready" ] && break; sleep 0.1; done
  [ -s "$WORK/out/ready" ] || { echo "$1: memtouch did not start: $(tail -3 "$3")" >&2; exit 1; }
  sleep 0.3
}
gap() { # the largest gap (ms) between consecutive clock stamps in the logs given
  cat "$@" | awk '$1 == "stamp" { if (p && $2 - p > g) g = $2 - p; p = $2 } END { print g + 0 }'
}
bad() { grep -h BAD "$@" | head -1 || true; }
for M in $SIZES; do
  for r in $(seq 1 "$ROUNDS"); do
    log="$WORK/log-$M-$r"; : > "$log"
    # local: checkpoint and restore on one host
    b=$(bundle "l$M-$r" "$M"); start "l$M-$r" "$b" "$log.l"
    sync; t0=$(now); "$LCR" --root "$WORK/src" checkpoint --image-path "$WORK/img" "l$M-$r" >/dev/null; t1=$(now)
    sync; t2=$(now); "$LCR" --root "$WORK/src" restore -d --bundle "$b" --image-path "$WORK/img" "l$M-$r" </dev/null >>"$log.l" 2>&1; t3=$(now)
    "$LCR" --root "$WORK/src" delete -f "l$M-$r" >/dev/null; rm -rf "$WORK/img"
    local_ms=$(( (t1 - t0 + t3 - t2) / 1000000 ))
    # lcr migrate (stop-copy)
    b=$(bundle "m$M-$r" "$M"); b2=$(bundle "m$M-$r-dst" "$M"); start "m$M-$r" "$b" "$log.m"
    t0=$(now)
    "$LCR" --root "$WORK/src" migrate "m$M-$r" "ssh://root@$ADDR" --strategy stop-copy --ssh "$SSH" --dest-lcr "$LCR" \
      --dest-root "$WORK/dst" --dest-bundle "$b2" --dest-log "$log.m" --dest-images "$WORK" --json > "$WORK/report" \
      || { echo "migrate failed" >&2; cat "$WORK/sshd.log" >&2; exit 1; }
    t1=$(now)
    sleep 0.5
    "$LCR" --root "$WORK/dst" delete -f "m$M-$r" >/dev/null
    read -r down total sent dump restore freeze <<<"$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["downtime_ms"], r["total_ms"], r["bytes_sent"], r["dump_ms"], r["restore_ms"], r["freeze_us"])' "$WORK/report")"
    seen=$(gap "$log.m")
    # lcr migrate (post-copy)
    b=$(bundle "p$M-$r" "$M"); b2=$(bundle "p$M-$r-dst" "$M"); start "p$M-$r" "$b" "$log.p"
    "$LCR" --root "$WORK/src" migrate "p$M-$r" "ssh://root@$ADDR" --strategy post-copy --ssh "$SSH" --dest-lcr "$LCR" \
      --dest-root "$WORK/dst" --dest-bundle "$b2" --dest-log "$log.p" --dest-images "$WORK" --json > "$WORK/report" \
      || { echo "post-copy migrate failed" >&2; cat "$WORK/sshd.log" >&2; exit 1; }
    sleep 0.5
    "$LCR" --root "$WORK/dst" delete -f "p$M-$r" >/dev/null
    read -r pdown ptotal plazy <<<"$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["downtime_ms"], r["total_ms"], r["lazy_transfer_ms"])' "$WORK/report")"
    pseen=$(gap "$log.p")
    # naive: export piped into an import on the destination
    b=$(bundle "n$M-$r" "$M"); b2=$(bundle "n$M-$r-dst" "$M"); start "n$M-$r" "$b" "$log.n"
    t2=$(now)
    "$LCR" --root "$WORK/src" checkpoint --export - --quiet "n$M-$r" \
      | "$SSH" "root@$ADDR" "$LCR --root $WORK/dst restore -d --quiet --import - --bundle $b2 n$M-$r >>$log.n 2>&1"
    t3=$(now)
    sleep 0.5
    "$LCR" --root "$WORK/dst" delete -f "n$M-$r" >/dev/null
    naive_ms=$(( (t3 - t2) / 1000000 )); naive_seen=$(gap "$log.n")
    # ceiling: ssh itself carrying the container's memory (M MiB of incompressible bytes)
    head -c "$((M << 20))" /dev/urandom > "$WORK/noise"
    t4=$(now); "$SSH" "root@$ADDR" 'cat >/dev/null' < "$WORK/noise"; t5=$(now); rm -f "$WORK/noise"
    ceiling_ms=$(( (t5 - t4) / 1000000 ))
    b=$(bad "$log".*); [ -z "$b" ] || { echo "memtouch found its memory changed: $b" >&2; exit 1; }
    echo "$M $local_ms $down $seen $total $sent $dump $naive_ms $naive_seen $ceiling_ms $restore $freeze $pdown $pseen $ptotal $plazy" >> "$WORK/results"
  done
done
python3 - "$WORK/results" "$ROUNDS" "$WORKLOAD" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
print(f"migration benchmark, {sys.argv[2]} rounds, workload {sys.argv[3]}, medians (ms); MiB sent is on the wire (compressed)")
print("stop-copy:")
print("   MiB  local c+r  downtime (dump + restore)  seen  freeze  total  MiB sent  naive  naive seen  ssh of M MiB")
for m in sorted({int(r[0]) for r in rows}):
    med = lambda i: statistics.median(float(r[i]) for r in rows if int(r[0]) == m)
    loc, down, seen, total, sent, dump, naive, nseen, ceil, rest, freeze = (med(i) for i in range(1, 12))
    print(f"{m:>6} {loc:>10.0f} {down:>9.0f} ({dump:>5.0f} + {rest:>5.0f})   {seen:>5.0f} {freeze / 1000:>7.1f} {total:>6.0f} {sent / 2**20:>9.1f} {naive:>6.0f} {nseen:>11.0f} {ceil:>13.0f}")
    print(f"{m:>6} ratios  downtime/local {down / loc:.2f} (aim <= 1.25)  memory rate/ssh ceiling {ceil / max(dump, 1):.2f} (aim >= 0.80)  total/naive {total / naive:.2f} (aim < 1)")
print("post-copy:")
print("   MiB  downtime  seen  pages after the switch  total")
for m in sorted({int(r[0]) for r in rows}):
    med = lambda i: statistics.median(float(r[i]) for r in rows if int(r[0]) == m)
    pdown, pseen, ptotal, plazy, naive = med(12), med(13), med(14), med(15), med(7)
    print(f"{m:>6} {pdown:>9.0f} {pseen:>5.0f} {plazy:>22.0f} {ptotal:>6.0f}   downtime aim <= 300 ms; total/naive {ptotal / naive:.2f}")
PY
