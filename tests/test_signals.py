"""Waiting for Enter in `workshop run` ends on a signal even when Python dropped the exception the signal raised
(inside a __del__): a read blocked in the kernel would otherwise never return, and workshop would hang there."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TextIO

import pytest

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
