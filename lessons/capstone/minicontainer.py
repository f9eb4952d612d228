"""minicontainer: a container runtime in one file, made of what the earlier lessons did by hand.

    minicontainer.py run --name NAME --state DIR [--rootfs DIR] [--hostname NAME] [--namespaces mnt,uts,...]
                         [--cgroup DIR [--pids-max N]] [--net NETNS --ip ADDR/LEN [--bridge BRIDGE]] -- CMD [ARG...]
    minicontainer.py teardown --name NAME --state DIR [--cgroup DIR] [--net NETNS]

`run` is the outline from the "build your own Docker" talks, made real. Two functions, two processes:

    main()  (the runtime, on the host)             container_main()  (the child, in its new namespaces)
      pid = clone(container_main, CLONE_NEW...)      wait until the parent says go
      put pid into its cgroup                        unshare its cgroup namespace
      plug a veth cable into its network namespace   mount the overlay root, pivot_root into it
      say go                                         mount /proc and /dev, set the hostname
      waitpid(pid)                                   exec the command: it is PID 1 from now on
      teardown()

Each option switches one stage on, so you can add them one at a time, and every stage says what it does.
`teardown` undoes a run that was killed half-way; `run` calls it by itself when the container ends.
Needs root, Linux, Python 3.10 or newer and the host's `ip` and `nsenter`; nothing but the standard library.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import ipaddress
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from workshop.arch import syscall_number

# --- the kernel's interface, through the C library ------------------------------------------------------------
# Python 3.10/3.11 have no os.unshare, os.mount or os.pivot_root, so we call the C library directly.
libc = ctypes.CDLL(None, use_errno=True)
CHILD_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)
libc.clone.argtypes = [CHILD_FN, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
libc.unshare.argtypes = [ctypes.c_int]

# One clone flag per namespace type (linux/sched.h). The cgroup namespace comes later, see container_main.
CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS = 0x00020000, 0x02000000, 0x04000000
CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = 0x08000000, 0x20000000, 0x40000000
NAMESPACES = {"mnt": CLONE_NEWNS, "uts": CLONE_NEWUTS, "ipc": CLONE_NEWIPC, "pid": CLONE_NEWPID, "net": CLONE_NEWNET}
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x8, 0x4000, 0x40000  # linux/mount.h
MNT_DETACH = 2
# The C library has no pivot_root() wrapper: we make the system call by its number, which depends on the CPU
# (155 on x86_64, 41 on arm64); workshop.arch looks it up in libseccomp's table of every architecture.
SYS_PIVOT_ROOT = syscall_number("pivot_root")

STACK = ctypes.create_string_buffer(4 * 1024 * 1024)  # clone() runs the child on a stack we hand it
HOST_MNT_NS = os.stat("/proc/self/ns/mnt").st_ino  # to make sure we never change the host's mounts
DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9), "tty": (5, 0)}


class Failure(Exception):
    """Something the learner can fix; main() prints it as one line, never a traceback."""


def say(what: str) -> None:
    print(f"minicontainer: {what}", file=sys.stderr, flush=True)


def check(result: int, what: str) -> None:
    if result != 0:  # the C library returns -1 and leaves the reason in errno
        err = ctypes.get_errno()
        raise Failure(f"{what}: {os.strerror(err)}")


def mount(source: str, target: str, fstype: str, flags: int = 0, options: str | None = None) -> None:
    data = options.encode() if options else None
    check(libc.mount(source.encode(), target.encode(), fstype.encode(), flags, data), f"mount {fstype} on {target}")


# --- main(): the runtime on the host ------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    state, rootfs, cgroup, switch = validate(args)
    state.mkdir(parents=True, exist_ok=True)
    go_read, go_write = os.pipe()  # the child waits on this pipe until its cgroup and network are ready
    pid = 0
    try:
        if cgroup:
            make_cgroup(cgroup, args.pids_max)  # before the container exists: it will be born inside
        if rootfs:
            for layer in ("upper", "work", "merged"):
                (state / layer).mkdir(exist_ok=True)

        def child(_: object) -> int:
            try:
                os.close(go_write)  # so that read() sees end-of-file if the parent dies
                if os.read(go_read, 2) == b"go":
                    container_main(args, state, rootfs)
            except Exception as e:
                say(f"error in the container: {e}")
            finally:
                os._exit(127)  # only reached when something failed: exec never returns

        asked = args.namespaces.split(",")  # all five, unless --namespaces asks for fewer, to compare
        pid = clone(child, sum(NAMESPACES[ns] for ns in asked))
        os.close(go_read)
        stop_on_signals(pid)
        (state / "pid").write_text(f"{pid} {start_time(pid)}\n")
        say(f"clone(): the container is host PID {pid}, in new {', '.join(asked)} namespaces")
        if cgroup:
            (cgroup / "cgroup.procs").write_text(str(pid))  # it has not run a thing yet: nothing can escape
            say(f"cgroup: PID {pid} joined {cgroup}")
        if switch:
            plug_veth(pid, args.name, switch, args.bridge, args.ip)
        os.write(go_write, b"go")
        os.close(go_write)
        status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])  # negative: killed by that signal
        pid = 0
        say(f"the container exited with status {status}" if status >= 0 else f"the container got signal {-status}")
        return status if status >= 0 else 128 - status
    finally:
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)  # a second Ctrl-C must not cut the teardown short
        if pid:
            os.kill(pid, signal.SIGKILL)  # a stage failed: the container must not run half-made
            os.waitpid(pid, 0)
        teardown(args.name, state, cgroup, switch)


def validate(args: argparse.Namespace) -> tuple[Path, Path | None, Path | None, str | None]:
    if os.geteuid() != 0:
        raise Failure("namespaces, mounts and cgroups need root: run it with sudo")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,14}", args.name):
        raise Failure(f"--name {args.name!r}: up to 15 letters, digits, - or _ (it also names a network link)")
    state = Path(args.state).resolve()
    if len(state.parts) < 3:
        raise Failure(f"--state {state}: give the container a directory of its own (teardown deletes it)")
    if args.command is not None and (state / "pid").exists():
        raise Failure(f"{state} belongs to a container already: `teardown` it first")
    rootfs = Path(args.rootfs).resolve() if getattr(args, "rootfs", None) else None
    if rootfs and not (rootfs / "bin").is_dir():
        raise Failure(f"--rootfs {rootfs} is not an unpacked image (no bin/ in it): tar -xf IMAGE -C {rootfs}")
    if rootfs and (rootfs.is_relative_to(state) or state.is_relative_to(rootfs)):
        raise Failure("--state and --rootfs must not be inside one another: the image is shared, the state is not")
    if rootfs and any(c in str(p) for p in (rootfs, state) for c in ",:"):
        raise Failure("paths with ',' or ':' cannot be given to overlay: use other directories")
    cgroup = Path(args.cgroup).resolve() if args.cgroup else None
    if cgroup and not (cgroup.parent / "cgroup.procs").is_file():
        raise Failure(f"--cgroup {cgroup}: its parent is not a cgroup (use a directory under /sys/fs/cgroup)")
    if getattr(args, "pids_max", None) is not None and not cgroup:
        raise Failure("--pids-max needs --cgroup: the limit is a file of the container's cgroup")
    # teardown: a switch that is gone already took its end of the cable along
    switch = netns_path(args.net, missing_ok=args.command is None) if args.net else None
    if args.command is not None:  # `run`, not `teardown`
        asked = args.namespaces.split(",")
        if not set(asked) <= NAMESPACES.keys() or len(set(asked)) != len(asked):
            raise Failure(f"--namespaces {args.namespaces}: a comma list of {', '.join(NAMESPACES)}, each once")
        if "mnt" not in asked or "uts" not in asked:
            raise Failure("--namespaces needs mnt and uts: without them it would mount on the host and rename it")
        if switch and "net" not in asked:
            raise Failure("--net needs net in --namespaces: the cable's end must go into the container's own namespace")
        if switch and not args.ip:
            raise Failure("--net needs --ip ADDR/LEN: the address of the container's end of the cable")
        if args.ip and not switch:
            raise Failure("--ip needs --net NETNS: the network namespace the other end of the cable goes into")
        if args.ip and "/" not in args.ip:
            raise Failure(f"--ip {args.ip}: add the prefix length, like {args.ip}/24")
        if args.ip:
            ipaddress.ip_interface(args.ip)  # a ValueError names what is wrong
        for tool in ("ip", "nsenter") if switch else ():
            if not shutil.which(tool):
                raise Failure(f"{tool} is not installed: apt-get install iproute2 util-linux")
        # a failed start tears down what it made: make sure none of that belongs to another container
        if cgroup and cgroup.is_dir() and (cgroup / "cgroup.procs").read_text().split():
            raise Failure(f"--cgroup {cgroup} holds processes already: give each container a cgroup of its own")
        if (
            switch
            and subprocess.run(
                ["nsenter", f"--net={switch}", "ip", "link", "show", args.name], capture_output=True
            ).returncode
            == 0
        ):
            raise Failure(f"--net {args.net} has a link {args.name} already: another container of that name?")
    return state, rootfs, cgroup, switch


def clone(fn: Callable[[object], int], flags: int) -> int:
    """fork() with flags: the child starts life in new namespaces, as PID 1 of its new PID namespace."""
    sys.stdout.flush()
    sys.stderr.flush()
    top = ctypes.c_void_p(ctypes.addressof(STACK) + len(STACK))  # stacks grow down: hand clone() the end
    pid = int(libc.clone(CHILD_FN(fn), top, flags | signal.SIGCHLD, None))
    if pid < 0:
        raise Failure(f"clone(): {os.strerror(ctypes.get_errno())}")
    return pid


def stop_on_signals(pid: int) -> None:
    """Ctrl-C, kill or a closed terminal end the container (PID 1 ignores most signals), then we tear down."""

    def stop(signum: int, frame: object) -> None:
        say(f"got signal {signum}: stopping the container")
        os.kill(pid, signal.SIGKILL)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, stop)


def start_time(pid: int) -> str:
    """When the process started (field 22 of /proc/PID/stat): with the PID, it names one process for good.
    "gone" once it has ended (a zombie has ended too: it only waits for its parent to collect its status)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return "gone"
    return "gone" if fields[0] == "Z" else fields[19]


