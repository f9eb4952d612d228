"""The observer (snapshot + diff + render) against `pstree -p -S` + `lsns`, on a host with N processes.

Two comparisons, each measured alternately with its baseline so both see the same machine:

- lesson view: what the tool does after every step. It scans every process's `stat` to learn the tree, reads
  the details of the lesson's processes (a `host` console `bash → sleep` and a `container` console
  `unshare -p -f --mount-proc → sleep`), diffs and renders the pstree and namespace views. Baseline: one
  `pstree -p -S` of the consoles' common parent plus one `lsns` (both scan every process too).
- whole tree: the observer rooted at PID 1, so every process is read in full and rendered, against
  `pstree -p -S` (whole tree) plus `lsns`: the same output size on both sides.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from benchmarks.hostprocs import HostProcesses, count_processes, group_members
from benchmarks.measure import Row, is_root, judge, median_ms, ms, time_call, time_command
from workshop.engine.events import Observed
from workshop.environment import Environment
from workshop.observe import process_diff, process_tree, procfs
from workshop.ui.render import Renderer

PROC = Path("/proc")
LESSON_TARGET_MS = 50.0
"""At 1,000 processes the lesson view must take less than this."""
LESSON_TARGET_AT = 1000


@dataclass
class LessonProcesses:
    """Stand-ins for a lesson's two consoles, children of one parent (like the tool's consoles)."""

    parent: subprocess.Popen[bytes]
    roots: dict[str, int]

    @classmethod
    def start(cls) -> LessonProcesses:
        container = "unshare -p -f --mount-proc --kill-child sleep 900" if is_root() else 'bash -c "sleep 900; :"'
        parent = subprocess.Popen(
            ["bash", "-c", f'bash -c "sleep 900; :" & {container} & wait'],
            start_new_session=True,
        )
        me = cls(parent, {})
        try:
            deadline = time.monotonic() + 10
            while not me._ready():
                if time.monotonic() > deadline:
                    raise RuntimeError("the lesson stand-in processes did not start")
                time.sleep(0.02)
        except BaseException:
            me.close()
            raise
        return me

    def _ready(self) -> bool:
        children = _children_of(self.parent.pid)
        if len(children) != 2 or any(not _children_of(pid) for pid in children):
            return False
        self.roots = {"host": children[0], "container": children[1]}
        return True

    def close(self) -> None:
        pgid = self.parent.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        self.parent.wait()
        deadline = time.monotonic() + 10
        while group_members(pgid, zombies=True) and time.monotonic() < deadline:
            time.sleep(0.02)


def _children_of(pid: int) -> list[int]:
    found = []
    for child in sorted(int(e.name) for e in os.scandir(PROC) if e.name.isdigit()):
        stat = procfs.read_stat(PROC, child)
        if stat is not None and stat.ppid == pid and stat.state != "Z":
            found.append(child)
    return found


class ObserverLoop:
    """One step's worth of observing, as the tool does it: snapshot, diff with the last one, render."""

    def __init__(self, roots: Mapping[str, int]) -> None:
        self.roots = dict(roots)
        self.buffer = io.StringIO()
        # colours on, as in a terminal: rich decides that when the console is created
        saved = {k: os.environ.get(k) for k in ("FORCE_COLOR", "TERM", "NO_COLOR")}
        os.environ.update(FORCE_COLOR="1", TERM="xterm-256color")
        os.environ.pop("NO_COLOR", None)
        try:
            self.renderer = Renderer(Environment(stdout=self.buffer, width=100))
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        self.last: process_tree.Snapshot | None = None
        self.processes_shown = 0

    def step(self) -> None:
        snap = process_tree.snapshot(PROC, self.roots, reference_pid=os.getpid())
        self.renderer(Observed(snap, process_diff.diff(self.last, snap)))
        self.last = snap
        self.processes_shown = len(snap.procs)
        self.buffer.seek(0)
        self.buffer.truncate()


@dataclass(frozen=True)
class Pair:
    observer_ms: float
    baseline_ms: float
    processes: int
    shown: int


def _alternate(ours: Callable[[], object], theirs: list[list[str]], repeat: int) -> tuple[list[float], list[float]]:
    ours()  # warm up: the first snapshot has nothing to diff with, caches are cold
    for argv in theirs:
        time_command(argv)
    mine: list[float] = []
    base: list[float] = []
    for _ in range(repeat):
        mine.append(time_call(ours))
        base.append(sum(time_command(argv) for argv in theirs))
    return mine, base


def measure_size(total: int, repeat: int) -> tuple[Pair, Pair]:
    """(lesson view, whole tree) with the host topped up to `total` processes."""
    lesson = LessonProcesses.start()
    try:
        with HostProcesses(total - count_processes()):
            counts = [count_processes()]
            view = ObserverLoop(lesson.roots)
            mine, base = _alternate(view.step, [["pstree", "-p", "-S", str(lesson.parent.pid)], ["lsns"]], repeat)
            lesson_pair = Pair(median_ms(mine), median_ms(base), 0, view.processes_shown)
            counts.append(count_processes())
            whole = ObserverLoop({"init": 1})
            mine, base = _alternate(whole.step, [["pstree", "-p", "-S"], ["lsns"]], max(3, repeat // 2))
            whole_pair = Pair(median_ms(mine), median_ms(base), 0, whole.processes_shown)
            counts.append(count_processes())
    finally:
        lesson.close()
    host = sorted(counts)[len(counts) // 2]
    return (
        Pair(lesson_pair.observer_ms, lesson_pair.baseline_ms, host, lesson_pair.shown),
        Pair(whole_pair.observer_ms, whole_pair.baseline_ms, host, whole_pair.shown),
    )


def rows(sizes: list[int], repeat: int) -> list[Row]:
    lesson_rows: list[Row] = []
    whole_rows: list[Row] = []
    for total in sizes:
        # fewer repetitions where one baseline run takes seconds
        lesson, whole = measure_size(total, repeat if total <= 1000 else max(3, repeat // 2))
        ratio = lesson.observer_ms / lesson.baseline_ms
        with_limit = total == LESSON_TARGET_AT
        target = f"ratio < 1, < {LESSON_TARGET_MS:.0f} ms" if with_limit else "ratio < 1"
        ok = ratio < 1 and (not with_limit or lesson.observer_ms < LESSON_TARGET_MS)
        lesson_rows.append(
            Row(
                f"observer, lesson view, {lesson.processes:,} host processes",
                ms(lesson.observer_ms),
                f"{ms(lesson.baseline_ms)} (pstree -p -S PID + lsns)",
                f"{ratio:.2f}",
                target,
                judge(ok),
                f"{lesson.shown} processes shown",
            )
        )
        ratio = whole.observer_ms / whole.baseline_ms
        whole_rows.append(
            Row(
                f"observer, whole tree, {whole.processes:,} host processes",
                ms(whole.observer_ms),
                f"{ms(whole.baseline_ms)} (pstree -p -S + lsns)",
                f"{ratio:.2f}",
                "ratio < 1",
                judge(ratio < 1),
                f"{whole.shown:,} processes shown",
            )
        )
    return lesson_rows + whole_rows
