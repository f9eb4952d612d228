"""The REPL under garbage: control characters, huge lines, unknown commands, Ctrl-C in a step, Ctrl-D anywhere.

In-process first (a pipe input and DummyOutput, as in test_shell): hypothesis types and pastes garbage at the
prompt, and a fixed list of nasty lines goes into a running lesson's console as free typing. Then end to end
with pexpect against the real `workshop` on a pty, with a lesson of our own whose second step sleeps, so that
Ctrl-C and Ctrl-D land in the middle of a step. Whatever is typed: never a traceback, the prompt comes back, and
the session's processes, mounts, work dir and journal are gone afterwards (`host_unchanged`).
"""

from __future__ import annotations

import io
import os
import re
import sys
import termios
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import PipeInput
from prompt_toolkit.output import DummyOutput

from tests.harness import REPO, printed, repl_environment, type_into_shell
from tests.hygiene import HostState
from tests.terminal import PROMPT, plain
from workshop.engine import runner
from workshop.environment import Environment
from workshop.ui.shell import Shell

ENTER = "\r"
CTRL_C = "\x03"
PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"

LESSON = """\
---
id: garbage
title: Garbage in, nothing out
order: 1
requires: [root, unshare]
consoles: [host, container]
---

# Garbage in, nothing out

A shell in new namespaces, then a step that takes its time.

## A shell in new namespaces

```run container
unshare --uts --ipc --pid --fork --kill-child --mount-proc /bin/sh
```

```check
# the container shell is in a new PID namespace
not in_host_ns {{pid.container}} pid
```

## A long step

```run container timeout=120
sleep 45
```

```check
# the container shell is still in its own PID namespace
not in_host_ns {{pid.container}} pid
```
"""


def paste(text: str) -> str:
    """A bracketed paste then Enter: how raw control characters reach the shell from a real terminal."""
    return f"{PASTE_START}{text}{PASTE_END}{ENTER}"


@pytest.fixture
def lessons_dir(tmp_path: Path) -> Path:
    """Only our lesson: nothing another lesson does (or a half-written one) gets in the way."""
    folder = tmp_path / "lessons" / "garbage"
    folder.mkdir(parents=True)
    (folder / "lesson.md").write_text(LESSON)
    return folder.parent


pytestmark = pytest.mark.usefixtures("private_progress")


# -- in-process --------------------------------------------------------------------------------------------------


class RecordingShell(Shell):
    """The real shell; keeps each handled line with what it rendered, since the session is gone after quit."""

    def __init__(self, env: Environment, pipe: PipeInput, output: DummyOutput) -> None:
        super().__init__(env, input=pipe, output=output, history=InMemoryHistory())
        self.handled: list[tuple[str, str]] = []
        self.focus: list[int | None] = []
        """The container console's foreground pid after each line (None without a lesson)."""

    def handle(self, line: str) -> None:
        stdout = self.env.stdout
        assert isinstance(stdout, io.StringIO)
        start = len(stdout.getvalue())
        super().handle(line)
        self.handled.append((line, stdout.getvalue()[start:]))
        container = self.lesson.consoles.get("container") if self.lesson is not None else None
        self.focus.append(container.focus_pid() if container is not None else None)

    def after(self, line: str) -> str:
        found = [out for handled, out in self.handled if handled == line]
        assert found, f"never handled {line[:60]!r}; handled {[h[:40] for h, _ in self.handled]}"
        return found[-1]


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def run_shell(env: Environment, keys: str) -> tuple[RecordingShell, int, str]:
    """Types `keys` into a fresh Shell until it quits; a final Ctrl-D ends it in any case."""
    shell, rc = type_into_shell(lambda pipe, output: RecordingShell(env, pipe, output), keys)
    return shell, rc, printed(env)


def assert_no_crash(output: str, state_dir: Path) -> None:
    assert "Traceback" not in output
    assert "internal error" not in output, output[-3000:]
    assert not (state_dir / "workshop.log").exists(), (state_dir / "workshop.log").read_text()[-3000:]


def fresh_env(state_dir: Path, lessons_dir: Path) -> Environment:
    return repl_environment(state_dir, lessons_dir)


