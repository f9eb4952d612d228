"""How workshop ends: SIGTERM and SIGHUP unwind like Ctrl-C, so every `finally` undoes what it created; and
nothing interrupts the undoing itself."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import warnings
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TextIO

_HELD = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
_pending: list[int] = []
_waiters: list[Callable[[int], None]] = []


def on_termination(wake: Callable[[int], None]) -> None:
    """`wake(code)` is called from the signal handler: a blocking wait (the REPL's prompt) uses it to return."""
    _waiters.append(wake)


def exit_on_termination() -> None:
    owner = os.getpid()

    def handler(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != owner:
            # a forked helper (pyroute2 forks to enter a netns) must not unwind the lesson it inherited a copy of
            os._exit(128 + signum)
        # Python drops an exception raised while it runs a __del__ or weakref callback; remembering the signal
        # lets `check()` end the program at the next safe point if that happens
        _pending.append(signum)
        for wake in _waiters:
            with contextlib.suppress(Exception):
                wake(128 + signum)
        if _inside_asyncio(frame):
            # The exception may leave an event loop half built or half closed (the prompt's, or netlink's): its
            # __del__ and its never-awaited coroutine then complain on the way out. Ending is right; the noise is
            # not for the learner's screen.
            _quiet_unraisable()
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError):  # not the main thread (tests)
            signal.signal(sig, handler)


def _inside_asyncio(frame: FrameType | None) -> bool:
    # By module name, so that merely having a handler does not import asyncio (`workshop list` stays fast).
    while frame is not None:
        if str(frame.f_globals.get("__name__", "")).startswith("asyncio"):
            return True
        frame = frame.f_back
    return False


def _quiet_unraisable() -> None:
    def drop(unraisable: object) -> None:
        return None

    sys.unraisablehook = drop
    warnings.filterwarnings("ignore", message="coroutine .* was never awaited", category=RuntimeWarning)


def check() -> None:
    """Called where a long wait loops (typing into a console, the REPL): ends the program if asked to."""
    if _pending:
        raise SystemExit(128 + _pending[0])


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP wait until the block is done (they are delivered right after it): a cleanup
    that is cut in half leaves the host half cleaned."""
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    except (ValueError, OSError):
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def read_line(stream: TextIO) -> str:
    """A line typed at a terminal. Ctrl-C, SIGTERM and SIGHUP end the wait even when Python dropped the exception
    they raised (it does inside a __del__ or a weakref callback, and a read blocked in the kernel then never
    returns): the wait looks at what arrived five times a second, and a learner's Ctrl-C always ends it."""
    arrived: list[int] = []

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        arrived.append(signum)
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGINT, on_interrupt)
    except ValueError:  # not the main thread: no handlers of our own
        return stream.readline()
    try:
        while True:
            check()
            if arrived:
                raise KeyboardInterrupt
            ready, _, _ = select.select([stream], [], [], 0.2)
            if ready:
                return stream.readline()
    finally:
        signal.signal(signal.SIGINT, previous)
