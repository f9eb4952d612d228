"""What changed between two process snapshots: new and gone processes, and each console's namespaces (entered,
left, new, shared, gone), told apart from PID reuse and from namespaces that only a bind mount keeps alive."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum

from workshop.observe.process_tree import Proc, Snapshot, base_type
from workshop.observe.procfs import NS_TYPES


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
