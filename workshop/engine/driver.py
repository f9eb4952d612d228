"""One running lesson, whoever drives it: the REPL, `workshop run` and trainer mode are thin front ends over this.

`LessonDriver` owns the lesson in progress: its session, where the learner stands (position, the try-it step
being typed, the hint tier), trainer mode, the learner's saved progress, the recap at the end, and going back
and forth (`jump`: a fresh session with the steps before the target replayed). Front ends turn keys and
commands into calls on it. It never prints: what it has to say is an event for the sink (the renderer), like
everything the runner, the learner helpers and the session say.

`Leftovers` is the one way to find and undo what crashed sessions left behind, for all four places that do it
(the REPL's offer at start, its `cleanup`, `workshop run` before a lesson, `workshop cleanup`).
"""

from __future__ import annotations

from dataclasses import dataclass

from workshop.engine import journal, learner, replay, runner, signals
from workshop.engine.events import (
    CleanedUp,
    Event,
    LeftoverUndone,
    LessonFinished,
    LineResult,
    LineTyped,
    Looked,
    Notice,
    Sink,
    TrainerMode,
)
from workshop.engine.session import LessonSession
from workshop.environment import Environment
from workshop.lesson.model import Lesson
from workshop.lesson.progress import Progress

DEFAULT_PACE = 25.0
"""Characters a second trainer mode types at: about as fast as a person types while talking, slow enough for a
room to read along."""


