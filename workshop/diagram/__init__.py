"""Diagrams of the lesson's kernel state after every step, drawn by Graphviz from the observer's snapshot.

`model` makes the picture's parts from a snapshot (pure), `dot` writes them as DOT, `svg` runs `dot`. Front ends
call `svg_for(observed_event)`.
"""

from __future__ import annotations

from workshop.diagram.svg import DiagramError as DiagramError
from workshop.diagram.svg import dot_for as dot_for
from workshop.diagram.svg import svg_for as svg_for
