"""The curriculum as data: what a lesson is, independent of files, consoles and the kernel.

Everything here is frozen and free of I/O; `loader` builds it from lesson files, `runner` interprets it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

HOST = "host"
"""The console every lesson has: a root shell on the host, in the tool's own namespaces."""

VIEWS: tuple[str, ...] = ("mounts", "cgroups", "links", "limits")
"""Extra views a lesson may ask for (`observe:`), beyond pstree and namespaces; drawn by `extras`."""

REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "root": ("root",),
    "rootfs": ("rootfs", "busybox", "tool:tar"),
    "unshare": ("tool:unshare", "ns:pid", "ns:mnt", "ns:uts"),
    "nsenter": ("tool:nsenter",),
    "chroot": ("tool:chroot",),
    "mount": ("tool:mount", "tool:umount"),
    "pstree": ("tool:pstree",),
    "overlay": ("overlay", "statedir", "tool:mount", "tool:umount", "ns:mnt"),
    "cgroup-pids": ("cgroup:pids",),
    "cgroup-memory": ("cgroup:memory",),
    "cgroup-cpu": ("cgroup:cpu",),
    # The veth lesson's last steps put a bridge in a network namespace of its own.
    "veth": ("veth", "bridge", "tool:ip", "ns:net"),
    "netns": ("tool:ip", "ns:net"),
    "userns": ("ns:user", "userns"),
    "ipc": ("ns:ipc",),
    "time": ("ns:time",),
    "cgroupns": ("ns:cgroup",),
    "python": ("tool:python3",),
    "capsh": ("tool:capsh",),
    "setpriv": ("tool:setpriv",),
    "seccomp": ("seccomp",),
    # The last lesson runs a real runtime beside the hand-built container; podman is offered, not installed by setup.
    "podman": ("tool:podman", "tool:runc"),
}
"""What a lesson may `require`, and the machine checks (`doctor` finding keys) each word stands for. Here, with
the lesson format, so that reading a lesson never needs the machine checks; `doctor` runs them."""


@dataclass(frozen=True)
class Where:
    """A place in a lesson file, so every error can say `file:line`."""

    file: Path
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Run:
    """Commands typed into one console, one line at a time, as a learner would."""

    console: str
    """Name of the console (`host`, `container`, …) the lines are typed into."""
    lines: tuple[str, ...]
    """Each line is sent on its own and waited for; a line may start a nested shell (`unshare … /bin/sh`), and the
    following lines are then typed into that shell."""
    where: Where
    timeout: float = 30.0
    """Seconds each line may take before the console is interrupted with Ctrl-C."""
    rc: int | None = 0
    """Exit status the last line must end with; None accepts any (for a step that shows a failure)."""
    try_it: bool = False
    """A "try it" block (```run host try): in learner mode the learner types these lines themselves and the step's
    checks tell them when the goal is reached; `skip` (and `workshop run`) type them instead."""


@dataclass(frozen=True)
class Check:
    """A shell script run on the host after the step; exit status 0 means the step did what it teaches."""

    description: str
    """What the check proves, in the learner's words (the script's leading `#` comment)."""
    script: str
    where: Where


@dataclass(frozen=True)
class Expect:
    """A line of text that must appear in a console's output during the step (a regular expression)."""

    console: str
    pattern: str
    where: Where


@dataclass(frozen=True)
class Creates:
    """A resource a step is about to create, journaled before the step runs so it is undone whatever happens.

    `kind` is one of `mount`, `path`, `dir`, `netns`, `link`, `cgroup`, `podman`; `target` is a path or name (a
    template).
    `dir` is a directory the host may already have (`/run/netns`): it is undone only if the tool created it, by
    the last session using it.
    """

    kind: str
    target: str
    where: Where


@dataclass(frozen=True)
class Sabotage:
    """How to take a step's primitive out: text of its run blocks and what it becomes. Never run by the tool;
    the test suite runs the lesson so changed and expects exactly this step's check to fail, which proves that
    the check sees the kernel state the step teaches and not merely that commands ran."""

    old: str
    """Lines of one of the step's run blocks, as written in the file (joined by newlines)."""
    new: str
    """What they become; empty to delete them."""
    where: Where
    none: str = ""
    """Instead of a change (`none: WHY`): why the step has nothing to take out, e.g. it only looks at how the
    machine is set up, which no lesson may change. Such a step is counted as not proven."""


@dataclass(frozen=True)
class Step:
    title: str
    prose: str
    """Markdown shown before the commands run."""
    runs: tuple[Run, ...]
    checks: tuple[Check, ...]
    where: Where
    hints: tuple[str, ...] = ()
    expects: tuple[Expect, ...] = ()
    creates: tuple[Creates, ...] = ()
    examples: tuple[str, ...] = ()
    """Code shown but never run (a fenced block with any other tag, e.g. `python`)."""
    notes: tuple[str, ...] = ()
    """Presenter notes (```notes blocks): shown only in trainer mode and in the slides' notes view."""
    sabotage: Sabotage | None = None
    """The change that must make this step's check fail (```sabotage); for the test suite, not the learner."""

    @property
    def is_try_it(self) -> bool:
        """The learner is asked to type at least one of this step's blocks."""
        return any(r.try_it for r in self.runs)


@dataclass(frozen=True)
class Lesson:
    id: str
    """Stable identifier used by `workshop start ID`, progress files and docs."""
    title: str
    summary: str
    """Markdown shown when the lesson starts."""
    steps: tuple[Step, ...]
    path: Path
    """The lesson file; its folder holds helper files the lesson refers to as `{{lessondir}}`."""
    order: int = 100
    """Position in the curriculum (`workshop list` sorts by it)."""
    requires: tuple[str, ...] = ()
    """Words from `REQUIREMENTS` (root, rootfs, unshare, overlay, cgroup-pids, …)."""
    consoles: tuple[str, ...] = (HOST,)
    """Consoles the lesson opens, in display order; `host` is always first."""
    observe: tuple[str, ...] = ()
    """Extra views after each step, beyond pstree and namespaces: `mounts`, `cgroups`, `links`."""
    outro: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    """Lesson-defined variables (front matter `vars`), themselves templates over the engine's variables."""

    @property
    def lessondir(self) -> Path:
        return self.path.parent
