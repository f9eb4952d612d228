"""Installed like any Python program (`pip install .`, or pipx), outside the repository, workshop still has its
whole curriculum: the lessons ship inside the wheel. A learner's own folder of lessons is offered beside them.

Installs from the wheels of an offline bundle (`make-bundle`), so the test needs no package index.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests import offline_debian
from tests.ci import require_tool
from tests.harness import REPO
from workshop.lesson import loader

LESSONS = [lesson.id for lesson in loader.load_all(loader.lesson_files(REPO / "lessons"))]


def _tracked_copy(dest: Path) -> Path:
    """The repository as a user downloads it: what git tracks (and new files), no venv, no build leftovers."""
    listing = ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    for name in subprocess.run(listing, capture_output=True, check=True).stdout.decode().split("\0"):
        if name and (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    return dest


def test_pip_install_outside_the_repository_lists_the_whole_curriculum_and_a_learners_own(tmp_path: Path) -> None:
    require_tool("git")
    bundle = offline_debian.make_bundle(tmp_path / "bundle")
    source = _tracked_copy(tmp_path / "source")
    venv = tmp_path / "venv"
    scratch = tmp_path / "tmp"  # pip's build dirs: inside the test's own directory, never /tmp
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "WORKSHOP_LESSONS", "VIRTUAL_ENV")}
    env |= {"TMPDIR": str(scratch), "PIP_DISABLE_PIP_VERSION_CHECK": "1", "NO_COLOR": "1", "COLUMNS": "200"}
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True, env=env, timeout=120)
    install = [str(venv / "bin/pip"), "install", "-q", "--no-index", "--find-links", str(bundle / "wheels")]
    done = subprocess.run([*install, str(source)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    shutil.rmtree(source)  # nothing may still come from the source tree

    packaged = list(venv.glob("lib/python3*/site-packages/workshop/lessons/*/lesson.md"))
    assert len(packaged) == len(LESSONS), packaged

    own = tmp_path / "my-lessons" / "my-process"
    shutil.copytree(REPO / "lessons" / "process", own)  # the lesson and the programs its commands run
    text = (REPO / "lessons" / "process" / "lesson.md").read_text()
    (own / "lesson.md").write_text(text.replace("id: process\n", "id: my-process\n", 1))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env["WORKSHOP_STATE_DIR"] = str(tmp_path / "state")
    env["XDG_STATE_HOME"] = str(tmp_path / "xdg")
    workshop = str(venv / "bin" / "workshop")

    listed = subprocess.run([workshop, "list"], capture_output=True, text=True, env=env, cwd=elsewhere, timeout=60)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    for lesson_id in LESSONS:
        assert lesson_id in listed.stdout, f"{lesson_id} missing from an installed workshop:\n{listed.stdout}"
    assert "my-process" not in listed.stdout

    added = [workshop, "--lessons", str(own.parent), "list"]
    with_own = subprocess.run(added, capture_output=True, text=True, env=env, cwd=elsewhere, timeout=60)
    assert with_own.returncode == 0, with_own.stdout + with_own.stderr
    assert "my-process" in with_own.stdout and all(i in with_own.stdout for i in LESSONS)

    env["WORKSHOP_EXTRA_LESSONS"] = str(own.parent)
    from_env = subprocess.run([workshop, "list"], capture_output=True, text=True, env=env, cwd=elsewhere, timeout=60)
    assert "my-process" in from_env.stdout
