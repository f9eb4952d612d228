"""What tests share to drive the real program: where the repository is, running `workshop` as a user would, and
the real REPL typed into in-process (a pipe for the keyboard, a private stdout, no terminal needed)."""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:  # the fault matrix imports this module and must not load the REPL's imports with it
    from prompt_toolkit.input import PipeInput
    from prompt_toolkit.output import DummyOutput

    from workshop.environment import Environment
    from workshop.ui.shell import Shell

REPO = Path(__file__).resolve().parent.parent
WORKSHOP = [sys.executable, "-m", "workshop"]
CTRL_D = "\x04"

S = TypeVar("S", bound="Shell")


def run_workshop(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        WORKSHOP + args,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        cwd=REPO,
    )


def repl_environment(state_dir: Path, lessons_dir: Path | None = None) -> Environment:
    """What the in-process REPL runs with: the test's state dir, a stdout the test reads, no colour, 120 columns."""
    from workshop.environment import Environment

    env = Environment(stdout=io.StringIO(), state_dir=state_dir, color=False, width=120)
    return env if lessons_dir is None else dataclasses.replace(env, lessons_dir=lessons_dir)


def printed(env: Environment) -> str:
    """Everything the REPL has printed so far."""
    assert isinstance(env.stdout, io.StringIO)
    return env.stdout.getvalue()


def type_into_shell(make: Callable[[PipeInput, DummyOutput], S], keys: str) -> tuple[S, int]:
    """The real shell made by `make`, typed `keys` and then Ctrl-D (which ends it in any case); returns it and its
    exit code once it has quit."""
    from prompt_toolkit.application import create_app_session
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    with create_pipe_input() as pipe:
        output = DummyOutput()
        with create_app_session(input=pipe, output=output):
            shell = make(pipe, output)
            # from a thread: more than a pipe's 64 KiB typed ahead would block until the shell reads
            typist = threading.Thread(target=pipe.send_text, args=(keys + CTRL_D,), daemon=True)
            typist.start()
            rc = shell.run()
            typist.join(timeout=5)
    return shell, rc


def typed_lines(*typed: str) -> str:
    """Lines as typed at the prompt, each ended by Enter."""
    return "".join(f"{line}\r" for line in typed)
