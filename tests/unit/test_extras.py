"""The views a lesson asks for in its front matter: mounts, cgroups and links, read from fixture trees (and, as root,
from the real kernel), diffed, and rendered as plain text at 100 columns."""

from __future__ import annotations

import asyncio
import io
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest
from rich.console import Console, RenderableType

from tests.ns_inodes import HOST_NS, NEW_MNT
from workshop.engine import cgroupfs
from workshop.engine.events import Event, Observed
from workshop.engine.session import LessonSession
from workshop.environment import Environment
from workshop.lesson.model import Lesson
from workshop.observe import process_diff, process_tree
from workshop.observe.cgroups import diff_cgroups, read_cgroups
from workshop.observe.common import Mark, Scope
from workshop.observe.links import Link, LinkReader, LinksSnapshot, diff_links, read_links
from workshop.observe.mounts import MountsSnapshot, diff_mounts, parse_mounts, read_mounts
from workshop.observe.process_tree import Proc, Snapshot
from workshop.observe.resources import CgroupPlace, diff_extras, read_extras
from workshop.ui import resource_views
from workshop.ui.render import Renderer
from workshop.ui.theme import THEME

TOOL = 100  # the tool's own process: the reference for "host"
NEW_NET = 4026532410


def render(renderable: RenderableType, width: int = 100) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None, theme=THEME).print(renderable)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())


def proc(pid: int, ns: Mapping[str, int | None] | None = None) -> Proc:
    return Proc(pid, 1, "sh", "sh", (pid,), {**HOST_NS, **(ns or {})}, "/", 1000, -1)


def snapshot_of(procs: Iterable[Proc], focus: Mapping[str, int]) -> Snapshot:
    by_pid = {p.pid: p for p in procs}
    return Snapshot(by_pid, dict(focus), dict(focus), HOST_NS)


def host_and_container(container_ns: Mapping[str, int | None] | None = None) -> Snapshot:
    return snapshot_of([proc(4200), proc(4242, container_ns)], {"host": 4200, "container": 4242})


# --- mounts: parsing ---

HOST_MOUNTINFO = """\
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
22 27 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
23 27 0:22 / /sys rw,relatime shared:7 - sysfs sysfs rw
40 27 0:50 / /mnt/my\\040disk rw,relatime shared:30 master:2 - tmpfs none rw,size=4k
41 27 254:0 /srv/home /home ro,relatime - ext4 /dev/vda rw
"""

OVERLAY1 = (
    "60 27 0:60 / /x/merged1 rw,relatime shared:40 - overlay overlay "
    "rw,lowerdir=/x/rootfs,upperdir=/x/my\\054upper1,workdir=/x/work1,uuid=on\n"
)
OVERLAY2 = (
    "61 27 0:61 / /x/merged2 rw,relatime - overlay overlay rw,lowerdir=/x/rootfs,upperdir=/x/upper2,workdir=/x/work2\n"
)


def test_mountinfo_is_parsed_with_escapes_optional_fields_and_overlay_dirs() -> None:
    mounts = {m.target: m for m in parse_mounts(HOST_MOUNTINFO + "garbage line\n" + OVERLAY1)}

    assert list(mounts) == ["/", "/proc", "/sys", "/mnt/my disk", "/home", "/x/merged1"]  # the garbage is skipped
    disk = mounts["/mnt/my disk"]  # \040 is a space; the optional fields sit before " - "
    assert (disk.fstype, disk.source, disk.propagation) == ("tmpfs", "none", "shared,slave")
    assert mounts["/home"].root == "/srv/home" and mounts["/home"].propagation == "private"
    overlay = mounts["/x/merged1"]
    assert (overlay.lower, overlay.upper, overlay.work) == ("/x/rootfs", "/x/my,upper1", "/x/work1")  # \054: ','
    assert (
        resource_views.mount_text(overlay)
        == "overlay on /x/merged1 (lower=/x/rootfs, upper=/x/my,upper1, work=/x/work1)"
    )
    assert resource_views.mount_text(mounts["/home"]) == "ext4 on /home (/dev/vda[/srv/home], ro)"
    assert resource_views.mount_text(mounts["/proc"]) == "proc on /proc"


# --- mounts: what changed ---


