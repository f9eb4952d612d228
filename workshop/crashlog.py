"""Internal errors: the traceback goes to a log file in the state dir, the user gets one line and its path.

A learner should never see a Python traceback, but the trainer (or a bug report) needs the whole of it.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from pathlib import Path


def log_path(state_dir: Path) -> Path:
    return state_dir / "workshop.log"


def record(state_dir: Path) -> Path:
    """Appends the exception being handled to the log; a log that cannot be written loses only the details."""
    path = log_path(state_dir)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            f.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')}\n{traceback.format_exc()}\n")
    return path
