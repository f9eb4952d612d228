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


@pytest.mark.root
@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.id for lesson in LESSONS])
def test_ctrl_c_in_the_middle_of_a_step_leaves_the_host_as_it_was(
    lesson: loader.Lesson, workshop_env: dict[str, str], host_unchanged: object
) -> None:
    total = len(lesson.steps)
    middle = total // 2 + 1  # a step after the lesson has built up state (containers, mounts, links, cgroups)
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
