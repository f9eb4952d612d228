"""Trainer mode, as a trainer in front of a room: `workshop run LESSON --present` on a real pseudo-terminal.

Each line is typed out at a readable pace before it runs, the tool waits for a key between steps, `s`, `b` and
`g N` jump around with the skipped steps replayed quietly, and `t` hands the console to the trainer. The tests
press the keys a trainer would and check the kernel (files in the session's work dir, the container shell's UTS
namespace and the hostname inside it), not only the screen. Presenter notes show in this mode only, `--plain`
writes ASCII only, and NO_COLOR takes the colour out.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pexpect
import pytest
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import PipeInput
from prompt_toolkit.output import DummyOutput

from tests.harness import REPO, repl_environment, run_workshop, type_into_shell, typed_lines
from tests.hygiene import HostState
from tests.terminal import plain
from workshop.engine import events as ev
from workshop.engine import runner
from workshop.engine.session import LessonSession
from workshop.environment import Environment
from workshop.lesson import variables
from workshop.lesson.loader import load_lesson
from workshop.ui.render import Renderer
from workshop.ui.shell import Shell
from workshop.ui.theme import PROJECTOR_STYLES

COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-9]|4[0-9]|9[0-7]|10[0-7])(?:;[0-9;]*)?m")
"""An SGR sequence that sets a foreground or background colour (bold or reverse alone are not colour)."""
PAUSE = "q quit"
"""The end of the key legend at every pause but the last."""
NOTE = "Ask the room who has used unshare before."

DEMO = """\
---
id: present-demo
title: A lesson for the trainer
requires: [root, unshare]
consoles: [host, container]
---

# A lesson for the trainer

Three small steps, each building on the one before.

## A marker file

```run host
echo presented > {{workdir}}/marker
```

```notes
Ask the room who has used `unshare` before.
```

```notes
The marker is in this session's work dir; its id is {{session}}. Its shell is {{pid.host}}.
```

```check
# the marker exists
[ -f {{workdir}}/marker ]
```

## Its own hostname

```run container
unshare --uts /bin/sh
hostname pres-{{session}}
```

```check
# the container shell is in a new UTS namespace
not in_host_ns {{pid.container}} uts
```

## Still there

```run host
cat {{workdir}}/marker
```