def make_cgroup(cgroup: Path, pids_max: int | None) -> None:
    """A cgroup is a directory: mkdir creates it, and the kernel fills it with control files."""
    cgroup.mkdir(exist_ok=True)
    if not (cgroup / "pids.max").exists():
        raise Failure(
            f"{cgroup} has no pids controller. On cgroup v2, switch it on for the children of its parent: "
            f"echo +pids > {cgroup.parent}/cgroup.subtree_control"
        )
    if pids_max is not None:
        (cgroup / "pids.max").write_text(str(pids_max))
    say(f"cgroup: {cgroup}, pids.max = {(cgroup / 'pids.max').read_text().strip()}")


def netns_path(net: str, missing_ok: bool = False) -> str | None:
    """A network namespace is a file: a name in /run/netns, or /proc/PID/ns/net of a process in it."""
    path = net if "/" in net else f"/run/netns/{net}"
    try:
        ns = os.stat(path)
    except OSError as e:
        if missing_ok:
            return None
        raise Failure(f"--net {net}: no network namespace at {path} ({e.strerror})") from None
    host = os.stat("/proc/self/ns/net")
    if (ns.st_dev, ns.st_ino) == (host.st_dev, host.st_ino):
        raise Failure(f"--net {net} is the host's own network namespace: give one of its own (unshare -n)")
    return path


