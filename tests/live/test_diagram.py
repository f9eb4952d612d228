"""The diagram of every step of every lesson, from real runs, checked against the kernel's own answers.

Each lesson runs as `workshop run --yes` runs it (the driver, every step typed). After each step the session emits
`Observed`; the sink keeps it and asks the kernel, while the processes still live, which PID namespace each of the
step's PID namespaces is nested in (`NS_GET_PARENT`). Then every step's diagram is laid out by dot (`-Tjson`: which
node sits in which cluster) and checked: each console's focus process is a node in the cluster of its PID namespace
(by inode), every other process too, clusters nest as the kernel says the namespaces do, and each veth pair of the
links view with an end in a lesson namespace is one edge between the clusters of the two network namespaces. The
SVG of each step must parse as XML.
"""

from __future__ import annotations

import fcntl
import io
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ci import require_tool
from tests.diagram_layout import Layout, read_layout
from tests.harness import REPO
from tests.hygiene import HostState
from workshop.diagram import svg
from workshop.engine import events as ev
from workshop.engine.driver import LessonDriver
from workshop.environment import Environment
from workshop.lesson import loader
from workshop.lesson.loader import load_lesson
from workshop.lesson.model import Lesson
from workshop.observe.links import NetNs, peer_of

LESSONS = {lesson.id: lesson for lesson in loader.load_all(loader.lesson_files(REPO / "lessons"))}
NESTED = """\
---
id: diagram-nested
title: PID namespaces two deep
requires: [root, unshare]
consoles: [host, container]
---

# PID namespaces two deep

No shipped lesson nests a PID namespace in another; the diagram must still draw the boxes as the kernel nests them.

## A PID namespace

```run container
unshare --pid --fork --mount-proc /bin/sh
```

```check
# the container shell is PID 1 of a PID namespace of its own
[ "$(nspid {{pid.container}})" = 1 ]
not in_host_ns {{pid.container}} pid
```

## One inside it

```run container
unshare --pid --fork --mount-proc /bin/sh
```

```check
# the container shell has a PID in three PID namespaces
[ "$(awk '/^NSpid:/ { print NF - 1 }' /proc/{{pid.container}}/status)" = 3 ]
```

## Two visitors from the host

```run host
nsenter --target {{pid.container}} --pid --mount sleep 300 &
nsenter --target {{pid.container}} --pid --mount sleep 301 &
```

```check
# both sleeps run, each a child of its nsenter in the host console
visitors() { [ "$(pgrep -x sleep -P "$(pgrep -d, -x nsenter -P {{pid.host}})" | wc -l)" = 2 ]; }
eventually visitors
```

## The visitors leave

```run host
kill %1 %2; wait
```

```check
# no nsenter is left in the host console
not pgrep -x nsenter -P {{pid.host}}
```

# Recap

Boxes in boxes.
"""
"""No shipped lesson nests a PID namespace two deep, nor visits one with nsenter: this one does, for the test."""
NS_GET_PARENT = 0xB702
"""_IO(0xb7, 0x2) from linux/nsfs.h: an fd of the PID namespace a PID namespace is nested in."""