```check
# the hostname from step 2 lives in the container's UTS namespace
[ "$(nsenter --target {{pid.container}} --uts hostname)" = "pres-{{session}}" ]
```
"""


def words(text: str) -> str:
    """Text with every run of whitespace made one space: rich wraps where it likes."""
    return " ".join(text.split())


@pytest.fixture
def lessons(tmp_path: Path) -> Path:
    folder = tmp_path / "lessons" / "present-demo"
    folder.mkdir(parents=True)
    (folder / "lesson.md").write_text(DEMO)
    return folder.parent


@pytest.fixture
def demo_env(workshop_env: dict[str, str], lessons: Path) -> dict[str, str]:
    return {**workshop_env, "WORKSHOP_LESSONS": str(lessons), "TERM": "dumb"}


# -- what the kernel says --------------------------------------------------------------------------------------------


def live_session(state_dir: Path) -> str:
    """The one session running now (a session's work dir goes when it closes, before a fresh one starts)."""
    found = [p.name for p in (state_dir / "sessions").glob("*")]
    assert len(found) == 1, f"expected one live session, found {found}"
    return found[0]


def session_processes(session: str) -> list[int]:
    marker = f"WORKSHOP_SESSION={session}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and marker in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
    return pids


def own_hostnames(session: str) -> set[str]:
    """The hostnames of the session's processes that live in a UTS namespace other than the host's."""
    host = os.readlink("/proc/self/ns/uts")
    names = set()
    for pid in session_processes(session):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/ns/uts") != host:
                done = subprocess.run(
                    ["nsenter", "--target", str(pid), "--uts", "hostname"], capture_output=True, text=True
                )
                names.add(done.stdout.strip())
    return names


# -- the trainer at the keyboard -------------------------------------------------------------------------------------


class Trainer:
    """`workshop run present-demo --present` on a pty, driven key by key."""

    def __init__(self, env: dict[str, str], pace: float) -> None:
        self.log = io.StringIO()
        self.child = pexpect.spawn(
            sys.executable, ["-m", "workshop", "run", "present-demo", "--present", "--pace", str(pace)],
            cwd=str(REPO), env=env, encoding="utf-8", codec_errors="replace", dimensions=(40, 120), timeout=60,
        )  # fmt: skip
        self.child.logfile_read = self.log

    def screen(self, tail: int | None = 4000) -> str:
        return plain(self.log.getvalue())[-tail if tail else 0 :]

    def wait_for(self, text: str) -> str:
        """Waits until `text` appears; returns what came before it (ANSI-stripped)."""
        try:
            self.child.expect_exact(text)
        except (pexpect.TIMEOUT, pexpect.EOF) as e:
            why = "the program ended" if isinstance(e, pexpect.EOF) else "timed out"
            pytest.fail(f"{why} waiting for {text!r}; the screen ended with:\n{self.screen()}", pytrace=False)
        return plain(self.child.before)

    def pause(self, step: int | None) -> str:
        """Waits for the key legend before step `step` (1-based), or the last one (None); returns the screen since."""
        if step is None:
            return self.wait_for("end of the lesson")
        before = self.wait_for(f"next {step}/3 ")
        self.wait_for(PAUSE)
        return before

    def silent_for(self, seconds: float) -> None:
        """Nothing new is shown for that long: the tool waits for a key."""
        with contextlib.suppress(pexpect.TIMEOUT):
            self.child.expect(r"\S", timeout=seconds)
            pytest.fail(f"it went on without a key: {self.child.after!r}; screen:\n{self.screen()}", pytrace=False)

    def press(self, key: str) -> None:
        self.child.send(key)

    def exit_status(self) -> int | None:
        self.wait_for("steps passed")
        self.child.expect(pexpect.EOF, timeout=30)
        self.child.close()
        return self.child.exitstatus  # type: ignore[no-any-return]

    def teardown(self) -> None:
        with contextlib.suppress(OSError, pexpect.ExceptionPexpect):
            if self.child.isalive():
                self.child.send("q")
                self.child.expect(pexpect.EOF, timeout=20)
        with contextlib.suppress(OSError, pexpect.ExceptionPexpect):
            self.child.close(force=True)


@pytest.fixture
def trainer(demo_env: dict[str, str], host_unchanged: HostState) -> Iterator[Callable[[float], Trainer]]:
    started: list[Trainer] = []

    def start(pace: float) -> Trainer:
        started.append(Trainer(demo_env, pace))
        return started[-1]

    yield start
    for t in started:
        t.teardown()


@pytest.mark.root
@pytest.mark.timeout(180)
def test_each_line_is_typed_out_and_the_tool_waits_for_a_key(
    trainer: Callable[[float], Trainer], state_dir: Path, host_unchanged: HostState
) -> None:
    pace = 20.0
    me = trainer(pace)
    me.pause(1)
    me.silent_for(1.0)
    session = live_session(state_dir)
    assert not (state_dir / "sessions" / session / "marker").exists()  # nothing ran before the key

    me.press("\r")
    shown = me.wait_for("host# e")
    started = time.monotonic()
    assert "marker" not in me.child.buffer, "the line appeared at once, not typed out"
    line = "echo presented > marker"  # typed relative to the work dir, where the console stands
    me.wait_for("> marker\r\n")
    assert time.monotonic() - started > 0.5 * (len(line) - len("e")) / pace
    me.pause(2)
    assert (state_dir / "sessions" / session / "marker").read_text() == "presented\n"
    assert "notes for the trainer" in shown
    assert NOTE in words(shown)
    assert f"its id is {session}." in words(shown), "the notes show this session's values, like the commands do"

    me.silent_for(1.0)
    assert own_hostnames(session) == set()  # step 2 waits for its key
    me.press(" ")
    me.wait_for(f"hostname pres-{session}")
    me.pause(3)
    assert own_hostnames(session) == {f"pres-{session}"}

    me.press("q")
    assert me.exit_status() == 1  # 2 of 3 steps: the trainer ended early
    assert not list((state_dir / "sessions").glob("*"))


@pytest.mark.root
@pytest.mark.timeout(180)
def test_skip_back_goto_and_the_trainers_own_console(
    trainer: Callable[[float], Trainer], state_dir: Path, host_unchanged: HostState
) -> None:
    me = trainer(0)
    me.pause(1)
    first = live_session(state_dir)

    me.press("s")  # skipped steps still run, quietly: later ones build on them
    me.wait_for("rebuilt step 1/3")
    me.pause(2)
    assert (state_dir / "sessions" / first / "marker").exists()
    me.press("s")
    me.wait_for("rebuilt step 2/3")
    me.pause(3)
    assert own_hostnames(first) == {f"pres-{first}"}
    assert NOTE not in words(me.screen(None)), "a skipped step's notes are not shown"

    me.press("t")  # the trainer's own console: the container shell the skipped step started
    me.wait_for("container# ")
    me.child.sendline("hostname")
    assert f"pres-{first}" in me.wait_for("container# ")
    me.child.sendline("resume")
    me.wait_for("back to the lesson")
    me.pause(3)

    me.press("b")  # back to step 2: a fresh session with step 1 replayed, step 2 not yet
    me.pause(2)
    second = live_session(state_dir)
    assert second != first
    assert session_processes(first) == []
    assert (state_dir / "sessions" / second / "marker").exists()
    assert own_hostnames(second) == set()

    me.press("g")
    me.wait_for("go to step (1-3): ")
    me.child.sendline("3")
    me.pause(3)
    assert own_hostnames(second) == {f"pres-{second}"}

    me.press("\r")  # step 3's check reads the hostname the replayed step 2 set
    me.wait_for("the hostname from step 2 lives in the container's UTS namespace")
    me.pause(None)
    me.press("\r")
    assert me.exit_status() == 0
    assert "3/3 steps passed" in me.screen()


@pytest.mark.root
@pytest.mark.timeout(120)
def test_a_key_that_means_nothing_and_a_step_that_does_not_exist(
    trainer: Callable[[float], Trainer], state_dir: Path, host_unchanged: HostState
) -> None:
    me = trainer(0)
    me.pause(1)
    me.press("x")
    me.wait_for("'x' means nothing here")
    me.press("g")
    me.wait_for("go to step (1-3): ")
    me.child.sendline("9")
    me.wait_for("no step 9: this lesson has steps 1 to 3")
    me.pause(1)
    me.press("b")
    me.wait_for("this is the first step already")
    me.pause(1)
    assert not (state_dir / "sessions" / live_session(state_dir) / "marker").exists()
    me.press("q")
    assert me.exit_status() == 1
    assert "Traceback" not in me.screen()


@pytest.mark.root
@pytest.mark.timeout(180)
def test_notes_only_in_trainer_mode_and_plain_is_ascii(
    demo_env: dict[str, str], state_dir: Path, host_unchanged: HostState
) -> None:
    done = run_workshop(["run", "present-demo", "--yes", "--plain"], demo_env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert "3/3 steps passed" in done.stdout
    assert "Ask the room" not in done.stdout
    assert "notes for the trainer" not in done.stdout
    assert done.stdout.isascii(), [c for c in done.stdout if not c.isascii()][:10]
    assert not list((state_dir / "sessions").glob("*"))


@pytest.mark.root  # `workshop run` asks for root before it looks at its options
def test_present_and_yes_do_not_mix(demo_env: dict[str, str], host_unchanged: HostState) -> None:
    done = run_workshop(["run", "present-demo", "--present", "--yes"], demo_env)
    assert done.returncode == 2
    assert "choose one" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize("command", [["list"], ["doctor"], ["check"]])
def test_plain_is_ascii_everywhere(demo_env: dict[str, str], command: list[str]) -> None:
    for args in (["--plain", *command], [*command, "--plain"]):
        done = run_workshop(args, demo_env)
        assert "Traceback" not in done.stderr
        assert done.stdout.strip(), done.stderr
        assert done.stdout.isascii(), [c for c in done.stdout if not c.isascii()][:10]


@pytest.mark.root  # the shell asks for root first
def test_plain_reaches_the_shells_prompt(demo_env: dict[str, str], host_unchanged: HostState) -> None:
    child = pexpect.spawn(
        sys.executable, ["-m", "workshop", "--plain"], cwd=str(REPO), env=demo_env, encoding="utf-8",
        dimensions=(40, 120), timeout=30,
    )  # fmt: skip
    child.logfile_read = log = io.StringIO()
    try:
        child.expect_exact("workshop > ")
        child.sendline("help")
        child.expect_exact("workshop > ")
        child.sendline("quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    shown = plain(log.getvalue())
    assert "present on|off" in shown
    assert shown.isascii(), [c for c in shown if not c.isascii()][:10]


def test_no_color_means_no_colour_on_a_terminal(demo_env: dict[str, str]) -> None:
    def screen(**extra: str) -> str:
        env = {k: v for k, v in demo_env.items() if k != "NO_COLOR"} | {"TERM": "xterm-256color", **extra}
        child = pexpect.spawn(
            sys.executable, ["-m", "workshop", "doctor"], cwd=str(REPO), env=env, encoding="utf-8",
            dimensions=(40, 120), timeout=60,
        )  # fmt: skip
        text = child.read()
        child.close()
        return str(text)

    assert COLOUR.search(screen()), "without NO_COLOR a terminal gets colour (else this test proves nothing)"
    coloured = screen(NO_COLOR="1")
    assert not COLOUR.search(coloured), repr(COLOUR.search(coloured))
    assert "unshare (util-linux)" in plain(coloured)


# -- the REPL switch, in-process ---------------------------------------------------------------------------------------


class PresentingShell(Shell):
    """The real shell; keeps, per line handled, what it rendered and where the lesson stood afterwards."""

    def __init__(self, env: Environment, pipe: PipeInput, output: DummyOutput) -> None:
        super().__init__(env, input=pipe, output=output, history=InMemoryHistory())
        self.handled: list[tuple[str, str, int | None, str | None]] = []
        """(line, output, the lesson's next step index, its session id) for each line."""

    def handle(self, line: str) -> None:
        stdout = self.env.stdout
        assert isinstance(stdout, io.StringIO)
        start = len(stdout.getvalue())
        super().handle(line)
        s = self.lesson
        self.handled.append(
            (line, stdout.getvalue()[start:], s.position if s else None, s.id if s else None)
        )  # fmt: skip


@pytest.mark.root
@pytest.mark.timeout(180)
def test_the_repl_switch_notes_typing_back_and_goto(
    lessons: Path, state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host_unchanged: HostState
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("SUDO_USER", raising=False)
    env = repl_environment(state_dir, lessons)
    lines = ["start present-demo", "present on 200", "", "goto 3", "", "back", "present off", "back", "back", ""]
    shell, rc = type_into_shell(lambda pipe, output: PresentingShell(env, pipe, output), typed_lines(*lines, "quit"))
    assert rc == 0
    steps = {i: h for i, h in enumerate(shell.handled)}
    assert [h[0] for h in shell.handled[: len(lines)]] == lines, [h[0] for h in shell.handled]

    first_step = steps[2]
    assert "notes for the trainer" in first_step[1]
    assert NOTE in words(first_step[1])
    assert f"its id is {first_step[3]}." in words(first_step[1])
    assert "host# echo presented" in first_step[1]
    assert (steps[3][2], steps[4][2]) == (2, 3)  # goto 3 stands before step 3; Enter runs it
    assert "the hostname from step 2 lives in the container's UTS namespace" in steps[4][1]
    assert "step done" in steps[4][1]
    back = steps[5]
    assert back[2] == 2 and back[3] != steps[4][3], "back starts a fresh session"
    assert "rebuilt step 1/3" in back[1]
    assert [h[2] for h in shell.handled[7:9]] == [1, 0]
    again = steps[9]
    assert "host# echo presented" in again[1]
    assert "notes for the trainer" not in again[1], "present off hides the notes"
    assert "Traceback" not in env.stdout.getvalue()  # type: ignore[attr-defined]
    assert not list((state_dir / "sessions").glob("*"))


# -- the renderer, in-process ----------------------------------------------------------------------------------------


def renderer(plain: bool = False, theme: str = "default") -> tuple[Renderer, io.StringIO]:
    out = io.StringIO()
    return Renderer(Environment(stdout=out, width=100, plain=plain, theme=theme)), out


def started(lessons: Path) -> ev.StepStarted:
    lesson = load_lesson(lessons / "present-demo" / "lesson.md")
    step = lesson.steps[0]
    return ev.StepStarted(lesson, 0, step, step.prose, step.notes)


def test_notes_are_rendered_only_when_presenting(lessons: Path) -> None:
    learner, seen = renderer()
    learner(started(lessons))
    assert "Ask the room" not in seen.getvalue()
    presenter, shown = renderer(theme="projector")
    presenter.present = True
    presenter(started(lessons))
    assert "notes for the trainer" in shown.getvalue()
    assert "Ask the room who has used unshare before." in " ".join(shown.getvalue().split())


def test_notes_get_the_sessions_values_and_keep_a_name_without_a_value(lessons: Path) -> None:
    step = load_lesson(lessons / "present-demo" / "lesson.md").steps[0]
    values = {"session": "c0ffee42", "workdir": "/var/lib/workshop/sessions/c0ffee42"}

    def value(name: str) -> str:
        if name not in values:
            raise variables.UnknownVariable(name)
        return values[name]

    session = cast(LessonSession, SimpleNamespace(value=value))
    notes = runner.presenter_notes(session, step)
    assert notes == (
        "Ask the room who has used `unshare` before.",
        "The marker is in this session's work dir; its id is c0ffee42. Its shell is {{pid.host}}.",
    )
    presenter, shown = renderer()
    presenter.present = True
    lesson = load_lesson(lessons / "present-demo" / "lesson.md")
    presenter(ev.StepStarted(lesson, 0, step, step.prose, notes))
    assert "its id is c0ffee42." in words(shown.getvalue())
    assert "{{session}}" not in shown.getvalue()


def typed(out: Renderer, text: io.StringIO, line: str) -> tuple[str, float]:
    """What rendering `line` as typed into the host console shows, and how long it took."""
    start, t0 = len(text.getvalue()), time.monotonic()
    out(ev.LineTyped("host", line))
    return text.getvalue()[start:], time.monotonic() - t0


def test_a_steps_line_is_typed_out_at_the_pace_a_persons_line_and_plain_at_once(lessons: Path) -> None:
    out, text = renderer()
    out.pace = 100.0
    # 30 characters at 100 a second take 0.3 s when typed out; shown at once, well under half of that
    line = "echo hello from the host shell"
    shown, took = typed(out, text, line)  # typed by a person between steps: shown as it is
    assert (shown, took < 0.15) == (f"host# {line}\n", True)
    out(started(lessons))
    shown, took = typed(out, text, line)
    assert (shown, took >= 0.29) == (f"host# {line}\n", True)

    flat, text = renderer(plain=True)
    flat.pace = 100.0
    flat(started(lessons))
    shown, took = typed(flat, text, line)
    assert (shown, took < 0.15) == (f"host# {line}\n", True)


def test_plain_rendering_is_ascii(lessons: Path) -> None:
    out, text = renderer(plain=True, theme="projector")
    out.present = True
    out(started(lessons))
    out(ev.Notice("x", "error"))
    out.footer("present-demo: next 1/3 │ Enter next · q quit")
    assert text.getvalue().isascii(), text.getvalue()
    assert "notes for the trainer" in text.getvalue()


def test_the_projector_theme_has_no_dim_text() -> None:
    assert not [name for name, style in PROJECTOR_STYLES.items() if "dim" in style.split()]
