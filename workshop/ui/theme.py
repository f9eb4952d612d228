"""Styles named by what they mean, not how they look; the renderer and views use only these names.

Two themes fill the same names: `default` for a terminal at arm's length, `projector` for a room (bold, high
contrast, nothing dim). `--plain` swaps every symbol for ASCII on the way out (`AsciiStream`).
"""

from __future__ import annotations

import io
import unicodedata
from typing import TextIO

from rich.theme import Theme

STYLES: dict[str, str] = {
    # lesson text
    "lesson.title": "bold cyan",
    "step.title": "bold",
    "step.counter": "cyan",
    "prose": "",
    "command": "bold green",
    "console.name": "magenta",
    "output": "",
    "output.error": "red",
    "hint": "yellow",
    "check.pass": "green",
    "check.fail": "bold red",
    "notice": "cyan",
    "warning": "yellow",
    "error": "bold red",
    "muted": "dim",
    # observer
    "heading": "bold blue",
    "proc.pid": "cyan",
    "proc.nspid": "magenta",
    "proc.new": "bold green",
    "proc.gone": "red strike",
    "proc.focus": "bold",
    "ns.host": "dim",
    "ns.new": "bold yellow",
    "ns.joined": "bold cyan",
    "ns.changed": "bold magenta",
    "ns.gone": "red",
    "ns.transition": "yellow",
    "unknown": "red",
    # extra views (mounts, cgroups, links)
    "mount.new": "bold green",
    "mount.gone": "red",
    "mount.changed": "yellow",
    "cgroup.new": "bold green",
    "cgroup.gone": "red",
    "cgroup.changed": "bold yellow",
    "cgroup.limit": "bold red",
    "link.new": "bold green",
    "link.gone": "red strike",
    "link.changed": "yellow",
    "link.up": "green",
    "link.down": "dim",
    # doctor
    "doctor.ok": "green",
    "doctor.warn": "yellow",
    "doctor.fail": "bold red",
    # trainer mode
    "notes": "yellow",
    "notes.title": "bold yellow",
    "footer": "reverse",
}

THEME = Theme(STYLES)

PROJECTOR_STYLES: dict[str, str] = {
    **{name: (style.replace("dim", "").strip() or "default") for name, style in STYLES.items()},
    # a projector washes out thin and dark text: everything that matters is bold and bright, nothing is grey
    "lesson.title": "bold bright_white on blue",
    "step.title": "bold bright_white",
    "step.counter": "bold bright_cyan",
    "prose": "bright_white",
    "command": "bold bright_green",
    "console.name": "bold bright_magenta",
    "output": "bright_white",
    "hint": "bold bright_yellow",
    "check.pass": "bold bright_green",
    "notice": "bold bright_cyan",
    "warning": "bold bright_yellow",
    "muted": "default",
    "heading": "bold bright_cyan",
    "ns.host": "default",
    "link.down": "default",
    "notes": "bright_yellow",
    "notes.title": "bold bright_yellow",
    "footer": "bold reverse",
}

THEMES: dict[str, Theme] = {"default": THEME, "projector": Theme(PROJECTOR_STYLES)}


def theme_named(name: str) -> Theme:
    """The theme called `name`; an unknown name gets the default (the CLI only offers known ones)."""
    return THEMES.get(name, THEME)


ASCII_SYMBOLS = str.maketrans(
    {
        "─": "-", "━": "=", "═": "=", "│": "|", "┃": "|", "║": "|",
        "└": "`", "├": "|", "┌": "+", "┐": "+", "┘": "+", "┤": "|", "┬": "+", "┴": "+", "┼": "+",
        "✓": "+", "✗": "x", "◀": "<", "▶": ">", "●": "*", "○": "o", "·": "-", "•": "*",
        "→": ">", "←": "<", "❯": ">", "…": ".", "—": "-", "–": "-",
        "“": '"', "”": '"', "‘": "'", "’": "'", "×": "x",
    }
)  # fmt: skip
"""What `--plain` writes instead of each symbol the tool itself uses: one character for one, because rich has
already laid out the tables by the time text reaches the stream."""


def to_ascii(text: str) -> str:
    """Known symbols by their ASCII stand-in, accented letters without accents, anything else as `?`."""
    text = text.translate(ASCII_SYMBOLS)
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c if c.isascii() else ("" if unicodedata.combining(c) else "?") for c in decomposed)


class WrappedStream(io.TextIOBase):
    """A text stream that hands what is written on to the one it wraps (subclasses change `write`); a terminal
    underneath stays a terminal (isatty, fileno) for rich and prompt_toolkit."""

    def __init__(self, inner: TextIO) -> None:
        super().__init__()
        self.inner = inner

    def write(self, text: str) -> int:
        self.inner.write(text)
        return len(text)

    def flush(self) -> None:
        self.inner.flush()

    def isatty(self) -> bool:
        return self.inner.isatty()

    def fileno(self) -> int:
        return self.inner.fileno()


class AsciiStream(WrappedStream):
    """A text stream that passes only ASCII on to the one it wraps.

    Its `encoding` is `ascii`, which is what makes rich draw tables, rules and trees with ASCII characters.
    """

    encoding = "ascii"

    def write(self, text: str) -> int:
        self.inner.write(to_ascii(text))
        return len(text)
