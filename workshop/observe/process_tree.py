"""What the kernel says about the lesson's processes: snapshots of a `/proc`-like tree, and what changed.

Everything here is a pure function of a directory shaped like `/proc` (read through `procfs`, the one /proc
layer), so tests feed fixture trees and the tool feeds the real one. A process that vanished while we read is
skipped, a field that cannot be read becomes `None`, `()` or `""`, and nothing here raises because of it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from workshop.observe import procfs
from workshop.observe.procfs import NS_TYPES as NS_TYPES  # the views name them through the snapshot's module
from workshop.observe.procfs import Stat, read_stat

_FOR_CHILDREN = "_for_children"


@dataclass(frozen=True)
class Proc:
    """One process, as seen from the tool's own PID namespace."""

    pid: int
    """Host PID (as seen by the tool)."""
    ppid: int
    comm: str
    """The kernel's short name (at most 15 characters; may contain spaces and parentheses)."""
    cmdline: str
    """argv joined by spaces; "" for kernel threads, zombies or when unreadable (show `[comm]` then)."""
    nspid: tuple[int, ...]
    """From `NSpid:` in status: host PID first, innermost PID namespace last; () if unreadable."""
    ns: Mapping[str, int | None]
    """ns type (see NS_TYPES) -> inode of `/proc/PID/ns/<type>`; None when unreadable."""
    root: str | None
    """readlink of `/proc/PID/root`; None if unreadable."""
    starttime: int
    """Field 22 of stat, in clock ticks since boot: tells a reused PID from the same process."""
    tpgid: int
    """Field 8 of stat: foreground process group of the controlling terminal (-1 if none)."""


@dataclass(frozen=True)
class Snapshot:
    """The lesson's processes at one instant."""

    procs: Mapping[int, Proc]
    """Every process in the subtrees of `roots`, by host PID."""
    roots: Mapping[str, int]
    """Console name -> PID of the console's own shell (subtree root), in the consoles' order."""
    focus: Mapping[str, int]
    """Console name -> the process the learner is talking to (see `foreground_pid`); absent if gone."""
    host_ns: Mapping[str, int | None]
    """The reference "host" namespaces: those of the tool's own process."""
    pinned: frozenset[int] = frozenset()
    """Namespaces a bind mount keeps alive in the tool's mount namespace (`ip netns add`, `unshare --net=FILE`)."""


# --- reading ---


def _read_proc(proc_root: Path, pid: int, stat: Stat) -> Proc | None:
    """The details of one process of interest; None if it vanished since its stat was read."""
    proc_dir = f"{proc_root}/{pid}"
    try:
        nspid = procfs.parse_nspid(procfs.read_bytes(f"{proc_dir}/status").decode(errors="replace"))
    except procfs.VANISHED:
        return None
    except procfs.UNREADABLE:
        nspid = ()
    return Proc(
        pid=pid,
        ppid=stat.ppid,
        comm=stat.comm,
        cmdline=procfs.read_cmdline(proc_dir),
        nspid=nspid,
        ns=procfs.read_ns(proc_dir),
        root=procfs.read_root(proc_dir),
        starttime=stat.starttime,
        tpgid=stat.tpgid,
    )


def _parse_ppid(raw: bytes) -> int:
    # Only the parent is needed for every process on the machine; the rest of stat only for a few.
    return int(raw[raw.rindex(b")") + 2 :].split(None, 2)[1])


