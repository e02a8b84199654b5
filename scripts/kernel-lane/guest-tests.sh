#!/bin/sh
# Runs inside the guest (Debian 6.1 kernel, cgroup v2 at /sys/fs/cgroup, soft-dirty, userfaultfd):
# lcr itself on cgroup v2, checkpoint/restore with v2 limits under a new id, pre-copy with
# pre-dumps, a checkpoint archive exported and imported, and a lazy (post-copy) restore. One PASS/FAIL line per test in $OUT/results.txt.
. /guest-lib.sh
tick() { tail -1 /out-b/ticks 2>/dev/null | awk '{print $2+0}'; }
kib() { du -ck "$1"/pages-*.img 2>/dev/null | tail -1 | cut -f1; }
mkdir -p /out-a /out-b /out-c
res "kernel $(uname -r); cgroup2 controllers: $(cat $CG/cgroup.controllers); boot-to-tests $(up)s"
res "lcr: $(lcr --version); $(criu --version | head -1)"

t_lifecycle() {
  begin "v2 lifecycle: limits, pause/resume through cgroup.freeze, stats, delete"
  run c1 run -d --bundle /bundles/limits c1 || { fail "run: $(cat $LOGS/c1.err)"; return; }
  d=$CG/lcr-lane/limits
  waitfor '[ "$(num /out-a/n)" -gt 3 ]' || { fail "the container does not count"; return; }
  m=$(cat $d/memory.max); p=$(cat $d/pids.max); c=$(cat $d/cpu.max)
  [ "$m" = 67108864 ] && [ "$p" = 32 ] && [ "$c" = "50000 100000" ] || { fail "limits: memory.max=$m pids.max=$p cpu.max='$c'"; return; }
  run p1 pause c1 || { fail "pause: $(cat $LOGS/p1.err)"; return; }
  [ "$(cat $d/cgroup.freeze)" = 1 ] || { fail "cgroup.freeze is $(cat $d/cgroup.freeze) after pause"; return; }
  a=$(num /out-a/n); sleep 0.5; b=$(num /out-a/n)
  [ "$a" = "$b" ] || { fail "the counter moved while paused ($a -> $b)"; return; }
  run r1 resume c1 || { fail "resume: $(cat $LOGS/r1.err)"; return; }
  waitfor '[ "$(num /out-a/n)" -gt $((b+3)) ]' || { fail "no counting after resume"; return; }
  run e1 events --stats c1 || { fail "events: $(cat $LOGS/e1.err)"; return; }
  grep -q '"limit":32}' $LOGS/e1.out && ! grep -q '"usage":{"total":0,' $LOGS/e1.out || { fail "stats (pids limit, cpu usage): $(cat $LOGS/e1.out)"; return; }
  run d1 delete -f c1 || { fail "delete: $(cat $LOGS/d1.err)"; return; }
  [ ! -d $d ] || { fail "cgroup $d left after delete"; return; }
  pass "memory.max=$m pids.max=$p cpu.max='$c'"
}

t_oom_v2() {
  begin "v2 events: an oom event from memory.events when memory.max is hit; the stream ends with the container"
  rm -f /out-c/go
  run o1 run -d --bundle /bundles/oom o1 || { fail "run: $(cat $LOGS/o1.err)"; return; }
  lcr events --interval 500ms o1 </dev/null >"$LOGS/o2.out" 2>"$LOGS/o2.err" & ev=$!
  sleep 0.5; touch /out-c/go
  waitfor '! kill -0 $ev 2>/dev/null' 200 || { kill $ev; fail "events still running after the container stopped: $(cat $LOGS/o2.out)"; return; }
  grep -q '"type":"oom"' "$LOGS/o2.out" || { fail "no oom event: $(cat $LOGS/o2.out) $(cat $LOGS/o2.err)"; return; }
  run o3 delete -f o1
  pass "$(grep -c '"type":"oom"' "$LOGS/o2.out") oom, $(grep -c '"type":"memory-pressure"' "$LOGS/o2.out") memory-pressure (PSI), $(grep -c '"type":"stats"' "$LOGS/o2.out") stats lines"
}

