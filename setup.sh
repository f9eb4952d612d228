#!/usr/bin/env bash
# Installs workshop on Debian 12 or Ubuntu 22.04+ and starts it:
#   system packages, a Python venv in .venv, the `workshop` command in /usr/local/bin, and the container image.
# Safe to run again: it only installs what is missing.  `--no-shell` installs without starting the REPL.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

if [ "$(id -u)" != 0 ]; then
  echo "workshop needs root to install system packages and, later, to create namespaces: sudo $0 $*" >&2
  exit 2
fi

start_shell=1
for arg in "$@"; do
  case "$arg" in
    --no-shell) start_shell=0 ;;
    *) echo "usage: $0 [--no-shell]" >&2; exit 2 ;;
  esac
done

# Every program a lesson, a check or a test calls, by the Debian package that ships it.
packages=(
  python3 python3-venv          # the tool itself
  busybox-static                # the offline container image is built from it
  util-linux                    # unshare, nsenter, chroot, mount, setpriv
  psmisc                        # pstree
  iproute2                      # ip
  procps                        # ps, pgrep
  coreutils tar gawk bash
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The distribution's Python, not whatever is first on PATH: the same interpreter on every machine.
if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
ln -sf "$PWD/.venv/bin/workshop" /usr/local/bin/workshop

if [ ! -f "${WORKSHOP_STATE_DIR:-/var/lib/workshop}/images/rootfs.tar" ]; then
  .venv/bin/workshop rootfs
fi

if [ "$start_shell" = 1 ]; then
  exec .venv/bin/workshop
fi
echo "workshop is installed: start it with  sudo workshop"
