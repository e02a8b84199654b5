#!/bin/bash
# The second-kernel lane, end to end: build, boot under qemu, run the guest tests, print the
# results. Exits non-zero when a test fails or the guest does not come back in time.
# Usage: scripts/kernel-lane/all.sh   (WORK=/var/tmp/lcr-kernel-lane by default)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export WORK=${WORK:-/var/tmp/lcr-kernel-lane}; mkdir -p "$WORK"
"$HERE/build.sh" > "$WORK/build.log" 2>&1 || { tail -20 "$WORK/build.log"; echo "kernel lane: build failed" >&2; exit 1; }
tail -1 "$WORK/build.log"
TIMEOUT=${TIMEOUT:-400} "$HERE/run.sh" > "$WORK/run.log" 2>&1 || true
tail -1 "$WORK/run.log"
R="$WORK/share/results.txt"
[ -f "$R" ] || { tail -30 "$WORK/run.log"; echo "kernel lane: the guest wrote no results" >&2; exit 1; }
cat "$R"
grep -q "^tests finished" "$R" || { echo "kernel lane: the guest did not finish (see $WORK/share/console.log)" >&2; exit 1; }
if grep -q "^FAIL" "$R"; then echo "kernel lane: $(grep -c '^FAIL' "$R") failed (logs in $WORK/share/logs)" >&2; exit 1; fi
echo "kernel-lane: $(grep -c '^PASS' "$R") passed, 0 failed"
