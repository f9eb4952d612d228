"""Waiting for Enter in `workshop run` ends on a signal even when Python dropped the exception the signal raised
(inside a __del__): a read blocked in the kernel would otherwise never return, and workshop would hang there.
And a SIGTERM that cuts an event loop short (the REPL's prompt, netlink) ends workshop without a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import TextIO

import pytest

from tests.conftest import REPO
from workshop import signals


@pytest.fixture
def silent_terminal() -> Iterator[tuple[int, TextIO]]:
    """A pipe nobody writes to, standing in for a terminal where the learner types nothing."""
    r, w = os.pipe()
    stream = os.fdopen(r, "r")
    try:
        yield w, stream
    finally:
        stream.close()
        os.close(w)


def test_a_line_typed_is_returned(silent_terminal: tuple[int, TextIO]) -> None:
    w, stream = silent_terminal
    os.write(w, b"q\n")
    assert signals.read_line(stream) == "q\n"


def test_a_termination_whose_exception_was_dropped_still_ends_the_wait(
    silent_terminal: tuple[int, TextIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, stream = silent_terminal
    monkeypatch.setattr(signals, "_pending", [15])  # SIGTERM arrived; its SystemExit was swallowed by a __del__
    with pytest.raises(SystemExit) as ended:
        signals.read_line(stream)
    assert ended.value.code == 128 + 15


def run_program(program: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", program], cwd=REPO, capture_output=True, text=True, timeout=30)


def test_a_sigterm_while_an_event_loop_is_built_ends_without_a_traceback() -> None:
    """Seen in CI: SIGTERM while prompt_toolkit built the prompt's loop; the SystemExit left a loop without its
    wake-up pipe, whose __del__ printed a traceback at exit. The signal now lands right inside that construction."""
    program = (
        "import asyncio, os, signal\n"
        "from workshop import signals\n"
        "signals.exit_on_termination()\n"
        "class Loop(asyncio.SelectorEventLoop):\n"
        "    def _make_self_pipe(self):\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        super()._make_self_pipe()\n"
        "loop = Loop()\n"
        "loop.close()\n"
        "print('built and closed, pending', signals.pending())\n"
        "signals.check()\n"
        "print('still running after SIGTERM')\n"
    )
    done = run_program(program)
    assert "still running" not in done.stdout
    assert done.returncode == 128 + signal.SIGTERM
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr


def test_a_sigterm_inside_a_running_loop_ends_the_program_without_a_traceback() -> None:
    program = (
        "import asyncio, os, signal\n"
        "from workshop import signals\n"
        "signals.exit_on_termination()\n"
        "async def step():\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    await asyncio.sleep(0.05)\n"
        "    return 'loop done'\n"
        "print(asyncio.run(step()))\n"
        "signals.check()\n"
        "print('still running after SIGTERM')\n"
    )
    done = run_program(program)
    assert "still running" not in done.stdout
    assert done.returncode == 128 + signal.SIGTERM
    assert "Traceback" not in done.stderr and "never awaited" not in done.stderr, done.stderr


def test_outside_an_event_loop_a_sigterm_ends_the_program_at_once() -> None:
    program = (
        "import os, signal, time\n"
        "from workshop import signals\n"
        "signals.exit_on_termination()\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "time.sleep(5)\n"
        "print('still running after SIGTERM')\n"
    )
    done = run_program(program)
    assert done.stdout == "" and done.returncode == 128 + signal.SIGTERM