def fake_proc(root: Path, files: Mapping[str, str]) -> Path:
    """A /proc-like tree holding just the files the extra views read: `{"4200/mountinfo": "..."}`."""
    for name, text in files.items():
        path = root / "proc" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "proc"


def mounts_text(before: MountsSnapshot | None, after: MountsSnapshot, width: int = 100) -> str:
    return render(resource_views.mounts_view(diff_mounts(before, after)), width)


def test_the_first_observation_shows_only_a_count_per_mount_namespace(tmp_path: Path) -> None:
    proc_root = fake_proc(tmp_path, {"4200/mountinfo": HOST_MOUNTINFO, "4242/mountinfo": HOST_MOUNTINFO})

    text = mounts_text(None, read_mounts(proc_root, host_and_container(), TOOL))

    assert text.splitlines() == [
        resource_views.MOUNTS_HEADING,
        f"mount namespace {HOST_NS['mnt']} (host, container): 5 mounts",  # consoles sharing it, listed together
    ]


def test_a_new_overlay_appears_with_its_upper_dir_and_a_removed_one_shows_as_gone(tmp_path: Path) -> None:
    snap = host_and_container()
    first = read_mounts(fake_proc(tmp_path / "1", {"4200/mountinfo": HOST_MOUNTINFO + OVERLAY1}), snap, TOOL)
    second = read_mounts(fake_proc(tmp_path / "2", {"4200/mountinfo": HOST_MOUNTINFO + OVERLAY2}), snap, TOOL)

    text = mounts_text(first, second)

    assert f"mount namespace {HOST_NS['mnt']} (host, container): 6 mounts:" in text
    assert "  + overlay on /x/merged2 (lower=/x/rootfs, upper=/x/upper2, work=/x/work2)" in text
    assert "  - overlay on /x/merged1 (lower=/x/rootfs, upper=/x/my,upper1, work=/x/work1)" in text
    assert "/proc" not in text  # what did not change is not shown
    assert mounts_text(second, second).endswith("6 mounts, no change")


def test_a_remount_read_only_is_marked_as_changed(tmp_path: Path) -> None:
    snap = host_and_container()
    rw = read_mounts(fake_proc(tmp_path / "1", {"4200/mountinfo": HOST_MOUNTINFO}), snap, TOOL)
    ro = HOST_MOUNTINFO.replace("/sys rw,relatime shared:7", "/sys ro,relatime")
    after = read_mounts(fake_proc(tmp_path / "2", {"4200/mountinfo": ro}), snap, TOOL)

    [change] = diff_mounts(rw, after).reports[0].changes

    assert change.mark is Mark.CHANGED
    line = resource_views.mount_change_line(change).plain
    assert line == "  ~ sysfs on /sys (ro)  options rw,relatime → ro,relatime  propagation shared → private"


CONTAINER_MOUNTINFO = """\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
122 27 0:21 / /proc rw,relatime - proc proc rw
140 27 0:50 / /mnt/my\\040disk rw,relatime - tmpfs none rw,size=4k
141 27 254:0 /srv/home /home ro,relatime - ext4 /dev/vda rw
150 27 0:70 / /x/merged1/proc rw,relatime - proc proc rw
151 27 0:71 / /tmp rw,relatime - tmpfs scratch rw
"""


def test_a_new_mount_namespace_lists_only_its_differences_from_the_hosts(tmp_path: Path) -> None:
    proc_root = fake_proc(tmp_path, {"4200/mountinfo": HOST_MOUNTINFO, "4242/mountinfo": CONTAINER_MOUNTINFO})
    snap = host_and_container({"mnt": NEW_MNT})
    host_only = read_mounts(proc_root, snapshot_of([proc(4200)], {"host": 4200}), TOOL)

    text = mounts_text(host_only, read_mounts(proc_root, snap, TOOL))

    assert text.splitlines()[1:] == [
        f"mount namespace {HOST_NS['mnt']} (host): 5 mounts, no change",
        f"mount namespace {NEW_MNT} (container): 6 mounts, new — how it differs from the host's:",
        "  + proc on /x/merged1/proc",
        "  + tmpfs on /tmp (scratch)",
        "  - sysfs on /sys",
    ]


