"""Learner mode: a learner types a "try it" step themselves, asks for hints, skips a step, quits, and comes back
to the same step with the earlier steps rebuilt on the kernel; `reset` starts over from a clean state.

The end-to-end story drives the real `workshop` on a pty (see tests/live/test_e2e.py); the test itself reads the
kernel (PID namespaces, NSpid, roots) to confirm what workshop says. Smaller pieces run in-process or without
root: progress files (also broken ones), what a failing check says is missing, the transcript formats.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

import pytest
from prompt_toolkit.history import InMemoryHistory

from tests.harness import repl_environment, run_workshop, type_into_shell
from workshop.engine import runner
from workshop.engine.session import LessonSession
from workshop.environment import Environment
from workshop.lesson.model import Check, Lesson, Run, Step, Where
from workshop.lesson.progress import Progress
from workshop.ui.shell import Shell
from workshop.ui.transcript import Recorder, TranscriptError

ENTER = "\r"
"""What the learner types for step 2; `rootfs` is relative to the console's working directory, the work dir."""


# -- the whole story, as a learner, on a pty (root) ----------------------------------------------------------------


# -- in-process (root) ----------------------------------------------------------------------------------------------


Seen = TypeVar("Seen")


class ProbingShell(Shell, Generic[Seen]):
    """The real shell; after each line it reads the kernel with `probe` while the lesson still runs."""

    def __init__(self, env: Environment, probe: Callable[[LessonSession], Seen], **kw: object) -> None:
        super().__init__(env, history=InMemoryHistory(), **kw)  # type: ignore[arg-type]
        self.probe = probe
        self.seen: list[tuple[str, int | None, Seen | None]] = []

    def handle(self, line: str) -> None:
        super().handle(line)
        s = self.lesson
        self.seen.append((line, s.position if s else None, self.probe(s) if s else None))


def run_shell(env: Environment, probe: Callable[[LessonSession], Seen], *keys: str) -> ProbingShell[Seen]:
    shell, rc = type_into_shell(lambda pipe, output: ProbingShell(env, probe, input=pipe, output=output), "".join(keys))
    assert rc == 0
    return shell


@pytest.fixture
def env(repl_env: Environment) -> Environment:
    return repl_env


# -- without root ---------------------------------------------------------------------------------------------------


def test_progress_remembers_where_the_learner_stopped(tmp_path: Path) -> None:
    path = tmp_path / "state" / "workshop" / "progress.json"
    p = Progress(path)
    p.at("chroot", 0, 5)
    p.step_done("chroot", 0, 5)
    p.step_done("chroot", 1, 5)
    p.at("chroot", 2, 5)
    again = Progress(path)
    assert again.problem is None
    assert again.to_resume({"chroot": 5}) == ("chroot", 2)
    assert again.summary("chroot", 5) == "2/5 ●●○○○ ▶ at step 3"
    again.left("chroot")
    assert Progress(path).to_resume({"chroot": 5}) is None, "after `stop`, workshop does not reopen it by itself"
    assert Progress(path).resume_at("chroot", 5) == 2, "but `start chroot` still picks it up"
    again.reset("chroot")
    assert Progress(path).resume_at("chroot", 5) == 0 and Progress(path).summary("chroot", 5) == ""


def test_a_finished_lesson_is_not_reopened(tmp_path: Path) -> None:
    p = Progress(tmp_path / "progress.json")
    for k in range(3):
        p.step_done("veth", k, 3)
    p.at("veth", 3, 3)
    assert p.to_resume({"veth": 3}) is None
    assert p.resume_at("veth", 3) == 0
    assert p.summary("veth", 3) == "✓ completed"


@pytest.mark.parametrize(
    "content", ["{not json", "[1, 2]", '{"version": 2, "lessons": {"x": {"done": "all"}}}', "\x00"]
)
def test_a_broken_progress_file_is_set_aside_not_a_crash(tmp_path: Path, content: str) -> None:
    path = tmp_path / "progress.json"
    path.write_text(content)
    p = Progress(path)
    assert p.problem is not None and "starts afresh" in p.problem
    assert (tmp_path / "progress.json.broken").read_text() == content, "the learner's old file was lost"
    p.step_done("process", 0, 6)
    assert Progress(path).summary("process", 6).startswith("1/6")


