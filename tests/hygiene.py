"""What a lesson or test could leave behind on the host, read from the kernel, so two readings can be compared."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


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
    return frozenset(found)


def _foreign_pidns_processes() -> frozenset[str]:
    mine = os.readlink("/proc/self/ns/pid")
    found = set()
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            ns = os.readlink(p / "ns/pid")
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if ns != mine:
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


@dataclass(frozen=True)
class HostState:
    mounts: frozenset[str]
    links: frozenset[str]
    netns: frozenset[str]
    cgroups: frozenset[str]
    foreign_pidns: frozenset[str]
    session_processes: frozenset[str]
    hostname: str

    @classmethod
    def read(cls) -> HostState:
        return cls(
            _mounts(),
            _links(),
            _netns(),
            _cgroups(),
            _foreign_pidns_processes(),
            _session_processes(),
            socket.gethostname(),
        )

    def leaks_since(self, before: HostState) -> list[str]:
        leaks = []
        for name in ("mounts", "links", "netns", "cgroups", "foreign_pidns", "session_processes"):
            added = getattr(self, name) - getattr(before, name)
            leaks += [f"{name}: {item}" for item in sorted(added)]
        if self.hostname != before.hostname:
            leaks.append(f"hostname: {before.hostname!r} became {self.hostname!r}")
        return leaks
