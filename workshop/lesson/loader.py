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
from collections.abc import Iterable
from pathlib import Path

from workshop.lesson import front_matter, variables, vocabulary
from workshop.lesson.blocks import CONSOLE_RE, NUMBER_RE, StepBuilder
from workshop.lesson.model import HOST, REQUIREMENTS, VIEWS, Lesson, Step, Where
from workshop.lesson.sections import LessonError as LessonError
from workshop.lesson.sections import Problem as Problem
from workshop.lesson.sections import SectionParser, prose

ID_RE = re.compile(r"^[a-z][a-z0-9-]*$")


def _list_value(value: front_matter.Value) -> list[str]:
    """`[a, b]`, an indented `- a` list, or the plain text `a, b`."""
    if isinstance(value, list):
        return value
    value = value.strip()
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    return [v.strip() for v in value.split(",") if v.strip()]


def parse_lesson(path: Path, text: str) -> Lesson:
    """Parses one lesson file's text; raises LessonError listing every problem found."""
    p = SectionParser(path, text)
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
    builder = StepBuilder(p, consoles)
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
        _check_helpers(p, value, n, path.parent)
    _check_step_placeholders(p, steps, consoles, var_values)
    for run in (r for step in steps for r in step.runs):
        for k, line in enumerate(run.lines, start=1):
            _check_helpers(p, line, run.where.line + k, path.parent)
    for f in builder.said:
        for k, line in enumerate(f.body, start=1):
            _check_placeholders(p, line, f.where.line + k, consoles, var_values)

    if p.problems:
        raise LessonError(p.problems)
    return Lesson(
        id=lesson_id,
        title=title,
        summary=prose(intro.prose) if intro else "",
        steps=steps,
        path=path,
        order=order,
        requires=requires,
        consoles=consoles,
        observe=observe,
        outro=prose(outro.prose) if outro else "",
        variables=var_values,
    )


def _check_placeholders(
    p: SectionParser, text: str, line: int, consoles: tuple[str, ...], lesson_vars: dict[str, str]
) -> None:
    for name in variables.referenced(text):
        if not variables.is_known(name, consoles, lesson_vars):
            p.problem(
                line,
                f"unknown variable {{{{{name}}}}} (built in: {', '.join(variables.STATIC)}, "
                f"pid.CONSOLE, shell.CONSOLE, before.pid.CONSOLE; or define it under 'vars:')",
            )


def _check_helpers(p: SectionParser, text: str, line: int, lessondir: Path) -> None:
    """A command's `{{lessondir}}/NAME` is copied into the session's work dir: it must be a file beside the lesson."""
    for name in variables.helper_files([text]):
        if not (lessondir / name).is_file():
            p.problem(line, f"{{{{lessondir}}}}/{name}: there is no file {name!r} beside this lesson in {lessondir}")


def _check_step_placeholders(
    p: SectionParser, steps: tuple[Step, ...], consoles: tuple[str, ...], lesson_vars: dict[str, str]
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
