"""A lesson file's Markdown structure: the introduction (`#`), the steps (`##`) and the recap, each with its
prose and its fenced blocks, and the problems found on the way (`file:line: what`)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from workshop.lesson import vocabulary
from workshop.lesson.model import Where

ROLES = tuple(vocabulary.ROLES)
FENCE_RE = re.compile(r"^(```+|~~~+)\s*(.*)$")


@dataclass(frozen=True)
class Problem:
    where: Where
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class LessonError(Exception):
    """One or more problems in lesson files; str() gives one `file:line: message` per line."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (str(p.where.file), p.where.line))
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass
class Fence:
    role: str
    args: list[str]
    body: list[str]
    where: Where


@dataclass
class Section:
    title: str
    where: Where
    prose: list[str] = field(default_factory=list)
    fences: list[Fence] = field(default_factory=list)


class SectionParser:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        # Only a newline ends a line, as in an editor: splitlines() would also break at a form feed or U+2028
        # and shift every line number after it.
        self.lines = text.split("\n")
        if self.lines[-1] == "":
            self.lines.pop()
        self.problems: list[Problem] = []

    def at(self, line: int) -> Where:
        return Where(self.path, line)

    def problem(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.at(line), message))

    # -- body -------------------------------------------------------------------------------------------------
    def sections(self, start: int) -> tuple[Section | None, list[Section], Section | None]:
        """Splits the body into the introduction (`#`), the steps (`##`) and the recap (a later `#`)."""
        intro: Section | None = None
        steps: list[Section] = []
        outro: Section | None = None
        current: Section | None = None
        i = start
        while i < len(self.lines):
            raw = self.lines[i]
            n = i + 1
            fence = FENCE_RE.match(raw)
            if fence:
                i = self.fence(i, fence, current)
                continue
            if raw.startswith("## "):
                current = Section(raw[3:].strip(), self.at(n))
                steps.append(current)
                if outro is not None:
                    self.problem(n, "steps ('##') must come before the recap ('#' after the steps)")
            elif raw.startswith("# "):
                current = Section(raw[2:].strip(), self.at(n))
                if intro is None and not steps:
                    intro = current
                elif outro is None:
                    outro = current
                else:
                    self.problem(n, "a lesson has one '#' introduction and at most one '#' recap after the steps")
            elif current is None:
                if raw.strip():
                    current = intro = Section("", self.at(n))
                    current.prose.append(raw)
            else:
                current.prose.append(raw)
            i += 1
        return intro, steps, outro

    def fence(self, i: int, opening: re.Match[str], section: Section | None) -> int:
        marker, info = opening.group(1), opening.group(2).strip()
        body: list[str] = []
        j = i + 1
        while j < len(self.lines) and not self.lines[j].startswith(marker):
            body.append(self.lines[j])
            j += 1
        if j >= len(self.lines):
            self.problem(i + 1, f"this code block is never closed: add a line {marker} after it")
        words = info.split()
        role = words[0] if words else ""
        if section is not None:
            if role in ROLES:
                section.fences.append(Fence(role, words[1:], body, self.at(i + 1)))
            else:
                close = difflib.get_close_matches(role, ROLES, n=1, cutoff=0.75)
                if close:
                    self.problem(i + 1, f"unknown block role {role!r}; did you mean {close[0]!r}?")
                section.fences.append(Fence("example", words, body, self.at(i + 1)))
        return j + 1


def prose(lines: list[str]) -> str:
    return "\n".join(lines).strip("\n")
