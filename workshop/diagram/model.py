"""The lesson's kernel state after a step, as a picture's parts: nested PID namespace boxes holding processes,
network namespaces holding links with veth cables between them, overlay layers, cgroups with their limits.

Plain frozen data; `build.build` makes it from what the observer read, `dot.py` turns it into DOT.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

SHOWN_TYPES = ("mnt", "uts", "ipc", "user", "net", "cgroup", "time")
"""The namespace types a process is labelled with when they are not the host's (pid is the box it is drawn in)."""


@dataclass(frozen=True)
class NsTag:
    """A namespace other than the host's, by a short name that is the same wherever it is shared (`net#1`)."""

    ns_type: str
    inode: int
    name: str


@dataclass(frozen=True)
class ProcNode:
    pid: int
    """Host PID."""
    ppid: int
    """Its parent's host PID: the process tree is drawn as edges between processes of the diagram."""
    comm: str
    inner_pid: int | None
    """PID inside its own (nested) PID namespace; None in the host's."""
    own: tuple[NsTag, ...]
    """Namespaces it is in that are not the host's, beyond those its whole box shares (see `PidBox.shared`)."""
    consoles: tuple[str, ...]
    """Consoles whose focus (the process the learner talks to) it is."""
    new: bool
    moves: tuple[str, ...] = ()
    """What its console's focus did in the step, by namespace: `new net#1`, `joined mnt#2`, `back to host uts`."""


@dataclass(frozen=True)
class PidBox:
    """A PID namespace: the processes in it and the PID namespaces nested in it."""

    inode: int | None
    """None: the processes whose PID namespace could not be read."""
    is_host: bool
    depth: int
    """0 for the host's, 1 for one nested in it, …"""
    procs: tuple[ProcNode, ...]
    children: tuple[PidBox, ...]
    shared: tuple[NsTag, ...]
    """Non-host namespaces every process of the box is in (drawn once, on the box)."""
    new: bool


@dataclass(frozen=True)
class LinkNode:
    netns: int
    index: int
    name: str
    kind: str
    state: str
    addresses: tuple[str, ...]
    new: bool


@dataclass(frozen=True)
class NetBox:
    inode: int
    tag: str
    """`host` or the short name processes are labelled with (`net#1`)."""
    consoles: tuple[str, ...]
    links: tuple[LinkNode, ...]
    new: bool
    error: str | None = None


@dataclass(frozen=True)
class Cable:
    """A veth pair, or a bridge port to its bridge: one edge between two links."""

    a: tuple[int, int]
    """(netns inode, ifindex) of one end."""
    b: tuple[int, int] | None
    """The other end; None when it lives in a namespace that was not read."""
    label: str
    kind: str
    """`veth` or `port`."""
    new: bool


@dataclass(frozen=True)
class Overlay:
    """One overlay filesystem (its layers), wherever it shows: at its mount point on the host, at `/` in the
    container that pivoted into it."""

    lower: tuple[str, ...]
    """Lowest layer last, as overlayfs lists them (`lowerdir=top:…:bottom`)."""
    upper: str | None
    seen: tuple[tuple[str, tuple[str, ...]], ...]
    """(mount point, the consoles of the mount namespace it is mounted there in), per mount namespace."""
    roots: tuple[int, ...]
    """Console focus processes whose `/` it is."""
    new: bool


@dataclass(frozen=True)
class CgroupNode:
    name: str
    lines: tuple[str, ...]
    """`pids 3 / max 10`, `memory 1.2 MiB / 32 MiB`, `OOM kills 1`, …"""
    members: tuple[int, ...]
    """Host PIDs of the console focus processes in it."""
    new: bool


@dataclass(frozen=True)
class Diagram:
    pid_root: PidBox | None
    """The host's PID namespace box (None with no process at all)."""
    orphans: tuple[PidBox, ...]
    """Boxes whose parent namespace is not known (unreadable PID namespace)."""
    net: tuple[NetBox, ...]
    cables: tuple[Cable, ...]
    overlays: tuple[Overlay, ...]
    cgroups: tuple[CgroupNode, ...]
    gone: tuple[str, ...]
    """Processes that ended in the step (`sleep(4242)`), for a note."""
    gone_namespaces: tuple[str, ...] = ()
    """Namespaces no lesson process is in any more (`net 4026532241`)."""

    def boxes(self) -> Iterator[PidBox]:
        """Every PID box, parents before children."""
        stack = [*(reversed(self.orphans)), *([self.pid_root] if self.pid_root else [])]
        while stack:
            box = stack.pop()
            yield box
            stack.extend(reversed(box.children))
