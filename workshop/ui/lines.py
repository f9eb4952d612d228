"""Long lines cut where a reader expects it, before the terminal cuts them where the right edge happens to be.

A terminal wraps a line that is too long at its last column, inside a word or a path as often as not, and a line
typed out character by character at a readable pace is too long for rich to wrap (it sees one character at a
time). So the renderer cuts such lines itself, into rows that fit: at a space if there is one, else after a
separator inside a long token (`,` between mount options, else `/` between path components), and only a token longer
than a whole row is cut anywhere.
"""

from __future__ import annotations

from rich.cells import get_character_cell_size

SEPARATORS = ",=:/"
"""Inside a token too long for a row, a cut right after one of these still reads naturally, the first the better:
between two mount options rather than inside a path."""


def fit(text: str, width: int) -> list[str]:
    """`text` as rows of at most `width` cells (at least one row; a cut drops the space it was made at)."""
    width = max(width, 8)
    rows: list[str] = []
    rest = text.expandtabs(8)
    while (end := _fitting(rest, width)) < len(rest):  # (stops counting at the edge: output lines can be huge)
        space = rest.rfind(" ", 1, end + 1)
        if space > 0 and rest[:space].strip():
            rows.append(rest[:space].rstrip())
            rest = rest[space + 1 :].lstrip(" ")
            continue
        cut = next((at + 1 for at in (rest.rfind(sep, 1, end) for sep in SEPARATORS) if at > 0), end)
        rows.append(rest[:cut])
        rest = rest[cut:]
    rows.append(rest)
    return rows


def _fitting(text: str, width: int) -> int:
    """How many characters of `text` fit in `width` cells."""
    used = 0
    for i, char in enumerate(text):
        used += get_character_cell_size(char)
        if used > width:
            return i
    return len(text)
