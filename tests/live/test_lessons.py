"""Every shipped lesson runs end to end as root, its checks verifying kernel state, and leaves the host as it was.

That the checks are not decoration, step by step, is tests/live/test_sabotage.py's.
"""

from __future__ import annotations

import pytest

from tests.ci import require_tool
from tests.harness import REPO, run_workshop
from workshop.lesson import loader

LESSONS = [lesson.id for lesson in loader.load_all(loader.lesson_files(REPO / "lessons"))]


@pytest.mark.root
@pytest.mark.parametrize("lesson_id", LESSONS)
def test_lesson_runs_live_and_leaves_the_host_as_it_was(
    lesson_id: str, workshop_env: dict[str, str], host_unchanged: object
) -> None:
    for tool in ("unshare", "nsenter", "chroot", "pstree"):
        require_tool(tool)
    done = run_workshop(["run", lesson_id, "--yes"], workshop_env)
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-2000:]
    steps = len(loader.load_all(loader.lesson_files(REPO / "lessons"))[LESSONS.index(lesson_id)].steps)
    assert f"{steps}/{steps} steps passed" in out
    # after every step: the process tree and the namespace view
    assert out.count("pstree") >= steps and out.count("namespaces") >= steps
    assert "✗" not in out and "Traceback" not in done.stderr
