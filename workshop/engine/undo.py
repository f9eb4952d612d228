"""How each kind of journal entry is undone: one function per kind, each safe to run twice and on a resource
that was never created (the journal records before it creates), and none of them raising."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import json
import os
import shutil
import signal
import socket
import time
from pathlib import Path

from workshop.engine.journal import Entry, journals, start_time
from workshop.observe import procfs


def undo(entry: Entry, session: str) -> str:
    """Undoes one entry; never raises (cleanup must go on with the next entry whatever one of them does)."""
    try:
        undo = _UNDO[entry.kind]
        return undo(entry, session)
    except Exception as e:  # cleanup must go on with the next entry whatever one of them does
        return f"failed: {type(e).__name__}: {e}"


def _undo_session_procs(entry: Entry, session: str) -> str:
    """Every process started from this session's consoles carries WORKSHOP_SESSION in its environment, and every
    process chrooted into its work dir has its root there: kill them all, including container init processes."""
    workdir = entry.target
    killed = 0
    quiet = 0
    for _ in range(20):  # a fork bomb or a respawning shell may race us; SIGKILL rounds until none is left
        pids = [p for p in procfs.session_pids(Path("/proc"), session, workdir) if p != os.getpid()]
        if not pids:
            # Done only after a second empty look: a process caught in the middle of an execve shows an empty
            # environment for that instant, and one look could miss it for good.
            quiet += 1
            if quiet == 2:
                break
            time.sleep(0.05)
            continue
        quiet = 0
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        _wait_gone(pids, 1.0)
    else:
        return "failed: processes keep appearing"
    return f"removed ({killed} processes)" if killed else "already gone"


def _undo_process(entry: Entry, session: str) -> str:
    pid = int(entry.target)
    if start_time(pid) != entry.extra.get("start"):
        return "already gone"
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _wait_gone([pid], 2.0)
    return "removed"


def _wait_gone(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{p}").exists() and procfs.is_alive(Path("/proc"), p) for p in pids):
            return
        time.sleep(0.01)


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
MNT_DETACH = 2


def umount(target: str) -> bool:
    """Lazily unmounts the topmost mount at target; False if nothing was mounted there."""
    if _libc.umount2(target.encode(), MNT_DETACH) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOENT):
        return False
    raise OSError(err, f"umount {target}: {os.strerror(err)}")


def _real(target: str) -> str:
    """mountinfo lists resolved paths: a target recorded through a symlink must be resolved to be found there."""
    return os.path.realpath(target)


def _mounted_at_or_below(path: str) -> list[str]:
    prefix = path.rstrip("/") + "/"
    return [m for m in procfs.mount_points(Path("/proc")) if m == path or m.startswith(prefix)]


def _undo_mount(entry: Entry, session: str) -> str:
    target = _real(entry.target)
    removed = 0
    while target in procfs.mount_points(Path("/proc")) and removed < 32:
        if not umount(target):
            break
        removed += 1
    return "removed" if removed else "already gone"


def _undo_mounts_under(entry: Entry, session: str) -> str:
    """Catches mounts a lesson made without declaring them: anything mounted at or below the work dir."""
    removed = 0
    for _ in range(64):
        under = _mounted_at_or_below(_real(entry.target))
        if not under:
            break
        for target in sorted(under, key=len, reverse=True):
            with contextlib.suppress(OSError):
                removed += umount(target)
    return f"removed ({removed} mounts)" if removed else "already gone"


def _undo_path(entry: Entry, session: str) -> str:
    path = Path(entry.target)
    if not path.is_absolute() or len(path.parts) < 3:
        return f"failed: refusing to remove {path}: not a path the tool creates"
    if not path.exists() and not path.is_symlink():
        return "already gone"
    if path.is_symlink() or not path.is_dir():
        path.unlink()
        return "removed"
    # rmtree crosses mount points: with a bind mount left below, it would delete the host's files. Two guards:
    # nothing may be mounted below (resolved, as mountinfo lists it), and no directory may be on another device.
    still = _mounted_at_or_below(_real(str(path)))
    if still:
        return f"failed: still mounted below it: {', '.join(still)}"
    other = _other_filesystem(path)
    if other is not None:
        return f"failed: {other} is on another filesystem; not removing across it"
    for _ in range(3):
        try:
            shutil.rmtree(path)
            break
        except FileNotFoundError:
            # An entry vanished under rmtree: a lesson process that was still exiting (killed, or hung up when its
            # console closed) removed it. Walk what is left again.
            continue
    if path.exists() or path.is_symlink():
        return f"failed: {path} keeps changing while it is removed"
    return "removed"


def _other_filesystem(top: Path) -> str | None:
    device = os.lstat(top).st_dev
    for root, dirs, _files in os.walk(top):  # never follows symlinks
        for d in dirs:
            full = os.path.join(root, d)
            with contextlib.suppress(FileNotFoundError):
                if os.lstat(full).st_dev != device:
                    return full
    return None


def _undo_hostname(entry: Entry, session: str) -> str:
    """A lesson line meant for a new UTS namespace runs on the host if the namespace was not made: put it back."""
    if socket.gethostname() == entry.target:
        return "already gone"
    socket.sethostname(entry.target)
    return "restored"


def _undo_dir(entry: Entry, session: str) -> str:
    """A directory the host did not have before (`/run/netns`): removed only while empty, so a directory that
    something else started using meanwhile stays."""
    try:
        os.rmdir(entry.target)
    except FileNotFoundError:
        return "already gone"
    except OSError as e:
        if e.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.EBUSY):
            return "kept: something else uses it now"
        raise
    return "removed"


def _running_elsewhere(entry: Entry, session: str) -> str | None:
    """A running session (other than `session`, and not ending itself) that journaled the same shared resource, if
    the entry says where journals are: it may be between two steps with no cgroup of its own in the parent, about to
    make one."""
    journal_dir = entry.extra.get("journals")
    if not isinstance(journal_dir, str):
        return None
    for j in journals(Path(journal_dir)):
        if (
            j.session != session
            and not j.closing
            and j.owner_alive()
            and any(e.kind == entry.kind and e.target == entry.target and _same_controller(e, entry) for e in j.entries)
        ):
            return j.session
    return None


def _same_controller(a: Entry, b: Entry) -> bool:
    """A `subtree-control` switch is one per controller (journals from before memory and cpu meant pids)."""
    return bool(a.extra.get("controller", "pids") == b.extra.get("controller", "pids"))


def _undo_cgroup_parent(entry: Entry, session: str) -> str:
    """The tool's parent cgroup is shared by concurrent sessions: never kill in it, remove it only when empty and
    no running session has it journaled (the one that ends last removes it)."""
    other = _running_elsewhere(entry, session)
    if other is not None:
        return f"kept: session {other} still uses it"
    try:
        os.rmdir(entry.target)
    except FileNotFoundError:
        return "already gone"
    except OSError as e:
        if e.errno in (errno.ENOTEMPTY, errno.EBUSY):
            return "kept: another session still uses it"
        raise
    return "removed"


def _undo_systemd_scope(entry: Entry, session: str) -> str:
    """The delegated scope is shared like the parent cgroup: the session that ends last stops it."""
    from workshop.engine import systemd_scope

    other = _running_elsewhere(entry, session)
    if other is not None:
        return f"kept: session {other} still uses it"
    return systemd_scope.stop(Path(entry.target))


def _undo_subtree_control(entry: Entry, session: str) -> str:
    from workshop.engine import cgroupfs

    controller = str(entry.extra.get("controller", "pids"))
    other = _running_elsewhere(entry, session)
    if other is not None:
        return f"kept: session {other} still uses the {controller} controller"
    try:
        cgroupfs.disable_controller(Path(entry.target), controller)
    except cgroupfs.ControllerInUse:
        return f"kept: another session's cgroup still uses the {controller} controller"
    return "removed"


def _undo_lease(entry: Entry, session: str) -> str:
    return "released"


def _undo_netns(entry: Entry, session: str) -> str:
    path = Path("/run/netns") / entry.target
    if not path.exists() and not path.is_symlink():
        return "already gone"
    with contextlib.suppress(OSError):
        umount(str(path))
    path.unlink()
    return "removed"


def _undo_link(entry: Entry, session: str) -> str:
    from workshop.engine import netlink  # pyroute2 is heavy: import only when a lesson made a link

    return "removed" if netlink.delete_link(entry.target) else "already gone"


def _undo_cgroup(entry: Entry, session: str) -> str:
    from workshop.engine import cgroupfs

    path = Path(entry.target)
    if not path.exists():
        return "already gone"
    version = cgroupfs.CgroupVersion(entry.extra.get("version", "v1"))
    cgroupfs.kill_and_remove(path, version)
    return "removed"


def _refers_to(pid: int, store: str) -> bool:
    """The process names the storage dir in its arguments: conmon (`-b DIR/root/…`), the `podman container
    cleanup` it runs when the container exits, runc, and any podman command of the lesson's."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    mark = store.rstrip("/").encode()
    return any(a == mark or mark + b"/" in a for a in args)


