"""The journal is the one place that undoes what a session created, even after a crash: entries are durable before
the resource exists, undo goes newest first, and it never harms the host (no rmtree across a mount, no killing
another session's processes, no deleting short system paths).

Everything happens in tmp_path; kernel-touching tests use `host_unchanged` and undo their own mounts and
processes in `finally`, whatever the code under test did.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
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
from workshop.engine.journal import (
    Entry,
    Journal,
    JournalError,
    iter_leftovers,
    journals,
    made_by_workshop,
    make_shared_dir,
)
from workshop.observe import procfs

PROC = Path("/proc")


# -- helpers -------------------------------------------------------------------------------------------------------


def new_journal(tmp_path: Path, session: str | None = None) -> Journal:
    return Journal.create(tmp_path / "journal", session or f"test-{secrets.token_hex(3)}", tmp_path / "work")


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


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def rewrite_header(journal: Journal, **changes: object) -> None:
    lines = journal.path.read_text().splitlines(keepends=True)
    header = json.loads(lines[0])
    header.update(changes)
    lines[0] = json.dumps(header) + "\n"
    journal.path.write_text("".join(lines))


def nspid(pid: int) -> list[int]:
    for line in (PROC / str(pid) / "status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return [int(f) for f in line.split()[1:]]
    raise AssertionError(f"no NSpid line for {pid}")


def alive(pid: int) -> bool:
    return procfs.is_alive(PROC, pid)


def kill(*procs: subprocess.Popen[bytes]) -> None:
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            p.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=5)


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Path]:
    """A work dir under tmp_path; anything still mounted below it is unmounted afterwards."""
    w = tmp_path / "work"
    w.mkdir()
    try:
        yield w
    finally:
        unmount_all_under(tmp_path)


# -- writing and reading -------------------------------------------------------------------------------------------


def test_create_writes_a_private_journal_with_its_owner(tmp_path: Path) -> None:
    j = new_journal(tmp_path, "s1")
    assert j.path == tmp_path / "journal" / "s1.jsonl"
    assert (j.path.stat().st_mode & 0o777) == 0o600
    assert (j.path.parent.stat().st_mode & 0o777) == 0o700
    header = json.loads(j.path.read_text().splitlines()[0])
    assert header["session"] == "s1"
    assert header["owner_pid"] == os.getpid()
    stat = procfs.read_stat(PROC, os.getpid())
    assert stat is not None and header["owner_start"] == stat.starttime
    assert header["workdir"] == str(tmp_path / "work")


def test_a_session_journal_is_never_overwritten(tmp_path: Path) -> None:
    j = new_journal(tmp_path, "s1")
    j.record("path", str(tmp_path / "x"))
    with pytest.raises(FileExistsError):
        new_journal(tmp_path, "s1")
    assert Journal.read(j.path).entries == [Entry("path", str(tmp_path / "x"))]


def test_record_is_on_disk_before_the_resource_exists(tmp_path: Path) -> None:
    j = new_journal(tmp_path)
    target = tmp_path / "not-yet"
    entry = j.record("path", str(target), note="made by a lesson")
    assert not target.exists()
    again = Journal.read(j.path)
    assert again.entries == [entry]
    assert again.entries[0].extra == {"note": "made by a lesson"}
    assert again.session == j.session and again.header == j.header
    # the resource was never made (a crash right after recording): undoing it is a harmless no-op
    assert [r.outcome for r in again.undo()] == ["already gone"]


def test_a_torn_last_line_is_ignored_and_the_rest_is_read(tmp_path: Path) -> None:
    j = new_journal(tmp_path)
    first = j.record("path", str(tmp_path / "a"))
    second = j.record("mount", str(tmp_path / "b"))
    line = json.dumps({"kind": "path", "target": str(tmp_path / "c")})
    with open(j.path, "a") as f:
        f.write(line[: len(line) // 2])  # a crash in the middle of a write
    again = Journal.read(j.path)
    assert again.entries == [first, second]
    assert again.header["session"] == j.session


def test_recording_the_same_entry_twice_writes_it_once(tmp_path: Path) -> None:
    j = new_journal(tmp_path)
    j.record("path", str(tmp_path / "a"))
    j.record("path", str(tmp_path / "a"))
    assert len(j.path.read_text().splitlines()) == 2  # header and one entry
    assert len(Journal.read(j.path).entries) == 1


def test_an_unknown_kind_is_refused_and_not_written(tmp_path: Path) -> None:
    j = new_journal(tmp_path)
    before = j.path.read_text()
    with pytest.raises(JournalError):
        j.record("rm-rf", "/")
    assert j.path.read_text() == before and j.entries == []


# -- undo: order, the journal file, paths --------------------------------------------------------------------------


def test_undo_goes_newest_first_and_removes_the_journal(tmp_path: Path) -> None:
    outer, inner = tmp_path / "outer", tmp_path / "outer" / "inner"
    j = new_journal(tmp_path)
    j.record("path", str(outer))
    outer.mkdir()
    j.record("path", str(inner))
    inner.mkdir()
    (inner / "file").write_text("x")

    results = j.undo()
    assert [(r.entry.target, r.outcome) for r in results] == [(str(inner), "removed"), (str(outer), "removed")]
    assert not outer.exists()
    assert not j.path.exists()
    assert journals(tmp_path / "journal") == []

    # a second undo has nothing left to do
    assert [r.outcome for r in j.undo()] == ["already gone", "already gone"]


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


def test_a_path_entry_removes_a_file_or_a_symlink_but_not_what_it_points_to(tmp_path: Path) -> None:
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "file").write_text("host data")
    link, plain = tmp_path / "link", tmp_path / "plain"
    link.symlink_to(kept)
    plain.write_text("x")
    j = new_journal(tmp_path)
    j.record("path", str(link))
    j.record("path", str(plain))
    assert [r.outcome for r in j.undo()] == ["removed", "removed"]
    assert not link.is_symlink() and not plain.exists()
    assert (kept / "file").read_text() == "host data"


def test_a_path_whose_entries_vanish_while_it_is_removed_is_still_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A container killed just before cleanup may still be exiting, and deleting its /tmp files, while rmtree
    walks the image (seen once in the fault matrix: `FileNotFoundError: 'tmp'`)."""
    image = tmp_path / "work" / "rootfs"
    (image / "tmp").mkdir(parents=True)
    (image / "tmp" / "listening.txt").write_text("x")
    (image / "bin").mkdir()
    real_rmtree = shutil.rmtree
    calls = []

    def racing_rmtree(path: Path) -> None:
        calls.append(path)
        if len(calls) == 1:  # the exiting process wins the race for tmp/
            real_rmtree(image / "tmp")
            raise FileNotFoundError(2, "No such file or directory", "tmp")
        real_rmtree(path)

    monkeypatch.setattr(shutil, "rmtree", racing_rmtree)
    j = new_journal(tmp_path)
    j.record("path", str(image))

    assert [r.outcome for r in j.undo()] == ["removed"]
    assert not image.exists() and len(calls) == 2


