"""The views a lesson asks for (mounts, cgroups, links), as rich renderables built from an `extras.ExtrasDiff`.

Nothing here prints or reads the kernel; `render` prints them after the pstree and namespaces. Each view shows
what changed since the previous step, so the learner sees the one line their command caused.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from workshop.observe.cgroups import CgroupRow, CgroupsDiff
from workshop.observe.common import Mark
from workshop.observe.links import Link, LinkRow, LinksDiff, NetNs, NetNsReport, peer_of
from workshop.observe.mounts import Mount, MountChange, MountNsReport, MountsDiff
from workshop.observe.resources import ExtrasDiff
from workshop.ui.limit_views import limits_view, value_cell

MOUNTS_HEADING = "mounts — what changed in each mount namespace"
CGROUPS_HEADING = "cgroups — pids limits and who is in them"
LINKS_HEADING = "links — network interfaces per network namespace"
MAX_LINES = 15
"""Lines listed per namespace before "… and N more": a pivot_root'ed container differs from the host a lot."""
MAX_NAMES = 8
_MISSING_LISTED = 3
"""A new namespace missing more of the host's mounts than this gets one summary line instead of a list."""


def _more(hidden: int) -> Text:
    return Text(f"  … and {hidden} more", style="muted")


def _consoles(names: Sequence[str]) -> str:
    return f" ({', '.join(names)})" if names else ""


def _unknown(prefix: str, why: str = "") -> Text:
    text = Text(prefix)
    text.append("?", style="unknown")
    if why:
        text.append(f" ({why})", style="muted")
    return text


# --- mounts ---

_MOUNT_STYLE = {Mark.NEW: "mount.new", Mark.GONE: "mount.gone", Mark.CHANGED: "mount.changed"}


def mount_text(mount: Mount) -> str:
    """`overlay on /x/merged (lower=…, upper=…, work=…)`, `ext4 on /home (/dev/vda[/srv/home], ro)`."""
    details = []
    if mount.fstype == "overlay":
        details += [f"{key}={value}" for key, value in (("lower", mount.lower), ("upper", mount.upper)) if value]
        if mount.work:
            details.append(f"work={mount.work}")
    elif mount.source not in ("", "none", mount.fstype) or mount.root != "/":
        details.append(mount.source + (f"[{mount.root}]" if mount.root != "/" else ""))
    if "ro" in mount.options.split(","):
        details.append("ro")
    return f"{mount.fstype} on {mount.target}" + (f" ({', '.join(details)})" if details else "")


def mount_change_line(change: MountChange) -> Text:
    style = _MOUNT_STYLE[change.mark]
    line = Text(f"  {change.mark.value} {mount_text(change.mount)}", style=style)
    was = change.was
    if was is not None:
        if was.options != change.mount.options:
            line.append(f"  options {was.options} → {change.mount.options}", style=style)
        if was.propagation != change.mount.propagation:
            line.append(f"  propagation {was.propagation} → {change.mount.propagation}", style=style)
    return line


def _mount_report(report: MountNsReport) -> Iterator[Text]:
    table = report.table
    head = Text(f"mount namespace {table.ns}{_consoles(table.consoles)}: ")
    mounts = table.mounts
    if mounts is None:
        head.append("?", style="unknown")
        head.append(f" (cannot read /proc/{table.pid}/mountinfo)", style="muted")
        yield head
        return
    head.append(f"{len(mounts)} mounts")
    if report.first_sight and not report.is_host:
        head.append(", new", style="ns.new")
        head.append(" — how it differs from the host's:" if report.changes else ", the same mount points as the host's")
    elif not report.first_sight:
        head.append(":" if report.changes else ", no change", style="" if report.changes else "muted")
    yield head
    changes = report.changes
    missing: list[MountChange] = []
    if report.first_sight and len([c for c in changes if c.mark is Mark.GONE]) > _MISSING_LISTED:
        # A chrooted or pivot_root'ed process sees none of the host's mounts: one line says so.
        missing = [c for c in changes if c.mark is Mark.GONE]
        changes = tuple(c for c in changes if c.mark is not Mark.GONE)
    yield from (mount_change_line(c) for c in changes[:MAX_LINES])
    if len(changes) > MAX_LINES:
        yield _more(len(changes) - MAX_LINES)
    if missing:
        targets = ", ".join(dict.fromkeys(c.mount.target for c in missing))
        yield Text(
            f"  - {len(missing)} of the host's mounts are not here: {targets}",
            style="mount.gone",
            no_wrap=True,
            overflow="ellipsis",
        )


