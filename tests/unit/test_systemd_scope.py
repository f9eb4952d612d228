"""Where lesson cgroups go on a systemd machine: in the scope systemd delegated to workshop, never beside its
slices. The scope itself is started and stopped for real in a systemd guest (tests/live/test_vagrant_tier.py,
through the cgroup-pids lesson's check); here, the placement rules, read from fixture trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from workshop.engine import systemd_scope
from workshop.engine.cgroupfs import CgroupError, current_layout, pids_parent, plan_pids_cgroup
from workshop.environment import Environment

MOUNTINFO = (Path(__file__).parent.parent / "fixtures" / "mountinfo" / "v2-ubuntu2404.txt").read_text()
CG = Path("/sys/fs/cgroup")


def machine(
    tmp_path: Path, pid1: str, own_cgroup: str = "0::/user.slice/user-1000.slice/session-3.scope\n"
) -> Environment:
    """A fake /proc and /sys of a cgroup v2 machine whose PID 1 is `pid1`."""
    proc, sys_ = tmp_path / "proc", tmp_path / "sys"
    (proc / "self").mkdir(parents=True)
    (proc / "1").mkdir()
    (proc / "1" / "comm").write_text(pid1 + "\n")
    (proc / "self" / "mountinfo").write_text(MOUNTINFO)
    (proc / "self" / "cgroup").write_text(own_cgroup)
    (sys_ / "fs" / "cgroup").mkdir(parents=True)
    (sys_ / "fs" / "cgroup" / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    return Environment(proc_root=proc, sys_root=sys_)


def test_under_systemd_the_lessons_cgroups_go_into_the_delegated_scope(tmp_path: Path) -> None:
    env = machine(tmp_path, "systemd")
    layout = current_layout(env)
    assert layout.delegated == CG / "system.slice" / "workshop.scope"
    assert pids_parent(layout, env.proc_root) == CG / "system.slice" / "workshop.scope"


def test_under_systemd_only_the_scope_hands_pids_down_and_systemds_slices_are_not_touched(tmp_path: Path) -> None:
    env = machine(tmp_path, "systemd")
    plan = plan_pids_cgroup(current_layout(env), "wsabc123", env.proc_root)
    scope = CG / "system.slice" / "workshop.scope"
    assert plan.path == scope / "wsabc123"
    assert plan.enable_pids_in == (scope / "cgroup.subtree_control",)


def test_without_systemd_the_parent_is_workshops_own_directory(tmp_path: Path) -> None:
    env = machine(tmp_path, "init")
    layout = current_layout(env)
    assert layout.delegated is None
    assert pids_parent(layout, env.proc_root) == CG / "workshop"


def test_the_tool_refuses_to_run_inside_its_own_scope(tmp_path: Path) -> None:
    env = machine(tmp_path, "systemd", own_cgroup="0::/system.slice/workshop.scope/keeper\n")
    with pytest.raises(CgroupError, match="runs in"):
        pids_parent(current_layout(env), env.proc_root)


def test_an_unreadable_pid_1_is_not_systemd(tmp_path: Path) -> None:
    assert not systemd_scope.is_systemd_host(tmp_path / "no-proc")
