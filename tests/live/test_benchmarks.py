"""The benchmark command runs, in its quick mode, and prints one table with a verdict per target.

Numbers are not asserted (this is no performance gate: machines differ); what is asserted is that every row
was measured or says why not, that the observer's baseline really ran, and that nothing is left behind.
"""

from __future__ import annotations

import io
import os
import random
import re
import subprocess
import sys

import pytest
from rich.console import Console
from rich.text import Text
from rich.tree import Tree as RichTree

from benchmarks import report
from benchmarks.measure import Row, Verdict
from tests.ci import require_tool
from tests.harness import REPO
from tests.hygiene import HostState
from workshop.ui import process_views

MEASURED = re.compile(r"^\d+(\.\d)? (ms|s)( per step)?$")


def _table(markdown: str) -> dict[str, list[str]]:
    """Markdown table rows by their first cell."""
    rows: dict[str, list[str]] = {}
    for line in markdown.splitlines():
        if line.startswith("| ") and not line.startswith("| measurement"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            rows[cells[0]] = cells
    return rows


@pytest.mark.timeout(120)
def test_quick_run_prints_a_table_with_every_part(host_unchanged: HostState) -> None:
    for tool in ("pstree", "lsns", "unshare"):
        require_tool(tool)
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--markdown"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=110,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = _table(done.stdout)

    lesson = next(cells for what, cells in rows.items() if what.startswith("observer, lesson view"))
    whole = next(cells for what, cells in rows.items() if what.startswith("observer, whole tree"))
    for cells in (lesson, whole):
        assert MEASURED.match(cells[1]), cells
        assert re.match(r"^\d+(\.\d)? ms \(pstree -p -S", cells[2]), "the pstree + lsns baseline did not run"
        assert float(cells[3]) > 0
        assert cells[5] in ("met", "**MISSED**")
    assert lesson[6] == "4 processes shown"  # the two consoles and their children, not the extra sleeps

    startup = rows["`workshop list` start-up"]
    assert MEASURED.match(startup[1]) and startup[4] == "< 150 ms"

    step = next(cells for what, cells in rows.items() if what.startswith("per-step overhead"))
    repl = rows["REPL ready (spawn to first prompt)"]
    if os.geteuid() == 0:
        assert MEASURED.match(step[1]) and step[3].startswith("+") and "console" in step[6]
        assert MEASURED.match(repl[1])
    else:
        assert step[5] == repl[5] == "skipped"
    assert rows["whole curriculum, `workshop run --yes`"][5] == "skipped"
    assert rows["setup from the bundle, bare Debian 12, no network"][5] == "skipped"  # tests/live/test_bundle.py
    assert "Medians on one machine in one run" in done.stdout


def test_the_terminal_table_says_which_targets_were_missed() -> None:
    rows = [
        Row("fast thing", "1.0 ms", "—", "—", "< 5 ms", Verdict.MET),
        Row("slow thing", "90 ms", "—", "—", "< 60 ms", Verdict.MISSED, "console 80.0"),
    ]
    out = io.StringIO()
    Console(file=out, width=160, color_system=None).print(report.rich_table(rows, "caption here"))
    text = out.getvalue()

    assert re.search(r"fast thing .* 1\.0 ms .* met ", text)
    assert re.search(r"slow thing .* 90 ms .* MISSED .* console 80\.0", text)
    assert "caption here" in text
    assert "| slow thing | 90 ms | — | — | < 60 ms | **MISSED** | console 80.0 |" in report.markdown(rows, "c")


class _AsciiOut(io.StringIO):
    encoding = "ascii"  # rich draws ASCII guides for a terminal that cannot show box characters


def _label(rng: random.Random) -> Text:
    words = ["sh(42)", "+ ", "unshare", " (pid,mnt)", "  root=/var/lib/x", "名前", "a\tb", "x" * rng.randint(1, 90)]
    text = Text(no_wrap=True, overflow="ellipsis")
    for _ in range(rng.randint(1, 5)):
        text.append(rng.choice(words), style=rng.choice(["", "bold", "dim", "red"]))
    if rng.random() < 0.05:
        text.append("\nsecond line of a command line")
    return text


def test_the_fast_pstree_draws_exactly_what_richs_tree_draws() -> None:
    # process_views.Tree replaces rich's Tree for speed (a whole host's tree renders ~2x faster): same guides, same cuts
    rng = random.Random(7)
    for _ in range(150):
        root_label = Text.assemble(("console", "magenta"), "  ", _label(rng))
        ours, theirs = process_views.Tree(root_label.copy(), guide_style="dim"), RichTree(root_label, guide_style="dim")
        nodes = [(ours, theirs)]
        for _ in range(rng.randint(0, 40)):
            parent_ours, parent_theirs = rng.choice(nodes[-3:] if rng.random() < 0.6 else nodes)
            label = _label(rng)
            nodes.append((parent_ours.add(label.copy()), parent_theirs.add(label)))
        for width in (24, 60, 100):
            for out in (io.StringIO(), _AsciiOut()):
                drawn = []
                for tree in (ours, theirs):
                    out.seek(0)
                    out.truncate()
                    Console(file=out, width=width, color_system=None).print(tree)
                    drawn.append(out.getvalue())
                assert drawn[0] == drawn[1], f"width {width}:\n{drawn[0]}\n---\n{drawn[1]}"
