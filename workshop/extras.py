"""The views a lesson asks for in its front matter (`observe: [mounts, cgroups, links]`): read, then diff.

Like `observer`, reading works on a `/proc`-like root (and any directory standing in for a cgroup parent), so
tests feed fixture trees; the diffs are pure. Links are the exception: the kernel only tells them through
netlink, so `read_links` takes a reader (pyroute2 by default, imported only when a lesson shows links).
Every read may fail while processes exit under our feet: what cannot be read becomes None and shows as `?`.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from workshop.cgroups import parse_mountinfo
from workshop.model import VIEWS
from workshop.observer import Snapshot

_UNREADABLE = (OSError, ValueError, IndexError)
_ESCAPE = re.compile(r"\\([0-7]{3})")
_MAX_CGROUPS = 32
"""A runaway lesson cannot make the view read thousands of directories."""


class Mark(Enum):
    NEW = "+"
    GONE = "-"
    CHANGED = "~"


def _read_text(path: str) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", "surrogateescape")


def _printable(text: str) -> str:
    """A path that is not valid UTF-8 keeps its readable parts instead of crashing the terminal."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _focus_groups(snap: Snapshot, ns_type: str) -> tuple[dict[int, list[str]], dict[int, int], list[str]]:
    """ns inode -> consoles whose focus is in it, ns inode -> one focus pid, consoles whose link is unreadable."""
    consoles: dict[int, list[str]] = {}
    pids: dict[int, int] = {}
    unreadable: list[str] = []
    for console, pid in snap.focus.items():
        proc = snap.procs.get(pid)
        inode = None if proc is None else proc.ns.get(ns_type)
        if inode is None:
            unreadable.append(console)
            continue
        consoles.setdefault(inode, []).append(console)
        pids.setdefault(inode, pid)
    return consoles, pids, unreadable


# --- mounts ---


@dataclass(frozen=True)
class Mount:
    """One line of mountinfo, as the learner needs it."""

    mount_id: int
    target: str
    fstype: str
    source: str
    root: str
    """The directory of the filesystem that is mounted: not `/` for a bind mount of a subdirectory."""
    options: str
    """Per-mount options (`rw,nosuid,relatime`)."""
    propagation: str
    """`shared`, `slave`, `shared,slave`, `unbindable` or `private`, from the optional fields."""
    lower: str | None = None
    """overlay: lowerdir (layers joined by `:`); None for other filesystems."""
    upper: str | None = None
    work: str | None = None


def _unescape(value: str) -> str:
    # The kernel escapes only ASCII here (`,= \t\n\\` in overlay's options), so chr() of the octal is exact.
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), value)


def _propagation(optional: Iterable[str]) -> str:
    kinds = [
        kind
        for kind, prefix in (("shared", "shared:"), ("slave", "master:"), ("unbindable", "unbindable"))
        if any(tag.startswith(prefix) for tag in optional)
    ]
    return ",".join(kinds) or "private"


def _overlay_dirs(super_options: Iterable[str]) -> tuple[str | None, str | None, str | None]:
    lower: list[str] = []
    upper = work = None
    for option in super_options:
        key, _, value = option.partition("=")
        value = _printable(_unescape(value))
        if key in ("lowerdir", "lowerdir+"):
            lower.append(value)
        elif key == "upperdir":
            upper = value
        elif key == "workdir":
            work = value
    return (":".join(lower) or None), upper, work


def parse_mounts(text: str) -> tuple[Mount, ...]:
    """mountinfo text -> mounts in file order; malformed lines are skipped (see `cgroups.parse_mountinfo`)."""
    mounts = []
    for info in parse_mountinfo(text):
        lower = upper = work = None
        if info.fstype == "overlay":
            lower, upper, work = _overlay_dirs(info.super_options)
        mounts.append(
            Mount(
                mount_id=info.mount_id,
                target=_printable(str(info.mount_point)),
                fstype=info.fstype,
                source=_printable(info.source),
                root=_printable(info.root),
                options=",".join(info.options),
                propagation=_propagation(info.optional),
                lower=lower,
                upper=upper,
                work=work,
            )
        )
    return tuple(mounts)


