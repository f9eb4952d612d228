"""The results table: rich for a terminal, Markdown for the README."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from benchmarks.measure import Row, Verdict

HEADERS = ("measurement", "measured", "baseline", "ratio / overhead", "target", "result", "notes")
_STYLE = {
    Verdict.MET: "green",
    Verdict.MISSED: "bold red",
    Verdict.FAILED: "bold red",
    Verdict.INFO: "dim",
    Verdict.SKIPPED: "yellow",
}
REPO = Path(__file__).resolve().parent.parent


def machine() -> str:
    """One line that says where the numbers come from."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    cgroup = "cgroup v2" if Path("/sys/fs/cgroup/cgroup.controllers").exists() else "cgroup v1/hybrid"
    parts = [
        datetime.date.today().isoformat(),
        f"commit {commit}" if commit else "",
        f"Linux {platform.release()}",
        f"{os.cpu_count()} CPUs",
        cgroup,
        f"Python {platform.python_version()}",
        "root" if os.geteuid() == 0 else "not root",
    ]
    return ", ".join(p for p in parts if p)


def rich_table(rows: Sequence[Row], caption: str) -> Table:
    table = Table(title="workshop benchmarks", caption=caption, caption_justify="left", title_justify="left")
    for header in HEADERS:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(
            row.what,
            row.measured,
            row.baseline,
            row.ratio,
            row.target,
            Text(row.verdict.value, style=_STYLE[row.verdict]),
            row.note,
        )
    return table


def print_rich(rows: Sequence[Row], caption: str) -> None:
    Console(highlight=False).print(rich_table(rows, caption))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(rows: Sequence[Row], caption: str) -> str:
    lines = [
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join("---" for _ in HEADERS) + "|",
    ]
    for row in rows:
        verdict = f"**{row.verdict.value}**" if row.verdict in (Verdict.MISSED, Verdict.FAILED) else row.verdict.value
        cells = (row.what, row.measured, row.baseline, row.ratio, row.target, verdict, row.note)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n\n" + caption + "\n"


def print_markdown(rows: Sequence[Row], caption: str) -> None:
    sys.stdout.write(markdown(rows, caption))
