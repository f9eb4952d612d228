from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from workshop.engine.cgroupfs import (
    CgroupError,
    CgroupLayout,
    CgroupPlan,
    CgroupVersion,
    ControllerInUse,
    current_layout,
    detect_layout,
    disable_controller,
    disable_pids,
    enable_controller,
    enable_pids,
    hierarchy_mounts,
    kill_and_remove,
    pids_parent,
    plan_cgroup,
    plan_pids_cgroup,
)
from workshop.environment import Environment
from workshop.observe.procfs import parse_mountinfo

FIXTURES = Path(__file__).parent.parent / "fixtures" / "mountinfo"
CG = Path("/sys/fs/cgroup")


def mountinfo(name: str) -> str:
    return (FIXTURES / name).read_text()


def reader(files: dict[Path, str]) -> Callable[[Path], str]:
    def read(path: Path) -> str:
        if path in files:
            return files[path]
        raise FileNotFoundError(2, "No such file or directory", str(path))

    return read


# --- parse_mountinfo -------------------------------------------------------------------------------------


def test_parse_fields_and_optional_fields() -> None:
    mounts = parse_mountinfo(mountinfo("v2-ubuntu2404.txt"))
    root = next(m for m in mounts if m.mount_point == Path("/"))
    assert root.optional == ("shared:1",)
    assert root.is_shared
    assert root.fstype == "ext4"
    assert root.source == "/dev/mapper/ubuntu--vg-ubuntu--lv"
    cg2 = next(m for m in mounts if m.fstype == "cgroup2")
    assert cg2.mount_point == CG
    assert cg2.super_options == ("rw", "nsdelegate", "memory_recursiveprot")
    assert cg2.options[:2] == ("rw", "nosuid")


def test_parse_private_mount_has_no_optional_fields() -> None:
    mounts = parse_mountinfo(mountinfo("hybrid-debian12.txt"))
    root = next(m for m in mounts if m.mount_point == Path("/"))
    assert root.optional == ()
    assert not root.is_shared


def test_parse_decodes_octal_escapes() -> None:
    mounts = parse_mountinfo(mountinfo("escaped-space.txt"))
    points = [m.mount_point for m in mounts]
    assert Path("/mnt/my cgroups") in points
    assert Path("/mnt/my cgroups/pids\ttab") in points
    assert Path("/mnt/my cgroups/back\\slash") in points
    assert next(m for m in mounts if m.mount_point == Path("/mnt/my cgroups")).source == "my tmpfs"


def test_parse_skips_malformed_lines_and_keeps_utf8() -> None:
    text = "garbage\n\n1 2 3\nx y 0:1 / /a rw - ext4 /dev/a rw\n5 1 0:9 / /mnt/caf\u00e9\\040x rw - tmpfs t rw\n"
    mounts = parse_mountinfo(text)
    assert [m.mount_point for m in mounts] == [Path("/mnt/caf\u00e9 x")]


def test_parse_many_optional_fields() -> None:
    (m,) = parse_mountinfo("7 1 0:5 / /x rw shared:3 master:1 propagate_from:1 - tmpfs tmpfs rw\n")
    assert m.optional == ("shared:3", "master:1", "propagate_from:1")
    assert m.fstype == "tmpfs"


# --- detect_layout ---------------------------------------------------------------------------------------


def test_detect_hybrid_this_machine() -> None:
    layout = detect_layout(mountinfo("hybrid-debian12.txt"), reader({}))
    assert layout.version is CgroupVersion.HYBRID
    assert layout.pids_root == CG / "pids"
    assert layout.unified == CG / "unified"
    assert layout.pids_available
    assert not layout.pids_on_v2
    assert layout.detail == (
        "cgroup v1 (hybrid): pids controller at /sys/fs/cgroup/pids; cgroup2 at /sys/fs/cgroup/unified"
    )


