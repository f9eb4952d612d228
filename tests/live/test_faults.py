"""Fault injection: for every lesson and every step k, `workshop run` is stopped by a signal at step k, and the
host must end up exactly as it was (mounts, links and addresses, netns, cgroups, SysV IPC, processes in foreign
PID namespaces, files outside the state dir, the hostname).

- SIGKILL right after step k: workshop gets no chance to clean up, its consoles are orphaned; `workshop cleanup`
  must undo it all.
- SIGTERM or SIGINT (Ctrl-C on its terminal) right after step k, one column: SIGTERM after odd steps, SIGINT after
  even ones. Both unwind the same `finally` blocks between steps (SystemExit or KeyboardInterrupt at the prompt for
  Enter), so each step is stopped once on that path and each lesson sees both signals; workshop must clean up by
  itself.
- Ctrl-C in the middle of step k, while it types its first line: the step stops, workshop cleans up by itself.

"Right after step k" is when workshop waits for Enter before step k+1 (a run without --yes, on a pty); after the
last step there is no such wait, so the signal lands while workshop is already undoing the lesson itself (a
SIGKILL there cuts its own cleanup in half).

Two cells run at once (steps k and n+1-k, so that both take about as long), in one shared state dir as learners on
one machine would: two sessions at once are supported (tests/live/test_concurrency.py), and it halves the time on two
cores. The host is compared with its state before the row after each pair. The matrix (lessons × steps × columns)
and its number of leaks are printed at the end of the module; every cell must leak nothing.

A crash of the tool itself (an exception in a step) is injected in-process into the REPL: the prompt comes back
without a traceback, and everything the step made is undone.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pexpect
import pytest
from prompt_toolkit.history import InMemoryHistory

from tests.harness import REPO, printed, run_workshop, type_into_shell, typed_lines
from tests.hygiene import HostState
from tests.terminal import plain
from workshop.engine import journal, session
from workshop.environment import Environment
from workshop.lesson import checks, loader, model
from workshop.observe import procfs

LESSONS = loader.load_all(loader.lesson_files(REPO / "lessons"))
MID_STEP = "^C in step"
TERM_OR_INT = "TERM/INT"
COLUMNS = ("SIGKILL", TERM_OR_INT, MID_STEP)
"""How each column stops workshop: the first two right after step k, the last one in the middle of it."""


def signal_for(column: str, k: int) -> signal.Signals:
    if column == "SIGKILL":
        return signal.SIGKILL
    if column == TERM_OR_INT:
        return signal.SIGTERM if k % 2 else signal.SIGINT
    return signal.SIGINT


WAITING = "press Enter for the next step"
DONE = "step done"
FAILED = "this step did not do what it teaches yet"
SESSION = re.compile(r"session ([0-9a-f]{6}) ·")


# -- the matrix ------------------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One lesson under one signal: what was left after each step k, and how long the row took."""

    lesson: str
    signal: str
    leaks: dict[int, list[str]] = field(default_factory=dict)
    seconds: float = 0.0


MATRIX: list[Row] = []


