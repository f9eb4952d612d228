"""How doctor sees the machine: every fact comes through a `Probe`, so tests describe a machine instead of needing
one; and what a check finds, as data."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from workshop.engine import processes


class Status(Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Finding:
    key: str
    """Stable id that lessons' requirements refer to, e.g. "tool:unshare", "ns:pid", "cgroup:pids"."""
    label: str
    status: Status
    detail: str
    """What was found."""
    fix: str = ""
    """A concrete command or sentence when status is not OK."""


def _default_which(name: str) -> str | None:
    # A non-root PATH often lacks the sbin dirs where chroot and ip live.
    return shutil.which(name) or shutil.which(name, path="/usr/local/sbin:/usr/sbin:/sbin")


def _default_find_busybox() -> Path:
    # Lazy: doctor must load (and report) even where busybox, or its own imports, cannot.
    from workshop.image.busybox import find_static_busybox  # type: ignore[import-not-found, unused-ignore]

    found: Path = find_static_busybox()
    return found


def _default_run(argv: Sequence[str]) -> processes.Completed:
    return processes.run(argv, timeout=3.0)


@dataclass(frozen=True)
class Probe:
    """Machine facts, injectable so tests can describe a machine instead of needing one."""

    which: Callable[[str], str | None] = _default_which
    read_text: Callable[[Path], str] = Path.read_text
    exists: Callable[[Path], bool] = Path.exists
    is_root: bool = False
    run: Callable[[Sequence[str]], processes.Completed] = _default_run
    find_busybox: Callable[[], Path] = field(default=_default_find_busybox)
    """Returns the static busybox or raises (RootfsError with an apt hint)."""
    resolve: Callable[[Path], Path] = Path.resolve
    """Follows symbolic links in the part of a path that exists (the state dir may not exist yet)."""


Result = tuple[Status, str, str]  # status, detail, fix
OK, WARN, FAIL = Status.OK, Status.WARN, Status.FAIL
