#!/usr/bin/env bash
# Installs workshop on Debian 12 or Ubuntu 22.04+ and starts it:
#   system packages, a Python venv in .venv (the runtime only; ./run-tests adds the test tools),
#   the `workshop` command in /usr/local/bin, and the container image.
# Safe to run again: it only installs what is missing.
#   --no-shell      install without starting the REPL
#   --bundle DIR    install from an offline bundle (./make-bundle writes one); ./bundle is used by itself
# What apt and pip print goes to /var/log/workshop-setup.log; the screen gets one line per stage.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

if [ "$(id -u)" != 0 ]; then
  echo "workshop needs root to install system packages and, later, to create namespaces: sudo $0 $*" >&2
  exit 2
fi

start_shell=1
bundle=""
while [ $# -gt 0 ]; do
  case "$1" in
    --no-shell) start_shell=0 ;;
    --bundle) [ $# -ge 2 ] || { echo "usage: $0 [--no-shell] [--bundle DIR]" >&2; exit 2; }; bundle=$2; shift ;;
    --bundle=*) bundle=${1#--bundle=} ;;
    *) echo "usage: $0 [--no-shell] [--bundle DIR]" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$bundle" ] && [ -f bundle/MANIFEST ]; then
  bundle=bundle  # beside the repository: what a trainer copies in before `vagrant up`
fi

log=/var/log/workshop-setup.log
: >>"$log" 2>/dev/null || log=$(mktemp /tmp/workshop-setup.XXXXXX.log)
echo "== setup.sh $(date -u +%FT%TZ) bundle=${bundle:-none}" >>"$log"
fail() {
  echo "setup.sh: $*" >&2
  echo "  (details: $log)" >&2
  exit 1
}
offline_hint="on a machine with network, run ./make-bundle, copy the bundle/ folder beside this repository (or pass --bundle DIR) and run setup.sh again"

if [ -n "$bundle" ]; then
  [ -f "$bundle/MANIFEST" ] || fail "$bundle is not a workshop bundle (no MANIFEST): make one with ./make-bundle"
  bundle=$(readlink -f "$bundle")
  manifest() { sed -n "s/^$1=//p" "$bundle/MANIFEST"; }
  . /etc/os-release
  if [ "$(manifest arch)" != "$(dpkg --print-architecture)" ] || [ "$(manifest codename)" != "${VERSION_CODENAME:-}" ]; then
    fail "the bundle in $bundle is for $(manifest codename)/$(manifest arch) and this machine is ${VERSION_CODENAME:-unknown}/$(dpkg --print-architecture): make a bundle on a machine like this one"
  fi
fi

# The packages, one list shared with make-bundle.
mapfile -t packages < <(grep -v '^[[:space:]]*\(#\|$\)' packages.txt)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if [ -n "$bundle" ]; then
    # The bundle as the only apt source, through options: the machine's own apt configuration is not touched.
    apt_dir=$(mktemp -d)
    trap 'rm -rf "$apt_dir"' EXIT
    mkdir -p "$apt_dir/lists/partial"
    echo "deb [trusted=yes] file:$bundle/debs ./" >"$apt_dir/sources.list"
    apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=$apt_dir/none"
      -o "Dir::State::Lists=$apt_dir/lists" -o "APT::Get::List-Cleanup=0")
    apt-get "${apt_opts[@]}" update >>"$log" 2>&1 || fail "apt cannot read the bundle's packages in $bundle/debs"
    apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" >>"$log" 2>&1 \
      || fail "installing ${missing[*]} from the bundle failed: is it complete? (./make-bundle writes a whole one)"
  else
    # One try, no retry storm: without a route to the archive, say so and how to go on.
    apt-get -o Acquire::Retries=0 update >>"$log" 2>&1 || true
    apt-get -o Acquire::Retries=0 install -y --no-install-recommends "${missing[@]}" >>"$log" 2>&1 \
      || fail "cannot install ${missing[*]}: no package archive is reachable (offline?); $offline_hint"
  fi
fi

# The distribution's Python, not whatever is first on PATH: the same interpreter on every machine.
if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv .venv >>"$log" 2>&1 || fail "cannot create the venv in $PWD/.venv"
fi
pip=(.venv/bin/python -m pip install --disable-pip-version-check)
if [ -n "$bundle" ]; then
  "${pip[@]}" --no-index --find-links "$bundle/wheels" -e . >>"$log" 2>&1 \
    || fail "installing workshop from the bundle's wheels failed: was the bundle made from this version? (./make-bundle)"
else
  "${pip[@]}" --retries 0 --timeout 15 -e . >>"$log" 2>&1 \
    || fail "cannot install workshop's Python packages: no package index is reachable (offline?); $offline_hint"
fi
ln -sf "$PWD/.venv/bin/workshop" /usr/local/bin/workshop

if [ ! -f "${WORKSHOP_STATE_DIR:-/var/lib/workshop}/images/rootfs.tar" ]; then
  if [ -n "$bundle" ] && [ -f "$bundle/images/rootfs.tar" ]; then
    .venv/bin/workshop rootfs --from "$bundle/images/rootfs.tar"
  else
    .venv/bin/workshop rootfs
  fi
fi

# Offered, not installed: the last lesson compares podman with the hand-built container (workshop says it cannot
# run that lesson, and why, until they are there).
if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
  echo "optional: sudo apt-get install podman runc  enables the podman lesson"
fi

if [ "$start_shell" = 1 ]; then
  exec .venv/bin/workshop
fi
echo "workshop is installed: start it with  sudo workshop"