def parent_pid_ns(pid: int) -> int | None:
    """The inode of the PID namespace that `pid`'s is nested in; None for the outermost one or a vanished process."""
    try:
        fd = os.open(f"/proc/{pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        parent = fcntl.ioctl(fd, NS_GET_PARENT)
    except OSError:  # EPERM: the outermost namespace we can see
        return None
    finally:
        os.close(fd)
    try:
        return os.fstat(parent).st_ino
    finally:
        os.close(parent)


@dataclass(frozen=True)
class Step:
    observed: ev.Observed
    parents: dict[int, int | None]
    """PID namespace inode -> the kernel's parent of it, read when the step was observed."""


class Steps:
    """The sink: every `Observed`, with the kernel's nesting of its PID namespaces read at once."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.finished: list[ev.StepFinished] = []

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.StepFinished):
            self.finished.append(event)
        if not isinstance(event, ev.Observed):
            return
        parents: dict[int, int | None] = {}
        for proc in event.snapshot.procs.values():
            inode = proc.ns.get("pid")
            if inode is not None and inode not in parents:
                parents[inode] = parent_pid_ns(proc.pid)
        self.steps.append(Step(event, parents))


def run_lesson(env: Environment, lesson: Lesson) -> Steps:
    lesson_id = lesson.id
    sink = Steps()
    driver = LessonDriver(env, sink, None, learner_mode=False)  # as `workshop run --yes`: try-it steps typed too
    try:
        driver.start(lesson)
        while not driver.finished:
            outcome = driver.next()
            assert outcome is not None and outcome.passed, f"{lesson_id}: step {len(sink.finished)} failed"
    finally:
        driver.stop()
    return sink


def check_processes(where: str, step: Step, layout: Layout) -> None:
    snap = step.observed.snapshot
    host = snap.host_ns.get("pid")
    for console, pid in snap.focus.items():
        inode = snap.procs[pid].ns.get("pid")
        assert inode is not None, f"{where}: {console}'s PID namespace unreadable"
        assert layout.home.get(f"p{pid}") == f"cluster_pid_{inode}", f"{where}: {console}'s focus {pid}"
    for pid, proc in snap.procs.items():
        inode = proc.ns.get("pid")
        if inode is not None:
            assert layout.home.get(f"p{pid}") == f"cluster_pid_{inode}", f"{where}: {proc.comm}({pid})"
    for inode, parent in step.parents.items():
        cluster = f"cluster_pid_{inode}"
        if inode == host:
            assert layout.parent[cluster] is None, f"{where}: the host's PID namespace is the outermost box"
        else:
            assert layout.parent[cluster] == f"cluster_pid_{parent}", f"{where}: {inode} is nested in {parent}"


def veth_pairs(namespaces: tuple[NetNs, ...], host: int | None) -> Iterator[tuple[str, str]]:
    """Each veth pair with an end in a lesson namespace and both ends read: the two link nodes' names, once."""
    seen: set[frozenset[str]] = set()
    for netns in namespaces:
        for link in netns.links or ():
            if link.kind != "veth" or link.peer is None:
                continue
            found = peer_of(link, netns, namespaces)
            other = netns if found is not None and found[1] is None and link.peer_netnsid is None else None
            if found is not None and found[1] is not None:
                other = found[1]
            if other is None or (netns.ns == host and other.ns == host):
                continue
            pair = frozenset({f"l{netns.ns}_{link.index}", f"l{other.ns}_{link.peer}"})
            if pair not in seen:
                seen.add(pair)
                a, b = sorted(pair)
                yield a, b


def check_cables(where: str, step: Step, layout: Layout) -> int:
    extras = step.observed.extras
    if extras is None or extras.links is None:
        return 0
    now = extras.links.now
    count = 0
    for a, b in veth_pairs(now.namespaces, now.host_ns):
        assert len(layout.between(a, b)) == 1, f"{where}: veth {a} - {b} is one cable"
        for end in (a, b):
            ns = end[1:].split("_")[0]
            assert layout.home.get(end) == f"cluster_net_{ns}", f"{where}: {end} in its network namespace's box"
        count += 1
    return count


def check_svg(where: str, text: str) -> None:
    root = ET.fromstring(text)
    assert root.tag == "{http://www.w3.org/2000/svg}svg", where
    assert "<!DOCTYPE" not in text and "<image" not in text and "url(" not in text, f"{where}: self-contained"


def draw(step: Step, title: str) -> tuple[str, str]:
    source = svg.dot_for(step.observed, title)
    return svg.render(source, "json"), svg.render_svg(source)


@pytest.fixture
def env(state_dir: Path) -> Environment:
    return Environment(stdout=io.StringIO(), state_dir=state_dir, color=False, width=120)


@pytest.mark.root
@pytest.mark.timeout(180)
@pytest.mark.parametrize("lesson_id", sorted(LESSONS))
def test_the_diagram_of_every_step_matches_the_kernel(
    lesson_id: str, host_unchanged: HostState, env: Environment
) -> None:
    check_lesson(env, LESSONS[lesson_id])


@pytest.mark.root
@pytest.mark.timeout(120)
def test_pid_namespaces_two_deep_and_visitors_through_nsenter_are_drawn_as_the_kernel_nests_them(
    host_unchanged: HostState, env: Environment, tmp_path: Path
) -> None:
    path = tmp_path / "lessons" / "diagram-nested.md"
    path.parent.mkdir()
    path.write_text(NESTED)
    steps = check_lesson(env, load_lesson(path))
    snaps = [step.observed.snapshot for step in steps]
    assert any({len(p.nspid) - 1 for p in s.procs.values()} == {0, 1, 2} for s in snaps), "what this test is about"
    visitors = [sum(1 for p in s.procs.values() if p.comm == "sleep" and len(p.nspid) == 3) for s in snaps]
    assert 2 in visitors, "both visitors were observed two levels deep"


def check_lesson(env: Environment, lesson: Lesson) -> list[Step]:
    lesson_id = lesson.id
    for tool in ("dot", "unshare", "nsenter", "chroot", "pstree"):
        require_tool(tool)
    steps = run_lesson(env, lesson).steps
    assert len(steps) >= len(lesson.steps), "an observation after every step"
    with ThreadPoolExecutor(max_workers=4) as pool:  # dot runs after the lesson: it cannot slow a step down
        drawn = list(pool.map(lambda s: draw(s[1], f"{lesson_id} {s[0] + 1}"), enumerate(steps)))
    cables = 0
    for n, (step, (layout_json, svg_text)) in enumerate(zip(steps, drawn, strict=True), 1):
        where = f"{lesson_id} observation {n}"
        layout = read_layout(layout_json)
        check_processes(where, step, layout)
        cables += check_cables(where, step, layout)
        check_svg(where, svg_text)
    if lesson_id in ("veth", "capstone"):
        assert cables > 0, "a lesson about veth pairs draws at least one"
    return steps
