"""Learner mode's "try it" steps: the learner types the command; the step's checks say when the goal is reached.

The shell calls in here: `present` shows the step and its goal and runs its setup blocks, `after_line` checks the
kernel after each line the learner typed, `hint`/`solution` help, `skip` types the step for them. Everything is
rendered through the `Renderer`; every process is started by `runner`.
"""

from __future__ import annotations

from dataclasses import dataclass

from workshop.engine import runner
from workshop.engine.session import LessonSession
from workshop.lesson.model import Step
from workshop.ui.render import Renderer


@dataclass
class TryIt:
    """The try-it step on screen: the learner is typing towards its goal."""

    index: int
    console: str
    """Where the learner types (the try block's console)."""


def goals(session: LessonSession, step: Step) -> list[str]:
    """What the step's checks prove, in the learner's words."""
    return [session.substitute(c.description) for c in step.checks if c.description]


def try_console(step: Step) -> str:
    return next(r.console for r in step.runs if r.try_it)


def present(session: LessonSession, out: Renderer, index: int) -> TryIt | None:
    """Shows a try-it step, runs what it prepares for the learner, and hands them the console; None when the
    setup failed (the step is then not theirs to try yet)."""
    outcome = runner.run_step(session, index, part="setup")
    if not outcome.passed:
        out.notice("the step's preparation failed (see above): Enter tries again, `skip` runs the whole step", "error")
        return None
    step = session.lesson.steps[index]
    trying = TryIt(index, try_console(step))
    session.active = trying.console
    remind(session, out, trying)
    return trying


def remind(session: LessonSession, out: Renderer, trying: TryIt) -> None:
    step = session.lesson.steps[trying.index]
    out.text(f"your turn: type it yourself in the {trying.console} console. The goal:", "heading")
    for goal in goals(session, step):
        out.text(f"  ○ {goal}")
    out.text("after each line you type, workshop checks the kernel. Stuck? `hint`, `solution`, `skip`.", "muted")


def after_line(session: LessonSession, out: Renderer, trying: TryIt) -> bool:
    """After a line the learner typed: True (and the step passed) when the kernel shows the goal reached."""
    missing = runner.unmet_goals(session, trying.index)
    if missing:
        out.text("not there yet; still missing:", "muted")
        for what in dict.fromkeys(missing):  # one line per distinct gap, in order
            out.text(f"  ○ {what}", "check.fail")
        return False
    out.text("goal reached ✓", "check.pass")
    for goal in goals(session, session.lesson.steps[trying.index]):
        out.text(f"  ✓ {goal}", "check.pass")
    runner.finish_step(session, trying.index, True)
    return True


def hint(session: LessonSession, out: Renderer, step: Step, level: int) -> None:
    """The hint of tier `level` (0 first); past the last tier, where to go from there."""
    if level < len(step.hints):
        tier = f"({level + 1}/{len(step.hints)}) " if len(step.hints) > 1 else ""
        out.hint(tier + session.substitute(step.hints[level]))
    elif step.is_try_it:
        none = "no more hints" if step.hints else "this step has no hints"
        out.hint(f"{none}; `solution` shows the command, `skip` runs it for you")
    elif step.hints:
        out.hint(session.substitute(step.hints[-1]))
    else:
        out.hint(f"this step types: {'; '.join(ln for r in step.runs for ln in r.lines)}")


def solution(session: LessonSession, out: Renderer, step: Step) -> None:
    """The lines the step would type (its try blocks, for a try-it step), with this session's real values."""
    blocks = [r for r in step.runs if r.try_it] or list(step.runs)
    if not blocks:
        out.text("this step types nothing; it looks at what is already there", "muted")
        return
    out.text("the solution, as workshop would type it:", "heading")
    for block in blocks:
        for line in block.lines:
            out.text(f"  {block.console}# {session.substitute(line)}", "command")
    out.text("type it yourself, or `skip` to have it typed for you", "muted")
