"""Runs steps and free-typed lines in a session's consoles, applies timeouts and Ctrl-C, runs the checks.

Everything that happens is emitted as an event; nothing here prints.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Literal

from workshop.engine import cgroupfs
from workshop.engine.consoles import Console
from workshop.engine.events import (
    CheckDone,
    LineFinished,
    LineResult,
    LineTyped,
    Notice,
    OutputLine,
    StepFinished,
    StepStarted,
)
from workshop.engine.session import LessonSession
from workshop.lesson import checks, variables
from workshop.lesson.model import Step

Part = Literal["all", "setup", "try"]

FREE_TYPING_TIMEOUT = 60.0


@dataclass(frozen=True)
class StepOutcome:
    index: int
    passed: bool
    interrupted: bool = False


def _type(session: LessonSession, console: Console, text: str, timeout: float, expected_rc: int | None) -> LineResult:
    session.sink(LineTyped(console.name, text))
    try:
        result = console.type(text, timeout, on_output=lambda s: session.sink(OutputLine(console.name, s)))
    except KeyboardInterrupt:
        kept = console.interrupt()
        result = LineResult(None, "", interrupted=True, restarted=not kept)
    session.sink(LineFinished(console.name, text, result, expected_rc, timeout))
    return result


def _show_pending(session: LessonSession) -> None:
    """Output that arrived between steps (a background job, a shell killed from the host) is shown, not lost."""
    for name, console in session.consoles.items():
        for line in console.drain().splitlines():
            session.sink(OutputLine(name, line))


def presenter_notes(session: LessonSession, step: Step) -> tuple[str, ...]:
    """The step's notes with this session's values in them, so the trainer can point at the real paths.

    `workshop check` refuses a name the engine does not know; one that still has no value (e.g. a lesson loaded
    past the checks) stays as written: a note never stops a step. `{{pid.X}}` is the process as the step begins,
    before its lines run.
    """

    def value(name: str) -> str:
        try:
            return session.value(name)
        except variables.UnknownVariable:
            return "{{" + name + "}}"

    return tuple(variables.substitute(note, value) for note in step.notes)


def run_step(session: LessonSession, index: int, part: Part = "all") -> StepOutcome:
    """Shows a step, journals what it creates, types its blocks, verifies the outcome and observes.

    Learner mode splits a try-it step in two: `part="setup"` shows it and types only the blocks the learner does
    not type (nothing is verified, the position stays); `part="try"` (`skip`) then types the try blocks and
    verifies, as `"all"` does in one go.
    """
    lesson = session.lesson
    step = lesson.steps[index]
    session.last_run = index  # set now, not at the end: after a crash mid-step, `again` retries this step
    if part != "try":
        _show_pending(session)
        session.sink(StepStarted(lesson, index, step, session.substitute(step.prose), presenter_notes(session, step)))
        session.remember_before()
    ok = True
    interrupted = False
    try:
        for created in step.creates if part != "try" else ():
            session.record_created(created.kind, session.substitute(created.target))
        outputs: dict[str, list[str]] = {}
        blocks = step.runs if part == "all" else [b for b in step.runs if b.try_it == (part == "try")]
        for block in blocks:
            console = session.consoles[block.console]
            session.active = block.console
            for k, line in enumerate(block.lines):
                last = k == len(block.lines) - 1
                expected = block.rc if last else (None if block.rc is None else 0)
                result = _type(session, console, session.typed(line, block.console), block.timeout, expected)
                outputs.setdefault(block.console, []).append(result.output)
                if result.interrupted:
                    interrupted = True
                if result.rc is None or (expected is not None and result.rc != expected):
                    ok = False
                    break
            if not ok:
                break
        if part != "setup":  # after the setup, the learner types and the goal is checked after each line
            ok = _verify(session, step, outputs) and ok
    except KeyboardInterrupt:
        ok, interrupted = False, True
        session.sink(Notice("interrupted: the step was stopped; you are back at the prompt", "warning"))
    except variables.UnknownVariable as e:
        ok = False
        session.sink(Notice(f"the lesson uses {e}, which has no value right now", "error"))
    except (cgroupfs.CgroupError, OSError, RuntimeError) as e:
        ok = False
        session.sink(Notice(f"could not prepare this step: {e}", "error"))
    if part != "setup" or blocks:  # a try-it step that prepares nothing has nothing to show yet
        session.observe()
    if part == "setup":
        return StepOutcome(index, ok, interrupted)
    return finish_step(session, index, ok, interrupted)


def finish_step(session: LessonSession, index: int, ok: bool, interrupted: bool = False) -> StepOutcome:
    """Records a step's outcome: passed ones move the lesson on (also a try-it step whose goal the learner reached)."""
    if ok:
        session.passed.add(index)
    session.last_run = index
    session.position = index + 1 if ok else index
    session.sink(StepFinished(index, ok))
    return StepOutcome(index, ok, interrupted)


