"""Start-up: the `workshop list` process from exec to exit, and the REPL from spawn to its first prompt.

Both run the installed `workshop` script (as a user would) against a private, empty state dir, so the numbers
do not depend on this machine's progress file or leftover journals.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pexpect

from benchmarks.measure import Row, is_root, judge, median_ms, ms, skipped, time_command, workshop_argv

LIST_TARGET_MS = 150.0
REPL_TARGET_MS = 400.0
PROMPT_MARK = "❯"
"""The end of the REPL's prompt (`workshop ❯ `), whatever escape codes the terminal gets around it."""


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        WORKSHOP_STATE_DIR=str(tmp / "state"),
        XDG_STATE_HOME=str(tmp / "xdg"),
        TERM="xterm-256color",
        PROMPT_TOOLKIT_NO_CPR="1",
        COLUMNS="100",
        LINES="40",
    )
    env.pop("NO_COLOR", None)
    return env


def list_row(repeat: int) -> Row:
    argv = [*workshop_argv(), "list"]
    with tempfile.TemporaryDirectory(prefix="ws-bench-") as tmp:
        env = _env(Path(tmp))
        time_command(argv, env)  # warm-up: byte-code caches
        samples = [time_command(argv, env) for _ in range(repeat)]
    value = median_ms(samples)
    return Row(
        "`workshop list` start-up",
        ms(value),
        "—",
        "—",
        f"< {LIST_TARGET_MS:.0f} ms",
        judge(value < LIST_TARGET_MS),
        f"wall time of the process, median of {repeat}" + ("" if is_root() else "; not root: doctor skips probes"),
    )


def _repl_once(env: dict[str, str]) -> float:
    argv = workshop_argv()
    start = time.perf_counter()
    child = pexpect.spawn(argv[0], argv[1:], env=env, encoding="utf-8", dimensions=(40, 100), timeout=30)
    try:
        child.expect_exact(PROMPT_MARK)
        elapsed = time.perf_counter() - start
        child.sendcontrol("d")
        child.expect(pexpect.EOF, timeout=10)
    finally:
        child.close(force=True)
    return elapsed


def repl_row(repeat: int) -> Row:
    what = "REPL ready (spawn to first prompt)"
    target = f"< {REPL_TARGET_MS:.0f} ms"
    if not is_root():
        return skipped(what, target, "`workshop` (the shell) needs root")
    with tempfile.TemporaryDirectory(prefix="ws-bench-") as tmp:
        env = _env(Path(tmp))
        _repl_once(env)
        samples = [_repl_once(env) for _ in range(repeat)]
    value = median_ms(samples)
    note = f"pexpect on a pty, median of {repeat}"
    return Row(what, ms(value), "—", "—", target, judge(value < REPL_TARGET_MS), note)


def rows(repeat: int) -> list[Row]:
    return [list_row(repeat), repl_row(max(3, repeat // 2))]
