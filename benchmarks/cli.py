"""`python -m benchmarks [--quick] [--markdown]`: measure everything, print one table.

Run it as root (the per-step, REPL and curriculum rows need it; without root they are marked skipped), on an
otherwise quiet machine. Nothing it starts outlives it: the extra host processes are one process group killed
in a `finally`, lesson sessions are closed and undone, and every state dir is a temporary one.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from benchmarks import bundle_bench, curriculum, observer_bench, report, serve_bench, startup, step_bench
from benchmarks.measure import Row, Verdict, skipped

PARTS = ("observer", "step", "serve", "startup", "curriculum", "bundle")
CAPTION = (
    "Medians on one machine in one run ({machine}). Host processes: the total on the host while measuring, topped "
    "up with a tree of `sleep`s. Lesson view: what the tool does after each step (scan every process's stat, read "
    "the lesson's processes in full, diff, render pstree and namespaces), against one `pstree -p -S` of the "
    "consoles' parent plus one `lsns`, run as processes; whole tree: the same rooted at PID 1, against "
    "`pstree -p -S` + `lsns`. Ratio = observer / baseline. Per-step overhead = the tool's `run_step` minus the bare "
    "command. Start-up: wall time of the process / until the prompt appears on a pty."
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description="Measure workshop and print one table.")
    p.add_argument("--quick", action="store_true", help="a reduced run (100 processes, few repetitions, no curriculum)")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown (for the README)")
    p.add_argument("--sizes", default="100,1000,5000", help="host process counts (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=15, help="repetitions per measurement (default: %(default)s)")
    p.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts: {', '.join(PARTS)}")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed or a measurement failed")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        build_parser().error(f"unknown part(s) {', '.join(unknown)}; parts: {', '.join(PARTS)}")
    sizes = [100] if args.quick else [int(s) for s in args.sizes.split(",")]
    repeat = 3 if args.quick else max(3, args.repeat)
    measure: dict[str, Callable[[], list[Row]]] = {
        "observer": lambda: observer_bench.rows(sizes, repeat),
        "step": lambda: step_bench.rows(repeat),
        "serve": lambda: serve_bench.rows(repeat),
        "startup": lambda: startup.rows(repeat),
        "curriculum": lambda: (
            [Row("whole curriculum, `workshop run --yes`", "—", "—", "—", "—", Verdict.SKIPPED, "--quick")]
            if args.quick
            else curriculum.rows()
        ),
        # tests/live/test_bundle.py proves the same install; the quick run (the suite's) does not do it twice
        "bundle": lambda: [skipped(bundle_bench.WHAT, "< 60 s", "--quick")] if args.quick else bundle_bench.rows(),
    }
    rows: list[Row] = []
    for part in PARTS:
        if part in parts:
            rows.extend(measure[part]())
    caption = CAPTION.format(machine=report.machine())
    if args.markdown:
        report.print_markdown(rows, caption)
    else:
        report.print_rich(rows, caption)
    bad = any(r.verdict in (Verdict.MISSED, Verdict.FAILED) for r in rows)
    return 1 if args.strict and bad else 0
