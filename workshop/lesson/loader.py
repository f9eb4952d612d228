"""Lesson files (Markdown with a small front matter) → `model.Lesson`, or precise `file:line: what` errors.

The format, in short (docs/lesson-authoring.md has the full story; its words are in `vocabulary`):

    ---
    id: chroot
    title: chroot and its escape
    requires: [root, rootfs]
    consoles: [host, container]
    vars:
      marker: "{{workdir}}/host-only.txt"
    ---
    # chroot and its escape          ← the lesson's introduction follows
    ## Unpack the image               ← one step per `##` section
    ```run host                       ← typed into a console: run CONSOLE [timeout=S] [rc=N|any]
    ```check                          ← a host shell script; exit 0 = the kernel is in the state taught
    ```run host try                   ← a "try it" block: in learner mode the learner types it
    ```hint (one per tier) / ```expect CONSOLE / ```creates / ```notes (presenter notes)
    # Recap                           ← a later `#` section closes the lesson
"""

from __future__ import annotations

import difflib
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from workshop.lesson import front_matter, variables, vocabulary
from workshop.lesson.model import HOST, REQUIREMENTS, VIEWS, Check, Creates, Expect, Lesson, Run, Step, Where

ROLES = tuple(vocabulary.ROLES)
CREATES_KINDS = tuple(vocabulary.CREATES_KINDS)
ID_RE = re.compile(r"^[a-z][a-z0-9-]*$")
CONSOLE_RE = re.compile(r"^[a-z][a-z0-9]*$")
FENCE_RE = re.compile(r"^(```+|~~~+)\s*(.*)$")
# ASCII digits only, and few of them: str.isdigit() also accepts '²', which int() refuses, and int() refuses
# more than 4,300 digits.
NUMBER_RE = re.compile(r"[0-9]{1,6}")


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
class _Fence:
    role: str
    args: list[str]
    body: list[str]
    where: Where


@dataclass
class _Section:
    title: str
    where: Where
    prose: list[str] = field(default_factory=list)
    fences: list[_Fence] = field(default_factory=list)


class _Parser:
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
    def sections(self, start: int) -> tuple[_Section | None, list[_Section], _Section | None]:
        """Splits the body into the introduction (`#`), the steps (`##`) and the recap (a later `#`)."""
        intro: _Section | None = None
        steps: list[_Section] = []
        outro: _Section | None = None
        current: _Section | None = None
        i = start
        while i < len(self.lines):
            raw = self.lines[i]
            n = i + 1
            fence = FENCE_RE.match(raw)
            if fence:
                i = self.fence(i, fence, current)
                continue
            if raw.startswith("## "):
                current = _Section(raw[3:].strip(), self.at(n))
                steps.append(current)
                if outro is not None:
                    self.problem(n, "steps ('##') must come before the recap ('#' after the steps)")
            elif raw.startswith("# "):
                current = _Section(raw[2:].strip(), self.at(n))
                if intro is None and not steps:
                    intro = current
                elif outro is None:
                    outro = current
                else:
                    self.problem(n, "a lesson has one '#' introduction and at most one '#' recap after the steps")
            elif current is None:
                if raw.strip():
                    current = intro = _Section("", self.at(n))
                    current.prose.append(raw)
            else:
                current.prose.append(raw)
            i += 1
        return intro, steps, outro

    def fence(self, i: int, opening: re.Match[str], section: _Section | None) -> int:
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
                section.fences.append(_Fence(role, words[1:], body, self.at(i + 1)))
            else:
                close = difflib.get_close_matches(role, ROLES, n=1, cutoff=0.75)
                if close:
                    self.problem(i + 1, f"unknown block role {role!r}; did you mean {close[0]!r}?")
                section.fences.append(_Fence("example", words, body, self.at(i + 1)))
        return j + 1


def _list_value(value: front_matter.Value) -> list[str]:
    """`[a, b]`, an indented `- a` list, or the plain text `a, b`."""
    if isinstance(value, list):
        return value
    value = value.strip()
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    return [v.strip() for v in value.split(",") if v.strip()]


def _prose(lines: list[str]) -> str:
    return "\n".join(lines).strip("\n")


