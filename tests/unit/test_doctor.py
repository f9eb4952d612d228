from __future__ import annotations

import os
import sys
import time
import types
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from workshop.doctor import (
    KEYS,
    REQUIREMENTS,
    Finding,
    Probe,
    Status,
    diagnose,
    exit_status,
    unmet,
)
from workshop.engine.processes import Completed
from workshop.environment import Environment

FIXTURES = Path(__file__).parent.parent / "fixtures"
PROC, SYS = Path("/fake/proc"), Path("/fake/sys")
ENV = Environment(proc_root=PROC, sys_root=SYS, state_dir=Path("/fake/state"), is_root=True)
ALL_TOOLS = (
    "unshare", "nsenter", "chroot", "mount", "umount", "pstree", "ip", "tar", "python3", "setpriv", "capsh", "dot",
    "podman", "runc",
)  # fmt: skip


class RootfsError(Exception):
    """Stands in for workshop.image.rootfs.RootfsError."""


@dataclass
class Machine:
    """A described machine: files, paths that exist, tools on PATH, and what `run` answers."""

    files: dict[Path, str] = field(default_factory=dict)
    present: set[Path] = field(default_factory=set)
    tools: set[str] = field(default_factory=lambda: set(ALL_TOOLS))
    runs: list[tuple[str, ...]] = field(default_factory=list)
    run_result: Completed = field(default_factory=lambda: Completed(("x",), 0, "", ""))
    answers: dict[str, Completed] = field(default_factory=dict)
    """Per program (argv[0]): what `run` answers instead of run_result."""

    def read_text(self, path: Path) -> str:
        if path in self.files:
            return self.files[path]
        raise FileNotFoundError(2, "No such file or directory", str(path))

    def run(self, argv: Sequence[str]) -> Completed:
        self.runs.append(tuple(argv))
        return replace(self.answers.get(argv[0], self.run_result), argv=tuple(argv))

    def probe(self, is_root: bool = True) -> Probe:
        return Probe(
            which=lambda name: f"/usr/bin/{name}" if name in self.tools else None,
            read_text=self.read_text,
            exists=lambda path: path in self.present or path in self.files,
            is_root=is_root,
            run=self.run,
            find_busybox=lambda: Path("/usr/bin/busybox"),
            resolve=lambda path: path,
        )


def healthy() -> Machine:
    """Ubuntu 24.04-like: cgroup v2 with pids, everything installed, image built."""
    m = Machine()
    m.files[PROC / "self/mountinfo"] = (FIXTURES / "mountinfo/v2-ubuntu2404.txt").read_text()
    m.files[SYS / "fs/cgroup/cgroup.controllers"] = (FIXTURES / "doctor/cgroup.controllers-ubuntu2404.txt").read_text()
    m.files[PROC / "filesystems"] = (FIXTURES / "doctor/filesystems.txt").read_text()
    m.files[PROC / "sys/user/max_user_namespaces"] = "15000\n"
    m.files[PROC / "sys/kernel/seccomp/actions_avail"] = (
        "kill_process kill_thread trap errno user_notif trace log allow\n"
    )
    m.present |= {PROC / "self/ns" / ns for ns in ("cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts")}
    m.files[PROC / "cpuinfo"] = (FIXTURES / "doctor/cpuinfo-kvm.txt").read_text()
    m.present |= {SYS / "module/veth", SYS / "module/bridge", ENV.image_path}
    return m


def by_key(findings: Sequence[Finding]) -> dict[str, Finding]:
    return {f.key: f for f in findings}


def test_everything_present_is_all_ok() -> None:
    m = healthy()
    findings = diagnose(ENV, m.probe())
    assert [f.key for f in findings] == list(KEYS)
    assert [f for f in findings if f.status is not Status.OK] == []
    assert all(f.fix == "" for f in findings)
    assert exit_status(findings) == 0
    assert m.runs == []  # the veth module was there: no probe process