def ip_in(netns: str, *words: str) -> None:
    """The host's `ip`, run in another network namespace: the same commands the veth lesson typed."""
    argv = ["nsenter", f"--net={netns}", "ip", *words]
    say("network: " + " ".join(argv))
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise Failure(f"`{' '.join(argv)}` failed: {done.stderr.strip()}")


def plug_veth(pid: int, name: str, switch: str, bridge: str | None, address: str) -> None:
    """A veth pair is a cable: one end, named after the container, in the switch's namespace (a port of its
    bridge), the other end born right inside the container's namespace as eth0. The host's has neither."""
    container = f"/proc/{pid}/ns/net"
    ip_in(switch, "link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", str(pid))
    if bridge:
        ip_in(switch, "link", "set", name, "master", bridge)
    ip_in(switch, "link", "set", name, "up")
    ip_in(container, "link", "set", "lo", "up")
    ip_in(container, "addr", "add", address, "dev", "eth0")
    ip_in(container, "link", "set", "eth0", "up")


# --- container_main(): the child, inside its new namespaces --------------------------------------------------


def container_main(args: argparse.Namespace, state: Path, rootfs: Path | None) -> None:
    """Runs as the first process of the new namespaces (PID 1), and ends by becoming the command."""
    # The parent put us into our cgroup: a new cgroup namespace now makes that cgroup look like the root, "/".
    check(libc.unshare(CLONE_NEWCGROUP), "unshare(CLONE_NEWCGROUP)")
    make_mounts_private()
    if rootfs:
        enter_overlay_root(rootfs, state)
    # A /proc of our own: it shows the processes of the PID namespace that mounts it, ours.
    os.makedirs("/proc", exist_ok=True)
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    if rootfs:
        make_dev()
    socket.sethostname(args.hostname or args.name)  # in our own UTS namespace: the host keeps its name
    say(f"hostname {socket.gethostname()}, /proc mounted; exec {' '.join(args.command)}")
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # Python ignores SIGPIPE; the command must not inherit that
    try:
        os.execvp(args.command[0], args.command)  # same process, new program: the command is PID 1 now
    except OSError as e:
        raise Failure(f"cannot run {args.command[0]}: {e.strerror}") from None