def test_a_long_list_of_differences_is_cut_after_fifteen_lines(tmp_path: Path) -> None:
    many = "".join(f"{200 + i} 27 0:{90 + i} / /many/{i} rw - tmpfs none rw\n" for i in range(40))
    proc_root = fake_proc(tmp_path, {"4200/mountinfo": HOST_MOUNTINFO, "4242/mountinfo": HOST_MOUNTINFO + many})

    text = mounts_text(None, read_mounts(proc_root, host_and_container({"mnt": NEW_MNT}), TOOL))

    assert len([line for line in text.splitlines() if line.startswith("  + tmpfs on /many/")]) == 15
    assert text.endswith("  … and 25 more")


def test_a_chrooted_container_seeing_none_of_the_hosts_mounts_gets_one_summary_line(tmp_path: Path) -> None:
    # mountinfo lists only what is below the process's root, with paths as it sees them
    chrooted = OVERLAY1.replace("/x/merged1", "/") + "150 60 0:70 / /proc rw,relatime - proc proc rw\n"
    proc_root = fake_proc(tmp_path, {"4200/mountinfo": HOST_MOUNTINFO, "4242/mountinfo": chrooted})

    text = mounts_text(None, read_mounts(proc_root, host_and_container({"mnt": NEW_MNT}), TOOL))

    assert text.splitlines()[2:] == [
        f"mount namespace {NEW_MNT} (container): 2 mounts, new — how it differs from the host's:",
        "  + overlay on / (lower=/x/rootfs, upper=/x/my,upper1, work=/x/work1)",
        "  - 4 of the host's mounts are not here: /, /sys, /mnt/my disk, /home",
    ]


def test_an_unreadable_mount_table_shows_a_question_mark(tmp_path: Path) -> None:
    proc_root = fake_proc(tmp_path, {"4200/mountinfo": HOST_MOUNTINFO})  # 4242 exited while we read
    snap = host_and_container({"mnt": NEW_MNT})
    unreadable_link = snapshot_of([proc(4200), proc(4242, {"mnt": None})], {"host": 4200, "container": 4242})

    text = mounts_text(None, read_mounts(proc_root, snap, TOOL))
    text2 = mounts_text(None, read_mounts(proc_root, unreadable_link, TOOL))

    assert f"mount namespace {NEW_MNT} (container): ? (cannot read /proc/4242/mountinfo)" in text
    assert "container: mount namespace ? (its namespace link cannot be read)" in text2


# --- cgroups ---

V1_CGROUP = """\
9:name=systemd:/
8:pids:/workshop/ws1a2b3c
4:memory:/user.slice
0::/
"""
V2_CGROUP = "0::/workshop/ws1a2b3c\n"


def cgroup_tree(
    tmp_path: Path,
    v2: bool,
    *,
    max_: str = "5",
    current: int = 2,
    refused: int = 0,
    procs: Iterable[int] = (4242, 4241),
) -> tuple[Path, Path]:
    """A fake /sys/fs/cgroup with one lesson cgroup under the tool's parent, and a /proc for host and container."""
    parent = tmp_path / ("sys/fs/cgroup/workshop" if v2 else "sys/fs/cgroup/pids/workshop")
    cg = parent / "ws1a2b3c"
    cg.mkdir(parents=True, exist_ok=True)
    (cg / "pids.max").write_text(f"{max_}\n")
    (cg / "pids.current").write_text(f"{current}\n")
    events = f"max {refused}\n" if not v2 else f"max {refused}\nmax.imposed {refused}\n"
    (cg / "pids.events").write_text(events)
    (cg / "cgroup.procs").write_text("".join(f"{p}\n" for p in procs))
    host = "0::/\n" if v2 else V1_CGROUP.replace("/workshop/ws1a2b3c", "/")
    proc_root = fake_proc(tmp_path, {"4200/cgroup": host, "4242/cgroup": V2_CGROUP if v2 else V1_CGROUP})
    return proc_root, parent