def mounts_view(d: MountsDiff) -> RenderableType:
    """Per mount namespace of the consoles: a count the first time, then mounts added (+), gone (-), changed (~)."""
    parts: list[RenderableType] = [Text(MOUNTS_HEADING, style="heading")]
    for report in d.reports:
        parts.extend(_mount_report(report))
    for console in d.unreadable:
        parts.append(_unknown(f"{console}: mount namespace ", "its namespace link cannot be read"))
    for table in d.left:
        gone = f"mount namespace {table.ns}{_consoles(table.consoles)}: no console is in it any more"
        parts.append(Text(gone, style="muted"))
    return Group(*parts)


# --- cgroups ---


def _cgroup_cells(row: CgroupRow) -> list[Text]:
    c = row.cgroup
    name = Text(f"+ {c.name}", style="cgroup.new") if row.new else Text(c.name)
    limit = value_cell(c.max)
    if row.max_was is not None:
        limit.append(f" ● was {row.max_was}", style="cgroup.changed")
    refused = value_cell(c.refused)
    if row.refused_more:
        refused.stylize("cgroup.limit")
        refused.append(f" ● +{row.refused_more}", style="cgroup.limit")
    return [name, limit, value_cell(c.current), refused, value_cell(c.procs)]


def _membership_lines(d: CgroupsDiff) -> Iterator[Text]:
    width = max((len(m.console) for m in d.now.members), default=0)
    for m in d.now.members:
        line = Text.assemble("  ", (m.console.ljust(width), "console.name"), f"  pid {m.pid} in ")
        if m.path is None:
            line.append("?", style="unknown")
        else:
            line.append(m.path)
        if m.console in d.moved:
            line.append(f" ● moved (was {d.moved[m.console] or '?'})", style="cgroup.changed")
        yield line


def refusal_line(row: CgroupRow) -> Text:
    """The lesson's punchline: the limit said no."""
    forks = "fork" if row.refused_more == 1 else "forks"
    return Text(
        f"{row.cgroup.name}: the kernel refused {row.refused_more} {forks} since the previous step "
        f"(pids.max {row.cgroup.max or '?'})",
        style="cgroup.limit",
    )


def cgroups_view(d: CgroupsDiff) -> RenderableType:
    """Which pids cgroup each console's focus is in, and every lesson cgroup's limit, count and refusals."""
    now = d.now
    if now.error is not None:
        return Group(Text(CGROUPS_HEADING, style="heading"), Text(f"cgroups: unavailable ({now.error})", "muted"))
    version = "v2" if now.v2 else "v1"
    parts: list[RenderableType] = [
        Text(f"{CGROUPS_HEADING} (cgroup {version})", style="heading"),
        Text(f"the lesson's cgroups live under {now.parent}", style="muted"),
    ]
    parts.extend(_membership_lines(d))
    if d.rows:
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        for column in ("cgroup", "pids.max", "pids.current", "refused forks", "procs"):
            table.add_column(column, no_wrap=column == "cgroup")
        for row in d.rows:
            table.add_row(*_cgroup_cells(row))
        parts.append(table)
    else:
        parts.append(Text("no cgroup there yet", style="muted"))
    parts.extend(Text(f"- {c.name}: removed", style="cgroup.gone") for c in d.gone)
    parts.extend(refusal_line(row) for row in d.rows if row.refused_more)
    return Group(*parts)


# --- links ---

_LINK_STYLE = {Mark.NEW: "link.new", Mark.GONE: "link.gone", Mark.CHANGED: "link.changed"}


def _label(netns: NetNs) -> str:
    if netns.consoles:
        return f"{', '.join(netns.consoles)} — netns {netns.ns}"
    return f"netns {netns.ns} (pid {netns.pid})"


def _where(netns: NetNs) -> str:
    return ", ".join(netns.consoles) if netns.consoles else f"netns {netns.ns}"