class _LessonBuilder:
    def __init__(self, parser: _Parser, consoles: tuple[str, ...]) -> None:
        self.p = parser
        self.consoles = consoles
        self.said: list[_Fence] = []
        """The hint and notes blocks: text with placeholders that is shown, never run, checked line by line."""

    def console(self, name: str, where: Where) -> str:
        if name not in self.consoles:
            known = ", ".join(c for c in self.consoles if CONSOLE_RE.match(c))  # a bad name has its own problem
            self.p.problems.append(
                Problem(
                    where,
                    f"unknown console {name!r}; this lesson's consoles are: {known} "
                    "(declare more in the front matter: consoles: [host, container])",
                )
            )
        return name

    def run(self, f: _Fence) -> Run | None:
        if not f.args or "=" in f.args[0]:
            self.p.problems.append(Problem(f.where, "say which console to type into: ```run host (or container, …)"))
            return None
        console = self.console(f.args[0], f.where)
        timeout, rc = 30.0, 0
        rc_value: int | None = rc
        try_it = False
        for opt in f.args[1:]:
            key, _, value = opt.partition("=")
            if opt == "try":
                try_it = True
            elif key == "timeout":
                try:
                    timeout = float(value)
                    if not 0 < timeout <= 3600:
                        raise ValueError
                except ValueError:
                    self.p.problems.append(
                        Problem(f.where, f"timeout must be seconds between 0 and 3600, not {value!r}")
                    )
            elif key == "rc":
                if value == "any":
                    rc_value = None
                elif NUMBER_RE.fullmatch(value) and int(value) <= 255:
                    rc_value = int(value)
                else:
                    self.p.problems.append(Problem(f.where, f"rc must be 0 to 255 or 'any', not {value!r}"))
            else:
                self.p.problems.append(
                    Problem(f.where, f"unknown option {key!r} (run takes try, timeout=SECONDS and rc=N|any)")
                )
        lines = tuple(_join_continuations(f.body))
        if not lines:
            self.p.problems.append(Problem(f.where, "this run block is empty"))
        return Run(console, lines, f.where, timeout, rc_value, try_it)

    def check(self, f: _Fence) -> Check | None:
        script = "\n".join(f.body).strip()
        if not script:
            self.p.problems.append(Problem(f.where, "this check block is empty"))
            return None
        for k, line in enumerate(f.body, start=1):
            problem = _unsafe_assertion(line)
            if problem:
                self.p.problems.append(Problem(Where(f.where.file, f.where.line + k), problem))
        first = f.body[0].strip() if f.body else ""
        description = first.lstrip("#").strip() if first.startswith("#") else ""
        if not description:
            self.p.problems.append(
                Problem(
                    f.where,
                    "start a check with a '# comment' saying what it proves, e.g. '# the shell is PID 1'",
                )
            )
        return Check(description, script, f.where)

    def step(self, s: _Section) -> Step:
        runs: list[Run] = []
        checks: list[Check] = []
        hints: list[str] = []
        expects: list[Expect] = []
        creates: list[Creates] = []
        examples: list[str] = []
        notes: list[str] = []
        for f in s.fences:
            if f.role == "run":
                r = self.run(f)
                if r:
                    runs.append(r)
            elif f.role == "check":
                c = self.check(f)
                if c:
                    checks.append(c)
            elif f.role == "hint":
                hints.append(_prose(f.body))
                self.said.append(f)
            elif f.role == "notes":
                notes.append(_prose(f.body))
                self.said.append(f)
            elif f.role == "expect":
                if not f.args:
                    self.p.problems.append(Problem(f.where, "say whose output to look at: ```expect container"))
                    continue
                console = self.console(f.args[0], f.where)
                # each line is its own regular expression, to be found somewhere in the console's output
                for k, pattern in enumerate(f.body, start=1):
                    where = Where(f.where.file, f.where.line + k)
                    if not pattern.strip():
                        continue
                    try:
                        with warnings.catch_warnings():  # Python's FutureWarning would print its own source line
                            warnings.simplefilter("ignore")
                            re.compile(pattern)
                    except (re.error, OverflowError, RecursionError) as e:  # a huge {n}, deep nesting
                        self.p.problems.append(Problem(where, f"expect lines are regular expressions: {_printable(e)}"))
                        continue
                    expects.append(Expect(console, pattern, where))
            elif f.role == "creates":
                for k, line in enumerate(f.body, start=1):
                    if not line.strip():
                        continue
                    kind, _, target = line.strip().partition(" ")
                    where = Where(f.where.file, f.where.line + k)
                    if kind not in CREATES_KINDS or not target.strip():
                        self.p.problems.append(
                            Problem(
                                where,
                                f"creates lines are 'KIND TARGET' with KIND one of {', '.join(CREATES_KINDS)}",
                            )
                        )
                        continue
                    creates.append(Creates(kind, target.strip(), where))
            else:
                examples.append(_prose(f.body))
        if not checks:
            self.p.problems.append(
                Problem(s.where, f"step {s.title!r} has no check: add a ```check block that verifies kernel state")
            )
        if not s.title:
            self.p.problems.append(Problem(s.where, "a step needs a title after '## '"))
        return Step(
            title=s.title,
            prose=_prose(s.prose),
            runs=tuple(runs),
            checks=tuple(checks),
            where=s.where,
            hints=tuple(hints),
            expects=tuple(expects),
            creates=tuple(creates),
            examples=tuple(examples),
            notes=tuple(notes),
        )


