"""Learner mode's "try it" steps: the learner types the command; the step's checks say when the goal is reached.

The lesson driver calls in here: `present` shows the step and its goal and runs its setup blocks, `after_line`
checks the kernel after each line the learner typed, `hint`/`solution` help. What the learner sees is emitted as
events through the session's sink, like everything else the engine shows; every process is started by `runner`.
"""

from __future__ import annotations

from dataclasses import dataclass

from workshop.engine import runner
from workshop.engine.events import GoalChecked, HintShown, Notice, SolutionShown, TryItShown
from workshop.engine.session import LessonSession
from workshop.lesson.model import Step


@dataclass
class TryIt:
    """The try-it step on screen: the learner is typing towards its goal."""

    index: int
    console: str
    """Where the learner types (the try block's console)."""


def goals(session: LessonSession, step: Step) -> tuple[str, ...]:
    """What the step's checks prove, in the learner's words."""
    return tuple(session.substitute(c.description) for c in step.checks if c.description)


def try_console(step: Step) -> str:
    return next(r.console for r in step.runs if r.try_it)


def present(session: LessonSession, index: int) -> TryIt | None:
    """Shows a try-it step, runs what it prepares for the learner, and hands them the console; None when the
    setup failed (the step is then not theirs to try yet)."""
    outcome = runner.run_step(session, index, part="setup")
    if not outcome.passed:
        session.sink(
            Notice("the step's preparation failed (see above): Enter tries again, `skip` runs the whole step", "error")
        )
        return None
    step = session.lesson.steps[index]
    trying = TryIt(index, try_console(step))
    session.active = trying.console
    remind(session, trying)
    return trying


def remind(session: LessonSession, trying: TryIt) -> None:
    session.sink(TryItShown(trying.console, goals(session, session.lesson.steps[trying.index])))


def after_line(session: LessonSession, trying: TryIt) -> bool:
    """After a line the learner typed: True (and the step passed) when the kernel shows the goal reached."""
    missing = runner.unmet_goals(session, trying.index)
    # one line per distinct gap, in order
    session.sink(GoalChecked(tuple(dict.fromkeys(missing)), goals(session, session.lesson.steps[trying.index])))
    if missing:
        return False
    runner.finish_step(session, trying.index, True)
    return True


def hint(session: LessonSession, step: Step, level: int) -> None:
    """The hint of tier `level` (0 first); past the last tier, where to go from there."""
    if level < len(step.hints):
        tier = f"({level + 1}/{len(step.hints)}) " if len(step.hints) > 1 else ""
        text = tier + session.substitute(step.hints[level])
    elif step.is_try_it:
        none = "no more hints" if step.hints else "this step has no hints"
        text = f"{none}; `solution` shows the command, `skip` runs it for you"
    elif step.hints:
        text = session.substitute(step.hints[-1])
    else:
        text = f"this step types: {'; '.join(ln for r in step.runs for ln in r.lines)}"
    session.sink(HintShown(text))


def solution(session: LessonSession, step: Step) -> None:
    """The lines the step would type (its try blocks, for a try-it step), with this session's real values."""
    blocks = [r for r in step.runs if r.try_it] or list(step.runs)
    lines = tuple((block.console, session.typed(line, block.console)) for block in blocks for line in block.lines)
    session.sink(SolutionShown(lines))