def make_mounts_private() -> None:
    """The new mount namespace is a copy of the host's, propagation included: where / is "shared" (systemd
    makes it so), every mount we make would appear on the host as well. Make all mounts private, in here."""
    if os.stat("/proc/self/ns/mnt").st_ino == HOST_MNT_NS:
        raise Failure("refusing to change mount propagation: this is still the host's mount namespace")
    mount("none", "/", "none", MS_REC | MS_PRIVATE)


def enter_overlay_root(rootfs: Path, state: Path) -> None:
    """The image below, the container's own layer on top, the merged view as the new /."""
    merged, old = state / "merged", state / "merged/.oldroot"
    layers = f"lowerdir={rootfs},upperdir={state}/upper,workdir={state}/work"
    mount("overlay", str(merged), "overlay", 0, layers)
    say(f"overlay on {merged}: {layers}")
    # pivot_root swaps the root mount of this mount namespace: the merged dir becomes /, the old / moves to
    # /.oldroot. Unlike chroot, nothing of the host is left behind once we unmount it, so there is no escape.
    old.mkdir(exist_ok=True)
    check(libc.syscall(ctypes.c_long(SYS_PIVOT_ROOT), str(merged).encode(), str(old).encode()), "pivot_root")
    os.chdir("/")
    check(libc.umount2(b"/.oldroot", MNT_DETACH), "umount /.oldroot")
    os.rmdir("/.oldroot")
    say("pivot_root: / is the overlay now, the host's / is unmounted")


def make_dev() -> None:
    """A minimal /dev: a tmpfs with the few device nodes programs expect. A device node is a file holding two
    numbers (major, minor) that name a driver in the kernel; mknod makes one."""
    os.makedirs("/dev", exist_ok=True)
    mount("tmpfs", "/dev", "tmpfs", MS_NOSUID, "mode=755,size=64k")
    for name, (major, minor) in DEVICES.items():
        os.mknod(f"/dev/{name}", stat.S_IFCHR | 0o666, os.makedev(major, minor))
        os.chmod(f"/dev/{name}", 0o666)  # mknod applied our umask
    for n, link in enumerate(("stdin", "stdout", "stderr")):
        os.symlink(f"/proc/self/fd/{n}", f"/dev/{link}")
    os.symlink("/proc/self/fd", "/dev/fd")


# --- teardown(): undo everything, whatever state it is in ----------------------------------------------------


