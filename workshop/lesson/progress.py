"""Which lessons and steps a learner finished, and where they stopped, kept in the invoking user's XDG state dir
(also under sudo), so `workshop` can reopen the lesson and step they left.

The file is small JSON, replaced atomically. It is a convenience: an unreadable file is set aside and reported,
never a crash, and a failed write never stops a lesson.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VERSION = 2


@dataclass(frozen=True)
class Owner:
    home: Path
    uid: int
    gid: int


def invoking_user() -> Owner:
    """The person behind `sudo`, so progress lands in their home, owned by them, not in root's."""
    name = os.environ.get("SUDO_USER")
    if os.geteuid() == 0 and name and name != "root":
        with contextlib.suppress(KeyError):
            pw = pwd.getpwnam(name)
            return Owner(Path(pw.pw_dir), pw.pw_uid, pw.pw_gid)
    return Owner(Path.home(), os.getuid(), os.getgid())


def progress_file(owner: Owner | None = None) -> Path:
    owner = owner or invoking_user()
    base = os.environ.get("XDG_STATE_HOME")
    # under sudo, root's XDG_STATE_HOME would be the wrong person's
    state = Path(base) if base and not os.environ.get("SUDO_USER") else owner.home / ".local" / "state"
    return state / "workshop" / "progress.json"


class Progress:
    def __init__(self, path: Path | None = None, owner: Owner | None = None) -> None:
        self.owner = owner or invoking_user()
        self.path = path or progress_file(self.owner)
        self.lessons: dict[str, dict[str, Any]] = {}
        """Per lesson id: `done` (step indexes), `total`, `next` (the step to resume at), `completed`, `updated`."""
        self.current: str | None = None
        """The lesson the learner had open last; `workshop` resumes it unless it is complete."""
        self.problem: str | None = None
        """Why the saved progress could not be read (the learner is told; progress starts afresh)."""
        self._load()

    def _load(self) -> None:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return
        except (OSError, UnicodeDecodeError) as e:
            self.problem = f"cannot read {self.path}: {e}"
            return
        try:
            self._parse(json.loads(text))
        except (ValueError, TypeError, AttributeError) as e:
            self.lessons, self.current = {}, None
            kept = self.path.with_name(f"{self.path.name}.broken")
            with contextlib.suppress(OSError):
                os.replace(self.path, kept)
            self.problem = f"{self.path} was unreadable ({e}); progress starts afresh (the old file is {kept.name})"

    def _parse(self, data: object) -> None:
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if "version" not in data:  # the first format: lesson id -> entry, nothing else
            data = {"version": VERSION, "lessons": data}
        lessons = data.get("lessons", {})
        if not isinstance(lessons, dict):
            raise ValueError("`lessons` is not an object")
        for lesson, entry in lessons.items():
            if not isinstance(entry, dict) or not all(isinstance(i, int) for i in entry.get("done", [])):
                raise ValueError(f"the entry for {lesson!r} is malformed")
            self.lessons[lesson] = entry
        current = data.get("current")
        self.current = current if isinstance(current, str) else None

    # -- what the learner did ---------------------------------------------------------------------------------------
    def step_done(self, lesson: str, index: int, total: int) -> None:
        entry = self.lessons.setdefault(lesson, {"done": []})
        done = set(entry.get("done", [])) | {index}
        entry.update(done=sorted(done), total=total, next=index + 1, updated=time.time())
        if len(done) >= total:
            entry["completed"] = True
        self.save()

    def at(self, lesson: str, position: int, total: int) -> None:
        """The learner now stands at step `position` of `lesson` (the step they would run next)."""
        entry = self.lessons.setdefault(lesson, {"done": []})
        entry.update(total=total, next=position, updated=time.time())
        self.current = lesson
        self.save()

    def left(self, lesson: str) -> None:
        """The learner ended the lesson on purpose (`stop`): `workshop` no longer reopens it by itself."""
        if self.current == lesson:
            self.current = None
            self.save()

    def reset(self, lesson: str) -> None:
        """Forgets the lesson's progress (`reset`): it starts again at step 1."""
        self.lessons.pop(lesson, None)
        if self.current == lesson:
            self.current = None
        self.save()

    # -- where to resume --------------------------------------------------------------------------------------------
    def resume_at(self, lesson: str, total: int) -> int:
        """The step to reopen `lesson` at: where the learner stopped, or 0 for a new or completed lesson."""
        position = self.lessons.get(lesson, {}).get("next", 0)
        return position if isinstance(position, int) and 0 <= position < total else 0

    def to_resume(self, total_of: dict[str, int]) -> tuple[str, int] | None:
        """The lesson `workshop` should reopen and the step in it, if the learner left one unfinished."""
        lesson = self.current
        if lesson is None or lesson not in total_of:
            return None
        position = self.lessons.get(lesson, {}).get("next", 0)
        if not isinstance(position, int) or position >= total_of[lesson]:
            return None  # they finished it
        return lesson, self.resume_at(lesson, total_of[lesson])

    def summary(self, lesson: str, total: int) -> str:
        """For `workshop list`: `3/8 ●●●○○○○○`, `✓ completed`, with `▶` on the lesson `workshop` reopens."""
        entry = self.lessons.get(lesson)
        if not entry:
            return ""
        if entry.get("completed"):
            return "✓ completed"
        done = set(entry.get("done", []))
        bar = "".join("●" if i in done else "○" for i in range(total))
        here = f" ▶ at step {self.resume_at(lesson, total) + 1}" if self.current == lesson else ""
        return f"{len(done & set(range(total)))}/{total} {bar}{here}"

    # -- the file -----------------------------------------------------------------------------------------------------
    def save(self) -> None:
        data = {"version": VERSION, "current": self.current, "lessons": self.lessons}
        try:
            self.make_dirs(self.path.parent)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            with open(tmp, "w") as f:
                json.dump(data, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            self.give_to_owner(tmp)
            os.replace(tmp, self.path)
        except OSError:
            pass  # progress is a convenience: never let it break a lesson

    def make_dirs(self, path: Path) -> None:
        missing = []
        while not path.exists():
            missing.append(path)
            path = path.parent
        for d in reversed(missing):
            d.mkdir()
            self.give_to_owner(d)

    def give_to_owner(self, path: Path) -> None:
        if os.geteuid() == 0 and self.owner.uid != 0:
            os.chown(path, self.owner.uid, self.owner.gid)
