"""The live half of tests/unit/test_journal.py: what needs root and the real kernel."""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import REPO
from tests.hygiene import HostState
from tests.libmount import lock_dir_as_found
from tests.unit.test_journal import (
    PROC,
    dead_pid,
    kill,
    new_journal,
    rewrite_header,
)
from workshop.engine.journal import (
    Journal,
    made_by_workshop,
    make_shared_dir,
)
from workshop.observe import procfs


def mountinfo_targets() -> list[str]:
    """Mount targets of this process's mount namespace, decoded (`\\040` is a space), read without workshop code."""
    targets = []
    for line in (PROC / "self/mountinfo").read_text().splitlines():
        targets.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4]))
    return targets


def mounts_at(path: Path) -> int:
    return mountinfo_targets().count(str(path))


def mounts_under(path: Path) -> list[str]:
    prefix = str(path).rstrip("/") + "/"
    return [t for t in mountinfo_targets() if t == str(path) or t.startswith(prefix)]


def mount_tmpfs(target: Path) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "workshop-test", str(target)], check=True)


def unmount_all_under(path: Path) -> None:
    """Test teardown: whatever the code under test did, nothing of ours stays mounted."""
    for _ in range(64):
        left = sorted(mounts_under(path), key=len, reverse=True)
        if not left:
            return
        for target in left:
            subprocess.run(["umount", "-l", target], check=False, capture_output=True)


