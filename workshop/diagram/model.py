"""The lesson's kernel state after a step, as a picture's parts: nested PID namespace boxes holding processes,
network namespaces holding links with veth cables between them, overlay layers, cgroups with their limits.

A pure function of what the observer already read (`Snapshot`, `Diff`, `ExtrasDiff`): no I/O here, so tests feed
hand-made snapshots and the diagram always says what the text views say. `dot.py` turns the model into DOT.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from workshop.observe.common import Mark
from workshop.observe.links import Link, LinksDiff, NetNs
from workshop.observe.mounts import Mount
from workshop.observe.process_diff import Diff, NsEvent
from workshop.observe.process_tree import Proc, Snapshot, inner_pid
from workshop.observe.resources import ExtrasDiff

SHOWN_TYPES = ("mnt", "uts", "ipc", "user", "net", "cgroup", "time")
"""The namespace types a process is labelled with when they are not the host's (pid is the box it is drawn in)."""
_GONE_SHOWN = 8
"""A fork bomb's hundred ended processes are a count, not a wall of names."""


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


# --- PID namespaces ---


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


def _tags(snap: Snapshot) -> dict[tuple[str, int], NsTag]:
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


def _created(d: Diff, ns_type: str) -> set[int]:
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


def _pid_boxes(snap: Snapshot, d: Diff) -> tuple[PidBox | None, tuple[PidBox, ...]]:
    tags = _tags(snap)
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
    created = _created(d, "pid") | _created(d, "pid_for_children")

    def build(inode: int | None, depth: int, trail: frozenset[int | None]) -> PidBox:
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
        new = not is_host and (inode in created or (bool(procs) and all(p.pid in d.new_pids for p in procs)))
        kids = tuple(
            build(child, depth + 1, trail | {inode})
            for child in sorted(children.get(inode, []) if inode is not None else [])
            if child not in trail
        )
        return PidBox(inode, is_host, depth, nodes, kids, shared_tags, new)

    root = build(host, 0, frozenset()) if host is not None else None
    placed = {box.inode for box in _walk(root)} if root is not None else set()
    loose = [i for i in members if i not in placed and (i is None or parents.get(i) not in placed)]
    orphans = tuple(build(inode, 1, frozenset()) for inode in sorted(loose, key=lambda i: -1 if i is None else i))
    return root, orphans


def _walk(box: PidBox) -> Iterator[PidBox]:
    yield box
    for child in box.children:
        yield from _walk(child)


# --- network ---


def _addresses(link: Link) -> str:
    return ", ".join(a for a in link.addresses if not a.startswith("fe80:")) or "no address"


def _lesson_links(netns: NetNs, is_host: bool, new_links: set[tuple[int, int]], wanted: set[int]) -> list[Link]:
    """Every link of a lesson namespace; of the host's only the lesson's (new ones, veth ends, their bridges)."""
    links = list(netns.links or ())
    if not is_host:
        return links
    keep = {link.index for link in links if (netns.ns, link.index) in new_links or link.index in wanted}
    keep |= {link.master for link in links if link.index in keep and link.master is not None}
    return [link for link in links if link.index in keep]


def _network(snap: Snapshot, d: Diff, links: LinksDiff) -> tuple[tuple[NetBox, ...], tuple[Cable, ...]]:
    tags = _tags(snap)
    now = links.now
    # At the very first observation every namespace is first seen: that is no news (the diff's `created` is).
    later = not all(r.first_sight for r in links.reports)
    new_links = {
        (report.netns.ns, row.link.index)
        for report in links.reports
        for row in report.rows
        if row.mark is Mark.NEW or (later and report.first_sight and not report.is_host)
    }
    new_netns = _created(d, "net") | {r.netns.ns for r in links.reports if later and r.first_sight}
    # The other end of each veth: (netns, ifindex), or None when its namespace was not read.
    ends: dict[tuple[int, int], tuple[int, int] | None] = {}
    for netns in now.namespaces:
        for link in netns.links or ():
            if link.kind == "veth" and link.peer is not None:
                ends[(netns.ns, link.index)] = _peer(link, netns, now.namespaces)
    # Of the host's links, only the lesson's: ends of cables into a lesson namespace, and links new in the step.
    wanted_in_host = {a[1] for a, b in ends.items() if a[0] == now.host_ns and b is not None and b[0] != now.host_ns}

    boxes: list[NetBox] = []
    shown: set[tuple[int, int]] = set()
    for netns in now.namespaces:
        is_host = netns.ns == now.host_ns
        kept = _lesson_links(netns, is_host, new_links, wanted_in_host)
        shown |= {(netns.ns, link.index) for link in kept}
        nodes = tuple(
            LinkNode(
                netns.ns,
                link.index,
                link.name,
                link.kind,
                link.state,
                link.addresses,
                (netns.ns, link.index) in new_links,
            )
            for link in kept
        )
        tag = "host" if is_host else tags[("net", netns.ns)].name if ("net", netns.ns) in tags else f"net {netns.ns}"
        boxes.append(NetBox(netns.ns, tag, netns.consoles, nodes, not is_host and netns.ns in new_netns, netns.error))

    cables: list[Cable] = []
    done: set[frozenset[tuple[int, int]]] = set()
    for a, b in ends.items():
        if a not in shown:
            continue
        key = frozenset({a} if b is None else {a, b})
        if key in done or (b is not None and b not in shown):
            continue
        done.add(key)
        label = _addresses(_link(now.namespaces, a)) + (" ⇄ " + _addresses(_link(now.namespaces, b)) if b else "")
        cables.append(Cable(a, b, label, "veth", a in new_links or (b is not None and b in new_links)))
    for box in boxes:
        for node in box.links:
            master = _link(now.namespaces, (box.inode, node.index)).master
            if master is not None and (box.inode, master) in shown:
                cables.append(Cable((box.inode, node.index), (box.inode, master), "port", "port", node.new))
    return tuple(boxes), tuple(cables)


