#!/usr/bin/env bash
# Snapshot testing with lcr, the way a CI job does it: start the service once and load its
# fixtures, checkpoint it, then give every test case a clone of its own (restored in
# milliseconds, its writes invisible to the others), and delete it afterwards.
#
# Usage: redis-tests.sh ROOTFS   (a rootfs with redis-server and redis-cli, e.g. the one
#        scripts/make-services-rootfs.sh builds); LCR=path/to/lcr to use another lcr.
# Prints one TAP line per case; exits non-zero if any failed.
set -euo pipefail
ROOTFS=${1:?usage: redis-tests.sh ROOTFS}
LCR=${LCR:-lcr}
WORK=$(mktemp -d /var/tmp/lcr-snapshot-tests.XXXXXX)
ROOT="$WORK/state"
L() { "$LCR" --root "$ROOT" "$@"; }
cleanup() {
  for id in $(L list -q 2>/dev/null); do L delete --force "$id" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# 1. The service's bundle: the rootfs (read-only: clones write into overlays of their own),
#    redis in the foreground. No cgroupsPath: each container gets /lcr/<id>.
mkdir -p "$WORK/bundle"
L spec --bundle "$WORK/bundle" >/dev/null
python3 - "$WORK/bundle/config.json" "$ROOTFS" <<'PY'
import json, sys
path, rootfs = sys.argv[1:]
c = json.load(open(path))
c["root"] = {"path": rootfs, "readonly": True}
c["process"]["terminal"] = False
c["process"]["args"] = ["redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
c["linux"].pop("cgroupsPath", None)
c["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]})
json.dump(c, open(path, "w"), indent=1)
PY

# 2. Warm it up once: start, load the fixtures, checkpoint (the original goes away).
L run -d --bundle "$WORK/bundle" fixture-$$ >"$WORK/fixture.log" 2>&1 </dev/null
until [ "$(L exec fixture-$$ redis-cli PING 2>/dev/null)" = PONG ]; do sleep 0.01; done
for i in $(seq 1 100); do echo "SET user:$i name-$i"; done | L exec fixture-$$ redis-cli >/dev/null
L checkpoint --image-path "$WORK/snapshot" fixture-$$

# 3. One clone per test case.
failed=0 n=0
run_case() { # $1 name, $2 function
  n=$((n + 1))
  local id="case-$n-$$"
  L restore -d --clone --bundle "$WORK/bundle" --image-path "$WORK/snapshot" "$id" \
    >"$WORK/$id.log" 2>&1 </dev/null
  if "$2" "$id"; then echo "ok $n - $1"; else echo "not ok $n - $1"; failed=1; fi
  L delete --force "$id"
}
cli() { L exec "$1" redis-cli "${@:2}"; }

case_fixtures_are_there() { [ "$(cli "$1" DBSIZE)" = 100 ] && [ "$(cli "$1" GET user:42)" = name-42 ]; }
case_a_write_stays_in_its_clone() { cli "$1" DEL user:42 >/dev/null && [ -z "$(cli "$1" GET user:42)" ]; }
case_the_next_clone_starts_clean() { [ "$(cli "$1" GET user:42)" = name-42 ] && [ "$(cli "$1" INCR visits)" = 1 ]; }
case_counters_start_from_the_snapshot() { [ "$(cli "$1" INCR visits)" = 1 ]; }

echo "1..4"
run_case "the fixtures are there" case_fixtures_are_there
run_case "a write stays in its clone" case_a_write_stays_in_its_clone
run_case "the next clone starts clean" case_the_next_clone_starts_clean
run_case "counters start from the snapshot" case_counters_start_from_the_snapshot
exit $failed