@pytest.fixture(scope="module", autouse=True)
def _print_matrix(request: pytest.FixtureRequest) -> Iterator[None]:
    """Prints the matrix once the module is done, also when a row failed (in CI logs it is the summary)."""
    yield
    if not MATRIX:
        return
    width = max(len(r.lesson) for r in MATRIX)
    steps = max(max(r.leaks, default=0) for r in MATRIX)
    lines = [
        "",
        "fault matrix: what was left on the host when workshop was stopped at step k (SIGKILL: then "
        "`workshop cleanup`; TERM/INT: SIGTERM after odd steps, SIGINT after even ones, and Ctrl-C in a step: "
        "workshop alone)",
        f"{'lesson':<{width}}  {'signal':<10}  " + " ".join(f"{k:>2}" for k in range(1, steps + 1)) + "  leaks   time",
    ]
    for r in MATRIX:
        row = " ".join(f"{len(r.leaks[k]) if k in r.leaks else '':>2}" for k in range(1, steps + 1))
        total = sum(len(v) for v in r.leaks.values())
        lines.append(f"{r.lesson:<{width}}  {r.signal:<10}  {row}  {total:>5}  {r.seconds:4.0f}s")
    cells = sum(len(r.leaks) for r in MATRIX)
    leaks = sum(len(v) for r in MATRIX for v in r.leaks.values())
    seconds = sum(r.seconds for r in MATRIX)
    lines.append(
        f"{len({r.lesson for r in MATRIX})} lessons × their steps × {len({r.signal for r in MATRIX})} columns = "
        f"{cells} cells, {leaks} leaks, {seconds / 60:.1f} min"
    )
    for r in MATRIX:
        for k, found in r.leaks.items():
            lines += [f"  {r.lesson} {r.signal} at step {k}: {leak}" for leak in found]
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        for line in lines:
            if reporter is not None:
                reporter.write_line(line)
            else:
                print(line)  # pytest without its terminal: still show the matrix


# -- one cell ----------------------------------------------------------------------------------------------------------


def _leftovers(state_dir: Path) -> list[str]:
    """Work dirs and journals in the state dir: after a clean end there are none."""
    return [f"state: {p}" for d in ("sessions", "journal") for p in sorted((state_dir / d).glob("*"))]


