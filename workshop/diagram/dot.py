"""The diagram model -> Graphviz DOT source: a cluster per namespace box, a node per process, link and layer.

The `graphviz` package only assembles the source and quotes it; nothing here starts a process (its `.pipe()` and
`.render()` would, outside the one runner: `svg.py` runs `dot`). Names of nodes and clusters are made from numbers
only (PIDs, inodes, ifindexes), so tests find a process or a namespace in dot's output by them:

- process `p<PID>`, PID namespace `cluster_pid_<inode>` (`cluster_pid_unknown` when unreadable),
- network namespace `cluster_net_<inode>` with its links `l<inode>_<ifindex>`,
- overlay `cluster_overlay_<n>`, cgroups `cluster_cgroups` with `g<n>`.

Everything the kernel or the learner named (comm, link names, paths) goes into labels through `text`, which
escapes it: a process called `<script>` or `"a b"` is a label, never DOT.
"""

from __future__ import annotations

import itertools
from typing import Any

import graphviz

from workshop.diagram.model import Cable, CgroupNode, Diagram, NetBox, Overlay, PidBox, ProcNode

FONT = "DejaVu Sans,Helvetica,Arial,sans-serif"
"""Names of fonts, never a file or a URL: the SVG uses whatever the viewer has."""
NEW = "#c2410c"
"""What changed in the step: the outline and the `+ new` mark."""
NEW_FILL = "#fff1e6"
_DEPTH_FILLS = ("#f4f4f5", "#e0f2fe", "#dcfce7", "#fef9c3", "#fae8ff")
_NET_FILL = "#ecfeff"
_MAX_LINE = 48
"""Longer label lines (a path, a cmdline-like comm) are cut with '…' so one node stays narrow."""


def _clean(value: object) -> str:
    """One line of printable text: control characters (a newline in a comm) become `?`, lone surrogates `�`."""
    raw = str(value).encode("utf-8", "replace").decode("utf-8")
    line = "".join("?" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch for ch in raw)
    return line if len(line) <= _MAX_LINE else line[: _MAX_LINE - 1] + "…"


def path(value: str, width: int = _MAX_LINE) -> str:
    """A long path cut at its start, where sessions' work dirs all look alike: `…/c1/upper`."""
    return value if len(value) <= width else "…" + value[-(width - 1) :]


def text(*lines: object) -> str:
    """A label of centred lines, each escaped for DOT (backslashes, quotes, `<…>`)."""
    return graphviz.nohtml("\\n".join(graphviz.escape(_clean(line)) for line in lines if line != ""))  # type: ignore[no-any-return]


def _new_style(new: bool, *, fill: str = "white") -> dict[str, str]:
    if new:
        return {"color": NEW, "penwidth": "2.5", "fillcolor": NEW_FILL, "fontcolor": NEW}
    return {"color": "#52525b", "penwidth": "1", "fillcolor": fill}


def _mark(new: bool) -> str:
    return "+ new" if new else ""


# --- processes ---


def proc_label(proc: ProcNode) -> str:
    pids = f"PID {proc.inner_pid} · host {proc.pid}" if proc.inner_pid is not None else f"PID {proc.pid}"
    own = "own " + " ".join(t.name for t in proc.own) if proc.own else ""
    consoles = "console: " + ", ".join(proc.consoles) if proc.consoles else ""
    return text(_mark(proc.new), proc.comm, pids, own, consoles, *proc.moves)


def box_label(box: PidBox) -> str:
    if box.inode is None:
        title = "PID namespace unreadable"
    elif box.is_host:
        title = "host PID namespace"
    else:
        title = f"PID namespace {box.inode}"
    names = [t.name for t in box.shared]
    # a few names a line: a box whose processes have five namespaces of their own stays narrow
    shared = [" ".join(names[i : i + 4]) for i in range(0, len(names), 4)]
    if shared:
        shared[0] = "everyone here: own " + shared[0]
    return text(f"{title}  {_mark(box.new)}".strip(), *shared)


def _pid_box(graph: Any, box: PidBox) -> None:
    name = f"cluster_pid_{box.inode if box.inode is not None else 'unknown'}"
    with graph.subgraph(name=name) as c:
        fill = _DEPTH_FILLS[min(box.depth, len(_DEPTH_FILLS) - 1)]
        c.attr(label=box_label(box), style="rounded,filled", labeljust="l", **_new_style(box.new, fill=fill))
        if box.new:
            c.attr(fillcolor=fill)  # the outline says new; the fill keeps saying how deep
        for proc in box.procs:
            changed = proc.new or bool(proc.moves)  # a console that entered or made a namespace changed too
            c.node(f"p{proc.pid}", proc_label(proc), shape="box", style="rounded,filled", **_new_style(changed))
        for child in box.children:
            _pid_box(c, child)


# --- network ---


def link_id(netns: int, index: int) -> str:
    return f"l{netns}_{index}"


def _net_box(graph: Any, box: NetBox) -> None:
    with graph.subgraph(name=f"cluster_net_{box.inode}") as c:
        title = "host network namespace" if box.tag == "host" else f"network namespace {box.tag}"
        consoles = "consoles: " + ", ".join(box.consoles) if box.consoles else ""
        c.attr(
            label=text(f"{title}  {_mark(box.new)}".strip(), consoles, box.error or ""),
            style="rounded,filled,dashed",
            labeljust="l",
            **_new_style(box.new, fill=_NET_FILL),
        )
        c.attr(fillcolor=_NET_FILL)
        # An anchor, so an edge can point at the namespace even when none of its links is shown.
        c.node(f"n{box.inode}", "", shape="point", style="invis")
        for link in box.links:
            # link-local IPv6 addresses are the kernel's, on every link: noise in a picture of the lesson's
            addresses = ", ".join(a for a in link.addresses if not a.startswith("fe80:"))
            label = text(_mark(link.new), f"{link.name} ({link.kind})", link.state, addresses)
            shape = "box3d" if link.kind == "bridge" else "ellipse"
            c.node(link_id(link.netns, link.index), label, shape=shape, style="filled", **_new_style(link.new))


