"""What the page shows, folded from the engine's events: pure data, ready to send as JSON.

Two views read it: the room's (step title and diagram) and the trainer's (everything, notes and timer included).
`for_room` leaves out what the room must not see, so notes never leave the server on the room's stream.
"""

from __future__ import annotations

import dataclasses
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from workshop.engine import events as ev
from workshop.lesson.model import Lesson

DiagramMaker = Callable[[ev.Observed], str]
"""An observation -> an SVG diagram of it (see `workshop.ui.diagram`); may raise when Graphviz is missing."""


def default_diagram() -> DiagramMaker | None:
    """The diagram of a step (`workshop.ui.diagram`, drawn by Graphviz), where this workshop has it."""
    try:
        from workshop.ui import diagram  # type: ignore[attr-defined, unused-ignore]
    except ImportError:
        return None
    maker: DiagramMaker | None = getattr(diagram, "svg_for", None)
    return maker


@dataclass(frozen=True)
class PageState:
    lesson_id: str = ""
    lesson_title: str = ""
    step: int = 0
    """1-based; 0 before the first step."""
    steps: int = 0
    step_title: str = ""
    status: str = "waiting"
    """waiting, running, passed, failed, finished."""
    notes: tuple[str, ...] = ()
    started: float | None = None
    """When the lesson started (epoch seconds): the trainer's timer counts from it."""
    step_started: float | None = None
    pstree_html: str = ""
    diagram_svg: str = ""
    diagram_error: str = ""
    slide: int = 0
    """The slide of the step shown (`#N` of the lesson's deck): the slides view jumps there."""
    seq: int = 0
    """Bumped on every change, so the page can tell an update from a repeat."""

    def for_room(self) -> dict[str, Any]:
        return {
            "view": "room",
            "lesson_title": self.lesson_title,
            "step": self.step,
            "steps": self.steps,
            "step_title": self.step_title,
            "status": self.status,
            "diagram_svg": self.diagram_svg,
            "diagram_error": self.diagram_error,
            "lesson_id": self.lesson_id,
            "slide": self.slide,
            "seq": self.seq,
        }

    def for_trainer(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "view": "trainer", "notes": list(self.notes)}


def pstree_html(observed: ev.Observed) -> str:
    """The pstree and namespace views exactly as the terminal draws them, as HTML with inline colours."""
    from workshop.ui import process_views
    from workshop.ui.theme import theme_named

    console = Console(
        file=io.StringIO(), record=True, width=100, theme=theme_named("default"), color_system="truecolor"
    )
    console.print(process_views.pstree_view(observed.snapshot, observed.diff))
    console.print(process_views.namespace_view(observed.snapshot, observed.diff, whole=False))
    return console.export_html(inline_styles=True, code_format='<pre class="term">{code}</pre>')


@dataclass
class PageModel:
    """The fold: `apply` takes every event the session emits (on the server's thread, never the lesson's)."""

    diagram: DiagramMaker | None = None
    clock: Callable[[], float] = time.time
    curriculum: Callable[[], Sequence[Lesson]] = tuple
    """The lessons the deck's recap points to (the catalog); the running lesson alone when it is empty."""
    state: PageState = field(default_factory=PageState)
    lesson: Lesson | None = None
    """The running lesson, for its deck."""

    def deck(self) -> str | None:
        """The running lesson's slide deck (`workshop slides`' own HTML), or None before a lesson starts."""
        if self.lesson is None:
            return None
        from workshop.ui import slides

        return slides.render_deck(self.lesson, self._curriculum(self.lesson))

    def _curriculum(self, lesson: Lesson) -> Sequence[Lesson]:
        lessons = list(self.curriculum())
        return lessons if any(x.id == lesson.id for x in lessons) else [lesson]

    def _slide(self, lesson: Lesson, index: int) -> int:
        from workshop.ui import slides

        return slides.step_slide(lesson, self._curriculum(lesson), index)

    def apply(self, event: object) -> bool:
        """Fold one event in; True if the page changed."""
        s = self.state
        if isinstance(event, ev.LessonStarted):
            self.lesson = event.lesson
            now = self.clock()
            new = PageState(event.lesson.id, event.lesson.title, 0, len(event.lesson.steps), started=now)
        elif isinstance(event, ev.StepStarted):
            new = dataclasses.replace(
                s,
                step=event.index + 1,
                steps=len(event.lesson.steps),
                step_title=event.step.title,
                status="running",
                notes=event.notes,
                step_started=self.clock(),
                slide=self._slide(event.lesson, event.index),
            )
        elif isinstance(event, ev.StepFinished):
            new = dataclasses.replace(s, status="passed" if event.passed else "failed")
        elif isinstance(event, ev.Observed):
            svg, error = "", ""
            if self.diagram is not None:
                try:
                    svg = self.diagram(event)
                except Exception as e:  # a diagram that cannot be drawn must never stop the page
                    error = f"no diagram: {e}"
            new = dataclasses.replace(s, pstree_html=pstree_html(event), diagram_svg=svg, diagram_error=error)
        elif isinstance(event, ev.LessonFinished):
            new = dataclasses.replace(s, status="finished")
        else:
            return False
        self.state = dataclasses.replace(new, seq=s.seq + 1)
        return True