def read_mounts_of(proc_root: Path, pid: int | str) -> tuple[Mount, ...] | None:
    """`/proc/PID/mountinfo` parsed (paths as that process sees them, under its root); None if unreadable."""
    try:
        return parse_mounts(_read_text(f"{proc_root}/{pid}/mountinfo"))
    except _UNREADABLE:
        return None


@dataclass(frozen=True)
class MountTable:
    ns: int
    consoles: tuple[str, ...]
    """The consoles whose focus process lives in this mount namespace."""
    pid: int
    """The process the table was read from."""
    mounts: tuple[Mount, ...] | None
    """None when it could not be read (the process exited, or we may not look)."""


@dataclass(frozen=True)
class MountsSnapshot:
    tables: tuple[MountTable, ...]
    """One per distinct mount namespace of the consoles' focus processes, in the consoles' order."""
    host_ns: int | None
    host_mounts: tuple[Mount, ...] | None
    """The tool's own table: what a new namespace is compared with."""
    unreadable: tuple[str, ...] = ()
    """Consoles whose focus process's mount namespace link could not be read."""


def read_mounts(proc_root: Path, snap: Snapshot, reference_pid: int | str = "self") -> MountsSnapshot:
    consoles, pids, unreadable = _focus_groups(snap, "mnt")
    tables = tuple(
        MountTable(ns, tuple(names), pids[ns], read_mounts_of(proc_root, pids[ns])) for ns, names in consoles.items()
    )
    host_ns = snap.host_ns.get("mnt")
    host = next((t.mounts for t in tables if t.ns == host_ns and t.mounts is not None), None)
    if host is None:
        host = read_mounts_of(proc_root, reference_pid)
    return MountsSnapshot(tables, host_ns, host, tuple(unreadable))


@dataclass(frozen=True)
class MountChange:
    mark: Mark
    mount: Mount
    was: Mount | None = None
    """For CHANGED: the mount before (other options or propagation)."""


@dataclass(frozen=True)
class MountNsReport:
    table: MountTable
    is_host: bool
    first_sight: bool
    """Not in the previous observation: for the host a count only, for another namespace its differences from
    the host's table (by target and type)."""
    changes: tuple[MountChange, ...]


@dataclass(frozen=True)
class MountsDiff:
    reports: tuple[MountNsReport, ...]
    left: tuple[MountTable, ...]
    """Namespaces a console's focus was in at the previous observation and none is now."""
    unreadable: tuple[str, ...]


def _against_host(mounts: tuple[Mount, ...], host: tuple[Mount, ...]) -> Iterator[MountChange]:
    mine = {(m.target, m.fstype) for m in mounts}
    theirs = {(m.target, m.fstype) for m in host}
    yield from (MountChange(Mark.NEW, m) for m in mounts if (m.target, m.fstype) not in theirs)
    yield from (MountChange(Mark.GONE, m) for m in host if (m.target, m.fstype) not in mine)


def _since(before: tuple[Mount, ...], after: tuple[Mount, ...]) -> Iterator[MountChange]:
    was = {m.mount_id: m for m in before}
    now = {m.mount_id for m in after}
    for mount in after:
        old = was.get(mount.mount_id)
        if old is None or (old.target, old.fstype) != (mount.target, mount.fstype):
            yield MountChange(Mark.NEW, mount)
        elif (old.options, old.propagation) != (mount.options, mount.propagation):
            yield MountChange(Mark.CHANGED, mount, old)
    moved = {m.mount_id for m in after if m.mount_id in was and was[m.mount_id].target != m.target}
    yield from (MountChange(Mark.GONE, m) for m in before if m.mount_id not in now or m.mount_id in moved)


