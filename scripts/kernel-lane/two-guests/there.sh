#!/bin/sh
# lane-there ID [clean|kill-receiver] — what the destination guest has of container ID, one
# key=value a line (the source asks over ssh). First, with "clean": removes it as its user
# would (lcr delete -f, the bundle and the log); with "kill-receiver": SIGKILLs the lcr
# receiving it.
id=$1; log=/var/log/lcr/$id.log; cg=/sys/fs/cgroup/lcr-two/$id
# A command line that cannot be read within 2 s (its process stuck with its memory locked)
# is named on stderr with the process's state and kernel stack, and counts as a match.
cmdline() {
  timeout 2 tr '\0' ' ' 2>/dev/null < "$1/cmdline" && return
  [ -e "$1" ] || return
  echo "stuck: ${1#/proc/} $(cut -d' ' -f2,3 "$1/stat" 2>/dev/null) wchan=$(cat "$1/wchan" 2>/dev/null) $(tr '\n' ' ' < "$1/stack" 2>/dev/null)" >&2
  echo "$2"
}
pids() { # the processes whose command line holds $1
  for p in /proc/[0-9]*; do
    case "$(cmdline "$p" "$1")" in *"$1"*) echo "${p#/proc/}";; esac
  done | grep -vx "$$"
}
procs() { pids "$1" | wc -l; }
case "${2:-}" in
  clean) lcr delete -f "$id" >/dev/null 2>&1; rm -rf "/bundles/$id" "$log" /tmp/lcr-*;;
  kill-receiver) for p in $(pids "migrate-receive --id $id "); do kill -9 "$p"; done;;
esac
echo "status=$(lcr state "$id" 2>/dev/null | sed -n 's/.*"status": "\([a-z]*\)".*/\1/p')"
echo "cgroup=$([ -d $cg ] && echo "$(cat $cg/memory.max) $(cat $cg/pids.max) $(cat $cg/cpu.max)")"
echo "tick=$(grep '^tick' $log 2>/dev/null | tail -1 | awk '{print $2}')"
echo "first_stamp=$(grep -m1 '^stamp' $log 2>/dev/null | awk '{print $2}')"
echo "bad=$(grep -c BAD $log 2>/dev/null)"
echo "receivers=$(procs "migrate-receive --id $id ")"
echo "criu=$(procs "criu")"
echo "memtouch=$(procs "memtouch")"
echo "bundle=$(ls -A /bundles/$id 2>/dev/null | wc -l)"
echo "containers=$(lcr list -q 2>/dev/null | grep -c .)"
echo "images=$(ls -d /tmp/lcr-* /tmp/.lcr* 2>/dev/null | wc -l)"
