"""The observer reads a /proc-like tree: fixture trees here, the real /proc in the root-only tests."""

from __future__ import annotations

import io
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from rich.console import Console

from tests.ns_inodes import HOST_NS, NEW_MNT, NEW_PID
from workshop.observe import process_diff, process_tree, procfs
from workshop.observe.process_diff import NsChange, NsEvent, diff
from workshop.observe.process_tree import NS_TYPES, Snapshot, foreground_pid, snapshot
from workshop.ui import process_views
from workshop.ui.theme import THEME

FIXTURES = Path(__file__).parent.parent / "fixtures" / "proc"

TOOL = 100  # the tool's own process: the reference for "host"


@dataclass
class Spec:
    """One fake process. `ns` overrides the host's links: an int is an inode, a str a raw link target,
    None a missing link."""

    comm: str
    ppid: int
    cmdline: str | None = None  # None: same as comm; "": a kernel thread's empty file
    nspid: tuple[int, ...] | None = None  # None: just the host pid
    ns: Mapping[str, int | str | None] = field(default_factory=dict)
    ns_dir_loop: bool = False  # ns/ itself is a symlink loop: every readlink fails with ELOOP
    root: str | None = "/"
    tpgid: int = -1
    starttime: int = 1000
    status: bool = True  # False: the process exits between reading stat and status


def stat_line(pid: int, spec: Spec) -> str:
    # state ppid pgrp session tty_nr tpgid, 13 fields up to itrealvalue, then starttime (field 22)
    middle = " ".join(["4194560"] + ["0"] * 12)
    return f"{pid} ({spec.comm}) S {spec.ppid} {pid} {pid} 34816 {spec.tpgid} {middle} {spec.starttime} 0 0\n"


def make_proc(root: Path, procs: Mapping[int, Spec]) -> Path:
    """Write a /proc-like tree: stat, status, cmdline files and ns/* and root symlinks."""
    for pid, spec in procs.items():
        d = root / str(pid)
        d.mkdir(parents=True)
        (d / "stat").write_text(stat_line(pid, spec))
        if spec.status:
            nspid = spec.nspid if spec.nspid is not None else (pid,)
            nspid_text = "\t".join(str(n) for n in nspid)
            (d / "status").write_text(
                f"Name:\t{spec.comm}\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t{pid}\nPid:\t{pid}\n"
                f"PPid:\t{spec.ppid}\nNStgid:\t{nspid_text}\nNSpid:\t{nspid_text}\nThreads:\t1\n"
            )
        cmdline = spec.comm if spec.cmdline is None else spec.cmdline
        (d / "cmdline").write_bytes(b"".join(arg.encode() + b"\0" for arg in cmdline.split()))
        if spec.root is not None:
            os.symlink(spec.root, d / "root")
        if spec.ns_dir_loop:
            os.symlink("ns", d / "ns")
            continue
        (d / "ns").mkdir()
        for ns_type, value in {**HOST_NS, **spec.ns}.items():
            if value is None:
                continue
            target = value if isinstance(value, str) else f"{process_tree.base_type(ns_type)}:[{value}]"
            os.symlink(target, d / "ns" / ns_type)
    return root


def base_host() -> dict[int, Spec]:
    """What else runs on the machine: never read beyond stat."""
    return {
        1: Spec("systemd", 0, cmdline="/sbin/init"),
        2: Spec("kthreadd", 0, cmdline=""),
        TOOL: Spec("python", 1, cmdline="python -m workshop"),
        300: Spec("sshd", 1, cmdline="sshd: /usr/sbin/sshd -D", tpgid=-1),
    }


def container_scenario() -> dict[int, Spec]:
    """Console `container`: bash 4200 ran `unshare -p -m -f sh` (unshare 4241, sh 4242 = PID 1 inside).

    As on a real kernel, unshare itself moved into the new mount namespace and only its child is in the
    new PID namespace; the interactive sh took the terminal's foreground (tpgid 4242).
    """
    return {
        **base_host(),
        4200: Spec("bash", TOOL, cmdline="bash --norc", tpgid=4242),
        4241: Spec(
            "unshare",
            4200,
            cmdline="unshare -p -m -f sh",
            tpgid=4242,
            ns={"mnt": NEW_MNT, "pid_for_children": NEW_PID},
        ),
        4242: Spec(
            "sh",
            4241,
            nspid=(4242, 1),
            tpgid=4242,
            ns={"mnt": NEW_MNT, "pid": NEW_PID, "pid_for_children": NEW_PID},
        ),
    }


