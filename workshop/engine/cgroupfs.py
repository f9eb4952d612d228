"""Where cgroups live on this machine (v1, hybrid, v2), and the few kernel writes lessons and cleanup need.

The first half is pure: it reads a mountinfo text (and, for cgroup2, one `cgroup.controllers` file through an
injectable reader), so tests replay captured layouts from other machines. The second half touches cgroupfs;
each function is tiny and works on any directory tree, so tests use a tmp dir standing in for
`/sys/fs/cgroup`.

Placement rule (see `pids_parent`): lesson cgroups go under `<hierarchy root>/workshop/`, never inside a
cgroup somebody else owns.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from workshop.environment import Environment
from workshop.observe.procfs import MountInfo, parse_mountinfo, read_pids_cgroup

PARENT_NAME = "workshop"

CONTROLLERS = ("pids", "memory", "cpu")
"""The controllers lessons set limits with: what `CgroupLayout.roots` maps."""

# Super options of a v1 cgroup mount that are not controllers. Anything with "=" (name=systemd,
# release_agent=...) is not a controller either.
_V1_NON_CONTROLLERS = frozenset(
    {"rw", "ro", "none", "all", "noprefix", "xattr", "clone_children", "cpuset_v2_mode", "favordynmods"}
)


class CgroupError(Exception):
    """A cgroup could not be planned, changed or removed; the message says why, for a learner."""


class ControllerInUse(CgroupError):
    """Writing `-pids` gave EBUSY: a child cgroup still uses the controller. Cleanup may report and go on."""


class CgroupVersion(Enum):
    V1 = "v1"
    HYBRID = "hybrid"
    V2 = "v2"
    NONE = "none"


@dataclass(frozen=True)
class CgroupLayout:
    version: CgroupVersion
    pids_root: Path | None
    """Where a pids cgroup can be created: the v1 `pids` hierarchy's mount, or the cgroup2 mount."""
    unified: Path | None
    """The cgroup2 mount, if any."""
    pids_available: bool
    detail: str
    """One human sentence describing the layout."""
    delegated: Path | None = None
    """On a host whose cgroup tree systemd owns: the scope it delegates to the tool (`systemd_scope`), where lesson
    cgroups go instead of `<cgroup2 root>/workshop`."""
    roots: Mapping[str, Path] = dataclasses.field(default_factory=dict)
    """Controller (of `CONTROLLERS`) -> where a cgroup it limits can be made: the mount of the v1 hierarchy that
    carries it, or the cgroup2 mount when its cgroup.controllers lists it. Absent: not available here."""

    @property
    def pids_on_v2(self) -> bool:
        """True when lesson cgroups follow v2 rules (subtree_control, no internal processes)."""
        return self.pids_root is not None and self.pids_root == self.unified

    def root_of(self, controller: str) -> Path | None:
        """Where `controller`'s cgroups can be made (see `roots`; for pids, `pids_root`); None: not here."""
        if controller == "pids":
            return self.pids_root if self.pids_available else None
        return self.roots.get(controller)

    def on_v2(self, controller: str) -> bool:
        """True when `controller`'s cgroups follow v2 rules; on a hybrid host pids may be v1 and memory v2."""
        root = self.root_of(controller)
        return root is not None and root == self.unified


def v1_controllers(mount: MountInfo) -> tuple[str, ...]:
    """The controllers a v1 cgroup mount carries; `name=systemd` alone carries none."""
    return tuple(o for o in mount.super_options if o not in _V1_NON_CONTROLLERS and "=" not in o)


def _visible_cgroup_mounts(mounts: list[MountInfo]) -> list[MountInfo]:
    """cgroup mounts not hidden by a mount stacked on them or on one of their ancestors.

    File order is not mount order (after switch_root, `/` is often listed last), so use the tree: a mount
    stacked on M has M as its parent and the same mount point.
    """
    by_id = {m.mount_id: m for m in mounts}
    covered = {
        m.parent_id
        for m in mounts
        if m.parent_id != m.mount_id and m.parent_id in by_id and by_id[m.parent_id].mount_point == m.mount_point
    }

    def hidden(m: MountInfo) -> bool:
        seen: set[int] = set()
        while m.mount_id not in seen:  # guard against cycles in malformed input
            if m.mount_id in covered:
                return True
            seen.add(m.mount_id)
            parent = by_id.get(m.parent_id)
            if parent is None:
                return False
            m = parent
        return False

    return [m for m in mounts if m.fstype in ("cgroup", "cgroup2") and not hidden(m)]


def _pick(mounts: list[MountInfo]) -> MountInfo | None:
    # The same hierarchy can be bind-mounted several times; prefer its root, then the shortest path.
    if not mounts:
        return None
    return min(mounts, key=lambda m: (m.root != "/", len(m.mount_point.parts)))


