"""`workshop slides --diagrams`: every lesson run once, live, and each step's diagram kept for its deck.

The decks then show what a learner will see after each step, drawn from this machine's kernel, not by hand. The
run is the same as `workshop run ID --yes` (every line typed, every check verified), quiet, and undone at its end
like any other.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

from workshop.engine import events as ev
from workshop.engine.driver import LessonDriver
from workshop.environment import Environment
from workshop.lesson.model import Lesson
from workshop.ui.render import Renderer


class DiagramsFailed(Exception):
    """A lesson did not pass while its diagrams were recorded; the message names it and the step."""


def record(
    env: Environment, lessons: Sequence[Lesson], draw: Callable[[ev.Observed], str], say: Callable[[str], None]
) -> dict[str, dict[int, str]]:
    """Lesson id -> step index -> the SVG of the kernel's state after that step."""
    out: dict[str, dict[int, str]] = {}
    for lesson in lessons:
        say(f"running {lesson.id} for its diagrams…")
        out[lesson.id] = _one(env, lesson, draw)
    return out


def _one(env: Environment, lesson: Lesson, draw: Callable[[ev.Observed], str]) -> dict[int, str]:
    drawn: dict[int, str] = {}
    step: list[int] = []
    quiet = Environment(**{**vars(env), "stdout": io.StringIO(), "taps": []})
    renderer = Renderer(quiet, observe=False)

    def sink(event: ev.Event) -> None:
        if isinstance(event, ev.StepStarted):
            step[:] = [event.index]
        elif isinstance(event, ev.Observed) and step:
            drawn[step[0]] = draw(event)
        renderer(event)

    driver = LessonDriver(quiet, sink, None, learner_mode=False)
    try:
        driver.start(lesson)
        while not driver.finished:
            outcome = driver.next()
            if outcome is None or not outcome.passed:
                where = f"step {step[0] + 1}" if step else "its start"
                raise DiagramsFailed(f"{lesson.id} did not pass at {where}, so its diagrams would not show the lesson")
    finally:
        driver.stop()
    return drawn
