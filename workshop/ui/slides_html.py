"""Lesson text → HTML for the slides: prose through Markdown with raw HTML disabled, `{{variables}}` as highlighted
tokens, commands and expected output escaped, links kept off the network."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

from workshop.lesson import variables

# Placeholders survive Markdown as private-use characters and become highlighted tokens afterwards.
_VAR_OPEN, _VAR_CLOSE = "\ue000", "\ue001"
_MARKED_VAR = re.compile(f"{_VAR_OPEN}([A-Za-z_][\\w.\\-]*){_VAR_CLOSE}")
_EXTERNAL = re.compile(r"^([a-z][a-z0-9+.\-]*:|//)", re.IGNORECASE)


def esc(text: str) -> str:
    return html.escape(text, quote=True)


def var(name: str) -> str:
    """A `{{name}}` placeholder, shown as a token the audience reads as "filled in by the workshop"."""
    return f'<span class="var">⟨{esc(name)}⟩</span>'


def code(text: str) -> str:
    """Escaped text with its placeholders highlighted: for commands, scripts and examples."""
    out: list[str] = []
    pos = 0
    for m in variables.PLACEHOLDER.finditer(text):
        out.append(esc(text[pos : m.start()]))
        out.append(var(m.group(1)))
        pos = m.end()
    out.append(esc(text[pos:]))
    return "".join(out)


def _link_open(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    # A deck never loads or leaves for the network: an outside link shows its address instead of being one.
    if _EXTERNAL.match(str(tokens[idx].attrGet("href") or "")):
        return '<span class="link">'
    return self.renderToken(tokens, idx, options, env)


def _link_close(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    opening = next(t for t in reversed(tokens[:idx]) if t.type == "link_open")
    href = str(opening.attrGet("href") or "")
    if _EXTERNAL.match(href):
        return f'</span> <span class="url">({esc(href)})</span>'
    return self.renderToken(tokens, idx, options, env)


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False}).enable("table").disable("image")
    md.add_render_rule("link_open", _link_open)
    md.add_render_rule("link_close", _link_close)
    return md


def _mark_vars(text: str) -> str:
    return variables.PLACEHOLDER.sub(lambda m: f"{_VAR_OPEN}{m.group(1)}{_VAR_CLOSE}", text)


def _unmark_vars(rendered: str) -> str:
    return _MARKED_VAR.sub(lambda m: var(m.group(1)), rendered)


def markdown(text: str) -> str:
    """Block Markdown (prose, notes, hints) → HTML; raw HTML in the lesson is shown as text."""
    return _unmark_vars(_markdown().render(_mark_vars(text))).strip()


def markdown_inline(text: str) -> str:
    return _unmark_vars(_markdown().renderInline(_mark_vars(text)))


# An expect line is a regular expression; most are plain text with a little `\s+` or `.*`, and read best
# as the text they look for. Anything more (groups, classes, alternatives) is shown as the pattern it is.
_EXPECT_TOKEN = re.compile(
    r"(?P<var>\{\{\s*[A-Za-z_][\w.\-]*\s*\}\})|(?P<space>\\s[+*]?)|(?P<any>\.[*+])|(?P<number>\\d[+*]?)"
    r"|(?P<escaped>\\[^A-Za-z0-9])|(?P<meta>[\[\](){}|?*+\\^$])|(?P<text>.)",
    re.DOTALL,
)


def expected(pattern: str) -> tuple[str, bool]:
    """HTML for what an expect line looks for, and whether it had to be shown as a raw regular expression."""
    body = pattern[1:] if pattern.startswith("^") else pattern
    if body.endswith("$") and not body.endswith("\\$"):
        body = body[:-1]
    out: list[str] = []
    for m in _EXPECT_TOKEN.finditer(body):
        kind, value = m.lastgroup, m.group()
        if kind == "meta":
            return code(pattern), True
        if kind == "var":
            out.append(code(value))
        elif kind == "space":
            out.append(" ")
        elif kind == "any":
            out.append('<span class="wild">…</span>')
        elif kind == "number":
            out.append('<span class="wild">‹number›</span>')
        elif kind == "escaped":
            out.append(esc(value[1:]))
        else:
            out.append(esc(value))
    return "".join(out), False
