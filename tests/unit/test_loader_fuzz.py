"""Mutated lesson files: the loader answers with a valid lesson or with `file:line: what`, never a traceback.

The mutants start from the real shipped lessons and from a small synthetic one that uses every block kind, then
get lines deleted, duplicated, swapped or moved, the text cut short, control characters, NUL and odd unicode
typed in, fences and front matter broken, lesson-syntax tokens dropped in (including values that once crashed
the loader: `order: ²`, a 5,000-digit rc, a regular expression nested 2,000 deep), lines of 100,000 characters,
other line endings and bytes that are not UTF-8.

"Within the file" means as an editor counts lines: a line ends at a newline (\\n, \\r\\n or \\r), and a form
feed or U+2028 inside a line does not start a new one.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import string
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness import REPO
from workshop.lesson import loader
from workshop.lesson.model import Lesson

SHIPPED = {path.parent.name: path.read_text(encoding="utf-8") for path in loader.lesson_files(REPO / "lessons")}

SYNTHETIC = """\
---
id: fuzz-base
title: Every kind of block
order: 7
requires: [root, unshare]
consoles: [host, container]
observe: [mounts]
vars:
  box: box-{{session}}
---

# Every kind of block

Intro with {{workdir}}.

## First step

Prose with {{pid.container}}.

```run container timeout=5
unshare --uts /bin/sh
hostname {{box}} \\
  && true
```

```expect container
^box-
```

```check
# the container shell has its own UTS namespace
not in_host_ns {{pid.container}} uts
```

```creates
mount {{rootfs}}/proc
dir /run/netns
```

```hint
Try unshare.
```

```notes
Ask the room first.
```

```python
print("shown, never run")
```

## Second step

~~~run host try rc=any
hostname
~~~

```check
# the host kept its name
[ "$(hostname)" != "{{box}}" ]
```

# Recap

Done.
"""

BASES = {**SHIPPED, "synthetic": SYNTHETIC, "empty": "", "front matter only": "---\nid: x\ntitle: y\n---\n"}


def folder_for(path: Path, base: str) -> None:
    """The folder of a lesson file made from `base`, with the helper programs a shipped lesson's commands run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if base in SHIPPED:
        for helper in (REPO / "lessons" / base).iterdir():
            if helper.name != "lesson.md" and helper.is_file():
                shutil.copyfile(helper, path.parent / helper.name)


# Characters an editor, a terminal or a bad copy-paste can put into a file.
ODD = [
    "\x00", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\x1b", "\x1b[2J", "\x1c", "\x1e", "\x7f", "\x85", "\u2028",
    "\u2029", "\ufeff", "\u202e", "\u200b", "\ufffd", "\uffff", "²", "١", "٣", "ß", "İ", "日本", "\U0001f600", "\t",
]  # fmt: skip
ALPHABET = [*string.printable, *ODD]

# Pieces of lesson syntax, some valid and some known to be hard on a parser.
TOKENS = [
    "---", "```", "````", "~~~", "``", "```run", "```run host", "```run container try", "```run host rc=any",
    "```run host timeout=0", "```run host timeout=nan", "```run host timeout=1e999", "```run host rc=²",
    "```run host rc=" + "9" * 5000, "```run host rc=-1", "```check", "```hint", "```expect host", "```expect",
    "```creates", "```notes", "```python", "```chek", "```run nosuch", "## ", "##", "# ", "#", "## First step",
    "{{", "}}", "{{pid.host}}", "{{pid.nosuch}}", "{{nope}}", "{{ workdir }}", "{{before.pid.container}}",
    "id:", "id: Fuzz!", "id: fuzz-base", "title:", "order: ²", "order: ١٢", "order: -3", "order: " + "9" * 5000,
    "vars:", "vars: x", "  x: {{y}}", "  session: x", "  Bad Name: 1", "requires: [root, nope]",
    "requires: [roots]", "consoles: [container]", "consoles: [host, host]", "consoles: [host, Box!]",
    "observe: [mounts, x]", "nosuchkey: 1", "not ", "&& true", "|| true", "! false", "\\", "# comment",
    "(" * 2000, "a{99999999999999999999}", "x{4294967296}", "[z-a]", "(?P<", "*", "mount {{rootfs}}/x",
    "socket /tmp/x", "path", ":", " : ", "",
]  # fmt: skip


def _some_text(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 20)))