@pytest.mark.parametrize("v2", [False, True], ids=["v1", "v2"])
def test_cgroups_show_membership_limit_count_and_refusals(tmp_path: Path, v2: bool) -> None:
    proc_root, parent = cgroup_tree(tmp_path, v2)

    now = read_cgroups(proc_root, host_and_container(), parent, v2)

    assert [(m.console, m.path) for m in now.members] == [("host", "/"), ("container", "/workshop/ws1a2b3c")]
    [cg] = now.cgroups
    assert (cg.name, cg.max, cg.current, cg.refused, cg.procs) == ("ws1a2b3c", "5", 2, 0, 2)
    text = render(resource_views.cgroups_view(diff_cgroups(None, now)))
    assert text.splitlines()[0] == f"{resource_views.CGROUPS_HEADING} (cgroup {'v2' if v2 else 'v1'})"
    assert f"the lesson's cgroups live under {parent}" in render(
        resource_views.cgroups_view(diff_cgroups(None, now)), 300
    )
    assert "  container  pid 4242 in /workshop/ws1a2b3c" in text
    [row] = [line for line in text.splitlines() if line.startswith("ws1a2b3c")]
    assert row.split() == ["ws1a2b3c", "5", "2", "0", "2"]
    assert "●" not in text  # the first observation marks nothing


def test_more_refused_forks_and_a_new_limit_are_marked_as_the_change(tmp_path: Path) -> None:
    proc_root, parent = cgroup_tree(tmp_path, v2=False, max_="max", refused=0)
    before = read_cgroups(proc_root, host_and_container(), parent, False)
    cgroup_tree(tmp_path, v2=False, max_="5", current=5, refused=3, procs=range(5))
    after = read_cgroups(proc_root, host_and_container(), parent, False)

    d = diff_cgroups(before, after)
    text = render(resource_views.cgroups_view(d))

    [row] = d.rows
    assert (row.max_was, row.refused_more) == ("max", 3)
    assert "5 ● was max" in text
    assert "3 ● +3" in text
    assert text.splitlines()[-1] == "ws1a2b3c: the kernel refused 3 forks since the previous step (pids.max 5)"
    assert diff_cgroups(after, after).rows[0].refused_more == 0  # no news is no mark


def test_a_console_moving_into_the_cgroup_and_a_removed_cgroup_are_marked(tmp_path: Path) -> None:
    proc_root, parent = cgroup_tree(tmp_path, v2=True)
    (proc_root / "4242/cgroup").write_text("0::/\n")
    before = read_cgroups(proc_root, host_and_container(), parent, True)
    (proc_root / "4242/cgroup").write_text(V2_CGROUP)
    (parent / "ws1a2b3c" / "pids.max").unlink()  # the pids controller is not enabled for it: no pids.max
    (parent / "ws1a2b3c" / "child").mkdir()
    (tmp_path / "gone").mkdir()
    after = read_cgroups(proc_root, host_and_container(), parent, True)

    text = render(resource_views.cgroups_view(diff_cgroups(before, after)))

    assert "container  pid 4242 in /workshop/ws1a2b3c ● moved (was /)" in text
    [row] = [line for line in text.splitlines() if line.startswith("ws1a2b3c ")]
    assert row.split()[:2] == ["ws1a2b3c", "?"]
    assert "+ ws1a2b3c/child" in text
    removed = render(
        resource_views.cgroups_view(
            diff_cgroups(after, read_cgroups(proc_root, host_and_container(), tmp_path / "gone", True))
        )
    )
    assert "- ws1a2b3c: removed" in removed and "- ws1a2b3c/child: removed" in removed


def test_without_a_pids_controller_the_cgroups_view_says_why(tmp_path: Path) -> None:
    place = CgroupPlace(None, error="no pids controller: cgroup v1: no hierarchy has the pids controller")

    snap = read_extras(("cgroups",), host_and_container(), tmp_path, cgroup_place=lambda: place)

    text = render(resource_views.extra_views(diff_extras(None, snap))[0])
    assert "cgroups: unavailable (no pids controller: cgroup v1: no hierarchy has the pids controller)" in text


# --- two learners on one machine: each view keeps to its own session ---

MINE, THEIRS = "1a2b3c", "4d5e6f"
"""Two sessions sharing a state dir, as learners on a trainer's VM share /var/lib/workshop."""


def two_learners(tmp_path: Path) -> tuple[Scope, Path, Path]:
    """This learner's scope, its work dir, and the other learner's work dir beside it."""
    sessions = tmp_path / "state" / "sessions"
    for session in (MINE, THEIRS):
        (sessions / session).mkdir(parents=True)
    return Scope(sessions / MINE, MINE), sessions / MINE, sessions / THEIRS


