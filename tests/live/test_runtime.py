"""The capstone's runtime, `lessons/capstone/minicontainer.py`, on the real kernel: a container it starts has every
namespace of its own, its PID 1 is the requested command, `pids.max` is enforced, its root is the overlay over
the image, two of them ping each other through a switch, and after teardown nothing remains on the host.

Everything here is read from the kernel: /proc/PID/ns, NSpid, the container's own mountinfo, pids.events, the
exit status of a ping sent from inside a container's network namespace.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ci import IN_CI, require_tool
from tests.harness import REPO
from workshop.engine import cgroupfs, primitives
from workshop.engine.journal import Journal
from workshop.environment import Environment

RUNTIME = REPO / "lessons" / "capstone" / "minicontainer.py"
NAMESPACES = ("mnt", "uts", "ipc", "pid", "net", "cgroup")
SUBNET = "10.231.77"  # only ever used inside the switch namespace these tests make

pytestmark = pytest.mark.root


@dataclass
class Container:
    runtime: subprocess.Popen[str]
    pid: int
    """The container's PID 1, as the host numbers it."""
    state: Path
    log: Path

    def stop(self) -> int:
        """SIGTERM to the runtime, as a closed terminal or `kill` would: it stops the container and tears down."""
        self.runtime.send_signal(signal.SIGTERM)
        return self.runtime.wait(timeout=30)


def _tools() -> None:
    for tool in ("unshare", "nsenter", "ip", "tar"):
        require_tool(tool)


@pytest.fixture
def rootfs(image_dir: Path, tmp_path: Path) -> Path:
    """The image, unpacked: the lower layer of every container's overlay."""
    _tools()
    root = tmp_path / "rootfs"
    root.mkdir()
    subprocess.run(["tar", "-xf", str(image_dir / "images" / "rootfs.tar"), "-C", str(root)], check=True)
    return root