def diff_mounts(before: MountsSnapshot | None, after: MountsSnapshot) -> MountsDiff:
    previous = {} if before is None else {t.ns: t for t in before.tables}
    reports = []
    for table in after.tables:
        is_host = table.ns == after.host_ns
        old = previous.get(table.ns)
        first = old is None or old.mounts is None
        changes: tuple[MountChange, ...] = ()
        if table.mounts is not None:
            if not first and old is not None and old.mounts is not None:
                changes = tuple(_since(old.mounts, table.mounts))
            elif not is_host and after.host_mounts is not None:
                changes = tuple(_against_host(table.mounts, after.host_mounts))
        reports.append(MountNsReport(table, is_host, first, changes))
    seen = {t.ns for t in after.tables}
    left = tuple(t for t in (before.tables if before else ()) if t.ns not in seen)
    return MountsDiff(tuple(reports), left, after.unreadable)


# --- cgroups ---


@dataclass(frozen=True)
class Membership:
    console: str
    pid: int
    path: str | None
    """The pids cgroup (v1: the `pids` line of /proc/PID/cgroup; v2: the `0::` line); None if unreadable."""


@dataclass(frozen=True)
class PidsCgroup:
    name: str
    """Path below the parent (`ws1a2b3c`, or `ws1a2b3c/child`)."""
    max: str | None
    """pids.max: a number or `max`."""
    current: int | None
    refused: int | None
    """The `max` counter of pids.events: forks the limit refused."""
    procs: int | None
    """Processes listed in cgroup.procs."""


@dataclass(frozen=True)
class CgroupsSnapshot:
    parent: Path
    v2: bool
    members: tuple[Membership, ...]
    cgroups: tuple[PidsCgroup, ...]
    error: str | None = None
    """Why there is nothing to show (no pids controller); the rest is empty then."""


def parse_membership(text: str, v2: bool) -> str | None:
    """The pids cgroup path from a `/proc/PID/cgroup` text: `N:...pids...:/path` on v1, `0::/path` on v2."""
    for line in text.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if (v2 and hierarchy == "0" and controllers == "") or (not v2 and "pids" in controllers.split(",")):
            return path
    return None


def parse_events_max(text: str) -> int | None:
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "max":
            return int(value)
    return None


def _maybe(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except _UNREADABLE:
        return None


def read_pids_cgroup(directory: Path, name: str) -> PidsCgroup:
    d = str(directory)
    return PidsCgroup(
        name=name,
        max=_maybe(lambda: _read_text(f"{d}/pids.max").strip()),
        current=_maybe(lambda: int(_read_text(f"{d}/pids.current"))),
        refused=_maybe(lambda: parse_events_max(_read_text(f"{d}/pids.events"))),
        procs=_maybe(lambda: len(_read_text(f"{d}/cgroup.procs").split())),
    )


def _cgroup_dirs(parent: Path) -> Iterator[tuple[Path, str]]:
    stack = [parent]
    found = 0
    while stack and found < _MAX_CGROUPS:
        current = stack.pop()
        try:
            with os.scandir(current) as entries:
                subdirs = sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))
        except OSError:
            continue
        for name in subdirs:
            path = current / name
            found += 1
            yield path, str(path.relative_to(parent))
        stack.extend(current / name for name in reversed(subdirs))


def read_cgroups(proc_root: Path, snap: Snapshot, parent: Path, v2: bool) -> CgroupsSnapshot:
    """Each console's focus's pids cgroup, and every cgroup below `parent` (the tool's, see `pids_parent`)."""
    members = []
    for console, pid in snap.focus.items():
        try:
            path = parse_membership(_read_text(f"{proc_root}/{pid}/cgroup"), v2)
        except _UNREADABLE:
            path = None
        members.append(Membership(console, pid, path))
    found = sorted(_cgroup_dirs(parent), key=lambda item: item[1])
    return CgroupsSnapshot(parent, v2, tuple(members), tuple(read_pids_cgroup(d, name) for d, name in found))


@dataclass(frozen=True)
class CgroupRow:
    cgroup: PidsCgroup
    new: bool
    max_was: str | None
    """The previous pids.max when the limit changed; None otherwise."""
    refused_more: int
    """Forks refused since the previous observation (0: none, or unknown)."""


