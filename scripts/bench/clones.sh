#!/usr/bin/env bash
# Snapshot testing: a cold start of a service (container start, fixtures loaded, to its first
# correct answer) against a clone of its snapshot (`lcr restore --clone` to its first correct
# answer), for 1, 4 and 16 at once; p50, p95 and the time until all answer; then the memory
# per clone of 16 clones without and with --merge-memory (KSM turned on for that part and
# put back). Redis with 100 000 keys; PostgreSQL with a table of 1000 rows (its cold start
# only where lcr lacks CAP_SYS_RESOURCE: its clone cannot be made, which is said).
# Usage: scripts/bench/clones.sh   (COUNTS="1 4 16", ROUNDS=3 cold starts per count)
set -euo pipefail
COUNTS=${COUNTS:-1 4 16}
ROUNDS=${ROUNDS:-3}
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/scripts/bench/lib.sh"
SERVICES=$("$TOP/scripts/make-services-rootfs.sh")
WORK=$(mktemp -d "${BENCH_DIR:-/var/tmp}/lcr-clbench.XXXXXX")
ROOT="$WORK/root"
KSM=/sys/kernel/mm/ksm
KSM_OLD=$(for f in run pages_to_scan sleep_millisecs; do echo "$f=$(cat $KSM/$f)"; done)
cleanup() {
  for id in $("$LCR" --root "$ROOT" list -q 2>/dev/null); do "$LCR" --root "$ROOT" delete -f "$id" >/dev/null 2>&1 || true; done
  for kv in $KSM_OLD; do echo "${kv#*=}" > "$KSM/${kv%%=*}"; done
  remove_cgroups lcr-clbench
  rm -rf "$WORK"
}
trap cleanup EXIT
L() { "$LCR" --root "$ROOT" "$@"; }
now() { date +%s%N; }
mkdir -p "$WORK/redis" "$WORK/pg"
cp -a "$SERVICES" "$WORK/redis/rootfs"
cp -a "$SERVICES" "$WORK/pg/rootfs"
config() { # $1 bundle, $2 uid:gid, then the args
  local b=$1 user=$2; shift 2
  L spec --bundle "$b" >/dev/null
  python3 - "$b/config.json" "$user" "$@" <<'PY'
import json, sys
p, user, args = sys.argv[1], sys.argv[2], sys.argv[3:]
c = json.load(open(p))
c["root"]["readonly"] = False
c["process"]["terminal"] = False
c["process"]["args"] = args
uid, gid = user.split(":")
c["process"]["user"] = {"uid": int(uid), "gid": int(gid)}
c["linux"]["cgroupsPath"] = "/lcr-clbench/" + p.split("/")[-2]
json.dump(c, open(p, "w"), indent=1)
PY
}
config "$WORK/redis" 0:0 redis-server --bind 127.0.0.1 --port 6379 --save "" --appendonly no --enable-debug-command yes
config "$WORK/pg" 101:103 /usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/lcr

redis_ok() { [ "$(L exec "$1" redis-cli GET key:777 2>/dev/null)" = value:777 ]; }
redis_load() {
  until [ "$(L exec "$1" redis-cli PING 2>/dev/null)" = PONG ]; do sleep 0.005; done
  L exec "$1" redis-cli DEBUG POPULATE 100000 key >/dev/null
}
psql_in() { L exec "$1" psql -h /tmp -U postgres -Atc "$2" 2>/dev/null; }
pg_load() {
  until [ "$(psql_in "$1" 'SELECT 1')" = 1 ]; do sleep 0.01; done
  psql_in "$1" "DROP TABLE IF EXISTS fixtures; CREATE TABLE fixtures (id int PRIMARY KEY, name text); INSERT INTO fixtures SELECT g, 'row ' || g FROM generate_series(1, 1000) g" >/dev/null
}
pg_ok() { [ "$(psql_in "$1" 'SELECT count(*) FROM fixtures')" = 1000 ]; }

