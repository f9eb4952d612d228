"""Per-step overhead: a one-step lesson typed into a console by the tool, against the bare command.

The lesson's only step runs `unshare -p -f --mount-proc true` in the `host` console and checks that the console's
shell is still in the host's PID namespace. The tool's time per step is the wall time of `runner.run_step` (type
the line, wait for it, run the check, snapshot, diff, render into memory), measured in-process after the session
has started, so session start and teardown are excluded. The baseline is the same command started by
`subprocess.run`. Overhead = median(tool) - median(raw); the two are measured alternately.
"""

from __future__ import annotations

import io
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks.measure import Row, is_root, judge, median_ms, ms, skipped, time_command
from workshop.engine import events, runner
from workshop.engine.session import LessonSession
from workshop.environment import Environment
from workshop.lesson.catalog import Catalog
from workshop.ui.render import Renderer

COMMAND = "unshare -p -f --mount-proc true"
TARGET_MS = 60.0
LESSON = f"""---
id: bench-step
title: One step, for the benchmark
order: 1
requires: [root, unshare]
consoles: [host]
---

# One step

## A PID namespace that ends at once

```run host
{COMMAND}
```

```check
# the console's shell is still in the host's PID namespace
in_host_ns {{{{pid.host}}}} pid
```
"""
PHASES = ("console", "check", "observe", "render")


class _Clock:
    """A sink that renders like the tool and notes when each event arrived, for the phase breakdown."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer
        self.seen: dict[type, float] = {}

    def __call__(self, event: events.Event) -> None:
        self.seen[type(event)] = time.perf_counter()
        self.renderer(event)

    def phases(self) -> tuple[float, ...]:
        s = self.seen
        return (
            s[events.LineFinished] - s[events.LineTyped],
            s[events.CheckDone] - s[events.LineFinished],
            s[events.Observed] - s[events.CheckDone],
            s[events.StepFinished] - s[events.Observed],
        )


def step_times(
    repeat: int, taps: Sequence[Callable[[object], None]] = ()
) -> tuple[list[float], list[float], list[tuple[float, ...]], float]:
    """The tool's time per step and the bare command's, alternately, after one warm-up; with `taps`, every event
    also goes to them (as `--serve` does). Also the phases and pexpect's delay before each send."""
    with tempfile.TemporaryDirectory(prefix="ws-bench-") as tmp:
        lessons = Path(tmp) / "lessons"
        (lessons / "bench-step").mkdir(parents=True)
        (lessons / "bench-step" / "lesson.md").write_text(LESSON)
        buffer = io.StringIO()
        env = Environment(stdout=buffer, state_dir=Path(tmp) / "state", lessons_dir=lessons, width=100)
        env.taps.extend(taps)
        lesson = Catalog.load(env).find("bench-step")
        assert lesson is not None
        clock = _Clock(Renderer(env))
        session = LessonSession(env, lesson, clock)
        tool: list[float] = []
        raw: list[float] = []
        phases: list[tuple[float, ...]] = []
        session.start()
        # pexpect sleeps this long before each send; a line is two sends (the line, then the done-marker)
        child = session.consoles["host"].child
        delay = float(getattr(child, "delaybeforesend", 0.0) or 0.0)
        try:
            for i in range(repeat + 1):
                clock.seen.clear()
                start = time.perf_counter()
                outcome = runner.run_step(session, 0)
                elapsed = time.perf_counter() - start
                if not outcome.passed:
                    raise RuntimeError(f"the benchmark step failed:\n{buffer.getvalue()[-2000:]}")
                buffer.seek(0)
                buffer.truncate()
                bare = time_command(COMMAND.split())
                if i == 0:
                    continue  # warm-up
                tool.append(elapsed)
                raw.append(bare)
                phases.append(clock.phases())
        finally:
            session.close()
    return tool, raw, phases, delay


def rows(repeat: int) -> list[Row]:
    what = f"per-step overhead (`{COMMAND}`)"
    target = f"< {TARGET_MS:.0f} ms"
    if not is_root():
        return [skipped(what, target, "needs root")]
    tool, raw, phases, delay = step_times(repeat)
    overhead = median_ms(tool) - median_ms(raw)
    breakdown = ", ".join(
        f"{name} {statistics.median(p[k] for p in phases) * 1000:.1f}" for k, name in enumerate(PHASES)
    )
    return [
        Row(
            what,
            f"{ms(median_ms(tool))} per step",
            f"{ms(median_ms(raw))} (subprocess.run)",
            f"+{ms(overhead)}",
            target,
            judge(overhead < TARGET_MS),
            f"ms per phase: {breakdown}" + (f"; pexpect delaybeforesend 2 × {delay * 1000:.0f}" if delay else ""),
        )
    ]
