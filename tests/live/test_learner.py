"""The live half of tests/unit/test_learner.py: what needs root and the real kernel."""

from __future__ import annotations

import json
import os
import pwd
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.ci import require_tool
from tests.harness import REPO, run_workshop
from tests.hygiene import HostState
from tests.terminal import UNSHARE_STEPS, Learner, lesson_prompt, our_processes, session_ids, words
from tests.unit.test_learner import (
    ENTER,
    run_shell,
)
from workshop.engine.session import LessonSession
from workshop.environment import Environment
from workshop.lesson import loader
from workshop.lesson.progress import Owner, Progress, progress_file

UNSHARE = "unshare-pid"


@pytest.fixture
def env(repl_env: Environment) -> Environment:
    return repl_env


STEPS = UNSHARE_STEPS
CGROUP_STEPS = len(loader.load_lesson(REPO / "lessons" / "cgroup-pids" / "lesson.md").steps)
VETH_STEPS = len(loader.load_lesson(REPO / "lessons" / "veth" / "lesson.md").steps)


PID_1_SHELL = "unshare -p -f --kill-child --mount-proc=rootfs/proc chroot rootfs /bin/sh"


def prompt(step: int, console: str) -> str:
    return lesson_prompt(UNSHARE, step, STEPS, console)


def nspid(pid: int) -> list[int]:
    status = Path(f"/proc/{pid}/status").read_text()
    return [int(n) for n in re.search(r"^NSpid:\s+(.*)$", status, re.MULTILINE).group(1).split()]  # type: ignore[union-attr]


def pid_1_containers(state_dir: Path, ids: set[str]) -> list[int]:
    """Host PIDs of this session's shells that are PID 1 of a PID namespace other than ours, rooted in the work dir."""
    found = []
    for p in our_processes(state_dir, ids):
        if not p.foreign_pidns or p.cmd != "/bin/sh":
            continue
        root = os.readlink(f"/proc/{p.pid}/root")
        if nspid(p.pid)[-1] == 1 and root.startswith(str(state_dir / "sessions")) and root.endswith("/rootfs"):
            found.append(p.pid)
    return found


@pytest.mark.root
@pytest.mark.timeout(300)
def test_a_learner_types_a_step_asks_for_hints_skips_quits_and_resumes(
    learner: Callable[..., Learner],
    workshop_env: dict[str, str],
    state_dir: Path,
    tmp_path: Path,
    host_unchanged: HostState,
) -> None:
    transcript = tmp_path / "session.html"
    me = learner("--record", str(transcript))
    me.wait_for("workshop ❯ ")
    me.type(f"start {UNSHARE}")
    me.wait_for(prompt(1, "container"))
    me.type("")  # step 1: unpack the image
    me.wait_for(prompt(2, "host"))

    # step 2 is a "try it" step: Enter shows it and its goal, and hands over the container console
    me.type("")
    shown = words(me.wait_for(prompt(2, "container")))
    assert "your turn" in shown
    assert "the container shell is PID 1 of a new PID namespace" in shown
    ids = session_ids(state_dir)
    assert pid_1_containers(state_dir, ids) == [], "workshop typed the step the learner was meant to type"

    me.type("hint")
    assert "hint: (1/3)" in me.wait_for(prompt(2, "container"))
    me.type("hint")
    second = me.wait_for(prompt(2, "container"))
    assert "hint: (2/3)" in second
    assert "rootfs" in second

    # a line that does not reach the goal: the kernel is checked, and workshop says what is still missing
    me.type("echo $$")
    missing = words(me.wait_for(prompt(2, "container")))
    assert "not there yet" in missing
    assert "the container shell is PID 1 of a new PID namespace" in missing
    assert pid_1_containers(state_dir, ids) == []

    me.type(PID_1_SHELL)
    reached = words(me.wait_for(prompt(3, "container")))
    assert "goal reached ✓" in reached
    assert "step done" in reached
    assert "pstree" in reached and "● new" in reached, "no pstree and namespace view after the learner's line"
    (container,) = pid_1_containers(state_dir, ids)  # what the kernel says, not what workshop printed
    assert os.readlink(f"/proc/{container}/ns/pid") != os.readlink("/proc/self/ns/pid")

    # `skip` has workshop run the next step, with the same views after it
    me.type("skip")
    skipped = words(me.wait_for(prompt(4, "host")))
    assert f"step 3/{STEPS}" in skipped
    assert f"NSpid: {container} 1" in skipped or re.search(rf"NSpid:\s+{container}\s+1", skipped)
    assert "step done" in skipped and "pstree" in skipped

    me.type("quit")
    assert me.wait_exit() == 0
    assert pid_1_containers(state_dir, ids) == [], "quit left the container running"
    page = transcript.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "goal reached" in page and "unshare -p -f --kill-child" in page
    assert f"step 3/{STEPS}" in page and "Two numbers for one process" in page

    listing = words(run_workshop(["list"], workshop_env, timeout=60).stdout)
    assert re.search(rf"unshare-pid .* 3/{STEPS} ●●●{'○' * (STEPS - 3)} ▶ at step 4", listing), listing

    # back again: `workshop` reopens the lesson at step 4, after rebuilding steps 1 to 3 on a clean state
    again = learner()
    resumed = words(again.wait_for(prompt(4, "host"), timeout=120))
    assert "resuming unshare-pid at step 4" in resumed
    for k, title in ((1, "Unpack the image"), (2, "A shell that is PID 1"), (3, "Two numbers for one process")):
        assert f"rebuilt step {k}/{STEPS}: {title}" in resumed
    new_ids = session_ids(state_dir) - ids
    assert len(new_ids) == 1, "the resumed lesson runs in a session of its own"
    (rebuilt,) = pid_1_containers(state_dir, new_ids)
    assert rebuilt != container
    assert os.readlink(f"/proc/{rebuilt}/ns/pid") != os.readlink("/proc/self/ns/pid")
    assert os.readlink(f"/proc/{rebuilt}/root") == str(state_dir / "sessions" / next(iter(new_ids)) / "rootfs")

    # `reset`: the lesson starts over from a clean state, and the saved progress is gone
    again.type("reset")
    fresh = words(again.wait_for(prompt(1, "container"), timeout=60))
    assert "progress cleared" in fresh
    assert pid_1_containers(state_dir, session_ids(state_dir)) == [], "reset kept the rebuilt container"
    again.type("quit")
    assert again.wait_exit() == 0
    saved = json.loads((Path(workshop_env["XDG_STATE_HOME"]) / "workshop" / "progress.json").read_text())
    assert saved["lessons"][UNSHARE]["done"] == [] and saved["lessons"][UNSHARE]["next"] == 0