def _printable(error: Exception) -> str:
    """An error's text with control characters escaped: re quotes the pattern's own bytes, and a terminal would
    act on them."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(error))


_SUBSHELL = re.compile(r"\$\([^()]*\)|'[^']*'|\"[^\"]*\"")


def _unsafe_assertion(line: str) -> str:
    """Check lines that would pass whatever the kernel says, because `set -e` does not look at them."""
    code = _SUBSHELL.sub("", line.strip())
    if code.startswith("!"):
        return "under set -e, `! CMD` never fails a check: write `not CMD`"
    if "&&" in code or "||" in code:
        return "under set -e, only the last command of an && or || list can fail a check: one assertion per line"
    return ""


def _join_continuations(lines: list[str]) -> Iterator[str]:
    """A line ending in a backslash continues on the next, as in a shell."""
    buf = ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        full = (buf + line).strip()
        buf = ""
        if full and not full.startswith("#"):
            yield full
    if buf.strip():
        yield buf.strip()


def parse_lesson(path: Path, text: str) -> Lesson:
    """Parses one lesson file's text; raises LessonError listing every problem found."""
    p = _Parser(path, text)
    fm = front_matter.read(p.lines)
    for at, message in fm.problems:
        p.problem(at, message)
    if p.problems:  # the rest would only repeat them (unknown variables, consoles, …): one error, not ten
        raise LessonError(p.problems)
    meta, lesson_vars, body_start = fm.keys, fm.variables, fm.body_start

    def list_field(key: str) -> tuple[int, front_matter.Value]:
        return meta.get(key, (1, ""))

    def field_(key: str, required: bool = True) -> tuple[int, str]:
        if key in meta:
            line, value = meta[key]
            if isinstance(value, str):
                return line, value
            p.problem(line, f"{key!r} takes one text, not a list")
            return line, ""
        if required and not fm.problems:  # a broken front matter already said what is wrong
            p.problem(1, f"the front matter needs '{key}: …'")
        return (1, "")

    for key, (n, _) in meta.items():
        if key not in vocabulary.FRONT_MATTER:
            p.problem(n, f"unknown front matter key {key!r} (known: {', '.join(vocabulary.FRONT_MATTER)})")
    id_line, lesson_id = field_("id")
    if lesson_id and not ID_RE.match(lesson_id):
        p.problem(id_line, f"id {lesson_id!r} must be lowercase letters, digits and '-', starting with a letter")
    _, title = field_("title")
    order_line, order_text = field_("order", required=False)
    order = 100
    if order_text:
        if NUMBER_RE.fullmatch(order_text):
            order = int(order_text)
        else:
            p.problem(order_line, f"order must be a whole number, not {order_text!r}")
    req_line, req_text = list_field("requires")
    requires = tuple(_list_value(req_text))
    for r in requires:
        if r not in REQUIREMENTS:
            close = difflib.get_close_matches(r, REQUIREMENTS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(REQUIREMENTS)})"
            p.problem(req_line, f"unknown requirement {r!r}{hint}")
    con_line, con_text = list_field("consoles")
    consoles = tuple(_list_value(con_text)) or (HOST,)
    for c in consoles:
        if not CONSOLE_RE.match(c):
            p.problem(con_line, f"console name {c!r} must be lowercase letters and digits")
    if consoles[0] != HOST:
        p.problem(con_line, "the first console is always 'host'")
    if len(set(consoles)) != len(consoles):
        p.problem(con_line, "a console is listed twice")

    obs_line, obs_text = list_field("observe")
    observe = tuple(_list_value(obs_text))
    for view in observe:
        if view not in VIEWS:
            p.problem(obs_line, f"unknown view {view!r} (known: {', '.join(VIEWS)})")

    intro, sections, outro = p.sections(body_start)
    builder = _LessonBuilder(p, consoles)
    steps = tuple(builder.step(s) for s in sections)
    if not steps:
        p.problem(
            min(body_start + 1, max(len(p.lines), 1)),
            "a lesson needs at least one step: a '## Title' section with a ```run and a ```check",
        )
    seen: dict[str, int] = {}
    for s in steps:
        if s.title in seen:
            p.problem(s.where.line, f"step title {s.title!r} is used twice (first on line {seen[s.title]})")
        seen[s.title] = s.where.line

    var_values = {name: value for name, (_, value) in lesson_vars.items()}
    for name, (n, value) in lesson_vars.items():
        if name in variables.STATIC:
            p.problem(n, f"variable {name!r} is built in; choose another name")
        _check_placeholders(p, value, n, consoles, var_values)
    _check_step_placeholders(p, steps, consoles, var_values)
    for f in builder.said:
        for k, line in enumerate(f.body, start=1):
            _check_placeholders(p, line, f.where.line + k, consoles, var_values)

    if p.problems:
        raise LessonError(p.problems)
    return Lesson(
        id=lesson_id,
        title=title,
        summary=_prose(intro.prose) if intro else "",
        steps=steps,
        path=path,
        order=order,
        requires=requires,
        consoles=consoles,
        observe=observe,
        outro=_prose(outro.prose) if outro else "",
        variables=var_values,
    )


