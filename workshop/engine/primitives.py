"""What a shell line in a lesson cannot do well: prepare a cgroup parent (v1, v2, or systemd's delegated scope),
lease a free subnet.

Each function journals what it is about to create before creating it.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
from collections.abc import Sequence
from pathlib import Path

from workshop.engine import cgroupfs, processes, systemd_scope
from workshop.engine.journal import Journal, has_mark, journals, set_mark

SUBNET_POOL = ipaddress.IPv4Network("10.200.0.0/13")
"""Where lesson subnets come from (10.200.0.0 – 10.207.255.255); each session leases one free /24."""


HOST_PIDS_MARK = "trusted.workshop.host-pids"
"""On the tool's parent cgroup: the tool switched pids on in the host's cgroup above it, so whichever session
removes the parent last also switches it off, even a session whose journals are in another state dir. Other
controllers have a mark of their own (`host_mark`)."""


def host_mark(controller: str) -> str:
    return HOST_PIDS_MARK if controller == "pids" else f"trusted.workshop.host-{controller}"


def prepare_cgroup_parent(
    journal: Journal, layout: cgroupfs.CgroupLayout, plans: Sequence[cgroupfs.CgroupPlan]
) -> None:
    """Makes the tool's parent cgroup and switches the plans' controllers on where v2 needs it, journaling each
    change first, so a lesson's plain `mkdir {{cgroup}}` works on v1 and v2 alike.

    The plans share one parent (on v1 each controller has a hierarchy, and so a parent, of its own). Every switch
    on the host's side is journaled before the parent, so it is undone after the parent is gone: while the parent
    exists with a controller on for its children the kernel refuses to switch it off above (EBUSY)."""
    parent = plans[0].path.parent
    assert all(p.path.parent == parent for p in plans), "one parent per call"
    journal_dir = journal.path.parent
    v2 = layout.on_v2(plans[0].controller)
    if layout.delegated is not None and v2:
        # systemd's own tree: the parent is a scope it delegates to the tool, shared like the parent below.
        journal.record("systemd-scope", str(parent), journals=str(journal_dir))
        systemd_scope.ensure(parent, tuple(p.controller for p in plans))
        return
    ours: list[str] = []
    if v2:
        host_control = parent.parent / "cgroup.subtree_control"
        for plan in plans:
            controller = plan.controller
            mine = host_control in plan.enable_pids_in or has_mark(parent, host_mark(controller))
            if mine or _switch_claimed_elsewhere(journal, str(host_control), controller):
                journal.record("subtree-control", str(host_control), controller=controller, journals=str(journal_dir))
                cgroupfs.enable_controller(host_control, controller)
            if mine:
                ours.append(controller)
    # Journaled by every session that uses it, whoever made it: the parent is the tool's own (its name is the
    # tool's, see `cgroupfs.controller_parent`) and is removed only once empty, so the session that ends last
    # removes it, even when sessions keep their journals in different state dirs and cannot see each other's claims.
    journal.record("cgroup-parent", str(parent), version="v2" if v2 else "v1", journals=str(journal_dir))
    with contextlib.suppress(FileExistsError):  # another session may make it at the same moment
        parent.mkdir()
    for controller in ours:
        set_mark(parent, host_mark(controller))
    if v2:
        # Not journaled: the switch lives in the parent's own cgroup.subtree_control and goes with the parent.
        # Switching it off while another learner's cgroup is below would take that cgroup's limits away.
        for plan in plans:
            cgroupfs.enable_controller(parent / "cgroup.subtree_control", plan.controller)


def _switch_claimed_elsewhere(journal: Journal, host_control: str, controller: str) -> bool:
    return any(
        j.session != journal.session
        and any(
            e.kind == "subtree-control" and e.target == host_control and e.extra.get("controller", "pids") == controller
            for e in j.entries
        )
        for j in journals(journal.path.parent)
    )


def _network(text: str) -> ipaddress.IPv4Network | None:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    return net if isinstance(net, ipaddress.IPv4Network) else None


def _used_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network the host routes or has an address in, so a lesson subnet never shadows one."""
    texts: list[str] = []
    for argv in (["ip", "-j", "-4", "route", "show", "table", "all"], ["ip", "-j", "-4", "addr"]):
        done = processes.run(argv, timeout=5)
        try:
            items = json.loads(done.stdout) if done.ok and done.stdout.strip() else []
        except ValueError:
            items = []
        for item in items:
            if item.get("dst", "default") != "default":
                texts.append(item["dst"])
            texts += [f"{a.get('local')}/{a.get('prefixlen')}" for a in item.get("addr_info", [])]
    return [net for net in map(_network, texts) if net is not None]


def lease_subnet(journal: Journal, journal_dir: Path) -> str:
    """A free /24 from SUBNET_POOL, as "10.x.y"; journaled as a lease so concurrent sessions never share one."""
    used = _used_networks()
    leased = {e.target for j in journals(journal_dir) for e in j.entries if e.kind == "lease"}
    subnets: list[ipaddress.IPv4Network] = list(SUBNET_POOL.subnets(new_prefix=24))
    start = int(hashlib.sha256(journal.session.encode()).hexdigest(), 16) % len(subnets)
    for k in range(len(subnets)):
        net = subnets[(start + k) % len(subnets)]
        prefix = str(net.network_address).rsplit(".", 1)[0]
        if prefix in leased or any(net.overlaps(u) for u in used):
            continue
        journal.record("lease", prefix)
        return prefix
    raise RuntimeError(f"no free /24 left in {SUBNET_POOL} on this host")
