"""Every shipped lesson runs end to end as root, its checks verifying kernel state, and leaves the host as it was.

And the checks are not decoration: a lesson whose key primitive is taken out must fail.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

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


def _mutated(tmp_path: Path, lesson_dir: str, old: str, new: str) -> Path:
    """A copy of the lessons with one primitive taken out of one lesson."""
    copy = tmp_path / "lessons"
    shutil.copytree(REPO / "lessons", copy)
    path = copy / lesson_dir / "lesson.md"
    text = path.read_text()
    assert old in text, f"{old!r} is not in {lesson_dir}: update this test with the lesson"
    path.write_text(text.replace(old, new, 1))
    return copy


SABOTAGE = [
    # (lesson, the primitive, what it becomes, the check that must notice)
    ("chroot", "chroot {{rootfs}} /bin/sh", "/bin/sh", "the container shell's root directory is the image"),
    (
        "unshare-pid",
        "unshare -p -f --kill-child --mount-proc={{rootfs}}/proc chroot",
        "unshare -f --mount-proc={{rootfs}}/proc chroot",
        "the container shell is PID 1 of a new PID namespace",
    ),
    (
        "overlay",
        "upperdir={{upper2}},workdir={{work2}}",
        "upperdir={{upper1}},workdir={{work1}}",
        "two overlay mounts: same image below, a different upper dir on top of each",
    ),
    (
        "mount-ns",
        "unshare --mount /bin/sh\nmount -t tmpfs scratch",
        "/bin/sh\nmount -t tmpfs scratch",
        "the tmpfs is in the container's mount namespace and not in the host's",
    ),
    (
        "namespaces",
        "unshare --user --map-root-user /bin/sh",
        "unshare --user /bin/sh",
        "as nobody, the shell became root of a new user namespace mapped to 65534",
    ),
]


@pytest.mark.root
@pytest.mark.parametrize(("lesson_id", "old", "new", "check"), SABOTAGE)
def test_a_lesson_without_its_primitive_fails_its_check(
    lesson_id: str,
    old: str,
    new: str,
    check: str,
    workshop_env: dict[str, str],
    tmp_path: Path,
    host_unchanged: object,
) -> None:
    workshop_env["WORKSHOP_LESSONS"] = str(_mutated(tmp_path, lesson_id, old, new))
    done = run_workshop(["run", lesson_id, "--yes"], workshop_env)
    assert done.returncode == 1, done.stdout[-3000:]
    assert re.search(r"✗ " + re.escape(check), done.stdout), done.stdout[-3000:]
