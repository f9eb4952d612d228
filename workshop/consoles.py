"""Persistent shells ("consoles") that lessons type into, driven by pexpect.

Each console is a real interactive bash on a pty. State carries from step to step as in a terminal: a line
like `unshare -p -f … /bin/sh` turns the console into a container shell, and the next lines go to that shell.

Knowing when a line is done, whatever shell is reading: after each line we type a second one,
`printf '__WS_%s_%d__\\n' TOKEN $?`, which whichever shell reads next (bash, or busybox ash nested in a
namespace) executes, printing a marker with the exit status. Prompts are turned off (empty PS1, exported, so
nested shells inherit it), echo is off (`--noediting` and a `-echo` pty), and TERM=dumb keeps line editors quiet.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pexpect

from workshop import observer

ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][A-Za-z0-9]|\x1b[=>]")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
MARKER = "__WS_{token}_"
BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "TERM": "dumb",
    "LANG": "C.UTF-8",
    "PS1": "",
    "PS2": "",
    "PS4": "+ ",
    # an interactive bash or ash would otherwise write the learner's history into /root
    "HISTFILE": "/dev/null",
}

Sink = Callable[[str], None]


def clean(text: str) -> str:
    """Terminal output as plain text: no escape sequences, no carriage returns, no stray control bytes."""
    return CONTROL.sub("", ANSI.sub("", text).replace("\r\n", "\n").replace("\r", "\n"))


@dataclass(frozen=True)
class LineResult:
    rc: int | None
    """Exit status of the line; None when it did not finish (timeout, Ctrl-C, shell gone)."""
    output: str
    timed_out: bool = False
    interrupted: bool = False
    restarted: bool = False
    """The console's shell had to be replaced: state of earlier steps in this console is gone."""


class Console:
    def __init__(
        self,
        name: str,
        session: str,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        proc_root: Path = Path("/proc"),
    ) -> None:
        self.name = name
        self.session = session
        self.env = {**BASE_ENV, **(env or {}), "WORKSHOP_SESSION": session}
        self.cwd = cwd
        self.proc_root = proc_root
        self.child: pexpect.spawn | None = None
        self._pending = ""

    # -- life cycle --------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.child = pexpect.spawn(
            "/bin/bash",
            ["--noprofile", "--norc", "--noediting", "-i"],
            env=self.env,
            cwd=str(self.cwd) if self.cwd else None,
            echo=False,
            encoding="utf-8",
            codec_errors="replace",
            dimensions=(50, 400),
        )
        if self.sync(timeout=10) is None:
            self.close()
            raise RuntimeError(f"console {self.name}: the shell did not start")

    @property
    def pid(self) -> int:
        """The console's own top-level shell."""
        if self.child is None:
            raise RuntimeError(f"console {self.name} is not running")
        return int(self.child.pid)

    @property
    def alive(self) -> bool:
        return self.child is not None and bool(self.child.isalive())

    def focus_pid(self) -> int:
        """The process the learner is talking to: the innermost shell in the foreground of this console's tty."""
        return observer.foreground_pid(self.proc_root, self.pid) or self.pid

    def close(self) -> None:
        if self.child is not None:
            with contextlib.suppress(Exception):
                self.child.close(force=True)
        self.child = None

    def restart(self) -> None:
        self.close()
        self._pending = ""
        self.start()

    # -- typing --------------------------------------------------------------------------------------------------
    def type(self, line: str, timeout: float = 30.0, on_output: Sink | None = None) -> LineResult:
        """Types one line and waits for it to finish, streaming output lines to `on_output` as they arrive.

        KeyboardInterrupt is not caught here: the caller decides (it calls `interrupt()`).
        """
        if not self.alive:
            self.restart()
        token = secrets.token_hex(4)
        assert self.child is not None
        self.child.sendline(line)
        self._send_marker(token)
        found, output = self._read_until(token, timeout, on_output)
        if found is not None:
            return LineResult(found, output)
        if not self.alive:
            self.restart()
            return LineResult(None, output, restarted=True)
        restarted = not self.interrupt()
        return LineResult(None, output, timed_out=True, restarted=restarted)

    def interrupt(self) -> bool:
        """Ctrl-C to the foreground job, then wait until a shell answers again; restarts the console if none does.

        Returns False if the console had to be restarted (its state is gone)."""
        for signal_char in ("\x03", "\x03", "\x1c"):
            if not self.alive:
                break
            with contextlib.suppress(Exception):
                assert self.child is not None
                self.child.send(signal_char)
            time.sleep(0.1)
            if self.sync(timeout=2) is not None:
                return True
        self.restart()
        return False

    def sync(self, timeout: float = 5.0) -> int | None:
        """Waits until a shell reads input again, discarding what came before; returns its `$?` or None."""
        if not self.alive:
            return None
        token = secrets.token_hex(4)
        self._send_marker(token)
        rc, _ = self._read_until(token, timeout, None)
        return rc

    def drain(self) -> str:
        """Output that arrived while nobody was typing (a background job, a shell killed from the host)."""
        if not self.alive:
            return ""
        assert self.child is not None
        chunks = [self._pending]
        self._pending = ""
        with contextlib.suppress(pexpect.TIMEOUT, pexpect.EOF):
            while True:
                chunks.append(self.child.read_nonblocking(65536, timeout=0.05))
        return clean("".join(chunks))

    # -- protocol ------------------------------------------------------------------------------------------------
    def _send_marker(self, token: str) -> None:
        assert self.child is not None
        # a separate line, so a shell started by the previous line is the one that runs it
        self.child.sendline(f"printf '{MARKER.format(token='%s')}%d__\\n' {token} $?")

    def _read_until(self, token: str, timeout: float, on_output: Sink | None) -> tuple[int | None, str]:
        assert self.child is not None
        pattern = re.compile(re.escape(MARKER.format(token=token)) + r"(\d+)__\n?")
        stale = re.compile(r"__WS_[0-9a-f]{8}_\d+__\n?")
        buf = self._pending
        self._pending = ""
        emitted = 0
        lines: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            text = clean(buf)
            m = pattern.search(text)
            upto = m.start() if m else len(text)
            # every complete line before the marker is shown as soon as it is complete
            body = stale.sub("", text[:upto])
            complete = body.split("\n")
            tail = complete.pop()  # the unfinished last line, unless the marker ended it
            for ln in complete[emitted:]:
                lines.append(ln)
                if on_output:
                    on_output(ln)
            emitted = len(complete)
            if m:
                if tail:
                    lines.append(tail)
                    if on_output:
                        on_output(tail)
                self._pending = text[m.end() :]
                return int(m.group(1)), "\n".join(lines)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._pending = ""
                return None, "\n".join([*lines, tail] if tail else lines)
            try:
                buf += self.child.read_nonblocking(65536, timeout=min(0.1, remaining))
            except pexpect.TIMEOUT:
                continue
            except pexpect.EOF:
                return None, "\n".join([*lines, tail] if tail else lines)
