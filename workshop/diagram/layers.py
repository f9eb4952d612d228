"""The overlay layers and cgroups of the diagram, from the mounts, cgroups and limits views. Pure."""

from __future__ import annotations

from collections.abc import Iterator

from workshop.diagram.model import CgroupNode, Overlay
from workshop.observe.common import Mark
from workshop.observe.mounts import Mount
from workshop.observe.process_tree import Snapshot
from workshop.observe.resources import ExtrasDiff


def overlays(snap: Snapshot, extras: ExtrasDiff) -> Iterator[Overlay]:
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


def cgroups(snap: Snapshot, extras: ExtrasDiff) -> Iterator[CgroupNode]:
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
