"""What counts as CI, and the one rule for missing capabilities: a skip on a laptop, a failure under CI.

Every test that needs root, a tool or a kernel feature asks here, so "is this CI?" has one answer.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(what: str) -> NoReturn:
    """A capability the test needs is absent: fail under CI (the run must prove it), skip elsewhere."""
    if IN_CI:
        pytest.fail(f"{what}; with CI=true a missing capability is a failure, not a skip")
    pytest.skip(what)


def require_root() -> None:
    if os.geteuid() != 0:
        missing("needs root (the tests create namespaces, mounts and cgroups)")


def require_tool(name: str) -> None:
    if shutil.which(name) is None:
        missing(f"needs {name} (.ci/run installs it)")
