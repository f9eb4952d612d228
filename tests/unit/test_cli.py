"""The command line as a newcomer meets it: clear answers, the right exit status, never a traceback."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.harness import run_workshop


def test_list_answers_well_under_a_second(workshop_env: dict[str, str]) -> None:
    run_workshop(["list"], workshop_env)  # warm the page cache, as a learner's second call would be
    start = time.monotonic()
    done = run_workshop(["list"], workshop_env)
    assert done.returncode == 0
    assert time.monotonic() - start < 1.0


def test_list_does_not_load_the_image_code(workshop_env: dict[str, str]) -> None:
    """`workshop list` is the first thing a learner types: it must not pay for tarfile and the image modules,
    which only `workshop rootfs` and a lesson's start need (the start-up target is 150 ms)."""
    probe = (
        "import sys; from workshop import cli; cli.main(['list', '--plain']); "
        "print('LOADED', sorted(m for m in ('tarfile', 'workshop.image.rootfs', 'workshop.image.tar', "
        "'workshop.image.busybox_image', 'pyroute2') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=workshop_env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stdout


def test_an_unknown_command_suggests_the_right_one(workshop_env: dict[str, str]) -> None:
    done = run_workshop(["lsit"], workshop_env)
    assert done.returncode == 2
    assert "did you mean `workshop list`" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_check_reports_every_problem_with_file_and_line(tmp_path: Path, workshop_env: dict[str, str]) -> None:
    bad = tmp_path / "bad.md"
    bad.write_text("---\nid: bad\ntitle: Bad\n---\n## Step\n```run nowhere\nls\n```\n")
    done = run_workshop(["check", str(bad)], workshop_env)
    assert done.returncode == 1
    assert f"{bad}:6: unknown console 'nowhere'" in done.stdout
    assert f"{bad}:5: step 'Step' has no check" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_check_passes_the_shipped_lessons(workshop_env: dict[str, str]) -> None:
    done = run_workshop(["check"], workshop_env)
    assert done.returncode == 0 and "all valid" in done.stdout


def test_a_broken_lesson_file_does_not_break_list_with_a_traceback(
    tmp_path: Path, workshop_env: dict[str, str]
) -> None:
    lessons = tmp_path / "lessons"
    lessons.mkdir()
    (lessons / "x.md").write_text("---\nid: x\n---\n")
    workshop_env["WORKSHOP_LESSONS"] = str(lessons)
    done = run_workshop(["list"], workshop_env)
    assert done.returncode == 1
    assert "x.md:1: the front matter needs 'title" in done.stdout
    assert "Traceback" not in done.stderr


def test_doctor_says_what_is_missing_and_how_to_fix_it(workshop_env: dict[str, str]) -> None:
    done = run_workshop(["doctor"], workshop_env)
    assert "unshare" in done.stdout and "pstree" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
