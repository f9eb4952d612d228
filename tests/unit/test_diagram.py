"""The diagram from hand-made snapshots: the model (which box a process lands in, which namespaces a veth joins, what
is marked new), the DOT it becomes (escaped, whatever a process is called), and, where dot is installed, what dot
itself made of it (read back from `dot -Tjson`)."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from tests.ci import require_tool
from tests.diagram_layout import read_layout
from tests.ns_inodes import HOST_NS
from workshop.diagram import DiagramError, build, dot, model, svg
from workshop.engine.events import Observed
from workshop.observe.cgroups import CgroupsSnapshot, Membership, PidsCgroup, diff_cgroups
from workshop.observe.links import Link, LinksSnapshot, NetNs, diff_links
from workshop.observe.mounts import Mount, MountsSnapshot, MountTable, diff_mounts
from workshop.observe.process_diff import diff
from workshop.observe.process_tree import Proc, Snapshot
from workshop.observe.resources import ExtrasDiff

OUTER, INNER = 4026532500, 4026532501
"""Two PID namespaces, INNER nested in OUTER."""
NET_A, NET_B, MNT_A = 4026532600, 4026532601, 4026532700


def proc(
    host_pid: int, ppid: int, comm: str, nspid: tuple[int, ...] | None = None, starttime: int = 1000, **ns: int
) -> Proc:
    return Proc(
        pid=host_pid,
        ppid=ppid,
        comm=comm,
        cmdline=comm,
        nspid=(host_pid,) if nspid is None else nspid,
        ns={**HOST_NS, **ns},
        root="/",
        starttime=starttime,
        tpgid=-1,
    )


def snapshot_of(procs: Iterable[Proc], focus: Mapping[str, int]) -> Snapshot:
    by_pid = {p.pid: p for p in procs}
    return Snapshot(procs=by_pid, roots=dict(focus), focus=focus, host_ns=HOST_NS)


def nested() -> Snapshot:
    """host bash 100 -> unshare 101 -> sh 102 (PID 1 in OUTER) -> unshare 103 -> sh 104 (PID 1 in INNER)."""
    return snapshot_of(
        [
            proc(100, 1, "bash"),
            proc(101, 100, "unshare", pid_for_children=OUTER),
            proc(102, 101, "sh", (102, 1), pid=OUTER, pid_for_children=OUTER, mnt=MNT_A),
            proc(103, 102, "unshare", (103, 2), pid=OUTER, pid_for_children=INNER, mnt=MNT_A),
            proc(104, 103, "sh", (104, 3, 1), pid=INNER, pid_for_children=INNER, mnt=MNT_A, uts=4026532800),
        ],
        {"host": 100, "container": 104},
    )


def test_a_process_in_a_nested_pid_namespace_lands_in_the_nested_box_inside_its_parents() -> None:
    d = build.build(nested(), diff(None, nested()))
    host = d.pid_root
    assert host is not None and host.is_host and [p.pid for p in host.procs] == [100, 101]
    (outer,) = host.children
    assert outer.inode == OUTER and [p.pid for p in outer.procs] == [102, 103]
    (inner,) = outer.children
    assert inner.inode == INNER and inner.depth == 2 and [p.pid for p in inner.procs] == [104]
    sh = inner.procs[0]
    assert (sh.pid, sh.inner_pid, sh.consoles) == (104, 1, ("container",))
    # every process of a box is in mnt#1: said once on the box, not on each process
    assert [t.name for t in outer.shared] == ["mnt#1"] and all(p.own == () for p in outer.procs)
    assert [t.name for t in inner.shared] == ["mnt#1", "uts#1"] and sh.own == ()
    assert [t.name for t in host.procs[1].own] == [], "pid_for_children is the box below, not a label"


def test_nsenter_into_a_nested_namespace_does_not_move_its_box() -> None:
    """Processes that entered INNER from the host (their parent two levels up) do not outvote INNER's own init."""
    snap = nested()
    entered = [
        proc(pid, 100, "sh", (pid, pid - 100, pid - 103), pid=INNER, pid_for_children=INNER) for pid in (105, 106)
    ]
    snap = snapshot_of([*snap.procs.values(), *entered], snap.focus)
    d = build.build(snap, diff(None, snap))
    assert d.pid_root is not None
    (outer,) = d.pid_root.children
    (inner,) = outer.children
    assert [p.pid for p in inner.procs] == [104, 105, 106]


