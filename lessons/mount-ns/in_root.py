"""Read a file of a running container from the host, resolving the path the way the container would.

`/proc/<pid>/root/PATH` enters the container's root, but the kernel then resolves what follows with the reader's
rules: an absolute symbolic link in the container (`/tmp/x -> /etc/os-release`) is followed from the reader's /,
the host's. openat2(2) with RESOLVE_IN_ROOT treats the directory it is given as / for the whole lookup, symbolic
links and ".." included, so nothing resolves outside it. Container runtimes open paths in a container this way.

usage: in_root.py PID PATH       prints the file PATH as the container with shell PID sees it
"""

from __future__ import annotations

import ctypes
import os
import sys

from workshop.arch import syscall_number

# glibc 2.36 has no openat2() wrapper: the call goes by its number (437 everywhere, since it came after the tables
# were unified; workshop.arch asks libseccomp, as for every number that could differ)
SYS_openat2 = syscall_number("openat2")
RESOLVE_IN_ROOT = 0x10


class OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def open_in_root(root_fd: int, path: str) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    how = OpenHow(os.O_RDONLY | os.O_CLOEXEC, 0, RESOLVE_IN_ROOT)
    fd = libc.syscall(SYS_openat2, root_fd, path.encode(), ctypes.byref(how), ctypes.sizeof(how))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return int(fd)


def main() -> int:
    if len(sys.argv) != 3 or not sys.argv[1].isdigit():
        print(__doc__, file=sys.stderr)
        return 2
    pid, path = sys.argv[1], sys.argv[2]
    root = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY)
    try:
        fd = open_in_root(root, path.lstrip("/"))
    except OSError as e:
        print(f"in_root.py: {path}: {e.strerror}", file=sys.stderr)
        return 1
    finally:
        os.close(root)
    with os.fdopen(fd, "rb") as f:
        sys.stdout.buffer.write(f.read())
    return 0


if __name__ == "__main__":
    sys.exit(main())
