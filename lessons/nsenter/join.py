"""nsenter in a few lines: join a running container's UTS and network namespaces with setns(2), look around,
bring its loopback up, then exec a shell that stays in those namespaces.

Usage: join.py PID [uts | net]...

`join.py PID` joins both; `join.py PID uts` or `join.py PID net` only the one, to compare. The netlink part (list
the links, switch `lo` on) only runs once the network namespace is the container's: it never touches the host's.

Only `uts` and `net` are joined. Joining a mount namespace needs a single-threaded process (setns fails with
EINVAL otherwise), and a PID namespace is only entered by the children of the caller, so nsenter forks for
it; both are left out here to keep the script honest and short.
"""

from __future__ import annotations

import ctypes
import os
import socket
import sys

CLONE_NEWUTS = 0x04000000
CLONE_NEWNET = 0x40000000
IFF_UP = 0x1


def setns(path: str, nstype: int) -> None:
    """setns(2) on the namespace file `path`: os.setns from Python 3.12 on, libc's setns through ctypes before."""
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


def where(label: str) -> None:
    uts, net = os.readlink("/proc/self/ns/uts"), os.readlink("/proc/self/ns/net")
    print(f"{label}: hostname {socket.gethostname()!r:24} {uts}  {net}")


def links_and_lo_up() -> None:
    # a netlink socket talks to the network namespace its creator is in when it is created: now the container's
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        for link in ipr.get_links():
            state = "UP" if link["flags"] & IFF_UP else "DOWN"
            print(f"link {link['index']}: {link.get_attr('IFLA_IFNAME')} {state}")
        (lo,) = ipr.link_lookup(ifname="lo")
        ipr.link("set", index=lo, state="up")
        print("link lo set UP, from inside the container's network namespace")


def main() -> int:
    types = {"uts": CLONE_NEWUTS, "net": CLONE_NEWNET}
    asked = sys.argv[2:] or ["uts", "net"]
    if len(sys.argv) < 2 or not sys.argv[1].isdigit() or any(t not in types for t in asked):
        print(__doc__, file=sys.stderr)
        return 2
    pid = sys.argv[1]
    where("before setns")
    for t in asked:
        setns(f"/proc/{pid}/ns/{t}", types[t])
    where("after setns ")
    if "net" in asked:
        links_and_lo_up()
    else:
        print("the network namespace is still the host's: its links are left alone")

    print("exec /bin/sh: the shell inherits these namespaces, as after nsenter")
    sys.stdout.flush()
    os.execv("/bin/sh", ["/bin/sh"])


if __name__ == "__main__":
    sys.exit(main())
