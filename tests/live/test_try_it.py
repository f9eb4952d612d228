"""A learner types each lesson's try-it steps: once something that misses the goal (and is told what is still
missing, and asks for a hint), then a correct variant that is not the solution's text. The goal is the step's own
check, which reads the kernel (and `tests/live/test_sabotage.py` proves that it notices when the step's primitive
is missing).

The steps with a longer story of their own (the PID 1 shell, the overlay mount, the cgroup, the veth cable, the
full nsenter visit) are in test_learner.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.harness import REPO
from tests.hygiene import HostState
from tests.terminal import Learner, lesson_prompt, words
from workshop.lesson import loader


def said(screen: str, pattern: str) -> str:
    """What the step's text told the learner, found by `pattern`'s group (its last mention)."""
    found = re.findall(pattern, screen)
    assert found, f"{pattern!r} not on the screen: {screen[-2000:]}"
    return str(found[-1])


def host_pid_of_container(screen: str) -> str:
    """The container shell's host PID, as the step's text tells the learner."""
    return said(screen, r"PID (\d+) on the host")


def lesson_cgroup(screen: str) -> str:
    """The lesson's cgroup, as the step's text tells the learner."""
    return said(screen, r"The lesson's cgroup is (/sys/fs/cgroup/\S+?)\.?\s")


def lesson_net(screen: str) -> str:
    """The veth lesson's subnet, as the challenge tells the learner."""
    return said(screen, r"ping (\d+\.\d+\.\d+)\.1 now fails")


def lesson_name(screen: str) -> str:
    """The veth lesson's prefix for names, read off the bridge typed in an earlier step."""
    return said(screen, r"ip link add dev (\S+)br type bridge")


MEMORY_CG = r"memory cgroup (/sys/fs/cgroup/\S+?-memory)"
CPU_CG = r"cpu cgroup (/sys/fs/cgroup/\S+?-cpu)"
BOX = r"name its machine (box-[0-9a-z]+)"
PODMAN_NAME = r"--name (ws[0-9a-f]+)"


def podman(screen: str) -> str:
    """podman with the lesson's storage, as a learner types it in the host console, which stands in the work dir."""
    return (
        f"CONTAINERS_CONF=$PWD/containers.conf podman --root $PWD/podman/root "
        f"--runroot /run/{said(screen, PODMAN_NAME)}-podman --tmpdir $PWD/podman/tmp --runtime runc "
        "--runtime-flag root=$PWD/podman/runc --cgroup-manager cgroupfs --events-backend file"
    )


PODMAN_PARENT = r"--cgroup-parent (/[\w/-]+)"
NETNS = r"Name c1.s namespace (\S+?-c1)"
MOVED = r"move (\S+?)m2 into c2.s namespace"


@dataclass(frozen=True)
class TryIt:
    lesson: str
    step: int
    console: str
    wrong: Callable[[str], str]
    """A line that does not reach the goal (given the screen so far)."""
    missing: str
    """Words of the check the learner is told is still missing (the comment above the assertion that failed)."""
    variant: Callable[[str], str]
    """A correct line that is not the solution's text."""

    def __str__(self) -> str:
        return f"{self.lesson}-{self.step}"

    @property
    def total(self) -> int:
        return len(loader.load_lesson(REPO / "lessons" / self.lesson / "lesson.md").steps)


