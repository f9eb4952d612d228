"""The mounts view: each mount namespace of the consoles, read from `/proc/PID/mountinfo`, and what changed.

Learners share the host's mount table. Given the session's `Scope`, the view leaves out every other session's
mounts, wherever they show (the host's table, or a copy of it in a new namespace), and of the host's own changes
shows only those to the session's mounts (in its work dir, or named after it). What happens in the session's own
namespaces is all shown: nobody else is in them.

Reading works on a `/proc`-like root, so tests feed fixture trees; the diff is pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from workshop.observe.common import UNREADABLE, Mark, Scope, focus_groups, printable, read_text
from workshop.observe.process_tree import Snapshot
from workshop.observe.procfs import parse_mountinfo, unescape


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
        value = printable(unescape(value))
        if key in ("lowerdir", "lowerdir+"):
            lower.append(value)
        elif key == "upperdir":
            upper = value
        elif key == "workdir":
            work = value
    return (":".join(lower) or None), upper, work


def parse_mounts(text: str) -> tuple[Mount, ...]:
    """mountinfo text -> mounts in file order; malformed lines are skipped (see `procfs.parse_mountinfo`)."""
    mounts = []
    for info in parse_mountinfo(text):
        lower = upper = work = None
        if info.fstype == "overlay":
            lower, upper, work = _overlay_dirs(info.super_options)
        mounts.append(
            Mount(
                mount_id=info.mount_id,
                target=printable(str(info.mount_point)),
                fstype=info.fstype,
                source=printable(info.source),
                root=printable(info.root),
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
        return parse_mounts(read_text(f"{proc_root}/{pid}/mountinfo"))
    except UNREADABLE:
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
    scope: Scope | None = None
    """The session the tables were read for (other sessions' mounts are left out of them); None: no session."""


def read_mounts(
    proc_root: Path, snap: Snapshot, reference_pid: int | str = "self", scope: Scope | None = None
) -> MountsSnapshot:
    """The mount table of each mount namespace the consoles' focus processes are in, without other sessions'."""
    theirs = scope.theirs() if scope is not None else None

    def read(pid: int | str) -> tuple[Mount, ...] | None:
        mounts = read_mounts_of(proc_root, pid)
        if mounts is None or theirs is None:
            return mounts
        return tuple(m for m in mounts if not theirs(m.target))

    consoles, pids, unreadable = focus_groups(snap, "mnt")
    tables = tuple(MountTable(ns, tuple(names), pids[ns], read(pids[ns])) for ns, names in consoles.items())
    host_ns = snap.host_ns.get("mnt")
    host = next((t.mounts for t in tables if t.ns == host_ns and t.mounts is not None), None)
    if host is None:
        host = read(reference_pid)
    return MountsSnapshot(tables, host_ns, host, tuple(unreadable), scope)


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
                if is_host and after.scope is not None:
                    # the host's table changes under every learner: the session's own changes are what it shows
                    changes = tuple(c for c in changes if after.scope.owns(c.mount.target))
            elif not is_host and after.host_mounts is not None:
                changes = tuple(_against_host(table.mounts, after.host_mounts))
        reports.append(MountNsReport(table, is_host, first, changes))
    seen = {t.ns for t in after.tables}
    left = tuple(t for t in (before.tables if before else ()) if t.ns not in seen)
    return MountsDiff(tuple(reports), left, after.unreadable)
