"""A lesson author's first try works: the guide's example passes as written, the guide's reference is the code's
own tables, and `workshop new` writes a skeleton that passes `workshop check`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.authoring_example import GUIDE, write_example
from tests.harness import REPO
from workshop import cli
from workshop.lesson import checks, loader, reference


def test_the_guides_reference_is_generated_from_the_tables_the_code_uses() -> None:
    assert reference.current(GUIDE.read_text()) == reference.render(), (
        "docs/lesson-authoring.md is out of date: run `python -m workshop.lesson.reference`"
    )


def test_every_check_helper_the_prelude_defines_is_in_the_table() -> None:
    defined = set(re.findall(r"^(\w+)\(\)", checks.PRELUDE, flags=re.M))
    assert defined == {h.name for h in checks.helpers()}


def test_the_guides_worked_example_passes_workshop_check(tmp_path: Path) -> None:
    lesson = loader.load_lesson(write_example(tmp_path))
    assert lesson.id == "hostname" and len(lesson.steps) == 2


def test_workshop_new_writes_a_skeleton_that_passes_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["new", "my-first", "--dir", str(tmp_path)]) == 0
    said = capsys.readouterr().out
    assert f"--lessons {tmp_path}" in " ".join(said.split()), said
    lesson = loader.load_lesson(tmp_path / "my-first" / "lesson.md")
    assert lesson.id == "my-first" and lesson.steps
    assert cli.main(["check", str(tmp_path / "my-first")]) == 0


def test_workshop_new_never_overwrites_and_refuses_a_bad_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["new", "mine", "--dir", str(tmp_path)]) == 0
    before = (tmp_path / "mine" / "lesson.md").read_text()
    (tmp_path / "mine" / "lesson.md").write_text(before + "\nmy edits\n")
    assert cli.main(["new", "mine", "--dir", str(tmp_path)]) == 1
    assert (tmp_path / "mine" / "lesson.md").read_text().endswith("my edits\n")
    assert cli.main(["new", "Not An Id", "--dir", str(tmp_path)]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "already exists" in out and "cannot be a lesson id" in out


def test_the_readme_counts_the_steps_a_learner_types_as_the_lessons_have_them() -> None:
    lessons = loader.load_all(loader.lesson_files(REPO / "lessons"))
    steps = [step for lesson in lessons for step in lesson.steps]
    said = re.search(r"(\d+) of the (\d+) steps\s+are yours to type", (REPO / "README.md").read_text())
    assert said, "the README no longer says how many steps are the learner's"
    assert (int(said.group(1)), int(said.group(2))) == (sum(s.is_try_it for s in steps), len(steps))


def test_the_readme_counts_the_steps_proven_by_sabotage_as_the_lessons_have_them() -> None:
    lessons = loader.load_all(loader.lesson_files(REPO / "lessons"))
    steps = [step for lesson in lessons for step in lesson.steps]
    said = re.search(
        r"(\d+) of the (\d+) steps are proven\s+this way", " ".join((REPO / "README.md").read_text().split())
    )
    assert said, "the README no longer says how many steps are proven by sabotage"
    assert (int(said.group(1)), int(said.group(2))) == (
        sum(s.sabotage is not None and not s.sabotage.none for s in steps),
        len(steps),
    )


def test_every_lesson_has_the_learner_type_at_least_two_steps() -> None:
    for lesson in loader.load_all(loader.lesson_files(REPO / "lessons")):
        typed = [step.title for step in lesson.steps if step.is_try_it]
        assert len(typed) >= 2, f"{lesson.id}: only {typed} are the learner's to type"


def test_every_step_a_learner_types_has_hints_in_tiers() -> None:
    for lesson in loader.load_all(loader.lesson_files(REPO / "lessons")):
        for k, step in enumerate(lesson.steps, start=1):
            if step.is_try_it:
                assert len(step.hints) >= 2, f"{lesson.id} step {k} ({step.title}): hints in at least two tiers"