def nspid(pid: int) -> list[int]:
    for line in (PROC / str(pid) / "status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return [int(f) for f in line.split()[1:]]
    raise AssertionError(f"no NSpid line for {pid}")


def alive(pid: int) -> bool:
    return procfs.is_alive(PROC, pid)


@pytest.fixture
def work(tmp_path: Path, host_unchanged: HostState) -> Iterator[Path]:
    """A work dir under tmp_path; anything still mounted below it is unmounted afterwards, and /run/mount, which
    the tests' own `mount` makes, removed if it was not there (before `host_unchanged` compares the host)."""
    w = tmp_path / "work"
    w.mkdir()
    with lock_dir_as_found():
        try:
            yield w
        finally:
            unmount_all_under(tmp_path)


@pytest.mark.root  # trusted.* extended attributes need CAP_SYS_ADMIN
def test_a_shared_dir_the_tool_made_carries_its_mark_and_the_last_session_removes_it(tmp_path: Path) -> None:
    """Two learners with separate state dirs cannot read each other's journals: the mark on /run/netns itself
    tells the second one that the tool made it, so it co-owns it rather than leaving it behind."""
    hosts = tmp_path / "hosts"
    hosts.mkdir()
    assert not made_by_workshop(str(hosts)), "a directory the host had is never the tool's"
    shared = tmp_path / "netns"
    first, second = new_journal(tmp_path / "a"), new_journal(tmp_path / "b")
    first.record("dir", str(shared))
    make_shared_dir(str(shared))
    assert made_by_workshop(str(shared))
    second.record("dir", str(shared))
    (shared / "second-c1").write_text("")  # the second learner's name in it
    assert [r.outcome for r in first.undo()] == ["kept: something else uses it now"]
    (shared / "second-c1").unlink()
    assert [r.outcome for r in second.undo()] == ["removed"]
    assert not shared.exists()


@pytest.mark.root
def test_path_undo_refuses_to_remove_a_dir_with_a_bind_mount_below(
    tmp_path: Path, work: Path, host_unchanged: HostState
) -> None:
    host = tmp_path / "host-files"
    host.mkdir()
    (host / "precious").write_text("the host's data")
    below = work / "rootfs" / "mnt"
    below.mkdir(parents=True)
    j = new_journal(tmp_path)
    j.record("path", str(work))
    try:
        subprocess.run(["mount", "--bind", str(host), str(below)], check=True)
        (result,) = j.undo()
        assert result.outcome.startswith("failed")
        assert str(below) in result.outcome
        assert (host / "precious").read_text() == "the host's data"
        assert (below / "precious").exists() and work.is_dir()
        assert j.path.exists()
    finally:
        unmount_all_under(work)
    # once the mount is gone a retry removes the dir, and the host's files are still there
    assert [r.outcome for r in Journal.read(j.path).undo()] == ["removed"]
    assert not work.exists() and (host / "precious").read_text() == "the host's data"


@pytest.mark.root
def test_path_undo_through_a_symlinked_parent_still_sees_the_bind_mount(
    tmp_path: Path, work: Path, host_unchanged: HostState
) -> None:
    host = tmp_path / "host-files"
    host.mkdir()
    (host / "precious").write_text("the host's data")
    (work / "session" / "mnt").mkdir(parents=True)
    via = tmp_path / "state-link"  # e.g. WORKSHOP_STATE_DIR or /var/lib reached through a symlink
    via.symlink_to(work)
    j = new_journal(tmp_path)
    j.record("path", str(via / "session"))
    try:
        subprocess.run(["mount", "--bind", str(host), str(work / "session" / "mnt")], check=True)
        (result,) = j.undo()
        assert (host / "precious").exists(), f"rmtree crossed the bind mount ({result.outcome})"
        assert result.outcome.startswith("failed: still mounted")
    finally:
        unmount_all_under(work)


@pytest.mark.root
def test_mount_undo_unmounts(tmp_path: Path, work: Path, host_unchanged: HostState) -> None:
    target = work / "with space"  # mountinfo writes it as with\040space
    target.mkdir()
    j = new_journal(tmp_path)
    j.record("mount", str(target))
    try:
        mount_tmpfs(target)
        assert mounts_at(target) == 1
        (result,) = j.undo()
        assert result.outcome == "removed"
        assert mounts_at(target) == 0
        assert not j.path.exists()
        assert [r.outcome for r in j.undo()] == ["already gone"]
    finally:
        unmount_all_under(work)


@pytest.mark.root
def test_mount_undo_removes_stacked_mounts(tmp_path: Path, work: Path, host_unchanged: HostState) -> None:
    target = work / "m"
    target.mkdir()
    j = new_journal(tmp_path)
    j.record("mount", str(target))
    try:
        mount_tmpfs(target)
        mount_tmpfs(target)
        assert mounts_at(target) == 2
        assert [r.outcome for r in j.undo()] == ["removed"]
        assert mounts_at(target) == 0
    finally:
        unmount_all_under(work)


@pytest.mark.root
def test_mounts_under_removes_every_mount_below_the_work_dir_deepest_first(
    tmp_path: Path, work: Path, host_unchanged: HostState
) -> None:
    (work / "a").mkdir()
    (work / "c" / "d").mkdir(parents=True)
    beside = tmp_path / "beside"  # a sibling whose name starts like the work dir: not below it
    beside.mkdir()
    twin = tmp_path / "work2"
    twin.mkdir()
    j = new_journal(tmp_path)
    j.record("mounts-under", str(work))
    try:
        mount_tmpfs(work / "a")
        (work / "a" / "b").mkdir()  # inside the first tmpfs
        mount_tmpfs(work / "a" / "b")
        mount_tmpfs(work / "c" / "d")
        mount_tmpfs(twin)
        assert len(mounts_under(work)) == 3
        (result,) = j.undo()
        # one umount each: a parent unmounted first would have taken its child along (2, not 3)
        assert result.outcome == "removed (3 mounts)"
        assert mounts_under(work) == []
        assert mounts_at(twin) == 1  # /work2 is not below /work
    finally:
        unmount_all_under(tmp_path)


def _wait_child(parent: int, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in procfs.pids(PROC):
            stat = procfs.read_stat(PROC, pid)
            if stat is not None and stat.ppid == parent and stat.comm == "sleep":
                return pid
        time.sleep(0.02)
    raise AssertionError(f"no sleep child of {parent}")


def _wait_exec(pid: int, comm: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while (stat := procfs.read_stat(PROC, pid)) is None or stat.comm != comm:
        assert time.monotonic() < deadline, f"{pid} never became {comm}"
        time.sleep(0.02)
    while not (PROC / str(pid) / "environ").read_bytes():  # the kernel lays out the environment after the name
        assert time.monotonic() < deadline, f"{pid} has no environment"
        time.sleep(0.02)


@pytest.mark.root
def test_session_procs_kills_the_sessions_processes_and_only_those(tmp_path: Path, host_unchanged: HostState) -> None:
    session = f"test-{secrets.token_hex(4)}"
    mine = {**os.environ, "WORKSHOP_SESSION": session}
    other = {**os.environ, "WORKSHOP_SESSION": f"{session}-other"}
    j = new_journal(tmp_path, session)
    j.record("session-procs", str(tmp_path / "work"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        daemon = subprocess.Popen(["setsid", "sleep", "100"], env=mine)
        contained = subprocess.Popen(["unshare", "-p", "-f", "--kill-child", "sleep", "100"], env=mine)
        bystander = subprocess.Popen(["sleep", "100"], env=other)
        procs += [daemon, contained, bystander]
        inner = _wait_child(contained.pid)  # PID 1 of its own namespace
        assert nspid(inner)[-1] == 1
        _wait_exec(daemon.pid, "sleep")  # setsid has exec'd: a test that undoes mid-exec proves something else

        (result,) = j.undo()
        assert result.outcome.startswith("removed (") and not result.failed
        for p in (daemon, contained):
            assert p.wait(timeout=5) == -signal.SIGKILL
        # a namespace's init is reaped by its parent (`unshare`, just reaped above), which can take a moment
        deadline = time.monotonic() + 5
        while alive(inner) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not alive(inner)
        assert bystander.poll() is None and alive(bystander.pid)
    finally:
        kill(*procs)


@pytest.mark.root
def test_hostname_undo_restores_the_hosts_name(tmp_path: Path, host_unchanged: HostState) -> None:
    original = socket.gethostname()
    j = new_journal(tmp_path)
    j.record("hostname", original)
    try:
        socket.sethostname(f"ws-test-{secrets.token_hex(3)}")  # a lesson line meant for a UTS namespace
        assert socket.gethostname() != original
        (result,) = j.undo()
        assert result.outcome == "restored" and not result.failed
        assert socket.gethostname() == original
    finally:
        socket.sethostname(original)


def _cleanup(state: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WORKSHOP_STATE_DIR": str(state), "NO_COLOR": "1", "COLUMNS": "200", "PYTHONPATH": str(REPO)}
    env.pop("WORKSHOP_SESSION", None)
    return subprocess.run(
        [sys.executable, "-m", "workshop", "cleanup"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        cwd=REPO,
    )


@pytest.mark.root
def test_cleanup_replays_a_leftover_journal_then_finds_the_host_clean(
    tmp_path: Path, host_unchanged: HostState
) -> None:
    state = tmp_path / "state"
    workdir = state / "sessions" / "crashed"
    j = Journal.create(state / "journal", "crashed", workdir)
    j.record("path", str(workdir))
    workdir.mkdir(parents=True)
    (workdir / "rootfs").mkdir()
    rewrite_header(j, owner_pid=dead_pid())  # its workshop was kill -9'ed

    done = _cleanup(state)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "crashed" in done.stdout and "removed" in done.stdout
    assert not workdir.exists()
    assert list((state / "journal").iterdir()) == []

    again = _cleanup(state)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "clean" in again.stdout and "nothing left" in again.stdout


@pytest.mark.root
def test_cleanup_leaves_a_running_session_alone(tmp_path: Path, host_unchanged: HostState) -> None:
    state = tmp_path / "state"
    workdir = state / "sessions" / "running"
    j = Journal.create(state / "journal", "running", workdir)  # owned by this (live) pytest process
    j.record("path", str(workdir))
    workdir.mkdir(parents=True)

    done = _cleanup(state)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "still running" in done.stdout
    assert workdir.is_dir() and j.path.exists()
