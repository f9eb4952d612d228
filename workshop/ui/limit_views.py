"""The limits view (memory and cpu cgroups) as a rich renderable built from a `limits.LimitsDiff`."""

from __future__ import annotations

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from workshop.observe.limits import LimitRow, LimitsDiff

LIMITS_HEADING = "limits — memory and CPU, and what the kernel did about them"

_COLUMNS = {
    "memory": ("memory cgroup", "limit", "charged", "OOM kills", "procs"),
    "cpu": ("cpu cgroup", "quota", "ran in", "throttled periods", "procs"),
}
_PUNCHLINE = {
    "memory": "{name}: the OOM killer struck {n} {times} since the previous step (limit {limit})",
    "cpu": "{name}: throttled in {n} more {periods} since the previous step (quota {limit})",
}


def value_cell(value: object) -> Text:
    """A table cell; what could not be read shows as `?`."""
    return Text("?", style="unknown") if value is None else Text(str(value))


def _cells(row: LimitRow) -> list[Text]:
    c = row.cgroup
    name = Text(f"+ {c.name}", style="cgroup.new") if row.new else Text(c.name)
    limit = value_cell(c.limit)
    if row.limit_was is not None:
        limit.append(f" ● was {row.limit_was}", style="cgroup.changed")
    events = value_cell(c.events)
    if row.events_more:
        events.stylize("cgroup.limit")
        events.append(f" ● +{row.events_more}", style="cgroup.limit")
    return [name, limit, value_cell(c.usage), events, value_cell(c.procs)]


def _punchline(row: LimitRow) -> Text:
    n = row.events_more
    text = _PUNCHLINE[row.cgroup.controller].format(
        name=row.cgroup.name,
        n=n,
        times="time" if n == 1 else "times",
        periods="period" if n == 1 else "periods",
        limit=row.cgroup.limit or "?",
    )
    return Text(text, style="cgroup.limit")


def limits_view(d: LimitsDiff) -> RenderableType:
    """Each lesson cgroup of the memory and cpu controllers: its limit, use, and the kernel's interventions."""
    parts: list[RenderableType] = [Text(LIMITS_HEADING, style="heading")]
    for place in d.now.places:
        version = "v2" if place.v2 else "v1"
        rows = [r for r in d.rows if r.cgroup.controller == place.controller]
        parts.append(Text(f"{place.controller} (cgroup {version}) under {place.parent}", style="muted"))
        if not rows:
            parts.append(Text("  no cgroup there yet", style="muted"))
            continue
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        for column in _COLUMNS[place.controller]:
            table.add_column(column, no_wrap=column.endswith("cgroup"))
        for row in rows:
            table.add_row(*_cells(row))
        parts.append(table)
    if not d.now.places:
        parts.append(Text("no memory or cpu controller here", style="muted"))
    parts.extend(Text(f"- {c.name}: removed", style="cgroup.gone") for c in d.gone)
    parts.extend(_punchline(row) for row in d.rows if row.events_more)
    return Group(*parts)