@pytest.mark.parametrize("target", ["/", "/var", "/tmp", "relative/dir", "tmp"])
def test_path_undo_refuses_short_or_relative_paths(tmp_path: Path, target: str) -> None:
    j = new_journal(tmp_path)
    j.record("path", target)
    (result,) = j.undo()
    assert result.failed and result.outcome.startswith("failed")
    assert "refusing" in result.outcome
    # nothing failed silently: the journal stays for a retry (and a human to look at)
    assert j.path.exists()
    assert Path("/var/lib").is_dir() and Path("/tmp").is_dir()


def test_a_failure_does_not_stop_the_other_entries_and_keeps_the_journal(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    j = new_journal(tmp_path)
    j.record("path", str(d))
    j.record("path", "/var")
    results = j.undo()
    assert results[0].failed and results[1].outcome == "removed"
    assert not d.exists()
    assert j.path.exists()  # kept: `workshop cleanup` can retry what failed


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


# -- undo: mounts --------------------------------------------------------------------------------------------------


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


# -- undo: processes -----------------------------------------------------------------------------------------------


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


def test_session_procs_with_nothing_running_is_already_gone(tmp_path: Path) -> None:
    j = new_journal(tmp_path, f"test-{secrets.token_hex(4)}")
    j.record("session-procs", str(tmp_path / "work"))
    assert [r.outcome for r in j.undo()] == ["already gone"]


def test_a_process_whose_start_time_changed_is_left_alone(tmp_path: Path) -> None:
    p = subprocess.Popen(["sleep", "100"])
    try:
        stat = procfs.read_stat(PROC, p.pid)
        assert stat is not None
        j = new_journal(tmp_path)
        # the pid was reused by another process since it was recorded
        j.record("process", str(p.pid), start=stat.starttime + 1)
        assert [r.outcome for r in j.undo()] == ["already gone"]
        assert p.poll() is None

        j2 = new_journal(tmp_path)
        j2.record("process", str(p.pid), start=stat.starttime)
        assert [r.outcome for r in j2.undo()] == ["removed"]
        assert p.wait(timeout=5) == -signal.SIGKILL
    finally:
        kill(p)


# -- undo: hostname ------------------------------------------------------------------------------------------------


def test_hostname_undo_with_the_current_name_changes_nothing(tmp_path: Path) -> None:
    name = socket.gethostname()
    j = new_journal(tmp_path)
    j.record("hostname", name)
    assert [r.outcome for r in j.undo()] == ["already gone"]
    assert socket.gethostname() == name


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


# -- leftovers: whose journal is it? -------------------------------------------------------------------------------


def test_a_journal_whose_owner_died_is_left_over(tmp_path: Path) -> None:
    j = new_journal(tmp_path)
    rewrite_header(j, owner_pid=dead_pid())
    assert [x.session for x in iter_leftovers(tmp_path / "journal")] == [j.session]


def test_a_journal_whose_owner_runs_is_not_left_over(tmp_path: Path) -> None:
    owner = subprocess.Popen(["sleep", "100"])
    try:
        stat = procfs.read_stat(PROC, owner.pid)
        assert stat is not None
        j = new_journal(tmp_path)
        rewrite_header(j, owner_pid=owner.pid, owner_start=stat.starttime)
        assert Journal.read(j.path).owner_alive()
        assert list(iter_leftovers(tmp_path / "journal")) == []
        # the same pid with another start time is a reused pid: the real owner is gone
        rewrite_header(j, owner_start=stat.starttime + 1)
        assert [x.session for x in iter_leftovers(tmp_path / "journal")] == [j.session]
    finally:
        kill(owner)


def test_a_journal_of_this_process_is_left_over_to_itself(tmp_path: Path) -> None:
    """What a process's own earlier undo left (a failed entry) is its to retry: it does not wait for itself."""
    j = new_journal(tmp_path)
    assert j.header["owner_pid"] == os.getpid()
    assert not j.owner_alive()
    assert [x.session for x in iter_leftovers(tmp_path / "journal")] == [j.session]


def test_a_journal_with_a_torn_header_is_left_over_under_its_file_name(tmp_path: Path) -> None:
    d = tmp_path / "journal"
    d.mkdir()
    (d / "crashed.jsonl").write_text('{"session": "crash')
    (left,) = iter_leftovers(d)
    assert left.session == "crashed" and left.entries == []


# -- `workshop cleanup` --------------------------------------------------------------------------------------------


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
