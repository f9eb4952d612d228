"""A private host for `vagrant up`: libvirtd, virtlogd and vagrant in namespaces of their own.

libvirt's management network brings a bridge, dnsmasq and NAT rules; here they land in a network namespace
this module creates, with no route out of it (so the guest has no route to any package index), and libvirt's
state (/etc/libvirt, /var/lib/libvirt, /run/libvirt, …) is a private copy in a mount namespace, so the host's
links, routes, firewall and libvirt objects are never touched. A keeper process holds both namespaces; every
command enters them with nsenter. `close()` destroys the VM, stops the daemons by PID, kills whatever is
still in the namespaces and removes the scratch directory. What it needs on the host is in tests/packages.txt.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests import libmount
from tests.harness import REPO

PRIMARY_MACHINE = "debian"
"""The Vagrantfile's primary machine, the one `vagrant up` starts."""

CACHE = Path(os.environ.get("WORKSHOP_TEST_CACHE", "/var/cache/workshop-tests"))
BOX_SCRIPT = REPO / "tests" / "vm" / "make-vagrant-box"
BOX_NAME = "bento/debian-12"
"""The name the project's Vagrantfile asks for: the test box stands in for it, unchanged Vagrantfile and all."""

LIBVIRT_DIRS = ("/etc/libvirt", "/var/lib/libvirt", "/run/libvirt", "/var/log/libvirt", "/var/cache/libvirt")


def box() -> Path:
    """The Debian 12 box, built once per version of its build script and kept in the cache."""
    key = hashlib.sha256(BOX_SCRIPT.read_bytes()).hexdigest()[:12]
    path = CACHE / f"vagrant-box-{key}" / "debian-12.box"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        env = libmount.elsewhere(path.parent / "libmount")  # its mmdebstrap mounts
        subprocess.run([str(BOX_SCRIPT), str(path)], check=True, timeout=1800, env=env)
        shutil.rmtree(path.parent / "libmount", ignore_errors=True)
    return path


