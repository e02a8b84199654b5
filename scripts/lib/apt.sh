# Installing Debian packages whatever versions a machine already ships. Sourced by the set-up
# scripts; APT_WHO names the caller in messages.
#
# - Nothing installed is removed or downgraded (--no-remove): a fresh machine's own packages
#   (e.g. qemu-utils 10 from bookworm-backports) stay as they are.
# - A package the release cannot install beside them (bookworm's qemu-system-x86 7.2 needs a
#   qemu-system-common that qemu-utils 10 breaks) is taken from the release's backports suite,
#   added as a source for that alone (backports packages are never upgrades by default).
# - A package that can be installed from neither is named, with what was tried and apt's reason.
#
# pkg_plan decides without installing (apt-get -s); APT_SIM_OPTS adds options to those
# simulations only (scripts/check-setup.sh points them at a machine without the packages).

APT_SIM_OPTS=()
PLAN_RELEASE=()   # set by pkg_plan: packages from the release's own suites
PLAN_BACKPORTS=() # set by pkg_plan: packages from "$APT_BACKPORTS"
APT_CODENAME=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
APT_BACKPORTS=${APT_BACKPORTS:-$APT_CODENAME-backports}
APT_BACKPORTS_LIST=/etc/apt/sources.list.d/lcr-$APT_BACKPORTS.sources

apt_say() { echo "${APT_WHO:-apt}: $*" >&2; }

apt_update() {
  local log; log=$(mktemp /tmp/lcr-apt-update.XXXXXX)
  if ! apt-get update -q >"$log" 2>&1; then
    apt_say "apt-get update failed:"; tail -5 "$log" | sed 's/^/    /' >&2; rm -f "$log"; return 1
  fi
  rm -f "$log"
}

apt_lists() { ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1 || apt_update; }

pkg_installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }

# Simulates `apt-get install [-t SUITE] PKG…`; prints apt's output.
apt_sim() {
  LC_ALL=C apt-get install -s -q --no-install-recommends --no-remove "${APT_SIM_OPTS[@]}" "$@" 2>&1
}

# The lines of apt's output that say why it cannot install (its "unmet dependencies" and errors).
apt_reason() {
  awk '/unmet dependencies:/{on=1; next} on && /^ /{print; next} {on=0} /^E: /{print}' |
    sed -e 's/^ *//' -e 's/^/    /' | head -8
}

# Packages installed from some backports suite (Debian marks their versions ~bpoNN).
apt_backported() { dpkg-query -W -f='${db:Status-Status} ${Package} ${Version}\n' 2>/dev/null | awk '$1 == "installed" && $3 ~ /~bpo/ {print $2, $3}' | head -5 | paste -sd, | sed 's/,/, /g'; }

apt_has_backports() {
  grep -rqsE "^[^#]*\b$APT_BACKPORTS\b" /etc/apt/sources.list /etc/apt/sources.list.d/
}