def test_detect_v2_systemd() -> None:
    files = {CG / "cgroup.controllers": (FIXTURES.parent / "doctor/cgroup.controllers-ubuntu2404.txt").read_text()}
    layout = detect_layout(mountinfo("v2-ubuntu2404.txt"), reader(files))
    assert layout.version is CgroupVersion.V2
    assert layout.pids_root == CG
    assert layout.unified == CG
    assert layout.pids_available
    assert layout.pids_on_v2
    assert "cgroup v2" in layout.detail


def test_detect_v2_without_pids() -> None:
    files = {CG / "cgroup.controllers": "cpuset cpu io memory\n"}
    layout = detect_layout(mountinfo("v2-ubuntu2404.txt"), reader(files))
    assert layout.version is CgroupVersion.V2
    assert not layout.pids_available
    assert layout.pids_root is None
    assert layout.unified == CG
    assert "cgroup.controllers" in layout.detail


def test_detect_v2_unreadable_controllers_is_not_an_exception() -> None:
    layout = detect_layout(mountinfo("v2-ubuntu2404.txt"), reader({}))
    assert not layout.pids_available
    assert "could not be read" in layout.detail


def test_detect_pure_v1() -> None:
    layout = detect_layout(mountinfo("v1-centos7.txt"), reader({}))
    assert layout.version is CgroupVersion.V1
    assert layout.pids_root == CG / "pids"
    assert layout.unified is None
    assert layout.pids_available
    assert layout.detail == "cgroup v1: pids controller at /sys/fs/cgroup/pids; no cgroup2 mounted"


def test_detect_v1_without_pids_hierarchy() -> None:
    text = "\n".join(line for line in mountinfo("v1-centos7.txt").splitlines() if "/pids " not in line)
    layout = detect_layout(text, reader({}))
    assert layout.version is CgroupVersion.V1
    assert not layout.pids_available
    assert layout.pids_root is None
    assert "memory" in layout.detail


def test_detect_name_systemd_does_not_make_hybrid() -> None:
    files = {CG / "unified/cgroup.controllers": "cpu io memory pids\n"}
    layout = detect_layout(mountinfo("v2-systemd-only-v1-name.txt"), reader(files))
    assert layout.version is CgroupVersion.V2
    assert layout.pids_root == CG / "unified"


def test_detect_hybrid_with_pids_on_cgroup2() -> None:
    text = "\n".join(line for line in mountinfo("hybrid-debian12.txt").splitlines() if "/pids " not in line)
    layout = detect_layout(text, reader({CG / "unified/cgroup.controllers": "pids\n"}))
    assert layout.version is CgroupVersion.HYBRID
    assert layout.pids_root == CG / "unified"
    assert layout.pids_on_v2


def test_detect_no_cgroup() -> None:
    layout = detect_layout(mountinfo("none-container.txt"), reader({}))
    assert layout == CgroupLayout(CgroupVersion.NONE, None, None, False, "no cgroup filesystem is mounted")


def test_detect_escaped_mount_point() -> None:
    layout = detect_layout(mountinfo("escaped-space.txt"), reader({}))
    assert layout.version is CgroupVersion.V1
    assert layout.pids_root == Path("/mnt/my cgroups/pids\ttab")


def test_detect_hidden_mount_does_not_count() -> None:
    # A tmpfs mounted over the pids hierarchy hides it.
    text = mountinfo("v1-centos7.txt") + "99 31 0:99 / /sys/fs/cgroup/pids rw - tmpfs tmpfs rw\n"
    assert not detect_layout(text, reader({})).pids_available


def test_current_layout_reads_through_env_roots(tmp_path: Path) -> None:
    proc, sys_ = tmp_path / "proc", tmp_path / "sys"
    (proc / "self").mkdir(parents=True)
    (proc / "self/mountinfo").write_text(mountinfo("v2-ubuntu2404.txt"))
    (sys_ / "fs/cgroup").mkdir(parents=True)
    (sys_ / "fs/cgroup/cgroup.controllers").write_text("memory pids\n")
    layout = current_layout(Environment(proc_root=proc, sys_root=sys_))
    assert layout.pids_available
    assert layout.pids_root == CG  # the real mount point: that is where lessons write