def container_uts(s: LessonSession) -> tuple[bool, str]:
    """Whether the container console's process has a UTS namespace of its own, and its hostname there."""
    pid = s.consoles["container"].focus_pid()
    own = os.readlink(f"/proc/{pid}/ns/uts") != os.readlink("/proc/self/ns/uts")
    name = os.popen(f"nsenter --target {pid} --uts hostname").read().strip()
    return own, name


@pytest.mark.root
@pytest.mark.timeout(120)
def test_the_goal_is_checked_after_each_line_and_says_what_is_missing(
    env: Environment, host_unchanged: HostState
) -> None:
    shell = run_shell(
        env,
        container_uts,
        "start process" + ENTER,
        ENTER,  # step 1
        ENTER,  # step 2 is a try-it step: shown, not run
        "unshare --uts /bin/sh" + ENTER,
        "solution" + ENTER,
        "hint" + ENTER,
        "hint" + ENTER,
        "hint" + ENTER,
        "hostname container-$WORKSHOP_SESSION" + ENTER,
        "quit" + ENTER,
    )
    out = env.stdout.getvalue()  # type: ignore[attr-defined]
    assert "Traceback" not in out and "internal error" not in out
    by_line = {line: (position, kernel) for line, position, kernel in shell.seen}
    assert by_line[""][0] == 1
    assert by_line["unshare --uts /bin/sh"][0] == 1, "half the goal moved the lesson on"
    after_unshare = by_line["unshare --uts /bin/sh"][1]
    assert after_unshare is not None and after_unshare[0] is True
    assert "still missing" in out and "the kernel holds the new name in that namespace" in out
    assert re.search(r"container# hostname container-[0-9a-f]{6}", out), "`solution` shows real values"
    assert "hint: (1/2)" in out and "hint: (2/2)" in out and "no more hints" in out
    position, after_hostname = by_line["hostname container-$WORKSHOP_SESSION"]
    assert position == 2 and "goal reached ✓" in out
    assert after_hostname is not None
    own_uts, hostname = after_hostname
    assert own_uts and re.fullmatch(r"container-[0-9a-f]{6}", hostname), hostname


