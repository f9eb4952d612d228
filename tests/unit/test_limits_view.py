"""The limits view reads the memory and cpu controllers' own counters, v1 and v2 file names alike, and says what
the kernel did since the previous step: an OOM kill, throttled periods, a limit changed."""

from __future__ import annotations

import io
import re
from pathlib import Path

from rich.console import Console

from workshop.observe.common import Scope
from workshop.observe.limits import LimitPlace, diff_limits, read_limits
from workshop.ui.limit_views import limits_view


def cgroup(parent: Path, name: str, files: dict[str, str]) -> Path:
    d = parent / name
    d.mkdir(parents=True)
    for file, text in files.items():
        (d / file).write_text(text)
    return d


def render(renderable: object) -> str:
    out = io.StringIO()
    Console(file=out, width=100, color_system=None).print(renderable)
    return out.getvalue()


def test_v2_memory_and_cpu_before_and_after_an_oom_kill_and_throttling(tmp_path: Path) -> None:
    parent = tmp_path / "workshop"
    mem = cgroup(
        parent,
        "ws1a2b3c-memory",
        {
            "memory.max": "33554432\n",
            "memory.current": "1048576\n",
            "memory.events": "low 0\nmax 3\noom 0\noom_kill 0\n",
            "cgroup.procs": "7\n",
        },
    )
    cpu = cgroup(
        parent,
        "ws1a2b3c-cpu",
        {"cpu.max": "20000 100000\n", "cpu.stat": "nr_periods 0\nnr_throttled 0\n", "cgroup.procs": ""},
    )
    cgroup(parent, "ws9f9f9f-memory", {"memory.max": "max\n"})  # another learner's: not shown
    places = [LimitPlace("memory", parent, True, "ws1a2b3c-memory"), LimitPlace("cpu", parent, True, "ws1a2b3c-cpu")]
    scope = Scope(tmp_path / "sessions/1a2b3c", "1a2b3c")
    before = read_limits(places, scope)
    assert [(c.controller, c.name, c.limit, c.usage) for c in before.cgroups] == [
        ("memory", "ws1a2b3c-memory", "32 MiB", "1 MiB"),
        ("cpu", "ws1a2b3c-cpu", "20 ms / 100 ms", "0 periods"),
    ]
    (mem / "memory.events").write_text("low 0\nmax 9\noom 1\noom_kill 1\n")
    (cpu / "cpu.stat").write_text("nr_periods 31\nnr_throttled 30\nthrottled_usec 2400000\n")
    (cpu / "cpu.max").write_text("max 100000\n")
    text = render(limits_view(diff_limits(before, read_limits(places, scope))))
    assert "ws1a2b3c-memory: the OOM killer struck 1 time since the previous step (limit 32 MiB)" in text
    assert "ws1a2b3c-cpu: throttled in 30 more periods since the previous step (quota max)" in text
    assert "max ● was 20 ms / 100 ms" in text
    assert "ws9f9f9f" not in text


def test_v1_file_names_and_no_limit(tmp_path: Path) -> None:
    mem = cgroup(
        tmp_path / "memory/workshop",
        "ws1-memory",
        {
            "memory.limit_in_bytes": "9223372036854771712\n",
            "memory.usage_in_bytes": "0\n",
            "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        },
    )
    cpu = cgroup(
        tmp_path / "cpu/workshop",
        "ws1-cpu",
        {
            "cpu.cfs_quota_us": "50000\n",
            "cpu.cfs_period_us": "100000\n",
            "cpu.stat": "nr_periods 5\nnr_throttled 1\nthrottled_time 9\n",
        },
    )
    snap = read_limits(
        [LimitPlace("memory", mem.parent, False, "ws1-memory"), LimitPlace("cpu", cpu.parent, False, "ws1-cpu")]
    )
    assert [(c.limit, c.events) for c in snap.cgroups] == [("max", 2), ("50 ms / 100 ms", 1)]
    first = render(limits_view(diff_limits(None, snap)))
    assert "OOM kills" in first and "throttled periods" in first
    assert "since the previous step" not in first  # the first look reports no news


def test_unreadable_files_show_as_question_marks(tmp_path: Path) -> None:
    cgroup(tmp_path, "ws1-memory", {})
    text = render(limits_view(diff_limits(None, read_limits([LimitPlace("memory", tmp_path, True, "ws1-memory")]))))
    assert re.search(r"ws1-memory +\? +\? +\? +\?", text)