def overlay_line(mount_id: int, workdir: Path, n: int = 1) -> str:
    return (
        f"{mount_id} 27 0:{mount_id} / {workdir}/merged{n} rw,relatime - overlay overlay "
        f"rw,lowerdir={workdir}/rootfs,upperdir={workdir}/upper{n},workdir={workdir}/work{n}\n"
    )


def netns_line(mount_id: int, name: str) -> str:
    """What `ip netns add NAME` mounts: the namespace's file, bound to /run/netns/NAME."""
    return f"{mount_id} 27 0:4 net:[4026532{mount_id}] /run/netns/{name} rw - nsfs nsfs rw\n"


def test_a_session_owns_its_work_dir_and_what_carries_its_id_and_sees_the_others_beside_it(tmp_path: Path) -> None:
    scope, mine, theirs = two_learners(tmp_path)
    others = scope.theirs()

    assert scope.owns(f"{mine}/merged1") and scope.owns(str(mine))
    assert scope.owns(f"ws{MINE}") and scope.owns(f"ws{MINE}-c1") and scope.owns(f"/run/netns/box-{MINE}")
    assert not scope.owns(f"/x/ff{MINE}") and not scope.owns(f"{mine}2/merged1")  # a longer hex id, a longer name
    assert others(f"{theirs}/merged1") and others(f"/run/netns/ws{THEIRS}-c1") and others(f"ws{THEIRS}")
    assert not others("/proc") and not others(f"{mine}/merged1") and not others("/media/usb")
    assert not others(str(mine.parent))  # the sessions dir is every session's


def test_another_learners_mounts_on_the_host_are_never_shown_nor_counted(tmp_path: Path) -> None:
    scope, mine, theirs = two_learners(tmp_path)
    snap = host_and_container()  # both consoles in the host's mount namespace, like an overlay lesson's host
    before = HOST_MOUNTINFO + overlay_line(60, theirs)
    after = (
        before
        + overlay_line(61, theirs, 2)  # the other learner goes on with their lesson
        + netns_line(62, f"ws{THEIRS}-c1")
        + overlay_line(63, mine)  # what this learner's step did
        + netns_line(64, f"ws{MINE}-sw")
        + "65 27 8:17 / /media/usb rw - vfat /dev/sdb1 rw\n"  # and the machine's own business
    )
    first = read_mounts(fake_proc(tmp_path / "1", {"4200/mountinfo": before}), snap, TOOL, scope)
    second = read_mounts(fake_proc(tmp_path / "2", {"4200/mountinfo": after}), snap, TOOL, scope)

    text = mounts_text(None, first, 600) + "\n" + mounts_text(first, second, 600)

    assert THEIRS not in text
    assert text.splitlines()[1] == f"mount namespace {HOST_NS['mnt']} (host, container): 5 mounts"
    assert text.splitlines()[3:] == [
        f"mount namespace {HOST_NS['mnt']} (host, container): 8 mounts:",
        f"  + overlay on {mine}/merged1 (lower={mine}/rootfs, upper={mine}/upper1, work={mine}/work1)",
        f"  + nsfs on /run/netns/ws{MINE}-sw (nsfs[net:[402653264]])",
    ]
    # without a session (a test reading the machine), everything is shown, as before
    assert f"{theirs}/merged2" in mounts_text(first, read_mounts(tmp_path / "2" / "proc", snap, TOOL), 300)


def test_a_learners_new_mount_namespace_differs_from_the_host_by_what_they_did_only(tmp_path: Path) -> None:
    scope, mine, theirs = two_learners(tmp_path)
    # the container was copied from the host while the other learner had merged1 mounted; since then they
    # unmounted it and mounted merged2, which the container never got
    host = HOST_MOUNTINFO + overlay_line(61, theirs, 2)
    container = (
        CONTAINER_MOUNTINFO.replace("/x/merged1", f"{mine}/rootfs")
        + overlay_line(160, theirs)
        + "161 27 0:23 / /sys rw,relatime - sysfs sysfs rw\n"
    )
    proc_root = fake_proc(tmp_path, {"4200/mountinfo": host, "4242/mountinfo": container})

    text = mounts_text(None, read_mounts(proc_root, host_and_container({"mnt": NEW_MNT}), TOOL, scope), 300)

    assert text.splitlines()[2:] == [
        f"mount namespace {NEW_MNT} (container): 7 mounts, new — how it differs from the host's:",
        f"  + proc on {mine}/rootfs/proc",
        "  + tmpfs on /tmp (scratch)",
    ]


