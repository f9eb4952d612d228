"""What the extra views (`mount_changes`, `cgroup_changes`, `link_changes`) share: the mark of a change, a kernel
file read whole, the consoles grouped by the namespace their focus process is in, and what a session owns.

Every read may fail while processes exit under our feet: what cannot be read becomes None and shows as `?`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from workshop.observe.process_tree import Snapshot
from workshop.observe.procfs import UNREADABLE as UNREADABLE
from workshop.observe.procfs import read_text as read_text


class Mark(Enum):
    NEW = "+"
    GONE = "-"
    CHANGED = "~"


def printable(text: str) -> str:
    """A path that is not valid UTF-8 keeps its readable parts instead of crashing the terminal."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def focus_groups(snap: Snapshot, ns_type: str) -> tuple[dict[int, list[str]], dict[int, int], list[str]]:
    """ns inode -> consoles whose focus is in it, ns inode -> one focus pid, consoles whose link is unreadable."""
    consoles: dict[int, list[str]] = {}
    pids: dict[int, int] = {}
    unreadable: list[str] = []
    for console, pid in snap.focus.items():
        proc = snap.procs.get(pid)
        inode = None if proc is None else proc.ns.get(ns_type)
        if inode is None:
            unreadable.append(console)
            continue
        consoles.setdefault(inode, []).append(console)
        pids.setdefault(inode, pid)
    return consoles, pids, unreadable


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def _naming(session: str) -> re.Pattern[str]:
    """A name that carries the session's id (`ws1a2b3c`, `ws1a2b3c-c1`, `box-1a2b3c`), not a longer hex string."""
    return re.compile(rf"(?<![0-9a-f]){re.escape(session)}(?![0-9a-f])")


@dataclass(frozen=True)
class Scope:
    """One session's own part of a machine that learners share, so that the views show what a learner did and
    never what another learner is doing: the host's mount table and the tool's parent cgroup list every session's
    resources.

    A session owns what lies in its work dir, or carries its id in its name (`{{name}}` is `ws` + the id, so
    `/run/netns/ws1a2b3c-sw` and the cgroups `ws1a2b3c` and `ws1a2b3c-c1` are its own). Another session owns what
    lies in a work dir beside this one (sessions sharing a state dir share its sessions dir), or carries that
    session's id.
    """

    workdir: Path
    session: str

    def owns(self, path: str) -> bool:
        """`path` (a mount point, a cgroup's name) is this session's."""
        if _inside(path, str(self.workdir)):
            return True
        return bool(self.session) and _naming(self.session).search(path) is not None

    def theirs(self) -> Callable[[str], bool]:
        """A test for what belongs to another session, with the sessions beside this one as they are now."""
        sessions = str(self.workdir.parent)
        try:
            others = [_naming(name) for name in os.listdir(sessions) if name and name != self.session]
        except OSError:
            others = []

        def test(path: str) -> bool:
            if self.owns(path):
                return False
            in_another_workdir = path.startswith(sessions.rstrip("/") + "/")  # the sessions dir itself is nobody's
            return in_another_workdir or any(other.search(path) for other in others)

        return test