def _index(rng: random.Random, lines: list[str]) -> int:
    return rng.randrange(len(lines)) if lines else 0


def _delete(rng: random.Random, lines: list[str]) -> None:
    if lines:
        del lines[_index(rng, lines)]


def _duplicate(rng: random.Random, lines: list[str]) -> None:
    if lines:
        i = _index(rng, lines)
        lines.insert(i, lines[i])


def _swap(rng: random.Random, lines: list[str]) -> None:
    if lines:
        i, j = _index(rng, lines), _index(rng, lines)
        lines[i], lines[j] = lines[j], lines[i]


def _move(rng: random.Random, lines: list[str]) -> None:
    if lines:
        line = lines.pop(_index(rng, lines))
        lines.insert(_index(rng, lines), line)


def _truncate(rng: random.Random, lines: list[str]) -> None:
    text = "\n".join(lines)
    lines[:] = text[: rng.randint(0, len(text))].split("\n") if text else []


def _type_odd_characters(rng: random.Random, lines: list[str]) -> None:
    if not lines:
        lines.append("")
    i = _index(rng, lines)
    at = rng.randint(0, len(lines[i]))
    lines[i] = lines[i][:at] + _some_text(rng) + lines[i][at:]


def _drop_in_a_token(rng: random.Random, lines: list[str]) -> None:
    token = rng.choice(TOKENS)
    i = _index(rng, lines)
    where = rng.choice(("new line", "start", "end", "replace"))
    if not lines or where == "new line":
        lines.insert(i, token)
    elif where == "start":
        lines[i] = token + lines[i]
    elif where == "end":
        lines[i] = lines[i] + " " + token
    else:
        lines[i] = token


def _break_a_fence(rng: random.Random, lines: list[str]) -> None:
    fences = [i for i, line in enumerate(lines) if line.startswith(("```", "~~~"))]
    if not fences:
        return
    i = rng.choice(fences)
    how = rng.choice(("delete", "shorten", "lengthen", "swap marker", "new role", "indent"))
    if how == "delete":
        del lines[i]
    elif how == "shorten":
        lines[i] = lines[i][1:]
    elif how == "lengthen":
        lines[i] = lines[i][0] + lines[i]
    elif how == "swap marker":
        lines[i] = lines[i].replace("```", "~~~", 1) if lines[i].startswith("`") else lines[i].replace("~~~", "```", 1)
    elif how == "new role":
        lines[i] = lines[i][:3] + _some_text(rng)
    else:
        lines[i] = "  " + lines[i]


def _damage_the_front_matter(rng: random.Random, lines: list[str]) -> None:
    closers = [i for i, line in enumerate(lines) if line.strip() == "---"]
    keys = [i for i, line in enumerate(lines[: closers[1] if len(closers) > 1 else 0]) if ":" in line]
    how = rng.choice(("drop opener", "drop closer", "indent a key", "drop a colon", "repeat a key", "blank"))
    if how == "drop opener" and closers:
        del lines[closers[0]]
    elif how == "drop closer" and len(closers) > 1:
        del lines[closers[1]]
    elif how == "indent a key" and keys:
        i = rng.choice(keys)
        lines[i] = "  " + lines[i]
    elif how == "drop a colon" and keys:
        i = rng.choice(keys)
        lines[i] = lines[i].replace(":", "", 1)
    elif how == "repeat a key" and keys:
        lines.insert(rng.choice(keys), lines[rng.choice(keys)])
    elif how == "blank" and keys:
        lines[rng.choice(keys)] = ""


