"""A step's blocks → the model: run lines and their options, checks (and the assertions `set -e` would not
enforce), expects, creates, hints and notes, each problem with its line."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator

from workshop.lesson import vocabulary
from workshop.lesson.model import Check, Creates, Expect, Run, Sabotage, Step, Where
from workshop.lesson.sections import Fence, Problem, Section, SectionParser, prose

CREATES_KINDS = tuple(vocabulary.CREATES_KINDS)
CONSOLE_RE = re.compile(r"^[a-z][a-z0-9]*$")
# ASCII digits only, and few of them: str.isdigit() also accepts '²', which int() refuses, and int() refuses
# more than 4,300 digits.
NUMBER_RE = re.compile(r"[0-9]{1,6}")


class StepBuilder:
    def __init__(self, parser: SectionParser, consoles: tuple[str, ...]) -> None:
        self.p = parser
        self.consoles = consoles
        self.said: list[Fence] = []
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

    def run(self, f: Fence) -> Run | None:
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

    def check(self, f: Fence) -> Check | None:
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

    def step(self, s: Section) -> Step:
        runs: list[Run] = []
        checks: list[Check] = []
        hints: list[str] = []
        expects: list[Expect] = []
        creates: list[Creates] = []
        examples: list[str] = []
        notes: list[str] = []
        sabotage: Sabotage | None = None
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
                hints.append(prose(f.body))
                self.said.append(f)
            elif f.role == "notes":
                notes.append(prose(f.body))
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
            elif f.role == "sabotage":
                if sabotage is not None:
                    self.p.problems.append(Problem(f.where, "a step has at most one sabotage block"))
                    continue
                sabotage = self.sabotage(f, s)
            else:
                examples.append(prose(f.body))
        if not checks:
            self.p.problems.append(
                Problem(s.where, f"step {s.title!r} has no check: add a ```check block that verifies kernel state")
            )
        if not s.title:
            self.p.problems.append(Problem(s.where, "a step needs a title after '## '"))
        return Step(
            title=s.title,
            prose=prose(s.prose),
            runs=tuple(runs),
            checks=tuple(checks),
            where=s.where,
            hints=tuple(hints),
            expects=tuple(expects),
            creates=tuple(creates),
            examples=tuple(examples),
            notes=tuple(notes),
            sabotage=sabotage,
        )

    def sabotage(self, f: Fence, s: Section) -> Sabotage | None:
        said = [line.strip() for line in f.body if line.strip()]
        if len(said) == 1 and said[0].startswith("none:"):
            why = said[0].removeprefix("none:").strip()
            if not why:
                self.p.problems.append(Problem(f.where, "say why nothing can be taken out: 'none: WHY'"))
                return None
            return Sabotage("", "", f.where, none=why)
        old: list[str] = []
        new: list[str] = []
        for k, line in enumerate(f.body, start=1):
            if line.startswith("-"):
                old.append(line[2:] if line.startswith("- ") else line[1:])
            elif line.startswith("+"):
                new.append(line[2:] if line.startswith("+ ") else line[1:])
            elif line.strip():
                self.p.problems.append(
                    Problem(
                        Where(f.where.file, f.where.line + k),
                        "sabotage lines start with '- ' (a line of this step's run block) or '+ ' (what it becomes), "
                        "or the block is one line 'none: WHY'",
                    )
                )
                return None
        if not old:
            self.p.problems.append(Problem(f.where, "say which lines to take out: '- LINE' of this step's run block"))
            return None
        text = "\n".join(old)
        if not any(text in "\n".join(r.body) for r in s.fences if r.role == "run"):
            self.p.problems.append(
                Problem(f.where, "the '- ' text is not in any of this step's run blocks, as written there")
            )
            return None
        return Sabotage(text, "\n".join(new), f.where)


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
