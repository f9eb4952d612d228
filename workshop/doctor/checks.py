"""The checks doctor runs, one function each: what this machine has for the lessons, and how to get what it lacks.

Each takes the environment and a `Probe` and returns (status, detail, fix); `CHECKS` lists them in the order they
are shown, under the keys lessons' requirements name.
"""

from __future__ import annotations

import ctypes.util
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from workshop import arch
from workshop.doctor.probe import FAIL, OK, WARN, Probe, Result
from workshop.engine.cgroupfs import CgroupVersion, current_layout
from workshop.environment import Environment
from workshop.observe.procfs import NS_TYPES, parse_mountinfo

# tool -> the Debian/Ubuntu package that provides it
TOOLS: dict[str, str] = {
    "unshare": "util-linux",
    "nsenter": "util-linux",
    "chroot": "coreutils",
    "mount": "mount",
    "umount": "mount",
    "pstree": "psmisc",
    "ip": "iproute2",
    "tar": "tar",
    "python3": "python3",
    "setpriv": "util-linux",
    "capsh": "libcap2-bin",
    "dot": "graphviz",
    # the podman lesson only; runc because crun refuses a cgroup v1/v2 hybrid host
    "podman": "podman runc",
    "runc": "podman runc",
}
OPTIONAL_TOOLS: dict[str, str] = {
    "dot": "the diagrams of each step (workshop/diagram) are drawn by it; every lesson runs without it",
}
"""Tools no lesson needs: missing, they are a warning that says what is lost, not a failure."""
# The namespace types a process can be in (not the `*_for_children` links): what `unshare` can make.
NAMESPACES = tuple(t for t in NS_TYPES if not t.endswith("_for_children"))
_NS_CONFIG = {
    "mnt": "CONFIG_NAMESPACES",
    "uts": "CONFIG_UTS_NS",
    "ipc": "CONFIG_IPC_NS",
    "pid": "CONFIG_PID_NS",
    "net": "CONFIG_NET_NS",
    "user": "CONFIG_USER_NS",
    "cgroup": "CONFIG_CGROUPS",
    "time": "CONFIG_TIME_NS (Linux 5.6+)",
}


def _root(env: Environment, p: Probe) -> Result:
    if p.is_root:
        return OK, "effective uid is 0", ""
    return (
        FAIL,
        "not root: namespaces, mounts and cgroups need root",
        'run it as root: sudo workshop  (from a virtualenv: sudo "$(command -v workshop)")',
    )


def _tool(name: str) -> Callable[[Environment, Probe], Result]:
    def check(env: Environment, p: Probe) -> Result:
        path = p.which(name)
        if path:
            return OK, path, ""
        if name in OPTIONAL_TOOLS:
            return WARN, f"{name} not found in PATH: {OPTIONAL_TOOLS[name]}", f"apt-get install {TOOLS[name]}"
        return FAIL, f"{name} not found in PATH", f"apt-get install {TOOLS[name]}"

    return check


def _seccomp(env: Environment, p: Probe) -> Result:
    actions = env.proc_root / "sys/kernel/seccomp/actions_avail"
    if not p.exists(actions) or "errno" not in p.read_text(actions).split():
        return (
            FAIL,
            "the kernel has no seccomp filters (no /proc/sys/kernel/seccomp/actions_avail with errno)",
            "a kernel built with CONFIG_SECCOMP_FILTER=y, as every distribution kernel is",
        )
    if ctypes.util.find_library("seccomp") is None:
        return FAIL, "libseccomp is not installed", "apt-get install libseccomp2"
    return OK, f"seccomp filters can return {', '.join(p.read_text(actions).split())}", ""


def _arch(env: Environment, p: Probe) -> Result:
    machine = arch.machine()
    try:
        numbers = ", ".join(f"{name} {arch.syscall_number(name)}" for name in ("pivot_root", "openat2"))
    except arch.ArchError as exc:
        return WARN, f"{machine}: {exc}", "the lessons' helpers that call pivot_root or openat2 by number fail here"
    return OK, f"{machine}; system calls the lessons make by number: {numbers}", ""


def _busybox(env: Environment, p: Probe) -> Result:
    try:
        return OK, f"static busybox at {p.find_busybox()}", ""
    except ImportError as exc:
        return FAIL, f"cannot look for busybox: {exc}", "reinstall workshop: its rootfs module is missing"
    except Exception as exc:  # RootfsError and any probe failure: its text is the most useful detail
        return FAIL, str(exc) or type(exc).__name__, "apt-get install busybox-static"


