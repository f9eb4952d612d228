"""The one place that starts short-lived processes (checks, doctor probes, cleanup helpers).

Long-lived interactive shells are started by `consoles`; everything else goes through `run` so timeouts,
environment and error text are handled the same way everywhere.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def run(
    argv: Sequence[str],
    *,
    timeout: float = 10.0,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Completed:
    """Run `argv` to completion and capture its output; never raises for a failing or missing program."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    try:
        proc = subprocess.run(
            list(argv),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
        )
    except FileNotFoundError:
        return Completed(tuple(argv), 127, "", f"{argv[0]}: command not found")
    except OSError as e:  # not executable, exec format error, …: a failed probe, never a crash
        return Completed(tuple(argv), 126, "", f"{argv[0]}: cannot run it: {e.strerror or e}")
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return Completed(tuple(argv), 124, out, f"{argv[0]}: timed out after {timeout:g}s", timed_out=True)
    return Completed(tuple(argv), proc.returncode, proc.stdout, proc.stderr)


def start_detached(argv: Sequence[str]) -> int:
    """Start a helper meant to outlive the tool (the keeper of a systemd scope) and return its pid. It runs in a
    session of its own with no terminal; whoever undoes it kills it by pid. Raises OSError if it cannot start."""
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return proc.pid
