"""The links view: the links and addresses of every network namespace of the lesson's processes, and what changed.

The kernel only tells links through netlink, so `read_links` takes a reader (pyroute2 by default, imported only
when a lesson shows links); the diff is pure.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workshop.observe.common import Mark, focus_groups
from workshop.observe.process_tree import Snapshot


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    kind: str
    """veth, bridge, loopback, … (the netlink info kind; `device` for plain hardware)."""
    up: bool
    """Administratively up (IFF_UP): what `ip link set … up` changes."""
    carrier: bool
    """IFF_LOWER_UP: a veth that is up but whose peer is down has none."""
    master: int | None = None
    """ifindex of the bridge it is a port of."""
    peer: int | None = None
    """veth: the ifindex of the other end."""
    peer_netnsid: int | None = None
    """Set when the other end lives in another network namespace (as numbered by this one)."""
    addresses: tuple[str, ...] = ()
    """`10.0.0.1/24`, `fe80::1/64`, in the kernel's order."""

    @property
    def state(self) -> str:
        if not self.up:
            return "DOWN"
        return "UP" if self.carrier else "UP, no carrier"


LinkReader = Callable[[str | None], tuple[Link, ...]]
"""A net namespace file (None: the tool's own namespace) -> its links; may raise anything."""

_IFF_UP = 0x1
_IFF_LOOPBACK = 0x8
_IFF_LOWER_UP = 0x10000


def links_from_netlink(links: Iterable[Any], addresses: Iterable[Any]) -> tuple[Link, ...]:
    """pyroute2's RTM_NEWLINK and RTM_NEWADDR messages -> links (duck-typed: `msg[...]`, `msg.get_attr`)."""
    addrs: dict[int, list[str]] = {}
    for msg in addresses:
        address = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
        if address:
            addrs.setdefault(msg["index"], []).append(f"{address}/{msg['prefixlen']}")
    found = []
    for msg in links:
        flags = msg["flags"]
        info = msg.get_attr("IFLA_LINKINFO")
        kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
        if kind is None:
            kind = "loopback" if flags & _IFF_LOOPBACK else "device"
        peer = msg.get_attr("IFLA_LINK") if kind == "veth" else None
        found.append(
            Link(
                index=msg["index"],
                name=msg.get_attr("IFLA_IFNAME") or f"if{msg['index']}",
                kind=kind,
                up=bool(flags & _IFF_UP),
                carrier=bool(flags & _IFF_LOWER_UP),
                master=msg.get_attr("IFLA_MASTER"),
                peer=peer or None,
                peer_netnsid=msg.get_attr("IFLA_LINK_NETNSID") if peer else None,
                addresses=tuple(addrs.get(msg["index"], ())),
            )
        )
    return tuple(sorted(found, key=lambda link: link.index))


_CLONE_NEWNET = 0x40000000
_NETLINK_TIMEOUT = 5.0


def _enter_netns(ns_path: str) -> None:
    """Moves the calling thread (only it: setns on a network namespace is per thread) into `ns_path`'s."""
    import ctypes

    fd = os.open(ns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if ctypes.CDLL(None, use_errno=True).setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), ns_path)
        if os.stat("/proc/thread-self/ns/net").st_ino != os.fstat(fd).st_ino:
            raise OSError(f"setns did not move the reader into {ns_path}")
    finally:
        os.close(fd)


def netlink_reader(ns_path: str | None) -> tuple[Link, ...]:
    """Links of one namespace through pyroute2 (imported here: it costs 140 ms, `workshop list` stays fast).

    The reading runs in a thread of its own that joins the namespace with setns: pyroute2's `netns=` would
    fork the whole tool instead, and a forked copy of a running lesson that catches the SIGTERM pyroute2 ends it
    with unwinds into the session's cleanup. A fresh thread has no running asyncio loop either, so this works
    even inside prompt_toolkit's.
    """
    from pyroute2 import IPRoute

    outcome: list[tuple[Link, ...] | BaseException] = []

    def work() -> None:
        try:
            if ns_path is not None:
                _enter_netns(ns_path)
            with IPRoute() as ipr:
                outcome.append(links_from_netlink(ipr.get_links(), ipr.get_addr()))
        except BaseException as exc:  # handed over to the caller's thread
            outcome.append(exc)

    thread = threading.Thread(target=work, name="workshop-links", daemon=True)
    thread.start()
    thread.join(_NETLINK_TIMEOUT)
    if not outcome:
        raise TimeoutError(f"netlink did not answer within {_NETLINK_TIMEOUT:g} s")
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


@dataclass(frozen=True)
class NetNs:
    ns: int
    pid: int
    """The process the namespace was read through (a console's focus when there is one)."""
    consoles: tuple[str, ...]
    """Consoles whose focus process is in it; () for a namespace only other lesson processes use."""
    links: tuple[Link, ...] | None
    """None when unreadable (see `error`)."""
    error: str | None = None


@dataclass(frozen=True)
class LinksSnapshot:
    namespaces: tuple[NetNs, ...]
    host_ns: int | None
    error: str | None = None
    """Why links cannot be read at all (pyroute2 missing or refusing)."""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror  # without the path: the view names the namespace already
    return str(exc) or type(exc).__name__


