"""The real `workshop` on a pseudo-terminal of a given size, its output drawn by a terminal emulator (pyte), so a
test reads the screen the room reads: which rows show what, and every time something was drawn past the right
edge (the terminal then wraps it, mid-word as often as not). A program that ends its lines itself (rich, when it
wraps at spaces) never draws there, so every such moment is a line the program lost control of."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pexpect
import pyte
from pyte import modes
from wcwidth import wcwidth

from tests.harness import REPO

SIZES = [(80, 24), (140, 45)]
"""A laptop's default terminal, and a projector's full-screen one (columns, rows)."""
WORD = re.compile(r"[\w./~-]")
"""Characters that belong to a word or a path: a line broken between two of them is broken inside one."""


@dataclass(frozen=True)
class Break:
    row: str
    """The row as it stood when the break happened."""
    next_char: str

    @property
    def inside_a_word(self) -> bool:
        return bool(self.row) and bool(WORD.match(self.row[-1])) and bool(WORD.match(self.next_char))

    def __str__(self) -> str:
        return f"{self.row.rstrip()[-60:]!r} ⏎ {self.next_char!r}"


class Glass(pyte.HistoryScreen):
    """A pyte screen that keeps the rows scrolled off its top, and remembers every line the program did not end
    itself before the right edge."""

    def __init__(self, columns: int, lines: int) -> None:
        super().__init__(columns, lines, history=20000)
        self.breaks: list[Break] = []

    def _row(self) -> str:
        line = self.buffer[self.cursor.y]
        return "".join(line[x].data for x in range(self.columns))

    def draw(self, data: str) -> None:
        for char in data:
            if wcwidth(char) > 0 and self.cursor.x >= self.columns and modes.DECAWM in self.mode:
                self.breaks.append(Break(self._row(), char))
            super().draw(char)

    def rows(self) -> list[str]:
        """The rows on the screen now."""
        return [row.rstrip() for row in self.display]

    def scrolled(self) -> list[str]:
        """Every row since the start: those scrolled off the top, then the screen."""
        gone = ["".join(line[x].data for x in range(self.columns)).rstrip() for line in self.history.top]
        return gone + self.rows()


class Terminal:
    """`workshop ARGS` in a terminal of `columns` × `lines`, as a person would see it."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str], columns: int, lines: int) -> None:
        self.glass = Glass(columns, lines)
        self.stream = pyte.ByteStream(self.glass)
        env = {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "PROMPT_TOOLKIT_NO_CPR")}
        self.child = pexpect.spawn(
            sys.executable, ["-m", "workshop", *args], cwd=str(REPO), env={**env, "TERM": "xterm-256color"},
            dimensions=(lines, columns), timeout=60,
        )  # fmt: skip
        self.ended = False

    def pump(self, seconds: float = 0.05) -> None:
        """Draws whatever the program wrote within `seconds`."""
        deadline = time.monotonic() + seconds
        while not self.ended:
            try:
                data = self.child.read_nonblocking(65536, timeout=max(0.0, min(0.05, deadline - time.monotonic())))
            except pexpect.TIMEOUT:
                if time.monotonic() >= deadline:
                    return
                continue
            except pexpect.EOF:
                self.ended = True
                return
            self.stream.feed(data)
            # a terminal answers the cursor-position request prompt_toolkit makes; so does this one
            if b"\x1b[6n" in data:
                self.child.send(f"\x1b[{self.glass.cursor.y + 1};{self.glass.cursor.x + 1}R")

    def wait_for(self, text: str, timeout: float = 60, row: int | None = None) -> list[str]:
        """Waits until `text` has been shown (in the screen's `row` now if given, e.g. -1 for the last row);
        returns every row since the start."""
        deadline = time.monotonic() + timeout
        while True:
            self.pump()
            rows = self.glass.rows()
            seen = [rows[row]] if row is not None else self.glass.scrolled()
            if any(text in r for r in seen):
                return self.glass.scrolled()
            if self.ended or time.monotonic() > deadline:
                why = "the program ended" if self.ended else "timed out"
                screen = "\n".join(f"{i:2}|{r}" for i, r in enumerate(rows))
                raise AssertionError(f"{why} waiting for {text!r} on the screen:\n{screen}")

    def send(self, keys: str) -> None:
        self.child.send(keys)

    def close(self) -> None:
        if self.child.isalive():
            self.child.sendcontrol("c")
            self.pump(0.3)
            self.child.sendcontrol("d")
            deadline = time.monotonic() + 20
            while not self.ended and time.monotonic() < deadline:
                self.pump(0.2)
        self.child.close(force=True)