def test_the_first_progress_format_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "progress.json"
    path.write_text(json.dumps({"process": {"done": [0, 1, 2], "total": 6, "next": 3}}))
    p = Progress(path)
    assert p.problem is None
    assert p.resume_at("process", 6) == 3 and p.summary("process", 6).startswith("3/6")


def lesson_with(check: str) -> Lesson:
    where = Where(Path("t.md"), 1)
    step = Step(
        "t", "", (Run("host", ("true",), where, try_it=True),), (Check("the file is there", check, where),), where
    )
    return Lesson("t", "T", "", (step,), Path("t.md"))


def test_a_failing_check_says_which_part_of_the_goal_is_missing(tmp_path: Path) -> None:
    there = tmp_path / "there"
    there.write_text("x")
    script = f"""# the file is there
[ -e {there} ]
# and it is not empty
[ -s {there} ]
# and it says hello
grep -q hello {there}
not true
"""
    session = LessonSession(Environment(state_dir=tmp_path), lesson_with(script), lambda e: None)
    assert runner.unmet_goals(session, 0) == ["and it says hello"]
    there.write_text("hello")
    assert runner.unmet_goals(session, 0) == ["and it says hello"], "a helper that failed (`not`) counts too"
    session = LessonSession(
        Environment(state_dir=tmp_path), lesson_with(script.replace("not true", "")), lambda e: None
    )
    assert runner.unmet_goals(session, 0) == []


def test_a_cast_transcript_is_asciinema_v2(tmp_path: Path) -> None:
    terminal = io.StringIO()
    rec = Recorder(tmp_path / "t.cast", terminal, width=100, height=30)
    rec.stream.write("step 1/6 Your shell's namespaces\n")
    rec.typed("process 1/6 host# echo hi")
    rec.save()
    assert terminal.getvalue() == "step 1/6 Your shell's namespaces\n", "the terminal no longer sees the output"
    header, *events = [json.loads(line) for line in (tmp_path / "t.cast").read_text().splitlines()]
    assert header["version"] == 2 and header["width"] == 100 and header["height"] == 30
    assert all(isinstance(t, float) and kind == "o" for t, kind, _ in events)
    assert [t for t, _, _ in events] == sorted(t for t, _, _ in events)
    assert "".join(text for _, _, text in events) == "step 1/6 Your shell's namespaces\r\nprocess 1/6 host# echo hi\r\n"


def test_an_html_transcript_keeps_the_text_and_colours(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "t.html", io.StringIO(), width=80)
    rec.stream.write("\x1b[32m  ✓ the container shell is PID 1\x1b[0m\n<b>not markup</b>\n")
    page = rec.save().read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "the container shell is PID 1" in page and "color: #" in page
    assert "&lt;b&gt;not markup&lt;/b&gt;" in page


@pytest.mark.parametrize("name", ["t.txt", "missing-dir/t.cast"])
def test_a_transcript_path_that_cannot_work_is_refused_up_front(tmp_path: Path, name: str) -> None:
    with pytest.raises(TranscriptError, match="--record"):
        Recorder(tmp_path / name, io.StringIO())


def test_record_with_a_bad_name_is_a_clear_error(workshop_env: dict[str, str], tmp_path: Path) -> None:
    done = run_workshop(["--record", str(tmp_path / "t.txt"), "list"], workshop_env, timeout=60)
    assert done.returncode == 2 and ".html" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_new_commands_are_suggested_when_mistyped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    env = repl_environment(tmp_path)
    run_shell(env, lambda s: None, "skpi" + ENTER, "solutoin" + ENTER, "reset" + ENTER, "quit" + ENTER)
    out = env.stdout.getvalue()  # type: ignore[attr-defined]
    assert "did you mean `skip`" in out and "did you mean `solution`" in out
    assert "which lesson? `reset ID`" in out


def test_an_unmet_goal_is_reported_quickly_even_with_eventually(tmp_path: Path) -> None:
    script = "# the kernel finished it\neventually [ -e /nonexistent ]\n"
    session = LessonSession(Environment(state_dir=tmp_path), lesson_with(script), lambda e: None)
    t0 = time.monotonic()
    assert runner.unmet_goals(session, 0) == ["the kernel finished it"]
    assert time.monotonic() - t0 < 4, "the learner waits for this after every line (a check's own eventually: 5 s)"