def read_links(proc_root: Path, snap: Snapshot, reader: LinkReader | None = None) -> LinksSnapshot:
    """The links of every distinct network namespace among the lesson's processes (consoles' focus first)."""
    consoles, pids, _ = focus_groups(snap, "net")
    for pid in sorted(snap.procs):
        inode = snap.procs[pid].ns.get("net")
        if inode is not None:
            pids.setdefault(inode, pid)
    host_ns = snap.host_ns.get("net")
    namespaces = []
    failures = []
    for ns, pid in pids.items():
        try:
            links = (reader or netlink_reader)(None if ns == host_ns else f"{proc_root}/{pid}/ns/net")
            namespaces.append(NetNs(ns, pid, tuple(consoles.get(ns, ())), links))
        except Exception as exc:  # pyroute2 raises many kinds (OSError, RuntimeError in an asyncio loop, …)
            failures.append(_reason(exc))
            namespaces.append(NetNs(ns, pid, tuple(consoles.get(ns, ())), None, _reason(exc)))
    if namespaces and len(failures) == len(namespaces) and len(set(failures)) == 1:
        return LinksSnapshot((), host_ns, failures[0])
    return LinksSnapshot(tuple(namespaces), host_ns)


@dataclass(frozen=True)
class LinkRow:
    link: Link
    mark: Mark | None
    """NEW, GONE, CHANGED, or None for a link shown as it was."""
    notes: tuple[str, ...] = ()
    """What changed: `DOWN → UP`, `master br0`, `renamed from eth0`, `- 10.0.0.9/24` (an address removed)."""
    new_addresses: tuple[str, ...] = ()
    """Addresses it did not have at the previous observation."""


@dataclass(frozen=True)
class NetNsReport:
    netns: NetNs
    is_host: bool
    first_sight: bool
    rows: tuple[LinkRow, ...]
    """A lesson namespace: every link. The host's: only the links that changed (it may have dozens)."""
    unchanged: int
    """Links of the host's namespace not listed in `rows`."""


@dataclass(frozen=True)
class LinksDiff:
    now: LinksSnapshot
    reports: tuple[NetNsReport, ...]
    left: tuple[NetNs, ...]
    """Namespaces no lesson process uses any more."""


def _link_notes(old: Link, new: Link, names: Mapping[int, str]) -> tuple[str, ...]:
    notes = []
    if old.name != new.name:
        notes.append(f"renamed from {old.name}")
    if old.state != new.state:
        notes.append(f"{old.state} → {new.state}")
    if old.master != new.master:
        notes.append(f"master {names.get(new.master, new.master)}" if new.master else "no master any more")
    notes += [f"- {a}" for a in old.addresses if a not in new.addresses]
    return tuple(notes)


def _link_rows(before: tuple[Link, ...] | None, after: tuple[Link, ...], show_all: bool) -> Iterator[LinkRow]:
    names = {link.index: link.name for link in after}
    old = {} if before is None else {link.index: link for link in before}
    for link in after:
        was = old.get(link.index)
        if before is not None and was is None:
            yield LinkRow(link, Mark.NEW)
            continue
        notes = () if was is None else _link_notes(was, link, names)
        added = () if was is None else tuple(a for a in link.addresses if a not in was.addresses)
        if notes or added:
            yield LinkRow(link, Mark.CHANGED, notes, added)
        elif show_all:
            yield LinkRow(link, None)
    now = {link.index for link in after}
    yield from (LinkRow(link, Mark.GONE) for link in (before or ()) if link.index not in now)


def diff_links(before: LinksSnapshot | None, after: LinksSnapshot) -> LinksDiff:
    previous = {} if before is None else {n.ns: n for n in before.namespaces}
    reports = []
    for netns in after.namespaces:
        is_host = netns.ns == after.host_ns
        old = previous.get(netns.ns)
        old_links = None if old is None else old.links
        rows: tuple[LinkRow, ...] = ()
        unchanged = 0
        if netns.links is not None:
            rows = tuple(_link_rows(old_links, netns.links, show_all=not is_host))
            if is_host and old_links is None:
                rows = ()  # first sight of the host: a count, not its whole list
            unchanged = len(netns.links) - sum(1 for r in rows if r.mark is not Mark.GONE)
        reports.append(NetNsReport(netns, is_host, old_links is None, rows, unchanged if is_host else 0))
    seen = {n.ns for n in after.namespaces}
    left = tuple(n for n in (before.namespaces if before else ()) if n.ns not in seen)
    return LinksDiff(after, tuple(reports), left)


def peer_of(link: Link, netns: NetNs, everywhere: Iterable[NetNs]) -> tuple[str, NetNs | None] | None:
    """The other end of a veth: its name, and its namespace when that is another one we read."""
    if link.peer is None:
        return None
    if link.peer_netnsid is None:
        here = {other.index: other.name for other in netns.links or ()}
        return here.get(link.peer, f"if{link.peer}"), None
    for other_ns in everywhere:
        if other_ns.ns == netns.ns:
            continue
        for other in other_ns.links or ():
            if other.index == link.peer and other.peer == link.index and other.kind == "veth":
                return other.name, other_ns
    return f"if{link.peer}", None