def test_labels() -> None:
    f = by_key(diagnose(ENV, healthy().probe()))
    assert f["root"].label == "running as root"
    assert f["tool:unshare"].label == "unshare (util-linux)"
    assert f["cgroup:pids"].detail.startswith("cgroup v2")


def test_not_root() -> None:
    findings = diagnose(ENV, healthy().probe(is_root=False))
    root = by_key(findings)["root"]
    assert root.status is Status.FAIL
    assert "sudo" in root.fix
    assert exit_status(findings) == 1


def test_pstree_missing() -> None:
    m = healthy()
    m.tools.discard("pstree")
    f = by_key(diagnose(ENV, m.probe()))["tool:pstree"]
    assert f.status is Status.FAIL
    assert f.fix == "apt-get install psmisc"


def test_dot_missing_is_a_warning_no_lesson_needs_it() -> None:
    m = healthy()
    m.tools.discard("dot")
    findings = diagnose(ENV, m.probe())
    f = by_key(findings)["tool:dot"]
    assert f.status is Status.WARN
    assert f.fix == "apt-get install graphviz" and "diagram" in f.detail
    assert exit_status(findings) == 0


def test_v2_without_pids() -> None:
    m = healthy()
    m.files[SYS / "fs/cgroup/cgroup.controllers"] = "cpuset cpu io memory\n"
    f = by_key(diagnose(ENV, m.probe()))["cgroup:pids"]
    assert f.status is Status.FAIL
    assert "/sys/fs/cgroup/cgroup.controllers" in f.fix


def test_v1_without_pids_suggests_mounting_it() -> None:
    m = healthy()
    text = (FIXTURES / "mountinfo/v1-centos7.txt").read_text()
    m.files[PROC / "self/mountinfo"] = "\n".join(x for x in text.splitlines() if "/pids " not in x)
    f = by_key(diagnose(ENV, m.probe()))["cgroup:pids"]
    assert f.status is Status.FAIL
    assert "mount -t cgroup -o pids none /sys/fs/cgroup/pids" in f.fix


def test_hybrid_this_machine_layout() -> None:
    m = healthy()
    m.files[PROC / "self/mountinfo"] = (FIXTURES / "mountinfo/hybrid-debian12.txt").read_text()
    f = by_key(diagnose(ENV, m.probe()))["cgroup:pids"]
    assert f.status is Status.OK
    assert f.detail.startswith("cgroup v1 (hybrid): pids controller at /sys/fs/cgroup/pids")


def test_no_cgroup_at_all() -> None:
    m = healthy()
    m.files[PROC / "self/mountinfo"] = (FIXTURES / "mountinfo/none-container.txt").read_text()
    f = by_key(diagnose(ENV, m.probe()))["cgroup:pids"]
    assert f.status is Status.FAIL
    assert "mount -t cgroup2" in f.fix


def test_memory_and_cpu_on_v2_and_on_this_machines_v1_hierarchies() -> None:
    f = by_key(diagnose(ENV, healthy().probe()))
    assert f["cgroup:memory"].detail == "memory controller on cgroup2 at /sys/fs/cgroup"
    assert f["cgroup:cpu"].status is Status.OK
    m = healthy()
    m.files[PROC / "self/mountinfo"] = (FIXTURES / "mountinfo/hybrid-debian12.txt").read_text()
    m.files[Path("/sys/fs/cgroup/memory/memory.oom_control")] = "oom_kill 0\n"
    f = by_key(diagnose(ENV, m.probe()))
    assert f["cgroup:memory"].detail == "memory controller at /sys/fs/cgroup/memory"
    # no cpu.cfs_quota_us in the cpu hierarchy: a kernel without CFS bandwidth control cannot hold a quota
    assert f["cgroup:cpu"].status is Status.FAIL
    assert "CONFIG_CFS_BANDWIDTH" in f["cgroup:cpu"].detail