# The mirror the machine's own sources use for the release (deb.debian.org if none is found).
apt_mirror() {
  local uri
  uri=$(grep -rhsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' |
    grep -E '/debian/?$' | head -1)
  [ -n "$uri" ] || uri=$(awk '$1=="deb" && $3 ~ /^'"$APT_CODENAME"'$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  echo "${uri:-http://deb.debian.org/debian}"
}

apt_add_backports() {
  apt_has_backports && return 0
  apt_say "adding $APT_BACKPORTS as a package source ($APT_BACKPORTS_LIST)"
  cat >"$APT_BACKPORTS_LIST" <<SRC
Types: deb
URIs: $(apt_mirror)
Suites: $APT_BACKPORTS
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  # A source that does not answer would break every later apt-get update: take it out again.
  apt_update || { rm -f "$APT_BACKPORTS_LIST"; apt_update; return 1; }
}

# pkg_plan WHY PKG… — decides where each package comes from (PLAN_RELEASE, PLAN_BACKPORTS)
# without installing anything; fails naming every package that cannot be installed.
pkg_plan() {
  local why=$1; shift
  PLAN_RELEASE=(); PLAN_BACKPORTS=()
  [ $# -gt 0 ] || return 0
  local out
  if out=$(apt_sim "$@"); then PLAN_RELEASE=("$@"); return 0; fi
  if grep -qE 'Unable to locate package|has no installation candidate' <<<"$out"; then
    apt_update || return 1   # stale or missing package lists
    if apt_sim "$@" >/dev/null; then PLAN_RELEASE=("$@"); return 0; fi
  fi
  local p failed=0 reason bpo_reason
  for p in "$@"; do
    if out=$(apt_sim "$p"); then PLAN_RELEASE+=("$p"); continue; fi
    reason=$(apt_reason <<<"$out")
    if grep -qE 'Unable to locate package|has no installation candidate' <<<"$out"; then
      apt_say "$p: $APT_CODENAME has no such package:"
    else
      apt_say "$p: $APT_CODENAME's version cannot be installed beside this machine's packages:"
    fi
    echo "$reason" >&2
    apt_say "$p: trying $APT_BACKPORTS (this machine has from backports: $(apt_backported || true))"
    if apt_add_backports && out=$(apt_sim -t "$APT_BACKPORTS" "$p"); then
      PLAN_BACKPORTS+=("$p"); continue
    fi
    bpo_reason=$(apt_reason <<<"$out")
    apt_say "ERROR: cannot install $p (needed for $why): tried $APT_CODENAME, then $APT_BACKPORTS:"
    echo "${bpo_reason:-    $APT_BACKPORTS could not be added}" >&2
    failed=1
  done
  [ $failed = 0 ] || return 1
  local set
  for set in release backports; do
    local -a pkgs=() topt=()
    if [ $set = release ]; then pkgs=("${PLAN_RELEASE[@]}"); else pkgs=("${PLAN_BACKPORTS[@]}"); topt=(-t "$APT_BACKPORTS"); fi
    [ ${#pkgs[@]} -gt 0 ] || continue
    if ! out=$(apt_sim "${topt[@]}" "${pkgs[@]}"); then
      apt_say "ERROR: each of ${pkgs[*]} installs alone, but not all together (needed for $why):"
      apt_reason <<<"$out" >&2
      return 1
    fi
  done
}

apt_do() {
  local log; log=$(mktemp /tmp/lcr-apt-install.XXXXXX)
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends --no-remove "$@" >"$log" 2>&1; then
    if grep -qE 'Failed to fetch|404' "$log" && apt_update &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends --no-remove "$@" >"$log" 2>&1; then
      rm -f "$log"; return 0
    fi
    apt_say "ERROR: apt-get install $* failed:"; grep -E '^(E|W): |unmet|Depends|Breaks' "$log" | head -10 | sed 's/^/    /' >&2
    apt_say "full output: $log"; return 1
  fi
  rm -f "$log"
}

# pkg_install WHY PKG… — installs the packages not yet installed (see the top of this file).
pkg_install() {
  local why=$1; shift
  local -a missing=(); local p
  for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -gt 0 ] || return 0
  apt_lists || return 1
  pkg_plan "$why" "${missing[@]}" || return 1
  if [ ${#PLAN_RELEASE[@]} -gt 0 ]; then
    apt_say "installing for $why: ${PLAN_RELEASE[*]}"
    apt_do "${PLAN_RELEASE[@]}" || return 1
  fi
  if [ ${#PLAN_BACKPORTS[@]} -gt 0 ]; then
    apt_say "installing for $why from $APT_BACKPORTS: ${PLAN_BACKPORTS[*]}"
    apt_do -t "$APT_BACKPORTS" "${PLAN_BACKPORTS[@]}" || return 1
  fi
}

# pkg_need WHY PKG… — pkg_install, or exit naming the step.
pkg_need() {
  pkg_install "$@" || { apt_say "FAILED: could not install what $1 needs (see above)"; exit 1; }
}
