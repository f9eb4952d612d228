"""Small, race-tolerant readers of `/proc`: a process may vanish between listing and reading at any time."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from workshop.observe import process_tree
from workshop.observe.process_tree import Stat

_GONE = (
    FileNotFoundError,
    ProcessLookupError,
    PermissionError,
    NotADirectoryError,
    OSError,
    ValueError,
    IndexError,
)


def read_stat(proc_root: Path, pid: int) -> Stat | None:
    return process_tree.read_stat(proc_root, pid)


def pids(proc_root: Path) -> list[int]:
    try:
        return [int(e.name) for e in os.scandir(proc_root) if e.name.isdigit()]
    except OSError:
        return []


def is_alive(proc_root: Path, pid: int) -> bool:
    """Exists and is not a zombie waiting to be reaped."""
    stat = read_stat(proc_root, pid)
    return stat is not None and stat.state not in ("Z", "X")


def readlink(path: Path) -> str | None:
    try:
        return os.readlink(path)
    except _GONE:
        return None


def mount_points(proc_root: Path, pid: int | str = "self") -> list[str]:
    """Mount targets in the mount namespace of `pid`, in mount order (octal escapes like \\040 decoded)."""
    try:
        text = (proc_root / str(pid) / "mountinfo").read_text()
    except _GONE:
        return []
    targets = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 4:
            targets.append(_unescape(fields[4]))
    return targets


def _unescape(field: str) -> str:
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def session_pids(proc_root: Path, session: str, workdir: str) -> list[int]:
    """Processes that belong to a session: WORKSHOP_SESSION=<session> in their environment (inherited from the
    consoles), or a root or working directory inside the session's work dir (chrooted or pivoted into it)."""
    marker = f"WORKSHOP_SESSION={session}".encode()
    prefix = workdir.rstrip("/") + "/"
    found = []
    for pid in pids(proc_root):
        base = proc_root / str(pid)
        with contextlib.suppress(*_GONE), open(base / "environ", "rb") as fh:
            if marker in fh.read().split(b"\0"):
                found.append(pid)
                continue
        for link in ("root", "cwd"):
            target = readlink(base / link)
            if target and (target + "/").startswith(prefix):
                found.append(pid)
                break
    return found
