"""A lesson in progress: its consoles, work dir, journal, variables and the last observation.

`start()` journals the session's catch-all resources before anything exists; `close()` undoes everything. The
lesson driver (`driver.py`) drives lessons through this class and `runner`, for every front end.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from pathlib import Path

from workshop.engine import cgroupfs, primitives, signals
from workshop.engine.consoles import BASE_ENV, Console
from workshop.engine.events import CleanedUp, LessonStarted, Observed, Sink
from workshop.engine.journal import Journal, claimed_elsewhere, hostname_before, made_by_workshop, make_shared_dir
from workshop.environment import Environment
from workshop.lesson import variables
from workshop.lesson.model import Lesson
from workshop.observe import process_diff, process_tree, procfs, resources
from workshop.observe.common import Scope
from workshop.observe.limits import LimitPlace

LIBMOUNT_DIR = "/run/mount"
"""Where util-linux's mount and umount keep their lock and utab; the first `mount` a lesson types on a machine that
never ran one since boot makes it. Removed again when empty, like /run/netns."""

BLOB_CACHE_ROOT = "/var/lib/containers"
"""Where podman keeps its blob-info cache whatever its --root (see `_record_podman`)."""


def new_session_id() -> str:
    return secrets.token_hex(3)


class LessonSession:
    def __init__(self, env: Environment, lesson: Lesson, sink: Sink, session_id: str | None = None) -> None:
        self.env = env
        self.lesson = lesson
        self.sink = sink
        self.id = session_id or new_session_id()
        self.workdir = env.sessions_dir / self.id
        self.consoles: dict[str, Console] = {}
        self.journal: Journal | None = None
        self.position = 0
        """Index of the next step to run."""
        self.passed: set[int] = set()
        self.last_run: int | None = None
        """Index of the step run most recently (what `again` re-runs)."""
        self.last: process_tree.Snapshot | None = None
        self.last_extras: resources.ExtrasSnapshot | None = None
        """The lesson's extra views as last shown (what the next ones are compared with)."""
        self.active = lesson.consoles[-1]
        """The console free-typed lines go to: the one the last step used."""
        self._before: dict[str, str] = {}
        self._net: str | None = None
        self._layout: cgroupfs.CgroupLayout | None = None
        self._plans: dict[str, cgroupfs.CgroupPlan] = {}

    # -- life cycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.journal = Journal.create(self.env.journal_dir, self.id, self.workdir)
        # catch-alls first, so they are undone last: processes die, then mounts go, then the files
        self.journal.record("hostname", hostname_before(self.env.journal_dir, self.id))
        if not os.path.lexists(LIBMOUNT_DIR) or claimed_elsewhere(self.env.journal_dir, "dir", LIBMOUNT_DIR, self.id):
            self.journal.record("dir", LIBMOUNT_DIR)  # not made here: whichever `mount` a lesson types makes it
        self.journal.record("path", str(self.workdir))
        self.journal.record("mounts-under", str(self.workdir))
        self.journal.record("session-procs", str(self.workdir))
        self.workdir.mkdir(parents=True, mode=0o755)
        helpers = self._copy_helpers()
        # `python3` in a command is the interpreter running workshop (its helpers need nothing else)
        path = {"PATH": f"{Path(sys.executable).parent}:{BASE_ENV['PATH']}"}
        for name in self.lesson.consoles:
            console = Console(name, self.id, cwd=self.workdir, env=path, proc_root=self.env.proc_root)
            console.start()
            self.consoles[name] = console
        self.sink(LessonStarted(self.lesson, self.id, str(self.workdir), helpers))
        self.observe()

    def _copy_helpers(self) -> tuple[str, ...]:
        """The lesson's files its commands run, copied into the work dir (removed with it), so that a command typed
        there names them as `escape.py`; the lesson folder may not be writable, or shared by several learners."""
        lines = [line for step in self.lesson.steps for run in step.runs for line in run.lines]
        names = variables.helper_files([*lines, *self.lesson.variables.values()])
        for name in names:
            shutil.copy2(self.lesson.lessondir / name, self.workdir / name)
        return tuple(names)

    def close(self) -> CleanedUp:
        removed: list[str] = []
        failed: list[str] = []
        with signals.held():
            for console in self.consoles.values():
                console.close()
            self.consoles.clear()
            if self.journal is not None:
                for undone in self.journal.undo():
                    text = f"{undone.entry.kind} {undone.entry.target}: {undone.outcome}"
                    if undone.failed:
                        failed.append(text)
                    elif undone.outcome != "already gone":
                        removed.append(text)
                self.journal = None
        event = CleanedUp(tuple(removed), tuple(failed))
        self.sink(event)
        return event

    @property
    def finished(self) -> bool:
        return self.position >= len(self.lesson.steps)

    # -- variables ------------------------------------------------------------------------------------------------
    def value(self, name: str) -> str:
        builtin = variables.BUILTINS.get(name)
        if builtin is not None:
            return builtin.value(self)
        if name in self.lesson.variables:
            return variables.substitute(self.lesson.variables[name], self.value)
        frozen = self._before.get(name.removeprefix("before.pid.")) if name.startswith("before.pid.") else None
        if frozen is not None:
            return frozen
        prefix, _, console_name = name.rpartition(".")
        console = self.consoles.get(console_name)
        if console is not None and prefix in ("pid", "before.pid"):
            return str(console.focus_pid())
        if console is not None and prefix == "shell":
            return str(console.pid)
        raise variables.UnknownVariable(name)

    # the facts the built-in variables are read from (see `variables.SessionFacts`)
    @property
    def image_path(self) -> Path:
        return self.env.image_path

    @property
    def lessondir(self) -> Path:
        return self.lesson.lessondir

    def cgroup_path(self, controller: str) -> str:
        return str(self.cgroup_plan(controller)[1].path)

    def cgroup_facts(self) -> tuple[str, str]:
        layout = self.cgroup_layout()
        first = next((c for c in cgroupfs.CONTROLLERS if layout.root_of(c) is not None), "pids")
        return "v2" if layout.on_v2(first) else "v1", layout.detail

    def cgroup_relative(self) -> str:
        layout, plan = self.cgroup_plan()
        root = layout.root_of("pids")
        assert root is not None  # a plan exists only where there is a pids controller
        return f"/{plan.path.relative_to(root)}"

    def subnet(self) -> str:
        if self._net is None:
            assert self.journal is not None
            self._net = primitives.lease_subnet(self.journal, self.env.journal_dir)
        return self._net

    def cgroup_layout(self) -> cgroupfs.CgroupLayout:
        if self._layout is None:
            self._layout = cgroupfs.current_layout(self.env)
        return self._layout

    def cgroup_plan(self, controller: str = "pids") -> tuple[cgroupfs.CgroupLayout, cgroupfs.CgroupPlan]:
        """Where this session's cgroup for `controller` goes on this machine (v1 or v2): `ws<session>` for pids,
        `ws<session>-memory` and `ws<session>-cpu` beside it (on v2 they share a parent). Computed once, creates
        nothing."""
        if controller not in self._plans:
            name = f"ws{self.id}" if controller == "pids" else f"ws{self.id}-{controller}"
            layout = self.cgroup_layout()
            self._plans[controller] = cgroupfs.plan_cgroup(layout, controller, name, self.env.proc_root)
        return self.cgroup_layout(), self._plans[controller]

    def record_created(self, kind: str, target: str) -> None:
        """Journals a resource a step is about to create (its `creates` block), preparing what it needs first."""
        assert self.journal is not None
        if kind == "dir":
            # the host's own directory is never ours to remove; one another session made is co-owned, since that
            # session may end first, and then the last one out removes it
            if not os.path.lexists(target):
                self.journal.record(kind, target)
                make_shared_dir(target)
            elif made_by_workshop(target) or claimed_elsewhere(self.env.journal_dir, kind, target, self.id):
                self.journal.record(kind, target)
            return
        if kind == "path":
            if not os.path.lexists(target) or claimed_elsewhere(self.env.journal_dir, kind, target, self.id):
                self.journal.record(kind, target)
            return
        if kind == "cgroup":
            layout, plans = self._plans_for(Path(target))
            primitives.prepare_cgroup_parent(self.journal, layout, plans)
            self.journal.record("cgroup", target, version="v2" if layout.on_v2(plans[0].controller) else "v1")
            return
        if kind == "podman":
            self._record_podman(target)
            return
        self.journal.record(kind, target)

    def _plans_for(self, target: Path) -> tuple[cgroupfs.CgroupLayout, list[cgroupfs.CgroupPlan]]:
        """The plans of the lesson's controllers (its `cgroup-*` requirements; pids when it names none) whose parent
        is the target's: on v1 one hierarchy's, on v2 all of them, switched on together before the parent."""
        wanted = [c for c in cgroupfs.CONTROLLERS if f"cgroup-{c}" in self.lesson.requires] or ["pids"]
        layout = self.cgroup_layout()
        plans = [self.cgroup_plan(c)[1] for c in wanted]
        mine = [p for p in plans if p.path.parent == target.parent]
        if not mine:
            places = ", ".join(str(p.path.parent) for p in plans)
            raise cgroupfs.CgroupError(f"{target} is not where this lesson's cgroups go ({places})")
        return layout, mine

    def _record_podman(self, target: str) -> None:
        """podman with `--cgroup-parent {{cgroup_path}}` makes that path (and its cgroups below) in every hierarchy,
        not only in the pids one; with another parent (a learner's typo, or none: `libpod_parent`) it makes that one.
        The session's cgroup is journaled as a `cgroup` (killed and removed in the pids hierarchy), the rest with the
        storage dir, with the cgroups the machine has now (three levels deep), so cleanup removes only new ones."""
        assert self.journal is not None
        layout, plan = self.cgroup_plan()
        primitives.prepare_cgroup_parent(self.journal, layout, [plan])
        self.journal.record("cgroup", str(plan.path), version="v2" if layout.pids_on_v2 else "v1")
        assert layout.pids_root is not None
        inside = plan.path.relative_to(layout.pids_root)
        mountinfo = (self.env.proc_root / "self/mountinfo").read_text()
        cgroups, parents, existing = [], [], set()
        for mount, version in cgroupfs.hierarchy_mounts(mountinfo):
            cgroups.append([str(mount / inside), version.value])
            if mount / inside.parent != plan.path.parent:  # the tool's own parent is the cgroup-parent entry's
                parents.append(str(mount / inside.parent))
            existing.update(cgroupfs.cgroups_below(mount, depth=3))
        if not os.path.lexists("/run/runc"):
            # conmon's `podman container cleanup` calls runc without the lesson's --runtime-flag root=…, and runc
            # then makes its default state dir (empty, as that runc has no container to record)
            parents.append("/run/runc")
        # podman writes a cache of blob digests to /var/lib/containers/cache whatever its --root: the tool's own when
        # it makes the directory (marked, so a session with another state dir co-owns it), the host's otherwise
        blob_cache = not os.path.lexists(BLOB_CACHE_ROOT) or made_by_workshop(BLOB_CACHE_ROOT)
        self.journal.record(
            "podman",
            target,
            runroot=self.podman_runroot,
            cgroups=cgroups,
            parents=parents,
            existing=sorted(existing),
            blob_cache=BLOB_CACHE_ROOT if blob_cache else "",
        )
        if blob_cache:
            make_shared_dir(BLOB_CACHE_ROOT)

    @property
    def podman_runroot(self) -> str:
        """podman's runroot for a `creates podman` dir: podman refuses one longer than 50 characters, which a work
        dir below a long state dir would make; `/run/ws<session>-podman` (the lesson's commands type the same)."""
        return f"/run/ws{self.id}-podman"

    def substitute(self, text: str) -> str:
        return variables.substitute(text, self.value)

    def typed(self, text: str, console: str) -> str:
        """A line as the console gets it: paths below the work dir are written relative to it, as the talks typed
        `tar -xf … -C container`, when the console's shell stands in the work dir on the host's root (where it
        starts). Anywhere else (a chroot, a `cd` elsewhere) they stay absolute, so the line still works."""
        shell = self.consoles.get(console)
        if shell is None or not self._at_home(shell.focus_pid()):
            return self.substitute(text)
        return self.substitute(variables.short_form(text, self.lesson.variables))

    def _at_home(self, pid: int) -> bool:
        base = self.env.proc_root / str(pid)
        return procfs.readlink(base / "cwd") == str(self.workdir) and procfs.readlink(base / "root") == "/"

    def remember_before(self) -> None:
        """Freezes {{before.pid.X}} at the start of a step."""
        self._before = {name: str(c.focus_pid()) for name, c in self.consoles.items() if c.alive}

    # -- observing ------------------------------------------------------------------------------------------------
    def observe(self, emit: bool = True) -> process_diff.Diff:
        roots = {name: c.pid for name, c in self.consoles.items() if c.alive}
        snap = process_tree.snapshot(self.env.proc_root, roots, reference_pid=os.getpid())
        d = process_diff.diff(self.last, snap)
        self.last = snap
        if emit:
            self.sink(Observed(snap, d, self._observe_extras(snap)))
        return d

    def _observe_extras(self, snap: process_tree.Snapshot) -> resources.ExtrasDiff | None:
        """The views the lesson's front matter asks for, against the last ones shown (`tree` and `ns` skip them)."""
        if not self.lesson.observe:
            return None
        now = resources.read_extras(
            self.lesson.observe,
            snap,
            self.env.proc_root,
            reference_pid=os.getpid(),
            cgroup_place=self._cgroup_place,
            scope=Scope(self.workdir, self.id),
            limit_places=self._limit_places,
        )
        changes = resources.diff_extras(self.last_extras, now)
        self.last_extras = now
        return changes

    def _limit_places(self) -> list[LimitPlace]:
        """Where the lesson's memory and cpu cgroups live (those it requires), read through the environment's /sys."""
        places = []
        for controller in ("memory", "cpu"):
            if f"cgroup-{controller}" not in self.lesson.requires:
                continue
            try:
                layout, plan = self.cgroup_plan(controller)
            except (cgroupfs.CgroupError, OSError):
                continue
            parent = plan.path.parent
            if parent.is_relative_to("/sys"):
                parent = self.env.sys_root / parent.relative_to("/sys")
            places.append(LimitPlace(controller, parent, layout.on_v2(controller), plan.path.name))
        return places

    def _cgroup_place(self) -> resources.CgroupPlace:
        try:
            layout, plan = self.cgroup_plan()
        except (cgroupfs.CgroupError, OSError) as e:
            return resources.CgroupPlace(None, error=str(e))
        parent = plan.path.parent
        if parent.is_relative_to("/sys"):  # read through the environment's /sys, like `cgroupfs.current_layout`
            parent = self.env.sys_root / parent.relative_to("/sys")
        return resources.CgroupPlace(parent, layout.pids_on_v2)
