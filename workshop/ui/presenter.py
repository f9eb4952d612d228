"""Trainer mode: a lesson presented to a room, one key press per step.

Each line of a step is typed out at a readable pace before it runs (the renderer does the typing, this module
sets the pace), and between steps the presenter waits for a key:

    Enter, Space, →  the next step            s  skip it: it still runs, quietly, because later steps build on it
    b, ←             back one step            g  go to step N (asks for N)
    t                type freely in the active console; `resume` (or Ctrl-D) returns to the lesson
    q                end the lesson; everything it created is undone

A thin front end over the lesson driver, which does the work: going back starts a fresh session and replays the
steps before the target quietly, so the kernel is in the state the step expects; going forward replays the steps
in between. Nothing here prints lesson output: the renderer shows every event; this module only draws the key
legend and its own prompts, and the key reader only reads.
"""

from __future__ import annotations

import contextlib
import io
import os
import termios
import tty
from typing import Protocol, TextIO

from workshop.engine import signals
from workshop.engine.driver import DEFAULT_PACE, LessonDriver
from workshop.environment import Environment
from workshop.lesson.model import Lesson
from workshop.lesson.progress import Progress
from workshop.ui.render import Renderer

__all__ = ["DEFAULT_PACE", "Keys", "Presenter", "TerminalKeys", "present"]
NEXT, SKIP, BACK, GOTO, TYPE, QUIT = "next", "skip", "back", "goto", "type", "quit"
KEYS: dict[str, str] = {
    "\r": NEXT, "\n": NEXT, " ": NEXT, "\x1b[C": NEXT, "\x1bOC": NEXT, "n": NEXT,
    "s": SKIP,
    "b": BACK, "\x1b[D": BACK, "\x1bOD": BACK,
    "g": GOTO,
    "t": TYPE,
    "q": QUIT, "\x04": QUIT,
}  # fmt: skip
"""What the terminal sends for a key, and what it means (arrows come in both cursor-key modes)."""


class Keys(Protocol):
    """Where the trainer's key presses come from (a terminal, or a script in tests)."""

    def key(self) -> str:
        """The characters one key press sent; "" when input has ended."""
        ...

    def line(self) -> str | None:
        """A line the user types (the terminal shows it as typed); None at end of input (Ctrl-D)."""
        ...

    def drop_typeahead(self) -> None:
        """Forgets keys pressed while a step ran, so an impatient double Enter does not skip a pause."""
        ...