def snap(root: Path, roots: Mapping[str, int]) -> Snapshot:
    return snapshot(root, roots, reference_pid=TOOL)


# --- reading ---


def test_the_container_scenario_reads_tree_nspid_and_namespaces(tmp_path: Path) -> None:
    s = snap(make_proc(tmp_path, container_scenario()), {"container": 4200})

    assert set(s.procs) == {4200, 4241, 4242}  # only the console's subtree, not the whole machine
    sh = s.procs[4242]
    assert (sh.comm, sh.ppid, sh.cmdline, sh.nspid) == ("sh", 4241, "sh", (4242, 1))
    assert process_tree.inner_pid(sh) == 1
    assert process_tree.inner_pid(s.procs[4200]) is None
    assert sh.ns["pid"] == NEW_PID and sh.ns["mnt"] == NEW_MNT
    assert sh.root == "/"
    assert s.host_ns == HOST_NS
    assert s.focus == {"container": 4242}


def test_transitions_mark_where_a_process_leaves_its_parents_namespaces(tmp_path: Path) -> None:
    s = snap(make_proc(tmp_path, container_scenario()), {"container": 4200})

    assert process_tree.ns_transitions(s, 4200) == ()  # its parent (the tool) is not watched: compared to host
    assert process_tree.ns_transitions(s, 4241) == ("mnt",)  # unshare(2) moved unshare itself
    assert process_tree.ns_transitions(s, 4242) == ("pid",)  # the forked child is the new PID 1
    assert process_tree.ns_transitions(s, 99999) == ()


def test_a_console_started_inside_namespaces_is_compared_with_the_host(tmp_path: Path) -> None:
    procs = {**base_host(), 5000: Spec("sh", TOOL, nspid=(5000, 1), ns={"mnt": NEW_MNT, "pid": NEW_PID})}
    s = snap(make_proc(tmp_path, procs), {"container": 5000})

    assert process_tree.ns_transitions(s, 5000) == ("mnt", "pid")


def test_comm_with_spaces_and_parentheses_is_split_at_the_last_paren(tmp_path: Path) -> None:
    make_proc(tmp_path, {**base_host(), 4300: Spec("(sd-pam) x)", TOOL, cmdline="")})

    stat = procfs.read_stat(tmp_path, 4300)
    assert stat == procfs.Stat(comm="(sd-pam) x)", state="S", ppid=TOOL, tpgid=-1, starttime=1000)
    proc = snap(tmp_path, {"odd": 4300}).procs[4300]
    assert proc.comm == "(sd-pam) x)"
    assert proc.cmdline == ""  # the view falls back to [comm]


def test_a_comm_that_is_not_utf8_is_shown_with_a_replacement_character(tmp_path: Path) -> None:
    (tmp_path / "4300").mkdir()
    (tmp_path / "4300" / "stat").write_bytes(stat_line(4300, Spec("x", TOOL)).encode().replace(b"(x)", b"(\xff)"))

    assert procfs.read_stat(tmp_path, 4300) == procfs.Stat("\ufffd", "S", TOOL, -1, 1000)


def test_the_container_scenario_renders_as_pstree_and_namespace_table(tmp_path: Path) -> None:
    s = snap(make_proc(tmp_path, container_scenario()), {"container": 4200})
    d = diff(None, s)

    out = io.StringIO()
    console = Console(file=out, width=100, color_system=None, theme=THEME)
    console.print(process_views.pstree_view(s, d))
    console.print(process_views.namespace_view(s, d))
    text = out.getvalue()

    assert "+ sh(4242)[1] (pid)" in text
    assert "container  pid 4242 → 1" in text
    assert f"container: new pid namespace {NEW_PID}" in text