def test_an_unreadable_pid_namespace_is_a_box_of_its_own_and_nothing_is_drawn_twice() -> None:
    snap = nested()
    hidden = Proc(106, 104, "sh", "sh", (), {**HOST_NS, "pid": None}, None, 1000, -1)
    snap = snapshot_of([*snap.procs.values(), hidden], snap.focus)
    d = build.build(snap, diff(None, snap))
    assert [b.inode for b in d.orphans] == [None] and [p.pid for p in d.orphans[0].procs] == [106]
    drawn = [p.pid for b in d.boxes() for p in b.procs]
    assert sorted(drawn) == sorted(snap.procs), "every process once"


def test_changes_are_marked_new_processes_and_new_namespaces_only() -> None:
    before = snapshot_of([proc(100, 1, "bash"), proc(101, 100, "sleep")], {"host": 100})
    after = nested()
    after = snapshot_of(
        [*after.procs.values(), proc(101, 100, "unshare", starttime=2000, pid_for_children=OUTER)], after.focus
    )
    d = build.build(after, diff(before, after))
    assert d.pid_root is not None and not d.pid_root.new
    new = {p.pid: p.new for b in d.boxes() for p in b.procs}
    assert new == {100: False, 101: True, 102: True, 103: True, 104: True}, "101 is a reused PID: a new process"
    assert all(b.new for b in d.boxes() if not b.is_host)
    assert d.gone == ("sleep(101)",)

    (sh,) = [p for b in d.boxes() for p in b.procs if p.pid == 104]
    assert set(sh.moves) == {"new namespace mnt#1", "new namespace uts#1", "new namespace pid"}, "as the ns view says"
    assert d.gone_namespaces == ()

    again = build.build(after, diff(after, after))
    assert not any(p.new for b in again.boxes() for p in b.procs) and not any(b.new for b in again.boxes())


# --- the network ---


def veth_pair_snapshot() -> tuple[Snapshot, LinksSnapshot]:
    snap = snapshot_of(
        [proc(100, 1, "bash"), proc(200, 100, "sh", net=NET_A), proc(300, 100, "sh", net=NET_B)],
        {"host": 100, "c1": 200, "c2": 300},
    )
    lo = Link(1, "lo", "loopback", True, True, addresses=("127.0.0.1/8",))
    a = Link(2, "wsa", "veth", True, True, peer=2, peer_netnsid=0, addresses=("10.0.0.1/24", "fe80::1/64"))
    b = Link(2, "wsb", "veth", True, True, peer=2, peer_netnsid=0, addresses=("10.0.0.2/24",))
    br = Link(3, "br0", "bridge", True, True, addresses=("10.1.0.1/24",))
    port = Link(4, "wsp", "veth", True, True, master=3, peer=9, peer_netnsid=1)
    eth0 = Link(2, "eth0", "device", True, True, addresses=("192.168.1.5/24",))
    links = LinksSnapshot(
        (
            NetNs(HOST_NS["net"] or 0, 100, ("host",), (lo, eth0)),
            NetNs(NET_A, 200, ("c1",), (lo, a, br, port)),
            NetNs(NET_B, 300, ("c2",), (lo, b)),
        ),
        HOST_NS["net"],
    )
    return snap, links


