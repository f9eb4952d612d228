"""Which lessons and steps a learner finished, kept in the invoking user's XDG state dir (also under sudo)."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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
        self.data: dict[str, dict[str, Any]] = {}
        with contextlib.suppress(OSError, ValueError):
            loaded = json.loads(self.path.read_text())
            if isinstance(loaded, dict):
                self.data = {k: v for k, v in loaded.items() if isinstance(v, dict)}

    def step_done(self, lesson: str, index: int, total: int) -> None:
        entry = self.data.setdefault(lesson, {"done": []})
        done = set(entry.get("done", [])) | {index}
        entry.update(done=sorted(done), total=total, next=index + 1, updated=time.time())
        if len(done) >= total:
            entry["completed"] = True
        self.save()

    def summary(self, lesson: str, total: int) -> str:
        entry = self.data.get(lesson)
        if not entry:
            return ""
        if entry.get("completed"):
            return "completed"
        return f"{len(entry.get('done', []))}/{total} steps"

    def save(self) -> None:
        try:
            self.make_dirs(self.path.parent)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data, indent=1))
            os.replace(tmp, self.path)
            self.give_to_owner(self.path)
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