def test_current_layout_this_machine() -> None:
    layout = current_layout(Environment())
    assert layout.version is not None
    assert layout.detail


def test_memory_and_cpu_have_hierarchies_of_their_own_on_this_machine() -> None:
    layout = detect_layout(mountinfo("hybrid-debian12.txt"), reader({}))
    assert layout.roots == {"pids": CG / "pids", "memory": CG / "memory", "cpu": CG / "cpu"}
    assert not layout.on_v2("memory")


def test_on_v2_every_controller_the_root_lists_shares_the_one_tree() -> None:
    layout = detect_layout(mountinfo("v2-ubuntu2404.txt"), reader({CG / "cgroup.controllers": "cpu io memory\n"}))
    assert layout.roots == {"memory": CG, "cpu": CG}
    assert layout.on_v2("memory")
    assert layout.root_of("pids") is None


# --- pids_parent and plan --------------------------------------------------------------------------------


def _proc_with_cgroup(tmp_path: Path, text: str) -> Path:
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self/cgroup").write_text(text)
    return proc


def test_pids_parent_v1(tmp_path: Path) -> None:
    layout = detect_layout(mountinfo("hybrid-debian12.txt"), reader({}))
    proc = _proc_with_cgroup(tmp_path, "8:pids:/\n0::/\n")
    assert pids_parent(layout, proc) == CG / "pids/workshop"


def test_pids_parent_v2_is_a_child_of_the_root(tmp_path: Path) -> None:
    layout = detect_layout(mountinfo("v2-ubuntu2404.txt"), reader({CG / "cgroup.controllers": "pids"}))
    proc = _proc_with_cgroup(tmp_path, "0::/user.slice/user-1000.slice/session-3.scope\n")
    assert pids_parent(layout, proc) == CG / "workshop"


def test_pids_parent_refuses_when_tool_runs_inside_it(tmp_path: Path) -> None:
    layout = detect_layout(mountinfo("v2-ubuntu2404.txt"), reader({CG / "cgroup.controllers": "pids"}))
    proc = _proc_with_cgroup(tmp_path, "0::/workshop/lesson-1\n")
    with pytest.raises(CgroupError, match="runs in"):
        pids_parent(layout, proc)


def test_pids_parent_without_pids_raises(tmp_path: Path) -> None:
    layout = detect_layout(mountinfo("none-container.txt"), reader({}))
    with pytest.raises(CgroupError, match="no pids controller"):
        pids_parent(layout, tmp_path)


def _v2_tree(tmp_path: Path, root_controls: str = "") -> CgroupLayout:
    root = tmp_path / "cg"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    (root / "cgroup.subtree_control").write_text(root_controls)
    (root / "cgroup.procs").write_text("1\n2\n")
    return CgroupLayout(CgroupVersion.V2, root, root, True, "test tree")


def test_plan_v2_enables_pids_in_root_and_parent(tmp_path: Path) -> None:
    layout = _v2_tree(tmp_path)
    root = tmp_path / "cg"
    plan = plan_pids_cgroup(layout, "lesson-1", tmp_path / "noproc")
    assert plan == CgroupPlan(
        root / "workshop/lesson-1",
        (root / "cgroup.subtree_control", root / "workshop/cgroup.subtree_control"),
    )


def test_plan_v2_when_root_already_has_pids(tmp_path: Path) -> None:
    layout = _v2_tree(tmp_path, "cpu memory pids\n")
    root = tmp_path / "cg"
    (root / "workshop").mkdir()
    (root / "workshop/cgroup.subtree_control").write_text("pids\n")
    assert plan_pids_cgroup(layout, "x", tmp_path).enable_pids_in == ()


def test_plan_v2_namespace_root_with_processes_is_refused(tmp_path: Path) -> None:
    layout = _v2_tree(tmp_path)
    (tmp_path / "cg/cgroup.type").write_text("domain\n")  # only non-root cgroups have it
    with pytest.raises(CgroupError, match="no internal processes"):
        plan_pids_cgroup(layout, "x", tmp_path)


