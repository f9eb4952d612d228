"""Persistent shells ("consoles") that lessons type into, driven by pexpect.

Each console is a real interactive bash on a pty. State carries from step to step as in a terminal: a line
like `unshare -p -f … /bin/sh` turns the console into a container shell, and the next lines go to that shell.

Knowing when a line is done, whatever shell is reading: after each line we type a second one,
`printf '__WS_%s_%d__\\n' TOKEN $?`, which whichever shell reads next (bash, or busybox ash nested in a
namespace) executes, printing a marker with the exit status. Prompts are turned off (empty PS1, exported, so
nested shells inherit it), echo is off (`--noediting` and a `-echo` pty), and TERM=dumb keeps line editors quiet.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import os
import re
import secrets
import termios
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pexpect

from workshop import arch
from workshop.engine import signals
from workshop.engine.events import LineResult
from workshop.observe import process_tree, procfs

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
SHELLS = frozenset({"bash", "sh", "dash", "ash", "busybox", "zsh", "ksh", "mksh"})


def _read_syscall() -> str | None:
    """read(2)'s number as /proc/PID/syscall prints it; None where it cannot be known."""
    try:
        return str(arch.syscall_number("read"))
    except arch.ArchError:
        return None


_READ_SYSCALL = _read_syscall()


def _blocked_reading_stdin(proc_root: Path, pid: int) -> bool:
    """Whether the process sleeps in read(0, …), from /proc/PID/syscall; when that cannot be read (no root, an
    unknown architecture) we cannot tell, and answer yes: the marker is typed at once, as it always could be."""
    fields = procfs.read_syscall(proc_root, pid)
    if fields is None:
        return True
    if _READ_SYSCALL is None or not fields or fields[0] == "running":
        return _READ_SYSCALL is None
    return fields[0] == _READ_SYSCALL and len(fields) > 1 and int(fields[1], 16) == 0


def clean(text: str) -> str:
    """Terminal output as plain text: no escape sequences, no carriage returns, no stray control bytes."""
    return CONTROL.sub("", ANSI.sub("", text).replace("\r\n", "\n").replace("\r", "\n"))


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
        self._typed_to: tuple[int, int | None] | None = None
        """(foreground shell, its read count) when the last line was typed; see `_shell_waiting`."""

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
        # pexpect sleeps 50 ms before every send by default, for programs that turn echo off late; our lines only go
        # out once the shell is blocked reading (see `_shell_waiting`), so the pause is pure latency, twice per line
        self.child.delaybeforesend = None
        if self.sync(timeout=30) is None:  # generous: a busy CI machine or a VM under emulation is slow
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
        return process_tree.foreground_pid(self.proc_root, self.pid) or self.pid

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
        fresh = not self.alive
        if fresh:  # the shell died since the last line (killed from the host, `exit`): say its state is gone
            self.restart()
        token = secrets.token_hex(4)
        assert self.child is not None
        focus = self.focus_pid()
        self._typed_to = (focus, procfs.reads_done(self.proc_root, focus))
        self.child.sendline(line)
        found, output = self._read_until(token, timeout, on_output)
        if found is not None:
            return LineResult(found, output, restarted=fresh)
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
        self._typed_to = None
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
            while True:  # whatever arrived is already in the pty: read it without waiting for more
                chunks.append(self.child.read_nonblocking(65536, timeout=0))
        return clean("".join(chunks))

    # -- protocol ------------------------------------------------------------------------------------------------
    def _send_marker(self, token: str) -> None:
        assert self.child is not None
        # a separate line, so a shell started by the previous line is the one that runs it
        self.child.sendline(f"printf '{MARKER.format(token='%s')}%d__\\n' {token} $?")

    def _shell_waiting(self) -> bool:
        """True once a shell, not a program like `cat` or `read`, is in the foreground, blocked reading the
        terminal, with nothing left in the terminal's input queue: only then is the marker line typed, so no
        program that reads its standard input ever swallows it."""
        pid = self.focus_pid()
        stat = procfs.read_stat(self.proc_root, pid)
        if stat is None or stat.comm not in SHELLS:
            return False
        if self._typed_to is not None:
            # typed input reaches the terminal asynchronously: until the shell that was in front when the line was
            # typed has finished a read since, it has not even seen the line
            typed_pid, reads = self._typed_to
            if pid == typed_pid and reads is not None and (procfs.reads_done(self.proc_root, pid) or 0) <= reads:
                return False
        if self._input_queued():
            return False
        return _blocked_reading_stdin(self.proc_root, pid)

    def _input_queued(self) -> int:
        """Bytes typed into the console that no process has read yet (TIOCINQ on the pty's terminal side)."""
        try:
            fd = os.open(self.proc_root / str(self.pid) / "fd" / "0", os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError:
            return 0
        try:
            buf = array.array("i", [0])
            fcntl.ioctl(fd, termios.FIONREAD, buf, True)
            return buf[0]
        except OSError:
            return 0
        finally:
            os.close(fd)

    def _read_until(self, token: str, timeout: float, on_output: Sink | None) -> tuple[int | None, str]:
        assert self.child is not None
        pattern = re.compile(re.escape(MARKER.format(token=token)) + r"(\d+)__\n?")
        stale = re.compile(r"__WS_[0-9a-f]{8}_\d+__\n?")
        buf = self._pending
        self._pending = ""
        emitted = 0
        lines: list[str] = []
        deadline = time.monotonic() + timeout
        marker_sent = False
        while True:
            signals.check()
            if not marker_sent and self._shell_waiting():
                self._send_marker(token)
                marker_sent = True
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
                # poll faster while the marker waits for a shell to come back
                buf += self.child.read_nonblocking(65536, timeout=min(0.1 if marker_sent else 0.01, remaining))
            except pexpect.TIMEOUT:
                continue
            except pexpect.EOF:
                return None, "\n".join([*lines, tail] if tail else lines)
