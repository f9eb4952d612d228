"""The one /proc layer: every file of `/proc` the tool reads (stat, status, cmdline, ns links, root, mountinfo,
environ) is read and decoded here, with one notion of "unreadable".

The kernel changes under our feet while we read (processes exit, PIDs get reused), so every read may fail: a
caller gets None, () or "" for what could not be read, and nothing here raises because of it unless it says so.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

NS_TYPES: tuple[str, ...] = (
    "cgroup",
    "ipc",
    "mnt",
    "net",
    "pid",
    "pid_for_children",
    "time",
    "time_for_children",
    "user",
    "uts",
)

# Enough for every line of `status` up to NSpid and for a command line we only show truncated; a single
# read of a /proc file is also what keeps it consistent (the kernel formats it in one go).
READ_SIZE = 4096

# Everything a racing or locked-down /proc can throw at us while reading one process:
# PermissionError, FileNotFoundError, ProcessLookupError (all OSError), and ValueError/IndexError from
# parsing a file that was cut short.
UNREADABLE = (OSError, ValueError, IndexError)

# A process that exited between listing and reading: its directory is gone, or the kernel says ESRCH.
VANISHED = (FileNotFoundError, ProcessLookupError)

_ESCAPE = re.compile(rb"\\([0-7]{3})")
"""mountinfo's octal escapes (space, tab, newline and backslash as \\ooo)."""


class Stat(NamedTuple):
    """The fields of `/proc/PID/stat` the observer needs."""

    comm: str
    state: str
    """R, S, D, Z (zombie: dead, not yet reaped), …"""
    ppid: int
    tpgid: int
    starttime: int


@dataclass(frozen=True)
class MountInfo:
    """One line of /proc/PID/mountinfo (see proc(5)), with escapes decoded."""

    mount_id: int
    parent_id: int
    major_minor: str
    root: str
    """The path inside the filesystem that is mounted (a cgroup path for cgroupfs)."""
    mount_point: Path
    options: tuple[str, ...]
    optional: tuple[str, ...]
    """Propagation tags such as `shared:9`, `master:3`; empty for a private mount."""
    fstype: str
    source: str
    super_options: tuple[str, ...]

    @property
    def is_shared(self) -> bool:
        return any(tag.startswith("shared:") for tag in self.optional)


# --- reading ---


