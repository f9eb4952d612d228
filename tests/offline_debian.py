"""A bare Debian 12 with no network, for proving the offline install (tests) and timing it (benchmarks).

The machine is a minimal Debian 12 root (mmdebstrap's minbase: no Python, none of the lesson tools) with the
repository copied into /opt/workshop, as a trainer copies it from a USB stick before `vagrant up`. Commands run
chrooted in it inside private namespaces: a network namespace with nothing but loopback (no route anywhere),
a mount namespace for /proc, /dev and /tmp, and a PID namespace that takes every process with it when it ends.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests import libmount
from tests.harness import REPO
from tests.libmount import lock_dir_as_found

CACHE = Path(os.environ.get("WORKSHOP_TEST_CACHE", "/var/cache/workshop-tests"))
MINBASE = CACHE / "minbase-bookworm-amd64.tar"
"""Built once (about 100 s, from the Debian mirror in the machine's apt sources) and kept between runs."""


def is_debian_12_amd64() -> bool:
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    return "VERSION_CODENAME=bookworm" in Path("/etc/os-release").read_text() and arch == "amd64"


def minbase() -> Path:
    if MINBASE.is_dir():  # an earlier run's mistake: mmdebstrap made a directory of an unknown-suffix target
        shutil.rmtree(MINBASE)
    if not MINBASE.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = MINBASE.with_suffix(".partial")
        # the format by name: mmdebstrap picks it from the target's suffix, and makes a directory of ".partial"
        argv = ["mmdebstrap", "--quiet", "--variant=minbase", "--format=tar", "bookworm", str(partial)]
        subprocess.run(argv, check=True, env=libmount.elsewhere(CACHE / "minbase-libmount"))  # its mounts
        shutil.rmtree(CACHE / "minbase-libmount", ignore_errors=True)
        partial.rename(MINBASE)
    return MINBASE


def make_bundle(out: Path, arch: str | None = None) -> Path:
    """`./make-bundle OUT`, or `./make-bundle --arch ARCH OUT` for learners on another architecture."""
    argv = [str(REPO / "make-bundle"), *(["--arch", arch] if arch else []), str(out)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"make-bundle failed:\n{done.stdout}{done.stderr}")
    return out


def unpack(root: Path) -> Path:
    """A fresh bare Debian in `root` with this repository (what git tracks, and new files) in /opt/workshop."""
    root.mkdir()
    subprocess.run(["tar", "-xf", str(minbase()), "-C", str(root)], check=True)
    listing = ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    dest = root / "opt" / "workshop"
    for name in subprocess.run(listing, capture_output=True, check=True).stdout.decode().split("\0"):
        if name and (REPO / name).exists():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name, follow_symlinks=False)
    return root


def offline(root: Path, command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Runs `command` chrooted in `root`, in namespaces with loopback only: no route to any package index."""
    inner = f"""set -e
mount --make-rprivate /
mount -t proc proc {root}/proc
mount --rbind /dev {root}/dev
mount -t tmpfs tmpfs {root}/tmp
ip link set lo up
exec chroot {root} /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  HOME=/root LANG=C.UTF-8 TERM=dumb NO_COLOR=1 sh -c '{command}'
"""
    with lock_dir_as_found():
        return subprocess.run(
            ["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "sh", "-c", inner],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