def _huge_line(rng: random.Random, lines: list[str]) -> None:
    piece = rng.choice([*ODD, "x", "{{", "`", "#", "(", "a b ", rng.choice(TOKENS) or "y"])
    lines.insert(_index(rng, lines), piece * (100_000 // len(piece) + 1))


MUTATIONS: list[Callable[[random.Random, list[str]], None]] = [
    _delete, _duplicate, _swap, _move, _truncate, _type_odd_characters, _drop_in_a_token, _drop_in_a_token,
    _break_a_fence, _damage_the_front_matter,
]  # fmt: skip


def mutant(base: str, rng: random.Random) -> bytes:
    """A damaged copy of `base`, as the bytes of a file."""
    lines = base.split("\n")
    for _ in range(rng.randint(1, 6)):
        rng.choice(MUTATIONS)(rng, lines)
    if rng.random() < 0.05:
        _huge_line(rng, lines)
    text = "\n".join(lines)
    ending = rng.choices(["\n", "\r\n", "\r"], weights=[90, 7, 3])[0]
    data = text.replace("\n", ending).encode("utf-8", "surrogatepass")
    if rng.random() < 0.03:
        at = rng.randint(0, len(data))
        data = data[:at] + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xfe\xff"]) + data[at:]
    return data


def editor_lines(data: bytes) -> int:
    """How many lines an editor shows for this file (0 for an empty one)."""
    text = data.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def assert_a_lesson_or_file_line_problems(path: Path, data: bytes) -> Lesson | None:
    """The property: a valid lesson, or LessonError whose every problem points at a line of this file and
    says what is wrong on one line, printable as is on a terminal."""
    last = max(editor_lines(data), 1)
    try:
        lesson = loader.load_lesson(path)
    except loader.LessonError as e:
        assert e.problems, "a LessonError without a problem"
        for problem in e.problems:
            assert problem.where.file == path
            assert 1 <= problem.where.line <= last, f"line {problem.where.line} of a {last}-line file: {problem}"
            assert problem.message.strip(), f"an empty message at line {problem.where.line}"
            assert "\n" not in problem.message and not CONTROL.search(problem.message), repr(problem.message)
            assert str(problem).startswith(f"{path}:{problem.where.line}: ")
        return None
    assert lesson.steps and all(step.checks for step in lesson.steps)
    for step in lesson.steps:
        assert 1 <= step.where.line <= last
    return lesson


FUZZ = settings(
    max_examples=600,
    deadline=None,  # a 100,000-character line takes a while on a slow CI machine; the total is what counts
    derandomize=True,  # the same examples on every run: a CI failure reproduces on a laptop
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(base=st.sampled_from(sorted(BASES)), rng=st.randoms(use_true_random=False))
def test_a_mutated_lesson_loads_or_says_file_and_line(
    base: str, rng: random.Random, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.getbasetemp() / "fuzz" / base / "lesson.md"
    folder_for(path, base)
    data = mutant(BASES[base], rng)
    path.write_bytes(data)
    assert_a_lesson_or_file_line_problems(path, data)


@settings(FUZZ, max_examples=150)
@given(text=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=400))
def test_arbitrary_text_inside_a_step_loads_or_says_file_and_line(
    text: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Free text from the whole of unicode, dropped into a step, a fence and the front matter."""
    path = tmp_path_factory.getbasetemp() / "fuzz" / "text" / "lesson.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    for damaged in (
        SYNTHETIC.replace("Prose with", text, 1),
        SYNTHETIC.replace("hostname\n~~~", f"{text}\n~~~", 1),
        SYNTHETIC.replace("^box-", text, 1),
        SYNTHETIC.replace("order: 7", f"order: {text}", 1),
        SYNTHETIC.replace("  box:", f"  {text}:", 1),
        SYNTHETIC.replace("```creates", f"```{text}", 1),
        SYNTHETIC.replace("id: fuzz-base", f"id: {text}", 1),
        SYNTHETIC.replace("consoles: [host, container]", f"consoles: [host, {text}]", 1),
        SYNTHETIC.replace("requires: [root, unshare]", f"requires: [{text}]", 1),
        SYNTHETIC.replace("mount {{rootfs}}/proc", text, 1),
        SYNTHETIC.replace("```run container timeout=5", f"```run container {text}", 1),
    ):
        data = damaged.encode()
        path.write_bytes(data)
        assert_a_lesson_or_file_line_problems(path, data)


def test_the_bases_are_valid_lessons(tmp_path: Path) -> None:
    """Mutants of valid lessons: a mutant that still loads is then a real, valid lesson."""
    for name in (*SHIPPED, "synthetic"):
        path = tmp_path / name / "lesson.md"
        folder_for(path, name)
        path.write_text(BASES[name])
        assert assert_a_lesson_or_file_line_problems(path, path.read_bytes()) is not None, name


# Inputs that made the loader raise something other than LessonError, each a regression test.
CRASHERS = {
    "order with a superscript digit": ("order: 7", "order: ²"),
    "order longer than int() takes": ("order: 7", "order: " + "9" * 5000),
    "rc with a superscript digit": ("~~~run host try rc=any", "~~~run host try rc=²"),
    "rc longer than int() takes": ("~~~run host try rc=any", "~~~run host try rc=" + "9" * 5000),
    "expect with a huge repeat count": ("^box-", "a{99999999999999999999}"),
    "expect nested 2,000 deep": ("^box-", "(" * 2000 + ")" * 2000),
}


@pytest.mark.parametrize(("old", "new"), CRASHERS.values(), ids=CRASHERS.keys())
def test_values_that_once_crashed_the_loader_are_problems(tmp_path: Path, old: str, new: str) -> None:
    assert old in SYNTHETIC
    path = tmp_path / "lesson.md"
    data = SYNTHETIC.replace(old, new, 1).encode()
    path.write_bytes(data)
    with pytest.raises(loader.LessonError) as caught:
        loader.load_lesson(path)
    line = SYNTHETIC.split("\n").index(old) + 1
    assert [p.where.line for p in caught.value.problems] == [line], str(caught.value)
    assert_a_lesson_or_file_line_problems(path, data)


def test_a_regular_expression_error_shows_control_characters_escaped(tmp_path: Path) -> None:
    path = tmp_path / "lesson.md"
    path.write_text(SYNTHETIC.replace("^box-", "[0-\x1f", 1))
    with pytest.raises(loader.LessonError) as caught:
        loader.load_lesson(path)
    assert "bad character range 0-\\x1f" in str(caught.value)
    assert "\x1f" not in str(caught.value)


def test_line_numbers_count_newlines_only(tmp_path: Path) -> None:
    """A form feed or U+2028 in a line is not a line break for an editor, so it must not shift the numbers."""
    path = tmp_path / "lesson.md"
    text = SYNTHETIC.replace("Intro with", "Intro\x0c with \u2028 and \x1c", 1).replace("order: 7", "order: x", 1)
    path.write_text(text)
    with pytest.raises(loader.LessonError) as caught:
        loader.load_lesson(path)
    assert [str(p) for p in caught.value.problems] == [f"{path}:4: order must be a whole number, not 'x'"]


def test_a_lesson_file_that_is_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "lesson.md"
    os.mkfifo(path)
    with pytest.raises(loader.LessonError, match="not a regular file"):
        loader.load_lesson(path)


def test_workshop_check_names_file_and_line_for_every_broken_mutant(tmp_path: Path) -> None:
    """The real command over a folder of mutants: exit 1, one `file:line: what` per problem, no traceback."""
    lessons = tmp_path / "lessons"
    expected: dict[Path, int] = {}
    for seed in range(40):
        rng = random.Random(seed)
        base = rng.choice(sorted(BASES))
        path = lessons / f"m{seed:02d}" / "lesson.md"
        folder_for(path, base)
        data = mutant(BASES[base], rng)
        path.write_bytes(data)
        expected[path] = max(editor_lines(data), 1)
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100000", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "workshop", "check", str(lessons)],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    said = done.stdout + done.stderr
    assert done.returncode == 1, said[-3000:]
    assert "Traceback" not in said
    reported = [line for line in done.stdout.splitlines() if line.startswith("✗ ")]
    assert reported, done.stdout[-3000:]
    named: set[Path] = set()
    for line in reported:
        found = re.match(r"✗ (/\S+/lesson\.md):(\d+): \S", line)
        assert found, f"not `file:line: what`: {line!r}"
        path, number = Path(found.group(1)), int(found.group(2))
        assert path in expected and 1 <= number <= expected[path], line
        named.add(path)
    assert len(named) >= 20, "most mutants are broken; the command named only a few of them"
