"""VM tiers that boot as soon as the test run starts and work in the background, beside the host's own tests.

A guest under software emulation wants both cores for many minutes, while the host's own tests leave about two
thirds of the CPU idle, waiting on ptys, consoles, signals and sleeps (measured: 69 % idle over the host tests). So
a tier that is selected starts when collection is done, one tier after the other, and uses that idle CPU; its test
runs after the host's tests, waits for the result and judges it as if it had run the tier there and then. The
Vagrant tier, which wants both cores itself, runs after those (`after_background`).

The guests run at the host tests' own priority, not niced: a guest starved of CPU still sees wall-clock time pass,
and its lessons' checks that measure the kernel over time (a busy loop throttled by a CPU quota, a process that must
die within a while) then fail. Seen here with nice 19 beside another busy qemu: two cgroup proofs failed.

Only tiers that leave the host alone can run beside other tests: a guest booted from a read-only share under an
overlay of its own (tests/vm/run-in-vm) touches no mount, link, cgroup or file the host tests compare. The Vagrant
tier (libvirt's cgroups, its namespaces) runs in the foreground.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SUMMARY_ROW = re.compile(r"^  (\S.*?)\s{2,}(passed|shown|FAILED \(exit \d+\))\s+[\d.]+\s*$", re.MULTILINE)
"""A row of the summary table the tier scripts print at the end (tests/vm/lessons-in-vm, tests/vm/arm64-tier)."""


def blocker(skip_variable: str, tools: Sequence[str]) -> Callable[[], str | None]:
    """Why a tier cannot start here: `skip_variable`=0, already inside a VM, or a missing tool."""

    def why() -> str | None:
        if os.environ.get(skip_variable) == "0":
            return f"{skip_variable}=0"
        if os.environ.get("WS_IN_VM") == "1":
            return "already inside a VM"
        missing = [tool for tool in tools if shutil.which(tool) is None]
        return f"needs {', '.join(missing)}" if missing else None

    return why


@dataclass
class Outcome:
    rc: int | None
    output: str
    started: float  # time.monotonic() when it began
    seconds: float
    timed_out: bool = False


@dataclass(eq=False)
class Tier:
    """One tier: a command whose output is judged by a test. `blocker()` says why it cannot start (a skip or a
    failure is for its test to say), or None."""

    name: str
    argv: Sequence[str]
    blocker: Callable[[], str | None]
    timeout: float
    cwd: Path
    env: Mapping[str, str] = field(default_factory=dict)
    echo: bool = False  # the output goes to stdout as it comes (run in the foreground under `pytest -s`)
    _lines: list[str] = field(default_factory=list, init=False)
    _done: threading.Event = field(default_factory=threading.Event, init=False)
    _outcome: Outcome | None = field(default=None, init=False)
    _proc: subprocess.Popen[str] | None = field(default=None, init=False)
    _started: bool = field(default=False, init=False)
    _queued: bool = field(default=False, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def run(self) -> None:
        """Runs the tier to its end (or timeout) once; later calls return at once."""
        with self._lock:
            if self._started:
                return
            self._started = True
        start = time.monotonic()
        self._proc = subprocess.Popen(
            list(self.argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
            errors="replace", cwd=self.cwd, start_new_session=True, env={**os.environ, **self.env},
        )  # fmt: skip
        reader = threading.Thread(target=self._pump, daemon=True)
        reader.start()
        timed_out = False
        try:
            rc: int | None = self._proc.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            self.stop()
            rc = self._proc.returncode
        reader.join(timeout=10)
        self._outcome = Outcome(rc, "".join(self._lines), start, time.monotonic() - start, timed_out)
        self._done.set()

    def _pump(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            self._lines.append(line)
            if self.echo:
                sys.stdout.write(line)

    def result(self) -> Outcome:
        """The outcome, waiting for a background run; a tier that was not queued runs now, in the foreground."""
        if not self._queued:
            self.echo = True
            self.run()
        self._done.wait()
        assert self._outcome is not None
        return self._outcome

    def problems(self, expected_rows: Sequence[str]) -> list[str]:
        """What is wrong with the finished run: a timeout, an exit status, a row of the summary not passed."""
        out = self.result().output
        summary = out[out.rfind("===== summary") :] if "===== summary" in out else out[-6000:]
        if self.result().timed_out:
            return [f"{self.name} did not finish in {self.timeout:.0f} s:\n" + "".join(out.splitlines(True)[-100:])]
        found = [] if self.result().rc == 0 else [f"{self.name} exited with {self.result().rc}"]
        rows = dict(SUMMARY_ROW.findall(summary))
        found += [f"{row}: {rows.get(row, 'missing')}" for row in expected_rows if rows.get(row) != "passed"]
        if "RESULT: all passed" not in summary:
            found.append("no 'RESULT: all passed'")
        return [*found, summary] if found else []

    def stop(self) -> None:
        """SIGTERM to the tier's process group first (run-in-vm's trap stops qemu), then SIGKILL."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        for sig, grace in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                continue


class Queue:
    """Selected tiers, run one after the other on a thread of their own: two guests at once would only share the
    same two cores."""

    def __init__(self) -> None:
        self.tiers: list[Tier] = []
        self._thread: threading.Thread | None = None

    def start(self, tiers: Sequence[Tier]) -> None:
        self.tiers = [t for t in tiers if t.blocker() is None]
        for tier in self.tiers:
            tier._queued = True
        if self.tiers:
            self._thread = threading.Thread(target=self._run_all, name="background tiers", daemon=True)
            self._thread.start()

    def _run_all(self) -> None:
        for tier in self.tiers:
            tier.run()

    def stop(self) -> None:
        for tier in self.tiers:
            tier.stop()


QUEUE = Queue()