# Anything but a surrogate (not encodable), what would end or escape the paste itself, and the words that end the
# shell as they should (`quit`, `exit`: then nothing after them is answered).
LEAVING = frozenset({"quit", "exit"})
pasted_lines = (
    st.text(st.characters(blacklist_categories=["Cs"]), max_size=300)
    .filter(lambda s: PASTE_END not in s)
    .filter(lambda s: s.strip() not in LEAVING)
)
# Keys as typed: every control key but Ctrl-D (which would quit, as it should) and Enter (which ends the line).
typed_keys = st.text(st.characters(max_codepoint=0x2FF, blacklist_characters="\x04\r\n"), max_size=60).filter(
    lambda s: s.strip() not in LEAVING
)
garbage_inputs = st.lists(
    st.one_of(pasted_lines.map(paste), typed_keys.map(lambda keys: keys + ENTER)), min_size=1, max_size=4
)


@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(garbage=garbage_inputs)
def test_garbage_at_the_prompt_never_ends_in_a_traceback(
    garbage: list[str], tmp_path_factory: pytest.TempPathFactory, lessons_dir: Path
) -> None:
    state = tmp_path_factory.mktemp("state")
    env = fresh_env(state, lessons_dir)
    fds = open_fds()
    shell, rc, output = run_shell(env, "".join(garbage) + "help" + ENTER + "quit" + ENTER)
    assert rc == 0
    assert_no_crash(output, state)
    assert [line for line, _ in shell.handled][-2:] == ["help", "quit"], "the shell stopped answering"
    assert "this list" in shell.after("help")
    assert shell.lesson is None
    assert not list(state.rglob("*")), f"garbage created {list(state.rglob('*'))}"
    assert open_fds() == fds, "the shell left file descriptors open"


def test_unknown_commands_and_huge_lines_at_the_prompt(tmp_path: Path, lessons_dir: Path) -> None:
    env = fresh_env(tmp_path / "state", lessons_dir)
    huge = "x" * 100_000
    shell, rc, output = run_shell(
        env, "frobnicate --now" + ENTER + paste(huge) + paste("start " + "y" * 100_000) + "quit" + ENTER
    )
    assert rc == 0
    assert_no_crash(output, env.state_dir)
    assert "unknown command 'frobnicate'" in shell.after("frobnicate --now")
    assert "unknown command" in shell.after(huge)
    assert "no lesson" in shell.after("start " + "y" * 100_000)


# What a learner can throw at a console by accident. Each line is handled as free typing in the container shell:
# it must not crash workshop, hang it for longer than the free-typing timeout, or lose the container.
IN_A_LESSON = {
    "control characters": paste("\x00\x01\x02\x07\x08\x0b\x0c\x0e\x1f\x7f"),
    "terminal signal keys pasted": paste("echo a\x03b\x1ac\x1cd\x04e\x15f\x17g"),
    "end-of-file pasted alone": paste("\x04"),
    "escape sequences": paste("\x1b[A\x1b]0;title\x07\x1b[2J"),
    "100,000 characters": paste("echo " + "x" * 100_000),
    "unknown command": "frobnicate --now" + ENTER,
    "unicode": "echo ünïcødé ☃ 日本語 \U0001f600 \u202e\u200b" + ENTER,
    "unclosed quote": "echo 'unclosed" + ENTER,
    "here-document never ended": "cat <<EOF" + ENTER,
    "a lone backslash": "\\" + ENTER,
    "program reading the terminal": "read answer" + ENTER,
    "a lone bang": "!" + ENTER,
    "two bangs": "!!" + ENTER,
}


@pytest.mark.root
@pytest.mark.timeout(240)
def test_garbage_typed_into_a_lesson_console_loses_nothing(
    state_dir: Path, lessons_dir: Path, host_unchanged: HostState, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "FREE_TYPING_TIMEOUT", 3.0)
    env = fresh_env(state_dir, lessons_dir)
    keys = "start garbage" + ENTER + ENTER  # Enter runs step 1: the container shell
    keys += "".join(IN_A_LESSON.values())
    keys += "echo still-alive" + ENTER + "quit" + ENTER
    shell, rc, output = run_shell(env, keys)
    assert rc == 0
    assert_no_crash(output, state_dir)
    step1 = shell.after("")
    assert "step done" in step1, step1[-2000:]
    container = shell.focus[[line for line, _ in shell.handled].index("")]
    assert container is not None
    # the container shell after step 1 is the one that answers after all the garbage: nothing was lost
    assert shell.focus[-2] == container, f"the container shell changed: {shell.focus}"
    assert "│ still-alive" in shell.after("echo still-alive")
    assert "frobnicate: not found" in shell.after("frobnicate --now")
    echoed = shell.after("echo " + "x" * 100_000)
    rows = "".join(row.split("│ ", 1)[1].strip() for row in echoed.splitlines() if "│ " in row)  # cut to fit
    assert "x" * 1000 in rows, "the long line did not reach the console"
    assert "interrupted" in shell.after("echo 'unclosed")
    # control characters are refused, not sent: the terminal of the console would act on them
    assert "not sent: the line holds control characters (\\x04)" in shell.after("\x04")
    assert "\\x03 \\x04 \\x15 \\x17 \\x1a \\x1c" in shell.after("echo a\x03b\x1ac\x1cd\x04e\x15f\x17g")
    assert not list(env.sessions_dir.glob("*")) and not list(env.journal_dir.glob("*.jsonl"))


