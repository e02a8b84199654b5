# Sourced by the guests' test scripts: PASS/FAIL lines in $RES, timings from the guest's uptime,
# and lcr runs whose output is kept in $LOGS.
export PATH=/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin
OUT=${OUT:-/tmp}; RES=$OUT/results.txt; : > "$RES"
LOGS=$OUT/logs; rm -rf "$LOGS"; mkdir -p "$LOGS"
CG=/sys/fs/cgroup
fails=0
up() { cut -d' ' -f1 /proc/uptime; }
res() { echo "$*" | tee -a "$RES"; }
begin() { T=$1; T0=$(up); echo "=== $T"; }
took() { echo "$(up) $T0" | awk '{printf "%.2fs", $1-$2}'; }
pass() { res "PASS $T ($(took))${1:+: $1}"; }
fail() { res "FAIL $T: $*"; fails=$((fails+1)); }
waitfor() { i=0; while [ $i -lt "${2:-100}" ]; do eval "$1" && return 0; sleep 0.1; i=$((i+1)); done; return 1; }
num() { cat "$1" 2>/dev/null || echo 0; }
run() { # name, then the lcr arguments; stderr kept in $LOGS/name.err
  n=$1; shift; lcr "$@" </dev/null >"$LOGS/$n.out" 2>"$LOGS/$n.err"
}
field() { grep -o "\"$1\":[0-9]*" "$2" | head -1 | cut -d: -f2; }