class TerminalKeys:
    """Keys from a terminal, one press at a time; from a pipe or file, one line is one key press."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.fd = -1
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            self.fd = stream.fileno()
        self.tty = self.fd >= 0 and os.isatty(self.fd)

    def key(self) -> str:
        if not self.tty:
            line = self.stream.readline()
            # no keyboard: an empty line, and the end of input, mean "go on", so a piped run never hangs
            return line.strip() or "\r"
        saved = termios.tcgetattr(self.fd)
        try:
            tty.setcbreak(self.fd)  # one key at a time, not shown; Ctrl-C still interrupts
            data = os.read(self.fd, 32)
        finally:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, saved)
        return data.decode(errors="replace")

    def line(self) -> str | None:
        if not self.tty:
            text = self.stream.readline()
            return text.rstrip("\n") if text else None
        # the terminal is in its normal line mode here: it echoes and edits, and one read is one line
        data = os.read(self.fd, 4096)
        return data.decode(errors="replace").rstrip("\n") if data else None

    def drop_typeahead(self) -> None:
        if self.tty:
            with contextlib.suppress(termios.error):
                termios.tcflush(self.fd, termios.TCIFLUSH)


class Presenter:
    """Runs one lesson in trainer mode; `run()` returns the number of steps the final session passed."""

    def __init__(self, driver: LessonDriver, lesson: Lesson, out: Renderer, keys: Keys) -> None:
        self.driver = driver
        self.lesson = lesson
        self.out = out
        self.keys = keys

    @property
    def total(self) -> int:
        return len(self.lesson.steps)

    def run(self) -> int:
        passed: set[int] = set()
        try:
            self.driver.start(self.lesson)
            self._loop()
        finally:
            if self.driver.session is not None:
                passed = self.driver.session.passed
            self.driver.stop()
        return len(passed)

    def _loop(self) -> None:
        d = self.driver
        while True:
            signals.check()  # a SIGTERM whose exception Python dropped (inside a __del__) ends it here
            verb, number = self._ask()
            if verb == QUIT or (verb == NEXT and d.finished):
                return
            if verb == NEXT:
                d.next()
            elif verb == SKIP:
                d.skip_quietly()
            elif verb == BACK:
                d.back()
            elif verb == GOTO:
                d.jump(number - 1)
            elif verb == TYPE:
                self._free_typing()

    # -- between steps ------------------------------------------------------------------------------------------------
    def _legend(self) -> str:
        s = self.driver.session
        assert s is not None
        keys = "s skip · b back · g goto · t type · q quit"
        if s.finished:
            return f"{self.lesson.id}: end of the lesson │ Enter ends it · b back · g goto · t type"
        step = self.lesson.steps[s.position]
        return f"{self.lesson.id}: next {s.position + 1}/{self.total} {step.title} │ Enter next · {keys}"

    def _ask(self) -> tuple[str, int]:
        """Waits for a key that means something; returns the verb and, for goto, the 1-based step number."""
        self.keys.drop_typeahead()
        self.out.footer(self._legend())
        while True:
            try:
                key = self.keys.key()
            except KeyboardInterrupt:
                return QUIT, 0
            if len(key) > 1 and key[0] in "gG" and key[1:].strip().isdigit():  # `g3` from a pipe
                number: int | None = int(key[1:].strip())
            elif key.isdigit():
                number = int(key)
            else:
                verb = KEYS.get(key if key.startswith("\x1b") else key.lower())
                if verb is None:
                    self.out.notice(f"{key!r} means nothing here", "warning")
                    self.out.footer(self._legend())
                    continue
                if verb != GOTO:
                    return verb, 0
                number = self._ask_number()
            if number is not None and 1 <= number <= self.total:
                return GOTO, number
            if number is not None:
                self.out.notice(f"no step {number}: this lesson has steps 1 to {self.total}", "warning")
            self.out.footer(self._legend())

    def _ask_number(self) -> int | None:
        self.out.prompt(f"go to step (1-{self.total}): ")
        try:
            answer = self.keys.line()
        except KeyboardInterrupt:
            answer = None
        if answer is None:
            self.out.text("")
            return None
        if not answer.strip().isdigit():
            if answer.strip():
                self.out.notice(f"{answer.strip()!r} is not a step number", "warning")
            return None
        return int(answer.strip())

    # -- the trainer's own console ---------------------------------------------------------------------------------
    def _free_typing(self) -> None:
        """The trainer types into the lesson's consoles; the lesson waits, its state is whatever they leave."""
        s = self.driver.session
        assert s is not None
        self.out.notice(
            f"your turn: lines go to the {s.active} console. `console NAME` switches, `resume` (or Ctrl-D) "
            "returns to the lesson"
        )
        while True:
            self.out.prompt(f"{s.active}# ")
            try:
                line = self.keys.line()
            except KeyboardInterrupt:
                self.out.text("")
                continue  # like a shell: Ctrl-C drops the line
            if line is None:
                self.out.text("")
                break
            text = line.strip()
            if text == "resume":
                break
            word, _, name = text.partition(" ")
            if word == "console" and name.strip():
                self._switch_console(name.strip())
            elif text:
                self.driver.type_line(text, echoed=True)  # the terminal showed it as the trainer typed it
        self.out.notice("back to the lesson")

    def _switch_console(self, name: str) -> None:
        s = self.driver.session
        assert s is not None
        if name not in s.consoles:
            self.out.error(f"no console {name!r}; this lesson has: {', '.join(s.consoles)}")
            return
        s.active = name


def present(
    env: Environment,
    lesson: Lesson,
    out: Renderer,
    pace: float = DEFAULT_PACE,
    keys: Keys | None = None,
    progress: Progress | None = None,
) -> int:
    """Presents `lesson` (notes shown, lines typed out at `pace`); returns how many steps passed."""
    driver = LessonDriver(env, out, progress, learner_mode=False)
    driver.present(True, pace)
    return Presenter(driver, lesson, out, keys or TerminalKeys(env.stdin)).run()
