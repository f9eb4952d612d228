"""The live half of tests/unit/test_cgroups.py: what needs root and the real kernel."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ci import IN_CI, require_root
from tests.hygiene import HostState
from workshop.engine.cgroupfs import (
    CgroupError,
    CgroupVersion,
    current_layout,
    disable_pids,
    enable_pids,
    kill_and_remove,
    pids_parent,
    plan_pids_cgroup,
)
from workshop.environment import Environment


@pytest.fixture
def live_cgroup() -> Iterator[tuple[Path, CgroupVersion]]:
    """A real, uniquely named pids cgroup under pids_parent; everything it created is undone afterwards."""
    require_root()
    layout = current_layout(Environment())
    if not layout.pids_available:
        pytest.skip(layout.detail)
    plan = plan_pids_cgroup(layout, f"test-{os.getpid()}-{uuid.uuid4().hex[:8]}", Path("/proc"))
    parent = plan.path.parent
    version = CgroupVersion.V2 if layout.pids_on_v2 else CgroupVersion.V1
    made_parent = not parent.exists()
    enabled: list[Path] = []
    try:
        for sc in plan.enable_pids_in:
            sc.parent.mkdir(exist_ok=True)
            if enable_pids(sc):
                enabled.append(sc)
        plan.path.mkdir(parents=True)
        yield plan.path, version
    finally:
        kill_and_remove(plan.path, version)
        if made_parent:
            with contextlib.suppress(OSError):  # someone else may be using it now
                os.rmdir(parent)
        for sc in reversed(enabled):
            if sc.parent.exists():
                with contextlib.suppress(CgroupError):
                    disable_pids(sc)
    assert not plan.path.exists()


def _start_inside(cgroup: Path, script: str) -> subprocess.Popen[bytes]:
    # The shell joins the cgroup before it runs anything, so every child starts inside (no race).
    proc = subprocess.Popen(["sh", "-c", f"echo $$ > '{cgroup}/cgroup.procs'; {script}"], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while str(proc.pid) not in (cgroup / "cgroup.procs").read_text().split():
        assert time.monotonic() < deadline, "the shell never joined the cgroup"
        time.sleep(0.01)
    return proc


@pytest.mark.root
def test_live_pids_cgroup_is_killed_and_removed(live_cgroup: tuple[Path, CgroupVersion]) -> None:
    cgroup, version = live_cgroup
    (cgroup / "pids.max").write_text("3")
    proc = _start_inside(cgroup, "exec sleep 30")
    try:
        assert (cgroup / "pids.max").read_text().strip() == "3"
        kill_and_remove(cgroup, version)
        assert not cgroup.exists()
        assert proc.wait(timeout=5) == -9
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.root
def test_live_kill_and_remove_wins_against_a_forking_shell(live_cgroup: tuple[Path, CgroupVersion]) -> None:
    cgroup, version = live_cgroup
    (cgroup / "pids.max").write_text("10")  # bounded: the loop keeps trying to fork against the limit
    # dash exits on the first failed fork; this loop keeps forking against the limit until it is killed.
    forker = (
        "import os, time\nwhile True:\n try:\n  if os.fork() == 0: time.sleep(30); os._exit(0)\n except OSError: pass"
    )
    proc = _start_inside(cgroup, f"exec {sys.executable} -c '{forker}'")
    try:
        deadline = time.monotonic() + 30  # Python's start-up and nine forks, under emulation in the VM tier
        while len((cgroup / "cgroup.procs").read_text().split()) < 10:
            assert time.monotonic() < deadline, "the shell did not fill the cgroup"
            time.sleep(0.01)
        pids = [int(p) for p in (cgroup / "cgroup.procs").read_text().split()]
        kill_and_remove(cgroup, version)
        assert not cgroup.exists()
        proc.wait(timeout=5)
        for pid in pids:
            assert not Path(f"/proc/{pid}").exists() or "Z" in _state(pid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"  # gone while reading


@pytest.mark.root
def test_a_learner_ending_first_leaves_the_other_learners_pids_limit(tmp_path: Path, host_unchanged: HostState) -> None:
    """Two learners with separate state dirs share the tool's parent cgroup. On cgroup v2 the pids controller is
    switched on in the parent's cgroup.subtree_control: the first learner to end must not switch it off, or the
    other learner's cgroup loses pids.max and pids.current in the middle of the fork-bomb lesson."""
    from workshop.engine import primitives
    from workshop.engine.journal import Journal

    layout = current_layout(Environment())
    if not layout.pids_available:
        if IN_CI:
            pytest.fail(f"no pids controller, and CI=true: {layout.detail}")
        pytest.skip(layout.detail)
    parent = pids_parent(layout, Path("/proc"))
    if parent.exists():
        pytest.skip(f"{parent} is in use by a running workshop")
    version = "v2" if layout.pids_on_v2 else "v1"
    learners = []
    for who in ("first", "second"):
        plan = plan_pids_cgroup(layout, f"t{os.getpid()}{who}", Path("/proc"))
        journal = Journal.create(tmp_path / who / "journal", f"{who}{os.getpid()}", tmp_path / who / "work")
        primitives.prepare_cgroup_parent(journal, layout, [plan])
        journal.record("cgroup", str(plan.path), version=version)
        plan.path.mkdir()
        (plan.path / "pids.max").write_text("5")
        learners.append((journal, plan.path))
    (first, _), (second, cgroup) = learners

    assert not [u for u in first.undo() if u.failed]
    assert (cgroup / "pids.max").read_text().strip() == "5", "the other learner's limit is gone"
    assert (cgroup / "pids.current").exists()
    assert parent.is_dir()

    assert not [u for u in second.undo() if u.failed]
    assert not parent.exists(), "the last learner out leaves the parent behind"