@pytest.mark.root
@pytest.mark.timeout(120)
def test_skip_types_a_try_it_step_for_the_learner(env: Environment, host_unchanged: HostState) -> None:
    def pid_1(s: LessonSession) -> list[int]:
        return nspid(s.consoles["container"].focus_pid())

    shell = run_shell(env, pid_1, "start unshare-pid" + ENTER, ENTER, ENTER, "skip" + ENTER, "quit" + ENTER)
    out = env.stdout.getvalue()  # type: ignore[attr-defined]
    line, position, ids = shell.seen[3]
    assert line == "skip" and position == 2
    assert ids is not None and ids[-1] == 1 and len(ids) == 2, (
        "after skip the container shell is not PID 1 of a nested namespace"
    )
    assert "my PID is 1" in out and "step done" in out


@pytest.mark.root
@pytest.mark.timeout(180)
def test_run_records_a_cast_of_every_step(
    workshop_env: dict[str, str], tmp_path: Path, host_unchanged: HostState
) -> None:
    cast = tmp_path / "process.cast"
    done = run_workshop(["run", "process", "--yes", "--quiet", "--record", str(cast)], workshop_env)
    assert done.returncode == 0, done.stdout[-2000:]
    header, *events = [json.loads(line) for line in cast.read_text().splitlines()]
    assert header["version"] == 2
    text = "".join(e[2] for e in events if e[1] == "o")
    for k in range(1, 7):
        assert f"step {k}/6" in text
    assert "unshare --uts /bin/sh" in text and "process: 6/6 steps passed" in text
    # one marker where each step starts, so a player can jump from step to step
    lesson = loader.load_lesson(REPO / "lessons" / "process" / "lesson.md")
    markers = [e for e in events if e[1] == "m"]
    assert [m[2] for m in markers] == [f"step {k}/6: {s.title}" for k, s in enumerate(lesson.steps, start=1)]
    assert [m[0] for m in markers] == sorted(m[0] for m in markers)


@pytest.mark.root
@pytest.mark.timeout(180)
def test_an_html_recording_shows_each_steps_diagram_after_the_step(
    workshop_env: dict[str, str], tmp_path: Path, host_unchanged: HostState
) -> None:
    require_tool("dot")
    page = tmp_path / "process.html"
    done = run_workshop(["run", "process", "--yes", "--quiet", "--record", str(page)], workshop_env)
    assert done.returncode == 0, done.stdout[-2000:]
    html = page.read_text()
    figures = re.findall(r'<figure class="diagram">(.*?)</figure>', html, re.S)
    # the state as the lesson starts, then one after each step, each after that step's text
    assert len(figures) == 7 and all(f.lstrip().startswith("<svg") for f in figures), html[-3000:]
    assert figures[0].endswith("<figcaption>the kernel state as the lesson starts</figcaption>")
    for k in range(1, 7):
        assert f"<figcaption>the kernel state after step {k}: " in figures[k]
        assert html.index(f"step {k}/6") < html.index(figures[k])
    assert "PID namespace" in figures[5] and "PID 1 · host" in figures[5], "step 5's clone()d child, PID 1 of its own"


@pytest.mark.root
@pytest.mark.timeout(180)
def test_a_run_workshop_typed_counts_as_progress_only_when_asked(
    workshop_env: dict[str, str], host_unchanged: HostState
) -> None:
    def listed() -> str:
        done = run_workshop(["list"], workshop_env)
        row = next(line for line in done.stdout.splitlines() if line.startswith("process "))
        return " ".join(row.split())

    watched = run_workshop(["run", "process", "--yes", "--quiet"], workshop_env)
    assert watched.returncode == 0, watched.stdout[-2000:]
    assert "completed" not in listed()  # workshop typed every line: the learner did nothing
    asked = run_workshop(["run", "process", "--yes", "--quiet", "--save-progress"], workshop_env)
    assert asked.returncode == 0, asked.stdout[-2000:]
    assert listed().endswith("✓ completed")


@pytest.mark.root
def test_under_sudo_progress_belongs_to_the_invoking_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nobody = pwd.getpwnam("nobody")
    monkeypatch.setenv("SUDO_USER", "nobody")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "root-xdg"))  # root's own setting is not theirs
    assert progress_file() == Path(nobody.pw_dir) / ".local" / "state" / "workshop" / "progress.json"
    owner = Owner(tmp_path, nobody.pw_uid, nobody.pw_gid)
    p = Progress(tmp_path / "state" / "workshop" / "progress.json", owner=owner)
    p.at("process", 0, 6)
    for made in (p.path, p.path.parent, p.path.parent.parent):
        assert (made.stat().st_uid, made.stat().st_gid) == (nobody.pw_uid, nobody.pw_gid), made


