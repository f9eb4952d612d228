"""The PID namespace boxes of the diagram: which process sits in which box, how the boxes nest, and the short names
(`net#1`) of the other namespaces processes are in. Pure: from a `Snapshot` and its `Diff`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from workshop.diagram.model import SHOWN_TYPES, NsTag, PidBox, ProcNode
from workshop.observe.process_diff import Diff, NsEvent
from workshop.observe.process_tree import Proc, Snapshot, inner_pid


def _depth(proc: Proc) -> int:
    return max(len(proc.nspid) - 1, 0)


def _parent_namespaces(snap: Snapshot) -> dict[int, int | None]:
    """PID namespace inode -> the inode of the namespace it is nested in, from the process tree.

    A process's parent is in the same PID namespace or an outer one; the nearest ancestor one level up (by NSpid
    depth) is in the parent namespace. `nsenter` makes a process whose parent is two levels up: then another process
    of the same namespace says, or the nearest shallower ancestor does (best effort: drawn one box too far out)."""
    ns_of = {pid: p.ns.get("pid") for pid, p in snap.procs.items()}
    votes: dict[int, dict[int | None, list[int]]] = {}
    """inode -> candidate parent -> [ancestors one level up, ancestors further up] that named it."""
    for proc in snap.procs.values():
        inode = ns_of[proc.pid]
        if inode is None:
            continue
        tally = votes.setdefault(inode, {})
        depth = _depth(proc)
        seen = {proc.pid}
        current = snap.procs.get(proc.ppid) if depth > 0 else None
        while current is not None and current.pid not in seen:
            seen.add(current.pid)
            if ns_of[current.pid] != inode and _depth(current) < depth:
                counts = tally.setdefault(ns_of[current.pid], [0, 0])
                counts[0 if _depth(current) == depth - 1 else 1] += 1
                break
            current = snap.procs.get(current.ppid)
    # One level up beats any number of processes that came in from further out
    return {inode: max(tally, key=lambda k: tally[k]) if tally else None for inode, tally in votes.items()}


def tags_of(snap: Snapshot) -> dict[tuple[str, int], NsTag]:
    """A short name for every non-host namespace of the shown types, numbered in PID order."""
    tags: dict[tuple[str, int], NsTag] = {}
    counts: dict[str, int] = {}
    for pid in sorted(snap.procs):
        for ns_type in SHOWN_TYPES:
            inode = snap.procs[pid].ns.get(ns_type)
            if inode is None or inode == snap.host_ns.get(ns_type) or (ns_type, inode) in tags:
                continue
            counts[ns_type] = counts.get(ns_type, 0) + 1
            tags[(ns_type, inode)] = NsTag(ns_type, inode, f"{ns_type}#{counts[ns_type]}")
    return tags


def _own(proc: Proc, tags: Mapping[tuple[str, int], NsTag]) -> tuple[NsTag, ...]:
    found = []
    for ns_type in SHOWN_TYPES:
        inode = proc.ns.get(ns_type)
        if inode is not None and (ns_type, inode) in tags:
            found.append(tags[(ns_type, inode)])
    return tuple(found)


def created(d: Diff, ns_type: str) -> set[int]:
    return {c.after for c in d.ns_changes if c.ns_type == ns_type and c.event is NsEvent.CREATED and c.after}


_MOVES = (NsEvent.CREATED, NsEvent.JOINED, NsEvent.BACK_TO_HOST, NsEvent.CHANGED)


def _moves(d: Diff, consoles: Iterable[str], tags: Mapping[tuple[str, int], NsTag]) -> tuple[str, ...]:
    """How the focus of `consoles` moved between namespaces in the step (the namespace view's `● new`, `● joined`)."""
    wanted = set(consoles)
    moves = []
    for change in d.ns_changes:
        if change.console not in wanted or change.event not in _MOVES or change.ns_type not in (*SHOWN_TYPES, "pid"):
            continue
        tag = tags.get((change.ns_type, change.after)) if change.after is not None else None
        name = tag.name if tag is not None else change.ns_type
        moves.append(
            f"{change.event.value} {name}" if change.event is not NsEvent.BACK_TO_HOST else f"back to host {name}"
        )
    return tuple(dict.fromkeys(moves))


def pid_boxes(snap: Snapshot, d: Diff) -> tuple[PidBox | None, tuple[PidBox, ...]]:
    tags = tags_of(snap)
    host = snap.host_ns.get("pid")
    consoles: dict[int, list[str]] = {}
    for console, pid in snap.focus.items():
        consoles.setdefault(pid, []).append(console)
    members: dict[int | None, list[Proc]] = {}
    for pid in sorted(snap.procs):
        members.setdefault(snap.procs[pid].ns.get("pid"), []).append(snap.procs[pid])
    parents = _parent_namespaces(snap)
    if host is not None:
        parents[host] = None
        members.setdefault(host, [])
    children: dict[int | None, list[int]] = {}
    for inode, parent in parents.items():
        if inode != host:
            children.setdefault(parent, []).append(inode)
    made = created(d, "pid") | created(d, "pid_for_children")

    def box(inode: int | None, depth: int, trail: frozenset[int | None]) -> PidBox:
        procs = members.get(inode, [])
        shared = set.intersection(*(set(_own(p, tags)) for p in procs)) if procs else set()
        shared_tags = tuple(t for t in tags.values() if t in shared)
        nodes = tuple(
            ProcNode(
                pid=p.pid,
                ppid=p.ppid,
                comm=p.comm,
                inner_pid=inner_pid(p),
                own=tuple(t for t in _own(p, tags) if t not in shared),
                consoles=tuple(consoles.get(p.pid, ())),
                new=p.pid in d.new_pids,
                moves=_moves(d, consoles.get(p.pid, ()), tags),
            )
            for p in procs
        )
        is_host = inode is not None and inode == host
        new = not is_host and (inode in made or (bool(procs) and all(p.pid in d.new_pids for p in procs)))
        kids = tuple(
            box(child, depth + 1, trail | {inode})
            for child in sorted(children.get(inode, []) if inode is not None else [])
            if child not in trail
        )
        return PidBox(inode, is_host, depth, nodes, kids, shared_tags, new)

    root = box(host, 0, frozenset()) if host is not None else None
    drawn = {b.inode for b in _walk(root)} if root is not None else set()
    orphans: list[PidBox] = []
    order = sorted(members, key=lambda i: -1 if i is None else i)
    # Boxes with no known parent first (each with what is nested in it), then whatever a cycle left out.
    for top_only in (True, False):
        for ns in order:
            parent = parents.get(ns) if ns is not None else None
            if ns in drawn or (top_only and parent is not None and parent in parents):
                continue
            orphans.append(box(ns, 1, frozenset()))
            drawn |= {b.inode for b in _walk(orphans[-1])}
    return root, tuple(orphans)


def _walk(box: PidBox) -> Iterator[PidBox]:
    yield box
    for child in box.children:
        yield from _walk(child)