def _verify(session: LessonSession, step: Step, outputs: dict[str, list[str]]) -> bool:
    """The step's `expect` patterns against what its consoles printed, then its checks, each one shown."""
    ok = True
    for exp in step.expects:
        pattern = session.substitute(exp.pattern)
        seen = "\n".join(outputs.get(exp.console, []))
        if not re.search(pattern, seen, re.MULTILINE):
            ok = False
            session.sink(Notice(f"expected the {exp.console} console to show /{pattern}/, it did not", "error"))
    for check in step.checks:
        shown = dataclasses.replace(check, description=session.substitute(check.description))
        verdict = checks.run_check(shown, session.substitute(check.script), session.id)
        session.sink(CheckDone(verdict))
        ok = ok and verdict.passed
    return ok


def unmet_goals(session: LessonSession, index: int) -> list[str]:
    """Learner mode, after each line typed in a try-it step: runs the step's checks without showing them and
    says, per failing check, what is still missing: the comment above the line that failed, else the check's
    description. Empty when the goal is reached. Short timeout: this runs after every line the learner types."""
    missing: list[str] = []
    for check in session.lesson.steps[index].checks:
        script = session.substitute(check.script)
        verdict = checks.run_check(check, _LOCATE_FAILURE + script, session.id, timeout=GOAL_TIMEOUT, patience=1.0)
        if not verdict.passed:
            missing.append(_comment_above(script, verdict.output) or session.substitute(check.description))
    return missing


GOAL_TIMEOUT = 5.0
_LOCATE_FAILURE = (
    'set -E; trap \'echo "WORKSHOP_FAILED=$LINENO ${BASH_LINENO[*]:-}" >&2\' ERR; echo "WORKSHOP_BASE=$LINENO" >&2\n'
)
"""Prefixed to a check run after a learner's line: reports the script line that failed (the outermost call, when a
helper failed). `eventually` waits at most a second there (`patience`), as the learner waits after every line."""


def _comment_above(script: str, output: str) -> str:
    """The `# comment` nearest above the script line that failed (per `_LOCATE_FAILURE`'s report), or ''."""
    found: dict[str, str] = {}
    for line in output.splitlines():
        key, _, value = line.partition("=")
        if key in ("WORKSHOP_BASE", "WORKSHOP_FAILED"):
            found.setdefault(key, value)  # the first failure reported is where the script stopped
    try:
        failed = int([n for n in found["WORKSHOP_FAILED"].split() if n != "0"][-1]) - int(found["WORKSHOP_BASE"])
    except (KeyError, ValueError, IndexError):
        return ""
    above = script.splitlines()[:failed]
    return next((ln.strip().lstrip("#").strip() for ln in reversed(above) if ln.strip().startswith("#")), "")


def type_line(session: LessonSession, text: str, console_name: str | None = None) -> LineResult:
    """A line the learner typed themselves: run it in the active console and show what changed."""
    name = console_name or session.active
    console = session.consoles[name]
    _show_pending(session)
    result = _type(session, console, text, FREE_TYPING_TIMEOUT, None)
    session.observe()
    return result
