"""The network part of the diagram: each network namespace of the lesson with its links, and the cables between
them (veth pairs, bridge ports). Pure: from the links view (`LinksDiff`) and the step's `Diff`."""

from __future__ import annotations

from collections.abc import Iterable

from workshop.diagram.model import Cable, LinkNode, NetBox
from workshop.diagram.pids import created, tags_of
from workshop.observe.common import Mark
from workshop.observe.links import Link, LinksDiff, NetNs
from workshop.observe.process_diff import Diff
from workshop.observe.process_tree import Snapshot


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


def network(snap: Snapshot, d: Diff, links: LinksDiff) -> tuple[tuple[NetBox, ...], tuple[Cable, ...]]:
    tags = tags_of(snap)
    now = links.now
    # At the very first observation every namespace is first seen: that is no news (the diff's `created` is).
    later = not all(r.first_sight for r in links.reports)
    new_links = {
        (report.netns.ns, row.link.index)
        for report in links.reports
        for row in report.rows
        if row.mark is Mark.NEW or (later and report.first_sight and not report.is_host)
    }
    new_netns = created(d, "net") | {r.netns.ns for r in links.reports if later and r.first_sight}
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