def test_v2_without_memory_names_the_boot_option() -> None:
    m = healthy()
    m.files[SYS / "fs/cgroup/cgroup.controllers"] = "cpuset cpu io pids\n"
    f = by_key(diagnose(ENV, m.probe()))["cgroup:memory"]
    assert f.status is Status.FAIL
    assert "cgroup_disable=memory" in f.fix


def test_overlay_missing() -> None:
    m = healthy()
    fs = m.files[PROC / "filesystems"]
    m.files[PROC / "filesystems"] = "\n".join(x for x in fs.splitlines() if "overlay" not in x)
    f = by_key(diagnose(ENV, m.probe()))["overlay"]
    assert f.status is Status.FAIL
    assert f.fix == "modprobe overlay"


def test_namespace_missing() -> None:
    m = healthy()
    m.present.discard(PROC / "self/ns/time")
    f = by_key(diagnose(ENV, m.probe()))["ns:time"]
    assert f.status is Status.FAIL
    assert "CONFIG_TIME_NS" in f.fix


def test_unreadable_files_are_findings_not_exceptions() -> None:
    def denied(path: Path) -> str:
        raise PermissionError(13, "Permission denied", str(path))

    probe = replace(healthy().probe(), read_text=denied)
    f = by_key(diagnose(ENV, probe))
    assert set(f) == set(KEYS)
    for key in ("overlay", "cgroup:pids", "userns"):
        assert f[key].status is Status.FAIL
        assert "Permission denied" in f[key].detail


def test_any_probe_error_is_a_finding() -> None:
    def broken(name: str) -> str | None:
        raise RuntimeError("which exploded")

    def no_exists(path: Path) -> bool:
        raise OSError(5, "Input/output error")

    probe = replace(healthy().probe(), which=broken, exists=no_exists)
    findings = diagnose(ENV, probe)
    assert [f.key for f in findings] == list(KEYS)
    assert "which exploded" in by_key(findings)["tool:tar"].detail
    assert "Input/output error" in by_key(findings)["ns:pid"].detail


def test_busybox_missing() -> None:
    def missing() -> Path:
        raise RootfsError("no static busybox found: apt-get install busybox-static")

    f = by_key(diagnose(ENV, replace(healthy().probe(), find_busybox=missing)))["busybox"]
    assert f.status is Status.FAIL
    assert "no static busybox" in f.detail
    assert f.fix == "apt-get install busybox-static"


def test_default_busybox_probe_uses_the_busybox_finder(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("workshop.image.busybox")
    fake.find_static_busybox = lambda: Path("/opt/busybox")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "workshop.image.busybox", fake)
    probe = replace(healthy().probe(), find_busybox=Probe().find_busybox)
    f = by_key(diagnose(ENV, probe))["busybox"]
    assert f.status is Status.OK
    assert "/opt/busybox" in f.detail


def test_veth_probed_in_a_throwaway_netns() -> None:
    m = healthy()
    m.present.discard(SYS / "module/veth")
    f = by_key(diagnose(ENV, m.probe()))["veth"]
    assert f.status is Status.OK
    (argv,) = m.runs
    assert argv[:2] == ("unshare", "--net")
    assert argv[argv.index("add") + 1] == "dev"  # `ip link add NAME` would parse NAME as an address


def test_veth_from_proc_modules() -> None:
    m = healthy()
    m.present.discard(SYS / "module/veth")
    m.files[PROC / "modules"] = "bridge 311296 0 - Live 0x0\nveth 40960 0 - Live 0x0\n"
    assert by_key(diagnose(ENV, m.probe()))["veth"].status is Status.OK
    assert m.runs == []


def test_veth_probe_fails() -> None:
    m = healthy()
    m.present.discard(SYS / "module/veth")
    m.run_result = Completed(("x",), 2, "", "Error: Unknown device type.\n")
    f = by_key(diagnose(ENV, m.probe()))["veth"]
    assert f.status is Status.FAIL
    assert "Unknown device type" in f.detail
    assert f.fix == "modprobe veth"


