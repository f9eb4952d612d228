"""The live half of tests/unit/test_shell.py: what needs root and the real kernel."""

from __future__ import annotations

import re

import pytest

from tests.hygiene import HostState
from tests.unit.test_shell import (
    ENTER,
    assert_no_crash,
    run_shell,
)
from workshop.engine import runner
from workshop.environment import Environment

pytestmark = pytest.mark.usefixtures("private_progress")


@pytest.fixture
def env(repl_env: Environment) -> Environment:
    return repl_env


@pytest.mark.root
@pytest.mark.timeout(120)
def test_a_lesson_step_by_step(env: Environment, host_unchanged: HostState) -> None:
    s = run_shell(
        env,
        "start process" + ENTER,
        ENTER,  # Enter runs the next step: step 1
        "hint" + ENTER,
        "status" + ENTER,
        "echo hello-from-console" + ENTER,
        "quit" + ENTER,
    )
    assert s.rc == 0
    assert_no_crash(s, env.state_dir)

    assert s.shell.after("start process").position == 0
    step1 = s.shell.after("")
    assert step1.position == 1, step1.output
    assert "step 1/6" in step1.output
    for seen in ("pstree", "namespaces", "✓", "step done"):
        assert seen in step1.output

    hint = s.shell.after("hint")
    assert hint.output.startswith("hint: ")
    assert "unshare --uts" in hint.output  # the hint of the step that comes next, step 2

    status = s.shell.after("status").output
    assert "process — A container is just a process" in status
    assert "2 of 6; passed: 1" in status
    assert "session" in status and str(env.sessions_dir) in status

    free = s.shell.after("echo hello-from-console")
    assert free.position == 1, "a free-typed line moved the lesson on"
    shown = free.output.index("│ hello-from-console")
    assert free.output.index("pstree", shown) > shown, "no pstree after the free-typed line"

    # quit cleaned up: no session, no work dir, no journal left
    assert s.shell.lesson is None
    assert not list(env.sessions_dir.glob("*"))
    assert not list(env.journal_dir.glob("*.jsonl"))


@pytest.mark.root
@pytest.mark.timeout(120)
def test_commands_type_short_paths_and_status_shows_what_they_stand_for(
    env: Environment, host_unchanged: HostState
) -> None:
    s = run_shell(env, "start overlay" + ENTER, ENTER, "status" + ENTER, "quit" + ENTER)
    assert_no_crash(s, env.state_dir)
    step1 = s.shell.after("").output
    assert "host# tar -xf " in step1 and " -C rootfs" in step1  # as the talks typed it: relative to the work dir
    assert "host# mkdir upper1 work1 merged1 upper2 work2 merged2" in step1
    status = " ".join(s.shell.after("status").output.split())
    sessions = re.escape(str(env.sessions_dir))
    assert re.search(rf"rootfs is {sessions}/\w+/rootfs", status), status
    assert re.search(rf"upper1 is {sessions}/\w+/upper1", status), status


@pytest.mark.root
@pytest.mark.timeout(120)
def test_again_reruns_the_last_step(env: Environment, host_unchanged: HostState) -> None:
    s = run_shell(env, "start process" + ENTER, ENTER, "again" + ENTER, "quit" + ENTER)
    assert_no_crash(s, env.state_dir)
    again = s.shell.after("again")
    assert "step 1/6" in again.output
    assert "readlink /proc/self/ns/*" in again.output
    assert "✓" in again.output and "step done" in again.output
    assert again.position == 1, "`again` moved the lesson on"


@pytest.mark.root
@pytest.mark.timeout(120)
def test_a_hanging_free_line_is_interrupted_by_the_timeout(
    env: Environment, host_unchanged: HostState, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "FREE_TYPING_TIMEOUT", 2.0)
    s = run_shell(env, "start process" + ENTER, "sleep 1000" + ENTER, "echo still-alive" + ENTER, "quit" + ENTER)
    assert_no_crash(s, env.state_dir)

    hung = s.shell.after("sleep 1000")
    assert hung.seconds < 15, f"the timeout did not stop `sleep 1000` in time ({hung.seconds:.1f}s)"
    assert "ran longer than 2s" in hung.output
    assert "interrupted" in hung.output
    assert "restarted" not in hung.output, "Ctrl-C should have been enough, without a new shell"

    after = s.shell.after("echo still-alive")
    assert "│ still-alive" in after.output, "the console stopped answering after the interrupt"