def test_real_files_captured_from_a_pid_namespace_parse(tmp_path: Path) -> None:
    # stat/status/cmdline copied verbatim from /proc on Debian 12 while `unshare -p -f --mount-proc
    # sleep 30` ran as 4974 with its child 4975 (PID 1 inside); kthreadd for an empty cmdline.
    for name, pid in (("unshare", 4974), ("sleep-in-pid-ns", 4975), ("kthreadd", 2)):
        shutil.copytree(FIXTURES / "captured" / name, tmp_path / str(pid))
    make_proc(tmp_path, {TOOL: Spec("python", 1)})
    for pid in (4974, 4975):
        (tmp_path / str(pid) / "ns").mkdir()
        for ns_type, inode in HOST_NS.items():
            os.symlink(f"{process_tree.base_type(ns_type)}:[{inode}]", tmp_path / str(pid) / "ns" / ns_type)

    s = snap(tmp_path, {"container": 4974})

    assert set(s.procs) == {4974, 4975}
    sleep = s.procs[4975]
    assert (sleep.comm, sleep.ppid, sleep.cmdline, sleep.nspid) == ("sleep", 4974, "sleep 30", (4975, 1))
    assert sleep.starttime == 182077 and sleep.tpgid == -1
    assert s.procs[4974].cmdline == "unshare -p -f --mount-proc sleep 30"
    assert procfs.read_stat(tmp_path, 2) == procfs.Stat("kthreadd", "S", 0, -1, 24)


# --- unreadable and racing ---


def test_unreadable_namespace_links_become_none_never_an_error(tmp_path: Path) -> None:
    procs = {
        **base_host(),
        4200: Spec("bash", TOOL),
        4201: Spec("missing", 4200, ns={"net": None, "pid": None}, root=None),
        4202: Spec("garbage", 4200, ns={"net": "net", "uts": "not-a-link"}),  # readlink gives no "[inode]"
        4203: Spec("loop", 4200, ns_dir_loop=True),  # ELOOP on every ns/* path
    }
    s = snap(make_proc(tmp_path, procs), {"host": 4200})

    assert set(s.procs) == {4200, 4201, 4202, 4203}
    assert s.procs[4201].ns["net"] is None and s.procs[4201].ns["pid"] is None
    assert s.procs[4201].ns["mnt"] == HOST_NS["mnt"]
    assert s.procs[4201].root is None
    assert s.procs[4202].ns["net"] is None and s.procs[4202].ns["uts"] is None
    assert all(inode is None for inode in s.procs[4203].ns.values())
    assert process_tree.ns_transitions(s, 4203) == ()  # nothing readable, nothing claimed


def test_unreadable_host_reference_gives_none_not_an_error(tmp_path: Path) -> None:
    make_proc(tmp_path, {**base_host(), 4200: Spec("bash", TOOL)})

    s = snapshot(tmp_path, {"host": 4200}, reference_pid=77777)

    assert s.host_ns == dict.fromkeys(NS_TYPES)
    assert set(s.procs) == {4200}


def test_processes_vanishing_between_listing_and_reading_are_skipped(tmp_path: Path) -> None:
    procs = {
        **base_host(),
        4200: Spec("bash", TOOL),
        4201: Spec("gone", 4200, status=False),  # exited after its stat was read
        4202: Spec("child", 4201),  # still alive, orphaned for a moment
    }
    make_proc(tmp_path, procs)
    (tmp_path / "4203").mkdir()  # listed, but exited before its stat was read
    (tmp_path / "4204").mkdir()
    (tmp_path / "4204" / "stat").write_text("4204 (sh) S 4200")  # cut short

    s = snap(tmp_path, {"host": 4200})

    assert set(s.procs) == {4200, 4202}


def test_a_foreground_process_gone_while_reading_leaves_the_focus_on_the_shell(tmp_path: Path) -> None:
    procs = {**base_host(), 4200: Spec("bash", TOOL, tpgid=4201), 4201: Spec("vi", 4200, tpgid=4201, status=False)}

    s = snap(make_proc(tmp_path, procs), {"host": 4200})

    assert s.focus == {"host": 4200}


def test_a_console_whose_shell_is_gone_has_no_focus(tmp_path: Path) -> None:
    s = snap(make_proc(tmp_path, container_scenario()), {"container": 4200, "old": 6000})

    assert s.roots == {"container": 4200, "old": 6000}
    assert s.focus == {"container": 4242}


def test_a_missing_proc_root_gives_an_empty_snapshot(tmp_path: Path) -> None:
    s = snapshot(tmp_path / "nope", {"host": 1})

    assert s.procs == {} and s.focus == {}


# --- foreground ---


def test_foreground_is_the_shell_leading_the_terminals_foreground_group(tmp_path: Path) -> None:
    make_proc(tmp_path, container_scenario())

    assert foreground_pid(tmp_path, 4200) == 4242


