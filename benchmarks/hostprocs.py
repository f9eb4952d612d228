"""Extra host processes for the observer benchmark: a tree of `sleep`s in a process group of their own.

The tree is `python (spawner) → branch sleeps → up to BRANCH-1 leaf sleeps each`, so pstree has depth to walk,
as on a real host. Every process ends by itself after LIFETIME seconds even if the benchmark is killed, and
`HostProcesses.close()` kills the whole group (it is a context manager: use `with`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

BRANCH = 50
"""Processes per branch: one branch sleep and its children."""
LIFETIME = 900
"""Seconds: a killed benchmark still leaves nothing behind for long."""

# Runs as its own process: forks `count` sleeps in branches, then waits to be killed with its group.
_SPAWNER = r"""
import os, sys, signal
count, branch, lifetime = (int(a) for a in sys.argv[1:4])
argv = ["sleep", str(lifetime)]
made = 0
while made < count:
    size = min(branch, count - made)
    pid = os.fork()
    if pid == 0:
        for _ in range(size - 1):
            if os.fork() == 0:
                os.execvp("sleep", argv)
        os.execvp("sleep", argv)
    made += size
sys.stdout.write("ready\n")
sys.stdout.flush()
signal.signal(signal.SIGALRM, signal.SIG_DFL)
signal.alarm(lifetime)
signal.pause()
"""


def count_processes(proc_root: Path = Path("/proc")) -> int:
    """Every process the host has right now (what `ps -e` counts; threads are not processes)."""
    with os.scandir(proc_root) as entries:
        return sum(1 for e in entries if e.name.isdigit())


def group_members(pgid: int, *, zombies: bool, proc_root: Path = Path("/proc")) -> int:
    found = 0
    with os.scandir(proc_root) as entries:
        for e in entries:
            if not e.name.isdigit():
                continue
            try:
                raw = (proc_root / e.name / "stat").read_bytes()
            except OSError:
                continue
            fields = raw[raw.rindex(b")") + 2 :].split()
            if int(fields[2]) == pgid and (zombies or fields[0] != b"Z"):
                found += 1
    return found


class HostProcesses:
    """`extra` more processes on the host while the `with` block runs (plus the spawner itself)."""

    def __init__(self, extra: int) -> None:
        self.extra = max(0, extra)
        self.spawner: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> HostProcesses:
        if self.extra == 0:
            return self
        self.spawner = subprocess.Popen(
            [sys.executable, "-c", _SPAWNER, str(self.extra), str(BRANCH), str(LIFETIME)],
            stdout=subprocess.PIPE,
            start_new_session=True,  # its own process group: one killpg ends every sleep
        )
        try:
            assert self.spawner.stdout is not None
            if self.spawner.stdout.readline().strip() != b"ready":
                raise RuntimeError("the process spawner failed")
            # fork returned for every child; wait until each one is a `sleep` we can count
            deadline = time.monotonic() + 60
            while group_members(self.spawner.pid, zombies=False) < self.extra + 1:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"could not start {self.extra} extra processes")
                time.sleep(0.05)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        if self.spawner is None:
            return
        pgid = self.spawner.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        self.spawner.wait()
        if self.spawner.stdout is not None:
            self.spawner.stdout.close()
        # orphaned sleeps are reaped by init: wait until even their zombies are gone, so the next size starts
        # from the host's own count
        deadline = time.monotonic() + 30
        while group_members(pgid, zombies=True) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.spawner = None

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
