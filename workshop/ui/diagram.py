"""Where the front ends (the page, recordings, slides) find the diagram of a step: `svg_for(observed) -> str`.

The diagram itself lives in `workshop.diagram` (model, DOT, running dot); this is its name on the UI side, the one
`workshop.serve.page_state.default_diagram` looks up. `svg_for` raises `DiagramError`, whose message says why (dot
missing: apt-get install graphviz) and is fit for the learner's screen.
"""

from __future__ import annotations

from workshop.diagram import DiagramError as DiagramError
from workshop.diagram import svg_for as svg_for
