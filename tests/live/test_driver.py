"""The lesson driver, as a learner and a trainer use it, on the real kernel.

One small lesson: a scratch tmpfs in the work dir, a try-it step where the learner types `unshare --uts` into the
container console, then a hostname of the container's own. The driver is what the REPL, `workshop run` and trainer
mode share, so these tests drive it directly and read the kernel after each call: the mount table, the container
shell's UTS namespace inode against ours, the hostname inside it; and they read the events, because everything the
learner sees is one of them.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tests.harness import REPO
from tests.hygiene import HostState
from workshop.engine import events as ev
from workshop.engine.driver import Leftovers, LessonDriver
from workshop.engine.session import LIBMOUNT_DIR, LessonSession
from workshop.environment import Environment
from workshop.lesson.loader import load_lesson
from workshop.lesson.model import Lesson
from workshop.lesson.progress import Progress
from workshop.ui.render import Renderer

LESSON = """\
---
id: driver-demo
title: The driver drives
requires: [root, unshare]
consoles: [host, container]
---

# The driver drives

A scratch mount, a UTS namespace you make yourself, a name of the container's own.

## A scratch mount

```run host
mkdir -p {{workdir}}/scratch
mount -t tmpfs scratch {{workdir}}/scratch
```

```check
# the scratch tmpfs is mounted in the work dir
mounted {{workdir}}/scratch
```

## Your own UTS namespace

```run container try
unshare --uts /bin/sh
```

```check
# the container shell has a UTS namespace of its own
not in_host_ns {{pid.container}} uts
```

```hint
`unshare` with the flag for UTS, then a shell.
```

## A name of its own

```run container
hostname drv-{{session}}
```

```check
# the container's hostname is its own
[ "$(nsenter --target {{pid.container}} --uts hostname)" = "drv-{{session}}" ]
```

# Recap

