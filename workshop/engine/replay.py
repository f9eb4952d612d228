"""Rebuilding a lesson's earlier steps without the learner: for resuming, `back` and `goto`.

A session always starts from a clean state, so replaying steps `[position, upto)` in order is idempotent: the
kernel ends up as it was when the learner last stood at step `upto`. Try-it blocks are typed for the learner.
The output is condensed to one line per step; a step that fails is shown in full, so it can be understood.
"""

from __future__ import annotations

from workshop.engine import runner
from workshop.engine.events import Event, Notice, Observed, Sink, StepFinished, StepStarted
from workshop.engine.session import LessonSession
from workshop.observe import process_diff


class _Condensed:
    """A sink that holds back a step's events and lets through one summary line, or everything when it failed."""

    def __init__(self, sink: Sink, total: int) -> None:
        self.sink = sink
        self.total = total
        self.held: list[Event] = []
        self.title = ""

    def __call__(self, event: Event) -> None:
        if isinstance(event, StepStarted):
            self.held = [event]
            self.title = event.step.title
            return
        if isinstance(event, StepFinished):
            if event.passed:
                self.sink(Notice(f"  ✓ rebuilt step {event.index + 1}/{self.total}: {self.title}"))
            else:
                for held in self.held:
                    self.sink(held)
                self.sink(event)
            self.held = []
            return
        self.held.append(event)


def rebuild(session: LessonSession, upto: int) -> bool:
    """Runs steps `[session.position, upto)` of a started session quietly; True when every one passed.

    Stops at the first step that fails (its output is shown in full) or is interrupted; the session's position
    then points at that step. Ends by showing the processes and namespaces as they now are.
    """
    upto = min(upto, len(session.lesson.steps))
    if session.position >= upto:
        return True
    sink = session.sink
    before = session.last
    sink(Notice(f"rebuilding steps {session.position + 1}..{upto} of {session.lesson.id}", "info"))
    condensed = _Condensed(sink, len(session.lesson.steps))
    session.sink = condensed
    ok = True
    try:
        for index in range(session.position, upto):
            if not runner.run_step(session, index).passed:
                ok = False
                break
    finally:
        session.sink = sink
    if not ok:
        sink(Notice(f"could not rebuild step {session.position + 1}; `reset` starts the lesson afresh", "error"))
    elif session.last is not None:
        # where the learner stands now, marked with everything the rebuilt steps changed
        sink(Observed(session.last, process_diff.diff(before, session.last)))
    return ok
