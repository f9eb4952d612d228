"""Rows of the results table, and the small timing helpers every benchmark shares."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path


class Verdict(Enum):
    MET = "met"
    MISSED = "MISSED"
    INFO = "—"
    """No target: the row is reported, not judged (the curriculum's wall time)."""
    FAILED = "FAILED"
    """The measurement itself did not work (a lesson failed, a command exited non-zero)."""
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Row:
    what: str
    measured: str
    baseline: str
    ratio: str
    target: str
    verdict: Verdict
    note: str = ""


def median_ms(samples: Sequence[float]) -> float:
    return statistics.median(samples) * 1000


def judge(ok: bool) -> Verdict:
    return Verdict.MET if ok else Verdict.MISSED


def skipped(what: str, target: str, why: str) -> Row:
    return Row(what, "—", "—", "—", target, Verdict.SKIPPED, why)


def time_call(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def time_command(argv: Sequence[str], env: Mapping[str, str] | None = None) -> float:
    """Wall time of one run of a command whose output is read through a pipe, as a terminal would get it."""
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode(errors='replace')[-300:]}")
    return elapsed


def workshop_argv() -> list[str]:
    """How a user starts the tool: the installed `workshop` script beside this Python, else `python -m`."""
    script = Path(sys.executable).parent / "workshop"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "workshop"]


def is_root() -> bool:
    return os.geteuid() == 0


def ms(value: float) -> str:
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"
