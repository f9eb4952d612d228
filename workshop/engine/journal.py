"""Write-ahead record of everything a session creates; `Journal.undo` undoes it (each kind's undo is in `undo`).

An entry is appended and fsync'ed *before* the resource exists, so after a crash (even `kill -9`) the journal
names everything that may be left; undoing a resource that was never created is a no-op. Entries are undone in
reverse order: processes die before their mounts go, mounts go before their directories are removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workshop.observe import procfs

KINDS = (
    "hostname",
    "session-procs",
    "process",
    "mounts-under",
    "mount",
    "path",
    "dir",
    "netns",
    "link",
    "cgroup",
    "podman",
    "cgroup-parent",
    "systemd-scope",
    "subtree-control",
    "lease",
)


CLOSING = {"closing": True}
"""The line a journal gets when its session starts undoing."""


@dataclass(frozen=True)
class Entry:
    kind: str
    target: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Undone:
    entry: Entry
    outcome: str
    """'removed', 'already gone' or 'failed: why'."""

    @property
    def failed(self) -> bool:
        return self.outcome.startswith("failed")


class JournalError(Exception):
    pass


def start_time(pid: int) -> int | None:
    """When the process started (clock ticks since boot): with its pid, what tells it from a later one."""
    stat = procfs.read_stat(Path("/proc"), pid)
    return stat.starttime if stat else None


class Journal:
    """One session's journal file: a header line, then one JSON entry per line."""

    def __init__(self, path: Path, header: dict[str, Any], entries: list[Entry]) -> None:
        self.path = path
        self.header = header
        self.entries = entries
        self.closing = False
        """Its session has begun undoing: it no longer holds on to what it shares with others."""

    # -- writing ----------------------------------------------------------------------------------------------
    @classmethod
    def create(cls, journal_dir: Path, session: str, workdir: Path) -> Journal:
        journal_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        header = {
            "session": session,
            "owner_pid": os.getpid(),
            "owner_start": start_time(os.getpid()),
            "workdir": str(workdir),
            "created": time.time(),
        }
        path = journal_dir / f"{session}.jsonl"
        # written aside, then linked into place with its header: another session reading the journals at that
        # moment would take an empty file for a dead session's leftover, and undo and delete it under us
        aside = journal_dir / f".{session}.jsonl.new"
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(header) + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.link(aside, path)  # fails if the journal exists, as O_EXCL would
        finally:
            os.unlink(aside)
        return cls(path, header, [])

    def record(self, kind: str, target: str, **extra: Any) -> Entry:
        """Appends an entry durably; call it before creating the resource."""
        if kind not in KINDS:
            raise JournalError(f"unknown resource kind {kind!r}")
        entry = Entry(kind, target, dict(extra))
        if entry in self.entries:
            return entry
        with open(self.path, "a") as f:
            f.write(json.dumps({"kind": kind, "target": target, **extra}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.entries.append(entry)
        return entry

    # -- reading ----------------------------------------------------------------------------------------------
    @classmethod
    def read(cls, path: Path) -> Journal:
        header: dict[str, Any] = {}
        entries: list[Entry] = []
        closing = False
        with open(path) as f:
            for n, line in enumerate(f):
                try:
                    data = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line torn by a crash mid-write: its resource was not created yet
                if n == 0:
                    header = data
                    continue
                if data == CLOSING:
                    closing = True
                    continue
                kind, target = data.pop("kind", None), data.pop("target", None)
                if kind in KINDS and isinstance(target, str):
                    entries.append(Entry(kind, target, data))
        journal = cls(path, header, entries)
        journal.closing = closing
        return journal

    @property
    def session(self) -> str:
        return str(self.header.get("session", self.path.stem))

    def owner_alive(self) -> bool:
        pid = self.header.get("owner_pid")
        if not isinstance(pid, int) or pid == os.getpid():
            return False
        return start_time(pid) == self.header.get("owner_start") is not None

    # -- undoing ----------------------------------------------------------------------------------------------
    def undo(self) -> list[Undone]:
        """Undoes every entry, newest first; removes the journal only when nothing failed, so a retry is possible.

        One undoer at a time: two learners running `workshop cleanup` at once would both remove the same things,
        and each find them vanishing under its feet. The second waits for the first, then finds the journal gone."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return self._already_undone()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_nlink == 0:  # the undoer we waited for finished and removed it
                return self._already_undone()
            return self._undo_locked()
        finally:
            os.close(fd)

    def _already_undone(self) -> list[Undone]:
        return [Undone(e, "already gone") for e in reversed(self.entries)]

    def _undo_locked(self) -> list[Undone]:
        if not self.closing:  # said first: two sessions ending at once must not each keep a shared thing for the other
            self.closing = True
            with contextlib.suppress(OSError), open(self.path, "a") as f:
                f.write(json.dumps(CLOSING) + "\n")
                f.flush()
                os.fsync(f.fileno())
        from workshop.engine.undo import undo  # the undo functions need this module's journals

        results = [Undone(e, undo(e, self.session)) for e in reversed(self.entries)]
        if not any(r.failed for r in results):
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        return results


def journals(journal_dir: Path) -> list[Journal]:
    if not journal_dir.is_dir():
        return []
    found = []
    for path in sorted(journal_dir.glob("*.jsonl")):
        with contextlib.suppress(OSError):
            found.append(Journal.read(path))
    return found


# Sessions with separate state dirs cannot read each other's journals: a shared directory the tool made
# (/run/netns) carries the mark itself, so a later session co-owns it and whichever ends last removes it.
MADE_MARK = "trusted.workshop.made"


def make_shared_dir(target: str) -> None:
    """Makes a shared directory (already journaled) and marks it as the tool's; the lesson's own `mkdir -p` then
    finds it there."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(target)
    set_mark(target, MADE_MARK)


def made_by_workshop(target: str) -> bool:
    return has_mark(target, MADE_MARK)


def set_mark(target: str | Path, mark: str) -> None:
    """A trusted.* extended attribute that says what the tool did to a shared resource. A filesystem without
    them only loses the sharing across state dirs."""
    with contextlib.suppress(OSError):
        os.setxattr(target, mark, b"1")


def has_mark(target: str | Path, mark: str) -> bool:
    try:
        return os.getxattr(target, mark) == b"1"
    except OSError:
        return False


def claimed_elsewhere(journal_dir: Path, kind: str, target: str, session: str) -> bool:
    """Whether another session's journal owns this resource: a shared one (/run/netns, the tool's parent cgroup)
    is then claimed by this session too, so whichever session ends last removes it."""
    return any(
        j.session != session and any(e.kind == kind and e.target == target for e in j.entries)
        for j in journals(journal_dir)
    )


def hostname_before(journal_dir: Path, session: str) -> str:
    """The host's name from before the running sessions began: what a session puts back if a lesson line renamed
    the host. With the name of the moment instead, a session started after another one's mistake would, when it
    ends last, rename the host again to the mistaken name that the other one had put right."""
    running = sorted(
        (j for j in journals(journal_dir) if j.session != session and j.owner_alive()),
        key=lambda j: float(j.header.get("created", 0)),
    )
    for j in running:
        for e in j.entries:
            if e.kind == "hostname":
                return e.target
    return socket.gethostname()


def iter_leftovers(journal_dir: Path) -> Iterator[Journal]:
    """Journals whose owning workshop process is gone: what `workshop cleanup` replays."""
    for j in journals(journal_dir):
        if not j.owner_alive():
            yield j