def _cable(graph: Any, cable: Cable) -> None:
    a = link_id(*cable.a)
    style = {"color": NEW, "penwidth": "2.5", "fontcolor": NEW} if cable.new else {"penwidth": "2"}
    if cable.kind == "port":
        graph.edge(a, link_id(*cable.b) if cable.b else a, label="port of", style="dotted", **style)
        return
    if cable.b is None:
        graph.node(
            f"x{cable.a[0]}_{cable.a[1]}", text("peer in a namespace", "no lesson process is in"), shape="plaintext"
        )
        graph.edge(a, f"x{cable.a[0]}_{cable.a[1]}", label=text("veth", cable.label), dir="none", **style)
        return
    graph.edge(a, link_id(*cable.b), label=text("veth", cable.label), dir="none", **style)


# --- layers and limits ---


def _overlay(graph: Any, n: int, overlay: Overlay) -> None:
    with graph.subgraph(name=f"cluster_overlay_{n}") as c:
        c.attr(
            label=text(f"overlay  {_mark(overlay.new)}".strip()),
            style="rounded",
            labeljust="l",
            **_new_style(overlay.new),
        )
        where = []
        for target, consoles in overlay.seen:
            who = f"{', '.join(consoles) or 'no console'}: "
            where.append(who + path(target, _MAX_LINE - len(who)))
        layers = [(f"o{n}_merged", text("merged: what the container sees", *where))]
        if overlay.upper:
            layers.append((f"o{n}_upper", text("upper: writable, the container's changes", path(overlay.upper))))
        layers += [(f"o{n}_lower{i}", text(f"lower {i + 1}: read-only", path(p))) for i, p in enumerate(overlay.lower)]
        for node, label in layers:
            c.node(node, label, shape="box", style="filled", fillcolor="#f8fafc", width="3")
        for (top, _), (below, _) in itertools.pairwise(layers):
            c.edge(top, below, style="invis")  # stacked: each layer drawn on top of the one below
    for pid in overlay.roots:
        graph.edge(f"p{pid}", f"o{n}_merged", label=text("its /"), style="dashed", color="#71717a", constraint="false")


def _cgroups(graph: Any, cgroups: tuple[CgroupNode, ...]) -> None:
    with graph.subgraph(name="cluster_cgroups") as c:
        c.attr(label=text("cgroups"), style="rounded", labeljust="l", color="#52525b")
        for n, cgroup in enumerate(cgroups):
            c.node(
                f"g{n}",
                text(_mark(cgroup.new), cgroup.name, *cgroup.lines),
                shape="note",
                style="filled",
                **_new_style(cgroup.new),
            )
    for n, cgroup in enumerate(cgroups):
        for pid in cgroup.members:
            graph.edge(f"p{pid}", f"g{n}", style="dashed", color="#71717a", arrowhead="none", constraint="false")


# --- the whole picture ---


def _procs(diagram: Diagram) -> dict[int, ProcNode]:
    return {proc.pid: proc for box in diagram.boxes() for proc in box.procs}


def to_dot(diagram: Diagram, title: str = "") -> str:
    """DOT source for `diagram`, with `title` on top ("" for none)."""
    g = graphviz.Digraph("workshop", strict=False)
    g.attr(compound="true", fontname=FONT, fontsize="11", rankdir="TB", newrank="true", label=text(title), labelloc="t")
    g.attr("node", fontname=FONT, fontsize="10")
    g.attr("edge", fontname=FONT, fontsize="9")
    for box in ([diagram.pid_root] if diagram.pid_root else []) + list(diagram.orphans):
        _pid_box(g, box)
    procs = _procs(diagram)
    for pid, proc in sorted(procs.items()):
        if proc.ppid in procs:  # the process tree, as pstree draws it
            g.edge(f"p{proc.ppid}", f"p{pid}", color="#a1a1aa", arrowsize="0.6")
    for net in diagram.net:
        _net_box(g, net)
    for cable in diagram.cables:
        _cable(g, cable)
    for net in diagram.net:
        if net.tag == "host":
            continue  # a process labelled with no net namespace of its own is in the host's: no edge needed
        for pid in _focus_in(diagram, net):
            g.edge(
                f"p{pid}",
                f"n{net.inode}",
                lhead=f"cluster_net_{net.inode}",
                style="dashed",
                color="#0e7490",
                arrowsize="0.6",
                constraint="false",
            )
    for n, overlay in enumerate(diagram.overlays):
        _overlay(g, n, overlay)
    if diagram.cgroups:
        _cgroups(g, diagram.cgroups)
    gone = []
    if diagram.gone:
        gone += ["ended in this step:", *_few_a_line(diagram.gone)]
    if diagram.gone_namespaces:
        gone += ["namespaces gone:", *_few_a_line(diagram.gone_namespaces)]
    if gone:
        g.node("gone", text(*gone), shape="plaintext", fontcolor="#71717a")
    return str(g.source)


def _few_a_line(items: tuple[str, ...], n: int = 3) -> list[str]:
    return [", ".join(items[i : i + n]) for i in range(0, len(items), n)]


def _focus_in(diagram: Diagram, box: NetBox) -> list[int]:
    """The console focus processes in the network namespace `box` (linked to it by a dashed edge)."""
    return [
        proc.pid
        for b in diagram.boxes()
        for proc in b.procs
        if proc.consoles and set(proc.consoles) & set(box.consoles)
    ]