def test_veth_not_root_is_a_warning() -> None:
    m = healthy()
    m.present.discard(SYS / "module/veth")
    f = by_key(diagnose(ENV, m.probe(is_root=False)))["veth"]
    assert f.status is Status.WARN
    assert m.runs == []


def test_userns_restricted_by_apparmor_warns() -> None:
    m = healthy()
    m.files[PROC / "sys/kernel/apparmor_restrict_unprivileged_userns"] = "1\n"
    f = by_key(diagnose(ENV, m.probe()))["userns"]
    assert f.status is Status.WARN
    assert "apparmor_restrict_unprivileged_userns=0" in f.fix
    assert exit_status([f]) == 0


def test_rootfs_missing() -> None:
    m = healthy()
    m.present.discard(ENV.image_path)
    f = by_key(diagnose(ENV, m.probe()))["rootfs"]
    assert f.status is Status.FAIL
    assert f.fix == "sudo workshop rootfs"


def test_unmet() -> None:
    m = healthy()
    m.files[SYS / "fs/cgroup/cgroup.controllers"] = "memory\n"
    m.tools.discard("pstree")
    findings = diagnose(ENV, m.probe(is_root=False))
    assert [f.key for f in unmet(["root", "cgroup-pids"], findings)] == ["root", "cgroup:pids"]
    assert unmet(["unshare", "overlay"], findings) == []
    assert unmet([], findings) == []
    assert unmet(["root", "cgroup-pids"], diagnose(ENV, healthy().probe())) == []


def test_unmet_counts_unchecked_keys_as_failures() -> None:
    (f,) = unmet(["root"], [])
    assert f.key == "root"
    assert f.status is Status.FAIL


def test_unmet_unknown_word() -> None:
    with pytest.raises(ValueError, match="cgroups-memory"):
        unmet(["root", "cgroups-memory"], [])


def test_requirements_name_real_checks() -> None:
    assert {"root", "rootfs", "unshare", "nsenter", "pstree", "overlay", "cgroup-pids", "veth"} <= set(REQUIREMENTS)
    assert REQUIREMENTS["root"] == ("root",)
    assert REQUIREMENTS["unshare"] == ("tool:unshare", "ns:pid", "ns:mnt", "ns:uts")
    for keys in REQUIREMENTS.values():
        assert set(keys) <= set(KEYS)


def test_overlay_module_loadable_is_ok() -> None:
    m = healthy()
    fs = m.files[PROC / "filesystems"]
    m.files[PROC / "filesystems"] = "\n".join(x for x in fs.splitlines() if "overlay" not in x)
    m.tools.add("modprobe")
    f = by_key(diagnose(ENV, m.probe()))["overlay"]
    assert f.status is Status.OK
    assert ("modprobe", "-n", "-q", "overlay") in m.runs


def test_bridge_missing() -> None:
    m = healthy()
    m.present.discard(SYS / "module/bridge")
    m.tools.add("modprobe")
    m.run_result = Completed(("x",), 1, "", "Error: Unknown device type.\n")
    f = by_key(diagnose(ENV, m.probe()))["bridge"]
    assert f.status is Status.FAIL
    assert f.fix == "modprobe bridge"
    assert m.runs[0] == ("modprobe", "-n", "-q", "bridge")
    assert m.runs[1][:2] == ("unshare", "--net") and m.runs[1][-2:] == ("type", "bridge")
    assert [x.key for x in unmet(["veth"], diagnose(ENV, m.probe()))] == ["bridge"]


def test_bridge_loadable_module() -> None:
    m = healthy()
    m.present.discard(SYS / "module/bridge")
    m.tools.add("modprobe")
    f = by_key(diagnose(ENV, m.probe()))["bridge"]
    assert f.status is Status.OK
    assert "modprobe -n" in f.detail
    assert m.runs == [("modprobe", "-n", "-q", "bridge")]


