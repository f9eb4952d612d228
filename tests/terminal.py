"""The real `workshop` on a pseudo-terminal, as a learner has it: pexpect spawns it, types, and reads the screen;
and what a test reads beside it (the sessions it made, their processes, the text without escape codes)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pytest

from tests.harness import REPO
from workshop.lesson import loader

PROMPT = "workshop ❯ "
UNSHARE_STEPS = len(loader.load_lesson(REPO / "lessons" / "unshare-pid" / "lesson.md").steps)
"""Steps of the unshare-pid lesson, which `Learner.run_to_pid_1` walks through."""
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][A-Za-z0-9]|\x1b[=>]")


def lesson_prompt(lesson: str, step: int, total: int, console: str) -> str:
    """The prompt while a lesson runs: lesson id, the step Enter runs next, and the active console."""
    return f"{lesson} {step}/{total} {console}# "


def plain(text: str) -> str:
    return ANSI.sub("", text).replace("\r\n", "\n").replace("\r", "\n")


class Learner:
    """One `workshop` on a pty, driven like a person would: type a line, wait for what the screen shows."""

    def __init__(self, env: dict[str, str], args: Sequence[str] = ()) -> None:
        self.log = io.StringIO()
        self.child = pexpect.spawn(
            sys.executable, ["-m", "workshop", *args], cwd=str(REPO), env={**env, "TERM": "dumb"}, encoding="utf-8",
            codec_errors="replace", dimensions=(40, 120), timeout=30,
        )  # fmt: skip
        self.child.logfile_read = self.log

    @property
    def pid(self) -> int:
        return int(self.child.pid)

    def screen(self, tail: int = 4000) -> str:
        return plain(self.log.getvalue())[-tail:]

    def _fail(self, what: str, error: Exception) -> None:
        why = "the program ended" if isinstance(error, pexpect.EOF) else "timed out"
        pytest.fail(f"{why} waiting for {what}; the screen ended with:\n{self.screen()}", pytrace=False)

    def wait_for(self, text: str, timeout: float | None = None) -> str:
        """Waits until `text` appears; returns what came before it (ANSI-stripped)."""
        try:
            self.child.expect_exact(text, timeout=timeout if timeout is not None else -1)
        except (pexpect.TIMEOUT, pexpect.EOF) as e:
            self._fail(repr(text), e)
        return plain(self.child.before)

    def _first_of(self, *texts: str) -> int:
        """Waits until one of `texts` appears; returns which."""
        try:
            return int(self.child.expect_exact(list(texts), timeout=-1))
        except (pexpect.TIMEOUT, pexpect.EOF) as e:
            self._fail(" or ".join(map(repr, texts)), e)
            raise

    def type(self, line: str) -> None:
        self.child.sendline(line)

    def wait_exit(self, timeout: float = 30) -> int | None:
        """Waits for the program to end by itself; returns its exit status (None if a signal killed it)."""
        try:
            self.child.expect(pexpect.EOF, timeout=timeout)
        except pexpect.TIMEOUT as e:
            self._fail("the program to exit", e)
        self.child.wait()
        self.child.close()
        return self.child.exitstatus  # type: ignore[no-any-return]

    def run_to_pid_1(self) -> None:
        """`start unshare-pid`, then Enter for step 1 (unpack the image) and step 2 (a shell that is PID 1): a "try
        it" step, so Enter only shows it, and `skip` has workshop type it."""
        self.wait_for(PROMPT)
        self.type("start unshare-pid")
        self.wait_for(lesson_prompt("unshare-pid", 1, UNSHARE_STEPS, "container"))
        self.type("")
        self.wait_for(lesson_prompt("unshare-pid", 2, UNSHARE_STEPS, "host"))
        self.type("")
        self.wait_for(lesson_prompt("unshare-pid", 2, UNSHARE_STEPS, "container"))
        self.type("skip")
        step2 = self.wait_for(lesson_prompt("unshare-pid", 3, UNSHARE_STEPS, "container"))
        assert "my PID is 1" in step2
        assert "step done" in step2, step2[-2000:]

    def open_try_it(self, lesson: str, step: int, total: int, console: str) -> str:
        """In a lesson just opened (`workshop shell LESSON`): Enter runs each step before `step` (`skip` types an
        earlier try-it step), one more Enter shows that try-it step; returns what the screen said, in words."""
        self.wait_for("press Enter to run the first step")
        for k in range(2, step + 1):
            self.type("")
            if self._first_of(f"{lesson} {k}/{total} ", "your turn") == 1:  # an earlier try-it step: skip types it
                self.wait_for(f"{lesson} {k - 1}/{total} ")
                self.type("skip")
                self.wait_for(f"{lesson} {k}/{total} ")
        self.type("")
        shown = words(self.wait_for(lesson_prompt(lesson, step, total, console)))
        assert "your turn" in shown, shown[-2000:]
        return shown

    def teardown(self) -> None:
        """Ctrl-C, Ctrl-D (the shell cleans up and leaves), then SIGKILL whatever is still there."""
        if self.child.isalive():
            with contextlib.suppress(OSError, pexpect.ExceptionPexpect):
                self.child.sendcontrol("c")
                time.sleep(0.2)
                self.child.sendcontrol("d")
                self.child.expect(pexpect.EOF, timeout=15)
        with contextlib.suppress(OSError, pexpect.ExceptionPexpect):
            self.child.terminate(force=True)
        with contextlib.suppress(OSError, pexpect.ExceptionPexpect):
            self.child.close(force=True)


def words(text: str) -> str:
    """Text with every run of whitespace made one space: rich wraps long lines where it likes."""
    return " ".join(text.split())


def session_ids(state_dir: Path) -> set[str]:
    return {p.name for p in (state_dir / "sessions").glob("*")} | {p.stem for p in (state_dir / "journal").glob("*")}


@dataclass(frozen=True)
class Proc:
    pid: int
    cmd: str
    foreign_pidns: bool


def our_processes(state_dir: Path, ids: set[str]) -> list[Proc]:
    """Processes of this test's sessions, read from /proc without asking workshop: WORKSHOP_SESSION=<id> in the
    environment (inherited from the consoles), or a root or working directory below the state dir."""
    markers = {f"WORKSHOP_SESSION={i}".encode() for i in ids}
    mine = os.readlink("/proc/self/ns/pid")
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = set((entry / "environ").read_bytes().split(b"\0"))
            dirs = [os.readlink(entry / "root"), os.readlink(entry / "cwd")]
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            foreign = os.readlink(entry / "ns/pid") != mine
        except OSError:
            continue  # gone meanwhile, or a zombie
        if markers & environ or any(d.startswith(str(state_dir)) for d in dirs):
            found.append(Proc(int(entry.name), cmd, foreign))
    return found
