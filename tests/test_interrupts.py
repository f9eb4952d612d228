"""Ctrl-C in the middle of a lesson's step stops it and leaves nothing behind: no mount, link, netns, cgroup or
process, for every lesson in the curriculum."""

from __future__ import annotations

import signal
import sys

import pexpect
import pytest

from tests.conftest import REPO
from workshop import loader

LESSONS = loader.load_all(loader.lesson_files(REPO / "lessons"))
EVERY_STEP = [(lesson, k) for lesson in LESSONS for k in range(1, len(lesson.steps) + 1)]


@pytest.mark.root
@pytest.mark.parametrize(("lesson", "step"), EVERY_STEP, ids=[f"{lesson.id}-step{k}" for lesson, k in EVERY_STEP])
def test_ctrl_c_in_the_middle_of_a_step_leaves_the_host_as_it_was(
    lesson: loader.Lesson, step: int, workshop_env: dict[str, str], host_unchanged: object
) -> None:
    total = len(lesson.steps)
    middle = step
    child = pexpect.spawn(
        sys.executable, ["-m", "workshop", "run", lesson.id, "--yes"], cwd=str(REPO), env=workshop_env,
        encoding="utf-8", timeout=120, dimensions=(40, 120),
    )  # fmt: skip
    try:
        child.expect_exact(f"step {middle}/{total}")
        child.expect_exact("# ")  # the step is typing its first command
        child.kill(signal.SIGINT)
        child.expect(pexpect.EOF, timeout=60)
    finally:
        child.close(force=True)
    assert child.exitstatus != 0, "an interrupted lesson must not report success"
    assert "Traceback" not in (child.before or "")
    assert "cleaned up" in (child.before or "") or "undone" in (child.before or "")
