"""Every step proven: each step of every lesson, run with its primitive taken out (the step's ```sabotage block),
makes the lesson fail at exactly that step, at one of that step's checks. A check that still passes would be
teaching nothing the kernel confirms."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sabotage import curriculum, run_sabotaged
from workshop.lesson.model import Lesson

STEPS = [
    (lesson, i)
    for lesson in curriculum()
    for i, step in enumerate(lesson.steps)
    if step.sabotage is None or not step.sabotage.none  # `none: WHY`: only looks at the machine, not counted
]


@pytest.mark.root
@pytest.mark.parametrize(("lesson", "index"), STEPS, ids=[f"{lesson.id}-{i + 1}" for lesson, i in STEPS])
def test_the_step_without_its_primitive_fails_its_own_check(
    lesson: Lesson, index: int, workshop_env: dict[str, str], tmp_path: Path, host_unchanged: object
) -> None:
    step = lesson.steps[index]
    assert step.sabotage is not None, (
        f"{step.where}: step {index + 1} ({step.title}) has no ```sabotage block: say how to take its primitive out"
    )
    verdict = run_sabotaged(lesson, index, workshop_env, tmp_path)
    assert verdict.proven, f"{step.sabotage.where}: {verdict.why}"