class LessonDriver:
    def __init__(
        self,
        env: Environment,
        sink: Sink,
        progress: Progress | None = None,
        *,
        keep_place: bool = False,
        learner_mode: bool = True,
        finish_note: str = "",
    ) -> None:
        self.env = env
        self.sink = sink
        self.progress = progress
        """Where steps done are recorded; None records nothing."""
        self.keep_place = keep_place
        """Also save where the learner stands, so `workshop` reopens the lesson there (the REPL does; `workshop
        run` and trainer mode only record the steps done)."""
        self.learner_mode = learner_mode
        """Try-it steps wait for the learner to type them; otherwise (`--yes`, trainer mode) they are typed."""
        self.finish_note = finish_note
        """Said after the recap when the last step passes."""
        self.session: LessonSession | None = None
        self.trying: learner.TryIt | None = None
        """The try-it step the learner is typing towards, while there is one."""
        self.hint_level = 0
        """The hint tier `hint` shows next, for the step at the current position."""
        self.trainer = False
        """Trainer mode: presenter notes shown, lines typed out for the room, try-it steps typed too."""

    # -- where the lesson stands ------------------------------------------------------------------------------------
    @property
    def lesson(self) -> Lesson | None:
        return self.session.lesson if self.session is not None else None

    @property
    def finished(self) -> bool:
        return self.session is not None and self.session.finished

    @property
    def on_try_it(self) -> bool:
        """The learner is typing towards the goal of the step at the current position."""
        s = self.session
        return s is not None and self.trying is not None and self.trying.index == s.position

    def _session(self) -> LessonSession:
        assert self.session is not None, "no lesson is running"
        return self.session

    # -- life cycle -------------------------------------------------------------------------------------------------
    def start(self, lesson: Lesson, resume: bool = False) -> int:
        """Ends a running lesson and starts `lesson` from a clean state; with `resume`, rebuilds the steps the
        learner had done before. Returns the step it stands at (0 for the first)."""
        self.stop()
        session = LessonSession(self.env, lesson, self.sink)
        self.session = session
        self._forget_step()
        try:
            session.start()
        except BaseException:
            self.stop()
            raise
        at = self.progress.resume_at(lesson.id, len(lesson.steps)) if resume and self.progress else 0
        if at > 0:
            self.sink(Notice(f"resuming {lesson.id} at step {at + 1}, where you left it"))
            replay.rebuild(session, at)
        self._save_place()
        return session.position

    def stop(self, forget_place: bool = False) -> CleanedUp | None:
        """Ends the lesson and undoes everything it created; with `forget_place`, `workshop` no longer reopens it."""
        self.trying = None
        if self.session is None:
            return None
        # held from here: a Ctrl-C between handing the session over and its close would drop it, its undo undone
        with signals.held():
            session, self.session = self.session, None  # gone even if undoing is interrupted
            if forget_place and self.progress is not None:
                self.progress.left(session.lesson.id)
            return session.close()

    def forget(self, lesson_id: str) -> None:
        """`reset`: the lesson's progress is forgotten (and the lesson ended, if it is the one running)."""
        if self.lesson is not None and self.lesson.id == lesson_id:
            self.stop()
        if self.progress is not None:
            self.progress.reset(lesson_id)

    # -- steps ------------------------------------------------------------------------------------------------------
    def next(self) -> runner.StepOutcome | None:
        """Enter: runs the next step; in learner mode a try-it step is shown for the learner to type instead (and
        while they type, reminds them of its goal). None when no step ran."""
        s = self._session()
        if s.finished:
            return None
        if self.on_try_it:
            learner.remind(s, self._trying())
            return None
        if self.learner_mode and s.lesson.steps[s.position].is_try_it:
            self._forget_step()
            self.trying = learner.present(s, s.position)
            self._save_place()
            return None
        return self.run(s.position)

    def again(self) -> runner.StepOutcome | None:
        """Runs the step run last once more (a try-it step being typed: its goal again)."""
        s = self._session()
        if self.on_try_it:
            learner.remind(s, self._trying())
            return None
        return self.run(s.last_run if s.last_run is not None else s.position)

    def skip(self) -> runner.StepOutcome:
        """Types the step for the learner: the rest of a try-it step on screen, else the whole next step."""
        s = self._session()
        return self.run(s.position, "try" if self.on_try_it else "all")

    def skip_quietly(self) -> None:
        """Trainer mode's `s`: the next step runs in one line, because later steps build on it."""
        s = self._session()
        if s.finished:
            self.sink(Notice("this was the last step: nothing left to skip", "warning"))
            return
        self.sink(Notice(f"skipping step {s.position + 1}: it runs quietly, later steps build on it"))
        self._forget_step()
        replay.rebuild(s, s.position + 1)
        self._save_place()

    def run(self, index: int, part: runner.Part = "all") -> runner.StepOutcome:
        s = self._session()
        self._forget_step()
        outcome = runner.run_step(s, index, part)
        if outcome.passed:
            self._passed(index)
        return outcome

    def type_line(self, text: str, echoed: bool = False) -> LineResult:
        """A line the learner typed into the active console; after it, a try-it step's goal is checked.

        `echoed`: the terminal already showed the line as it was typed, so it is not shown again."""
        s = self._session()
        sink = s.sink
        if echoed:
            s.sink = _without_typed_lines(sink)
        try:
            result = runner.type_line(s, text)
        finally:
            s.sink = sink
        trying = self.trying
        if trying is not None and not result.interrupted and learner.after_line(s, trying):
            self._passed(trying.index)
        return result

    def _passed(self, index: int) -> None:
        """A step passed (run, skipped, or its goal reached by the learner): saved, and the lesson moves on."""
        s = self._session()
        self._forget_step()
        if self.progress is not None:
            self.progress.step_done(s.lesson.id, index, len(s.lesson.steps))
        self._save_place()
        if s.finished:
            self.sink(LessonFinished(s.lesson, self.finish_note))

    def _forget_step(self) -> None:
        self.trying = None
        self.hint_level = 0

    def _trying(self) -> learner.TryIt:
        assert self.trying is not None
        return self.trying

    def _save_place(self) -> None:
        s = self.session
        if s is not None and self.progress is not None and self.keep_place:
            self.progress.at(s.lesson.id, s.position, len(s.lesson.steps))

    # -- help ---------------------------------------------------------------------------------------------------------
    def hint(self) -> None:
        """The next hint tier for the current step (past the last step: the last step's)."""
        s = self._session()
        learner.hint(s, s.lesson.steps[min(s.position, len(s.lesson.steps) - 1)], self.hint_level)
        self.hint_level += 1

    def solution(self) -> None:
        s = self._session()
        learner.solution(s, s.lesson.steps[s.position])

    def look(self, view: str) -> None:
        """`tree` / `ns`: one view of the processes as they are now (the lesson's extra views are not read)."""
        s = self._session()
        d = s.observe(emit=False)
        assert s.last is not None
        self.sink(Looked(view, s.last, d))

    # -- going back and forth ---------------------------------------------------------------------------------------
    def back(self) -> None:
        s = self._session()
        if s.position == 0:
            self.sink(Notice("this is the first step already", "warning"))
            return
        self.jump(s.position - 1)

    def jump(self, target: int) -> None:
        """To the pause before step `target` (0-based): forward by replaying the steps in between, backward from a
        fresh session with the steps before it replayed."""
        s = self._session()
        self._forget_step()
        if target == s.position:
            self.sink(Notice(f"already at step {target + 1}", "warning"))
            return
        if target < s.position:
            self.sink(Notice(f"back to step {target + 1}: a fresh session, the steps before it replayed quietly"))
            self.session = None  # closed now; if the fresh one cannot start, no lesson is running
            s = self.session = _fresh(s)
        replay.rebuild(s, target)
        self._save_place()

    # -- trainer mode -------------------------------------------------------------------------------------------------
    def present(self, on: bool, pace: float = DEFAULT_PACE, projector: bool = False) -> None:
        """Trainer mode on or off: notes, lines typed out at `pace`, try-it steps typed for the room."""
        self.trainer = on
        self.learner_mode = not on  # try-it steps are typed for the room, not left to the audience
        self.sink(TrainerMode(on, pace if on else 0.0, projector))


