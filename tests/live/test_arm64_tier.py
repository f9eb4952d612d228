"""The project on Debian 12 arm64, installed from an offline bundle the way a learner does, under qemu's software
emulation (tests/vm/arm64-tier): setup.sh, doctor, every lesson, the capstone runtime's tests, a kill -9 and
cleanup. About 5 minutes once the arm64 root is cached (its first build takes longer); `WORKSHOP_ARM64=0`
skips it."""

from __future__ import annotations

import pytest

from tests.ci import require_tool
from tests.harness import REPO
from tests.vm import background

SCRIPT = REPO / "tests" / "vm" / "arm64-tier"
LESSONS = sorted(p.name for p in (REPO / "lessons").iterdir() if (p / "lesson.md").exists())
EXPECTED_ROWS = (
    "setup.sh --bundle",
    "workshop doctor",
    "pytest from wheels",
    *(f"lesson {lesson}" for lesson in LESSONS if lesson != "podman"),
    "pytest test_runtime",
    "kill -9, cleanup, hygiene",
)
"""The rows arm64-tier's summary must show as passed (podman is offered, not installed: its row is shown)."""


TOOLS = ("qemu-system-aarch64", "debootstrap", "mmdebstrap", "mkfs.ext4", "cpio", "gzip", "apt-ftparchive")
# the first run builds the arm64 root: its Debian second stage is emulated
TIER = background.Tier(
    "arm64-tier", [str(SCRIPT)], blocker=background.blocker("WORKSHOP_ARM64", TOOLS), timeout=4700, cwd=REPO
)
"""Boots when collection is done, beside the other tests (tests/vm/background.py)."""


@pytest.mark.background_tier(TIER)
@pytest.mark.timeout(4800)
def test_every_lesson_passes_on_debian_12_arm64_installed_from_a_bundle() -> None:
    why = TIER.blocker()
    if why is not None and not why.startswith("needs"):
        pytest.skip(why)
    for tool in TOOLS:
        require_tool(tool)
    problems = TIER.problems(EXPECTED_ROWS)
    print(f"arm64-tier took {TIER.result().seconds:.0f} s (started in the background)")
    assert not problems, "\n".join(problems)