def _namespace(ns: str) -> Callable[[Environment, Probe], Result]:
    def check(env: Environment, p: Probe) -> Result:
        path = env.proc_root / "self/ns" / ns
        if p.exists(path):
            return OK, f"{path} exists", ""
        return (
            FAIL,
            f"{path} is missing: the kernel lacks {ns} namespaces",
            f"use a kernel built with {_NS_CONFIG[ns]} (stock distribution kernels have it)",
        )

    return check


def _userns(env: Environment, p: Probe) -> Result:
    limit = p.read_text(env.proc_root / "sys/user/max_user_namespaces").strip()
    if limit == "0":
        return FAIL, "user.max_user_namespaces is 0", "sysctl -w user.max_user_namespaces=15000"
    restrict = env.proc_root / "sys/kernel/apparmor_restrict_unprivileged_userns"
    if p.exists(restrict) and p.read_text(restrict).strip() == "1":
        # Root is not affected; the lesson that shows an unprivileged user namespace is.
        return (
            WARN,
            "AppArmor restricts unprivileged user namespaces (Ubuntu 24.04 default)",
            "for unprivileged user namespaces: sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 "
            "(root's lessons are unaffected)",
        )
    return OK, f"up to {limit} user namespaces", ""


def _overlay(env: Environment, p: Probe) -> Result:
    lines = p.read_text(env.proc_root / "filesystems").splitlines()
    if any(line.split()[-1:] == ["overlay"] for line in lines):
        return OK, "overlay is in /proc/filesystems", ""
    if _loadable(p, "overlay"):
        return OK, "overlay is a module the kernel loads on the first overlay mount (modprobe -n)", ""
    return FAIL, "overlay is not in /proc/filesystems", "modprobe overlay"


def _loadable(p: Probe, module: str) -> bool:
    """`modprobe -n` finds the module (or knows it is built in): the kernel loads it on first use."""
    return bool(p.which("modprobe")) and p.run(["modprobe", "-n", "-q", module]).ok


def _cgroup_pids(env: Environment, p: Probe) -> Result:
    layout = current_layout(env, p.read_text)
    if layout.pids_available:
        return OK, layout.detail, ""
    if layout.version in (CgroupVersion.V1, CgroupVersion.HYBRID):
        fix = "mkdir -p /sys/fs/cgroup/pids && mount -t cgroup -o pids none /sys/fs/cgroup/pids"
    elif layout.version is CgroupVersion.V2:
        fix = (
            f"pids is not in {layout.unified}/cgroup.controllers: the kernel was built without "
            "CONFIG_CGROUP_PIDS or booted with cgroup_disable=pids; use a stock kernel or drop that option"
        )
    else:
        fix = "mount -t cgroup2 none /sys/fs/cgroup"
    return FAIL, layout.detail, fix


_CONTROLLER_FILES = {"memory": ("memory.oom_control", "memory.events"), "cpu": ("cpu.cfs_quota_us", "cpu.max")}
"""The control files a lesson limits with (v1, v2): `memory.oom_control` counts OOM kills on v1 (`memory.events`
on v2); `cpu.cfs_quota_us` (v1) and `cpu.max` (v2) exist only with CONFIG_CFS_BANDWIDTH."""


def _cgroup_controller(controller: str) -> CheckFn:
    """memory or cpu: a hierarchy (v1) or the cgroup2 root's cgroup.controllers (v2) offers it."""

    def check(env: Environment, p: Probe) -> Result:
        layout = current_layout(env, p.read_text)
        root = layout.root_of(controller)
        if root is None:
            if layout.version in (CgroupVersion.V1, CgroupVersion.HYBRID):
                where = f"/sys/fs/cgroup/{controller}"
                fix = f"mkdir -p {where} && mount -t cgroup -o {controller} none {where}"
            elif layout.version is CgroupVersion.V2:
                fix = (
                    f"{controller} is not in {layout.unified}/cgroup.controllers: the kernel was booted with "
                    f"cgroup_disable={controller} or built without it; use a stock kernel or drop that option"
                )
            else:
                fix = "mount -t cgroup2 none /sys/fs/cgroup"
            return FAIL, f"no {controller} controller ({layout.detail})", fix
        if layout.on_v2(controller):
            return OK, f"{controller} controller on cgroup2 at {root}", ""
        v1_file = _CONTROLLER_FILES[controller][0]
        if not p.exists(root / v1_file):
            reason = "CONFIG_CFS_BANDWIDTH" if controller == "cpu" else "a kernel older than 4.13"
            return FAIL, f"{controller} controller at {root}, but no {v1_file} ({reason})", "use a stock kernel"
        return OK, f"{controller} controller at {root}", ""

    return check


