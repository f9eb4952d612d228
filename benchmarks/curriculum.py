"""The whole curriculum: `workshop run LESSON --yes` for every lesson found, wall time each and in total.

Each run is the installed `workshop` script on a private state dir that shares the machine's image (or one
built for the run), output read through a pipe. Lessons run one after another, never in parallel.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.measure import Row, Verdict, is_root, skipped, workshop_argv
from workshop.environment import Environment
from workshop.image import rootfs
from workshop.lesson import loader
from workshop.lesson.catalog import Catalog

LESSON_TIMEOUT = 600.0


def _seconds(value: float) -> str:
    return f"{value:.1f} s"


def _state_with_image(tmp: Path) -> Path:
    state = tmp / "state"
    images = state / "images"
    images.mkdir(parents=True)
    mine = Environment.from_os().image_path
    if mine.exists():
        os.symlink(mine, images / "rootfs.tar")
    else:
        rootfs.build_busybox_image(images / "rootfs.tar")
    return state


def rows() -> list[Row]:
    if not is_root():
        return [skipped("whole curriculum, `workshop run --yes`", "—", "needs root")]
    try:
        lessons = Catalog.load(Environment.from_os()).lessons
    except loader.LessonError as e:
        return [Row("whole curriculum, `workshop run --yes`", "—", "—", "—", "—", Verdict.FAILED, f"broken: {e}")]
    out: list[Row] = []
    total = 0.0
    failed = 0
    with tempfile.TemporaryDirectory(prefix="ws-bench-") as tmp:
        env = dict(os.environ)
        env.update(
            WORKSHOP_STATE_DIR=str(_state_with_image(Path(tmp))),
            XDG_STATE_HOME=str(Path(tmp) / "xdg"),
            NO_COLOR="1",
            COLUMNS="100",
        )
        for lesson in lessons:
            start = time.perf_counter()
            try:
                done = subprocess.run(
                    [*workshop_argv(), "run", lesson.id, "--yes"],
                    capture_output=True,
                    env=env,
                    timeout=LESSON_TIMEOUT,
                    check=False,
                )
                rc: int | None = done.returncode
            except subprocess.TimeoutExpired:
                rc = None
            elapsed = time.perf_counter() - start
            total += elapsed
            ok = rc == 0
            if not ok and rc is not None:  # what the lesson printed last, to see why (stderr: not the table)
                tail = done.stdout.decode(errors="replace").splitlines()[-25:]
                sys.stderr.write(f"--- workshop run {lesson.id} --yes exited {rc}; its last lines:\n")
                sys.stderr.write("\n".join(tail) + "\n")
            failed += not ok
            why = "" if ok else (f"; exit status {rc}" if rc is not None else "; timed out")
            note = f"{len(lesson.steps)} steps{why}"
            out.append(
                Row(
                    f"`workshop run {lesson.id} --yes`",
                    _seconds(elapsed),
                    "—",
                    "—",
                    "—",
                    Verdict.INFO if ok else Verdict.FAILED,
                    note,
                )
            )
    steps = sum(len(x.steps) for x in lessons)
    out.append(
        Row(
            f"whole curriculum ({len(lessons)} lessons, {steps} steps)",
            _seconds(total),
            "—",
            "—",
            "—",
            Verdict.INFO if not failed else Verdict.FAILED,
            "all passed" if not failed else f"{failed} lesson(s) failed",
        )
    )
    return out
