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

from tests.harness import REPO
from workshop.engine import signals


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


KILL = "os.kill(os.getpid(), signal.SIGTERM)"
WHERE_SIGTERM_LANDS = {
    # Seen in CI: SIGTERM while prompt_toolkit built the prompt's loop; the SystemExit left a loop without its
    # wake-up pipe, whose __del__ printed a traceback at exit. This lands the signal right inside that construction.
    "while a loop is built": (
        "class Loop(asyncio.SelectorEventLoop):\n"
        "    def _make_self_pipe(self):\n"
        f"        {KILL}\n"
        "        super()._make_self_pipe()\n"
        "Loop().close()\n"
    ),
    "inside a running loop": f"async def step():\n    {KILL}\n    await asyncio.sleep(0.05)\nasyncio.run(step())\n",
    "outside any loop": f"{KILL}\ntime.sleep(5)\n",
}


@pytest.mark.parametrize("where", list(WHERE_SIGTERM_LANDS))
def test_a_sigterm_ends_the_program_at_once_and_without_a_traceback(where: str) -> None:
    program = (
        "import asyncio, os, signal, time\n"
        "from workshop.engine import signals\n"
        "signals.exit_on_termination()\n" + WHERE_SIGTERM_LANDS[where] + "print('still running after SIGTERM')\n"
    )
    done = run_program(program)
    assert done.stdout == ""
    assert done.returncode == 128 + signal.SIGTERM
    for noise in ("Traceback", "Exception ignored", "never awaited"):
        assert noise not in done.stderr, done.stderr
