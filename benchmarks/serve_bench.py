"""`--serve`: how long the page's server takes to listen, and what it adds to a step.

Start-up is `PageServer.start()` until the port listens (the page itself is static files and one event stream).
Per step: the one-step lesson of `step_bench`, with and without the server hearing every event, measured
alternately; the difference of the medians is what the page adds to a step on the lesson's thread (the
diagram and the push to browsers happen on the server's own thread).
"""

from __future__ import annotations

import subprocess
import sys

from benchmarks import step_bench
from benchmarks.measure import Row, is_root, judge, median_ms, ms, skipped
from workshop.serve.page_state import PageModel, default_diagram
from workshop.serve.server import PageServer

START_TARGET_MS = 300.0
STEP_TARGET_MS = 20.0


def _server() -> PageServer:
    return PageServer("127.0.0.1", 0, PageModel(diagram=default_diagram()))


_START = """
import time
began = time.perf_counter()
from workshop.serve.page_state import PageModel, default_diagram
from workshop.serve.server import PageServer
server = PageServer("127.0.0.1", 0, PageModel(diagram=default_diagram()))
server.start()
print(time.perf_counter() - began)
server.stop()
"""


def _fresh_start() -> float:
    """Seconds from a new interpreter's first import of the page's modules until its port listens."""
    done = subprocess.run([sys.executable, "-c", _START], capture_output=True, text=True, timeout=30, check=True)
    return float(done.stdout.split()[-1])


def rows(repeat: int) -> list[Row]:
    start_what = "page server start-up (`--serve`)"
    step_what = "page's per-step overhead (`--serve`)"
    starts = [_fresh_start() for _ in range(max(3, repeat // 3))]
    out = [
        Row(start_what, ms(median_ms(starts)), "—", "—", f"< {START_TARGET_MS:.0f} ms",
            judge(median_ms(starts) < START_TARGET_MS),
            f"in a new Python: import, then listen; median of {len(starts)}"),
    ]  # fmt: skip
    if not is_root():
        return [*out, skipped(step_what, f"< {STEP_TARGET_MS:.0f} ms", "needs root")]
    server = _server()
    server.start()
    try:
        served, _, _, _ = step_bench.step_times(repeat, taps=[server.publish])
    finally:
        server.stop()
    plain, _, _, _ = step_bench.step_times(repeat)
    extra = median_ms(served) - median_ms(plain)
    out.append(
        Row(step_what, f"{ms(median_ms(served))} per step", f"{ms(median_ms(plain))} (no page)", f"{extra:+.1f} ms",
            f"< {STEP_TARGET_MS:.0f} ms", judge(extra < STEP_TARGET_MS), "per-step row, with and without")
    )  # fmt: skip
    return out