def test_bridge_from_proc_modules() -> None:
    m = healthy()
    m.present.discard(SYS / "module/bridge")
    m.files[PROC / "modules"] = "bridge 311296 0 - Live 0x0\nveth 40960 0 - Live 0x0\n"
    assert by_key(diagnose(ENV, m.probe()))["bridge"].status is Status.OK
    assert m.runs == []


def with_state_on(m: Machine, state: str) -> Finding:
    m.files[PROC / "self/mountinfo"] = (FIXTURES / "doctor/mountinfo-vagrant-vboxsf.txt").read_text()
    env = Environment(proc_root=PROC, sys_root=SYS, state_dir=Path(state), is_root=True)
    return by_key(diagnose(env, m.probe()))["statedir"]


def test_statedir_on_ext4_is_ok() -> None:
    f = with_state_on(healthy(), "/var/lib/workshop")
    assert f.status is Status.OK
    assert f.detail == "/var/lib/workshop is on ext4 (mounted at /)"


@pytest.mark.parametrize(("state", "fstype"), [("/vagrant/state", "vboxsf"), ("/home/vagrant/my share/s", "9p")])
def test_statedir_on_a_shared_folder_fails(state: str, fstype: str) -> None:
    f = with_state_on(healthy(), state)
    assert f.status is Status.FAIL
    assert f"is on {fstype}" in f.detail
    assert "WORKSHOP_STATE_DIR" in f.fix and "ext4" in f.fix


def test_statedir_is_needed_by_the_overlay_lesson_only() -> None:
    m = healthy()
    m.files[PROC / "self/mountinfo"] = (FIXTURES / "doctor/mountinfo-vagrant-vboxsf.txt").read_text()
    env = Environment(proc_root=PROC, sys_root=SYS, state_dir=Path("/vagrant/state"), is_root=True)
    findings = diagnose(env, m.probe())
    assert [f.key for f in unmet(["overlay"], findings)] == ["statedir"]
    assert unmet(["unshare", "veth"], findings) == []


def test_statedir_resolves_symlinks_and_prefers_the_longest_mount() -> None:
    m = healthy()
    m.files[PROC / "self/mountinfo"] = (FIXTURES / "doctor/mountinfo-vagrant-vboxsf.txt").read_text()
    env = Environment(proc_root=PROC, sys_root=SYS, state_dir=Path("/var/lib/workshop"), is_root=True)
    probe = replace(m.probe(), resolve=lambda path: Path("/vagrant/ws"))
    assert by_key(diagnose(env, probe))["statedir"].status is Status.FAIL
    assert with_state_on(healthy(), "/vagrantx/state").status is Status.OK  # a prefix string, not a parent


def test_statedir_nodev_warns() -> None:
    f = with_state_on(healthy(), "/tmp/state")
    assert f.status is Status.WARN
    assert "nodev" in f.detail and "/dev/null" in f.detail
    assert "WORKSHOP_STATE_DIR" in f.fix


def test_forward_drop_from_docker_warns() -> None:
    m = healthy()
    m.tools.add("iptables")
    m.answers["iptables"] = Completed(("x",), 0, (FIXTURES / "doctor/iptables-docker.txt").read_text(), "")
    findings = diagnose(ENV, m.probe())
    f = by_key(findings)["forward"]
    assert f.status is Status.WARN
    assert "-P FORWARD DROP" in f.detail and "Docker" in f.detail
    assert "own" in f.detail and "unaffected" in f.detail  # the lesson's bridge has a namespace of its own
    assert "iptables -P FORWARD ACCEPT" in f.fix
    assert ("iptables", "-S", "FORWARD") in m.runs
    assert exit_status(findings) == 0
    assert unmet(["veth"], findings) == []


def test_forward_drop_from_nftables_warns() -> None:
    m = healthy()
    m.tools.add("nft")
    m.answers["nft"] = Completed(("x",), 0, (FIXTURES / "doctor/nft-chains-drop.txt").read_text(), "")
    f = by_key(diagnose(ENV, m.probe()))["forward"]
    assert f.status is Status.WARN
    assert "nftables" in f.detail