def _link_module(module: str, link_args: Sequence[str]) -> Callable[[Environment, Probe], Result]:
    """A kernel module behind an `ip link add … type MODULE` link: loaded, loadable, or probed."""

    def check(env: Environment, p: Probe) -> Result:
        if p.exists(env.sys_root / "module" / module):
            return OK, f"{module} module loaded", ""
        try:
            modules = p.read_text(env.proc_root / "modules").splitlines()
            if any(line.split()[:1] == [module] for line in modules):
                return OK, f"{module} module loaded", ""
        except OSError:
            pass  # no /proc/modules: a kernel without module support; it may be built in, so probe
        if _loadable(p, module):
            return OK, f"{module} is a module the kernel loads on first use (modprobe -n)", ""
        if not p.is_root:
            return WARN, f"{module} not loaded, and only root can probe for it", "run it as root: sudo workshop doctor"
        if not (p.which("unshare") and p.which("ip")):
            return WARN, f"{module} not loaded; probing needs unshare and ip", "apt-get install util-linux iproute2"
        # In a throwaway network namespace: the host's links are never touched. "dev" keeps ip from reading
        # the name as an address.
        done = p.run(["unshare", "--net", "ip", "link", "add", "dev", "wsprobe0", *link_args])
        if done.ok:
            return OK, f"a {module} link can be created (probed in a throwaway network namespace)", ""
        why = done.stderr.strip() or done.returncode
        return FAIL, f"cannot create a {module} link: {why}", f"modprobe {module}"

    return check


_veth = _link_module("veth", ["type", "veth", "peer", "name", "wsprobe1"])
_bridge = _link_module("bridge", ["type", "bridge"])

# Where an overlay upper dir cannot live: shared folders and network or stacked file systems.
_NO_UPPERDIR = ("vboxsf", "9p", "overlay", "nfs", "nfs4", "cifs", "smb3", "fuse", "vmhgfs", "prl_fs")


def _statedir(env: Environment, p: Probe) -> Result:
    # The longest mount point that is a prefix of the path: that is the state dir's file system, whether
    # or not the dir exists yet (a mount point always does).
    path = p.resolve(env.state_dir)
    best: tuple[Path, str, list[str]] | None = None
    for mount in parse_mountinfo(p.read_text(env.proc_root / "self/mountinfo")):
        mount_point = mount.mount_point
        if (path == mount_point or mount_point in path.parents) and (
            best is None or len(mount_point.parts) >= len(best[0].parts)
        ):
            best = (mount_point, mount.fstype, list(mount.options))
    if best is None:
        return WARN, f"no mount in mountinfo holds {path}", "are /proc and the state dir's file system mounted?"
    mount_point, fstype, options = best
    where = f"{path} is on {fstype} (mounted at {mount_point})"
    if fstype in _NO_UPPERDIR or fstype.startswith("fuse."):
        return (
            FAIL,
            f"{where}: an overlay upper dir cannot live there",
            "set WORKSHOP_STATE_DIR to a directory on ext4, xfs or tmpfs, e.g. WORKSHOP_STATE_DIR=/var/lib/workshop",
        )
    if "nodev" in options:
        return (
            WARN,
            f"{where} with nodev: device files a lesson creates in a rootfs there (/dev/null) cannot be opened",
            "set WORKSHOP_STATE_DIR to a directory on a file system mounted without nodev",
        )
    return OK, where, ""