class PrivateHost:
    """libvirt and vagrant inside a network and mount namespace of their own, with scratch state."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.project = scratch / "project"
        self.vagrant_home = scratch / "vagrant.d"
        self._keeper: subprocess.Popen[bytes] | None = None
        self._daemons: list[Path] = []
        self._machine_before: set[Path] = set()
        self._lock_dir_was_there = True

    # --- namespaces ---------------------------------------------------------------------------------------

    def start(self) -> None:
        self._machine_before = set(Path("/sys/fs/cgroup").glob("*/machine"))
        self._lock_dir_was_there = libmount.LOCK_DIR.exists()  # the namespace's first mount makes it on the host
        for scratch_dir in (self.scratch / "state", self.vagrant_home):
            scratch_dir.mkdir(parents=True)
        # The keeper makes the namespaces and sleeps; --kill-child ends it if the test process dies.
        self._keeper = subprocess.Popen(
            ["unshare", "--net", "--mount", "--propagation", "private", "--fork", "--kill-child", "sleep", "infinity"],
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while self._ns_pid() is None:
            if time.monotonic() > deadline:
                raise RuntimeError("the namespace keeper did not start")
            time.sleep(0.05)
        # /run is a tmpfs of the namespace's own: /run/libvirt (sockets, pid files) never appears on the host.
        setup = ["set -e", "ip link set lo up", "mount -t tmpfs -o mode=755 tmpfs /run"]
        for d in LIBVIRT_DIRS:
            private = self.scratch / "state" / d.strip("/").replace("/", "_")
            if d == "/etc/libvirt":
                shutil.copytree(d, private, symlinks=True)
                self._configure(private)
            elif d.startswith("/run/"):
                setup.append(f"mkdir -p {d}")
                continue
            else:
                private.mkdir()
            setup.append(f"mount --bind {private} {d}")
        self.sh("\n".join(setup))
        self._daemon("virtlogd", "/run/libvirt/virtlogd.pid", ["virtlogd", "--daemon", "--pid-file"])
        self._daemon("libvirtd", "/run/libvirt/libvirtd.pid", ["libvirtd", "--daemon", "--pid-file"])
        deadline = time.monotonic() + 30
        while self.sh("virsh -c qemu:///system version", check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("libvirtd did not answer within 30 s")
            time.sleep(0.3)

    @staticmethod
    def _configure(etc: Path) -> None:
        # The host's default network must not autostart in here, and qemu runs as root without a security
        # driver: the disk and kernel live in the test's scratch and cache directories.
        for autostart in (etc / "qemu" / "networks" / "autostart").glob("*"):
            autostart.unlink()
        with (etc / "qemu.conf").open("a") as conf:
            conf.write('\nuser = "root"\ngroup = "root"\nsecurity_driver = "none"\n')

    def _daemon(self, name: str, pid_file: str, argv: list[str]) -> None:
        self.sh(" ".join([*argv, pid_file]))
        self._daemons.append(Path(pid_file))

    def _ns_pid(self) -> int | None:
        if self._keeper is None:
            return None
        children = Path(f"/proc/{self._keeper.pid}/task/{self._keeper.pid}/children")
        try:
            pids = children.read_text().split()
        except OSError:
            return None
        return int(pids[0]) if pids else None

    def command(self, argv: list[str]) -> list[str]:
        """`argv` run inside the namespaces, with vagrant's state in the scratch directory."""
        pid = self._ns_pid()
        if pid is None:
            raise RuntimeError("the private host is not running")
        env = [
            f"VAGRANT_HOME={self.vagrant_home}",
            f"VAGRANT_CWD={self.project}",
            "VAGRANT_DEFAULT_PROVIDER=libvirt",
            "VAGRANT_CHECKPOINT_DISABLE=1",
            "VAGRANT_NO_COLOR=1",
            "LIBVIRT_DEFAULT_URI=qemu:///system",
        ]
        return ["nsenter", f"--target={pid}", "--net", "--mount", "env", *env, *argv]

    def sh(self, script: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            self.command(["sh", "-c", script]), capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if check and done.returncode != 0:
            raise RuntimeError(f"{script!r} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done

    def vagrant(self, *args: str, timeout: float = 1200, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            self.command(["vagrant", *args]), capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL, cwd=self.project,
        )  # fmt: skip
        if check and done.returncode != 0:
            raise RuntimeError(f"vagrant {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done

    def guest(self, script: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A command in the guest over `vagrant ssh`, as the learner's user."""
        return self.vagrant("ssh", "-c", script, "--", "-q", timeout=timeout, check=check)

    def guest_ssh(self, script: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        """The same over plain ssh, with the configuration `vagrant ssh-config` gives: several at once, as several
        learners would be. (`vagrant ssh` locks the machine while it starts, so two at once may be refused.)"""
        config = self.ssh_config()
        host = next(line.split()[1] for line in config.read_text().splitlines() if line.startswith("Host "))
        done = subprocess.run(
            self.command(["ssh", "-F", str(config), "-q", host, "--", script]), capture_output=True, text=True,
            timeout=timeout, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if check and done.returncode != 0:
            raise RuntimeError(f"ssh {script!r} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done

    def ssh_config(self) -> Path:
        """`vagrant ssh-config` for the primary machine (the Vagrantfile defines two; unnamed, the command asks every
        one, and the Ubuntu machine that was never started is "not yet ready for SSH"), kept beside the project."""
        config = self.project.parent / "ssh-config"
        if not config.exists():
            config.write_text(self.vagrant("ssh-config", PRIMARY_MACHINE, timeout=120).stdout)
        return config

    # --- the project, as a trainer copies it ---------------------------------------------------------------

    def copy_project(self, bundle: Path) -> None:
        listing = ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
        for name in subprocess.run(listing, capture_output=True, check=True).stdout.decode().split("\0"):
            if name and (REPO / name).exists():
                (self.project / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / name, self.project / name, follow_symlinks=False)
        shutil.copytree(bundle, self.project / "bundle")

    # --- teardown --------------------------------------------------------------------------------------------

    def close(self) -> None:
        try:
            self._close()
        finally:
            self._remove_libvirt_cgroups()
            libmount.restore(self._lock_dir_was_there)

    def _remove_libvirt_cgroups(self) -> None:
        """libvirtd puts its domains below a `machine` cgroup in every hierarchy and leaves it when they are gone;
        the ones it made for this tier (the machine had none) go, deepest first, once empty."""
        for top in self._machine_cgroups_new():
            below = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
            for d in [*below, top]:
                with contextlib.suppress(OSError):
                    d.rmdir()

    def _machine_cgroups_new(self) -> list[Path]:
        return [p for p in Path("/sys/fs/cgroup").glob("*/machine") if p.is_dir() and p not in self._machine_before]

    def _close(self) -> None:
        if self._ns_pid() is not None:
            if (self.project / ".vagrant").exists():
                self.vagrant("destroy", "-f", timeout=300, check=False)
            for pid_file in reversed(self._daemons):
                self.sh(f"[ -f {pid_file} ] && kill $(cat {pid_file}) || true", check=False)
            self._kill_namespace_processes()
        if self._keeper is not None:
            os.killpg(self._keeper.pid, signal.SIGKILL)
            self._keeper.wait()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def _kill_namespace_processes(self) -> None:
        """Whatever still runs in the private network namespace (qemu, dnsmasq, the daemons) is killed."""
        pid = self._ns_pid()
        if pid is None:
            return
        ours = os.readlink(f"/proc/{pid}/ns/net")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            left = []
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit() or int(entry.name) in (pid, os.getpid()):
                    continue
                try:
                    if os.readlink(entry / "ns" / "net") == ours:
                        left.append(int(entry.name))
                except OSError:
                    continue
            if not left:
                return
            for p in left:
                with_signal = signal.SIGTERM if time.monotonic() < deadline - 5 else signal.SIGKILL
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, with_signal)
            time.sleep(0.3)