def _peer(link: Link, netns: NetNs, everywhere: Iterable[NetNs]) -> tuple[int, int] | None:
    if link.peer_netnsid is None:
        return (netns.ns, link.peer) if link.peer is not None else None
    for other_ns in everywhere:
        if other_ns.ns == netns.ns:
            continue
        for other in other_ns.links or ():
            if other.index == link.peer and other.peer == link.index and other.kind == "veth":
                return (other_ns.ns, other.index)
    return None


def _link(namespaces: Iterable[NetNs], where: tuple[int, int]) -> Link:
    for netns in namespaces:
        if netns.ns == where[0]:
            for link in netns.links or ():
                if link.index == where[1]:
                    return link
    raise KeyError(where)


# --- mounts and cgroups ---


def _overlays(snap: Snapshot, extras: ExtrasDiff) -> Iterator[Overlay]:
    """The overlays in the lesson's mount namespaces, each once: the same layers seen from the host and from the
    container are one filesystem (the mount options name the layers as the lesson gave them, in every namespace)."""
    if extras.mounts is None:
        return
    found: dict[tuple[str | None, str | None], list[tuple[Mount, tuple[str, ...], bool]]] = {}
    for report in extras.mounts.reports:
        new = {c.mount.mount_id for c in report.changes if c.mark is Mark.NEW}
        for mount in report.table.mounts or ():
            if mount.fstype == "overlay":
                seen = (mount, report.table.consoles, mount.mount_id in new)
                found.setdefault((mount.lower, mount.upper), []).append(seen)
    for (lower, upper), places in found.items():
        roots = tuple(
            snap.focus[console]
            for mount, consoles, _ in places
            if mount.target == "/"
            for console in consoles
            if console in snap.focus
        )
        yield Overlay(
            lower=tuple(lower.split(":")) if lower else (),
            upper=upper,
            seen=tuple((mount.target, consoles) for mount, consoles, _ in places),
            roots=roots,
            new=any(new for _, _, new in places),
        )


def _cgroups(snap: Snapshot, extras: ExtrasDiff) -> Iterator[CgroupNode]:
    if extras.cgroups is not None:
        members = extras.cgroups.now.members
        for row in extras.cgroups.rows:
            c = row.cgroup
            lines = [f"pids {_q(c.current)} / max {_q(c.max)}"]
            if row.max_was is not None:
                lines.append(f"limit was {row.max_was}")
            if c.refused:
                lines.append(f"forks refused {c.refused}" + (f" (+{row.refused_more})" if row.refused_more else ""))
            pids = tuple(m.pid for m in members if m.path is not None and m.path.rstrip("/").endswith("/" + c.name))
            yield CgroupNode(c.name, tuple(lines), tuple(p for p in pids if p in snap.procs), row.new)
    if extras.limits is not None:
        for lrow in extras.limits.rows:
            lc = lrow.cgroup
            lines = [f"{lc.controller} {_q(lc.usage)} / {_q(lc.limit)}"]
            if lrow.limit_was is not None:
                lines.append(f"limit was {lrow.limit_was}")
            what = "OOM kills" if lc.controller == "memory" else "throttled"
            if lc.events:
                lines.append(f"{what} {lc.events}" + (f" (+{lrow.events_more})" if lrow.events_more else ""))
            lines.append(f"{_q(lc.procs)} processes")
            yield CgroupNode(lc.name, tuple(lines), (), lrow.new)


def _q(value: object) -> str:
    return "?" if value is None else str(value)


# --- the whole picture ---


def build(snap: Snapshot, d: Diff, extras: ExtrasDiff | None = None) -> Diagram:
    """The diagram of the lesson's state after a step (`extras`: the views the lesson observes)."""
    root, orphans = _pid_boxes(snap, d)
    net: tuple[NetBox, ...] = ()
    cables: tuple[Cable, ...] = ()
    if extras is not None and extras.links is not None:
        net, cables = _network(snap, d, extras.links)
    overlays = tuple(_overlays(snap, extras)) if extras is not None else ()
    cgroups = tuple(_cgroups(snap, extras)) if extras is not None else ()
    gone = tuple(f"{p.comm}({p.pid})" for p in d.gone[:_GONE_SHOWN])
    if len(d.gone) > _GONE_SHOWN:
        gone += (f"and {len(d.gone) - _GONE_SHOWN} more",)
    gone_ns = tuple(f"{ns_type} {inode}" for ns_type, inode in d.gone_namespaces)
    return Diagram(root, orphans, net, cables, overlays, cgroups, gone, gone_ns)
