"""Everything the tool learns about the machine it runs on, created once and passed in.

Tests swap any part of it (state dir, /proc root, streams) instead of patching globals.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STATE_DIR = Path("/var/lib/workshop")


def shipped_lessons() -> Path:
    """The curriculum: `workshop/lessons` when installed from a wheel (pip, pipx), else `lessons/` of the source
    checkout this package runs from (an editable install, or `python -m workshop` in the repository)."""
    packaged = Path(__file__).resolve().parent / "lessons"
    return packaged if packaged.is_dir() else REPO_ROOT / "lessons"


def extra_lessons_from(value: str | None) -> tuple[Path, ...]:
    """`WORKSHOP_EXTRA_LESSONS=DIR[:DIR…]`: a learner's or trainer's own lesson folders, beside the shipped ones."""
    return tuple(Path(p) for p in (value or "").split(os.pathsep) if p)


@dataclass
class Environment:
    """The machine as the tool sees it."""

    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    """Where every rendered line goes (only `render` writes to it)."""
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    is_root: bool = field(default_factory=lambda: os.geteuid() == 0)
    state_dir: Path = DEFAULT_STATE_DIR
    """Images, journals and session work dirs live here; the tool owns it and nothing outside it."""
    proc_root: Path = Path("/proc")
    """A `/proc`-like tree; tests point it at fixtures."""
    sys_root: Path = Path("/sys")
    lessons_dir: Path = field(default_factory=shipped_lessons)
    """The curriculum's folder (WORKSHOP_LESSONS replaces it: a curriculum of one's own, or a test's)."""
    extra_lessons: tuple[Path, ...] = ()
    """Folders whose lessons are offered beside the curriculum (`--lessons DIR`, WORKSHOP_EXTRA_LESSONS)."""
    color: bool = True
    """False for NO_COLOR or --plain: styles are dropped, text is unchanged."""
    plain: bool = False
    """--plain: no colour, ASCII instead of box drawing and symbols, no animation (typing out, spinners)."""
    theme: str = "default"
    """`default` or `projector` (large, high contrast: `--theme projector`, and trainer mode)."""
    width: int | None = None
    """Fixed render width (tests); None means the terminal's."""
    taps: list[Callable[[object], None]] = field(default_factory=list)
    """Who else hears every engine event the renderer gets (`--serve`'s page); each must return at once."""

    @classmethod
    def from_os(cls) -> Environment:
        state = os.environ.get("WORKSHOP_STATE_DIR")
        lessons = os.environ.get("WORKSHOP_LESSONS")
        return cls(
            state_dir=Path(state) if state else DEFAULT_STATE_DIR,
            lessons_dir=Path(lessons) if lessons else shipped_lessons(),
            extra_lessons=extra_lessons_from(os.environ.get("WORKSHOP_EXTRA_LESSONS")),
            color=not os.environ.get("NO_COLOR"),  # https://no-color.org: set and not empty
        )

    @property
    def lesson_dirs(self) -> tuple[Path, ...]:
        """Where lessons are looked for: the curriculum, then the extra folders."""
        return (self.lessons_dir, *self.extra_lessons)

    @property
    def images_dir(self) -> Path:
        return self.state_dir / "images"

    @property
    def image_path(self) -> Path:
        """The default container image: a plain tarball, as `docker export` would write."""
        return self.images_dir / "rootfs.tar"

    @property
    def journal_dir(self) -> Path:
        return self.state_dir / "journal"

    @property
    def sessions_dir(self) -> Path:
        return self.state_dir / "sessions"
