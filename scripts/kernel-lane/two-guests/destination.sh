#!/bin/sh
# The destination guest of the two-guest lane (bookworm-backports' 6.12): sshd on the virtual
# link with the keys the host made for this run, until the host says stop; then checks that
# nothing of the migrations is left.
. /guest-lib.sh
K=/tmp/ssh; mkdir -p $K /run/sshd /bundles /var/log/lcr
cp /mnt/host/keys/* $K/; chmod 600 $K/host
# ClientAlive: a link that goes dead ends the session in seconds (the receiver then sees its
# connection end and rolls back), as ServerAlive does on the source's side.
printf 'ListenAddress 10.77.0.2\nHostKey %s/host\nPidFile %s/sshd.pid\nAuthorizedKeysFile %s/authorized_keys\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nUsePAM no\nStrictModes no\nClientAliveInterval 2\nClientAliveCountMax 3\nMaxStartups 50\n' $K $K $K > $K/sshd_config
/usr/sbin/sshd -D -e -f $K/sshd_config 2>$LOGS/sshd.log & sshd=$!
res "destination: kernel $(uname -r); cgroup2 controllers: $(cat $CG/cgroup.controllers); $(criu --version | head -1); old: $(/opt/criu-old/criu --version | head -1)"
echo "up $(up)" > $OUT/ready
waitfor '[ -e /mnt/host/stop ]' 18000 || res "FAIL destination: the host never said stop"
kill $sshd
begin "destination: nothing of the migrations left at the end (containers, cgroups, processes, bundles)"
left=$(lcr list -q 2>/dev/null | tr '\n' ' ')
cgs=$(ls $CG/lcr-two 2>/dev/null | grep -v '^cgroup\.\|^cpu\|^memory\|^pids\|^io\|^hugetlb\|^rdma\|^misc' | tr '\n' ' ')
bundles=$(ls /bundles | tr '\n' ' ')
mt=$(grep -ls '^memtouch' /proc/[0-9]*/cmdline 2>/dev/null | wc -l)
if [ -z "$left$cgs$bundles" ] && [ "$mt" = 0 ]; then pass; else fail "containers: $left; cgroups: $cgs; bundles: $bundles; memtouch processes: $mt"; fi
res "tests finished at uptime $(up)s, $fails failed"
