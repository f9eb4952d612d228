"""The cgroups view: which pids cgroup each console's focus is in, and the lesson's cgroups with their limits.

Every learner's cgroups live under the tool's parent: given the session's `Scope`, the view lists the session's
own (named after it) and what is below them. Reading works on a `/proc`-like root and any directory standing in
for the tool's parent cgroup, so tests feed fixture trees; the diff is pure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workshop.observe import procfs
from workshop.observe.common import UNREADABLE, Scope, read_text
from workshop.observe.process_tree import Snapshot

_MAX_CGROUPS = 32
"""A runaway lesson cannot make the view read thousands of directories."""


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


def parse_events_max(text: str) -> int | None:
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "max":
            return int(value)
    return None


def _maybe(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except UNREADABLE:
        return None


def read_pids_cgroup(directory: Path, name: str) -> PidsCgroup:
    d = str(directory)
    return PidsCgroup(
        name=name,
        max=_maybe(lambda: read_text(f"{d}/pids.max").strip()),
        current=_maybe(lambda: int(read_text(f"{d}/pids.current"))),
        refused=_maybe(lambda: parse_events_max(read_text(f"{d}/pids.events"))),
        procs=_maybe(lambda: len(read_text(f"{d}/cgroup.procs").split())),
    )


def _cgroup_dirs(parent: Path, scope: Scope | None) -> Iterator[tuple[Path, str]]:
    """The cgroups below `parent`, or with a scope those of the session and everything below them."""
    stack = [parent]
    found = 0
    while stack and found < _MAX_CGROUPS:
        current = stack.pop()
        try:
            with os.scandir(current) as entries:
                subdirs = sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))
        except OSError:
            continue
        if current == parent and scope is not None:
            subdirs = [name for name in subdirs if scope.owns(name)]
        for name in subdirs:
            path = current / name
            found += 1
            yield path, str(path.relative_to(parent))
        stack.extend(current / name for name in reversed(subdirs))


def read_cgroups(
    proc_root: Path, snap: Snapshot, parent: Path, v2: bool, scope: Scope | None = None
) -> CgroupsSnapshot:
    """Each console's focus's pids cgroup, and the cgroups below `parent` (the tool's, see `pids_parent`): the
    session's own with a scope (every learner's are there), all of them without."""
    members = []
    for console, pid in snap.focus.items():
        members.append(Membership(console, pid, procfs.read_pids_cgroup(proc_root, pid, v2)))
    found = sorted(_cgroup_dirs(parent, scope), key=lambda item: item[1])
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