def teardown(name: str, state: Path, cgroup: Path | None, switch: str | None) -> None:
    """Processes first, then the cable, then the files. Safe to run twice, or after a run that was killed."""
    pidfile = state / "pid"
    if pidfile.exists():
        pid, started = pidfile.read_text().split()
        if start_time(int(pid)) == started:  # still that very process, not a new one with a reused PID
            os.kill(int(pid), signal.SIGKILL)  # PID 1 dies, and its PID namespace takes every process along
            wait_until(lambda: start_time(int(pid)) != started, f"PID {pid} to end")
            say(f"killed the container, host PID {pid}")
    if cgroup and cgroup.is_dir():
        empty_and_remove(cgroup)
    if switch and os.path.exists(switch):
        # deleting one end of a veth pair deletes both. The kernel also deletes the pair when the container's
        # network namespace goes, a moment after its last process: so "not there (any more)" is fine too.
        ip_link = ["nsenter", f"--net={switch}", "ip", "link"]
        if subprocess.run([*ip_link, "del", name], capture_output=True).returncode == 0:
            say(f"network: deleted the veth {name}")
        elif subprocess.run([*ip_link, "show", name], capture_output=True).returncode == 0:
            raise Failure(f"cannot delete the veth {name} in {switch}")
    if state.exists():
        # the overlay was mounted in the container's mount namespace and went with it; check before deleting
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        if any(m == str(state) or m.startswith(f"{state}/") for m in mounts):
            raise Failure(f"something is still mounted below {state}; not deleting it")
        shutil.rmtree(state)
        say(f"deleted {state}")
    say(f"teardown of {name}: done")


def empty_and_remove(cgroup: Path) -> None:
    """A cgroup can only be removed once empty: kill what is in it (cgroup v2 also has cgroup.kill for that)."""

    def removed() -> bool:
        pids = [int(p) for p in (cgroup / "cgroup.procs").read_text().split()]
        if os.getpid() in pids:
            raise Failure(f"refusing to empty {cgroup}: minicontainer itself runs in it")
        for p in pids:
            with contextlib.suppress(ProcessLookupError):  # it may be on its way out already
                os.kill(p, signal.SIGKILL)
        try:
            cgroup.rmdir()
        except OSError as e:
            if e.errno != errno.EBUSY:  # busy: not empty yet, or the last process is still on its way out
                raise
            return False
        return True

    wait_until(removed, f"{cgroup} to be empty and removed")
    say(f"cgroup {cgroup}: removed")


def wait_until(done: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise Failure(f"gave up waiting for {what}")
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="minicontainer.py", description="A small container runtime.")
    sub = parser.add_subparsers(dest="action", required=True)
    start = sub.add_parser("run", help="run a command in a new container, tear it down when it ends")
    stop = sub.add_parser("teardown", help="remove what a run left behind (after a crash)")
    for p in (start, stop):
        p.add_argument("--name", required=True, help="the container's name (and its veth's, in the switch)")
        p.add_argument("--state", required=True, help="a directory for this container alone (deleted at the end)")
        p.add_argument("--cgroup", help="the container's own cgroup directory, made and removed by us")
        p.add_argument("--net", help="the network namespace (name or path) the other end of the veth goes into")
    start.add_argument("--rootfs", help="an unpacked image: the lower layer of the container's overlay root")
    start.add_argument("--hostname", help="the container's hostname (default: its name)")
    start.add_argument(
        "--namespaces", default="mnt,uts,ipc,pid,net", help="the new namespaces clone() makes (default: all five)"
    )
    start.add_argument("--pids-max", type=int, help="at most this many processes in the container")
    start.add_argument("--ip", help="the address of the container's eth0, like 10.200.3.2/24")
    start.add_argument("--bridge", help="make the switch's end of the veth a port of this bridge")
    start.add_argument("command", nargs="*", default=["/bin/sh"], help="the command (after --); default /bin/sh")
    stop.set_defaults(command=None)
    args = parser.parse_args(argv)
    try:
        if args.action == "run":
            return run(args)
        state, _, cgroup, switch = validate(args)
        teardown(args.name, state, cgroup, switch)
        return 0
    except (Failure, OSError, ValueError) as e:
        say(f"error: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
