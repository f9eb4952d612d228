"""Learners sharing one machine (a trainer's VM): sessions that run at the same time each pass, never see each
other's resources, and together leave the host as it was.

Isolation is read from the kernel while the sessions run: every namespace one session's processes are in (other
than the host's) is one no other session's process is in. Each session's own view (its rendered pstree and
namespace table) names nothing of the other's. Real learners share /var/lib/workshop, so most cases share one
state dir; a few give each session its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pexpect
import pytest

from tests.harness import REPO, run_workshop
from tests.hygiene import HostState
from workshop.engine import cgroupfs, journal
from workshop.environment import Environment
from workshop.lesson import loader, model
from workshop.observe import procfs

LESSONS = loader.load_all(loader.lesson_files(REPO / "lessons"))
NS_TYPES = ("cgroup", "ipc", "mnt", "net", "pid", "user", "uts")
WAITING = "press Enter for the next step"
SEPARATE_STATE = ("cgroup-pids", "mount-ns", "veth", "capstone", "podman")
"""Lessons with host-wide resources (the parent cgroup, /run/netns, /var/lib/containers): also run with one state
dir per session, where neither session can read the other's journal."""


# -- watching the kernel while sessions run ----------------------------------------------------------------------------


def _descendants(roots: list[int]) -> set[int]:
    """Every process below the roots, from /proc/PID/task/TID/children (no scan over the whole machine)."""
    seen: set[int] = set()
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                todo += [int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
            except (OSError, ValueError):
                continue
    return seen


@dataclass
class Watch:
    """Samples, while sessions run, which namespaces the processes of each session are in (by the workshop
    process they descend from) and which processes each session has."""

    roots: dict[str, int]
    """A label per session → the pid of its workshop process."""
    host: dict[str, str] = field(default_factory=dict)
    namespaces: dict[str, set[str]] = field(default_factory=dict)
    """label → every namespace (e.g. 'pid:[4026532180]') its processes were seen in, other than the host's."""
    shared: list[str] = field(default_factory=list)
    """Namespaces that processes of two sessions were in at the same time."""
    processes: dict[str, set[int]] = field(default_factory=dict)
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self.host = {t: os.readlink(f"/proc/self/ns/{t}") for t in NS_TYPES}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(0.05)

    def sample(self) -> None:
        """One look at every session's processes. The kernel reuses a freed namespace's inode number at once, and
        one look over ten sessions takes a while on a slow machine: a session's namespace may die and another
        session's new one get its number between two reads of the same look. So a namespace seen in two sessions
        is only reported once it is confirmed held by both at the same moment (see `_held_together`)."""
        now: dict[str, dict[str, set[int]]] = {}
        for label, root in self.roots.items():
            for pid in _descendants([root]) - {root}:
                self.processes.setdefault(label, set()).add(pid)
                for t in NS_TYPES:
                    ns = _ns_link(pid, t)
                    if ns is not None and ns != self.host[t]:
                        now.setdefault(ns, {}).setdefault(label, set()).add(pid)
                        self.namespaces.setdefault(label, set()).add(ns)
        for ns, by_label in now.items():
            held = _held_together(ns, by_label)
            if len(held) > 1:
                self.shared.append(f"{ns}: " + ", ".join(f"{k} pids {sorted(v)}" for k, v in sorted(held.items())))
        self.samples += 1


def _ns_link(pid: int, ns_type: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/{ns_type}")
    except OSError:
        return None


def _held_together(ns: str, by_label: dict[str, set[int]]) -> dict[str, set[int]]:
    """The sessions whose processes are in `ns` at one moment: every pid's link is read, then the first pid's
    again. While a process shows the namespace before and after, it kept it alive all along, so the others'
    links read in between name that very namespace, not a later one that got its inode number."""
    ns_type = ns.split(":", 1)[0]
    pids = [(label, pid) for label, group in sorted(by_label.items()) for pid in sorted(group)]
    now = {(label, pid) for label, pid in pids if _ns_link(pid, ns_type) == ns}
    anchor = next(iter(sorted(now)), None)
    if anchor is None or _ns_link(anchor[1], ns_type) != ns:
        return {}
    held: dict[str, set[int]] = {}
    for label, pid in now:
        held.setdefault(label, set()).add(pid)
    return held


# -- sessions -------------------------------------------------------------------------------------------------------


@dataclass
class Run:
    label: str
    process: subprocess.Popen[str]
    state_dir: Path
    output: str = ""

    @property
    def session(self) -> str:
        found = re.search(r"session ([0-9a-f]{6}) ·", self.output)
        assert found, f"{self.label}: no session id in its output:\n{self.output[-2000:]}"
        return found.group(1)


def _env(base: dict[str, str], state_dir: Path) -> dict[str, str]:
    return {**base, "WORKSHOP_STATE_DIR": str(state_dir)}


def _private_state_dir(shared: Path, name: str) -> Path:
    """Another state dir next to the test's, sharing its image."""
    state = shared.parent / name
    (state / "images").mkdir(parents=True)
    os.symlink((shared / "images" / "rootfs.tar").resolve(), state / "images" / "rootfs.tar")
    return state


def run_at_once(
    lesson: str, env: dict[str, str], state_dirs: list[Path], quiet: bool, timeout: float
) -> tuple[list[Run], Watch]:
    """Starts one `workshop run LESSON --yes` per state dir (the same dir may come several times), all at once,
    and watches the kernel until every one has ended."""
    runs = []
    for n, state in enumerate(state_dirs):
        argv = [sys.executable, "-m", "workshop", "run", lesson, "--yes", *(["--quiet"] if quiet else [])]
        process = subprocess.Popen(
            argv, env=_env(env, state), cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        runs.append(Run(f"learner{n + 1}", process, state))
    watch = Watch({r.label: r.process.pid for r in runs})
    watch.start()
    try:
        readers = [threading.Thread(target=_collect, args=(r,), daemon=True) for r in runs]
        for t in readers:
            t.start()
        deadline = time.monotonic() + timeout
        for r, t in zip(runs, readers, strict=True):
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                r.process.terminate()
                t.join(30)
                pytest.fail(f"{r.label} did not finish {lesson} within {timeout:.0f}s:\n{r.output[-3000:]}")
    finally:
        watch.stop()
        for r in runs:
            if r.process.poll() is None:
                r.process.kill()
                r.process.wait()
    return runs, watch


def _collect(run: Run) -> None:
    assert run.process.stdout is not None
    run.output = run.process.stdout.read()
    run.process.wait()


def assert_all_passed(lesson: model.Lesson, runs: list[Run]) -> None:
    total = len(lesson.steps)
    for r in runs:
        assert "Traceback" not in r.output, f"{r.label}:\n{r.output[-3000:]}"
        assert r.process.returncode == 0 and f"{lesson.id}: {total}/{total} steps passed" in r.output, (
            f"{r.label} did not pass {lesson.id} while others ran it too:\n{r.output[-4000:]}"
        )


TYPED = re.compile(r"^[\w-]+# ")
"""A line a step typed into a console, e.g. `container# unshare -p -f …`."""
CHECKED = re.compile(r"^\s+[✓✗] ")
PSTREE = re.compile(r"\w\((\d+)\)")
"""`sh(16494)` in a pstree line: a process and its host PID."""
OUTPUT = "  │ "
"""The start of a line some program printed in a console."""


def mentions(run: Run, other: Run, lines: Callable[[str], bool]) -> list[str]:
    return [line for line in run.output.splitlines() if other.session in line and lines(line)]


def assert_isolated(runs: list[Run], watch: Watch) -> None:
    """The kernel never had two sessions in one namespace at once; what a session typed, checked and showed as
    its processes is its own."""
    assert watch.samples >= 3, "the sessions ended before they could be watched"
    assert not watch.shared, "two sessions were in the same namespace at once:\n" + "\n".join(watch.shared[:20])
    ids = [r.session for r in runs]
    assert len(set(ids)) == len(ids), f"two sessions got the same id: {ids}"
    for r in runs:
        for other in runs:
            if other is r:
                continue
            own = mentions(r, other, lambda line: bool(TYPED.match(line) or CHECKED.match(line) or PSTREE.search(line)))
            assert not own, (
                f"{r.label} typed, checked or listed {other.label}'s session {other.session}:\n" + "\n".join(own[:20])
            )
            shown = {int(p) for p in PSTREE.findall(r.output)}
            theirs = shown & watch.processes.get(other.label, set()) - watch.processes.get(r.label, set())
            assert not theirs, f"{r.label}'s pstree shows {other.label}'s processes {sorted(theirs)}"


def assert_host_clean(host_before: HostState, state_dirs: list[Path]) -> None:
    deadline = time.monotonic() + 5
    while True:
        leaks = HostState.read().leaks_since(host_before)
        leaks += [str(p) for d in set(state_dirs) for sub in ("sessions", "journal") for p in (d / sub).glob("*")]
        if not leaks or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not leaks, "after both sessions, the host was changed:\n" + "\n".join(leaks)


# -- two learners, every lesson ----------------------------------------------------------------------------------------

PAIRS = [(lesson, "shared") for lesson in LESSONS] + [
    (lesson, "separate") for lesson in LESSONS if lesson.id in SEPARATE_STATE
]


@pytest.mark.root
@pytest.mark.timeout(400)
@pytest.mark.parametrize(("lesson", "state"), PAIRS, ids=[f"{lesson.id}-{state}" for lesson, state in PAIRS])
def test_two_learners_run_the_same_lesson_at_once(
    lesson: model.Lesson, state: str, workshop_env: dict[str, str], state_dir: Path, host_unchanged: HostState
) -> None:
    dirs = [state_dir, state_dir] if state == "shared" else [state_dir, _private_state_dir(state_dir, "state2")]
    runs, watch = run_at_once(lesson.id, workshop_env, dirs, quiet=False, timeout=300)
    assert_all_passed(lesson, runs)
    assert_isolated(runs, watch)
    assert_host_clean(host_unchanged, dirs)


VIEWED = [pytest.param(lesson, id=lesson.id) for lesson in LESSONS if {"mounts", "cgroups"} & set(lesson.observe)]
"""Lessons with the mounts or cgroups view: the host's mount table and the tool's parent cgroup list every learner's
mounts and cgroups, and each learner's views must show their own only."""


@pytest.mark.root
@pytest.mark.timeout(400)
@pytest.mark.parametrize("lesson", VIEWED)
def test_a_learners_views_show_only_their_own_resources(
    lesson: model.Lesson, workshop_env: dict[str, str], state_dir: Path, host_unchanged: HostState
) -> None:
    runs, _ = run_at_once(lesson.id, workshop_env, [state_dir, state_dir], quiet=False, timeout=300)
    assert_all_passed(lesson, runs)
    for r, other in ((runs[0], runs[1]), (runs[1], runs[0])):
        # only what a program printed in a console may name the other learner (`ip netns list` shows the host's)
        shown = mentions(r, other, lambda line: not line.startswith(OUTPUT))
        assert not shown, f"{r.label}'s views show {other.label}'s resources:\n" + "\n".join(shown[:20])
    assert_host_clean(host_unchanged, [state_dir])


# -- ten learners, one lesson ------------------------------------------------------------------------------------------


@pytest.mark.root
@pytest.mark.timeout(400)
@pytest.mark.skipif("unshare-pid" not in {x.id for x in LESSONS}, reason="no unshare-pid lesson")
def test_ten_learners_run_unshare_pid_at_once(
    workshop_env: dict[str, str], state_dir: Path, host_unchanged: HostState
) -> None:
    lesson = next(x for x in LESSONS if x.id == "unshare-pid")
    t0 = time.monotonic()
    runs, watch = run_at_once(lesson.id, workshop_env, [state_dir] * 10, quiet=False, timeout=300)
    seconds = time.monotonic() - t0
    assert_all_passed(lesson, runs)
    assert_isolated(runs, watch)
    # ten PID namespaces, one per learner, each seen from the kernel
    pid_namespaces = {label: {ns for ns in found if ns.startswith("pid:")} for label, found in watch.namespaces.items()}
    assert all(pid_namespaces.get(r.label) for r in runs), f"a learner's container was never seen: {pid_namespaces}"
    assert_host_clean(host_unchanged, [state_dir])
    print(f"ten unshare-pid sessions at once: {seconds:.1f}s")


# -- one learner's cleanup, another learner's live lesson --------------------------------------------------------------


@contextlib.contextmanager
def live_lesson(lesson: str, steps: int, env: dict[str, str]) -> Iterator[pexpect.spawn]:
    """A learner's `workshop run LESSON` after `steps` steps, waiting for Enter; `q` ends it when done."""
    child = pexpect.spawn(
        sys.executable, ["-m", "workshop", "run", lesson, "--quiet"], cwd=str(REPO),
        env={**env, "TERM": "dumb"}, encoding="utf-8", codec_errors="replace", dimensions=(40, 120), timeout=60,
    )  # fmt: skip
    try:
        for _ in range(steps):
            child.expect_exact(WAITING)
            child.sendline("")
            child.expect_exact("step done")
        child.expect_exact(WAITING)
        yield child
    finally:
        if child.isalive():
            child.sendline("q")
            try:
                child.expect(pexpect.EOF, timeout=30)
            except pexpect.TIMEOUT:
                child.terminate(force=True)
        child.close(force=True)


@pytest.fixture
def live_container(workshop_env: dict[str, str], host_unchanged: HostState) -> Iterator[pexpect.spawn]:
    """A learner's `workshop run unshare-pid`, after step 2 (a shell that is PID 1), waiting for Enter."""
    with live_lesson("unshare-pid", 2, workshop_env) as child:
        yield child


def _containers(state_dir: Path) -> dict[str, list[int]]:
    """session id → its processes in a PID namespace other than ours, found by their root in its work dir."""
    mine = os.readlink("/proc/self/ns/pid")
    found: dict[str, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            root = os.readlink(entry / "root")
            foreign = os.readlink(entry / "ns/pid") != mine
        except OSError:
            continue
        sessions = str(state_dir / "sessions") + "/"
        if foreign and root.startswith(sessions):
            found.setdefault(root[len(sessions) :].split("/")[0], []).append(int(entry.name))
    return found


@pytest.mark.root
@pytest.mark.timeout(300)
def test_cleanup_by_one_learner_spares_another_learners_live_lesson(
    live_container: pexpect.spawn, workshop_env: dict[str, str], state_dir: Path
) -> None:
    before = _containers(state_dir)
    assert len(before) == 1, f"expected one running container, found {before}"
    (session,) = before

    # another learner, same machine and state dir: `workshop cleanup`, then a whole lesson (which first undoes
    # what crashed sessions left) of their own
    done = run_workshop(["cleanup"], workshop_env, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"session {session} is still running" in " ".join(done.stdout.split()), done.stdout
    other = run_workshop(["run", "process", "--yes", "--quiet"], workshop_env, timeout=120)
    assert other.returncode == 0, other.stdout[-3000:]
    assert "left behind" not in other.stdout

    after = _containers(state_dir)
    assert after.get(session) == before[session], "the live lesson's container was touched"
    assert (state_dir / "journal" / f"{session}.jsonl").exists(), "the live lesson's journal is gone"
    # and the first learner carries on where they were: step 3 looks at the container from the host
    live_container.sendline("")
    live_container.expect_exact("step done")
    live_container.expect_exact(WAITING)


@pytest.mark.root
@pytest.mark.timeout(300)
@pytest.mark.skipif("cgroup-pids" not in {x.id for x in LESSONS}, reason="no cgroup-pids lesson")
def test_learners_with_separate_state_dirs_share_the_parent_cgroup(
    workshop_env: dict[str, str], state_dir: Path, host_unchanged: HostState
) -> None:
    """The learner who made the tool's parent cgroup leaves first, while the other's cgroup is still in it: the
    parent stays, and goes with the last one, though neither can see the other's journal."""
    parent = cgroupfs.pids_parent(cgroupfs.current_layout(Environment()), Path("/proc"))
    assert not parent.exists(), f"{parent} is there before the test: a leftover of something else"
    other_dir = _private_state_dir(state_dir, "state2")
    # step 3 makes the session's cgroup, and the parent if there is none; the first learner makes the parent
    with (
        live_lesson("cgroup-pids", 3, _env(workshop_env, other_dir)) as first,
        live_lesson("cgroup-pids", 3, workshop_env),
    ):
        assert parent.is_dir()
        first.sendline("q")  # the learner who made the parent leaves first; the second one's cgroup is in it
        first.expect(pexpect.EOF, timeout=30)
    left = parent.is_dir()
    if left:
        parent.rmdir()  # for the next test: this one reports it
    assert not left, f"{parent} was left behind"


@pytest.mark.root
@pytest.mark.timeout(300)
@pytest.mark.skipif("veth" not in {x.id for x in LESSONS}, reason="no veth lesson")
def test_learners_with_separate_state_dirs_share_run_netns(
    workshop_env: dict[str, str], state_dir: Path, host_unchanged: HostState
) -> None:
    run_netns = Path("/run/netns")
    if run_netns.exists():
        pytest.skip("this host has /run/netns already: nothing for the lessons to make and remove")
    other_dir = _private_state_dir(state_dir, "state2")
    with (  # step 4 names the first container's network namespace in /run/netns
        live_lesson("veth", 4, _env(workshop_env, other_dir)) as first,
        live_lesson("veth", 4, workshop_env),
    ):
        assert run_netns.is_dir()
        first.sendline("q")
        first.expect(pexpect.EOF, timeout=30)
    left = run_netns.is_dir()
    if left:
        run_netns.rmdir()  # for the next test: this one reports it
    assert not left, f"{run_netns} was left behind"


# -- the hostname, which every session journals ---------------------------------------------------------------------


def test_a_session_restores_the_hostname_from_before_the_running_sessions(tmp_path: Path) -> None:
    """Learner A's lesson line renamed the host by mistake (it ran before `unshare --uts`); learner B started
    after that. B must journal the name from before A, not the mistaken one: else, ending after A (which puts
    the name back), B would rename the host to A's mistake."""
    journal_dir = tmp_path / "journal"
    journal_dir.mkdir()
    other = subprocess.Popen(["sleep", "60"])  # learner A's workshop, still running
    try:
        stat = procfs.read_stat(Path("/proc"), other.pid)
        assert stat is not None
        header = {"session": "aaaaaa", "owner_pid": other.pid, "owner_start": stat.starttime, "created": 1.0}
        entry = {"kind": "hostname", "target": "name-before-a"}
        (journal_dir / "aaaaaa.jsonl").write_text(json.dumps(header) + "\n" + json.dumps(entry) + "\n")
        assert journal.hostname_before(journal_dir, "bbbbbb") == "name-before-a"
        assert journal.hostname_before(journal_dir, "aaaaaa") == socket.gethostname(), "its own journal is no witness"
    finally:
        other.kill()
        other.wait()
    # once A's workshop is gone its journal is a leftover, whose name is no longer the host's before anything
    assert journal.hostname_before(journal_dir, "bbbbbb") == socket.gethostname()


def test_a_journal_appears_with_its_header_or_not_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another learner's `workshop run` reads every journal when it starts (to undo crashed sessions): a journal
    caught between its creation and its header would look like a dead session's and be undone under us."""
    journal_dir = tmp_path / "journal"
    seen_while_writing: list[list[str]] = []
    real_fsync = os.fsync

    def watching_fsync(fd: int) -> None:
        seen_while_writing.append([j.session for j in journal.journals(journal_dir)])
        real_fsync(fd)

    monkeypatch.setattr("workshop.engine.journal.os.fsync", watching_fsync)
    created = journal.Journal.create(journal_dir, "cccccc", tmp_path / "work")
    assert seen_while_writing == [[]], "the journal was visible before its header was written"
    (found,) = journal.journals(journal_dir)
    assert found.header["owner_pid"] == os.getpid() and found.session == created.session
    assert [p.name for p in journal_dir.iterdir()] == ["cccccc.jsonl"]


def test_two_cleanups_at_once_undo_a_crashed_session_once(tmp_path: Path) -> None:
    """A trainer says "everyone, run `workshop cleanup`": two learners on one VM then undo the same crashed
    session at the same moment. Each removing the same tree found entries vanishing under it (seen in CI as
    `keeps changing while it is removed`). One undoes it; the other waits for it, then finds nothing left."""
    work = tmp_path / "work"
    for n in range(40):  # a tree big enough that two removals walking it at once would collide
        (work / f"d{n}").mkdir(parents=True)
        for m in range(50):
            (work / f"d{n}" / f"f{m}").write_text("x")
    crashed = journal.Journal.create(tmp_path / "journal", "dddddd", work)
    crashed.record("path", str(work))
    learners = [journal.Journal.read(crashed.path) for _ in range(2)]  # each cleanup read it before either began

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda j: j.undo(), learners))

    assert [r.outcome for rs in results for r in rs if r.failed] == []
    assert not work.exists() and not crashed.path.exists()
    outcomes = sorted(r.outcome for (r,) in results)
    assert outcomes == ["already gone", "removed"], outcomes


def _running_journal(journal_dir: Path, session: str, owner: subprocess.Popen[bytes], *entries: dict[str, str]) -> Path:
    """A journal as another learner's running workshop (`owner`) keeps it."""
    stat = procfs.read_stat(Path("/proc"), owner.pid)
    assert stat is not None
    header = {"session": session, "owner_pid": owner.pid, "owner_start": stat.starttime, "created": 1.0}
    path = journal_dir / f"{session}.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in (header, *entries)))
    return path


def test_the_parent_cgroup_stays_while_another_running_session_uses_it(tmp_path: Path) -> None:
    """Capstone's container removes its own cgroup when it exits, and the lesson starts it again a line later: in
    between, the tool's parent cgroup is empty. Another learner's session ending (or `workshop cleanup` undoing a
    crashed one) then must not remove the parent: the running lesson's next line would find it gone."""
    journal_dir = tmp_path / "journal"
    journal_dir.mkdir()
    parent = tmp_path / "workshop"  # stands in for the parent cgroup: undoing it is an rmdir when empty
    parent.mkdir()
    claim = {"kind": "cgroup-parent", "target": str(parent), "version": "v1", "journals": str(journal_dir)}
    other = subprocess.Popen(["sleep", "60"])
    try:
        running = _running_journal(journal_dir, "aaaaaa", other, claim)
        ending = journal.Journal.create(journal_dir, "bbbbbb", tmp_path / "work")
        ending.record("cgroup-parent", str(parent), version="v1", journals=str(journal_dir))
        assert [u.outcome for u in ending.undo()] == ["kept: session aaaaaa still uses it"]
        assert parent.is_dir()

        # both ending at once: the one that began undoing first no longer holds on to it
        with running.open("a") as f:
            f.write(json.dumps(journal.CLOSING) + "\n")
        last = journal.Journal.create(journal_dir, "cccccc", tmp_path / "work")
        last.record("cgroup-parent", str(parent), version="v1", journals=str(journal_dir))
        assert [u.outcome for u in last.undo()] == ["removed"]
        assert not parent.exists()
    finally:
        other.kill()
        other.wait()