def test_a_veth_pair_between_two_namespaces_is_one_cable_between_them_labelled_with_addresses() -> None:
    snap, links = veth_pair_snapshot()
    extras = ExtrasDiff(("links",), links=diff_links(None, links))
    d = build.build(snap, diff(None, snap), extras)
    veths = [c for c in d.cables if c.kind == "veth"]
    assert [(c.a, c.b) for c in veths if c.b is not None] == [((NET_A, 2), (NET_B, 2))]
    (pair,) = [c for c in veths if c.b is not None]
    assert pair.label == "10.0.0.1/24 ⇄ 10.0.0.2/24"
    (dangling,) = [c for c in veths if c.b is None]
    assert dangling.a == (NET_A, 4), "its peer lives in a namespace no lesson process is in"
    assert [(c.a, c.b) for c in d.cables if c.kind == "port"] == [((NET_A, 4), (NET_A, 3))]
    host = next(n for n in d.net if n.tag == "host")
    assert host.links == (), "of the host's links only the lesson's are drawn"
    assert [n.tag for n in d.net] == ["host", "net#1", "net#2"]
    assert [n.new for n in d.net] == [False, True, True], "the consoles' first sight: the diff says created"
    later = build.build(snap, diff(snap, snap), ExtrasDiff(("links",), links=diff_links(links, links)))
    assert not any(n.new for n in later.net) and not any(c.new for c in later.cables)
    assert d.pid_root is not None and d.pid_root.shared == ()
    assert {p.pid: [t.name for t in p.own] for p in d.pid_root.procs} == {100: [], 200: ["net#1"], 300: ["net#2"]}

    text = dot.to_dot(d)
    assert f"l{NET_A}_2 -> l{NET_B}_2" in text and "subgraph cluster_net_4026532600" in text
    assert "10.0.0.1/24 ⇄ 10.0.0.2/24" in text


def test_a_link_new_in_the_step_is_marked() -> None:
    snap, links = veth_pair_snapshot()
    earlier = LinksSnapshot(
        tuple(
            NetNs(n.ns, n.pid, n.consoles, tuple(x for x in n.links or () if x.kind != "veth"))
            for n in links.namespaces
        ),
        links.host_ns,
    )
    extras = ExtrasDiff(("links",), links=diff_links(earlier, links))
    d = build.build(snap, diff(snap, snap), extras)
    new = {(link.netns, link.name): link.new for n in d.net for link in n.links}
    assert new[(NET_A, "wsa")] and new[(NET_B, "wsb")] and not new[(NET_A, "lo")]
    assert all(c.new for c in d.cables if c.kind == "veth")


# --- overlay and cgroups ---


def test_an_overlay_is_drawn_as_its_layers_and_cgroups_with_limit_count_and_members() -> None:
    snap = snapshot_of([proc(100, 1, "bash"), proc(200, 100, "sh", mnt=MNT_A)], {"host": 100, "container": 200})
    on_host = Mount(7, "/w/merged", "overlay", "overlay", "/", "rw", "private", lower="/w/l2:/w/l1", upper="/w/up")
    as_root = Mount(9, "/", "overlay", "overlay", "/", "rw", "private", lower="/w/l2:/w/l1", upper="/w/up")
    mounts = MountsSnapshot(
        (
            MountTable(HOST_NS["mnt"] or 0, ("host",), 100, (on_host,)),
            MountTable(MNT_A, ("container",), 200, (as_root,)),
        ),
        HOST_NS["mnt"],
        (),
    )
    before = CgroupsSnapshot(Path("/cg"), True, (), ())
    cg = CgroupsSnapshot(
        Path("/cg"), True, (Membership("container", 200, "/workshop/ws1"),), (PidsCgroup("ws1", "10", 3, 2, 3),)
    )
    mounts_before = MountsSnapshot(
        (MountTable(HOST_NS["mnt"] or 0, ("host",), 100, ()), MountTable(MNT_A, ("container",), 200, ())),
        HOST_NS["mnt"],
        (),
    )
    extras = ExtrasDiff(
        ("mounts", "cgroups"), mounts=diff_mounts(mounts_before, mounts), cgroups=diff_cgroups(before, cg)
    )
    d = build.build(snap, diff(None, snap), extras)
    # one filesystem, seen at its mount point from the host and as / in the container that pivoted into it
    seen = (("/w/merged", ("host",)), ("/", ("container",)))
    assert d.overlays == (model.Overlay(("/w/l2", "/w/l1"), "/w/up", seen, (200,), True),)
    (group,) = d.cgroups
    assert group.name == "ws1" and group.members == (200,) and group.new
    assert group.lines[0] == "pids 3 / max 10" and "forks refused 2 (+2)" in group.lines
    text = dot.to_dot(d)
    assert "subgraph cluster_overlay_0" in text and "upper: writable" in text and "lower 2: read-only" in text
    assert "p200 -> g0" in text and "p200 -> o0_merged" in text


