"""The worked example of docs/lesson-authoring.md, cut out of the page as a reader would copy it."""

from __future__ import annotations

from pathlib import Path

from tests.harness import REPO

GUIDE = REPO / "docs" / "lesson-authoring.md"


def example_lesson() -> str:
    text = GUIDE.read_text()
    return text.split("````markdown\n", 1)[1].split("\n````", 1)[0] + "\n"


def write_example(lessons: Path) -> Path:
    """The example as `lessons/hostname/lesson.md`."""
    path = lessons / "hostname" / "lesson.md"
    path.parent.mkdir(parents=True)
    path.write_text(example_lesson())
    return path