@pytest.mark.parametrize(
    ("tpgid", "why"),
    [
        (300, "a group outside the console's subtree"),
        (-1, "no controlling terminal"),
        (9999, "no such process"),
    ],
)
def test_foreground_falls_back_to_the_consoles_shell(tmp_path: Path, tpgid: int, why: str) -> None:
    make_proc(tmp_path, {**base_host(), 4200: Spec("bash", TOOL, tpgid=tpgid), 4201: Spec("sleep", 4200)})

    assert foreground_pid(tmp_path, 4200) == 4200, why


def test_foreground_of_a_gone_shell_is_none(tmp_path: Path) -> None:
    make_proc(tmp_path, base_host())

    assert foreground_pid(tmp_path, 4200) is None


# --- diff ---


def changes(d: process_diff.Diff) -> dict[tuple[str, str], NsEvent]:
    return {(c.console, c.ns_type): c.event for c in d.ns_changes}


def test_first_step_everything_is_new_and_non_host_namespaces_are_created(tmp_path: Path) -> None:
    s = snap(make_proc(tmp_path, container_scenario()), {"container": 4200})

    d = diff(None, s)

    assert d.new_pids == {4200, 4241, 4242}
    assert d.gone == () and d.gone_namespaces == ()
    assert d.ns_changes == (
        NsChange("container", "mnt", None, NEW_MNT, NsEvent.CREATED),
        NsChange("container", "pid", None, NEW_PID, NsEvent.CREATED),
        NsChange("container", "pid_for_children", None, NEW_PID, NsEvent.CREATED),
    )


def test_unshare_in_a_console_creates_namespaces(tmp_path: Path) -> None:
    scenario = container_scenario()
    before = snap(make_proc(tmp_path / "1", {**base_host(), 4200: Spec("bash", TOOL, tpgid=4200)}), {"container": 4200})
    after = snap(make_proc(tmp_path / "2", scenario), {"container": 4200})

    d = diff(before, after)

    assert d.new_pids == {4241, 4242}
    assert changes(d) == {
        ("container", "mnt"): NsEvent.CREATED,
        ("container", "pid"): NsEvent.CREATED,
        ("container", "pid_for_children"): NsEvent.CREATED,
    }
    assert d.ns_changes[1] == NsChange("container", "pid", HOST_NS["pid"], NEW_PID, NsEvent.CREATED)


def test_exit_from_the_container_is_back_to_host_and_its_namespaces_are_gone(tmp_path: Path) -> None:
    before = snap(make_proc(tmp_path / "1", container_scenario()), {"container": 4200})
    after = snap(make_proc(tmp_path / "2", {**base_host(), 4200: Spec("bash", TOOL, tpgid=4200)}), {"container": 4200})

    d = diff(before, after)

    assert d.new_pids == frozenset()
    assert [p.pid for p in d.gone] == [4241, 4242]
    assert changes(d) == {
        ("container", "mnt"): NsEvent.BACK_TO_HOST,
        ("container", "pid"): NsEvent.BACK_TO_HOST,
        ("container", "pid_for_children"): NsEvent.BACK_TO_HOST,
    }
    # pid_for_children points at the same pid namespace: reported once, as "pid"
    assert d.gone_namespaces == (("mnt", NEW_MNT), ("pid", NEW_PID))


def test_nsenter_into_another_consoles_container_is_a_join(tmp_path: Path) -> None:
    roots = {"container": 4200, "container2": 5000}
    before = snap(make_proc(tmp_path / "1", {**container_scenario(), 5000: Spec("bash", TOOL, tpgid=5000)}), roots)
    joined = {"mnt": NEW_MNT, "pid": NEW_PID, "pid_for_children": NEW_PID}
    after = snap(
        make_proc(
            tmp_path / "2",
            {
                **container_scenario(),
                5000: Spec("bash", TOOL, tpgid=5002),
                5001: Spec(
                    "nsenter",
                    5000,
                    cmdline="nsenter -t 4242 -p -m sh",
                    tpgid=5002,
                    ns={"mnt": NEW_MNT, "pid_for_children": NEW_PID},
                ),
                5002: Spec("sh", 5001, nspid=(5002, 2), tpgid=5002, ns=joined),
            },
        ),
        roots,
    )

    d = diff(before, after)

    assert after.focus == {"container": 4242, "container2": 5002}
    assert changes(d) == {
        ("container2", "mnt"): NsEvent.JOINED,
        ("container2", "pid"): NsEvent.JOINED,
        ("container2", "pid_for_children"): NsEvent.JOINED,
    }
    assert d.gone_namespaces == ()