@dataclass(frozen=True)
class CgroupsDiff:
    now: CgroupsSnapshot
    rows: tuple[CgroupRow, ...]
    gone: tuple[PidsCgroup, ...]
    moved: Mapping[str, str | None]
    """Console -> its previous pids cgroup, for consoles whose focus is in another one now."""


def diff_cgroups(before: CgroupsSnapshot | None, after: CgroupsSnapshot) -> CgroupsDiff:
    old = {} if before is None else {c.name: c for c in before.cgroups}
    rows = []
    for cgroup in after.cgroups:
        was = old.get(cgroup.name)
        refused_more = 0
        if before is not None and cgroup.refused is not None:  # at the first observation, nothing is news
            previous = 0 if was is None else was.refused
            if previous is not None and cgroup.refused > previous:
                refused_more = cgroup.refused - previous
        max_was = was.max if was is not None and was.max != cgroup.max else None
        rows.append(CgroupRow(cgroup, before is not None and was is None, max_was, refused_more))
    names = {c.name for c in after.cgroups}
    gone = tuple(c for c in (before.cgroups if before else ()) if c.name not in names)
    moved: dict[str, str | None] = {}
    if before is not None:
        then = {m.console: m.path for m in before.members}
        moved = {
            m.console: then[m.console]
            for m in after.members
            if m.console in then and m.path is not None and then[m.console] != m.path
        }
    return CgroupsDiff(after, tuple(rows), gone, moved)


# --- links ---


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
    consoles, pids, _ = _focus_groups(snap, "net")
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


# --- all of them ---


@dataclass(frozen=True)
class ExtrasSnapshot:
    views: tuple[str, ...]
    """The lesson's `observe` list, in its order: the order the views are shown in."""
    mounts: MountsSnapshot | None = None
    cgroups: CgroupsSnapshot | None = None
    links: LinksSnapshot | None = None


@dataclass(frozen=True)
class ExtrasDiff:
    views: tuple[str, ...]
    mounts: MountsDiff | None = None
    cgroups: CgroupsDiff | None = None
    links: LinksDiff | None = None


@dataclass(frozen=True)
class CgroupPlace:
    """Where the lesson's pids cgroups live, or why there are none on this machine."""

    parent: Path | None
    v2: bool = False
    error: str | None = None


def read_extras(
    views: Iterable[str],
    snap: Snapshot,
    proc_root: Path,
    *,
    reference_pid: int | str = "self",
    cgroup_place: Callable[[], CgroupPlace] | None = None,
    link_reader: LinkReader | None = None,
) -> ExtrasSnapshot:
    """Reads the views named in `views` (unknown names are ignored: the loader has rejected them)."""
    wanted = tuple(v for v in views if v in VIEWS)
    mounts = read_mounts(proc_root, snap, reference_pid) if "mounts" in wanted else None
    cgroups = None
    if "cgroups" in wanted:
        place = cgroup_place() if cgroup_place is not None else CgroupPlace(None, error="no cgroup layout given")
        if place.parent is None:
            cgroups = CgroupsSnapshot(Path(), place.v2, (), (), place.error or "no pids controller")
        else:
            cgroups = read_cgroups(proc_root, snap, place.parent, place.v2)
    links = read_links(proc_root, snap, link_reader) if "links" in wanted else None
    return ExtrasSnapshot(wanted, mounts, cgroups, links)


def diff_extras(before: ExtrasSnapshot | None, after: ExtrasSnapshot) -> ExtrasDiff:
    """What changed since `before` (None: the first observation), view by view."""
    was = before or ExtrasSnapshot(())
    return ExtrasDiff(
        views=after.views,
        mounts=None if after.mounts is None else diff_mounts(was.mounts, after.mounts),
        cgroups=None if after.cgroups is None else diff_cgroups(was.cgroups, after.cgroups),
        links=None if after.links is None else diff_links(was.links, after.links),
    )
