"""The REPL in-process: a pipe input and DummyOutput stand in for the terminal, rendered text is read back.

Keys are typed ahead into the pipe; `Shell.run()` reads them prompt by prompt, exactly as from a keyboard, and
returns at `quit` or Ctrl-D. Every run ends with a Ctrl-D as a safety net, so a test never waits for a human.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import PipeInput
from prompt_toolkit.output import DummyOutput

from tests.harness import printed, type_into_shell
from workshop.environment import Environment
from workshop.ui.shell import COMMANDS, Shell

ENTER = "\r"
CTRL_C = "\x03"
CTRL_D = "\x04"
UP = "\x1b[A"


def paste(text: str) -> str:
    """A bracketed paste then Enter: how raw control characters reach the shell from a real terminal."""
    return f"\x1b[200~{text}\x1b[201~{ENTER}"


@dataclass(frozen=True)
class Handled:
    line: str
    position: int | None
    """The running lesson's next step index after the line, None without a lesson."""
    output: str
    """What the line rendered."""
    seconds: float


class RecordingShell(Shell):
    """The real shell; remembers each handled line with its output and the lesson's position after it, because
    the lesson session is gone once the shell quits."""

    def __init__(self, env: Environment, input: PipeInput, output: DummyOutput) -> None:
        super().__init__(env, input=input, output=output, history=InMemoryHistory())
        self.handled: list[Handled] = []

    def handle(self, line: str) -> None:
        stdout = self.env.stdout
        assert isinstance(stdout, io.StringIO)
        start, t0 = len(stdout.getvalue()), time.monotonic()
        super().handle(line)
        position = self.lesson.position if self.lesson is not None else None
        self.handled.append(Handled(line, position, stdout.getvalue()[start:], time.monotonic() - t0))

    def after(self, line: str) -> Handled:
        found = [h for h in self.handled if h.line == line]
        assert found, f"the shell never handled {line!r}; it handled {[h.line[:40] for h in self.handled]}"
        return found[-1]


@dataclass(frozen=True)
class Session:
    shell: RecordingShell
    rc: int
    output: str


pytestmark = pytest.mark.usefixtures("private_progress")


@pytest.fixture
def env(repl_env: Environment) -> Environment:
    return repl_env


def run_shell(env: Environment, *keys: str) -> Session:
    """Types `keys` into a fresh Shell and runs it until it quits (a final Ctrl-D ends it in any case)."""
    shell, rc = type_into_shell(lambda pipe, output: RecordingShell(env, pipe, output), "".join(keys))
    return Session(shell, rc, printed(env))


def assert_no_crash(session: Session, state_dir: Path) -> None:
    assert "Traceback" not in session.output
    assert "internal error" not in session.output, session.output[-2000:]
    assert not (state_dir / "workshop.log").exists(), "a crash was logged"


# -- without a lesson (no root needed) ------------------------------------------------------------------------------


def test_lessons_lists_every_lesson(env: Environment) -> None:
    s = run_shell(env, "lessons" + ENTER, "quit" + ENTER)
    assert s.rc == 0
    listing = s.shell.after("lessons").output
    for lesson_id in ("process", "chroot", "unshare-pid"):
        assert lesson_id in listing
    assert "A container is just a process" in listing


def test_help_lists_every_command(env: Environment) -> None:
    s = run_shell(env, "help" + ENTER, "quit" + ENTER)
    text = s.shell.after("help").output
    for command in COMMANDS.values():
        assert command.usage in text, f"`help` does not mention {command.name}"
        assert command.help in text


def test_a_mistyped_command_suggests_the_right_one(env: Environment) -> None:
    s = run_shell(env, "nxet" + ENTER, "quit" + ENTER)
    answer = s.shell.after("nxet").output
    assert "unknown command" in answer
    assert "did you mean `next`" in answer
    assert s.shell.lesson is None


def test_start_with_an_unknown_lesson_suggests_the_closest_id(env: Environment) -> None:
    s = run_shell(env, "start proces" + ENTER, "start nope" + ENTER, "quit" + ENTER)
    assert "did you mean 'process'" in s.shell.after("start proces").output
    # nothing close to "nope": the answer lists what there is
    listed = s.shell.after("start nope").output
    assert "no lesson 'nope'" in listed
    for lesson_id in ("process", "chroot", "unshare-pid"):
        assert lesson_id in listed
    assert s.shell.lesson is None
    assert not list((env.state_dir / "sessions").glob("*")), "a failed start left a session behind"


GARBAGE = {
    "control characters": paste("\x00\x01\x02\x07\x08\x0b\x0c\x0e\x1f\x7f"),
    "escape sequence typed": UP + ENTER,
    "escape sequence pasted": paste(UP + "\x1b]0;title\x07\x1b[2J"),
    "10,000 characters": "x" * 10_000 + ENTER,
    "10,000 characters with spaces": paste("start " + "y " * 5_000),
    "unicode": "ünïcødé ☃ 日本語 \U0001f600 \u202e\u200b" + ENTER,
    "replacement and non-characters": paste("\ufffd\uffff\U0010ffff"),
    "only spaces and tabs": paste(" \t  \t"),
    "a lone bang": "!" + ENTER,
    "command word with junk": paste("help\x00\x1b[A"),
}


@pytest.mark.parametrize("garbage", list(GARBAGE.values()), ids=list(GARBAGE))
def test_garbage_never_ends_in_a_traceback(env: Environment, garbage: str) -> None:
    s = run_shell(env, garbage, garbage, "help" + ENTER, "quit" + ENTER)
    assert s.rc == 0
    assert_no_crash(s, env.state_dir)
    # the shell keeps answering: the `help` typed after the garbage was handled and printed
    assert "this list" in s.shell.after("help").output
    assert s.shell.handled[-1].line == "quit"


def test_ctrl_c_at_the_prompt_does_not_quit(env: Environment) -> None:
    s = run_shell(env, "hel" + CTRL_C, CTRL_C, "help" + ENTER, "quit" + ENTER)
    assert s.rc == 0
    # Ctrl-C dropped the half-typed line without running it, and the shell went on to the next prompt
    assert [h.line for h in s.shell.handled] == ["help", "quit"]
    assert "this list" in s.shell.after("help").output


def test_ctrl_d_quits_cleanly(env: Environment) -> None:
    s = run_shell(env, CTRL_D, "help" + ENTER)
    assert s.rc == 0
    assert s.shell.handled == [], "the shell went on reading after Ctrl-D"
    assert "Traceback" not in s.output


# -- with a lesson running (root) ------------------------------------------------------------------------------------
