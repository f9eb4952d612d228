"""The views a lesson asks for in its front matter (`observe: [mounts, cgroups, links]`): read, then diff.

Each view has a module of its own (`mount_changes`, `cgroup_changes`, `link_changes`); this one reads the views a
lesson lists and diffs them together, for the session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from workshop.lesson.model import VIEWS
from workshop.observe.cgroups import CgroupsDiff, CgroupsSnapshot, diff_cgroups, read_cgroups
from workshop.observe.common import Scope
from workshop.observe.limits import LimitPlace, LimitsDiff, LimitsSnapshot, diff_limits, read_limits
from workshop.observe.links import LinkReader, LinksDiff, LinksSnapshot, diff_links, read_links
from workshop.observe.mounts import MountsDiff, MountsSnapshot, diff_mounts, read_mounts
from workshop.observe.process_tree import Snapshot


@dataclass(frozen=True)
class ExtrasSnapshot:
    views: tuple[str, ...]
    """The lesson's `observe` list, in its order: the order the views are shown in."""
    mounts: MountsSnapshot | None = None
    cgroups: CgroupsSnapshot | None = None
    links: LinksSnapshot | None = None
    limits: LimitsSnapshot | None = None


@dataclass(frozen=True)
class ExtrasDiff:
    views: tuple[str, ...]
    mounts: MountsDiff | None = None
    cgroups: CgroupsDiff | None = None
    links: LinksDiff | None = None
    limits: LimitsDiff | None = None


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
    scope: Scope | None = None,
    limit_places: Callable[[], Iterable[LimitPlace]] | None = None,
) -> ExtrasSnapshot:
    """Reads the views named in `views` (unknown names are ignored: the loader has rejected them); with the
    session's `scope`, the mounts and cgroups views keep to what is the session's own (see `Scope`)."""
    wanted = tuple(v for v in views if v in VIEWS)
    mounts = read_mounts(proc_root, snap, reference_pid, scope) if "mounts" in wanted else None
    cgroups = None
    if "cgroups" in wanted:
        place = cgroup_place() if cgroup_place is not None else CgroupPlace(None, error="no cgroup layout given")
        if place.parent is None:
            cgroups = CgroupsSnapshot(Path(), place.v2, (), (), place.error or "no pids controller")
        else:
            cgroups = read_cgroups(proc_root, snap, place.parent, place.v2, scope)
    links = read_links(proc_root, snap, link_reader) if "links" in wanted else None
    limits = None
    if "limits" in wanted:
        limits = read_limits(limit_places() if limit_places is not None else (), scope)
    return ExtrasSnapshot(wanted, mounts, cgroups, links, limits)


def diff_extras(before: ExtrasSnapshot | None, after: ExtrasSnapshot) -> ExtrasDiff:
    """What changed since `before` (None: the first observation), view by view."""
    was = before or ExtrasSnapshot(())
    return ExtrasDiff(
        views=after.views,
        mounts=None if after.mounts is None else diff_mounts(was.mounts, after.mounts),
        cgroups=None if after.cgroups is None else diff_cgroups(was.cgroups, after.cgroups),
        links=None if after.links is None else diff_links(was.links, after.links),
        limits=None if after.limits is None else diff_limits(was.limits, after.limits),
    )