@pytest.mark.root
@pytest.mark.timeout(120)
def test_workshop_shell_lesson_opens_that_lesson(learner: Callable[..., Learner], host_unchanged: HostState) -> None:
    me = learner("shell", "process")
    opened = me.wait_for(lesson_prompt("process", 1, 6, "container"))
    assert "A container is just a process" in opened and "press Enter to run the first step" in opened
    me.type("quit")
    assert me.wait_exit() == 0

    typo = learner("shell", "proces")
    said = words(typo.wait_for("workshop ❯ "))
    assert "no lesson 'proces'; did you mean 'process'?" in said
    typo.type("quit")
    assert typo.wait_exit() == 0


# -- the central primitive, typed by the learner --------------------------------------------------------------------


def mounted_at(path: str) -> str | None:
    """The file system type mounted at `path` in this (the host's) mount namespace, read from the kernel."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == path:
            return fields[fields.index("-") + 1]
    return None


@pytest.mark.root
@pytest.mark.timeout(180)
def test_the_learner_mounts_the_overlay_themselves(
    learner: Callable[..., Learner], workshop_env: dict[str, str], host_unchanged: HostState
) -> None:
    me = learner("shell", "overlay")
    me.open_try_it("overlay", 2, 9, "host")  # after step 1 unpacked the image and made the directories
    [session] = session_ids(Path(workshop_env["WORKSHOP_STATE_DIR"]))
    merged1 = f"{workshop_env['WORKSHOP_STATE_DIR']}/sessions/{session}/merged1"

    me.type("mount -t overlay overlay -o lowerdir=rootfs,upperdir=upper1 merged1")  # no workdir: refused
    refused = words(me.wait_for(lesson_prompt("overlay", 2, 9, "host")))
    assert "still missing" in refused and "an overlay file system is mounted on merged1" in refused
    assert mounted_at(merged1) is None
    me.type("hint")
    assert "lowerdir=…,upperdir=…,workdir=…" in words(me.wait_for(lesson_prompt("overlay", 2, 9, "host")))

    # not the solution's text: absolute paths, another order, another source name
    me.type("mount -t overlay -o workdir=$PWD/work1,upperdir=$PWD/upper1,lowerdir=$PWD/rootfs none $PWD/merged1")
    assert "goal reached ✓" in me.wait_for(lesson_prompt("overlay", 3, 9, "host"))
    assert mounted_at(merged1) == "overlay"
    me.type("quit")
    assert me.wait_exit() == 0
    assert mounted_at(merged1) is None


@pytest.mark.root
@pytest.mark.timeout(180)
def test_the_learner_limits_the_cgroup_themselves(learner: Callable[..., Learner], host_unchanged: HostState) -> None:
    me = learner("shell", "cgroup-pids")
    shown = me.open_try_it(
        "cgroup-pids", 3, CGROUP_STEPS, "host"
    )  # after the image and a look at the machine's cgroups
    found = re.search(r"this session's cgroup is (/sys/fs/cgroup/\S+?)\.? Make it", shown)
    assert found, shown[-2000:]
    cgroup = Path(found.group(1))  # read off the screen, as a learner copies it

    me.type(f"mkdir {cgroup}")
    half = words(me.wait_for(f"cgroup-pids 3/{CGROUP_STEPS} host# "))
    assert "still missing" in half and "admits at most 5 processes" in half
    assert (cgroup / "pids.max").read_text().strip() == "max"
    me.type("hint")
    me.type("hint")
    assert "pids.max" in words(me.wait_for("hint: (2/2)"))

    me.type(f"printf '%d\\n' 5 | tee {cgroup}/pids.max")  # not the solution's `echo 5 >`
    assert "goal reached ✓" in me.wait_for(f"cgroup-pids 4/{CGROUP_STEPS} ")
    assert (cgroup / "pids.max").read_text().strip() == "5"
    me.type("quit")
    assert me.wait_exit() == 0
    assert not cgroup.exists()


def shells_beside(pid: int) -> list[int]:
    """Every `sh` in all of the pid, mnt, uts and net namespaces of process `pid`, read from /proc."""
    types = ("pid", "mnt", "uts", "net")
    ns = [os.readlink(f"/proc/{pid}/ns/{t}") for t in types]
    found = []
    for entry in Path("/proc").iterdir():
        try:
            shell = entry.name.isdigit() and (entry / "comm").read_text().strip() == "sh"
            if shell and [os.readlink(entry / "ns" / t) for t in types] == ns:
                found.append(int(entry.name))
        except OSError:
            continue  # gone meanwhile
    return found


def nspid_of(pid: int) -> list[int]:
    status = Path(f"/proc/{pid}/status").read_text()
    return [int(n) for n in status.split("NSpid:", 1)[1].splitlines()[0].split()]


@pytest.mark.root
@pytest.mark.timeout(180)
def test_the_learner_visits_the_container_with_nsenter_themselves(
    learner: Callable[..., Learner], host_unchanged: HostState
) -> None:
    me = learner("shell", "nsenter")
    shown = me.open_try_it("nsenter", 4, 10, "debug")  # after a container and half a visit
    found = re.search(r"the container's shell is PID (\d+) on the host", shown)
    assert found, shown[-2000:]
    container = int(found.group(1))

    me.type("nsenter --pid --mount /bin/sh")  # no target: nsenter says so, and the goal is not reached
    missing = words(me.wait_for("nsenter 4/10 debug# "))
    assert "still missing" in missing and "shares every namespace the container has of its own" in missing
    me.type("hint")
    me.wait_for("hint: (1/3)")
    assert "--pid" in words(me.wait_for("nsenter 4/10 debug# "))

    me.type(f"nsenter -t {container} -p -m -u -n -r -w sh")  # short options: not the solution's text
    assert "goal reached ✓" in me.wait_for("nsenter 5/10 ")
    # the kernel's view: a second shell in every namespace of the container, under the container's root
    visitors = [pid for pid in shells_beside(container) if pid != container]
    assert len(visitors) == 1, visitors
    assert nspid_of(visitors[0])[-1] > 1 and os.readlink(f"/proc/{visitors[0]}/root") == os.readlink(
        f"/proc/{container}/root"
    )
    me.type("quit")
    assert me.wait_exit() == 0


def links_in(netns: str | None) -> str:
    """`ip -o link` in the named network namespace (the host's for None), read through netlink by `ip`."""
    where = ["-n", netns] if netns else []
    return subprocess.run(["ip", *where, "-o", "link"], capture_output=True, text=True, check=True).stdout


@pytest.mark.root
@pytest.mark.timeout(240)
def test_the_learner_lays_the_veth_cable_themselves(learner: Callable[..., Learner], host_unchanged: HostState) -> None:
    me = learner("shell", "veth")
    shown = me.open_try_it("veth", 6, VETH_STEPS, "host")  # after a first container, its network and a named netns
    found = re.search(r"name the second container's namespace (ws[0-9a-f]+)-c2", shown)
    assert found, shown[-2000:]
    name = found.group(1)
    me.type("hint")
    hint = words(me.wait_for("hint: (1/3)") + me.wait_for(f"veth 6/{VETH_STEPS} host# "))
    c2 = re.search(r"the PID of c2's shell \((\d+)\)", hint)
    assert c2, hint

    me.type(f"ln -s /proc/{c2.group(1)}/ns/net /run/netns/{name}-c2")  # half the goal
    half = words(me.wait_for(f"veth 6/{VETH_STEPS} host# "))
    assert "still missing" in half and "one end of the pair is in each container" in half

    # not the solution's text: the pair made in c2's namespace, its peer sent to c1's, `peer` without `name`
    me.type(f"ip -n {name}-c2 link add {name}b type veth peer {name}a netns {name}-c1")
    assert "goal reached ✓" in me.wait_for(f"veth 7/{VETH_STEPS} ")
    assert f"{name}a@" in links_in(f"{name}-c1") and f"{name}b@" in links_in(f"{name}-c2")
    assert f"{name}a" not in links_in(None) and f"{name}b" not in links_in(None)
    me.type("quit")
    assert me.wait_exit() == 0
    assert not Path(f"/run/netns/{name}-c2").exists()


@pytest.mark.root
@pytest.mark.timeout(120)
def test_after_the_learner_cds_away_the_steps_type_absolute_paths(
    learner: Callable[..., Learner], state_dir: Path, host_unchanged: HostState
) -> None:
    me = learner("shell", "overlay")
    me.wait_for("press Enter to run the first step")
    me.type("console host")
    me.wait_for("lines you type now go to the host console")
    me.type("cd /")  # the learner wanders off; `rootfs` would now mean /rootfs
    total = len(loader.load_lesson(REPO / "lessons" / "overlay" / "lesson.md").steps)
    me.wait_for(f"overlay 1/{total} host# ")
    me.type("")
    step = words(me.wait_for(f"overlay 2/{total} "))
    work = state_dir / "sessions"
    assert re.search(rf"host# mkdir {re.escape(str(work))}/\w+/rootfs", step), step[-2000:]
    assert "✓ the image is unpacked" in step
    assert not Path("/rootfs").exists() and not Path("/upper1").exists()
    me.type("quit")
    assert me.wait_exit() == 0