# -- end to end, as a learner on a terminal --------------------------------------------------------------------------


def lesson_prompt(step: int, console: str) -> str:
    return f"garbage {step}/2 {console}# "


@dataclass
class Terminal:
    child: pexpect.spawn
    log: io.StringIO

    def screen(self, tail: int = 4000) -> str:
        return plain(self.log.getvalue())[-tail:]

    def wait_for(self, text: str, timeout: float = 30) -> str:
        try:
            self.child.expect_exact(text, timeout=timeout)
        except (pexpect.TIMEOUT, pexpect.EOF) as e:
            why = "the program ended" if isinstance(e, pexpect.EOF) else "timed out"
            pytest.fail(f"{why} waiting for {text!r}; the screen ended with:\n{self.screen()}", pytrace=False)
        return plain(self.child.before)

    def wait_for_mode(self, raw: bool, timeout: float = 30) -> None:
        """Waits until the terminal is raw (the REPL reads keys: ^D is a key) or cooked (a step runs: ^C is a
        signal, ^D an end-of-file for nobody). A key sent before the switch means something else. The pty's
        master reads the same termios as the slave that workshop set."""
        deadline = time.monotonic() + timeout
        while bool(termios.tcgetattr(self.child.child_fd)[3] & termios.ICANON) == raw:
            if time.monotonic() > deadline:
                pytest.fail(f"the terminal never became {'raw' if raw else 'cooked'}:\n{self.screen()}", pytrace=False)
            time.sleep(0.02)

    def wait_exit(self, timeout: float = 60) -> int | None:
        try:
            self.child.expect(pexpect.EOF, timeout=timeout)
        except pexpect.TIMEOUT:
            pytest.fail(f"workshop did not exit; the screen ended with:\n{self.screen()}", pytrace=False)
        self.child.wait()
        self.child.close()
        return self.child.exitstatus  # type: ignore[no-any-return]


@pytest.fixture
def terminal(workshop_env: dict[str, str], lessons_dir: Path, host_unchanged: HostState) -> Iterator[Terminal]:
    log = io.StringIO()
    child = pexpect.spawn(
        sys.executable, ["-m", "workshop"], cwd=str(REPO), encoding="utf-8", codec_errors="replace",
        env={**workshop_env, "TERM": "dumb", "WORKSHOP_LESSONS": str(lessons_dir)}, dimensions=(40, 120), timeout=30,
    )  # fmt: skip
    child.logfile_read = log
    yield Terminal(child, log)
    if child.isalive():  # a failed test: Ctrl-C, Ctrl-D, then SIGKILL
        try:
            child.sendcontrol("c")
            time.sleep(0.2)
            child.sendcontrol("d")
            child.expect(pexpect.EOF, timeout=15)
        except (OSError, pexpect.ExceptionPexpect):
            pass
    child.terminate(force=True)
    child.close(force=True)


def leftovers(state_dir: Path) -> list[str]:
    return [str(p) for p in (state_dir / "sessions").glob("*")] + [str(p) for p in (state_dir / "journal").glob("*")]