def _leaks(before: HostState, state_dir: Path, settle: float = 5.0) -> list[str]:
    """What is on the host now and was not before; killed processes may take a moment to be reaped."""
    deadline = time.monotonic() + settle
    while True:
        found = HostState.read().leaks_since(before) + _leftovers(state_dir)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _diagnose(pid: int) -> str:
    """Why a workshop did not end after a signal: its state, signal masks, kernel wait channel and children."""
    base = Path(f"/proc/{pid}")
    try:
        status = [ln for ln in (base / "status").read_text().splitlines() if ln.split(":")[0] in DIAGNOSED]
        wchan = (base / "wchan").read_text()
        children = [c for t in (base / "task").iterdir() for c in (t / "children").read_text().split()]
        commands = [
            f"{c} " + Path(f"/proc/{c}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:80] for c in children
        ]
        # after the command name: state, ppid, pgrp, session, tty, tpgid (the terminal's foreground group, which
        # a typed ^C signals)
        fields = (base / "stat").read_text().rpartition(")")[2].split()
        groups = f"pgrp {fields[2]}, session {fields[3]}, terminal's foreground group {fields[5]}"
    except (OSError, IndexError) as e:
        return f"(workshop pid {pid} unreadable: {e})"
    return f"workshop pid {pid}: {'; '.join(status)}; {groups}; wchan {wchan}; children {commands}"


DIAGNOSED = ("State", "Threads", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt")


@dataclass(frozen=True)
class Stopped:
    status: int | None
    """Workshop's exit status; None when a signal ended it."""
    screen: str
    problem: str = ""
    """What went wrong with the run itself (a step that failed, a workshop that did not end)."""

    @property
    def session(self) -> str | None:
        found = SESSION.search(self.screen)
        return found.group(1) if found else None


def _stop_at_step(lesson: model.Lesson, k: int, sig: str, env: dict[str, str]) -> Stopped:
    """Runs the lesson to step k, stops workshop there as the column says, waits for it to end."""
    total = len(lesson.steps)
    log = io.StringIO()
    child = pexpect.spawn(
        sys.executable, ["-m", "workshop", "run", lesson.id, "--quiet"], cwd=str(REPO),
        env={**env, "TERM": "dumb"}, encoding="utf-8", codec_errors="replace", dimensions=(40, 200), timeout=120,
    )  # fmt: skip
    child.logfile_read = log
    problem = ""
    signalled = False
    try:
        for step in range(1, k + 1):
            child.expect_exact(WAITING)
            child.sendline("")
            if sig == MID_STEP and step == k:
                child.expect_exact(f"step {k}/{total}")
                child.expect(r"\n[\w-]+# ")  # the step types its first line into a console
                break
            if child.expect_exact([DONE, FAILED]) == 1:
                problem = f"step {step} failed on its own"
                break
        else:
            if k < total:
                child.expect_exact(WAITING)  # idle between steps, as a learner reading the screen
        if not problem:
            if signal_for(sig, k) == signal.SIGINT:
                child.sendcontrol("c")  # the terminal turns it into SIGINT for workshop's process group
            else:
                os.kill(child.pid, signal_for(sig, k))  # workshop alone: its consoles are on terminals of their own
            signalled = True
            child.expect(pexpect.EOF, timeout=60)
    except (pexpect.TIMEOUT, pexpect.EOF) as e:
        what = "workshop did not end after the signal" if signalled else "the lesson did not get there"
        problem = f"{what} ({type(e).__name__}); {_diagnose(child.pid)}"
    finally:
        child.close(force=True)
    screen = plain(log.getvalue())
    if problem:
        problem += "; the screen ended with:\n" + screen[-2500:]
    return Stopped(child.exitstatus, screen, problem)


def _cell(lesson: model.Lesson, k: int, sig: str, env: dict[str, str]) -> tuple[Stopped, list[str]]:
    """One cell, up to the host check: stopped workshop, and for SIGKILL, `workshop cleanup`. Returns what
    happened and what went wrong on the way (leaks are read once the pair is done)."""
    run = _stop_at_step(lesson, k, sig, env)
    problems = [run.problem] if run.problem else []
    if "Traceback" in run.screen:
        problems.append("workshop printed a traceback")
    if sig == "SIGKILL":
        done = run_workshop(["cleanup"], env, timeout=120)
        said = done.stdout + done.stderr
        if done.returncode != 0 or "Traceback" in said:
            problems.append(f"`workshop cleanup` failed ({done.returncode}): {said[-1500:]}")
    elif (k < len(lesson.steps) or sig == MID_STEP) and run.status in (0, None):
        problems.append(f"workshop ended with status {run.status} after {sig}: an interrupted lesson is no success")
    return run, problems


def _pairs(steps: int) -> list[tuple[int, ...]]:
    """Steps 1..n paired as (1, n), (2, n-1), …: cell k runs k steps, so each pair takes about as long."""
    return [(k, steps + 1 - k) if k != steps + 1 - k else (k,) for k in range(1, steps // 2 + steps % 2 + 1)]


CASES = [(lesson, sig) for lesson in LESSONS for sig in COLUMNS]
CASE_IDS = [f"{lesson.id}-{sig.replace(' ', '').replace('/', '')}" for lesson, sig in CASES]


@pytest.mark.root
@pytest.mark.timeout(1200)
@pytest.mark.parametrize(("lesson", "sig"), CASES, ids=CASE_IDS)
def test_stopping_workshop_at_any_step_leaves_the_host_as_it_was(
    lesson: model.Lesson, sig: str, workshop_env: dict[str, str], state_dir: Path, host_unchanged: HostState
) -> None:
    row = Row(lesson.id, sig)
    MATRIX.append(row)
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        for pair in _pairs(len(lesson.steps)):
            cells = dict(zip(pair, pool.map(lambda k: _cell(lesson, k, sig, workshop_env), pair), strict=True))
            found = _leaks(host_unchanged, state_dir)
            if found:  # restore the host, so that the next pair is judged on its own
                run_workshop(["cleanup"], workshop_env, timeout=120)
            for k, (_, problems) in cells.items():
                others = [c.session for j, (c, _) in cells.items() if j != k and c.session]
                # a leak naming the other cell's session is the other's; one naming neither belongs to both
                row.leaks[k] = problems + [leak for leak in found if not any(o in leak for o in others)]
            row.seconds = time.monotonic() - t0
    leaks = [f"at step {k}: {leak}" for k, found in row.leaks.items() for leak in found]
    assert not leaks, f"{lesson.id}, {sig}: {len(leaks)} leaks\n" + "\n".join(leaks)


# -- a crash inside the tool -------------------------------------------------------------------------------------------

CRASH_LESSON = "unshare-pid"
CRASH_STEP = 2
"""Its step 2 leaves a container running in new PID and mount namespaces, with /proc mounted: a lot to undo."""


class Bug(Exception):
    """What a bug in workshop raises: nothing catches it on purpose."""


def run_repl(env: Environment, *typed: str) -> tuple[int, str]:
    """The real shell on a pipe input: types the lines, then Ctrl-D."""
    from workshop.ui.shell import Shell  # here: the matrix above must not depend on the REPL's imports

    _, rc = type_into_shell(
        lambda pipe, output: Shell(env, input=pipe, output=output, history=InMemoryHistory()), typed_lines(*typed)
    )
    return rc, printed(env)


@dataclass
class Witness:
    """What the crashing step had made when it crashed, read from the journal and the kernel."""

    journal: list[journal.Entry] = field(default_factory=list)
    container_pids: list[int] = field(default_factory=list)


def _crash_in_the_check(monkeypatch: pytest.MonkeyPatch, env: Environment, witness: Witness) -> None:
    """Step CRASH_STEP's check raises, after its lines have started the container."""
    real = checks.run_check
    calls = {"n": 0}
    step_check = LESSONS_BY_ID[CRASH_LESSON].steps[CRASH_STEP - 1].checks[0].description

    def buggy(check: model.Check, script: str, session_id: str) -> checks.CheckResult:
        if check.description == step_check and calls["n"] == 0:
            calls["n"] += 1
            (j,) = journal.journals(env.journal_dir)
            witness.journal = list(j.entries)
            mine = os.readlink("/proc/self/ns/pid")
            for pid in procfs.session_pids(Path("/proc"), session_id, j.header["workdir"]):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/ns/pid") != mine:
                        witness.container_pids.append(pid)
            raise Bug("a bug in a check helper")
        return real(check, script, session_id)

    monkeypatch.setattr(checks, "run_check", buggy)


LESSONS_BY_ID = {lesson.id: lesson for lesson in LESSONS}


@pytest.mark.root
@pytest.mark.skipif(CRASH_LESSON not in LESSONS_BY_ID, reason=f"no {CRASH_LESSON} lesson")
def test_a_crash_in_a_step_returns_to_the_prompt_and_is_undone(
    repl_env: Environment, state_dir: Path, monkeypatch: pytest.MonkeyPatch, host_unchanged: HostState
) -> None:
    witness = Witness()
    _crash_in_the_check(monkeypatch, repl_env, witness)
    # Enter runs step 1; `skip` has workshop type all of step 2 (Enter would leave a try-it step to the learner)
    rc, out = run_repl(repl_env, f"start {CRASH_LESSON}", "", "skip", "status", "stop", "status", "quit")

    assert witness.container_pids, "the step had started no container when it crashed: this test proves nothing"
    assert {e.kind for e in witness.journal} >= {"session-procs", "mounts-under", "path"}
    assert rc == 0
    assert "Traceback" not in out
    assert "internal error (Bug: a bug in a check helper)" in " ".join(out.split())
    assert "Traceback" in (state_dir / "workshop.log").read_text(), "the crash must be logged for a bug report"
    after_crash = out.split("internal error", 1)[1]
    assert re.search(rf"lesson +{CRASH_LESSON} —", after_crash), "the prompt did not come back (`status`)"
    total = len(LESSONS_BY_ID[CRASH_LESSON].steps)
    assert re.search(rf"step +{CRASH_STEP} of {total}", after_crash), "the crashed step is still the one to do"
    assert "cleaned up" in after_crash and "no lesson running" in after_crash, "`stop` did not end the lesson"
    # the kernel agrees: the container is gone, and so is the journal (nothing left to undo)
    assert not [p for p in witness.container_pids if procfs.is_alive(Path("/proc"), p)]
    assert journal.journals(repl_env.journal_dir) == []
    assert not list((state_dir / "sessions").glob("*"))


@pytest.mark.root
@pytest.mark.skipif(CRASH_LESSON not in LESSONS_BY_ID, reason=f"no {CRASH_LESSON} lesson")
def test_a_crash_while_a_lesson_starts_is_undone_at_once(
    repl_env: Environment, state_dir: Path, monkeypatch: pytest.MonkeyPatch, host_unchanged: HostState
) -> None:
    """The consoles exist when the first observation crashes: they are closed and the journal undone right away,
    and the learner can start again."""
    real = session.LessonSession.observe
    calls = {"n": 0}
    seen: list[int] = []

    def buggy(self: session.LessonSession, emit: bool = True) -> object:
        calls["n"] += 1
        if calls["n"] == 1:
            seen.extend(c.pid for c in self.consoles.values())
            raise Bug("a bug in the observer")
        return real(self, emit)

    monkeypatch.setattr(session.LessonSession, "observe", buggy)
    rc, out = run_repl(repl_env, f"start {CRASH_LESSON}", "status", f"start {CRASH_LESSON}", "", "quit")

    assert seen, "the crash came before the consoles existed: this test proves nothing"
    assert rc == 0 and "Traceback" not in out
    rest = out.partition("internal error")[2]
    assert rest, "the crash was not reported"
    assert "no lesson running" in rest, "a lesson whose start crashed must not be left half started"
    assert not [p for p in seen if procfs.is_alive(Path("/proc"), p)], "its consoles are still running"
    assert "the image is unpacked" in rest, "starting the lesson again after the crash did not work"
    assert journal.journals(repl_env.journal_dir) == []


@pytest.mark.root
@pytest.mark.skipif(CRASH_LESSON not in LESSONS_BY_ID, reason=f"no {CRASH_LESSON} lesson")
def test_again_after_a_crash_retries_the_step_that_crashed(
    repl_env: Environment, monkeypatch: pytest.MonkeyPatch, host_unchanged: HostState
) -> None:
    _crash_in_the_check(monkeypatch, repl_env, Witness())
    rc, out = run_repl(repl_env, f"start {CRASH_LESSON}", "", "skip", "again", "quit")
    assert rc == 0
    again = out.split("internal error", 1)[1]
    assert f"step {CRASH_STEP}/" in again, "`again` ran another step"


def _run_in_process(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> int | Exception:
    """`workshop run CRASH_LESSON --yes --quiet` in this process, whose checks raise: its exit status, or the
    exception that would reach the user as a traceback."""
    from workshop import cli

    for name, value in env.items():
        monkeypatch.setenv(name, value)

    def buggy(*args: object, **kwargs: object) -> checks.CheckResult:
        raise Bug("a bug in a check helper")

    monkeypatch.setattr(checks, "run_check", buggy)
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return cli.main(["run", CRASH_LESSON, "--yes", "--quiet"])
    except Bug as e:
        return e
    finally:
        for s, handler in saved.items():  # cli.main installs workshop's own; pytest's come back
            signal.signal(s, handler)


@pytest.mark.root
@pytest.mark.skipif(CRASH_LESSON not in LESSONS_BY_ID, reason=f"no {CRASH_LESSON} lesson")
def test_a_crash_in_workshop_run_is_undone(
    workshop_env: dict[str, str], state_dir: Path, monkeypatch: pytest.MonkeyPatch, host_unchanged: HostState
) -> None:
    _run_in_process(workshop_env, monkeypatch)
    assert journal.journals(state_dir / "journal") == [], "the crashed session's journal is still there"
    assert not list((state_dir / "sessions").glob("*")), "the crashed session's work dir is still there"


@pytest.mark.root
@pytest.mark.skipif(CRASH_LESSON not in LESSONS_BY_ID, reason=f"no {CRASH_LESSON} lesson")
def test_a_crash_in_workshop_run_is_reported_without_a_traceback(
    workshop_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, host_unchanged: HostState
) -> None:
    outcome = _run_in_process(workshop_env, monkeypatch)
    assert isinstance(outcome, int) and outcome != 0, f"workshop run ended with {outcome!r}"
