"""Where the tool's cgroups live on a machine whose cgroup tree systemd owns: a scope systemd delegated to it.

systemd considers every cgroup below its root its own: a cgroup made beside its slices may be moved, reset or
removed when it reloads, and enabling a controller in one of its slices changes its services. runc's and podman's
systemd driver therefore ask systemd for a unit with `Delegate=yes` and put their cgroups below it; the tool does
the same. `systemd-run --scope` makes the transient scope `workshop.scope` (in system.slice) around a keeper
process, since systemd stops a scope once no process is left in it. The keeper then moves to a leaf child,
`keeper/`: cgroup v2 lets a cgroup hand a controller down to its children only while it holds no process itself
("no internal processes"), and the lessons' cgroups need pids handed down.

The scope is shared by concurrent sessions, like the parent cgroup it replaces: each journals it before using
it, and the one that ends last (no other lesson cgroup left below, no other running session) stops it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from workshop.engine import cgroupfs, processes

UNIT = "workshop.scope"
SLICE = "system.slice"
"""Where `systemd-run --scope` puts a scope of the system manager when no slice is named."""
KEEPER = "keeper"


def is_systemd_host(proc_root: Path) -> bool:
    """systemd is PID 1 here (so it owns the cgroup tree)."""
    try:
        return (proc_root / "1" / "comm").read_text().strip() == "systemd"
    except OSError:
        return False


def scope_path(cgroup2_root: Path) -> Path:
    return cgroup2_root / SLICE / UNIT


def _keeper_pids(scope: Path) -> list[int]:
    try:
        return [int(p) for p in (scope / KEEPER / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def _wait(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def ensure(scope: Path, controllers: tuple[str, ...] = ("pids",)) -> None:
    """The scope exists, delegated, with its keeper in `keeper/` and the controllers (pids, memory, cpu) handed
    down to the lessons' cgroups. Already journaled by the caller; safe when several sessions call it at once
    (they take turns on a lock)."""
    with _locked(scope.parent):
        if not _keeper_pids(scope):
            _start(scope)
        for controller in controllers:
            cgroupfs.enable_controller(scope / "cgroup.subtree_control", controller)


def _start(scope: Path) -> None:
    argv = ["systemd-run", "--scope", f"--unit={UNIT}", "--property=Delegate=yes", "--collect", "--quiet"]
    try:
        keeper = processes.start_detached([*argv, "--", "sleep", "infinity"])
    except OSError as e:
        raise cgroupfs.CgroupError(f"cannot start systemd-run for the tool's scope {UNIT}: {e.strerror or e}") from e

    def started() -> bool:
        try:
            return str(keeper) in (scope / "cgroup.procs").read_text().split()
        except OSError:
            return False

    if not _wait(started, 10):
        with contextlib.suppress(ProcessLookupError):
            os.kill(keeper, signal.SIGKILL)
        raise cgroupfs.CgroupError(f"systemd did not start the scope {UNIT} within 10 s (see `journalctl -u {UNIT}`)")
    with contextlib.suppress(FileExistsError):
        (scope / KEEPER).mkdir()
    (scope / KEEPER / "cgroup.procs").write_text(str(keeper))


def stop(scope: Path) -> str:
    """Undo: stop the scope unless a lesson cgroup (another session's) is still below it."""
    if not scope.exists():
        return "already gone"
    with _locked(scope.parent):
        others = [d.name for d in scope.iterdir() if d.is_dir() and d.name != KEEPER]
        if others:
            return f"kept: {others[0]} still uses it"
        for pid in _keeper_pids(scope):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _wait(lambda: not _keeper_pids(scope), 5)
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(scope / KEEPER)
        # With no process left, systemd stops the scope and removes its cgroup; should it not, the tool does.
        if not _wait(lambda: not scope.exists(), 5):
            try:
                os.rmdir(scope)
            except OSError as e:
                if e.errno != errno.ENOENT:
                    return f"failed: {scope} is still there ({e.strerror})"
    return "removed"


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive lock between sessions, held on the directory itself (cgroupfs supports flock like any fs)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