def read_text(path: str) -> str:
    """A /proc (or cgroup) file read whole; bytes that are not UTF-8 survive as surrogates (paths may hold any)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", "surrogateescape")


def read_bytes(path: str) -> bytes:
    """The first READ_SIZE bytes of a /proc file, in one read."""
    # os.open/os.read skip the io stack: this runs once per host process per snapshot.
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, READ_SIZE)
    finally:
        os.close(fd)


def parse_stat(raw: bytes) -> Stat:
    """Parse one `stat` line; raises ValueError/IndexError when it is cut short or malformed."""
    # comm sits between the first '(' and the LAST ')': it may itself contain spaces and ')'.
    # Bytes all the way: this runs for every process on the machine, and only comm is text.
    open_paren = raw.index(b"(")
    close_paren = raw.rindex(b")")
    # After ')': state(3) ppid(4) pgrp(5) session(6) tty_nr(7) tpgid(8) ... starttime(22).
    fields = raw[close_paren + 1 :].split(None, 20)
    return Stat(
        comm=raw[open_paren + 1 : close_paren].decode(errors="replace"),
        state=fields[0].decode(errors="replace"),
        ppid=int(fields[1]),
        tpgid=int(fields[5]),
        starttime=int(fields[19]),
    )


def read_stat(proc_root: Path, pid: int) -> Stat | None:
    """`/proc/PID/stat` parsed, or None if the process is gone or the file unreadable."""
    try:
        return parse_stat(read_bytes(f"{proc_root}/{pid}/stat"))
    except UNREADABLE:
        return None


def parse_nspid(status: str) -> tuple[int, ...]:
    """The `NSpid:` line of a status file: host PID first, innermost last; () if absent."""
    for line in status.splitlines():
        if line.startswith("NSpid:"):
            return tuple(int(field) for field in line.split()[1:])
    return ()


def parse_ns_link(target: str) -> int:
    """`pid:[4026531836]` -> 4026531836; raises ValueError for anything else."""
    _, bracket, rest = target.partition(":[")
    if not bracket or not rest.endswith("]"):
        raise ValueError(f"not a namespace link: {target!r}")
    return int(rest[:-1])


def read_ns(proc_dir: str) -> dict[str, int | None]:
    inodes: dict[str, int | None] = {}
    for ns_type in NS_TYPES:
        try:
            inodes[ns_type] = parse_ns_link(os.readlink(f"{proc_dir}/ns/{ns_type}"))
        except UNREADABLE:
            # EACCES, a zombie (ENOENT), a kernel without this type (time before 5.6), or a symlink loop.
            inodes[ns_type] = None
    return inodes


def read_cmdline(proc_dir: str) -> str:
    try:
        raw = read_bytes(f"{proc_dir}/cmdline")
    except UNREADABLE:
        return ""
    return raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")


def read_root(proc_dir: str) -> str | None:
    try:
        return os.readlink(f"{proc_dir}/root")
    except UNREADABLE:
        return None


def read_pinned(proc_dir: str) -> frozenset[int]:
    """The namespaces bind-mounted in this process's mount namespace: the `nsfs` mounts of its mountinfo, whose
    root field is the link target, e.g. `net:[4026532246]`."""
    try:
        mounts = parse_mountinfo(read_text(f"{proc_dir}/mountinfo"))
    except UNREADABLE:
        return frozenset()
    pinned: set[int] = set()
    for mount in mounts:
        if mount.fstype == "nsfs":
            with contextlib.suppress(ValueError):
                pinned.add(parse_ns_link(mount.root))
    return frozenset(pinned)


def reads_done(proc_root: Path, pid: int) -> int | None:
    """How many read() calls the process has completed (`syscr` in /proc/PID/io); None if unreadable."""
    try:
        for line in read_text(f"{proc_root}/{pid}/io").splitlines():
            if line.startswith("syscr:"):
                return int(line.split()[1])
    except UNREADABLE:
        pass
    return None


def read_syscall(proc_root: Path, pid: int) -> list[str] | None:
    """/proc/PID/syscall split in fields (`running`, or the number and arguments in hex); None if unreadable."""
    try:
        return read_text(f"{proc_root}/{pid}/syscall").split()
    except UNREADABLE:
        return None


def parse_pids_cgroup(text: str, v2: bool, controller: str = "pids") -> str | None:
    """The cgroup path a controller (pids by default) counts a process in, from a `/proc/PID/cgroup` text:
    `N:...pids...:/path` on v1, `0::/path` on v2."""
    for line in text.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if (v2 and hierarchy == "0" and controllers == "") or (not v2 and controller in controllers.split(",")):
            return path
    return None


def read_pids_cgroup(proc_root: Path, pid: int | str, v2: bool, controller: str = "pids") -> str | None:
    """The pids (or `controller`'s) cgroup of a process (see `parse_pids_cgroup`); None if unreadable."""
    try:
        return parse_pids_cgroup(read_text(f"{proc_root}/{pid}/cgroup"), v2, controller)
    except UNREADABLE:
        return None


def unescape(field: str) -> str:
    # The kernel escapes space, tab, newline and backslash as \ooo; decode at byte level so UTF-8 survives.
    raw = _ESCAPE.sub(lambda m: bytes([int(m.group(1), 8)]), field.encode("utf-8", "surrogateescape"))
    return raw.decode("utf-8", "surrogateescape")


def parse_mountinfo(text: str) -> list[MountInfo]:
    """Parse mountinfo text; lines that do not have the documented shape are skipped, not fatal."""
    mounts: list[MountInfo] = []
    for line in text.splitlines():
        fields = line.split()
        try:
            sep = fields.index("-", 6)
        except ValueError:
            continue
        if len(fields) < sep + 3:
            continue
        try:
            mount_id, parent_id = int(fields[0]), int(fields[1])
        except ValueError:
            continue
        mounts.append(
            MountInfo(
                mount_id=mount_id,
                parent_id=parent_id,
                major_minor=fields[2],
                root=unescape(fields[3]),
                mount_point=Path(unescape(fields[4])),
                options=tuple(fields[5].split(",")),
                optional=tuple(fields[6:sep]),
                fstype=fields[sep + 1],
                source=unescape(fields[sep + 2]),
                super_options=tuple(fields[sep + 3].split(",")) if len(fields) > sep + 3 else (),
            )
        )
    return mounts


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
    except UNREADABLE:
        return None


def mount_points(proc_root: Path, pid: int | str = "self") -> list[str]:
    """Mount targets in the mount namespace of `pid`, in mount order (octal escapes like \\040 decoded)."""
    try:
        return [str(m.mount_point) for m in parse_mountinfo(read_text(f"{proc_root}/{pid}/mountinfo"))]
    except UNREADABLE:
        return []


def session_pids(proc_root: Path, session: str, workdir: str) -> list[int]:
    """Processes that belong to a session: WORKSHOP_SESSION=<session> in their environment (inherited from the
    consoles), or a root or working directory inside the session's work dir (chrooted or pivoted into it)."""
    marker = f"WORKSHOP_SESSION={session}".encode()
    prefix = workdir.rstrip("/") + "/"
    found = []
    for pid in pids(proc_root):
        base = proc_root / str(pid)
        with contextlib.suppress(*UNREADABLE), open(base / "environ", "rb") as fh:
            if marker in fh.read().split(b"\0"):
                found.append(pid)
                continue
        for link in ("root", "cwd"):
            target = readlink(base / link)
            if target and (target + "/").startswith(prefix):
                found.append(pid)
                break
    return found
