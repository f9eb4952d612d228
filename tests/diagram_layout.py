"""What dot made of a diagram, read back from `dot -Tjson`: which node sits in which cluster, how clusters nest,
which edges join which nodes. The unit and live diagram tests check the drawing itself this way, not the DOT text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Layout:
    parent: dict[str, str | None]
    """Cluster name -> the cluster it is drawn in (None at the top)."""
    home: dict[str, str | None]
    """Node name -> the innermost cluster it is drawn in (None: outside every cluster)."""
    edges: list[tuple[str, str]]
    """(tail, head) node names, one per edge dot drew."""

    def depth(self, cluster: str) -> int:
        n, current = 0, self.parent[cluster]
        while current is not None:
            n, current = n + 1, self.parent[current]
        return n

    def between(self, a: str, b: str) -> list[tuple[str, str]]:
        """The edges joining nodes `a` and `b`, either way round."""
        return [e for e in self.edges if set(e) == {a, b}]


def read_layout(json_text: str) -> Layout:
    data: dict[str, Any] = json.loads(json_text)
    objects: list[dict[str, Any]] = data.get("objects", [])
    count = int(data.get("_subgraph_cnt", 0))
    clusters, nodes = objects[:count], objects[count:]
    name = {o["_gvid"]: o["name"] for o in objects}
    parent: dict[str, str | None] = {c["name"]: None for c in clusters}
    for c in clusters:
        for child in c.get("subgraphs", []):
            parent[name[child]] = c["name"]
    layout = Layout(parent, {}, [])
    home: dict[str, str | None] = {n["name"]: None for n in nodes}
    for c in sorted(clusters, key=lambda c: layout.depth(c["name"])):  # deeper clusters overwrite outer ones
        for node in c.get("nodes", []):
            home[name[node]] = c["name"]
    edges = [(name[e["tail"]], name[e["head"]]) for e in data.get("edges", [])]
    return Layout(parent, home, edges)