def _forward(env: Environment, p: Probe) -> Result:
    if not p.is_root:
        return OK, "not checked: only root can read the firewall", ""
    drops = []
    if not (p.which("iptables") or p.which("nft")):
        return OK, "neither iptables nor nft is installed: no firewall rules from them", ""
    if p.which("iptables"):
        done = p.run(["iptables", "-S", "FORWARD"])
        if done.ok and "-P FORWARD DROP" in done.stdout.splitlines():
            drops.append("iptables: -P FORWARD DROP")
    if p.which("nft"):
        done = p.run(["nft", "list", "chains"])
        if done.ok and re.search(r"hook forward\b[^;]*;\s*policy drop", done.stdout):
            drops.append("nftables: a forward hook chain with policy drop")
    if not drops:
        return OK, "no FORWARD policy DROP found", ""
    return (
        WARN,
        f"{'; '.join(drops)} (Docker sets this). It only filters traffic routed through the host's own "
        "namespace: the veth lesson's bridge lives in a network namespace of its own, so it is unaffected",
        "nothing for the lessons; a bridge of your own on the host needs: iptables -P FORWARD ACCEPT "
        "(or an ACCEPT rule for that bridge)",
    )


# sys_vendor / product_name words of common hypervisors
_VM_VENDORS = (
    "qemu",
    "kvm",
    "virtualbox",
    "innotek",
    "vmware",
    "xen",
    "parallels",
    "bochs",
    "amazon ec2",
    "google compute engine",
    "virtual machine",
    "hyper-v",
    "openstack",
    "firecracker",
)


def _vm(env: Environment, p: Probe) -> Result:
    warn = (
        WARN,
        "no hypervisor detected: this looks like a physical machine",
        "lessons change kernel state (mounts, namespaces, cgroups); a VM is the safe place: see the Vagrantfile",
    )
    if p.which("systemd-detect-virt"):
        done = p.run(["systemd-detect-virt", "--vm"])
        name = done.stdout.strip()
        if done.ok and name and name != "none":
            return OK, f"in a {name} virtual machine (systemd-detect-virt)", ""
        if name == "none":
            return warn
    dmi = env.sys_root / "class/dmi/id"
    for part in ("sys_vendor", "product_name"):
        try:
            text = p.read_text(dmi / part).strip()
        except OSError:
            continue
        if any(v in text.lower() for v in _VM_VENDORS):
            return OK, f"in a virtual machine ({part}: {text})", ""
    try:
        cpuinfo = p.read_text(env.proc_root / "cpuinfo")
    except OSError:
        cpuinfo = ""
    if any(line.startswith("flags") and "hypervisor" in line.split() for line in cpuinfo.splitlines()):
        return OK, "in a virtual machine (the CPU reports the hypervisor flag)", ""
    return warn


def _rootfs(env: Environment, p: Probe) -> Result:
    if p.exists(env.image_path):
        return OK, f"image at {env.image_path}", ""
    return FAIL, f"no image at {env.image_path}", "sudo workshop rootfs"


CheckFn = Callable[[Environment, Probe], Result]
CHECKS: tuple[tuple[str, str, CheckFn], ...] = (
    ("root", "running as root", _root),
    *((f"tool:{t}", f"{t} ({pkg})", _tool(t)) for t, pkg in TOOLS.items()),
    ("busybox", "static busybox (busybox-static)", _busybox),
    *((f"ns:{ns}", f"{ns} namespace", _namespace(ns)) for ns in NAMESPACES),
    ("userns", "user namespaces allowed", _userns),
    ("seccomp", "seccomp filters (libseccomp)", _seccomp),
    ("arch", "CPU architecture", _arch),
    ("overlay", "overlay filesystem", _overlay),
    ("cgroup:pids", "cgroup pids controller", _cgroup_pids),
    ("cgroup:memory", "cgroup memory controller", _cgroup_controller("memory")),
    ("cgroup:cpu", "cgroup cpu controller (CPU quotas)", _cgroup_controller("cpu")),
    ("veth", "veth network pairs", _veth),
    ("bridge", "bridge links", _bridge),
    ("statedir", "state dir can hold overlay upper dirs", _statedir),
    ("forward", "firewall FORWARD policy", _forward),
    ("vm", "running in a virtual machine", _vm),
    ("rootfs", "container image (rootfs)", _rootfs),
)
KEYS: tuple[str, ...] = tuple(key for key, _, _ in CHECKS)
OFFERED: frozenset[str] = frozenset({"tool:podman", "tool:runc"})
"""What setup.sh offers but does not install (the podman lesson's runtime): missing, it makes the lessons that need
it "cannot run here", and doctor still passes."""