def _kill_podman_processes(store: str) -> int:
    killed = 0
    for _ in range(20):
        pids = [p for p in procfs.pids(Path("/proc")) if p != os.getpid() and _refers_to(p, store)]
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        _wait_gone(pids, 1.0)
    return killed


def _podman_containers(store: str) -> list[tuple[str, str]]:
    """Each container in the storage, with the cgroup parent runc was given (from the OCI config podman wrote, which
    even a cgroup name podman itself cannot parse back, such as one with a ':', keeps)."""
    found = []
    for config in sorted(Path(f"{store}/root/overlay-containers").glob("*/userdata/config.json")):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            path = json.loads(config.read_text()).get("linux", {}).get("cgroupsPath", "")
            cid = config.parent.parent.name
            parent = os.path.dirname(path) if os.path.basename(path) == f"libpod-{cid}" else ""
            found.append((cid, parent))
    return found


def _remove_container_cgroups(containers: list[tuple[str, str]], existing: set[str]) -> list[str]:
    """What runc leaves of a container's cgroups, in every hierarchy: `libpod-ID` below its parent (only ever the
    container's), then the parent's `conmon` and the parent with its ancestors, if empty and made since the lesson
    began (a parent the machine had, `libpod_parent` of the host's own podman, stays)."""
    from workshop.engine import cgroupfs

    problems = []
    hierarchies = cgroupfs.hierarchy_mounts(Path("/proc/self/mountinfo").read_text())
    for cid, parent in containers:
        rel = "/" + (parent.strip("/") or "libpod_parent")
        for mount, version in hierarchies:
            base = mount / rel.lstrip("/")
            try:
                cgroupfs.kill_and_remove(base / f"libpod-{cid}", version)
            except (cgroupfs.CgroupError, OSError) as e:
                problems.append(str(e))
            conmon = f"{rel}/conmon"
            if cgroupfs.is_new_cgroup(conmon, existing):
                # its conmons were killed above, and stay there as zombies until the machine's init reaps them
                try:
                    cgroupfs.kill_and_remove(mount / conmon.lstrip("/"), version, timeout=15)
                except (cgroupfs.CgroupError, OSError) as e:
                    problems.append(str(e))
            ancestors = ["/" + "/".join(rel.strip("/").split("/")[:k]) for k in range(rel.count("/"), 0, -1)]
            for candidate in ancestors:
                if cgroupfs.is_new_cgroup(candidate, existing):
                    with contextlib.suppress(OSError):
                        os.rmdir(mount / candidate.lstrip("/"))
    return problems