The driver drove.
"""
E = TypeVar("E")
GOAL = "the container shell has a UTS namespace of its own"


class Seen:
    """The sink: keeps every event and renders it too, as the front ends do (a rendering bug fails the test)."""

    def __init__(self, env: Environment) -> None:
        self.events: list[ev.Event] = []
        self.renderer = Renderer(env)

    def __call__(self, event: ev.Event) -> None:
        self.events.append(event)
        self.renderer(event)

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    def clear(self) -> None:
        self.events.clear()


@pytest.fixture
def lesson(tmp_path: Path) -> Lesson:
    path = tmp_path / "lessons" / "driver-demo.md"
    path.parent.mkdir()
    path.write_text(LESSON)
    return load_lesson(path)


@pytest.fixture
def env(state_dir: Path) -> Environment:
    return Environment(stdout=io.StringIO(), state_dir=state_dir, color=False, width=120)


@pytest.fixture
def progress(tmp_path: Path) -> Progress:
    return Progress(tmp_path / "xdg" / "workshop" / "progress.json")


@pytest.fixture
def driver(env: Environment, progress: Progress) -> Iterator[LessonDriver]:
    """A driver as the REPL makes it; whatever the test leaves running is undone (list `host_unchanged` first, so
    the host is compared after this)."""
    d = LessonDriver(env, Seen(env), progress, keep_place=True, finish_note="lesson complete!")
    try:
        yield d
    finally:
        d.stop()


def seen(d: LessonDriver) -> Seen:
    assert isinstance(d.sink, Seen)
    return d.sink


def session(d: LessonDriver) -> LessonSession:
    assert d.session is not None
    return d.session


def scratch(s: LessonSession) -> Path:
    return s.workdir / "scratch"


def own_uts(s: LessonSession) -> bool:
    """Whether the process the container console talks to has a UTS namespace other than ours."""
    pid = s.consoles["container"].focus_pid()
    return os.stat(f"/proc/{pid}/ns/uts").st_ino != os.stat("/proc/self/ns/uts").st_ino


def hostname_in_container(s: LessonSession) -> str:
    pid = s.consoles["container"].focus_pid()
    return subprocess.run(
        ["nsenter", "--target", str(pid), "--uts", "hostname"], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.mark.root
@pytest.mark.timeout(120)
def test_a_learner_types_the_try_it_step_and_the_kernel_says_when_the_goal_is_reached(
    host_unchanged: HostState, driver: LessonDriver, lesson: Lesson, progress: Progress
) -> None:
    assert driver.start(lesson) == 0
    s = session(driver)

    outcome = driver.next()
    assert outcome is not None and outcome.passed
    assert os.path.ismount(scratch(s)), "step 1 mounted the scratch tmpfs"

    # step 2 is the learner's: shown with its goal, nothing typed for them
    assert driver.next() is None
    assert driver.on_try_it and s.position == 1
    (shown,) = seen(driver).of(ev.TryItShown)
    assert shown == ev.TryItShown("container", (GOAL,))
    assert not own_uts(s), "nothing was typed for the learner"

    driver.hint()
    driver.hint()
    first, second = (e.text for e in seen(driver).of(ev.HintShown))
    assert "unshare" in first and "no more hints" in second

    driver.type_line("hostname")  # a line that reaches nothing: the goal says what is missing
    assert seen(driver).of(ev.GoalChecked)[-1] == ev.GoalChecked((GOAL,), (GOAL,))
    assert s.position == 1 and not own_uts(s)

    driver.type_line("unshare --uts /bin/sh")
    assert seen(driver).of(ev.GoalChecked)[-1] == ev.GoalChecked((), (GOAL,))
    assert own_uts(s), "the goal is reached because the kernel says so"
    assert s.position == 2 and not driver.on_try_it and driver.hint_level == 0
    saved = progress.lessons["driver-demo"]
    assert (saved["done"], saved["next"], progress.current) == ([0, 1], 2, "driver-demo")

    host_name = os.uname().nodename
    outcome = driver.next()
    assert outcome is not None and outcome.passed
    assert hostname_in_container(s) == f"drv-{s.id}" and os.uname().nodename == host_name
    assert seen(driver).of(ev.LessonFinished) == [ev.LessonFinished(lesson, "lesson complete!")]
    assert progress.lessons["driver-demo"].get("completed") is True
    screen = driver.env.stdout
    assert isinstance(screen, io.StringIO) and "The driver drove." in screen.getvalue()

    workdir = s.workdir
    driver.stop()
    assert driver.session is None and not workdir.exists(), "stop undoes the mount and the work dir"


@pytest.mark.root
@pytest.mark.timeout(120)
def test_trainer_mode_types_the_try_it_step_and_back_replays_on_a_fresh_session(
    host_unchanged: HostState, driver: LessonDriver, lesson: Lesson
) -> None:
    driver.start(lesson)
    driver.present(True, pace=0)
    assert seen(driver).of(ev.TrainerMode) == [ev.TrainerMode(True, 0.0)]
    first = session(driver)
    driver.next()
    driver.next()
    assert not seen(driver).of(ev.TryItShown), "in front of a room, the try-it step is typed, not left to them"
    assert first.position == 2 and own_uts(first)
    old_mount, old_consoles = scratch(first), [c.pid for c in first.consoles.values()]

    driver.back()
    fresh = session(driver)
    assert fresh is not first and fresh.id != first.id and fresh.position == 1
    assert not os.path.exists(old_mount), "the old session is undone, its mount with it"
    assert all(not Path(f"/proc/{pid}").exists() for pid in old_consoles), "its consoles are gone"
    assert os.path.ismount(scratch(fresh)), "step 1 was replayed on the fresh session"
    assert not own_uts(fresh), "step 2 was not: back stands before it"

    driver.jump(2)  # forward: step 2 replayed where we stand
    assert session(driver) is fresh and fresh.position == 2 and own_uts(fresh)

    driver.jump(0)
    assert session(driver).position == 0 and not os.path.exists(scratch(fresh))
    assert not os.path.ismount(scratch(session(driver))), "at the start nothing is replayed"


@pytest.mark.root
@pytest.mark.timeout(120)
def test_a_lesson_reopens_where_the_learner_left_it_rebuilt_from_a_clean_state(
    host_unchanged: HostState, env: Environment, driver: LessonDriver, lesson: Lesson, progress: Progress
) -> None:
    driver.start(lesson)
    driver.next()
    driver.skip()  # the learner had `skip` type step 2 for them
    left = session(driver)
    assert left.position == 2 and own_uts(left)
    driver.stop()  # `quit`: the place is kept

    again = LessonDriver(env, Seen(env), Progress(progress.path), keep_place=True)
    try:
        assert again.start(lesson, resume=True) == 2
        s = session(again)
        assert s.id != left.id
        assert os.path.ismount(scratch(s)) and own_uts(s), "steps 1 and 2 rebuilt on the kernel"
        notices = [e.text for e in seen(again).of(ev.Notice)]
        assert "resuming driver-demo at step 3, where you left it" in notices
        again.stop(forget_place=True)  # `stop`: `workshop` no longer reopens it
        assert Progress(progress.path).current is None
    finally:
        again.stop()


# -- what crashed sessions leave behind ------------------------------------------------------------------------------

CHILD = """
import json, os, signal, sys
from pathlib import Path
from workshop.engine import runner
from workshop.engine.session import LIBMOUNT_DIR, LessonSession
from workshop.environment import Environment
from workshop.lesson.loader import load_lesson

