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
import secrets
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from workshop.engine.journal import (
    Entry,
    Journal,
    JournalError,
    iter_leftovers,
    journals,
)
from workshop.observe import procfs

PROC = Path("/proc")


# -- helpers -------------------------------------------------------------------------------------------------------


def new_journal(tmp_path: Path, session: str | None = None) -> Journal:
    return Journal.create(tmp_path / "journal", session or f"test-{secrets.token_hex(3)}", tmp_path / "work")


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


def kill(*procs: subprocess.Popen[bytes]) -> None:
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            p.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=5)


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


# -- undo: mounts --------------------------------------------------------------------------------------------------


# -- undo: processes -----------------------------------------------------------------------------------------------


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


def test_podman_storage_that_was_never_made_is_already_gone(tmp_path: Path) -> None:
    j = new_journal(tmp_path, f"test-{secrets.token_hex(4)}")
    j.record("podman", str(tmp_path / "work/podman"), runroot=str(tmp_path / "run/podman"), cgroups=[], parents=[])
    assert [r.outcome for r in j.undo()] == ["already gone"]


def test_podman_undo_removes_the_storage_and_the_runroot(tmp_path: Path) -> None:
    store, runroot = tmp_path / "work/podman", tmp_path / "run/podman"
    (store / "tmp").mkdir(parents=True)  # no root/: podman itself is not run
    runroot.mkdir(parents=True)
    j = new_journal(tmp_path, f"test-{secrets.token_hex(4)}")
    j.record("podman", str(store), runroot=str(runroot), cgroups=[], parents=[str(tmp_path / "gone-if-empty")])
    (tmp_path / "gone-if-empty").mkdir()
    (outcome,) = [r.outcome for r in j.undo()]
    assert outcome.startswith("removed"), outcome
    assert not store.exists() and not runroot.exists() and not (tmp_path / "gone-if-empty").exists()


def test_is_new_cgroup_judges_by_the_cgroups_the_machine_had() -> None:
    from workshop.engine.cgroupfs import is_new_cgroup

    had = {"/workshop", "/workshop/ws1", "/libpod_parent", "/libpod_parent/conmon", "/a", "/a/b", "/a/b/c"}
    assert not is_new_cgroup("/libpod_parent", had)
    assert not is_new_cgroup("/libpod_parent/conmon", had)
    assert is_new_cgroup("/workshop/ws1:", had)
    assert is_new_cgroup("/workshop/ws1:/conmon", had)
    assert not is_new_cgroup("/a/b/c/d", had), "deeper than what was recorded counts as the machine's"