# --- escaping ---


@pytest.mark.parametrize("comm", ["<script>", '"a b"', "a\\", "a\\nb", "x\ny", "<b>x</b>", "{ } ; -> [", "\udcff"])
def test_whatever_a_process_is_called_is_a_label_never_dot(comm: str) -> None:
    snap = snapshot_of([proc(100, 1, "bash"), proc(101, 100, comm)], {"host": 100})
    text = dot.to_dot(build.build(snap, diff(None, snap)))
    for line in text.splitlines():
        if line.strip().startswith("p101 "):
            label = line.split("label=", 1)[1]
            assert label.startswith('"'), f"a quoted string, never an HTML-like label: {line}"
    if shutil.which("dot"):
        layout = read_layout(svg.render(text, "json"))
        assert layout.home["p101"] == f"cluster_pid_{HOST_NS['pid']}", "dot parsed it: the node is where it belongs"
        svg_text = svg.render_svg(text)
        ET.fromstring(svg_text)  # well-formed XML whatever the name
        assert "<script" not in svg_text


# --- dot itself ---


def test_dot_puts_every_process_in_the_cluster_of_its_pid_namespace_nested_as_the_namespaces() -> None:
    require_tool("dot")
    snap, links = veth_pair_snapshot()
    snap = snapshot_of([*snap.procs.values(), *nested().procs.values()], {**snap.focus, "container": 104})
    extras = ExtrasDiff(("links",), links=diff_links(None, links))
    layout = read_layout(svg.render(dot.to_dot(build.build(snap, diff(None, snap), extras)), "json"))
    host = f"cluster_pid_{HOST_NS['pid']}"
    assert layout.home["p104"] == f"cluster_pid_{INNER}" and layout.home["p102"] == f"cluster_pid_{OUTER}"
    assert layout.parent[f"cluster_pid_{INNER}"] == f"cluster_pid_{OUTER}"
    assert layout.parent[f"cluster_pid_{OUTER}"] == host and layout.parent[host] is None
    assert len(layout.between(f"l{NET_A}_2", f"l{NET_B}_2")) == 1
    assert layout.home[f"l{NET_A}_2"] == f"cluster_net_{NET_A}" and layout.home[f"l{NET_B}_2"] == f"cluster_net_{NET_B}"


def test_the_svg_is_self_contained() -> None:
    require_tool("dot")
    snap = nested()
    out = svg.svg_for(Observed(snap, diff(None, snap)), title="a <title> & more")
    root = ET.fromstring(out)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert out.lstrip().startswith("<svg") and "<!DOCTYPE" not in out and "<!--" not in out
    assert "url(" not in out and "<image" not in out and "href" not in out and "@import" not in out
    assert "a &lt;title&gt; &amp; more" in out


def test_diagrams_on_one_page_share_no_element_id() -> None:
    require_tool("dot")
    snap = nested()
    first, second = (svg.svg_for(Observed(snap, diff(None, snap))) for _ in range(2))
    ids = [set(re.findall(r'\sid="([^"]+)"', one)) for one in (first, second)]
    assert ids[0] and ids[1] and not ids[0] & ids[1]


def test_a_missing_dot_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(svg, "DOT", "/nonexistent/dot")
    with pytest.raises(DiagramError, match=r"dot is not installed \(apt-get install graphviz\)"):
        svg.render_svg("digraph { a }")


def test_a_dot_failure_is_a_clear_error() -> None:
    require_tool("dot")
    with pytest.raises(DiagramError, match=r"dot failed: .*syntax error"):
        svg.render_svg("digraph { a -> }")