def _scan(proc_root: Path) -> tuple[dict[int, bytes], dict[int, list[int]]]:
    """Every process's raw `stat` and each PID's children, in one pass over the directory."""
    raws: dict[int, bytes] = {}
    children: dict[int, list[int]] = {}
    try:
        dir_fd = os.open(proc_root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return raws, children
    try:
        with os.scandir(dir_fd) as entries:
            names = [entry.name for entry in entries if entry.name.isdigit()]
        flags = os.O_RDONLY | os.O_CLOEXEC
        for name in names:
            # Relative to the open directory: one path lookup less for each process on the machine.
            try:
                fd = os.open(f"{name}/stat", flags, dir_fd=dir_fd)
            except OSError:
                continue  # exited between listing and reading
            try:
                raw = os.read(fd, procfs.READ_SIZE)
                ppid = _parse_ppid(raw)
            except procfs.UNREADABLE:
                continue
            finally:
                os.close(fd)
            pid = int(name)
            raws[pid] = raw
            children.setdefault(ppid, []).append(pid)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
    return raws, children


# --- the tree ---


def _is_in_subtree(pid: int, root_pid: int, ppid_of: Callable[[int], int | None]) -> bool:
    """Whether `pid` is `root_pid` or one of its descendants, following parents upwards."""
    seen: set[int] = set()
    current: int | None = pid
    while current is not None and current > 0 and current not in seen:
        if current == root_pid:
            return True
        seen.add(current)  # a malformed tree must not loop forever
        current = ppid_of(current)
    return False


def _foreground(root_pid: int, stat_of: Callable[[int], Stat | None]) -> int | None:
    root_stat = stat_of(root_pid)
    if root_stat is None:
        return None
    leader = root_stat.tpgid

    def ppid_of(pid: int) -> int | None:
        stat = stat_of(pid)
        return None if stat is None else stat.ppid

    # Interactive shells make themselves leaders of the foreground group, so the group id is their PID;
    # anything outside the console's subtree (a tty shared with another session) is not ours to show.
    if leader > 0 and stat_of(leader) is not None and _is_in_subtree(leader, root_pid, ppid_of):
        return leader
    return root_pid


def foreground_pid(proc_root: Path, root_pid: int) -> int | None:
    """The process the learner talks to in the console whose shell is `root_pid`.

    That is the leader of the console's foreground process group (tpgid of `root_pid`) when it is
    `root_pid` or one of its descendants; otherwise `root_pid` itself; None if `root_pid` is gone.
    """
    return _foreground(root_pid, lambda pid: read_stat(proc_root, pid))


def _subtree(root_pid: int, children: Mapping[int, list[int]]) -> Iterator[int]:
    stack = [root_pid]
    seen: set[int] = set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        yield pid
        stack.extend(children.get(pid, ()))


def snapshot(proc_root: Path, roots: Mapping[str, int], reference_pid: int | str = "self") -> Snapshot:
    """Read the subtrees of `roots` from `proc_root` in one pass.

    Every process's `stat` is read once to learn the tree; only the processes of interest get their
    status, cmdline, ns links and root read. `reference_pid` is the process whose namespaces count as
    "host": the tool's own by default, because `/proc/1/ns` can be unreadable in a sandbox.
    """
    raws, children = _scan(proc_root)
    stats: dict[int, Stat | None] = {}

    def stat_of(pid: int) -> Stat | None:
        if pid not in stats:
            raw = raws.get(pid)
            try:
                stats[pid] = None if raw is None else procfs.parse_stat(raw)
            except (ValueError, IndexError):
                stats[pid] = None
        return stats[pid]

    procs: dict[int, Proc] = {}
    for root_pid in roots.values():
        if root_pid not in raws:
            continue
        for pid in _subtree(root_pid, children):
            stat = stat_of(pid)
            if pid not in procs and stat is not None:
                proc = _read_proc(proc_root, pid, stat)
                if proc is not None:
                    procs[pid] = proc

    focus: dict[str, int] = {}
    for console, root_pid in roots.items():
        shell = _foreground(root_pid, stat_of)
        if shell not in procs:  # the foreground process exited while we read: its console's shell remains
            shell = root_pid
        if shell in procs:
            focus[console] = shell

    host_ns = procfs.read_ns(f"{proc_root}/{reference_pid}")
    return Snapshot(
        procs=procs,
        roots=dict(roots),
        focus=focus,
        host_ns=host_ns,
        pinned=procfs.read_pinned(f"{proc_root}/{reference_pid}"),
    )


# --- questions ---


def inner_pid(proc: Proc) -> int | None:
    """The PID inside the innermost PID namespace, when the process is in a nested one; else None.

    Nesting is what matters, so `4242 4242` (a nested namespace that happens to hand out the same
    number) still answers 4242.
    """
    return proc.nspid[-1] if len(proc.nspid) > 1 else None


def base_type(ns_type: str) -> str:
    """`pid_for_children` -> `pid`: the kind of namespace the link points to."""
    return ns_type.removesuffix(_FOR_CHILDREN)


def ns_transitions(snapshot: Snapshot, pid: int) -> tuple[str, ...]:
    """The ns types where `pid` lives in another namespace than its parent, like the marks of `pstree -S`.

    `*_for_children` are left out (they describe the children, which show their own marks). Only types
    readable on both sides count. A parent outside the snapshot is compared as the host.
    """
    proc = snapshot.procs.get(pid)
    if proc is None:
        return ()
    parent = snapshot.procs.get(proc.ppid)
    reference = snapshot.host_ns if parent is None else parent.ns
    marks: list[str] = []
    for ns_type in NS_TYPES:
        if ns_type.endswith(_FOR_CHILDREN):
            continue
        mine, theirs = proc.ns.get(ns_type), reference.get(ns_type)
        if mine is not None and theirs is not None and mine != theirs:
            marks.append(ns_type)
    return tuple(marks)
