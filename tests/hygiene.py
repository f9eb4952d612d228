"""What a lesson or test could leave behind on the host, read from the kernel, so two readings can be compared.

Besides kernel objects (mounts, links and their addresses, netns, cgroups, SysV IPC, processes, the hostname) it
lists the few places outside the state dir where a stray lesson line would write a file: top-level entries of
/, /mnt, /srv, /run, /var/tmp, /dev/shm, /etc/netns and /root (a container's `/hello.txt` written with the
host's root by mistake lands in /), and what appears in the repository's lessons folder. /tmp is
checked too, but only under CI (or WORKSHOP_HYGIENE_TMP=1): on a shared development machine other people's
commands write there all the time, and every such file would read as a leak.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.ci import IN_CI

CGROUP_ROOT = Path("/sys/fs/cgroup")
REPO = Path(__file__).resolve().parent.parent
QUIET_DIRS = (
    Path("/"), Path("/mnt"), Path("/srv"), Path("/run"), Path("/var/tmp"), Path("/dev/shm"), Path("/etc/netns"),
    Path("/root"), Path("/var/lib"), Path("/var/lib/containers"),
)  # fmt: skip
"""Where nothing but the tool's own lines would add an entry while a test runs (listed one level deep); podman
writes a cache of blob digests to /var/lib/containers whatever its --root, which the podman lesson journals."""
LESSON_SOURCES = (".md", ".py", ".sh")
"""What lesson authors add to lessons/ (possibly while a test runs): anything else appearing there is a leak."""
TMP_NOT_OURS = ("pytest-of-", "bash_tool_", "bash_jobs")
"""/tmp entries made by pytest and by the machinery running the tests, never by a lesson."""


def _check_tmp() -> bool:
    flag = os.environ.get("WORKSHOP_HYGIENE_TMP")
    if flag is not None:
        return flag.lower() in ("1", "true", "yes")
    return IN_CI


def _mounts() -> frozenset[str]:
    out = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        f = line.split()
        sep = f.index("-")
        out.add(f"{f[4]} {f[sep + 1]} {f[sep + 2]}")
    return frozenset(out)


def _links() -> frozenset[str]:
    return frozenset(p.name for p in Path("/sys/class/net").iterdir())


def _netns() -> frozenset[str]:
    names: set[str] = set()
    for d in (Path("/run/netns"), Path("/var/run/netns")):
        if d.is_dir():
            names.add(f"{d}/")  # the directory itself: the tool creates it when the host had none
            names.update(p.name for p in d.iterdir())
    return frozenset(names)


def _addresses() -> frozenset[str]:
    """Every address on every link of the host's network namespace (where this test process lives)."""
    try:
        done = subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True, timeout=10, check=True)
        items = json.loads(done.stdout or "[]")
    except (OSError, subprocess.SubprocessError, ValueError):
        return frozenset({"? ip -j addr failed"})
    return frozenset(
        f"{item.get('ifname')} {a.get('family')} {a.get('local')}/{a.get('prefixlen')}"
        for item in items
        for a in item.get("addr_info", [])
    )


def _files() -> frozenset[str]:
    found: set[str] = set()
    for d in QUIET_DIRS:
        if d.is_dir():
            found.add(f"{d}/")  # the directory itself, e.g. /etc/netns made by `ip netns`
            found.update(str(p) for p in d.iterdir())
    if _check_tmp():
        found.update(str(p) for p in Path("/tmp").iterdir() if not p.name.startswith(TMP_NOT_OURS))
    for p in (REPO / "lessons").rglob("*"):
        if p.is_dir() and p.name != "__pycache__":
            continue  # a new lesson folder holds a lesson.md, which is listed if it is not a source
        if p.suffix not in LESSON_SOURCES or "__pycache__" in p.parts:
            found.add(str(p))
    return frozenset(found)


def _sysv_ipc() -> frozenset[str]:
    """SysV message queues, semaphore sets and shared memory of the host's IPC namespace (`ipcmk` makes them)."""
    found = set()
    for kind in ("msg", "sem", "shm"):
        try:
            lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) > 1:
                found.add(f"{kind} key={f[0]} id={f[1]}")
    return frozenset(found)


def _cgroups() -> frozenset[str]:
    found = set()
    if CGROUP_ROOT.is_dir():
        for top in CGROUP_ROOT.iterdir():
            # this sandbox makes a cgroup for every command it runs (process_api): not ours, not a leak
            # two levels deep is where lessons create theirs (e.g. pids/workshop/<name>)
            for d in [
                top,
                *(p for p in top.glob("*") if p.is_dir()),
                *(p for p in top.glob("*/*") if p.is_dir()),
            ]:
                if d.is_dir() and "process_api" not in d.parts:
                    found.add(str(d))
        # which controllers the root (v2) or the unified hierarchy's root (hybrid) hands down: lessons switch pids,
        # memory and cpu on there and must switch them off again
        for control in (CGROUP_ROOT / "cgroup.subtree_control", CGROUP_ROOT / "unified/cgroup.subtree_control"):
            with contextlib.suppress(OSError):
                found.add(f"{control}: {' '.join(sorted(control.read_text().split()))}")
    return frozenset(found)


def _foreign_pidns_processes() -> frozenset[str]:
    mine = os.readlink("/proc/self/ns/pid")
    found = set()
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            ns = os.readlink(p / "ns/pid")
            if ns == mine:
                continue
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            state, ppid = (p / "stat").read_text().rpartition(")")[2].split()[:2]
        except (OSError, ValueError):
            continue
        if state == "Z" and ppid == "1":
            # dead, and orphaned to init, which alone may reap it: some inits (this sandbox's) take seconds
            continue
        found.add(f"{p.name} {cmd}")
    return frozenset(found)


def _session_processes() -> frozenset[str]:
    found = set()
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            env = (p / "environ").read_bytes()
        except OSError:
            continue
        if b"WORKSHOP_SESSION=" in env:
            found.add(p.name)
    return frozenset(found)


FIELDS = (
    "mounts",
    "links",
    "addresses",
    "netns",
    "cgroups",
    "sysv_ipc",
    "foreign_pidns",
    "session_processes",
    "files",
)
"""What is compared as sets: anything added since the earlier reading is a leak."""


@dataclass(frozen=True)
class HostState:
    mounts: frozenset[str]
    links: frozenset[str]
    addresses: frozenset[str]
    netns: frozenset[str]
    cgroups: frozenset[str]
    sysv_ipc: frozenset[str]
    foreign_pidns: frozenset[str]
    session_processes: frozenset[str]
    files: frozenset[str]
    hostname: str

    @classmethod
    def read(cls) -> HostState:
        return cls(
            _mounts(),
            _links(),
            _addresses(),
            _netns(),
            _cgroups(),
            _sysv_ipc(),
            _foreign_pidns_processes(),
            _session_processes(),
            _files(),
            socket.gethostname(),
        )

    def leaks_since(self, before: HostState) -> list[str]:
        leaks = []
        for name in FIELDS:
            added = getattr(self, name) - getattr(before, name)
            leaks += [f"{name}: {item}" for item in sorted(added)]
        if self.hostname != before.hostname:
            leaks.append(f"hostname: {before.hostname!r} became {self.hostname!r}")
        return leaks
