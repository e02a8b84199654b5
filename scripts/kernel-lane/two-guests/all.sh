#!/bin/bash
# The two-guest lane, end to end: build both guests, boot them at once, print both results.
# Exits non-zero when a test fails or a guest does not finish.
# Usage: scripts/kernel-lane/two-guests/all.sh   (WORK=/var/tmp/lcr-two-guests by default)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export WORK=${WORK:-/var/tmp/lcr-two-guests}; mkdir -p "$WORK"
t0=$(date +%s)
"$HERE/build.sh" > "$WORK/build.log" 2>&1 || { tail -20 "$WORK/build.log"; echo "two-guests: build failed" >&2; exit 1; }
tail -2 "$WORK/build.log"
"$HERE/run.sh" > "$WORK/run.log" 2>&1 || true
cat "$WORK/run.log"
failed=0
for g in source destination; do
  R=$WORK/$g/share/results.txt
  if [ ! -f "$R" ]; then tail -30 "$WORK/$g/share/console.log"; echo "two-guests: the $g guest wrote no results" >&2; failed=1; continue; fi
  cat "$R"
  grep -q "^tests finished" "$R" || { echo "two-guests: the $g guest did not finish (see $WORK/$g/share/console.log)" >&2; failed=1; }
  grep -q "^FAIL" "$R" && { echo "two-guests: $g: $(grep -c '^FAIL' "$R") failed (logs in $WORK/$g/share/logs)" >&2; failed=1; }
done
[ $failed = 0 ] || exit 1
echo "two-guests: $(cat "$WORK"/{source,destination}/share/results.txt | grep -c '^PASS') passed, 0 failed, in $(( $(date +%s) - t0 )) s"
