"""What the extra views (`mount_changes`, `cgroup_changes`, `link_changes`) share: the mark of a change, a kernel
file read whole, and the consoles grouped by the namespace their focus process is in.

Every read may fail while processes exit under our feet: what cannot be read becomes None and shows as `?`.
"""

from __future__ import annotations

import os
from enum import Enum

from workshop.observer import Snapshot

UNREADABLE = (OSError, ValueError, IndexError)


class Mark(Enum):
    NEW = "+"
    GONE = "-"
    CHANGED = "~"


def read_text(path: str) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", "surrogateescape")


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