def detect_layout(mountinfo_text: str, read_file: Callable[[Path], str] | None = None) -> CgroupLayout:
    """Classify the cgroup layout. `read_file` reads `<cgroup2>/cgroup.controllers` (default: Path.read_text).

    A v1 hierarchy without controllers (`name=systemd`) counts as v1 only when no cgroup2 is mounted, since
    then the fix is a v1 mount.
    """
    reader = read_file or (lambda p: p.read_text())
    layout = _detect_pids(mountinfo_text, reader)
    return dataclasses.replace(layout, roots=_controller_roots(mountinfo_text, layout.unified, reader))


def _controller_roots(mountinfo_text: str, unified: Path | None, reader: Callable[[Path], str]) -> dict[str, Path]:
    """Where each of `CONTROLLERS` can have a cgroup: its v1 hierarchy if one carries it, else cgroup2."""
    mounts = _visible_cgroup_mounts(parse_mountinfo(mountinfo_text))
    v1_ctrl = [m for m in mounts if m.fstype == "cgroup" and v1_controllers(m)]
    roots: dict[str, Path] = {}
    on_v2: list[str] | None = None
    for controller in CONTROLLERS:
        v1 = _pick([m for m in v1_ctrl if controller in v1_controllers(m)])
        if v1 is not None:
            roots[controller] = v1.mount_point
            continue
        if unified is None:
            continue
        if on_v2 is None:
            try:
                on_v2 = reader(unified / "cgroup.controllers").split()
            except OSError:
                on_v2 = []
        if controller in on_v2:
            roots[controller] = unified
    return roots


def _detect_pids(mountinfo_text: str, reader: Callable[[Path], str]) -> CgroupLayout:
    mounts = _visible_cgroup_mounts(parse_mountinfo(mountinfo_text))
    v1 = [m for m in mounts if m.fstype == "cgroup"]
    v1_ctrl = [m for m in v1 if v1_controllers(m)]
    cg2 = _pick([m for m in mounts if m.fstype == "cgroup2"])
    unified = cg2.mount_point if cg2 else None
    v1_pids = _pick([m for m in v1_ctrl if "pids" in v1_controllers(m)])

    if v1_ctrl:
        version = CgroupVersion.HYBRID if cg2 else CgroupVersion.V1
    elif cg2:
        version = CgroupVersion.V2
    elif v1:
        version = CgroupVersion.V1
    else:
        return CgroupLayout(CgroupVersion.NONE, None, None, False, "no cgroup filesystem is mounted")

    head = {
        CgroupVersion.V1: "cgroup v1",
        CgroupVersion.HYBRID: "cgroup v1 (hybrid)",
        CgroupVersion.V2: "cgroup v2",
    }[version]
    tail = f"cgroup2 at {unified}" if unified else "no cgroup2 mounted"
    if v1_pids:
        where = v1_pids.mount_point
        return CgroupLayout(version, where, unified, True, f"{head}: pids controller at {where}; {tail}")
    if unified is None:
        names = ", ".join(c for m in v1_ctrl for c in v1_controllers(m)) or "none"
        detail = f"{head}: no hierarchy has the pids controller (controllers mounted: {names}); {tail}"
        return CgroupLayout(version, None, None, False, detail)

    # pids is not bound to a v1 hierarchy: it can only be on cgroup2.
    try:
        controllers = reader(unified / "cgroup.controllers").split()
    except OSError as exc:
        detail = f"{head}: cgroup2 at {unified}, but its cgroup.controllers could not be read ({exc})"
        return CgroupLayout(version, None, unified, False, detail)
    if "pids" in controllers:
        return CgroupLayout(version, unified, unified, True, f"{head}: pids controller on cgroup2 at {unified}")
    detail = f"{head}: cgroup2 at {unified}, but pids is not in its cgroup.controllers"
    return CgroupLayout(version, None, unified, False, detail)


def hierarchy_mounts(mountinfo_text: str) -> list[tuple[Path, CgroupVersion]]:
    """Every visible cgroup hierarchy's mount point with its version (V1, or V2 for the cgroup2 mount): where a
    runtime with a cgroupfs manager (podman, runc) makes the same cgroup path once per hierarchy."""
    mounts = _visible_cgroup_mounts(parse_mountinfo(mountinfo_text))
    found: dict[Path, CgroupVersion] = {}
    for m in mounts:
        if m.root == "/":
            found.setdefault(m.mount_point, CgroupVersion.V2 if m.fstype == "cgroup2" else CgroupVersion.V1)
    return list(found.items())