TRY_ITS = [
    # the clone()d PID 1 shrugs off SIGTERM; SIGKILL, spelled another way, ends it
    TryIt("process", 6, "host", lambda _: "kill -TERM $(pgrep -n -f clone.py)",
          "killing it from the host ended", lambda _: "kill -s KILL $(pgrep -n -f clone.py)"),
    # ps in the chroot shows nothing until proc is mounted; the source name is free
    TryIt("chroot", 4, "container", lambda _: "ps",
          "the proc mount landed in the host's mount table", lambda _: "mount -t proc none /proc"),
    # both PID 1s, in the other order, with a numbered signal
    TryIt("unshare-pid", 11, "host", lambda _: "kill -TERM $pid1",
          "the container's init is gone", lambda s: f"kill -9 {host_pid_of_container(s)} $pid1"),
    # leaving the IPC shell is not yet a container; short options are
    TryIt("namespaces", 7, "container", lambda _: "exit", "the container is PID 1 in new PID, mount, UTS and IPC",
          lambda _: "unshare -f -p -m -u -i --kill-child --mount-proc=rootfs/proc chroot rootfs sh"),
    # looking is not writing; touch creates the file as well as echo
    TryIt("overlay", 5, "container", lambda _: "ls /",
          "the new file is in container 1's upper dir", lambda _: "touch /hello.txt"),
    # reading the list of processes empties nothing; the container's PID 1 killed takes everything with it
    TryIt("cgroup-pids", 8, "host", lambda s: f"cat {lesson_cgroup(s)}/cgroup.procs",
          "the container is gone and the kernel counts no process", lambda s: f"kill -9 {host_pid_of_container(s)}"),
    # showing lo does not switch it on
    TryIt("veth", 3, "c1", lambda _: "ip link show lo",
          "lo is up in the container's namespace", lambda _: "ip link set dev lo up"),
    # a shell that joined nothing; then nsenter with short options
    TryIt("nsenter", 3, "debug", lambda _: "ps -e | wc -l",
          "the visitor shell is in the container's PID namespace",
          lambda s: f"nsenter -p -t {host_pid_of_container(s)} sh"),
    # one sleep fits; six more do not
    TryIt("capstone", 5, "c1", lambda _: "sleep 30 &",
          "the kernel refused forks in the container's cgroup", lambda _: "for i in $(seq 6); do sleep 60 & done"),
    # leaving the shell is what closes its UTS namespace
    TryIt("process", 4, "container", lambda _: "echo $$",
          "leaving the shell closed its UTS namespace", lambda _: "exit 0"),
    # a new UTS namespace and the name, in one line
    TryIt("namespaces", 1, "container", lambda _: "hostname", "the container shell has a UTS namespace of its own",
          lambda s: f"unshare -u sh -c 'hostname {said(s, BOX)}; exec sh'"),
    # nobody by name rather than by number
    TryIt("namespaces", 3, "rootless", lambda _: "cd /", "the rootless console's shell runs as uid 65534",
          lambda _: "setpriv --reuid nobody --regid nogroup --clear-groups sh"),
    # the escape, given absolute paths
    TryIt("chroot", 6, "container", lambda _: "ls", "it is the escaped script itself: a shell exec'ed by it",
          lambda _: 'python3 escape.py "$PWD/rootfs" "$PWD/host-only.txt"'),
    # join.py told which namespaces, in another order
    TryIt("nsenter", 7, "debug", lambda _: "hostname", "the shell exec'ed by the script is in the container's UTS",
          lambda s: f"python3 join.py {host_pid_of_container(s)} net uts"),
    # a visit that only looks leaves no file; short options and another quoting do
    TryIt("capstone", 8, "host", lambda s: f"nsenter --target {host_pid_of_container(s)} --all hostname",
          "the visitor's file is in c1's layer",
          lambda s: f"nsenter -t {host_pid_of_container(s)} -a sh -c 'echo left by a visitor >/visit.txt'"),
    # listing names makes none; a link made with -f, after mkdir in the same line, does
    TryIt("veth", 4, "host", lambda _: "ip netns list", "ip netns knows the name",
          lambda s: f"mkdir -p /run/netns && ln -sf /proc/{host_pid_of_container(s)}/ns/net "
          f"/run/netns/{said(s, NETNS)}"),
    # CAP_SYS_ADMIN left out of the bounding set, with setpriv's other spelling and short unshare options
    TryIt("capabilities", 3, "container", lambda _: "grep CapEff /proc/self/status",
          "the container's shell is PID 1 without CAP_SYS_ADMIN",
          lambda _: "unshare -p -f -m -u -n --kill-child --mount-proc=rootfs/proc "
          "setpriv --bounding-set=-sys_admin chroot rootfs sh"),
    # a visitor without CAP_NET_RAW (and one more capability dropped), with nsenter's short options
    TryIt("capabilities", 6, "visitor", lambda _: "echo hi", "but not its CAP_NET_RAW",
          lambda s: f"setpriv --bounding-set=-net_raw,-sys_time nsenter -t {host_pid_of_container(s)} -a -r -w sh"),
    # the filter with the syscalls in another order and an absolute root
    TryIt("capabilities", 7, "container", lambda _: "ls", "runs under one seccomp filter",
          lambda _: 'python3 seccomp_deny.py mkdirat mkdir -- chroot "$PWD/rootfs" sh'),
    # looking moves nothing; moved by the PID of a process in the namespace instead of its name
    TryIt("veth", 11, "host", lambda s: f"ip -n {said(s, MOVED)}-kept -br link",
          "the pair's second end left the kept namespace",
          lambda s: f"ip -n {said(s, MOVED)}-kept link set dev {said(s, MOVED)}m2 netns {host_pid_of_container(s)}"),
    # SIGTERM to the sleep, PID 1 of its namespace, does nothing; the parent unshare killed takes it along
    TryIt("unshare-pid", 9, "host", lambda _: "kill -TERM $(cut -d' ' -f2 pdeathsig.pids)",
          "killing unshare killed its child", lambda _: "kill -9 $parent"),
    # looking at the hierarchy makes no cgroup; a lowercase suffix, written to whichever file this version has
    TryIt("cgroup-limits", 2, "host", lambda _: "ls /sys/fs/cgroup", "the memory cgroup exists, empty, with a limit",
          lambda s: f"mkdir {said(s, MEMORY_CG)}; for f in memory.max memory.limit_in_bytes; do "
          f"[ -e {said(s, MEMORY_CG)}/$f ] && echo 32m > {said(s, MEMORY_CG)}/$f; done; true"),
    # a cgroup without a quota throttles nothing; the quota as the v1 or v2 file has it
    TryIt("cgroup-limits", 5, "host", lambda s: f"mkdir {said(s, CPU_CG)}", "with a quota of 20000",
          lambda s: f"if [ -e {said(s, CPU_CG)}/cpu.max ]; then echo '20000 100000' > {said(s, CPU_CG)}/cpu.max; "
          f"else echo 20000 > {said(s, CPU_CG)}/cpu.cfs_quota_us; fi"),
    # the four challenges: a broken setup and a goal, no recipe
    # a proc of the container's own, mounted over the host's without unmounting it first
    TryIt("unshare-pid", 12, "container", lambda _: "ps",
          "the container's /proc is its own", lambda _: "mount -t proc none /proc"),
    # pivot_root refused on shared mounts; made private in the container's namespace, it works
    TryIt("mount-ns", 12, "container", lambda _: "findmnt -o TARGET,PROPAGATION",
          "the container's root is the image directory",
          lambda _: 'mount --make-rprivate / && pivot_root "$PWD" "$PWD/old-root"'),
    # the limit holds once the container's PID 1 is in the cgroup
    TryIt("cgroup-pids", 9, "host", lambda s: f"cat /proc/{host_pid_of_container(s)}/cgroup",
          "the container's shell is in the lesson's cgroup now",
          lambda s: f"printf '%s\\n' {host_pid_of_container(s)} > {lesson_cgroup(s)}/cgroup.procs"),
    # c2's end lost its address; another address of the subnet mends it
    TryIt("veth", 14, "c2", lambda _: "ip route", "c2 reaches c1 over the bridge again",
          lambda s: f"ip addr add {lesson_net(s)}.9/24 dev {lesson_name(s)}e2"),
    # listing containers starts none; the options in another order, spelled with '=', start it
    TryIt("podman", 2, "host", lambda s: f"{podman(s)} ps", "the container's sleep runs",
          lambda s: f"{podman(s)} run --network=none --cgroup-parent={said(s, PODMAN_PARENT)} --pids-limit=10 "
          f"--ulimit nproc=1024:1024 --ulimit nofile=1024:1024 -d --name={said(s, PODMAN_NAME)} workshop-busybox "
          "sleep 999"),
    # one command in the container forks once; a while loop of fifteen sleeps meets the limit
    TryIt("podman", 5, "host", lambda s: f"{podman(s)} exec {said(s, PODMAN_NAME)} true",
          "the kernel refused forks in the container's cgroup",
          lambda s: f"{podman(s)} exec {said(s, PODMAN_NAME)} sh -c 'i=0; while [ $i -lt 15 ]; do sleep 60 & "
          "i=$((i+1)); done'"),
]  # fmt: skip


@pytest.mark.root
@pytest.mark.timeout(240)
@pytest.mark.parametrize("step", TRY_ITS, ids=str)
def test_the_learner_types_the_step_misses_gets_a_hint_then_reaches_the_goal(
    step: TryIt, learner: Callable[..., Learner], host_unchanged: HostState
) -> None:
    me = learner("shell", step.lesson)
    shown = me.open_try_it(step.lesson, step.step, step.total, step.console)
    assert "The goal: ○" in shown, "the goal is shown before the learner types"
    screen = words(me.screen(tail=1_000_000))
    here = lesson_prompt(step.lesson, step.step, step.total, step.console)

    me.type(step.wrong(screen))
    missed = words(me.wait_for(here))
    assert "still missing" in missed and step.missing in missed, missed[-2000:]
    me.type("hint")
    assert "hint: (1/" in me.wait_for(here)

    me.type(step.variant(words(me.screen(tail=1_000_000))))
    reached = words(me.wait_for("goal reached ✓") + me.wait_for("step done"))
    assert "still missing" not in reached, reached[-2000:]
    me.type("quit")
    assert me.wait_exit() == 0
