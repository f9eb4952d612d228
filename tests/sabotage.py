"""Every step proven: the lesson with one step's primitive taken out (its ```sabotage block) must fail at exactly
that step, with one of that step's checks.

`python -m tests.sabotage LESSON [STEP]` runs them outside pytest, as root, one line per step: what an author
uses while writing a lesson's sabotage blocks.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from workshop.lesson import loader
from workshop.lesson.model import Lesson, Step

REPO = Path(__file__).resolve().parent.parent
LESSONS_DIR = REPO / "lessons"
SABOTAGE_BLOCK = re.compile(r"^```sabotage\n.*?^```\n", re.M | re.S)


def curriculum() -> list[Lesson]:
    return loader.load_all(loader.lesson_files(LESSONS_DIR))


def sabotaged(lesson: Lesson, step: Step) -> str:
    """The lesson file's text with the step's sabotage applied to the first of its run blocks that holds it."""
    assert step.sabotage is not None
    lines = lesson.path.read_text().split("\n")
    for run in step.runs:
        start = run.where.line  # the body's first line, 0-based: the fence is on where.line, 1-based
        end = start
        while not lines[end].startswith("```"):
            end += 1
        body = "\n".join(lines[start:end])
        if step.sabotage.old in body:
            changed = body.replace(step.sabotage.old, step.sabotage.new, 1)
            text = "\n".join(lines[:start] + ([changed] if changed else []) + lines[end:])
            # the sabotage blocks themselves no longer match what they take out
            return SABOTAGE_BLOCK.sub("", text)
    raise AssertionError(f"{step.sabotage.where}: the sabotage's text is not in the step's run blocks")


def lessons_with_sabotage(lesson: Lesson, step: Step, into: Path) -> Path:
    """A copy of the lessons folder in which only this step of this lesson is sabotaged."""
    copy = into / "lessons"
    shutil.copytree(LESSONS_DIR, copy)
    (copy / lesson.path.parent.name / lesson.path.name).write_text(sabotaged(lesson, step))
    return copy


@dataclass(frozen=True)
class Verdict:
    proven: bool
    why: str


def judge(lesson: Lesson, index: int, returncode: int, out: str) -> Verdict:
    """Did the sabotaged run fail at exactly step `index` (0-based), with one of its own checks?"""
    step = lesson.steps[index]
    total = len(lesson.steps)
    if returncode == 0:
        return Verdict(False, f"the lesson still passed all {total} steps: this step's check does not notice")
    passed = re.search(rf"{re.escape(lesson.id)}: (\d+)/{total} steps passed", out)
    if not passed:
        return Verdict(False, "the run did not say how many steps passed:\n" + out[-2000:])
    if int(passed.group(1)) != index:
        return Verdict(False, f"{passed.group(1)} steps passed, not {index}: another step failed\n" + out[-2000:])
    shown = _unwrapped(out)
    failed = [c.description for c in step.checks if re.search("✗ " + _as_shown(c.description), shown)]
    if not failed:
        return Verdict(False, "the step failed, but not at its check (a command or an expect?)\n" + out[-2000:])
    return Verdict(True, f"✗ {failed[0]}")


def _as_shown(description: str) -> str:
    """A pattern for a check's description as the run prints it: its placeholders filled in, its end perhaps cut."""
    start = re.sub(r"\{\{[^}]*$", "", " ".join(description.split())[:100])  # no placeholder cut in half
    return ".+?".join(re.escape(w) for w in re.split(r"\{\{[^}]*\}\}", start))


def _unwrapped(out: str) -> str:
    """The run's output with the terminal's line breaks inside a paragraph undone."""
    return re.sub(r"\s*\n\s*", " ", out)


def run_sabotaged(lesson: Lesson, index: int, env: dict[str, str], scratch: Path) -> Verdict:
    lessons = lessons_with_sabotage(lesson, lesson.steps[index], scratch)
    done = subprocess.run(
        [sys.executable, "-m", "workshop", "run", lesson.id, "--yes"],
        env={**env, "WORKSHOP_LESSONS": str(lessons), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        cwd=REPO,
    )
    return judge(lesson, index, done.returncode, done.stdout + done.stderr)


def main(argv: list[str]) -> int:
    wanted = [lesson for lesson in curriculum() if not argv or lesson.id == argv[0]]
    only = int(argv[1]) if len(argv) > 1 else None
    bad = 0
    with tempfile.TemporaryDirectory(prefix="workshop-sabotage-") as tmp:
        # the machine's state dir (its image), unless WORKSHOP_STATE_DIR says otherwise; progress stays untouched
        env = {**os.environ, "XDG_STATE_HOME": f"{tmp}/xdg", "NO_COLOR": "1"}
        for lesson in wanted:
            for i, step in enumerate(lesson.steps):
                if only is not None and i + 1 != only:
                    continue
                if step.sabotage is None:
                    print(f"{lesson.id} {i + 1} {step.title}: no sabotage")
                    bad += 1
                    continue
                if step.sabotage.none:
                    print(f"{lesson.id} {i + 1} {step.title}: nothing to take out ({step.sabotage.none})")
                    continue
                scratch = Path(tmp) / f"{lesson.id}-{i}"
                scratch.mkdir()
                verdict = run_sabotaged(lesson, i, env, scratch)
                bad += not verdict.proven
                print(f"{lesson.id} {i + 1} {step.title}: {'proven' if verdict.proven else 'NOT PROVEN'} {verdict.why}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