def _relation(link: Link, netns: NetNs, everywhere: Iterable[NetNs]) -> str:
    parts = []
    if link.master is not None:
        names = {other.index: other.name for other in netns.links or ()}
        parts.append(f"master {names.get(link.master, f'if{link.master}')}")
    peer = peer_of(link, netns, everywhere)
    if peer is not None:
        name, where = peer
        if where is not None:
            parts.append(f"peer {name} in {_where(where)}")
        elif link.peer_netnsid is not None:
            parts.append(f"peer {name} in another netns")
        else:
            parts.append(f"peer {name}")
    return ", ".join(parts)


def _link_lines(rows: Sequence[LinkRow], netns: NetNs, everywhere: Sequence[NetNs]) -> Iterator[Text]:
    """One line per link, the short columns aligned like `ip -br link`; what changed at the end."""
    names = [f"{row.link.index}: {row.link.name}" for row in rows]
    name_width = max(map(len, names), default=0)
    kind_width = max((len(row.link.kind) for row in rows), default=0)
    state_width = max((len(row.link.state) for row in rows), default=0)
    for row, name in zip(rows, names, strict=True):
        link = row.link
        style = "" if row.mark is None else _LINK_STYLE[row.mark]
        line = Text(f"  {' ' if row.mark is None else row.mark.value} {name.ljust(name_width)}", style=style)
        line.append(f"  {link.kind.ljust(kind_width)}  ")
        line.append(link.state.ljust(state_width), style="link.up" if link.up else "link.down")
        relation = _relation(link, netns, everywhere)
        if relation:
            line.append(f"  {relation}")
        for i, address in enumerate(link.addresses):
            line.append(", " if i else "  ")
            if address in row.new_addresses:
                line.append(f"+{address}", style="link.new")
            else:
                line.append(address)
        if row.notes:
            line.append("  ● " + "; ".join(row.notes), style="link.changed")
        yield line


def _link_report(report: NetNsReport, everywhere: Sequence[NetNs]) -> Iterator[RenderableType]:
    netns = report.netns
    head = Text(f"{_label(netns)}: ")
    if netns.links is None:
        head.append("?", style="unknown")
        head.append(f" ({netns.error})" if netns.error else "", style="muted")
        yield head
        return
    count = len(netns.links)
    head.append(f"{count} link{'' if count == 1 else 's'}")
    if report.is_host and report.first_sight:
        names = [link.name for link in netns.links]
        listed = ", ".join(names[:MAX_NAMES]) + (f", … {len(names) - MAX_NAMES} more" if count > MAX_NAMES else "")
        head.append(f" ({listed})", style="muted")
    elif report.is_host:
        head.append("; changed:" if report.rows else ", no change", style="" if report.rows else "muted")
    elif report.first_sight:
        head.append(", new", style="ns.new")
    yield head
    yield from _link_lines(report.rows[:MAX_LINES], netns, everywhere)
    if len(report.rows) > MAX_LINES:
        yield _more(len(report.rows) - MAX_LINES)


def links_view(d: LinksDiff) -> RenderableType:
    """Per network namespace of the lesson's processes: links, state, kind, bridge, veth peer, addresses."""
    if d.now.error is not None:
        return Group(Text(LINKS_HEADING, style="heading"), Text(f"links: unavailable ({d.now.error})", "muted"))
    parts: list[RenderableType] = [Text(LINKS_HEADING, style="heading")]
    for report in d.reports:
        parts.extend(_link_report(report, d.now.namespaces))
    parts.extend(Text(f"{_label(n)}: no lesson process uses it any more", "muted") for n in d.left)
    return Group(*parts)


# --- all of them ---


def extra_views(d: ExtrasDiff) -> list[RenderableType]:
    """The lesson's extra views, in the order its front matter lists them."""
    shown: list[RenderableType] = []
    for view in d.views:
        if view == "mounts" and d.mounts is not None:
            shown.append(mounts_view(d.mounts))
        elif view == "cgroups" and d.cgroups is not None:
            shown.append(cgroups_view(d.cgroups))
        elif view == "links" and d.links is not None:
            shown.append(links_view(d.links))
        elif view == "limits" and d.limits is not None:
            shown.append(limits_view(d.limits))
    return shown
