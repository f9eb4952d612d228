"""The curriculum: lessons loaded from `lessons/` and the learner's progress (what this machine lacks for each
lesson is `doctor.Readiness`'s to say: reading lessons never runs the machine checks)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from workshop.environment import Environment
from workshop.lesson import loader
from workshop.lesson.model import Lesson
from workshop.lesson.progress import Progress


@dataclass
class Catalog:
    lessons: list[Lesson]
    progress: Progress = field(default_factory=Progress)

    @classmethod
    def load(cls, env: Environment) -> Catalog:
        """Raises loader.LessonError when a lesson file is broken."""
        return cls(loader.load_all(loader.lesson_files_in(env.lesson_dirs)))

    def ids(self) -> list[str]:
        return [lesson.id for lesson in self.lessons]

    def find(self, lesson_id: str) -> Lesson | None:
        return next((x for x in self.lessons if x.id == lesson_id), None)

    def suggest(self, lesson_id: str) -> str:
        close = difflib.get_close_matches(lesson_id, self.ids(), n=1, cutoff=0.5)
        return f"; did you mean {close[0]!r}?" if close else f" (lessons: {', '.join(self.ids())})"

    def progress_text(self) -> dict[str, str]:
        return {x.id: self.progress.summary(x.id, len(x.steps)) for x in self.lessons}