def _check_placeholders(
    p: _Parser, text: str, line: int, consoles: tuple[str, ...], lesson_vars: dict[str, str]
) -> None:
    for name in variables.referenced(text):
        if not variables.is_known(name, consoles, lesson_vars):
            p.problem(
                line,
                f"unknown variable {{{{{name}}}}} (built in: {', '.join(variables.STATIC)}, "
                f"pid.CONSOLE, shell.CONSOLE, before.pid.CONSOLE; or define it under 'vars:')",
            )


def _check_step_placeholders(
    p: _Parser, steps: tuple[Step, ...], consoles: tuple[str, ...], lesson_vars: dict[str, str]
) -> None:
    for s in steps:
        _check_placeholders(p, s.prose, s.where.line, consoles, lesson_vars)
        for r in s.runs:
            for k, line in enumerate(r.lines, start=1):
                _check_placeholders(p, line, r.where.line + k, consoles, lesson_vars)
        for c in s.checks:
            _check_placeholders(p, c.script, c.where.line, consoles, lesson_vars)
        for e in s.expects:
            _check_placeholders(p, e.pattern, e.where.line, consoles, lesson_vars)
        for cr in s.creates:
            _check_placeholders(p, cr.target, cr.where.line, consoles, lesson_vars)


def lesson_files(lessons_dir: Path) -> list[Path]:
    """`lessons/NAME.md` or `lessons/NAME/lesson.md`; a README is documentation, not a lesson."""
    if not lessons_dir.is_dir():
        return []
    found = [f for f in lessons_dir.glob("*.md") if f.name.lower() != "readme.md"]
    found += [d / "lesson.md" for d in lessons_dir.iterdir() if (d / "lesson.md").is_file()]
    return sorted(found)


def lesson_files_in(lessons_dirs: Iterable[Path]) -> list[Path]:
    """The lesson files of several folders, in order (the curriculum first, then a learner's own)."""
    return [f for d in lessons_dirs for f in lesson_files(d)]


def load_lesson(path: Path) -> Lesson:
    if path.exists() and not path.is_file():  # reading a FIFO would wait forever
        raise LessonError([Problem(Where(path, 1), "cannot read the lesson file: it is not a regular file")])
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise LessonError([Problem(Where(path, 1), f"cannot read the lesson file: {e}")]) from e
    return parse_lesson(path, text)


def load_all(paths: Iterable[Path]) -> list[Lesson]:
    """Loads every lesson, collecting all problems (also duplicate ids across files) before raising."""
    lessons: list[Lesson] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            lessons.append(load_lesson(path))
        except LessonError as e:
            problems.extend(e.problems)
    first: dict[str, Lesson] = {}
    for lesson in lessons:
        if lesson.id in first:
            problems.append(
                Problem(
                    Where(lesson.path, 2),
                    f"lesson id {lesson.id!r} is already used by {first[lesson.id].path}",
                )
            )
        else:
            first[lesson.id] = lesson
    if problems:
        raise LessonError(problems)
    return sorted(lessons, key=lambda x: (x.order, x.id))