def test_a_new_namespace_from_inside_a_container_is_a_change(tmp_path: Path) -> None:
    before = snap(make_proc(tmp_path / "1", container_scenario()), {"container": 4200})
    nested = container_scenario()
    nested[4242] = Spec(
        "sh",
        4241,
        nspid=(4242, 1),
        tpgid=4242,
        ns={"mnt": 4026532999, "pid": NEW_PID, "pid_for_children": NEW_PID},
    )

    d = diff(before, snap(make_proc(tmp_path / "2", nested), {"container": 4200}))

    assert d.ns_changes == (NsChange("container", "mnt", NEW_MNT, 4026532999, NsEvent.CHANGED),)
    assert d.gone_namespaces == ()  # unshare (4241) is still in NEW_MNT


def test_a_focus_whose_links_become_unreadable_is_reported_gone(tmp_path: Path) -> None:
    before = snap(make_proc(tmp_path / "1", container_scenario()), {"container": 4200})
    zombie = container_scenario()
    zombie[4242] = Spec("sh", 4241, nspid=(4242, 1), tpgid=4242, cmdline="", root=None, ns=dict.fromkeys(NS_TYPES))

    d = diff(before, snap(make_proc(tmp_path / "2", zombie), {"container": 4200}))

    assert set(changes(d).values()) == {NsEvent.GONE}
    assert len(d.ns_changes) == len(NS_TYPES)


def test_a_reused_pid_is_a_new_process(tmp_path: Path) -> None:
    before = snap(make_proc(tmp_path / "1", container_scenario()), {"container": 4200})
    reused = container_scenario()
    reused[4242] = Spec(
        "sh",
        4241,
        nspid=(4242, 1),
        tpgid=4242,
        starttime=2000,
        ns={"mnt": NEW_MNT, "pid": NEW_PID, "pid_for_children": NEW_PID},
    )

    d = diff(before, snap(make_proc(tmp_path / "2", reused), {"container": 4200}))

    assert d.new_pids == {4242}
    assert [(p.pid, p.starttime) for p in d.gone] == [(4242, 1000)]
    assert d.ns_changes == ()


def render(renderable: object) -> str:
    out = io.StringIO()
    Console(file=out, width=200, color_system=None, theme=THEME).print(renderable)
    return out.getvalue()


def restarted_container(pids: tuple[int, int], starttime: int = 2000) -> dict[int, Spec]:
    """The container scenario after `exit` and the same `unshare` again, within one step: new processes, and
    the kernel gave the new namespaces the numbers the old ones freed."""
    unshare, sh = pids
    return {
        **base_host(),
        4200: Spec("bash", TOOL, cmdline="bash --norc", tpgid=sh),
        unshare: Spec(
            "unshare",
            4200,
            cmdline="unshare -p -m -f sh",
            tpgid=sh,
            starttime=starttime,
            ns={"mnt": NEW_MNT, "pid_for_children": NEW_PID},
        ),
        sh: Spec(
            "sh",
            unshare,
            nspid=(sh, 1),
            tpgid=sh,
            starttime=starttime,
            ns={"mnt": NEW_MNT, "pid": NEW_PID, "pid_for_children": NEW_PID},
        ),
    }


def test_a_container_restarted_within_a_step_is_new_though_its_numbers_are_the_old_ones(tmp_path: Path) -> None:
    before = snap(make_proc(tmp_path / "1", container_scenario()), {"container": 4200})
    after = snap(make_proc(tmp_path / "2", restarted_container((4301, 4302))), {"container": 4200})

    d = diff(before, after)

    assert d.ns_changes == (
        NsChange("container", "mnt", NEW_MNT, NEW_MNT, NsEvent.CREATED, recycled=True),
        NsChange("container", "pid", NEW_PID, NEW_PID, NsEvent.CREATED, recycled=True),
        NsChange("container", "pid_for_children", NEW_PID, NEW_PID, NsEvent.CREATED, recycled=True),
    )
    assert d.gone_namespaces == (("mnt", NEW_MNT), ("pid", NEW_PID))
    text = render(process_views.namespace_view(after, d))
    assert f"container: new mnt namespace {NEW_MNT} (the same number, yet a new one" in text
    assert f"gone: mnt {NEW_MNT} — its number now names a new namespace" in text
    assert "no namespace changed" not in text


