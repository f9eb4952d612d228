"""The guide's worked example runs live, as an author would run it after copying it: every check verified on the
kernel, and the host as it was afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.authoring_example import write_example
from tests.harness import run_workshop
from tests.hygiene import HostState


@pytest.mark.root
def test_the_guides_example_lesson_runs_live(
    tmp_path: Path, workshop_env: dict[str, str], host_unchanged: HostState
) -> None:
    write_example(tmp_path / "lessons")
    done = run_workshop(
        ["run", "hostname", "--yes", "--plain"], {**workshop_env, "WORKSHOP_LESSONS": str(tmp_path / "lessons")}
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "hostname: 2/2 steps passed" in done.stdout