def cgroups_below(mount: Path, depth: int) -> set[str]:
    """The cgroups of one hierarchy down to `depth` levels, as paths from its root (`/workshop/ws1a2b3c`)."""
    found: set[str] = set()
    for d, dirs, _ in os.walk(mount):
        rel = os.path.relpath(d, mount)
        level = 0 if rel == "." else rel.count("/") + 1
        if level >= depth:
            dirs.clear()
        if level:
            found.add(f"/{rel}")
    return found


def is_new_cgroup(rel: str, existing: set[str], depth: int = 3) -> bool:
    """Whether the cgroup path `rel` was not there when `existing` (see `cgroups_below`) was taken: some ancestor of
    it (or itself) down to `depth` levels is missing from it. Deeper than that, it counts as there (never removed)."""
    parts = [p for p in rel.split("/") if p]
    return any("/" + "/".join(parts[:k]) not in existing for k in range(1, min(depth, len(parts)) + 1))


def current_layout(env: Environment, read_file: Callable[[Path], str] | None = None) -> CgroupLayout:
    """The layout of the running system, as seen through `env.proc_root` and `env.sys_root`.

    Mount points stay the real paths (that is where lessons write); only reads under /sys are redirected to
    `env.sys_root`, so fixture trees work.
    """
    reader = read_file or (lambda p: p.read_text())

    def rebased(path: Path) -> str:
        if path.is_relative_to("/sys"):
            path = env.sys_root / path.relative_to("/sys")
        return reader(path)

    from workshop.engine import systemd_scope

    layout = detect_layout(reader(env.proc_root / "self/mountinfo"), rebased)
    if layout.pids_on_v2 and layout.unified is not None and systemd_scope.is_systemd_host(env.proc_root):
        return dataclasses.replace(layout, delegated=systemd_scope.scope_path(layout.unified))
    return layout


def pids_parent(layout: CgroupLayout, proc_root: Path) -> Path:
    """The directory under which lesson pids cgroups are created: `controller_parent` for pids."""
    return controller_parent(layout, "pids", proc_root)


def controller_parent(layout: CgroupLayout, controller: str, proc_root: Path) -> Path:
    """The directory under which lesson cgroups limiting `controller` are created; nothing is created here.

    v1: `<the controller's hierarchy root>/workshop`. v2 with systemd as PID 1: the scope systemd delegates to the
    tool (`layout.delegated`, see `systemd_scope`), as runc and podman do. v2 without systemd:
    `<cgroup2 root>/workshop`, a direct child of the root (docker's cgroupfs driver and LXC live there too).
    The root is the one cgroup exempt from "no internal processes", so the controller can be enabled in its
    subtree_control even though it holds processes (see `plan_cgroup`).

    Raises CgroupError when the controller is not available, or when the tool itself lives under that parent
    (cleanup kills everything there, so it would kill the tool).
    """
    root = layout.root_of(controller)
    if controller == "pids" and root is None:
        raise CgroupError(f"no pids controller: {layout.detail}")
    if root is None:
        where = f"nor is it in {layout.unified}/cgroup.controllers" if layout.unified else "and no cgroup2 is mounted"
        raise CgroupError(f"no {controller} controller: no cgroup v1 hierarchy carries it, {where}")
    v2 = layout.on_v2(controller)
    parent = layout.delegated if layout.delegated is not None and v2 else root / PARENT_NAME
    own = read_pids_cgroup(proc_root, "self", v2, controller)
    relative = f"/{parent.relative_to(root)}"
    if own is not None and (own == relative or own.startswith(f"{relative}/")):
        raise CgroupError(f"workshop itself runs in the cgroup {own}; start it from outside {parent}")
    return parent


@dataclass(frozen=True)
class CgroupPlan:
    path: Path
    enable_pids_in: tuple[Path, ...]
    """subtree_control files that must get "+CONTROLLER", in order; record each one actually changed, to undo it."""
    controller: str = "pids"


def _lists(subtree_control: Path, controller: str) -> bool:
    try:
        return controller in subtree_control.read_text().split()
    except OSError:
        return False


def plan_pids_cgroup(layout: CgroupLayout, name: str, proc_root: Path) -> CgroupPlan:
    """`plan_cgroup` for the pids controller."""
    return plan_cgroup(layout, "pids", name, proc_root)