@pytest.fixture
def cgroup_for(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Container cgroup paths under the tool's prepared parent (v1 or v2), journaled so that they go whatever
    happens, and the parent with them."""
    layout = cgroupfs.current_layout(Environment())
    if not layout.pids_available:
        if IN_CI:
            pytest.fail(f"no pids controller, and CI=true: {layout.detail}")
        pytest.skip(layout.detail)
    plan = cgroupfs.plan_pids_cgroup(layout, f"rt{os.getpid()}", Path("/proc"))
    journal = Journal.create(tmp_path / "journal", f"runtime-{os.getpid()}", tmp_path)
    primitives.prepare_cgroup_parent(journal, layout, [plan])
    version = "v2" if layout.pids_on_v2 else "v1"

    def path(name: str) -> Path:
        cgroup = plan.path.parent / f"{plan.path.name}-{name}"
        journal.record("cgroup", str(cgroup), version=version)
        return cgroup

    yield path
    failed = [f"{u.entry.kind} {u.entry.target}: {u.outcome}" for u in journal.undo() if u.failed]
    assert not failed, failed


@pytest.fixture
def switch() -> Iterator[str]:
    """A network namespace of the test's own with a bridge `br0`, as the lesson's switch console makes it."""
    _tools()
    holder = subprocess.Popen(
        ["unshare", "-n", "sh", "-c", "ip link add br0 type bridge && ip link set br0 up && exec sleep 600"]
    )
    netns = f"/proc/{holder.pid}/ns/net"
    try:
        deadline = time.monotonic() + 10
        while _in_netns(netns, "ip", "link", "show", "br0").returncode != 0:
            assert holder.poll() is None and time.monotonic() < deadline, "the switch namespace did not come up"
            time.sleep(0.05)
        yield netns
    finally:
        holder.kill()
        holder.wait()


def _in_netns(netns: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nsenter", f"--net={netns}", *argv], capture_output=True, text=True, timeout=30)


def _ppid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (which has ended, and only waits to be collected)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        return []


def start(
    tmp_path: Path, name: str, options: list[str], command: list[str], runs: list[str] | None = None
) -> Container:
    """Runs the runtime and waits until its child has become `command` (exec done: the container runs), or
    `runs`, for a command that execs another one in the end."""
    state, log = tmp_path / name, tmp_path / f"{name}.log"
    argv = [sys.executable, str(RUNTIME), "run", "--name", name, "--state", str(state), *options, "--", *command]
    with open(log, "w") as out:
        runtime = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 20
    while True:
        children = [
            int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _ppid(int(p.name)) == runtime.pid
        ]
        ready = [pid for pid in children if _cmdline(pid) == (runs or command)]
        if ready:
            return Container(runtime, ready[0], state, log)
        if runtime.poll() is not None or time.monotonic() > deadline:
            runtime.terminate()  # it stops the container and tears down
            runtime.wait(timeout=30)
            pytest.fail(f"the container never ran {command}:\n{log.read_text()}")
        time.sleep(0.02)


def ns(pid: int | str, kind: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def nspid(pid: int) -> list[str]:
    line = next(ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("NSpid:"))
    return line.split()[1:]


def mounts_of(pid: int) -> list[tuple[str, str, str, str]]:
    """(mount point, propagation tags, fstype, super options) for every mount the process sees."""
    rows = []
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields = line.split()
        sep = fields.index("-")
        rows.append((fields[4], " ".join(fields[6:sep]), fields[sep + 1], fields[sep + 3]))
    return rows


def ping(container: Container, address: str) -> int:
    # the container's own busybox ping, in its network namespace: the packet never touches the host's
    argv = ["nsenter", f"--target={container.pid}", "--net", "--root", "ping", "-c", "1", "-W", "3", address]
    # up to three tries: the first packet waits for ARP on a fresh bridge, slow under emulation in the VM tier
    for _ in range(3):
        rc = subprocess.run(argv, capture_output=True, timeout=30).returncode
        if rc == 0:
            break
    return rc


# --- the lesson's stages, one by one ------------------------------------------------------------------------


def test_a_container_has_every_namespace_of_its_own_and_its_pid_1_is_the_command(
    rootfs: Path, tmp_path: Path, host_unchanged: object
) -> None:
    c = start(tmp_path, "rt-ns", ["--rootfs", str(rootfs), "--hostname", "box"], ["/bin/sleep", "60"])
    try:
        for kind in NAMESPACES:
            assert ns(c.pid, kind) != ns("self", kind), f"the container shares the host's {kind} namespace"
        # PID 1 of a new PID namespace, one level below the host's, and it is the command itself (exec, no wrapper)
        assert nspid(c.pid) == [str(c.pid), "1"]
        assert _cmdline(c.pid) == ["/bin/sleep", "60"]
        # the runtime itself stays on the host's side of every namespace
        for kind in NAMESPACES:
            assert ns(c.runtime.pid, kind) == ns("self", kind)
        hostname = subprocess.run(["nsenter", f"--target={c.pid}", "--uts", "hostname"], capture_output=True, text=True)
        assert hostname.stdout.strip() == "box"
    finally:
        assert c.stop() == 128 + signal.SIGKILL, c.log.read_text()
    assert not c.state.exists()


def test_its_root_is_the_overlay_over_the_image_and_nothing_of_the_host_is_mounted_in_it(
    rootfs: Path, tmp_path: Path, host_unchanged: object
) -> None:
    c = start(
        tmp_path,
        "rt-root",
        ["--rootfs", str(rootfs)],
        ["/bin/sh", "-c", "echo inside > /new.txt; exec sleep 60"],
        runs=["sleep", "60"],
    )
    try:
        mounts = mounts_of(c.pid)
        # exactly /, /proc and /dev: the old root was unmounted after pivot_root
        assert sorted(m[0] for m in mounts) == ["/", "/dev", "/proc"], mounts
        root = next(m for m in mounts if m[0] == "/")
        assert root[2] == "overlay"
        assert f"lowerdir={rootfs},upperdir={c.state}/upper,workdir={c.state}/work" in root[3]
        # every mount in there is private, even where the host's / is shared: nothing propagates either way
        assert all(m[1] == "" for m in mounts), mounts
        assert {m[2] for m in mounts} == {"overlay", "proc", "tmpfs"}
        # its /dev/null is a real device node, 1:3, and what it writes lands in its own layer, not in the image
        null = os.stat(f"/proc/{c.pid}/root/dev/null")
        assert (os.major(null.st_rdev), os.minor(null.st_rdev)) == (1, 3)
        assert (c.state / "upper" / "new.txt").read_text() == "inside\n"
        assert not (rootfs / "new.txt").exists()
        # the host's mount namespace never had the overlay
        assert f"{c.state}/merged" not in Path("/proc/self/mountinfo").read_text()
    finally:
        c.stop()
    assert not c.state.exists()


def test_pids_max_is_enforced_in_the_cgroup_the_container_is_born_in(
    rootfs: Path, tmp_path: Path, cgroup_for: Callable[[str], Path], host_unchanged: object
) -> None:
    cgroup = cgroup_for("bomb")
    # a bounded fork bomb in a subshell: when a fork fails, the subshell gives up and PID 1 goes on
    bomb = "( for i in 1 2 3 4 5 6 7 8 9 10; do sleep 60 & done ) 2>/dev/null; exec sleep 61"
    c = start(tmp_path, "rt-pids", ["--rootfs", str(rootfs), "--cgroup", str(cgroup), "--pids-max", "5"],
              ["/bin/sh", "-c", bomb], runs=["sleep", "61"])  # fmt: skip
    try:
        # start() returns once PID 1 has exec'd its last command: the bomb is over by then
        assert str(c.pid) in (cgroup / "cgroup.procs").read_text().split()
        assert (cgroup / "pids.max").read_text().strip() == "5"
        events = dict(line.split() for line in (cgroup / "pids.events").read_text().splitlines())
        assert int(events["max"]) >= 1, "the kernel refused no fork"
        assert 1 < int((cgroup / "pids.current").read_text()) <= 5
        # the runtime is not counted: it stayed in its own cgroup
        assert str(c.runtime.pid) not in (cgroup / "cgroup.procs").read_text().split()
    finally:
        c.stop()
    assert not cgroup.exists()


def test_two_containers_ping_each_other_through_the_switch_and_nothing_else(
    rootfs: Path, tmp_path: Path, cgroup_for: Callable[[str], Path], switch: str, host_unchanged: object
) -> None:
    def net(name: str, last: int) -> list[str]:
        return ["--rootfs", str(rootfs), "--cgroup", str(cgroup_for(name)), "--net", switch, "--bridge", "br0",
                "--ip", f"{SUBNET}.{last}/24"]  # fmt: skip

    one = start(tmp_path, "rt-one", net("one", 2), ["/bin/sleep", "60"])
    two = start(tmp_path, "rt-two", net("two", 3), ["/bin/sleep", "60"])
    try:
        assert ns(one.pid, "net") != ns(two.pid, "net")
        assert ping(one, f"{SUBNET}.3") == 0
        assert ping(two, f"{SUBNET}.2") == 0
        # both cables end at the bridge, in the switch's namespace; the host's has neither end
        ports = _in_netns(switch, "ip", "-o", "link", "show", "master", "br0").stdout
        assert "rt-one@" in ports and "rt-two@" in ports
        assert not (Path("/sys/class/net") / "rt-one").exists()
        addr = _in_netns(f"/proc/{one.pid}/ns/net", "ip", "-o", "addr", "show", "dev", "eth0").stdout
        assert f"inet {SUBNET}.2/24" in addr
    finally:
        one.stop()
        two.stop()
    assert _in_netns(switch, "ip", "-o", "link", "show", "master", "br0").stdout == ""


def test_teardown_after_the_runtime_was_killed_leaves_nothing_and_can_run_twice(
    rootfs: Path, tmp_path: Path, cgroup_for: Callable[[str], Path], switch: str, host_unchanged: object
) -> None:
    cgroup = cgroup_for("orphan")
    where = ["--cgroup", str(cgroup), "--net", switch]
    c = start(tmp_path, "rt-orphan", ["--rootfs", str(rootfs), *where, "--ip", f"{SUBNET}.9/24"], ["/bin/sleep", "60"])
    c.runtime.kill()  # SIGKILL: no chance to clean up; the container lives on, orphaned
    c.runtime.wait()
    assert _alive(c.pid) and str(c.pid) in (cgroup / "cgroup.procs").read_text().split()
    assert _in_netns(switch, "ip", "link", "show", "rt-orphan").returncode == 0
    teardown = [sys.executable, str(RUNTIME), "teardown", "--name", "rt-orphan", "--state", str(c.state), *where]
    for _ in range(2):
        done = subprocess.run(teardown, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
    deadline = time.monotonic() + 5
    while _alive(c.pid):
        assert time.monotonic() < deadline, "the orphaned container survived teardown"
        time.sleep(0.05)
    assert not cgroup.exists()
    assert not c.state.exists()
    assert _in_netns(switch, "ip", "link", "show", "rt-orphan").returncode != 0


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--ip", "10.231.77.2"], "--ip needs --net"),
        (["--net", "/proc/self/ns/net", "--ip", "10.231.77.2/24"], "the host's own network namespace"),
        (["--net", "/nonexistent/netns", "--ip", "10.231.77.2/24"], "no network namespace"),
        (["--rootfs", "/proc/self"], "not an unpacked image"),
        (["--pids-max", "3"], "--pids-max needs --cgroup"),
        (["--cgroup", "/tmp/not-a-cgroup/x"], "its parent is not a cgroup"),
    ],
)
def test_bad_input_is_one_clear_line_and_nothing_is_made(
    options: list[str], says: str, tmp_path: Path, host_unchanged: object
) -> None:
    state = tmp_path / "bad"
    argv = [sys.executable, str(RUNTIME), "run", "--name", "bad", "--state", str(state), *options, "--", "/bin/true"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert says in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not state.exists()


def test_a_second_container_cannot_take_the_first_ones_cgroup_or_cable(
    rootfs: Path, tmp_path: Path, cgroup_for: Callable[[str], Path], switch: str, host_unchanged: object
) -> None:
    cgroup = cgroup_for("taken")
    first = start(tmp_path, "rt-first", ["--cgroup", str(cgroup)], ["/bin/sleep", "60"])
    cable = start(tmp_path, "rt-cable", ["--net", switch, "--ip", f"{SUBNET}.5/24"], ["/bin/sleep", "60"])
    try:
        for options, says in [
            (["--cgroup", str(cgroup)], "holds processes already"),
            (["--net", switch, "--ip", f"{SUBNET}.6/24"], "has a link rt-cable already"),
        ]:
            argv = [sys.executable, str(RUNTIME), "run", "--name", "rt-cable", "--state", str(tmp_path / "second"),
                    *options, "--", "/bin/true"]  # fmt: skip
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            assert done.returncode == 1 and says in done.stderr, done.stderr
        # the refused start tore nothing down: the first containers still run in their cgroup, with their cable
        assert _alive(first.pid) and str(first.pid) in (cgroup / "cgroup.procs").read_text().split()
        assert _alive(cable.pid)
        assert _in_netns(switch, "ip", "link", "show", "rt-cable").returncode == 0
    finally:
        first.stop()
        cable.stop()