def session_processes(state_dir: Path) -> list[str]:
    """Processes started by our consoles (they carry WORKSHOP_SESSION) or living below the state dir."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if b"WORKSHOP_SESSION=" in environ and cwd.startswith(str(state_dir)):
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry.name} {cmd}")
    return found


@pytest.mark.root
@pytest.mark.timeout(240)
def test_a_learner_throwing_garbage_then_ctrl_c_and_ctrl_d_leaves_nothing(
    terminal: Terminal, state_dir: Path, host_unchanged: HostState
) -> None:
    me = terminal
    me.wait_for(PROMPT)
    # before a lesson: control characters, an unknown command, a line of 100,000 characters
    me.child.send(paste("\x00\x01\x07\x08\x0b\x0c\x1b[2J\x7f"))
    me.wait_for(PROMPT)
    me.child.sendline("frobnicate --now")
    assert "unknown command 'frobnicate'" in me.wait_for(PROMPT)
    t0 = time.monotonic()
    me.child.send(paste("z" * 100_000))
    assert "unknown command" in me.wait_for(PROMPT, timeout=60)
    assert time.monotonic() - t0 < 30, "a 100,000-character line took too long"

    me.child.sendline("start garbage")
    me.wait_for(lesson_prompt(1, "container"))
    me.child.sendline("")
    assert "step done" in me.wait_for(lesson_prompt(2, "container"))
    # inside the lesson, garbage goes to the container console as free typing
    me.child.send(paste("echo " + "y" * 100_000))
    assert "│ " + "y" * 100 in me.wait_for(lesson_prompt(2, "container"), timeout=60)
    me.child.sendline("echo ünïcødé ☃")
    assert "│ ünïcødé ☃" in me.wait_for(lesson_prompt(2, "container"))

    # Ctrl-C while step 2 sleeps: the step stops, the lesson and its container stay
    me.child.sendline("")
    me.wait_for("sleep 45")
    me.wait_for_mode(raw=False)
    t0 = time.monotonic()
    me.child.sendcontrol("c")
    back = me.wait_for(lesson_prompt(2, "container"), timeout=20)
    assert time.monotonic() - t0 < 10, "Ctrl-C took too long to stop the step"
    assert "interrupted" in back
    me.child.sendline("echo $$")
    assert re.search(r"│ 1\n", me.wait_for(lesson_prompt(2, "container"))), "the container shell is gone"
    assert leftovers(state_dir), "the lesson is still running, so its work dir and journal must exist"

    # Ctrl-D at the prompt inside the lesson: clean up and leave
    me.wait_for_mode(raw=True)  # TERM=dumb: the prompt is printed before the terminal goes raw
    me.child.sendcontrol("d")
    assert me.wait_exit() == 0
    screen = me.screen(1_000_000)
    assert "Traceback" not in screen and "internal error" not in screen
    assert leftovers(state_dir) == []
    assert session_processes(state_dir) == []


@pytest.mark.root
@pytest.mark.timeout(240)
def test_ctrl_d_while_a_step_runs_breaks_nothing_and_leaves_nothing(
    terminal: Terminal, state_dir: Path, host_unchanged: HostState
) -> None:
    me = terminal
    me.wait_for(PROMPT)
    me.child.sendline("start garbage")
    me.wait_for(lesson_prompt(1, "container"))
    me.child.sendline("")
    me.wait_for(lesson_prompt(2, "container"))
    me.child.sendline("")
    me.wait_for("sleep 45")
    me.wait_for_mode(raw=False)
    # While a step runs the terminal is cooked: Ctrl-D is the end-of-file character for a reader nobody is, so
    # the step goes on; Ctrl-C then stops it, and the lesson is still there.
    me.child.sendcontrol("d")
    time.sleep(1)
    assert me.child.isalive(), f"Ctrl-D during a step ended workshop:\n{me.screen()}"
    me.child.sendcontrol("c")
    assert "interrupted" in me.wait_for(lesson_prompt(2, "container"), timeout=20)
    assert leftovers(state_dir), "the lesson ended"
    me.wait_for_mode(raw=True)
    me.child.sendcontrol("d")
    status = me.wait_exit(timeout=60)
    screen = me.screen(1_000_000)
    assert "Traceback" not in screen and "internal error" not in screen
    assert status == 0, screen[-3000:]
    assert leftovers(state_dir) == []
    assert session_processes(state_dir) == []


def test_the_lesson_used_here_is_valid(lessons_dir: Path) -> None:
    from workshop.lesson import loader

    lesson = loader.load_lesson(lessons_dir / "garbage" / "lesson.md")
    assert [s.title for s in lesson.steps] == ["A shell in new namespaces", "A long step"]
    assert lesson.steps[1].runs[0].timeout > 45, "the long step must not time out before Ctrl-C"