def plan_cgroup(layout: CgroupLayout, controller: str, name: str, proc_root: Path) -> CgroupPlan:
    """Where the lesson cgroup `name` goes and which subtree_control files must switch `controller` on first
    (reads only)."""
    if not name or "/" in name or name in (".", "..") or name.startswith("cgroup."):
        raise CgroupError(f"not a usable cgroup name: {name!r}")
    parent = controller_parent(layout, controller, proc_root)
    if not layout.on_v2(controller):
        return CgroupPlan(parent / name, (), controller)
    if layout.delegated is not None:  # systemd hands the controllers down to its scope; the tool does the rest
        return CgroupPlan(parent / name, (parent / "cgroup.subtree_control",), controller)
    root = parent.parent
    needed = tuple(
        p / "cgroup.subtree_control" for p in (root, parent) if not _lists(p / "cgroup.subtree_control", controller)
    )
    # Only the real root has no cgroup.type. A cgroup-namespace root (a container) that holds processes
    # refuses "+pids" with EBUSY: say so now instead of failing half-way through a lesson.
    if root / "cgroup.subtree_control" in needed and (root / "cgroup.type").exists():
        try:
            busy = bool((root / "cgroup.procs").read_text().split())
        except OSError:
            busy = False
        if busy:
            raise CgroupError(
                f"{root} is not the real cgroup root and holds processes, so {controller} cannot be enabled for its "
                "children (no internal processes rule); move those processes to a child cgroup first"
            )
    return CgroupPlan(parent / name, needed, controller)


def enable_pids(subtree_control: Path) -> bool:
    """`enable_controller` for pids."""
    return enable_controller(subtree_control, "pids")


def enable_controller(subtree_control: Path, controller: str) -> bool:
    """Write "+CONTROLLER" unless it is already listed; True if this changed something (record it to undo)."""
    if _lists(subtree_control, controller):
        return False
    try:
        subtree_control.write_text(f"+{controller}")
    except OSError as exc:
        hint = " (the cgroup holds processes: no internal processes rule)" if exc.errno == errno.EBUSY else ""
        raise CgroupError(f"cannot enable {controller} in {subtree_control}: {exc.strerror}{hint}") from exc
    return True


def disable_pids(subtree_control: Path) -> None:
    """`disable_controller` for pids."""
    disable_controller(subtree_control, "pids")


def disable_controller(subtree_control: Path, controller: str) -> None:
    """Undo `enable_controller`. A missing file (cgroup already removed) is fine; EBUSY raises ControllerInUse."""
    if not _lists(subtree_control, controller):
        return
    try:
        subtree_control.write_text(f"-{controller}")
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            raise ControllerInUse(f"{controller} is still used below {subtree_control.parent}; left enabled") from exc
        raise CgroupError(f"cannot disable {controller} in {subtree_control}: {exc.strerror}") from exc


def _pids(cgroup: Path) -> list[int]:
    try:
        return [int(p) for p in (cgroup / "cgroup.procs").read_text().split()]
    except FileNotFoundError:
        return []


def _tree(cgroup: Path) -> list[Path]:
    """The cgroup and all its descendants, deepest first."""
    return [Path(d) for d, _, _ in os.walk(cgroup, topdown=False)]


def kill_and_remove(
    cgroup: Path,
    version: CgroupVersion,
    timeout: float = 5.0,
    *,
    remove_dir: Callable[[Path], None] = os.rmdir,
) -> None:
    """Kill every process in `cgroup` and below, then remove the cgroups, deepest first.

    `version` is the version of the hierarchy `cgroup` is in (V2 for a cgroup2 mount, also in hybrid).
    Idempotent: a missing directory is fine. `remove_dir` exists for tests on plain directories, whose
    files (unlike cgroupfs control files) must go before rmdir.
    """
    if not cgroup.is_dir():
        return
    if not (cgroup.parent / "cgroup.procs").exists():
        # Emptying a hierarchy root would kill the whole machine.
        raise CgroupError(f"refusing to empty {cgroup}: it is not a child cgroup")
    deadline = time.monotonic() + timeout
    kill_file = cgroup / "cgroup.kill"
    delay = 0.005
    while True:
        tree = _tree(cgroup)
        live = {d: _pids(d) for d in tree}
        if not any(live.values()):
            break
        if os.getpid() in (pid for pids in live.values() for pid in pids):
            raise CgroupError(f"refusing to empty {cgroup}: workshop itself runs in it")
        if time.monotonic() > deadline:
            left = sorted(p for pids in live.values() for p in pids)
            raise CgroupError(f"processes {left} in {cgroup} survived SIGKILL for {timeout:g}s")
        if version is not CgroupVersion.V1 and kill_file.exists():
            kill_file.write_text("1")  # kills the whole subtree atomically, forks included
        else:
            # v1 has no atomic kill: a process may fork between read and kill, so the loop repeats.
            for pid in (p for pids in live.values() for p in pids):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        time.sleep(delay)
        delay = min(delay * 2, 0.1)

    for d in _tree(cgroup):
        while True:
            try:
                remove_dir(d)
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                # EBUSY can linger briefly while killed tasks finish exiting.
                if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise CgroupError(f"cannot remove {d}: {exc.strerror}") from exc
                time.sleep(0.02)
