"""What the learner sees after every step: the lesson's process tree and its namespaces, as rich renderables.

Views only build renderables from a `Snapshot` and a `Diff`; `render` decides where they are printed.
Styles are the theme's names, so the meaning (new, joined, host) stays separate from the look.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text

from workshop.observe.process_diff import Diff, NsChange, NsEvent
from workshop.observe.process_tree import NS_TYPES, Proc, Snapshot, base_type, inner_pid, ns_transitions

PSTREE_HEADING = "pstree — the lesson's processes"
NAMESPACES_HEADING = "namespaces — where each console's shell lives"
UNCHANGED = "no namespace changed since the previous step"
FOCUS_MARK = "◀ you are here"
RECYCLED = "the same number, yet a new one: the old one ended and the kernel reuses freed numbers"
CMDLINE_WIDTH = 60
"""Longer command lines are cut with '…' so one process stays on one line at 100 columns."""

_EVENT_MARK: Mapping[NsEvent, tuple[str, str]] = {
    NsEvent.CREATED: ("● new", "ns.new"),
    NsEvent.JOINED: ("● joined", "ns.joined"),
    NsEvent.BACK_TO_HOST: ("● back", "ns.changed"),  # the cell already says "host"
    NsEvent.CHANGED: ("● changed", "ns.changed"),
    NsEvent.GONE: ("● unreadable", "ns.gone"),
}

# The types pstree -S marks; the *_for_children links describe the children, who carry their own marks.
_OWN_TYPES = tuple(t for t in NS_TYPES if base_type(t) == t)


# --- pstree ---

# rich's tree guides: space, continue, fork, end
_GUIDES = ("    ", "│   ", "├── ", "└── ")
_ASCII_GUIDES = ("    ", "|   ", "+-- ", "`-- ")


class Tree:
    """Draws what rich's Tree draws for a pstree (the same guides, each process cut to one line at the edge),
    in one pass: rich lays out every node as a renderable of its own, which for thousands of processes (a
    busy host's whole tree) takes most of a second. Children's labels are single-line `proc_label`s."""

    def __init__(self, label: Text, guide_style: str = "muted") -> None:
        self.label = label
        self.guide_style = guide_style
        self.children: list[Tree] = []

    def add(self, label: Text) -> Tree:
        child = Tree(label, self.guide_style)
        self.children.append(child)
        return child

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.label  # the root line wraps like any text, as rich's Tree lets it
        style = console.get_style(self.guide_style) + Style(bold=False, underline2=False)
        space, cont, fork, end = _ASCII_GUIDES if options.ascii_only else _GUIDES
        stack: list[tuple[Iterator[Tree], int, str]] = [(iter(self.children), len(self.children), "")]
        while stack:
            siblings, left, prefix = stack.pop()
            node = next(siblings, None)
            if node is None:
                continue
            last = left == 1
            stack.append((siblings, left - 1, prefix))
            width = options.max_width - cell_len(prefix) - 4
            if width <= 0:
                continue  # no room left at this depth: rich shows nothing of it either
            guide = end if last else fork
            for line in node.label.split("\n", allow_blank=True):
                if "\t" in line.plain:
                    line.expand_tabs(node.label.tab_size or console.tab_size)
                line.truncate(width, overflow=node.label.overflow or "ellipsis")
                yield Segment(prefix + guide, style)
                yield from line.render(console)
                yield Segment.line()
                guide = space if last else cont
            if node.children:
                stack.append((iter(node.children), len(node.children), prefix + (space if last else cont)))


def _children(snap: Snapshot) -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for pid in sorted(snap.procs):
        children.setdefault(snap.procs[pid].ppid, []).append(pid)
    return children


def short_cmdline(proc: Proc) -> str:
    """The command line as pstree -a would show it, cut to CMDLINE_WIDTH; "" when it only repeats comm."""
    cmdline = proc.cmdline or f"[{proc.comm}]"
    if cmdline == proc.comm:
        return ""
    return cmdline if len(cmdline) <= CMDLINE_WIDTH else cmdline[: CMDLINE_WIDTH - 1] + "…"


def _transition_marks(snap: Snapshot, proc: Proc) -> Text:
    marks = list(ns_transitions(snap, proc.pid))
    if any(proc.ns.get(t) is None for t in _OWN_TYPES):
        marks.append("?")  # some links could not be read: we cannot tell whether they differ
    if not marks:
        return Text()
    text = Text(" (", style="ns.transition")
    for i, mark in enumerate(marks):
        if i:
            text.append(",", style="ns.transition")
        text.append(mark, style="unknown" if mark == "?" else "ns.transition")
    text.append(")", style="ns.transition")
    return text


def proc_label(snap: Snapshot, d: Diff, proc: Proc, *, focus: bool = False) -> Text:
    """One process as pstree -p -S shows it: `sh(4242)[1] (pid)`, plus command, root and markers."""
    is_new = proc.pid in d.new_pids
    name_style = "proc.new" if is_new else ""
    label = Text(no_wrap=True, overflow="ellipsis")
    if is_new:
        label.append("+ ", style="proc.new")
    label.append(proc.comm, style=name_style)
    label.append("(", style=name_style)
    label.append(str(proc.pid), style="proc.pid")
    label.append(")", style=name_style)
    inner = inner_pid(proc)
    if not proc.nspid:
        label.append("[?]", style="unknown")
    elif inner is not None:
        label.append(f"[{inner}]", style="proc.nspid")
    label.append_text(_transition_marks(snap, proc))
    cmdline = short_cmdline(proc)
    if cmdline:
        label.append(f"  {cmdline}", style="muted")
    if proc.root is None:
        label.append("  root=", style="muted")
        label.append("?", style="unknown")
    elif proc.root != "/":
        label.append(f"  root={proc.root}", style="muted")
    if focus:
        label.append(f"  {FOCUS_MARK}", style="proc.focus")
    return label


def _grow(
    tree: Tree,
    pid: int,
    snap: Snapshot,
    d: Diff,
    children: Mapping[int, list[int]],
    focus: int | None,
    placed: set[int],
) -> None:
    """Add the descendants of `pid` under `tree`, children sorted by PID."""
    for child in children.get(pid, ()):
        if child in placed:  # a malformed tree (or two consoles sharing a subtree) must not loop
            continue
        placed.add(child)
        branch = tree.add(proc_label(snap, d, snap.procs[child], focus=child == focus))
        _grow(branch, child, snap, d, children, focus, placed)


def _console_tree(
    snap: Snapshot, d: Diff, console: str, children: Mapping[int, list[int]], placed: set[int]
) -> RenderableType:
    root = snap.roots[console]
    name = Text(console, style="console.name")
    proc = snap.procs.get(root)
    if proc is None:
        return Text.assemble(name, "  ", (f"shell {root} has exited", "proc.gone"))
    focus = snap.focus.get(console)
    placed.add(root)
    label = Text.assemble(name, "  ", proc_label(snap, d, proc, focus=root == focus))
    tree = Tree(label, guide_style="muted")
    # Consoles may nest (a console started from another's shell): each tree shows its whole subtree.
    _grow(tree, root, snap, d, children, focus, {root})
    placed.update(_descendants(root, children))
    return tree


def _descendants(pid: int, children: Mapping[int, list[int]]) -> set[int]:
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _orphans(snap: Snapshot, d: Diff, children: Mapping[int, list[int]], placed: set[int]) -> Tree | None:
    """Processes whose parent exited while the snapshot was read: real, but outside every console's tree."""
    tops = [pid for pid in sorted(snap.procs) if pid not in placed and snap.procs[pid].ppid not in snap.procs]
    if not tops:
        return None
    tree = Tree(Text("(parent exited while reading)", style="muted"), guide_style="muted")
    for pid in tops:
        placed.add(pid)
        _grow(tree.add(proc_label(snap, d, snap.procs[pid])), pid, snap, d, children, None, placed)
    return tree


def _exited(gone: Iterable[Proc]) -> Text:
    text = Text("exited: ", style="muted")
    for i, proc in enumerate(gone):
        if i:
            text.append(", ", style="muted")
        text.append(f"{proc.comm}({proc.pid})", style="proc.gone")
    return text


def pstree_view(after: Snapshot, d: Diff) -> RenderableType:
    """Each console's process subtree, like `pstree -p -S`, with what is new since the previous step."""
    children = _children(after)
    placed: set[int] = set()
    parts: list[RenderableType] = [Text(PSTREE_HEADING, style="heading")]
    parts.extend(_console_tree(after, d, console, children, placed) for console in after.roots)
    orphans = _orphans(after, d, children, placed)
    if orphans is not None:
        parts.append(orphans)
    if d.gone:
        parts.append(_exited(d.gone))
    return Group(*parts)


# --- namespaces ---


def _focus_proc(snap: Snapshot, console: str) -> Proc | None:
    pid = snap.focus.get(console)
    return None if pid is None else snap.procs.get(pid)


def _column_header(snap: Snapshot, console: str) -> Text:
    header = Text(console, style="console.name")
    proc = _focus_proc(snap, console)
    if proc is None:
        header.append("  (gone)", style="proc.gone")
        return header
    header.append(f"  pid {proc.pid}")
    inner = inner_pid(proc)
    if inner is not None:
        header.append(f" → {inner}", style="proc.nspid")
    return header


def _cell(snap: Snapshot, console: str, ns_type: str, change: NsChange | None) -> Text:
    proc = _focus_proc(snap, console)
    if proc is None:
        return Text("—", style="muted")
    inode = proc.ns.get(ns_type)
    if inode is None:
        cell = Text("?", style="unknown")
    elif inode == snap.host_ns.get(ns_type):
        cell = Text(f"{inode} host", style="ns.host")
    else:
        cell = Text(str(inode), style="ns.new")
    if change is not None:
        mark, style = _EVENT_MARK[change.event]
        # Inline while it fits; with many consoles rich wraps the marker under the inode by itself.
        cell.append(f" {mark}", style=style)
    return cell


def _kind(ns_type: str) -> str:
    base = base_type(ns_type)
    return f"{base} namespace" if base == ns_type else f"{base} namespace for children"


def _was(before: int | None, host: int | None) -> str:
    if before is None:
        return "" if host is None else f" (the host's is {host})"
    return f" (was host {before})" if before == host else f" (was {before})"


def _shared_with(snap: Snapshot, change: NsChange) -> str:
    """Who else is in the namespace a console joined: that is what makes it a join."""
    focus = snap.focus.get(change.console)
    kind = base_type(change.ns_type)
    for pid in sorted(snap.procs):
        proc = snap.procs[pid]
        if pid != focus and proc.ns.get(kind) == change.after:
            return f", shared with {proc.comm}({pid})"
    return ""


def change_line(snap: Snapshot, change: NsChange) -> Text:
    """One sentence per namespace change: `container: new pid namespace 4026532401 (was host 4026531836)`."""
    host = snap.host_ns.get(change.ns_type)
    kind = _kind(change.ns_type)
    if change.event is NsEvent.GONE:
        return unreadable_line(change.console, [change.ns_type])
    style = _EVENT_MARK[change.event][1]
    line = Text.assemble((change.console, "console.name"), ": ")
    if change.event is NsEvent.CREATED and change.recycled and change.before == change.after:
        line.append(f"new {kind} {change.after}", style=style)
        line.append(f" ({RECYCLED})", style="muted")
    elif change.event is NsEvent.CREATED:
        line.append(f"new {kind} {change.after}", style=style)
        line.append(_was(change.before, host))
    elif change.event is NsEvent.JOINED:
        line.append(f"joined {kind} {change.after}", style=style)
        line.append(_shared_with(snap, change) + _was(change.before, host))
    elif change.event is NsEvent.BACK_TO_HOST:
        line.append(f"back in the host's {kind} {change.after}", style=style)
        line.append(_was(change.before, None))
    else:
        line.append(f"moved to another {kind} {change.after}", style=style)
        line.append(_was(change.before, host))
    if change.recycled and change.before != change.after:
        line.append(f"; {change.after} was the number of one that ended, the kernel reuses them", style="muted")
    return line


def unreadable_line(console: str, ns_types: Iterable[str]) -> Text:
    """One line for all the links a focus lost at once (it is exiting, or we lost the right to look)."""
    lost = list(ns_types)
    style = _EVENT_MARK[NsEvent.GONE][1]
    if set(lost) >= set(NS_TYPES):
        return Text.assemble((console, "console.name"), ": ", ("can no longer read any of its namespaces", style))
    return Text.assemble(
        (console, "console.name"), ": ", ("can no longer read its namespaces: ", style), ", ".join(lost)
    )


def gone_line(ns_type: str, inode: int, reused: bool = False) -> Text:
    # Only the lesson's processes and the tool's bind mounts are watched: an open fd can still keep it alive.
    why = " — its number now names a new namespace" if reused else " — no lesson process uses it any more"
    return Text.assemble(("gone: ", "ns.gone"), f"{ns_type} {inode}", (why, "muted"))


def _in_use(snap: Snapshot) -> set[int]:
    return {inode for proc in snap.procs.values() for inode in proc.ns.values() if inode is not None}


def _summary(snap: Snapshot, d: Diff) -> Iterator[Text]:
    if not d.ns_changes and not d.gone_namespaces:
        yield Text(UNCHANGED, style="muted")
        return
    unreadable: dict[str, list[str]] = {}
    for change in d.ns_changes:
        if change.event is NsEvent.GONE:
            unreadable.setdefault(change.console, []).append(change.ns_type)
        else:
            yield change_line(snap, change)
    yield from (unreadable_line(console, ns_types) for console, ns_types in unreadable.items())
    used = _in_use(snap)
    yield from (gone_line(ns_type, inode, inode in used) for ns_type, inode in d.gone_namespaces)


def namespace_view(after: Snapshot, d: Diff, whole: bool = True) -> RenderableType:
    """One row per namespace type, one column per console's focus process, and what changed; a changed row's name
    is marked too. `whole=False` (after a step): when no namespace changed, one line says so instead of the ten
    unchanged rows, so what a step did change stands out (`ns` always shows the table)."""
    if not whole and not d.ns_changes and not d.gone_namespaces:
        return Text.assemble(("namespaces", "heading"), (f" — {UNCHANGED} (`ns` shows the table)", "muted"))
    changes = {(c.console, c.ns_type): c for c in d.ns_changes}
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("ns", no_wrap=True)
    for console in after.roots:
        table.add_column(_column_header(after, console))
    for ns_type in NS_TYPES:
        cells = [_cell(after, console, ns_type, changes.get((console, ns_type))) for console in after.roots]
        changed = any((console, ns_type) in changes for console in after.roots)
        table.add_row(Text(f"{ns_type} ▶", style="heading") if changed else Text(ns_type), *cells)
    return Group(Text(NAMESPACES_HEADING, style="heading"), table, *_summary(after, d))
