"""A veth pair between two containers, made over netlink with pyroute2: what `ip link add … peer … netns` does.

Usage: veth.py PID1 PID2 NAME NET
  puts NAME + "c" into the network namespace of PID1 with address NET.3,
  and its peer NAME + "d" into the one of PID2 with address NET.4, and brings both up.

Each address is a point-to-point one ("NET.3 peer NET.4", a /32): the kernel then routes exactly that one peer
through the new link, so it does not compete with a /24 on another link of the same namespace.
"""

from __future__ import annotations

import os
import sys

from pyroute2 import IPRoute


def netns(pid: str) -> str:
    path = f"/proc/{pid}/ns/net"
    # a container that is gone would leave its console's shell here, which lives in the host's namespace
    if os.stat(path).st_ino == os.stat("/proc/self/ns/net").st_ino:
        sys.exit(f"refusing: process {pid} is in the host's network namespace, not in a container's")
    return path


def main() -> None:
    pid1, pid2, name, net = sys.argv[1:5]
    ns1, ns2 = netns(pid1), netns(pid2)
    one, two = f"{name}c", f"{name}d"

    # flags=0: open a namespace that exists, never create one
    with IPRoute(netns=ns1, flags=0) as ipr:
        # create the pair in the first namespace; the peer is born directly in the second one
        ipr.link("add", ifname=one, kind="veth", peer={"ifname": two, "net_ns_pid": int(pid2)})
        (index,) = ipr.link_lookup(ifname=one)
        ipr.addr("add", index=index, local=f"{net}.3", address=f"{net}.4", prefixlen=32)
        ipr.link("set", index=index, state="up")
        print(f"{one}: {net}.3 peer {net}.4, up, in {ns1}")

    with IPRoute(netns=ns2, flags=0) as ipr:
        (index,) = ipr.link_lookup(ifname=two)
        ipr.addr("add", index=index, local=f"{net}.4", address=f"{net}.3", prefixlen=32)
        ipr.link("set", index=index, state="up")
        print(f"{two}: {net}.4 peer {net}.3, up, in {ns2}")


if __name__ == "__main__":
    main()
