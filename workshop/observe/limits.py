"""The limits view: the lesson's memory and cpu cgroups, with their limit, what they use, and what the kernel did
about it (OOM kills, throttled periods), read from the counters the kernel keeps, on cgroup v1 and v2 alike.

The file names differ by version (`memory.max` on v2 is `memory.limit_in_bytes` on v1, `cpu.max` is
`cpu.cfs_quota_us` and `cpu.cfs_period_us`); this module is the one place that knows both. Reading works on any
directory standing in for the tool's parent cgroup, so tests feed fixture trees; the diff is pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from workshop.observe.common import UNREADABLE, Scope, read_text

_MAX_CGROUPS = 16
_V1_UNLIMITED = 2**63 - 4096
"""What v1's memory.limit_in_bytes reads with no limit (PAGE_COUNTER_MAX in bytes, 4 KiB pages); above it too."""

T = TypeVar("T")


@dataclass(frozen=True)
class LimitPlace:
    """Where the lesson's cgroups for one controller live."""

    controller: str
    """memory or cpu"""
    parent: Path
    v2: bool
    name: str
    """The session's cgroup for this controller (`ws1a2b3c-memory`): on v2 the controllers share one parent, so
    the name tells which cgroups are the memory lesson's; `NAME-…` siblings count too."""


@dataclass(frozen=True)
class LimitCgroup:
    controller: str
    name: str
    limit: str | None
    """memory: `32 MiB` or `max`; cpu: `20 ms / 100 ms` or `max`."""
    usage: str | None
    """memory: what is charged now (`1.2 MiB`); cpu: periods it wanted to run in (`31 periods`)."""
    events: int | None
    """What the limit did: OOM kills (memory), throttled periods (cpu)."""
    procs: int | None


@dataclass(frozen=True)
class LimitsSnapshot:
    places: tuple[LimitPlace, ...]
    cgroups: tuple[LimitCgroup, ...]


def _maybe(read: Callable[[], T]) -> T | None:
    try:
        return read()
    except (*UNREADABLE, ValueError):
        return None


def _keyed(text: str) -> dict[str, int]:
    """A flat-keyed file (`memory.events`, `cpu.stat`, `memory.oom_control`): one `key number` per line."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            value = n / scale
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} B"


def _memory_limit(text: str) -> str:
    text = text.strip()
    return "max" if text == "max" or int(text) >= _V1_UNLIMITED else size(int(text))


def _cpu_limit(quota: str, period: str) -> str:
    if quota in ("max", "-1"):
        return "max"
    return f"{int(quota) / 1000:g} ms / {int(period) / 1000:g} ms"


def read_memory(directory: Path, name: str, v2: bool) -> LimitCgroup:
    d = str(directory)
    limit_file, usage_file, events_file = (
        ("memory.max", "memory.current", "memory.events")
        if v2
        else ("memory.limit_in_bytes", "memory.usage_in_bytes", "memory.oom_control")
    )
    return LimitCgroup(
        "memory",
        name,
        limit=_maybe(lambda: _memory_limit(read_text(f"{d}/{limit_file}"))),
        usage=_maybe(lambda: size(int(read_text(f"{d}/{usage_file}")))),
        events=_maybe(lambda: _keyed(read_text(f"{d}/{events_file}")).get("oom_kill")),
        procs=_maybe(lambda: len(read_text(f"{d}/cgroup.procs").split())),
    )


def read_cpu(directory: Path, name: str, v2: bool) -> LimitCgroup:
    d = str(directory)

    def limit() -> str:
        if v2:
            quota, _, period = read_text(f"{d}/cpu.max").strip().partition(" ")
            return _cpu_limit(quota, period)
        return _cpu_limit(read_text(f"{d}/cpu.cfs_quota_us").strip(), read_text(f"{d}/cpu.cfs_period_us").strip())

    stat = _maybe(lambda: _keyed(read_text(f"{d}/cpu.stat")))
    periods = None if stat is None else stat.get("nr_periods")
    return LimitCgroup(
        "cpu",
        name,
        limit=_maybe(limit),
        usage=None if periods is None else f"{periods} periods",
        events=None if stat is None else stat.get("nr_throttled"),
        procs=_maybe(lambda: len(read_text(f"{d}/cgroup.procs").split())),
    )


def _session_cgroups(place: LimitPlace, scope: Scope | None) -> Iterator[tuple[Path, str]]:
    try:
        names = sorted(p.name for p in place.parent.iterdir() if p.is_dir())
    except OSError:
        return
    ours = [n for n in names if n == place.name or n.startswith(f"{place.name}-")]
    for name in ours[:_MAX_CGROUPS]:
        if scope is None or scope.owns(name):
            yield place.parent / name, name


def read_limits(places: Iterable[LimitPlace], scope: Scope | None = None) -> LimitsSnapshot:
    """The session's cgroups (with a scope; all of them without) below each place's parent."""
    places = tuple(places)
    found: list[LimitCgroup] = []
    for place in places:
        read = read_memory if place.controller == "memory" else read_cpu
        found.extend(read(path, name, place.v2) for path, name in _session_cgroups(place, scope))
    return LimitsSnapshot(places, tuple(found))


@dataclass(frozen=True)
class LimitRow:
    cgroup: LimitCgroup
    new: bool
    limit_was: str | None
    """The previous limit when it changed; None otherwise."""
    events_more: int
    """OOM kills or throttled periods since the previous observation."""


@dataclass(frozen=True)
class LimitsDiff:
    now: LimitsSnapshot
    rows: tuple[LimitRow, ...]
    gone: tuple[LimitCgroup, ...]


def diff_limits(before: LimitsSnapshot | None, after: LimitsSnapshot) -> LimitsDiff:
    old = {} if before is None else {(c.controller, c.name): c for c in before.cgroups}
    rows = []
    for cgroup in after.cgroups:
        was = old.get((cgroup.controller, cgroup.name))
        more = 0
        if before is not None and cgroup.events is not None:
            previous = 0 if was is None else was.events
            if previous is not None and cgroup.events > previous:
                more = cgroup.events - previous
        limit_was = was.limit if was is not None and was.limit != cgroup.limit else None
        rows.append(LimitRow(cgroup, before is not None and was is None, limit_was, more))
    keys = {(c.controller, c.name) for c in after.cgroups}
    gone = tuple(c for c in (before.cgroups if before else ()) if (c.controller, c.name) not in keys)
    return LimitsDiff(after, tuple(rows), gone)
