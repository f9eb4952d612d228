"""What happens while a lesson runs, as data: the runner emits these, the renderer turns them into text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from workshop.engine.consoles import LineResult
from workshop.lesson.checks import CheckResult
from workshop.lesson.model import Lesson, Step
from workshop.observe.process_tree import Diff, Snapshot
from workshop.observe.resources import ExtrasDiff


@dataclass(frozen=True)
class LessonStarted:
    lesson: Lesson
    session: str
    workdir: str


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


Event = (
    LessonStarted
    | StepStarted
    | LineTyped
    | OutputLine
    | LineFinished
    | CheckDone
    | Observed
    | Notice
    | StepFinished
    | CleanedUp
)


class Sink(Protocol):
    def __call__(self, event: Event) -> None: ...
