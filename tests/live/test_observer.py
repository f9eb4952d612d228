"""The live half of tests/unit/test_observer.py: what needs root and the real kernel."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from tests.ci import require_root
from tests.unit.test_observer import (
    render,
)
from workshop.observe import process_tree, procfs
from workshop.observe.process_diff import NsEvent, diff
from workshop.observe.process_tree import Snapshot, snapshot
from workshop.ui import process_views
from workshop.ui.theme import THEME


@pytest.fixture
def container() -> Iterator[subprocess.Popen[bytes]]:
    """`unshare -p -f --mount-proc sleep 30` in its own session; always killed and reaped."""
    require_root()
    popen = subprocess.Popen(
        ["unshare", "-p", "-f", "--kill-child", "--mount-proc", "sleep", "30"],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield popen
    finally:
        # unshare and its child share the new session's process group: one signal reaches both.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGKILL)
        popen.wait(timeout=10)


def _wait_for_child(pid: int, timeout: float = 5.0) -> Snapshot:
    deadline = time.monotonic() + timeout
    while True:
        s = snapshot(Path("/proc"), {"container": pid})
        if any(p.comm == "sleep" for p in s.procs.values()) or time.monotonic() > deadline:
            return s
        time.sleep(0.02)


@pytest.mark.root
def test_real_proc_shows_pid_1_in_a_new_pid_namespace(container: subprocess.Popen[bytes]) -> None:
    s = _wait_for_child(container.pid)

    sleeps = [p for p in s.procs.values() if p.comm == "sleep"]
    assert len(sleeps) == 1, s.procs
    sleep = sleeps[0]
    assert sleep.ppid == container.pid
    assert sleep.nspid[-1] == 1 and process_tree.inner_pid(sleep) == 1
    assert s.host_ns["pid"] is not None
    assert sleep.ns["pid"] != s.host_ns["pid"]
    assert process_tree.ns_transitions(s, sleep.pid) == ("pid",)

    out = io.StringIO()
    Console(file=out, width=100, color_system=None, theme=THEME).print(process_views.pstree_view(s, diff(None, s)))
    assert f"sleep({sleep.pid})[1] (pid)" in out.getvalue()


@pytest.mark.root
def test_a_real_container_restarted_between_two_looks_is_always_shown_as_new() -> None:
    """On a real kernel the restarted container usually gets the very numbers its predecessor had; either way,
    the learner must read "new", never "no namespace changed"."""
    require_root()
    looks: list[Snapshot] = []
    for _ in range(2):
        container = subprocess.Popen(["unshare", "--mount", "--uts", "sleep", "30"], start_new_session=True)
        try:
            deadline = time.monotonic() + 5
            while procfs.read_stat(Path("/proc"), container.pid) is None or _comm(container.pid) != "sleep":
                assert time.monotonic() < deadline, "unshare did not become sleep"
                time.sleep(0.01)
            looks.append(snapshot(Path("/proc"), {"c": container.pid}))
        finally:
            container.kill()
            container.wait(timeout=10)

    d = diff(*looks)

    old, new = (look.procs[look.focus["c"]].ns for look in looks)
    by_type = {c.ns_type: c for c in d.ns_changes}
    for ns_type in ("mnt", "uts"):
        # the numbers may also differ (another namespace took one in between): still new, never "moved"
        assert by_type[ns_type].event is NsEvent.CREATED, d.ns_changes
        assert by_type[ns_type].recycled == (old[ns_type] == new[ns_type])
        assert (ns_type, old[ns_type]) in d.gone_namespaces
    assert "no namespace changed" not in render(process_views.namespace_view(looks[1], d))


def _comm(pid: int) -> str | None:
    stat = procfs.read_stat(Path("/proc"), pid)
    return None if stat is None else stat.comm
