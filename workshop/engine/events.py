"""What happens while a lesson runs, as data: the engine emits these, the renderer turns them into text.

Plain data only: importing this module starts nothing and pulls in no console machinery (pexpect), so the
renderer, the tests and any other front end can name these types cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from workshop.lesson.checks import CheckResult
from workshop.lesson.model import Lesson, Step
from workshop.observe.process_diff import Diff
from workshop.observe.process_tree import Snapshot
from workshop.observe.resources import ExtrasDiff

if TYPE_CHECKING:
    from workshop.engine.journal import Undone


@dataclass(frozen=True)
class LineResult:
    """How a line typed into a console ended (the consoles make these; events carry them)."""

    rc: int | None
    """Exit status of the line; None when it did not finish (timeout, Ctrl-C, shell gone)."""
    output: str
    timed_out: bool = False
    interrupted: bool = False
    restarted: bool = False
    """The console's shell had to be replaced: state of earlier steps in this console is gone."""


@dataclass(frozen=True)
class LessonStarted:
    lesson: Lesson
    session: str
    workdir: str
    helpers: tuple[str, ...] = ()
    """The lesson's helper files, copied into the work dir."""


@dataclass(frozen=True)
class StepStarted:
    lesson: Lesson
    index: int
    step: Step
    prose: str
    """The step's text with its variables filled in."""
    notes: tuple[str, ...]
    """Its presenter notes, variables filled in too (the renderer shows them in trainer mode only)."""


@dataclass(frozen=True)
class LineTyped:
    console: str
    line: str


@dataclass(frozen=True)
class OutputLine:
    console: str
    text: str


@dataclass(frozen=True)
class LineFinished:
    console: str
    line: str
    result: LineResult
    expected_rc: int | None
    timeout: float


@dataclass(frozen=True)
class CheckDone:
    result: CheckResult


@dataclass(frozen=True)
class Observed:
    snapshot: Snapshot
    diff: Diff
    extras: ExtrasDiff | None = None
    """The views the lesson's front matter asks for (`observe:`); None when it asks for none."""


@dataclass(frozen=True)
class Looked:
    """One view asked for between steps (`tree`, `ns`): the processes as they are now."""

    view: str
    """"pstree" or "namespaces"."""
    snapshot: Snapshot
    diff: Diff


@dataclass(frozen=True)
class Notice:
    text: str
    level: str = "info"
    """info, warning or error."""


@dataclass(frozen=True)
class StepFinished:
    index: int
    passed: bool


@dataclass(frozen=True)
class CleanedUp:
    removed: tuple[str, ...]
    failed: tuple[str, ...]


@dataclass(frozen=True)
class LessonFinished:
    """The lesson's last step passed: its recap (outro) is due."""

    lesson: Lesson
    note: str = ""
    """What the front end says next (the REPL: how to end the lesson); '' for none."""


@dataclass(frozen=True)
class Said:
    """A line of the front end's own guidance (what a key or command does next), in a named style."""

    text: str
    style: str = "muted"


@dataclass(frozen=True)
class TryItShown:
    """A try-it step is the learner's to type: where, and the goals its checks prove."""

    console: str
    goals: tuple[str, ...]


@dataclass(frozen=True)
class GoalChecked:
    """After a line the learner typed in a try-it step: what is still missing (nothing: the goal is reached)."""

    missing: tuple[str, ...]
    goals: tuple[str, ...]
    """Every goal of the step, shown ticked once all are met."""


@dataclass(frozen=True)
class HintShown:
    text: str


@dataclass(frozen=True)
class SolutionShown:
    """The lines a step types, with this session's values: (console, line) pairs; none when it types nothing."""

    lines: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class TrainerMode:
    """Trainer mode switched on or off: presenter notes shown, lines typed out at `pace` characters a second."""

    on: bool
    pace: float
    projector: bool = False
    """Also switch to the projector theme (and back when off): the REPL's `present on|off` does."""


@dataclass(frozen=True)
class LeftoverUndone:
    """What an earlier session left behind (its workshop is gone), undone."""

    session: str
    results: tuple[Undone, ...]
    announce: bool = False
    """Say first whose leftovers these are (`workshop run` does, before its own lesson)."""


Event = (
    LessonStarted
    | StepStarted
    | LineTyped
    | OutputLine
    | LineFinished
    | CheckDone
    | Observed
    | Looked
    | Notice
    | StepFinished
    | CleanedUp
    | LessonFinished
    | Said
    | TryItShown
    | GoalChecked
    | HintShown
    | SolutionShown
    | TrainerMode
    | LeftoverUndone
)


class Sink(Protocol):
    def __call__(self, event: Event) -> None: ...