def test_in_a_learners_own_namespace_their_changes_show_and_what_propagates_from_another_does_not(
    tmp_path: Path,
) -> None:
    scope, _, theirs = two_learners(tmp_path)
    snap = host_and_container({"mnt": NEW_MNT})
    files = {"4200/mountinfo": HOST_MOUNTINFO, "4242/mountinfo": HOST_MOUNTINFO}  # / is shared, as systemd has it
    before = read_mounts(fake_proc(tmp_path / "1", files), snap, TOOL, scope)
    private_root = HOST_MOUNTINFO.replace("/ / rw,relatime shared:1", "/ / rw,relatime")  # `mount --make-rprivate /`
    leaked = f"70 27 0:70 / {theirs}/shared/leak rw - tmpfs leak rw\n"  # the other learner's propagation lesson
    files = {"4200/mountinfo": HOST_MOUNTINFO + leaked, "4242/mountinfo": private_root + leaked}
    files["4242/mountinfo"] += "71 27 0:71 / /mnt rw - tmpfs rootless rw\n"  # a mount of the learner's own
    after = read_mounts(fake_proc(tmp_path / "2", files), snap, TOOL, scope)

    text = mounts_text(before, after, 300)

    assert THEIRS not in text
    assert text.splitlines()[1:] == [
        f"mount namespace {HOST_NS['mnt']} (host): 5 mounts, no change",
        f"mount namespace {NEW_MNT} (container): 6 mounts:",
        "  ~ ext4 on / (/dev/vda)  propagation shared → private",
        "  + tmpfs on /mnt (rootless)",
    ]


def test_a_learners_cgroups_view_lists_their_own_cgroups_only(tmp_path: Path) -> None:
    scope, _, _ = two_learners(tmp_path)
    proc_root, parent = cgroup_tree(tmp_path, v2=True)  # this learner's ws1a2b3c, the container in it
    for name in (f"ws{MINE}/child", f"ws{MINE}-c1", f"ws{THEIRS}", f"ws{THEIRS}-c1"):
        (parent / name).mkdir()
    before = read_cgroups(proc_root, host_and_container(), parent, True, scope)
    (parent / f"ws{THEIRS}-c1").rmdir()
    (parent / f"ws{THEIRS}-c2").mkdir()
    after = read_cgroups(proc_root, host_and_container(), parent, True, scope)

    text = render(resource_views.cgroups_view(diff_cgroups(before, after)))

    assert [c.name for c in after.cgroups] == [f"ws{MINE}", f"ws{MINE}-c1", f"ws{MINE}/child"]
    assert THEIRS not in text and "removed" not in text and "+ " not in text
    assert {c.name for c in read_cgroups(proc_root, host_and_container(), parent, True).cgroups} >= {
        f"ws{THEIRS}",
        f"ws{THEIRS}-c2",
    }  # without a session, every cgroup below the tool's parent


# --- links, replayed ---


LO = Link(1, "lo", "loopback", up=True, carrier=True, addresses=("127.0.0.1/8", "::1/128"))
ETH0 = Link(2, "eth0", "device", up=True, carrier=True, addresses=("192.168.1.5/24",))


def fake_reader(namespaces: Mapping[str | None, tuple[Link, ...]]) -> LinkReader:
    def read(ns_path: str | None) -> tuple[Link, ...]:
        if ns_path not in namespaces:
            raise FileNotFoundError(2, "No such file or directory", ns_path)
        return namespaces[ns_path]

    return read


def links_of(proc_root: Path, snap: Snapshot, namespaces: Mapping[str | None, tuple[Link, ...]]) -> LinksSnapshot:
    return read_links(proc_root, snap, fake_reader(namespaces))


