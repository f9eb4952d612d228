"""The project on Debian 12 arm64, installed from an offline bundle the way a learner does, under qemu's software
emulation (tests/vm/arm64-tier): setup.sh, doctor, every lesson, the capstone runtime's tests, a kill -9 and
cleanup. About 10 minutes once the arm64 root is cached (its first build takes longer); `WORKSHOP_ARM64=0`
skips it."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from tests.ci import require_tool
from tests.harness import REPO
from tests.vm import background

SCRIPT = REPO / "tests" / "vm" / "arm64-tier"
SUMMARY_ROW = re.compile(r"^  (\S.*?)\s{2,}(passed|shown|FAILED \(exit \d+\))\s+[\d.]+\s*$", re.MULTILINE)
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


def _blocker() -> str | None:
    if os.environ.get("WORKSHOP_ARM64") == "0":
        return "WORKSHOP_ARM64=0"
    if os.environ.get("WS_IN_VM") == "1":
        return "already inside a VM"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    return f"needs {', '.join(missing)}" if missing else None


TOOLS = ("qemu-system-aarch64", "debootstrap", "mmdebstrap", "mkfs.ext4", "cpio", "gzip", "apt-ftparchive")
# the first run builds the arm64 root: its Debian second stage is emulated
TIER = background.Tier("the arm64 tier", [str(SCRIPT)], blocker=_blocker, timeout=4700, cwd=REPO)
"""Boots when collection is done, after the cgroup v2 tier, beside the other tests (tests/vm/background.py)."""


@pytest.mark.background_tier(TIER)
@pytest.mark.timeout(4800)
def test_every_lesson_passes_on_debian_12_arm64_installed_from_a_bundle() -> None:
    if os.environ.get("WORKSHOP_ARM64") == "0":
        pytest.skip("WORKSHOP_ARM64=0")
    if os.environ.get("WS_IN_VM") == "1":
        pytest.skip("already inside a VM")
    for tool in TOOLS:
        require_tool(tool)
    done = TIER.result()
    out = done.output
    if done.timed_out:
        pytest.fail(f"arm64-tier did not finish in {TIER.timeout:.0f} s:\n" + "".join(out.splitlines(True)[-100:]))
    summary = out[out.rfind("===== summary") :] if "===== summary" in out else out[-6000:]
    print(f"arm64-tier took {done.seconds:.0f} s (started in the background)")
    assert done.rc == 0, f"arm64-tier exited with {done.rc}:\n{summary}"
    rows = dict(SUMMARY_ROW.findall(summary))
    for row in EXPECTED_ROWS:
        assert rows.get(row) == "passed", f"{row} on arm64: {rows.get(row)}\n{summary}"
    assert "RESULT: all passed" in summary
