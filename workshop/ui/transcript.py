"""`--record FILE`: a transcript of everything workshop showed, to read later.

The recorder sits between the renderer and the terminal (`stream` replaces the environment's stdout), so it sees
exactly what was printed, colours included; the shell adds what the learner typed, which the terminal echoes and
no renderer sees. `.html` is written at the end through rich's HTML export, with each step's diagram after the
step (drawn at the end, from the observations kept); `.cast` is an asciinema v2 recording (a JSON header line, then
one `[seconds, "o", text]` line per write and a `[seconds, "m", "step N: title"]` marker where each step starts, so
a player can jump between steps), written as it happens, so even a session that crashes leaves a playable file.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, cast

from workshop.lesson.progress import invoking_user
from workshop.ui.theme import WrappedStream

if TYPE_CHECKING:
    from workshop.engine.events import Observed
    from workshop.serve.page_state import DiagramMaker

FORMATS = {".html": "html", ".htm": "html", ".cast": "cast"}
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<title>workshop transcript</title>
<style>
body {{ background: #0b0e11; color: #e8e8e8; margin: 0; padding: 12px; }}
pre.terminal {{ font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px; margin: 0; }}
figure.diagram {{ background: #fff; color: #222; margin: 12px 0; padding: 8px; border-radius: 6px; }}
figure.diagram svg {{ max-width: 100%; height: auto; }}
figcaption {{ font: 12px sans-serif; color: #555; }}
</style>
</head>
<body>
{body}
</body>
</html>
"""
_TERMINAL = '<pre class="terminal"><code>{code}</code></pre>'


def _figure(observed: Observed, caption: str, diagram: DiagramMaker | None) -> str:
    """The diagram of the kernel state after a step, or why there is none."""
    import html

    if diagram is None:
        return ""
    try:
        svg = diagram(observed)
    except Exception as e:  # a transcript is still worth having without its pictures
        return f'<figure class="diagram"><figcaption>no diagram: {html.escape(str(e))}</figcaption></figure>'
    return f'<figure class="diagram">{svg}<figcaption>{html.escape(caption)}</figcaption></figure>'


class TranscriptError(Exception):
    """The transcript cannot be written where the learner asked (said before the session starts)."""


class _Tee(WrappedStream):
    def __init__(self, inner: TextIO, recorder: Recorder) -> None:
        super().__init__(inner)
        self.recorder = recorder

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.inner, "encoding", None) or "utf-8"

    def write(self, text: str) -> int:
        self.inner.write(text)
        self.recorder.output(text)
        return len(text)


class Recorder:
    def __init__(self, path: Path, inner: TextIO, width: int | None = None, height: int | None = None) -> None:
        self.path = path
        self.kind = FORMATS.get(path.suffix.lower(), "")
        if not self.kind:
            raise TranscriptError(f"--record {path}: the file name must end in .html (a page) or .cast (asciinema)")
        if not path.parent.is_dir():
            raise TranscriptError(f"--record {path}: the folder {path.parent} does not exist")
        size = shutil.get_terminal_size()
        self.width = width or size.columns
        self.height = height or size.lines
        self.start = time.monotonic()
        self.chunks: list[str | tuple[Observed, str]] = []
        """What was printed, and (for .html) the observations after which a step's diagram goes."""
        self.stream = cast(TextIO, _Tee(inner, self))
        """Give this to the renderer instead of `inner`."""
        self._cast: TextIO | None = None
        self._step = "as the lesson starts"
        try:
            if self.kind == "cast":
                self._cast = open(path, "w", encoding="utf-8")  # noqa: SIM115 - open for the whole session
                header = {
                    "version": 2,
                    "width": self.width,
                    "height": self.height,
                    "timestamp": int(time.time()),
                    "title": "workshop",
                    "env": {"TERM": os.environ.get("TERM", "xterm-256color"), "SHELL": "workshop"},
                }
                self._write_cast(json.dumps(header))
            else:
                path.touch()  # fail now, not after an hour of lessons
            self._give_to_user()
        except OSError as e:
            raise TranscriptError(f"--record {path}: {e.strerror or e}") from e

    def output(self, text: str) -> None:
        self.chunks.append(text)
        if self._cast is not None and text:
            # a terminal turns each newline into CR LF; a player expects the same
            event = [round(time.monotonic() - self.start, 6), "o", text.replace("\r\n", "\n").replace("\n", "\r\n")]
            with contextlib.suppress(OSError, ValueError):
                self._write_cast(json.dumps(event, ensure_ascii=False))

    def hear(self, event: object) -> None:
        """An engine event (the recorder is one of the environment's taps): a marker per step, a diagram per
        observation."""
        from workshop.engine import events as ev

        if isinstance(event, ev.StepStarted) and self._cast is not None:
            label = f"step {event.index + 1}/{len(event.lesson.steps)}: {event.step.title}"
            with contextlib.suppress(OSError, ValueError):
                self._write_cast(json.dumps([round(time.monotonic() - self.start, 6), "m", label], ensure_ascii=False))
        if isinstance(event, ev.StepStarted):
            self._step = f"after step {event.index + 1}: {event.step.title}"
        elif isinstance(event, ev.LessonStarted):
            self._step = "as the lesson starts"
        elif isinstance(event, ev.Observed) and self.kind == "html":
            self.chunks.append((event, f"the kernel state {self._step}"))

    def typed(self, line: str) -> None:
        """A line the learner typed at the prompt, as their terminal showed it."""
        self.output(line + "\n")

    def _write_cast(self, line: str) -> None:
        assert self._cast is not None
        self._cast.write(line + "\n")
        self._cast.flush()

    def save(self) -> Path:
        """Finishes the file; safe to call more than once."""
        if self._cast is not None:
            with contextlib.suppress(OSError):
                self._cast.close()
            self._cast = None
        elif self.kind == "html":
            self.path.write_text(self.html(), encoding="utf-8")
        return self.path

    def html(self) -> str:
        from workshop.serve.page_state import default_diagram

        diagram = default_diagram()
        parts: list[str] = []
        text: list[str] = []
        for chunk in self.chunks:
            if isinstance(chunk, str):
                text.append(chunk)
                continue
            parts.append(self._terminal_html("".join(text)))
            text = []
            parts.append(_figure(*chunk, diagram))
        parts.append(self._terminal_html("".join(text)))
        return _PAGE.format(body="\n".join(p for p in parts if p))

    def _terminal_html(self, text: str) -> str:
        from rich.console import Console
        from rich.text import Text

        if not text:
            return ""
        page = Console(record=True, file=io.StringIO(), width=self.width, force_terminal=True, color_system="truecolor")
        for line in text.splitlines():
            page.print(Text.from_ansi(line), soft_wrap=True)
        return page.export_html(inline_styles=True, code_format=_TERMINAL)

    def _give_to_user(self) -> None:
        """Under sudo the file belongs to the person who asked for it, not to root."""
        owner = invoking_user()
        if os.geteuid() == 0 and owner.uid != 0:
            os.chown(self.path, owner.uid, owner.gid)