def test_links_per_namespace_with_a_veth_pair_across_them(tmp_path: Path) -> None:
    snap = host_and_container({"net": NEW_NET})
    container = f"{tmp_path}/4242/ns/net"
    first = links_of(tmp_path, snap, {None: (LO, ETH0), container: (Link(1, "lo", "loopback", False, False),)})
    veth_host = Link(7, "veth0", "veth", up=True, carrier=False, master=3, peer=2, peer_netnsid=0)
    bridge = Link(3, "br0", "bridge", up=True, carrier=False, addresses=("10.0.0.1/24",))
    eth_container = Link(2, "eth0", "veth", up=False, carrier=False, peer=7, peer_netnsid=0)
    lo_up = Link(1, "lo", "loopback", True, True, addresses=("127.0.0.1/8",))
    second = links_of(tmp_path, snap, {None: (LO, ETH0, bridge, veth_host), container: (lo_up, eth_container)})

    first_text = render(resource_views.links_view(diff_links(None, first)))
    text = render(resource_views.links_view(diff_links(first, second)))

    assert first_text.splitlines()[1:] == [
        f"host — netns {HOST_NS['net']}: 2 links (lo, eth0)",  # the host's own: a count, not its whole list
        f"container — netns {NEW_NET}: 1 link, new",
        "    1: lo  loopback  DOWN",
    ]
    assert text.splitlines()[1:] == [
        f"host — netns {HOST_NS['net']}: 4 links; changed:",  # only what the lesson added, not lo and eth0
        "  + 3: br0    bridge  UP, no carrier  10.0.0.1/24",
        "  + 7: veth0  veth    UP, no carrier  master br0, peer eth0 in container",
        f"container — netns {NEW_NET}: 2 links",  # a lesson's namespace: every link
        "  ~ 1: lo    loopback  UP    +127.0.0.1/8  ● DOWN → UP",
        "  + 2: eth0  veth      DOWN  peer veth0 in host",
    ]


def test_a_link_gone_and_a_namespace_no_longer_used_are_said(tmp_path: Path) -> None:
    snap = host_and_container({"net": NEW_NET})
    container = f"{tmp_path}/4242/ns/net"
    wsx0 = Link(5, "wsx0", "veth", False, False, peer=6)
    before = links_of(tmp_path, snap, {None: (LO, ETH0, wsx0), container: (LO,)})
    after = links_of(tmp_path, host_and_container(), {None: (LO, ETH0)})

    text = render(resource_views.links_view(diff_links(before, after)))

    assert f"host, container — netns {HOST_NS['net']}: 2 links; changed:" in text
    assert " ".join(text.splitlines()[2].split()) == "- 5: wsx0 veth DOWN peer if6"
    assert f"netns {NEW_NET} (pid 4242)" not in text
    assert f"container — netns {NEW_NET}: no lesson process uses it any more" in text


def test_a_rename_a_new_bridge_master_and_a_removed_address_are_noted(tmp_path: Path) -> None:
    snap = host_and_container({"net": NEW_NET})
    container = f"{tmp_path}/4242/ns/net"
    bridge = Link(3, "br0", "bridge", True, True)
    before = links_of(
        tmp_path,
        snap,
        {None: (LO,), container: (bridge, Link(4, "veth1", "device", True, True, addresses=("10.0.0.9/24",)))},
    )
    port = Link(4, "port1", "device", True, True, master=3)
    after = links_of(tmp_path, snap, {None: (LO,), container: (bridge, port)})

    text = render(resource_views.links_view(diff_links(before, after)))

    assert "  ~ 4: port1  device  UP  master br0  ● renamed from veth1; master br0; - 10.0.0.9/24" in text


def test_links_that_cannot_be_read_show_why_and_never_raise(tmp_path: Path) -> None:
    snap = host_and_container({"net": NEW_NET})
    partly = links_of(tmp_path, snap, {None: (LO,)})  # the container exited between snapshot and netlink

    def in_a_loop(ns_path: str | None) -> tuple[Link, ...]:
        raise RuntimeError("cannot run the sync API inside an event loop")

    nothing = read_links(tmp_path, snap, in_a_loop)

    assert f"container — netns {NEW_NET}: ? (No such file or directory)" in render(
        resource_views.links_view(diff_links(None, partly))
    )
    assert "links: unavailable (cannot run the sync API inside an event loop)" in render(
        resource_views.links_view(diff_links(None, nothing))
    )


def test_a_netns_no_console_is_in_is_labelled_by_its_inode_and_a_process(tmp_path: Path) -> None:
    helper = proc(4300, {"net": NEW_NET})  # `ip netns exec` in the background, say
    snap = snapshot_of([proc(4200), helper], {"host": 4200})

    text = render(
        resource_views.links_view(
            diff_links(None, links_of(tmp_path, snap, {None: (LO,), f"{tmp_path}/4300/ns/net": (LO,)}))
        )
    )

    assert f"netns {NEW_NET} (pid 4300): 1 link, new" in text