def test_forward_accept_is_ok() -> None:
    m = healthy()
    m.tools |= {"iptables", "nft"}
    m.answers["iptables"] = Completed(("x",), 0, "-P FORWARD ACCEPT\n", "")
    text = (FIXTURES / "doctor/nft-chains-drop.txt").read_text()
    m.answers["nft"] = Completed(("x",), 0, text.replace("policy drop", "policy accept"), "")
    assert by_key(diagnose(ENV, m.probe()))["forward"].status is Status.OK


def test_forward_not_root_is_not_probed() -> None:
    m = healthy()
    m.tools.add("iptables")
    f = by_key(diagnose(ENV, m.probe(is_root=False)))["forward"]
    assert f.status is Status.OK
    assert m.runs == []


def test_vm_from_systemd_detect_virt() -> None:
    m = healthy()
    m.tools.add("systemd-detect-virt")
    m.answers["systemd-detect-virt"] = Completed(("x",), 0, "kvm\n", "")
    f = by_key(diagnose(ENV, m.probe()))["vm"]
    assert f.status is Status.OK
    assert "kvm" in f.detail
    assert ("systemd-detect-virt", "--vm") in m.runs


def test_physical_machine_warns() -> None:
    m = healthy()
    m.tools.add("systemd-detect-virt")
    m.answers["systemd-detect-virt"] = Completed(("x",), 1, "none\n", "")
    findings = diagnose(ENV, m.probe())
    f = by_key(findings)["vm"]
    assert f.status is Status.WARN
    assert "a VM is the safe place" in f.fix
    assert exit_status(findings) == 0


def test_vm_from_dmi_and_cpuinfo() -> None:
    m = healthy()
    m.files[PROC / "cpuinfo"] = (FIXTURES / "doctor/cpuinfo-metal.txt").read_text()
    assert by_key(diagnose(ENV, m.probe()))["vm"].status is Status.WARN
    m.files[SYS / "class/dmi/id/sys_vendor"] = "innotek GmbH\n"
    f = by_key(diagnose(ENV, m.probe()))["vm"]
    assert f.status is Status.OK
    assert "innotek" in f.detail
    assert by_key(diagnose(ENV, healthy().probe()))["vm"].detail.endswith("hypervisor flag)")


def test_diagnose_on_this_machine() -> None:
    env = Environment()
    start = time.monotonic()
    findings = diagnose(env)
    elapsed = time.monotonic() - start
    assert [f.key for f in findings] == list(KEYS)
    assert all(isinstance(f.status, Status) for f in findings)
    assert all(f.fix for f in findings if f.status is not Status.OK)
    assert elapsed < 1.0  # well under 300 ms here; generous for a loaded CI box
    if os.geteuid() == 0:
        assert by_key(findings)["root"].status is Status.OK


def test_a_kernel_without_seccomp_filters_fails_the_capabilities_lesson_only() -> None:
    m = healthy()
    del m.files[PROC / "sys/kernel/seccomp/actions_avail"]
    f = by_key(diagnose(ENV, m.probe()))["seccomp"]
    assert f.status is Status.FAIL and "CONFIG_SECCOMP_FILTER" in f.fix
    assert REQUIREMENTS["seccomp"] == ("seccomp",)  # the word the capabilities lesson requires


def test_podman_missing_blocks_its_lesson_but_not_the_machine() -> None:
    """podman is offered, not installed by setup.sh: without it the podman lesson cannot run, and says how to get it,
    while doctor still passes."""
    m = healthy()
    m.tools.discard("podman")
    m.tools.discard("runc")
    findings = diagnose(ENV, m.probe())
    missing = unmet(["root", "podman"], findings)
    assert [f.key for f in missing] == ["tool:podman", "tool:runc"]
    assert all(f.fix == "apt-get install podman runc" for f in missing)
    assert exit_status(findings) == 0
    assert unmet(["root", "unshare"], findings) == []