# The counter of /bundles/limits run as $1, taken away by `lcr checkpoint $2 $1`, then `$3`
# (further checks, or :), brought back as $4 by `lcr restore $5` from /bundles/restored: the
# restore bundle's v2 limits, counting on, the init in the new cgroup, a clean delete. Sets
# $at and the limits $m $p $c; returns non-zero after a fail.
move_v2() {
  run "$1" run -d --bundle /bundles/limits "$1" || { fail "run: $(cat $LOGS/$1.err)"; return 1; }
  waitfor '[ "$(num /out-a/n)" -gt 3 ]' || { fail "the container does not count"; return 1; }
  run "take-$1" checkpoint $2 "$1" || { fail "checkpoint $2: $(cat $LOGS/take-$1.err)"; return 1; }
  at=$(num /out-a/n)
  [ ! -d $CG/lcr-lane/limits ] || { fail "the checkpointed container's cgroup is left"; return 1; }
  $3 || return 1
  run "bring-$4" restore -d --bundle /bundles/restored $5 "$4" || { fail "restore $5: $(cat $LOGS/bring-$4.err)"; return 1; }
  d=$CG/lcr-lane/restored
  m=$(cat $d/memory.max); p=$(cat $d/pids.max); c=$(cat $d/cpu.max)
  [ "$m" = 100663296 ] && [ "$p" = 40 ] && [ "$c" = "20000 100000" ] || { fail "limits after restore: memory.max=$m pids.max=$p cpu.max='$c'"; return 1; }
  waitfor '[ "$(num /out-a/n)" -gt $((at+3)) ]' || { fail "no counting after restore (at $at, now $(num /out-a/n))"; return 1; }
  grep -q "0::/lcr-lane/restored" /proc/$(lcr state "$4" | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')/cgroup || { fail "the restored init is not in /lcr-lane/restored"; return 1; }
  run "delete-$4" delete -f "$4" || { fail "delete: $(cat $LOGS/delete-$4.err)"; return 1; }
  [ ! -d $d ] || { fail "cgroup left"; return 1; }
}

t_restore_v2() {
  begin "v2 checkpoint/restore under a new id, the restore bundle's limits recreated and checked"
  move_v2 c2 "--print-stats --image-path /tmp/img-c2" : c3 "--image-path /tmp/img-c2" || return
  pass "count $at went on; memory.max=$m pids.max=$p cpu.max='$c'"
}

archive_checks() {
  run v4 image verify /tmp/c4.tar.zst || { fail "verify: $(cat $LOGS/v4.err)"; return 1; }
  run i4 image inspect /tmp/c4.tar.zst || { fail "inspect: $(cat $LOGS/i4.err)"; return 1; }
  grep -q "cgroup v2" $LOGS/i4.out || { fail "inspect does not say cgroup v2: $(cat $LOGS/i4.out)"; return 1; }
}

t_archive_v2() {
  begin "v2 archive: export, verify and inspect, import under a new id with the restore bundle's limits"
  move_v2 c4 "--export /tmp/c4.tar.zst" archive_checks c5 "--import /tmp/c4.tar.zst" || return
  pass "count $at went on; archive $(stat -c %s /tmp/c4.tar.zst) bytes; memory.max=$m pids.max=$p cpu.max='$c'"
}

t_precopy() {
  begin "pre-copy: two --pre-dump, a final --parent-path checkpoint, restore counts on"
  : > /out-b/ticks
  run t1 run -d --bundle /bundles/ticks t1 || { fail "run: $(cat $LOGS/t1.err)"; return; }
  waitfor '[ "$(tick)" -gt 5 ]' || { fail "memtouch does not tick"; return; }
  s=$(up); run q1 checkpoint --pre-dump --image-path /tmp/pre1 t1 || { fail "pre-dump 1: $(cat $LOGS/q1.err)"; return; }
  s1=$(echo "$(up) $s" | awk '{printf "%.2f", $1-$2}'); k1=$(kib /tmp/pre1); sleep 1
  s=$(up); run q2 checkpoint --pre-dump --image-path /tmp/pre2 --parent-path ../pre1 t1 || { fail "pre-dump 2: $(cat $LOGS/q2.err)"; return; }
  s2=$(echo "$(up) $s" | awk '{printf "%.2f", $1-$2}'); k2=$(kib /tmp/pre2); sleep 1
  s=$(up); run q3 checkpoint --print-stats --image-path /tmp/final --parent-path ../pre2 t1 || { fail "final: $(cat $LOGS/q3.err)"; return; }
  s3=$(echo "$(up) $s" | awk '{printf "%.2f", $1-$2}'); k3=$(kib /tmp/final)
  last=$(tick)
  [ "$k2" -lt $((k1/4)) ] && [ "$k3" -lt $((k1/4)) ] || { fail "pages did not shrink: ${k1} -> ${k2} -> ${k3} KiB"; return; }
  run t2 restore -d --bundle /bundles/ticks2 --image-path /tmp/final t2 || { fail "restore: $(cat $LOGS/t2.err)"; return; }
  waitfor '[ "$(tick)" -gt $((last+3)) ]' || { fail "no ticks after restore (last $last, now $(tick))"; return; }
  ! grep -q BAD /out-b/ticks || { fail "memtouch found its memory changed after restore: $(grep -m1 BAD /out-b/ticks)"; lcr delete -f t2 >/dev/null 2>&1; return; }
  run d4 delete -f t2
  pass "pages pre1 ${k1} KiB (${s1}s), pre2 ${k2} KiB (${s2}s), final ${k3} KiB (${s3}s); tick $last went on"
}

t_lazy() {
  begin "post-copy: --lazy-pages checkpoint serving pages, lazy restore counts on"
  : > /out-b/ticks
  run l1 run -d --bundle /bundles/ticks l1 || { fail "run: $(cat $LOGS/l1.err)"; return; }
  waitfor '[ "$(tick)" -gt 5 ]' || { fail "memtouch does not tick"; return; }
  ( lcr checkpoint --lazy-pages --page-server 127.0.0.1:27000 --image-path /tmp/lz l1 </dev/null >$LOGS/lz.out 2>$LOGS/lz.err; echo $? > /tmp/lz.rc ) &
  waitfor 'grep -q "Starting lazy pages server" /tmp/lz/dump.log 2>/dev/null' 300 || { fail "lazy dump did not start serving: $(cat $LOGS/lz.err)"; return; }
  last=$(tick)
  criu lazy-pages --page-server --address 127.0.0.1 --port 27000 -D /tmp/lz -d -o lazy.log || { fail "criu lazy-pages did not start"; return; }
  run l2 restore -d --lazy-pages --bundle /bundles/ticks2 --image-path /tmp/lz l2 || { fail "lazy restore: $(cat $LOGS/l2.err)"; return; }
  waitfor '[ "$(tick)" -gt $((last+3)) ]' || { fail "no ticks after lazy restore (last $last, now $(tick))"; return; }
  ! grep -q BAD /out-b/ticks || { fail "memtouch found its memory changed after the lazy restore: $(grep -m1 BAD /out-b/ticks)"; lcr delete -f l2 >/dev/null 2>&1; return; }
  waitfor '[ -f /tmp/lz.rc ]' 300 || { fail "the lazy dump never finished"; return; }
  [ "$(cat /tmp/lz.rc)" = 0 ] || { fail "lazy checkpoint exited $(cat /tmp/lz.rc): $(cat $LOGS/lz.err)"; return; }
  transferred=$(grep -ho "UFFD transferred pages: ([0-9/]*)" /tmp/lz/*.log | tail -1)
  run d5 delete -f l2
  pass "tick $last went on; $transferred"
}

# Two "hosts" in the guest as on the host lane: network namespaces joined by a veth pair, sshd
# (keys made for this run) in the destination; $SSH runs the client in the source. iproute2's
# ip by its path: busybox's sh runs its own applet for a bare `ip`.
SSHD_PID= IP=/usr/local/sbin/ip
two_hosts() {
  $IP netns add src && $IP netns add dst || return 1
  $IP link add vsrc type veth peer name vdst && $IP link set vsrc netns src && $IP link set vdst netns dst || return 1
  $IP -n src addr add 10.250.0.1/24 dev vsrc; $IP -n dst addr add 10.250.0.2/24 dev vdst
  for n in src dst; do $IP -n $n link set lo up; done
  $IP -n src link set vsrc up; $IP -n dst link set vdst up
  K=/tmp/ssh; mkdir -p $K /run/sshd
  ssh-keygen -q -t ed25519 -N '' -f $K/host && ssh-keygen -q -t ed25519 -N '' -f $K/client || return 1
  cp $K/client.pub $K/authorized_keys; echo "10.250.0.2 $(cat $K/host.pub)" > $K/known_hosts
  printf 'ListenAddress 10.250.0.2\nHostKey %s/host\nPidFile %s/sshd.pid\nAuthorizedKeysFile %s/authorized_keys\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nUsePAM no\nStrictModes no\n' $K $K $K > $K/sshd_config
  nsenter --net=/run/netns/dst /usr/sbin/sshd -D -e -f $K/sshd_config 2>$LOGS/sshd.log & SSHD_PID=$!
  SSH=$K/ssh-src
  printf '#!/bin/sh\nexec nsenter --net=/run/netns/src /usr/bin/ssh -F /dev/null -i %s/client -o IdentitiesOnly=yes -o UserKnownHostsFile=%s/known_hosts -o StrictHostKeyChecking=yes "$@"\n' $K $K > $SSH
  chmod 755 $SSH
  waitfor "$SSH -o BatchMode=yes root@10.250.0.2 true 2>/dev/null" 100 || { echo "sshd: $(cat $LOGS/sshd.log)"; return 1; }
}
two_hosts_gone() {
  [ -n "$SSHD_PID" ] && kill $SSHD_PID 2>/dev/null; $IP netns del src 2>/dev/null; $IP netns del dst 2>/dev/null; true
}

t_migrate_precopy() {
  begin "lcr migrate between two network namespaces over ssh: auto takes pre-copy, the rounds converge, the final dump is smaller than the first round, memtouch ticks on"
  two_hosts || { fail "the two-host bed did not come up"; two_hosts_gone; return; }
  : > /out-b/ticks
  run m1 run -d --bundle /bundles/ticks m1 || { fail "run: $(cat $LOGS/m1.err)"; two_hosts_gone; return; }
  waitfor '[ "$(tick)" -gt 5 ]' || { fail "memtouch does not tick"; two_hosts_gone; return; }
  run mg migrate m1 ssh://root@10.250.0.2 --ssh $SSH --dest-lcr /usr/local/bin/lcr --dest-root /run/lcr-dst \
    --dest-id m2 --dest-bundle /bundles/ticks2 --dest-log /tmp/m2.log --json
  rc=$?; last=$(tick)
  [ $rc = 0 ] || { fail "migrate exited $rc: $(cat $LOGS/mg.err) / sshd: $(tail -3 $LOGS/sshd.log)"; lcr delete -f m1 >/dev/null 2>&1; two_hosts_gone; return; }
  grep -q '"strategy":"pre-copy","strategy_reason":"dirty-page tracking on this host"' $LOGS/mg.out || { fail "auto did not take pre-copy: $(cat $LOGS/mg.out)"; two_hosts_gone; return; }
  first=$(field pages_written $LOGS/mg.out); final=$(field final_pages $LOGS/mg.out); down=$(field downtime_ms $LOGS/mg.out)
  rounds=$(grep -o '"pages_written":[0-9]*' $LOGS/mg.out | cut -d: -f2 | tr '\n' ' ')
  ended=$(grep -o '"rounds_ended":"[^"]*"' $LOGS/mg.out)
  [ -n "$first" ] && [ -n "$final" ] && [ "$final" -lt "$first" ] || { fail "the final dump ($final pages) is not smaller than the first round ($first): $(cat $LOGS/mg.out)"; two_hosts_gone; return; }
  ! lcr state m1 >/dev/null 2>&1 || { fail "m1 is still on the source"; two_hosts_gone; return; }
  lcr --root /run/lcr-dst state m2 | grep -q '"status": "running"' || { fail "m2 is not running there"; two_hosts_gone; return; }
  waitfor '[ "$(tick)" -gt $((last+3)) ]' || { fail "no ticks at the destination (last $last, now $(tick))"; two_hosts_gone; return; }
  ! grep -q BAD /out-b/ticks || { fail "memtouch found its memory changed: $(grep -m1 BAD /out-b/ticks)"; two_hosts_gone; return; }
  lcr --root /run/lcr-dst delete -f m2 >/dev/null 2>&1
  two_hosts_gone
  pass "rounds wrote ${rounds}pages ($ended), final dump $final pages, downtime ${down} ms; tick $last went on"
}

t_lifecycle
t_oom_v2
t_restore_v2
t_archive_v2
t_precopy
t_lazy
t_migrate_precopy
for f in /tmp/img-c2 /tmp/pre1 /tmp/pre2 /tmp/final /tmp/lz; do for l in $f/*.log; do [ -f "$l" ] && cp "$l" "$LOGS/$(basename $f)-$(basename $l)"; done; done
res "tests finished at uptime $(up)s, $fails failed"
