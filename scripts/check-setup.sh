#!/usr/bin/env bash
# The set-up check: would every package the scripts name (scripts/lib/packages.sh) install on
# a machine like this one that has none of them yet? It simulates the scripts' own resolution
# (scripts/lib/apt.sh, apt-get -s) against a copy of this machine's package database with
# those packages taken out, so a package that a fresh machine cannot install is red here
# too, even where an earlier run installed it. Installs nothing; may add the backports source
# and refresh package lists, as set-up itself would. Exits 1 naming each package that fails.
# shellcheck disable=SC2086  # package lists are words
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
APT_WHO=check-setup
. "$HERE/lib/packages.sh"
. "$HERE/lib/apt.sh"
[ "$(id -u)" = 0 ] || { echo "check-setup: must run as root" >&2; exit 1; }

FAKE=$(mktemp -d /tmp/lcr-check-setup.XXXXXX)
trap 'rm -rf "$FAKE"' EXIT
# shellcheck disable=SC2086  # the lists are words
ours=$(echo $PKGS_ALL | tr ' ' '\n' | sort -u)
# The machine as if it had none of our packages: their stanzas out of a copy of the package
# database, with every installed package that depends on one of them (a fresh machine has
# neither), but never an Essential one (every machine has those).
without() { # $1 file of package names → $FAKE/status
  awk -v drop="$1" '
    BEGIN { while ((getline n < drop) > 0) gone[n] = 1; RS = ""; ORS = "\n\n" }
    { pkg = ""
      if (match($0, /(^|\n)Package: [^\n]+/)) { pkg = substr($0, RSTART, RLENGTH); sub(/.*Package: /, "", pkg) }
      if (!(pkg in gone) || $0 ~ /(^|\n)Essential: yes/) print }' /var/lib/dpkg/status >"$FAKE/status"
}
nonessential=$(for p in $ours; do dpkg-query -W -f='${Package} ${Essential}\n' "$p" 2>/dev/null; done | awk '$2 != "yes" {print $1}')
{
  echo "$ours"
  # shellcheck disable=SC2086
  [ -z "$nonessential" ] || apt-cache rdepends --installed --recurse --no-suggests --no-recommends \
    --no-enhances --no-conflicts --no-breaks --no-replaces $nonessential | grep -v '^Reverse Depends' | sed 's/^[ |]*//'
} | sort -u >"$FAKE/drop"
APT_SIM_OPTS=(-o "Dir::State::status=$FAKE/status")
# apt-cache does not follow every kind of dependency (python3:any): what `apt-get check` still
# finds broken among the packages left is taken out too, until the copy is consistent.
for _ in 1 2 3 4 5 6 7 8; do
  without "$FAKE/drop"
  broken=$(LC_ALL=C apt-get check -q "${APT_SIM_OPTS[@]}" 2>&1 |
    awk '/unmet dependencies:/{on=1; next} on && /^ [^ ]/ {print $1} !/^ /{on=0}' | sed 's/:.*//' | sort -u || true)
  [ -n "$broken" ] || break
  echo "$broken" | cat - "$FAKE/drop" | sort -u >"$FAKE/drop.new"; mv "$FAKE/drop.new" "$FAKE/drop"
done

apt_lists
failed=0
check() { # $1 step, $2… packages
  local step=$1; shift
  if pkg_plan "$step" "$@"; then
    echo "check-setup: $step: ${#PLAN_RELEASE[@]} from $APT_CODENAME${PLAN_BACKPORTS:+, ${PLAN_BACKPORTS[*]} from $APT_BACKPORTS}"
  else
    failed=1
  fi
}
check "scripts/setup.sh" $PKGS_SETUP
check "scripts/install-criu.sh" $PKGS_CRIU_BUILD
check "the kernel lane" $PKGS_KERNEL_LANE
check "the benchmarks" $PKGS_BENCH
if [ $failed = 1 ]; then echo "check-setup: FAILED: a fresh machine cannot install what the scripts name (above)" >&2; exit 1; fi
echo "check-setup: every package the scripts name can be installed"
