"""DOT source -> SVG (or dot's JSON), through `dot` run by the one process runner, and the front ends' entry point.

The SVG is made self-contained: the XML declaration, the DOCTYPE (a URL of a DTD) and dot's comments are dropped,
so it can be embedded in a page as it is and references nothing outside itself.
"""

from __future__ import annotations

import itertools
import re

from workshop.diagram import build, dot
from workshop.engine import processes
from workshop.engine.events import Observed

DOT = "dot"
TIMEOUT = 10.0
"""dot lays out a lesson's step in tens of milliseconds; a runaway graph must not hang the session."""
_PROLOGUE = re.compile(r"\A(?:\s*(?:<\?xml[^>]*\?>|<!DOCTYPE[^>]*>|<!--.*?-->))*\s*", re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->\n?", re.DOTALL)
_ID = re.compile(r'(\sid=")')
_FIGURES = itertools.count(1)
"""Numbers the diagrams this process draws: a page or a recording holding several keeps every element id unique."""


class DiagramError(Exception):
    """The diagram could not be drawn; the message says why and what to do, for the learner's screen."""


def render(dot_source: str, fmt: str = "svg", timeout: float = TIMEOUT) -> str:
    """Runs `dot -T<fmt>` on `dot_source`; raises DiagramError (never a traceback's worth of detail) on failure."""
    done = processes.run([DOT, f"-T{fmt}"], input=dot_source, timeout=timeout)
    if done.returncode == 127:
        raise DiagramError("cannot draw the diagram: Graphviz's dot is not installed (apt-get install graphviz)")
    if done.timed_out:
        raise DiagramError(f"cannot draw the diagram: dot took more than {timeout:g} s")
    if not done.ok:
        detail = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        raise DiagramError(f"cannot draw the diagram: dot failed: {detail[0]}")
    return done.stdout


def self_contained(svg: str) -> str:
    """dot's SVG without its XML declaration, DOCTYPE and comments: the `<svg>` element alone."""
    return _COMMENT.sub("", _PROLOGUE.sub("", svg))


def render_svg(dot_source: str, timeout: float = TIMEOUT, id_prefix: str = "") -> str:
    """The SVG, self-contained; with `id_prefix`, every element id starts with it (dot's ids, `node1`, `clust1`, repeat
    in every drawing; nothing in them refers to an id, so renaming is safe)."""
    svg = self_contained(render(dot_source, "svg", timeout))
    return _ID.sub(rf"\1{id_prefix}", svg) if id_prefix else svg


def dot_for(event: Observed, title: str = "") -> str:
    """The DOT source of the diagram of an `Observed` event (what a step left behind)."""
    return dot.to_dot(build.build(event.snapshot, event.diff, event.extras), title)


def svg_for(event: Observed, title: str = "") -> str:
    """The diagram after a step, as SVG: what the web page, recordings and slides embed. Raises DiagramError.

    Building the model and its DOT takes about a millisecond; dot itself 15-40 ms for a lesson's step on a 2-CPU
    machine (up to ~80 ms), so a front end on an event loop runs this in a thread (`asyncio.to_thread`)."""
    return render_svg(dot_for(event, title), id_prefix=f"diagram{next(_FIGURES)}-")