s = LessonSession(Environment(state_dir=Path(sys.argv[1])), load_lesson(Path(sys.argv[2])), lambda e: None)
s.start()
assert runner.run_step(s, 0).passed
print(json.dumps({"session": s.id, "scratch": str(s.workdir / "scratch")}), flush=True)
if sys.argv[3] == "crash":
    os.kill(os.getpid(), signal.SIGKILL)
sys.stdin.read()  # a learner still at work, until the test lets go
s.close()
"""


def workshop_process(env: Environment, lesson: Lesson, how: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Another learner's workshop that ran step 1 (a tmpfs mounted in its work dir); `crash`: then killed -9."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(env.state_dir), str(lesson.path), how],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert child.stdout is not None
    started: dict[str, str] = json.loads(child.stdout.readline())
    return child, started


@pytest.mark.root
@pytest.mark.timeout(120)
def test_leftovers_of_a_crashed_session_are_undone_and_a_live_lesson_is_spared(
    env: Environment, lesson: Lesson, host_unchanged: HostState
) -> None:
    crashed, gone = workshop_process(env, lesson, "crash")
    assert crashed.wait(timeout=30) == -signal.SIGKILL
    live, running = workshop_process(env, lesson, "live")
    try:
        assert os.path.ismount(gone["scratch"]), "kill -9 left the crashed session's mount behind"
        found = Leftovers.find(env)
        assert [j.session for j in found.stale] == [gone["session"]]
        assert [j.session for j in found.live] == [running["session"]]

        sink = Seen(env)
        assert found.undo(sink)
        (undone,) = sink.of(ev.LeftoverUndone)
        assert undone.session == gone["session"]
        assert not os.path.exists(gone["scratch"]), "the crashed session's mount and work dir are undone"
        assert os.path.ismount(running["scratch"]), "the live lesson's mount is untouched"
        assert Leftovers.find(env).stale == ()
    finally:
        live.communicate("", timeout=60)  # the live learner quits: their workshop undoes its own lesson
    deadline = time.monotonic() + 5
    while os.path.exists(running["scratch"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(running["scratch"])


@pytest.mark.root
@pytest.mark.timeout(120)
def test_the_lock_dir_a_lessons_mount_made_goes_with_the_lesson_and_one_the_machine_had_stays(
    host_unchanged: HostState, driver: LessonDriver, lesson: Lesson
) -> None:
    """util-linux's `mount` keeps its lock in /run/mount, on the host's /run whatever namespace it runs in: on a
    machine that never ran `mount` since boot the lesson's first mount makes it, and the lesson's end removes it.
    (On a machine that had it, it stays: both ways, the host is as it was.)"""
    had_it = os.path.lexists(LIBMOUNT_DIR)
    assert driver.start(lesson) == 0
    outcome = driver.next()
    assert outcome is not None and outcome.passed
    assert os.path.isdir(LIBMOUNT_DIR), "the lesson's mount used util-linux's lock dir"
    driver.stop()
    assert os.path.lexists(LIBMOUNT_DIR) == had_it