def _without_typed_lines(sink: Sink) -> Sink:
    def sink_(event: Event) -> None:
        if not isinstance(event, LineTyped):
            sink(event)

    return sink_


def _fresh(old: LessonSession) -> LessonSession:
    """Closes the session and starts a new one, without the banners a lesson shows at its real start."""
    sink = old.sink

    def quiet(event: Event) -> None:  # only what must not be missed: failures to clean up, warnings
        if (isinstance(event, CleanedUp) and event.failed) or (isinstance(event, Notice) and event.level != "info"):
            sink(event)

    old.sink = quiet
    old.close()
    new = LessonSession(old.env, old.lesson, quiet)
    try:
        new.start()
    except BaseException:
        new.close()
        raise
    new.sink = sink
    return new


# -- what crashed sessions left behind ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leftovers:
    """Journals of earlier sessions: `stale` ones, whose workshop is gone, are undone; `live` ones are spared
    (another learner's lesson on this machine) unless asked for."""

    stale: tuple[journal.Journal, ...]
    live: tuple[journal.Journal, ...]

    @classmethod
    def find(cls, env: Environment, live_too: bool = False) -> Leftovers:
        stale: list[journal.Journal] = []
        live: list[journal.Journal] = []
        for j in journal.journals(env.journal_dir):
            (live if j.owner_alive() and not live_too else stale).append(j)
        return cls(tuple(stale), tuple(live))

    @property
    def resources(self) -> int:
        return sum(len(j.entries) for j in self.stale)

    def undo(self, sink: Sink, announce: bool = False) -> bool:
        """Undoes the stale sessions, each reported; True when everything was undone."""
        ok = True
        for j in self.stale:
            results = tuple(j.undo())
            sink(LeftoverUndone(j.session, results, announce))
            ok = ok and not any(r.failed for r in results)
        return ok


def undo_leftovers(env: Environment, sink: Sink, announce: bool = False) -> bool:
    """Undoes what sessions whose workshop is gone left behind (never a live session's); True when all went."""
    return Leftovers.find(env).undo(sink, announce)
