"""What the kernel says about the lesson's processes: snapshots of a `/proc`-like tree, and what changed.

Everything here is a pure function of a directory shaped like `/proc` (read through `procfs`, the one /proc
layer), so tests feed fixture trees and the tool feeds the real one. A process that vanished while we read is
skipped, a field that cannot be read becomes `None`, `()` or `""`, and nothing here raises because of it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
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


class NsEvent(Enum):
    CREATED = "new namespace"
    JOINED = "joined"
    BACK_TO_HOST = "back to host"
    CHANGED = "changed"
    GONE = "gone"
    """The focus process's namespace can no longer be read (it became a zombie or lost access)."""


@dataclass(frozen=True)
class NsChange:
    console: str
    ns_type: str
    before: int | None
    after: int | None
    event: NsEvent
    recycled: bool = False
    """A new namespace that got the inode number of one that ended during the step (the kernel hands out the
    lowest free number), so `before == after` although nothing of the old one is left."""


@dataclass(frozen=True)
class Diff:
    new_pids: frozenset[int]
    """In `after` but not in `before`; the same PID with another start time counts as new."""
    gone: tuple[Proc, ...]
    """In `before` but not in `after` (by PID order)."""
    ns_changes: tuple[NsChange, ...]
    """Per console focus process and ns type (consoles' order, then NS_TYPES order)."""
    gone_namespaces: tuple[tuple[str, int], ...]
    """(type, inode) used by a lesson process before and not provably alive after (see `_survivors`), not the
    host's. A number listed here may be in use after the step: by a new namespace that got it."""


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


# --- diff ---


def _is_same_process(a: Proc, b: Proc) -> bool:
    return a.pid == b.pid and a.starttime == b.starttime


def _new_and_gone(before: Snapshot | None, after: Snapshot) -> tuple[frozenset[int], tuple[Proc, ...]]:
    if before is None:
        return frozenset(after.procs), ()
    new = frozenset(
        pid
        for pid, proc in after.procs.items()
        if pid not in before.procs or not _is_same_process(before.procs[pid], proc)
    )
    gone = tuple(
        proc
        for pid, proc in sorted(before.procs.items())
        if pid not in after.procs or not _is_same_process(after.procs[pid], proc)
    )
    return new, gone


def _focus_ns(snap: Snapshot, console: str) -> Mapping[str, int | None] | None:
    pid = snap.focus.get(console)
    proc = None if pid is None else snap.procs.get(pid)
    return None if proc is None else proc.ns


def classify(
    before: int | None, after: int | None, host: int | None, known: bool, before_lives: bool = True
) -> NsEvent:
    """Name what happened when a console's focus moved from namespace `before` to `after`; `known`: the
    namespace `after` already existed at the previous step, `before_lives`: `before` still does (see
    `_survivors`). Moving on from a namespace that lives on is a change (an `unshare` inside a container);
    from one that ended, it is a new one (the container was restarted)."""
    if after is None:
        return NsEvent.GONE
    if after == host:
        return NsEvent.BACK_TO_HOST
    if known:  # nsenter, setns, `ip netns exec`
        return NsEvent.JOINED
    if before is None or before == host or not before_lives:
        return NsEvent.CREATED
    return NsEvent.CHANGED


Holder = tuple[int, int]
"""A process by (PID, start time): a reused PID is another process."""

NsKey = tuple[str, int]
"""A namespace by (type, inode); `pid_for_children` counts as `pid`."""

Held = Mapping[NsKey, set[Holder]]
"""(type, inode) -> the lesson processes in that namespace (see `_holders`)."""


def _holders(snap: Snapshot) -> dict[NsKey, set[Holder]]:
    """(type, inode) -> the lesson processes in that namespace. pid_for_children points at a pid namespace: it
    counts as one, so a namespace is reported once."""
    held: dict[NsKey, set[Holder]] = {}
    for proc in snap.procs.values():
        for ns_type, inode in proc.ns.items():
            if inode is not None:
                held.setdefault((base_type(ns_type), inode), set()).add((proc.pid, proc.starttime))
    return held


def _survivors(before: Snapshot, after: Snapshot, held_before: Held) -> set[NsKey]:
    """The namespaces of `before` that are provably the same ones in `after`.

    An inode number alone does not say: the kernel frees a namespace's number when its last user goes and gives
    the lowest free one to the next namespace of any type, so a container restarted within one step usually gets
    its predecessor's numbers. A namespace is the same when one process was in it at both snapshots (a process
    keeps its namespace alive), or a bind mount held it at both. Anything else keeping one alive unseen (an open
    fd, a process that left the lesson's tree) makes a survivor look new: the safer mistake to teach with.
    """
    now = _holders(after)
    same = {key for key, procs in held_before.items() if procs & now.get(key, set())}
    pinned = before.pinned & after.pinned
    same |= {key for key in held_before.keys() | now.keys() if key[1] in pinned}
    return same


def _ns_changes(
    before: Snapshot | None, after: Snapshot, held_before: Held, survivors: set[NsKey]
) -> Iterator[NsChange]:
    numbers_before = {inode for _, inode in held_before}
    for console in after.roots:
        now = _focus_ns(after, console)
        if now is None:
            continue  # the console's shell is gone: the pstree says so
        then = None if before is None else _focus_ns(before, console)
        for ns_type in NS_TYPES:
            host = after.host_ns.get(ns_type)
            inode = now.get(ns_type)
            if then is None:
                # First sight of this console: what is not the host's was created for it.
                if inode is not None and inode != host:
                    yield NsChange(console, ns_type, None, inode, NsEvent.CREATED)
                continue
            previous = then.get(ns_type)
            key = None if inode is None else (base_type(ns_type), inode)
            known = key in survivors
            if previous == inode:
                if inode is None or inode == host or known:
                    continue
                yield NsChange(console, ns_type, previous, inode, NsEvent.CREATED, recycled=True)
                continue
            lives = previous is not None and (base_type(ns_type), previous) in survivors
            event = classify(previous, inode, host, known, lives)
            # A lesson process had this number at the previous step (for a namespace of any type, they share one
            # pool), yet that namespace is gone: a reused number.
            recycled = event in (NsEvent.CREATED, NsEvent.CHANGED) and inode in numbers_before
            yield NsChange(console, ns_type, previous, inode, event, recycled=recycled)


def _gone_namespaces(held_before: Held, after: Snapshot, survivors: set[NsKey]) -> tuple[tuple[str, int], ...]:
    host = {inode for inode in after.host_ns.values() if inode is not None}
    gone = {(t, inode) for t, inode in held_before.keys() - survivors if inode not in host}
    order = {t: i for i, t in enumerate(NS_TYPES)}
    return tuple(sorted(gone, key=lambda item: (order.get(item[0], len(order)), item[1])))


def diff(before: Snapshot | None, after: Snapshot) -> Diff:
    """What changed from `before` (None at the first step) to `after`."""
    new, gone = _new_and_gone(before, after)
    held_before = {} if before is None else _holders(before)
    survivors = set() if before is None else _survivors(before, after, held_before)
    return Diff(
        new_pids=new,
        gone=gone,
        ns_changes=tuple(_ns_changes(before, after, held_before, survivors)),
        gone_namespaces=_gone_namespaces(held_before, after, survivors),
    )