def _remove_blob_cache(root: str) -> list[str]:
    """podman's blob-info cache (`/var/lib/containers/cache`), in a directory the tool made (or co-owned, made by a
    session with another state dir): removed with it, as long as it holds nothing but that cache. Removing it while
    another session runs is harmless: its next `podman import` writes it again, and it is that session's to remove."""
    if not root or not os.path.isdir(root):
        return []
    if not set(os.listdir(root)) <= {"cache"}:
        return []  # podman's storage or anything else put there since: not the lesson's
    try:
        shutil.rmtree(root)
    except FileNotFoundError:
        pass
    except OSError as e:
        return [f"{root}: {e.strerror}"]
    return []


def _undo_podman(entry: Entry, session: str) -> str:
    """Removes what podman made for a lesson, whether podman or the lesson ended well or not: the conmon keeping
    each container (and any podman or runc working on the storage), the container processes (killed through their
    cgroups), the cgroups podman made in every hierarchy, the mounts below the storage dir, the storage dir, its
    runroot, and the blob-info cache if the lesson made it."""
    from workshop.engine import cgroupfs

    store = entry.target.rstrip("/")
    runroot = str(entry.extra.get("runroot", f"{store}/run"))
    if not all(Path(p).is_absolute() and len(Path(p).parts) >= 3 for p in (store, runroot)):
        return f"failed: refusing to clean {store}: not a storage dir the tool creates"
    problems: list[str] = []
    # podman itself is not asked: it may be gone, and would make what the lesson's configuration keeps it from
    # making (its shared-memory locks); its containers are processes in cgroups, mounts and files, removed as such
    containers = _podman_containers(store)
    killed = _kill_podman_processes(store) + _kill_podman_processes(runroot)
    for path, version in entry.extra.get("cgroups", []):
        try:
            cgroupfs.kill_and_remove(Path(path), cgroupfs.CgroupVersion(version))
        except (cgroupfs.CgroupError, OSError) as e:
            problems.append(str(e))
    for parent in entry.extra.get("parents", []):
        # directories podman or runc made, that the machine did not have: removed only once empty (another session
        # may still use them)
        with contextlib.suppress(OSError):
            os.rmdir(parent)
    problems += _remove_container_cgroups(containers, set(entry.extra.get("existing", [])))
    problems += _remove_blob_cache(str(entry.extra.get("blob_cache", "")))
    mounts = _undo_mounts_under(Entry("mounts-under", store), session)
    _undo_mounts_under(Entry("mounts-under", runroot), session)
    removed = _undo_path(Entry("path", store), session)
    for outcome in (removed, _undo_path(Entry("path", runroot), session)):
        if outcome.startswith("failed"):
            problems.append(outcome)
    if problems:
        return "failed: " + "; ".join(problems)
    if removed == "already gone" and not killed and mounts == "already gone":
        return "already gone"
    return f"removed ({killed} processes killed)"


_UNDO = {
    "hostname": _undo_hostname,
    "session-procs": _undo_session_procs,
    "process": _undo_process,
    "mounts-under": _undo_mounts_under,
    "mount": _undo_mount,
    "path": _undo_path,
    "dir": _undo_dir,
    "cgroup-parent": _undo_cgroup_parent,
    "systemd-scope": _undo_systemd_scope,
    "subtree-control": _undo_subtree_control,
    "lease": _undo_lease,
    "netns": _undo_netns,
    "link": _undo_link,
    "cgroup": _undo_cgroup,
    "podman": _undo_podman,
}