# --- rendering and wiring ---


def test_the_extra_views_follow_the_lessons_order_each_under_its_heading(tmp_path: Path) -> None:
    proc_root, parent = cgroup_tree(tmp_path, v2=False)
    fake_proc(tmp_path, {"4200/mountinfo": HOST_MOUNTINFO, "4242/mountinfo": HOST_MOUNTINFO})
    snap = host_and_container()

    now = read_extras(
        ("links", "mounts", "cgroups"),
        snap,
        proc_root,
        reference_pid=TOOL,
        cgroup_place=lambda: CgroupPlace(parent, v2=False),
        link_reader=fake_reader({None: (LO,)}),
    )
    text = "\n".join(render(view) for view in resource_views.extra_views(diff_extras(None, now)))

    headings = [line for line in text.splitlines() if line.startswith(("links —", "mounts —", "cgroups —"))]
    assert [h.split()[0] for h in headings] == ["links", "mounts", "cgroups"]


def test_the_renderer_prints_the_extras_after_pstree_and_namespaces(tmp_path: Path) -> None:
    proc_root = fake_proc(tmp_path, {"4200/mountinfo": HOST_MOUNTINFO})
    snap = snapshot_of([proc(4200)], {"host": 4200})
    out = io.StringIO()
    renderer = Renderer(Environment(stdout=out, color=False, width=100))

    renderer(Observed(snap, process_diff.diff(None, snap)))
    renderer(
        Observed(snap, process_diff.diff(None, snap), diff_extras(None, read_extras(("mounts",), snap, proc_root)))
    )

    without, with_mounts = out.getvalue().split("pstree")[1:]
    assert "mounts —" not in without
    assert with_mounts.index("namespaces") < with_mounts.index("mounts —") < with_mounts.index("5 mounts")


def lesson(observe: tuple[str, ...]) -> Lesson:
    return Lesson("x", "X", "", (), Path("/nonexistent/lesson.md"), observe=observe)


def test_the_session_reads_extras_only_for_the_views_the_lesson_lists(tmp_path: Path) -> None:
    seen: list[Observed] = []

    def sink(event: Event) -> None:
        assert isinstance(event, Observed)
        seen.append(event)

    env = Environment(state_dir=tmp_path)
    plain = LessonSession(env, lesson(()), sink)
    mounts = LessonSession(env, lesson(("mounts",)), sink)

    plain.observe()
    mounts.observe()
    mounts.observe(emit=False)  # `tree` and `ns` in the REPL: the extras are neither read nor advanced
    remembered = mounts.last_extras
    mounts.observe()

    assert seen[0].extras is None
    assert seen[1].extras is not None and seen[1].extras.views == ("mounts",)
    assert seen[2].extras is not None and remembered is not None and remembered is not mounts.last_extras


def test_mounts_and_cgroups_of_one_console_take_a_few_milliseconds() -> None:
    env = Environment()
    layout = cgroupfs.current_layout(env)

    def place() -> CgroupPlace:
        try:
            return CgroupPlace(cgroupfs.pids_parent(layout, env.proc_root), layout.pids_on_v2)
        except cgroupfs.CgroupError as e:
            return CgroupPlace(None, error=str(e))

    snap = process_tree.snapshot(Path("/proc"), {"host": os.getpid()})
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        now = read_extras(("mounts", "cgroups"), snap, Path("/proc"), cgroup_place=place)
        diff_extras(now, now)
        best = min(best, time.perf_counter() - start)

    assert now.mounts is not None and now.mounts.tables[0].mounts  # it really read the table
    assert best < 0.030, f"{best * 1000:.1f} ms"


# --- the real kernel ---


def test_links_read_from_inside_a_running_asyncio_loop_like_prompt_toolkits() -> None:
    snap = process_tree.snapshot(Path("/proc"), {"host": os.getpid()})

    async def in_the_loop() -> LinksSnapshot:
        return read_links(Path("/proc"), snap)

    links = asyncio.run(in_the_loop())

    assert links.error is None, links.error
    assert [n.consoles for n in links.namespaces] == [("host",)]
    assert any(link.kind == "loopback" for link in links.namespaces[0].links or ())
