"""The same escape, tried against pivot_root in a new mount namespace: this time there is nowhere to go.

pivot_root(2) swaps the root *mount* of this mount namespace for the image and moves the old root aside; once the
old root is unmounted, the host's filesystem is simply not in this namespace any more. ".." at the top of the new
root is the new root. This is what container runtimes do instead of chroot.

usage: pivot_escape.py [--chroot] ROOTFS MARKER

--chroot enters the image with chroot instead, in the same new mount namespace: the namespace's copy of the mount
tree still holds the host's whole file system, so the escape works (to compare).
"""

import ctypes
import os
import sys

from workshop.arch import syscall_number

args = sys.argv[1:]
use_chroot = "--chroot" in args
if use_chroot:
    args.remove("--chroot")
# relative paths mean the directory we start in; after pivot_root only an absolute path could name the host's file
rootfs, marker = os.path.abspath(args[0]), os.path.abspath(args[1])
libc = ctypes.CDLL("libc.so.6", use_errno=True)
CLONE_NEWNS = 0x00020000
MS_REC, MS_PRIVATE, MS_BIND, MNT_DETACH = 0x4000, 0x40000, 0x1000, 2
# glibc has no pivot_root() wrapper: the call goes by its number, which depends on the CPU (workshop.arch knows
# every architecture's, from libseccomp)
SYS_pivot_root = syscall_number("pivot_root")


def check(ret: int, what: str) -> None:
    if ret != 0:
        sys.exit(f"{what}: {os.strerror(ctypes.get_errno())}")


def can_read(path: str) -> str:
    try:
        with open(path) as f:
            return "reads: " + f.read().strip()
    except OSError as e:
        return f"cannot read it ({e.strerror})"


host_mnt_ns = os.readlink("/proc/self/ns/mnt")
check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
# Never touch the host's propagation: only go on if we really are in a new mount namespace.
if os.readlink("/proc/self/ns/mnt") == host_mnt_ns:
    sys.exit("refusing to continue: still in the host's mount namespace")
# Private inside the new namespace, so nothing below propagates back to the host (systemd makes / shared).
check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
if use_chroot:
    os.chroot(rootfs)
    os.chdir("/")
    print(f"chrooted: / holds {sorted(os.listdir('/'))[:6]} ...")
else:
    # pivot_root needs the new root to be a mount point: bind the image onto itself.
    check(libc.mount(rootfs.encode(), rootfs.encode(), None, MS_BIND | MS_REC, None), "bind the image")
    os.chdir(rootfs)
    os.makedirs("old-root", exist_ok=True)
    check(libc.syscall(SYS_pivot_root, b".", b"old-root"), "pivot_root")
    os.chdir("/")
    check(libc.umount2(b"/old-root", MNT_DETACH), "unmount the old root")
    os.rmdir("/old-root")
    print(f"pivoted: / holds {sorted(os.listdir('/'))[:6]} ...")

# The classic escape, step by step as before.
os.makedirs("/escape", exist_ok=True)
os.chroot("/escape")
for _ in range(64):
    os.chdir("..")
os.chroot(".")
print(f"after the escape attempt, / holds {sorted(os.listdir('/'))[:6]} ...")
print(f"after the escape attempt, the host's {marker}: {can_read(marker)}")
if use_chroot:
    print("exec /bin/sh -- from whichever / this process ended up in")
else:
    print("exec /bin/sh -- the image's busybox: still inside")
os.execv("/bin/sh", ["/bin/sh"])