def test_a_restart_on_reused_pids_is_still_new(tmp_path: Path) -> None:
    """PIDs wrap around too: the start time tells the new processes from the old."""
    before = snap(make_proc(tmp_path / "1", container_scenario()), {"container": 4200})
    after = snap(make_proc(tmp_path / "2", restarted_container((4241, 4242))), {"container": 4200})

    assert {c.event for c in diff(before, after).ns_changes} == {NsEvent.CREATED}


def test_a_numbers_old_namespace_of_another_type_is_not_joined(tmp_path: Path) -> None:
    """Numbers are shared by all types: a new mount namespace may get the number an old PID namespace had."""
    before = snap(make_proc(tmp_path / "1", container_scenario()), {"container": 4200})
    swapped = restarted_container((4301, 4302))
    swapped[4301].ns = {"mnt": NEW_PID, "pid_for_children": NEW_MNT}
    swapped[4302].ns = {"mnt": NEW_PID, "pid": NEW_MNT, "pid_for_children": NEW_MNT}

    d = diff(before, snap(make_proc(tmp_path / "2", swapped), {"container": 4200}))

    # new, not "moved to another": the namespaces the console was in ended with the old container
    assert changes(d) == {
        ("container", "mnt"): NsEvent.CREATED,
        ("container", "pid"): NsEvent.CREATED,
        ("container", "pid_for_children"): NsEvent.CREATED,
    }
    assert all(c.recycled for c in d.ns_changes)


def pin(proc_root: Path, inode: int) -> None:
    """A bind mount of a namespace in the tool's mount namespace, as `ip netns add` makes."""
    line = f"43 42 0:4 net:[{inode}] /run/netns/red rw shared:2 - nsfs nsfs rw\n"
    (proc_root / str(TOOL) / "mountinfo").write_text("25 1 8:1 / / rw - ext4 /dev/sda1 rw\n" + line)


def test_entering_a_namespace_a_bind_mount_kept_is_a_join(tmp_path: Path) -> None:
    """`ip netns add red` at one step, `ip netns exec red sh` at the next: nobody was in it, yet it existed."""
    red = 4026532777
    shell = {**base_host(), 4200: Spec("bash", TOOL, tpgid=4200)}
    make_proc(tmp_path / "1", shell)
    entered = {**shell, 4200: Spec("bash", TOOL, tpgid=4250), 4250: Spec("sh", 4200, tpgid=4250, ns={"net": red})}
    pin(tmp_path / "1", red)
    before = snap(tmp_path / "1", {"c": 4200})
    make_proc(tmp_path / "2", entered)
    pin(tmp_path / "2", red)

    d = diff(before, snap(tmp_path / "2", {"c": 4200}))

    assert d.ns_changes == (NsChange("c", "net", HOST_NS["net"], red, NsEvent.JOINED),)


def test_leaving_a_namespace_a_bind_mount_keeps_is_not_its_end(tmp_path: Path) -> None:
    red = 4026532777
    inside = {**base_host(), 4200: Spec("bash", TOOL, tpgid=4250), 4250: Spec("sh", 4200, tpgid=4250, ns={"net": red})}
    make_proc(tmp_path / "1", inside)
    make_proc(tmp_path / "2", {**base_host(), 4200: Spec("bash", TOOL, tpgid=4200)})
    for step in ("1", "2"):
        pin(tmp_path / step, red)

    d = diff(snap(tmp_path / "1", {"c": 4200}), snap(tmp_path / "2", {"c": 4200}))

    assert changes(d) == {("c", "net"): NsEvent.BACK_TO_HOST}
    assert d.gone_namespaces == ()


def test_classify_follows_the_rules_in_order() -> None:
    host = 1
    assert process_diff.classify(5, 1, host, known=True) is NsEvent.BACK_TO_HOST
    assert process_diff.classify(1, 7, host, known=True) is NsEvent.JOINED
    assert process_diff.classify(1, 9, host, known=False) is NsEvent.CREATED
    assert process_diff.classify(None, 9, host, known=False) is NsEvent.CREATED
    assert process_diff.classify(5, 9, host, known=False) is NsEvent.CHANGED
    assert process_diff.classify(5, 9, host, known=False, before_lives=False) is NsEvent.CREATED
    assert process_diff.classify(5, None, host, known=False) is NsEvent.GONE


# --- the real /proc ---


def test_snapshot_of_the_real_proc_is_fast() -> None:
    roots = {"tests": os.getpid()}
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        snapshot(Path("/proc"), roots)
        timings.append(time.perf_counter() - start)

    assert min(timings) < 0.050, f"best of 5: {min(timings) * 1000:.1f} ms"
