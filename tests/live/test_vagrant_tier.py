"""The learners' VM for real: `vagrant up` on the project's unchanged Vagrantfile, provisioned offline from a
bundle, then every lesson, the REPL, a `kill -9` and two learners inside a Debian 12 guest under systemd.

vagrant-libvirt, libvirtd and virtlogd run in namespaces of their own (`tests.vm.vagrant_host`): libvirt's
bridge, dnsmasq and NAT stay there, and nothing routes out of them, so the guest provisions from `bundle/` or
not at all. The box is built from Debian's packages (tests/vm/make-vagrant-box) and cached; the VM runs under
qemu's software emulation. One boot serves every test in this module.

About ten minutes here, most of it the boot and provisioning under software emulation (the box is cached after
its first build, ~2 min). `WORKSHOP_VAGRANT=0` skips it; without vagrant-libvirt or qemu it is skipped on a
laptop and fails under CI=true.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from tests import offline_debian
from tests.ci import missing, require_root, require_tool
from tests.hygiene import HostState
from tests.vm import vagrant_host
from tests.vm.vagrant_host import PrivateHost
from workshop.lesson import loader

REPO = Path(__file__).resolve().parents[2]
# A learner's VM has what setup.sh installs; podman is offered, not installed, so its lesson cannot run there.
LESSONS = [
    lesson.id for lesson in loader.load_all(loader.lesson_files(REPO / "lessons")) if "podman" not in lesson.requires
]
TIMES: dict[str, float] = {}
"""Boot-to-ready and provisioning, as measured here: printed at the end, quoted in docs/trainers.md."""

pytestmark = [
    pytest.mark.skipif(os.environ.get("WORKSHOP_VAGRANT") == "0", reason="WORKSHOP_VAGRANT=0"),
    # libvirt's cgroups and namespaces may not run beside other tests, and its guest wants both cores
    pytest.mark.after_background,
    # the first test also waits for the one boot and provisioning the module shares (software emulation)
    pytest.mark.timeout(1800),
]


@pytest.fixture(scope="module")
def vm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateHost]:
    require_root()
    for tool in ("vagrant", "libvirtd", "virtlogd", "qemu-system-x86_64", "qemu-img", "mmdebstrap", "unshare"):
        require_tool(tool)
    if not offline_debian.is_debian_12_amd64():
        missing("the tier builds a Debian 12 amd64 box from this machine's Debian mirror")
    # asked with a Vagrant home of its own: the default one, ~/.vagrant.d, would be made on the machine
    home = {**os.environ, "VAGRANT_HOME": str(tmp_path_factory.mktemp("vagrant.d")), "VAGRANT_CHECKPOINT_DISABLE": "1"}
    plugins = subprocess.run(["vagrant", "plugin", "list"], capture_output=True, text=True, env=home).stdout
    if "libvirt" not in plugins:
        missing("needs the vagrant-libvirt plugin (Debian's vagrant-libvirt package)")
    box = vagrant_host.box()
    bundle = offline_debian.make_bundle(tmp_path_factory.mktemp("vagrant-bundle") / "bundle")
    host_before = HostState.read()
    host = PrivateHost(Path(tmp_path_factory.mktemp("vagrant")) / "scratch")
    try:
        host.start()
        host.copy_project(bundle)
        host.vagrant("box", "add", "--name", vagrant_host.BOX_NAME, str(box), timeout=600)
        start = time.monotonic()
        host.vagrant("up", "--provider=libvirt", "--no-provision", timeout=1200)
        TIMES["boot to ready (vagrant up --no-provision)"] = time.monotonic() - start
        _assert_no_package_index(host)
        start = time.monotonic()
        host.vagrant("provision", timeout=1200)
        TIMES["provisioning from the bundle (vagrant provision)"] = time.monotonic() - start
        host.ssh_config()  # once, before two learners' threads read it
        yield host
    finally:
        host.close()
        for what, seconds in TIMES.items():
            print(f"vagrant tier: {what}: {seconds:.0f} s", file=sys.stderr)
    leaks = HostState.read().leaks_since(host_before)
    assert not leaks, "the Vagrant tier changed the host:\n" + "\n".join(leaks)


def _assert_no_package_index(host: PrivateHost) -> None:
    """The offline claim is tested, not assumed: from the guest, no package index answers."""
    probe = host.guest(
        "for url in https://pypi.org/simple/ http://deb.debian.org/debian/ https://files.pythonhosted.org/; do "
        "python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=8)' $url "
        ">/dev/null 2>&1 && echo REACHED $url; done; true",
        timeout=120,
    )
    reached = [line for line in probe.stdout.splitlines() if line.startswith("REACHED")]
    if reached:
        pytest.fail(
            "the guest reached a package index before provisioning, so this run cannot prove an offline install: "
            + ", ".join(reached)
        )


def test_the_guest_is_what_a_learner_has(vm: PrivateHost) -> None:
    facts = vm.guest(
        "echo pid1=$(cat /proc/1/comm); echo fs=$(stat -fc %T /sys/fs/cgroup); "
        "echo apparmor=$(cat /sys/module/apparmor/parameters/enabled); "
        "echo root=$(findmnt -no PROPAGATION /); echo v1=$(grep -c ' cgroup ' /proc/mounts || true)"
    ).stdout
    assert "pid1=systemd" in facts
    assert "fs=cgroup2fs" in facts and "v1=0" in facts, "cgroup v2 only"
    assert "apparmor=Y" in facts
    assert "root=shared" in facts


def test_provisioning_installed_the_runtime_from_the_bundle(vm: PrivateHost) -> None:
    done = vm.guest("command -v workshop; ls /opt/workshop/.venv/lib/python3*/site-packages | grep -c pytest || true")
    assert "/usr/local/bin/workshop" in done.stdout
    assert done.stdout.strip().endswith("0"), "a learner's VM has no test tools"


def test_doctor_and_every_lesson_pass_in_the_guest(vm: PrivateHost) -> None:
    before = _guest_state(vm)
    doctor = vm.guest("sudo workshop doctor --plain", check=False)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    script = "; ".join(
        f"s=$(date +%s); sudo workshop run {lesson} --yes --plain >/tmp/ws-{lesson}.log 2>&1; rc=$?; "
        f"echo \"{lesson}=$rc $(($(date +%s) - s)) $(grep -o '[0-9]*/[0-9]* steps passed' /tmp/ws-{lesson}.log)\""
        for lesson in LESSONS
    )
    done = vm.guest(script, timeout=1800)
    rows = {m[0]: m[1:] for m in re.findall(r"^([\w-]+)=(\d+) (\d+) ?(.*)$", done.stdout, flags=re.M)}
    results = {lesson: row[0] for lesson, row in rows.items()}
    print(
        "\nvagrant tier: every lesson in a Debian 12 guest under systemd (cgroup v2, / shared, AppArmor)",
        file=sys.stderr,
    )
    for lesson in LESSONS:
        rc, seconds, steps = rows.get(lesson, ("?", "?", ""))
        verdict = "passed" if rc == "0" else f"FAILED (exit {rc})"
        print(f"  {lesson:<14} {verdict:<16} {steps:<20} {seconds:>4} s", file=sys.stderr)
    failed = [lesson for lesson in LESSONS if results.get(lesson) != "0"]
    if failed:
        logs = vm.guest(" ; ".join(f"tail -n 30 /tmp/ws-{lesson}.log" for lesson in failed), check=False).stdout
        pytest.fail(f"lessons failed in the guest: {failed}\n{logs}")
    assert _guest_state(vm) == before, "the lessons changed the guest"


def _guest_state(vm: PrivateHost) -> str:
    return vm.guest(
        "sudo sh -c 'findmnt -rno TARGET | sort; ip -o link | cut -d: -f2 | sort; ip netns list | sort; "
        "find /sys/fs/cgroup -type d | grep -v -e /system.slice/ -e /user.slice/ | sort; "
        # systemd's own units come and go; the tool's scope and its keeper must not stay
        'find /sys/fs/cgroup/system.slice -path "*workshop*" | sort; pgrep -fa "^sleep infinity" || true\''
    ).stdout


def test_the_repl_over_ssh_solves_a_try_it_step(vm: PrivateHost) -> None:
    before = _guest_state(vm)
    child = pexpect.spawn(
        vm.command(["vagrant", "ssh", "--", "-t", "-q"])[0],
        vm.command(["vagrant", "ssh", "--", "-t", "-q"])[1:],
        cwd=str(vm.project), encoding="utf-8", codec_errors="replace", timeout=120, dimensions=(40, 120),
    )  # fmt: skip
    try:
        child.expect(r"\$ ")  # the learner's login shell is ready
        child.sendline("TERM=dumb NO_COLOR=1 PROMPT_TOOLKIT_NO_CPR=1 sudo -E workshop")
        child.expect_exact("workshop ❯ ")
        child.sendline("start process")
        child.expect(r"process 1/\d+ \S+# ")
        child.sendline("")  # step 1 runs
        child.expect(r"process 2/\d+ \S+# ")
        child.sendline("")  # step 2 is a try-it step: shown, not run
        child.expect("your turn")
        child.expect(r"process 2/\d+ container# ")
        child.sendline("unshare --uts /bin/sh")
        child.expect(r"process 2/\d+ container# ")
        child.sendline("hostname container-$WORKSHOP_SESSION")
        child.expect_exact("goal reached ✓")
        child.expect(r"process 3/\d+ \S+# ")
        child.sendline("stop")  # the lesson ends and is undone; the REPL stays
        child.expect_exact("workshop ❯ ", timeout=60)
        child.sendline("quit")  # and the REPL ends: back in the login shell
        child.expect(r"\$ ", timeout=60)
        child.sendline("exit")
        child.expect(pexpect.EOF, timeout=60)
    finally:
        child.close(force=True)
    assert _guest_state(vm) == before


def test_kill_9_in_the_middle_then_cleanup_restores_the_guest(vm: PrivateHost) -> None:
    before = _guest_state(vm)
    # the capstone's container is up after a few steps; then the tool dies the hard way
    vm.guest(
        "sudo sh -c 'nohup workshop run capstone --yes --plain >/tmp/ws-kill.log 2>&1 & echo $! >/tmp/ws-kill.pid'; "
        "for i in $(seq 60); do grep -q 'step 4/' /tmp/ws-kill.log && break; sleep 1; done; "
        "sudo kill -9 $(cat /tmp/ws-kill.pid); sleep 1"
    )
    assert _guest_state(vm) != before, "the kill left nothing to clean: it came too late to prove anything"
    cleanup = vm.guest("sudo workshop cleanup --plain", check=False)
    assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
    assert _guest_state(vm) == before


def test_two_learners_at_once_over_two_ssh_sessions(vm: PrivateHost) -> None:
    before = _guest_state(vm)
    vm.ssh_config()  # asked once, before the two learners
    results: dict[str, subprocess.CompletedProcess[str] | Exception] = {}

    def learner(lesson: str) -> None:
        try:
            results[lesson] = vm.guest_ssh(f"sudo workshop run {lesson} --yes --plain", timeout=900, check=False)
        except Exception as e:  # said by the assertion below, not lost in a thread
            results[lesson] = e

    lessons = ("veth", "cgroup-pids")
    threads = [threading.Thread(target=learner, args=(lesson,)) for lesson in lessons]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == sorted(lessons)
    for lesson, done in results.items():
        assert not isinstance(done, Exception), f"{lesson}: {done}"
        assert done.returncode == 0, f"{lesson}:\n{done.stdout[-3000:]}{done.stderr[-2000:]}"
    assert _guest_state(vm) == before