def test_plan_v1_needs_no_subtree_control(tmp_path: Path) -> None:
    layout = detect_layout(mountinfo("v1-centos7.txt"), reader({}))
    plan = plan_pids_cgroup(layout, "lesson-1", tmp_path)
    assert plan == CgroupPlan(CG / "pids/workshop/lesson-1", ())


def test_plan_v1_memory_goes_in_the_memory_hierarchy(tmp_path: Path) -> None:
    layout = detect_layout(mountinfo("hybrid-debian12.txt"), reader({}))
    proc = _proc_with_cgroup(tmp_path, "4:memory:/\n8:pids:/\n0::/\n")
    assert plan_cgroup(layout, "memory", "ws1-memory", proc) == CgroupPlan(
        CG / "memory/workshop/ws1-memory", (), "memory"
    )


def test_plan_v2_memory_switches_memory_on_in_root_and_parent(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    layout = dataclasses.replace(_v2_tree(tmp_path, "pids\n"), roots={"pids": root, "memory": root, "cpu": root})
    plan = plan_cgroup(layout, "memory", "ws1-memory", tmp_path / "noproc")
    assert plan == CgroupPlan(
        root / "workshop/ws1-memory",
        (root / "cgroup.subtree_control", root / "workshop/cgroup.subtree_control"),
        "memory",
    )


def test_a_controller_the_machine_lacks_is_a_clear_error(tmp_path: Path) -> None:
    layout = detect_layout(mountinfo("v2-ubuntu2404.txt"), reader({CG / "cgroup.controllers": "pids\n"}))
    with pytest.raises(CgroupError, match=r"no memory controller: .*cgroup\.controllers"):
        plan_cgroup(layout, "memory", "x", tmp_path)


def test_enable_and_disable_another_controller(tmp_path: Path) -> None:
    sc = tmp_path / "cgroup.subtree_control"
    sc.write_text("pids\n")
    assert enable_controller(sc, "memory") is True
    assert sc.read_text() == "+memory"
    sc.write_text("memory pids\n")  # what the kernel would list then
    disable_controller(sc, "memory")
    assert sc.read_text() == "-memory"


@pytest.mark.parametrize("name", ["", "a/b", "..", ".", "cgroup.procs"])
def test_plan_rejects_bad_names(tmp_path: Path, name: str) -> None:
    layout = detect_layout(mountinfo("v1-centos7.txt"), reader({}))
    with pytest.raises(CgroupError, match="name"):
        plan_pids_cgroup(layout, name, tmp_path)


# --- enable / disable ------------------------------------------------------------------------------------


def test_enable_pids_writes_once(tmp_path: Path) -> None:
    sc = tmp_path / "cgroup.subtree_control"
    sc.write_text("cpu memory\n")
    assert enable_pids(sc) is True
    assert sc.read_text() == "+pids"


def test_enable_pids_already_enabled(tmp_path: Path) -> None:
    sc = tmp_path / "cgroup.subtree_control"
    sc.write_text("cpu pids\n")
    assert enable_pids(sc) is False
    assert sc.read_text() == "cpu pids\n"


def test_enable_pids_missing_dir_is_a_cgroup_error(tmp_path: Path) -> None:
    with pytest.raises(CgroupError):
        enable_pids(tmp_path / "gone/cgroup.subtree_control")


def test_disable_pids(tmp_path: Path) -> None:
    sc = tmp_path / "cgroup.subtree_control"
    sc.write_text("pids\n")
    disable_pids(sc)
    assert sc.read_text() == "-pids"
    disable_pids(tmp_path / "gone/cgroup.subtree_control")  # already removed: fine


def test_disable_pids_ebusy_is_controller_in_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sc = tmp_path / "cgroup.subtree_control"
    sc.write_text("pids\n")

    def busy(self: Path, data: str, *args: object, **kwargs: object) -> int:
        raise OSError(16, "Device or resource busy")

    monkeypatch.setattr(Path, "write_text", busy)
    with pytest.raises(ControllerInUse):
        disable_pids(sc)


# --- kill_and_remove on a plain tree ---------------------------------------------------------------------


def _rm_plain_dir(path: Path) -> None:
    # Plain directories keep their "control files"; cgroupfs would not need this.
    for f in path.iterdir():
        if f.is_file():
            f.unlink()
    os.rmdir(path)


def _cgroup_dir(path: Path, procs: str = "") -> Path:
    path.mkdir(parents=True)
    (path / "cgroup.procs").write_text(procs)
    (path / "pids.max").write_text("max\n")
    return path


def test_kill_and_remove_empty_cgroup_removes_tree(tmp_path: Path) -> None:
    parent = _cgroup_dir(tmp_path / "workshop")
    cg = _cgroup_dir(parent / "lesson")
    _cgroup_dir(cg / "child/grandchild")
    kill_and_remove(cg, CgroupVersion.V1, remove_dir=_rm_plain_dir)
    assert not cg.exists()
    assert parent.exists()


def test_kill_and_remove_missing_dir_is_fine(tmp_path: Path) -> None:
    kill_and_remove(tmp_path / "nope", CgroupVersion.V2)


def test_kill_and_remove_refuses_a_hierarchy_root(tmp_path: Path) -> None:
    root = _cgroup_dir(tmp_path / "root")
    with pytest.raises(CgroupError, match="not a child cgroup"):
        kill_and_remove(root, CgroupVersion.V1, remove_dir=_rm_plain_dir)
    assert root.exists()


def test_kill_and_remove_refuses_to_kill_itself(tmp_path: Path) -> None:
    _cgroup_dir(tmp_path / "workshop")
    cg = _cgroup_dir(tmp_path / "workshop/lesson", f"{os.getpid()}\n")
    with pytest.raises(CgroupError, match="itself"):
        kill_and_remove(cg, CgroupVersion.V1, remove_dir=_rm_plain_dir)


def test_kill_and_remove_v2_uses_cgroup_kill(tmp_path: Path) -> None:
    _cgroup_dir(tmp_path / "workshop")
    cg = _cgroup_dir(tmp_path / "workshop/lesson", "999999999\n")
    kill = cg / "cgroup.kill"
    kill.write_text("")
    # A plain file does not empty cgroup.procs by itself, so the call times out, after writing "1".
    with pytest.raises(CgroupError, match="survived"):
        kill_and_remove(cg, CgroupVersion.V2, timeout=0.05, remove_dir=_rm_plain_dir)
    assert kill.read_text() == "1"


def test_detect_mount_over_parent_hides_hierarchies() -> None:
    text = mountinfo("hybrid-debian12.txt") + "99 31 0:99 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"
    assert detect_layout(text, reader({})).version is CgroupVersion.NONE


def test_detect_mount_that_is_its_own_parent_is_visible() -> None:
    layout = detect_layout(
        "7 7 0:5 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", reader({CG / "cgroup.controllers": "pids"})
    )
    assert layout.version is CgroupVersion.V2 and layout.pids_available


# --- live, on this machine -------------------------------------------------------------------------------


def test_hierarchy_mounts_lists_every_hierarchy_a_cgroupfs_runtime_writes_to() -> None:
    """podman's cgroupfs manager makes a container's cgroup path in each of them, not only in pids."""
    found = dict(hierarchy_mounts(mountinfo("hybrid-debian12.txt")))
    names = sorted(p.name for p in found)
    assert names == ["blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids", "systemd", "unified"]
    assert found[Path("/sys/fs/cgroup/unified")] is CgroupVersion.V2
    assert found[Path("/sys/fs/cgroup/pids")] is CgroupVersion.V1


def test_hierarchy_mounts_on_v2_is_the_one_cgroup2_mount() -> None:
    assert [v for _, v in hierarchy_mounts(mountinfo("v2-ubuntu2404.txt"))] == [CgroupVersion.V2]
