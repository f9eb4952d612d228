"""Runs steps and free-typed lines in a session's consoles, applies timeouts and Ctrl-C, runs the checks.

Everything that happens is emitted as an event; nothing here prints.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from workshop import cgroups, checks, variables
from workshop.consoles import Console, LineResult
from workshop.events import CheckDone, LineFinished, LineTyped, Notice, OutputLine, StepFinished, StepStarted
from workshop.session import LessonSession

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


def run_step(session: LessonSession, index: int) -> StepOutcome:
    lesson = session.lesson
    step = lesson.steps[index]
    _show_pending(session)
    session.sink(StepStarted(lesson, index, step, session.substitute(step.prose)))
    session.remember_before()
    ok = True
    interrupted = False
    try:
        for created in step.creates:
            session.record_created(created.kind, session.substitute(created.target))
        outputs: dict[str, list[str]] = {}
        for block in step.runs:
            console = session.consoles[block.console]
            session.active = block.console
            for k, line in enumerate(block.lines):
                last = k == len(block.lines) - 1
                expected = block.rc if last else (None if block.rc is None else 0)
                result = _type(session, console, session.substitute(line), block.timeout, expected)
                outputs.setdefault(block.console, []).append(result.output)
                if result.interrupted:
                    interrupted = True
                if result.rc is None or (expected is not None and result.rc != expected):
                    ok = False
                    break
            if not ok:
                break
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
    except KeyboardInterrupt:
        ok, interrupted = False, True
        session.sink(Notice("interrupted: the step was stopped; you are back at the prompt", "warning"))
    except variables.UnknownVariable as e:
        ok = False
        session.sink(Notice(f"the lesson uses {e}, which has no value right now", "error"))
    except (cgroups.CgroupError, OSError, RuntimeError) as e:
        ok = False
        session.sink(Notice(f"could not prepare this step: {e}", "error"))
    session.observe()
    if ok:
        session.passed.add(index)
    session.last_run = index
    session.position = index + 1 if ok else index
    session.sink(StepFinished(index, ok))
    return StepOutcome(index, ok, interrupted)


def type_line(session: LessonSession, text: str, console_name: str | None = None) -> LineResult:
    """A line the learner typed themselves: run it in the active console and show what changed."""
    name = console_name or session.active
    console = session.consoles[name]
    _show_pending(session)
    result = _type(session, console, text, FREE_TYPING_TIMEOUT, None)
    session.observe()
    return result