# Runs "$3 ID" for $2 ids at once, each timing itself from the common start to its first
# correct answer ($4 ID); prints one millisecond figure per id.
at_once() { # $1 tag $2 count $3 start-command $4 check-command
  local tag=$1 n=$2 start=$3 check=$4 t0 i
  t0=$(now)
  for i in $(seq "$n"); do
    ( id="$tag-$i"; $start "$id" >/dev/null 2>&1; until $check "$id"; do sleep 0.005; done
      echo $(( ($(now) - t0) / 1000000 )) ) > "$WORK/t-$tag-$i" &
  done
  wait
  cat "$WORK"/t-"$tag"-*; rm -f "$WORK"/t-"$tag"-*
}
stats() { # ms figures on stdin → "p50 p95 max"
  sort -n | awk '{a[NR]=$1} END {p50=a[int((NR+1)/2)]; i=int(NR*0.95+0.999); if(i<1)i=1; print p50, a[i], a[NR]}'
}
# A bundle for cold start $2 of service $1: its config with a cgroup of its own, on the
# service's rootfs (redis writes nothing into it; one postgres at a time).
cold_bundle() {
  local b="$WORK/cold/$2"; mkdir -p "$b"
  python3 - "$WORK/$1" "$b" "$2" <<'PY'
import json, sys
src, dst, id = sys.argv[1:]
c = json.load(open(src + "/config.json"))
c["root"]["path"] = src + "/rootfs"
c["linux"]["cgroupsPath"] = "/lcr-clbench/cold/" + id
json.dump(c, open(dst + "/config.json", "w"))
PY
  echo "$b"
}
cold_redis() { L run -d --bundle "$(cold_bundle redis "$1")" "$1" >/dev/null 2>&1 </dev/null; redis_load "$1"; }
cold_pg() { L run -d --bundle "$(cold_bundle pg "$1")" "$1" >/dev/null 2>&1 </dev/null; pg_load "$1"; }
delete_all() { for id in $(L list -q); do [ "$id" = "$1" ] || L delete -f "$id" >/dev/null; done; }
memory_mib() { # cgroup usage of clone $1, MiB
  local f=/sys/fs/cgroup/memory/lcr-clbench/redis/$1/memory.usage_in_bytes
  [ -f "$f" ] || f=/sys/fs/cgroup/lcr-clbench/redis/$1/memory.current
  echo $(( $(cat "$f") >> 20 ))
}

echo "service    count  cold p50/p95/all ms     clone p50/p95/all ms   clone p50 ÷ cold p50"
L run -d --bundle "$WORK/redis" snap >"$WORK/snap.log" 2>&1 </dev/null
redis_load snap
L checkpoint --image-path "$WORK/img-redis" snap >/dev/null
clone_redis() { L restore -d --clone --bundle "$WORK/redis" --image-path "$WORK/img-redis" "$1" </dev/null >"$WORK/$1.log" 2>&1; }
for n in $COUNTS; do
  cold=$(for r in $(seq "$ROUNDS"); do at_once cold "$n" cold_redis redis_ok; delete_all none; done | stats)
  clone=$(at_once clone "$n" clone_redis redis_ok | stats)
  delete_all none
  set -- $cold; c50=$1; set -- $clone; k50=$1
  printf "redis      %5s  %-22s  %-22s  %s\n" "$n" "$cold" "$clone" "$(awk -v a="$k50" -v b="$c50" 'BEGIN {printf "%.2f", a / b}')"
done
cold=$(for r in $(seq "$ROUNDS"); do at_once pgcold 1 cold_pg pg_ok; delete_all none; done | stats)
if [ $(( 0x$(awk '/^CapEff/ {print $2}' /proc/self/status) >> 24 & 1 )) = 1 ]; then
  printf "postgresql %5s  %-22s  %s\n" 1 "$cold" "(its clones: tests/clones.rs)"
else
  printf "postgresql %5s  %-22s  %s\n" 1 "$cold" "no clone here: lcr lacks CAP_SYS_RESOURCE, which CRIU needs to dump postgres (another user)"
fi

# Memory: 16 clones, then 16 merged clones with KSM running fast.
mem() { # $1 tag, $2 extra flag
  local i total=0
  for i in $(seq 16); do
    # Its stdout a file, as the snapshot's was (a restore gives each fd back as its kind).
    L restore -d --clone $2 --bundle "$WORK/redis" --image-path "$WORK/img-redis" "$1-$i" </dev/null >"$WORK/$1-$i.log" 2>&1 \
      || { echo "restore of $1-$i failed:" >&2; cat "$WORK/$1-$i.log" >&2; exit 1; }
  done
  [ -n "$2" ] && sleep "${KSM_WAIT:-20}"
  for i in $(seq 16); do total=$(( total + $(memory_mib "$1-$i") )); done
  echo "$total"
}
plain=$(mem plain "")
delete_all none
echo 1 > $KSM/run; echo 20000 > $KSM/pages_to_scan; echo 0 > $KSM/sleep_millisecs
merged=$(mem merged --merge-memory)
echo "memory of 16 redis clones: $plain MiB without merging ($(( plain / 16 )) MiB each), $merged MiB merged (KSM pages_sharing $(cat $KSM/pages_sharing)); merged ÷ unmerged $(awk -v a="$merged" -v b="$plain" 'BEGIN {printf "%.2f", a / b}')"
delete_all none
