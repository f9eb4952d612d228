"""The diagram of the lesson's state after a step, from what the observer read (`Snapshot`, `Diff`, `ExtrasDiff`).

No I/O here, so tests feed hand-made snapshots and the diagram always says what the text views say.
"""

from __future__ import annotations

from workshop.diagram import layers, network, pids
from workshop.diagram.model import Cable, Diagram, NetBox
from workshop.observe.process_diff import Diff
from workshop.observe.process_tree import Snapshot
from workshop.observe.resources import ExtrasDiff

_GONE_SHOWN = 8
"""A fork bomb's hundred ended processes are a count, not a wall of names."""


def build(snap: Snapshot, d: Diff, extras: ExtrasDiff | None = None) -> Diagram:
    """The diagram of the lesson's state after a step (`extras`: the views the lesson observes)."""
    root, orphans = pids.pid_boxes(snap, d)
    net: tuple[NetBox, ...] = ()
    cables: tuple[Cable, ...] = ()
    if extras is not None and extras.links is not None:
        net, cables = network.network(snap, d, extras.links)
    overlays = tuple(layers.overlays(snap, extras)) if extras is not None else ()
    cgroups = tuple(layers.cgroups(snap, extras)) if extras is not None else ()
    gone = tuple(f"{p.comm}({p.pid})" for p in d.gone[:_GONE_SHOWN])
    if len(d.gone) > _GONE_SHOWN:
        gone += (f"and {len(d.gone) - _GONE_SHOWN} more",)
    gone_ns = tuple(f"{ns_type} {inode}" for ns_type, inode in d.gone_namespaces)
    return Diagram(root, orphans, net, cables, overlays, cgroups, gone, gone_ns)
