"""Lesson files: valid ones load into the model; broken ones give `file:line: what is wrong`, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import REPO
from workshop.lesson import loader, model, variables

GOOD = """\
---
id: hostname
title: Your own hostname
order: 15
requires: [root, unshare]
consoles: [host, container]
vars:
  newname: box-{{session}}
---

# Your own hostname

Intro.

## A new UTS namespace

Prose with {{pid.container}}.

```run container timeout=5
unshare --uts /bin/sh
hostname {{newname}}
```

```expect container
^box-
```

```check
# the container shell has its own UTS namespace
not in_host_ns {{pid.container}} uts
```

```hint
Type unshare first.
```

```python
print("shown, never run")
```

## Back on the host

```run host rc=any
hostname
```

```creates
mount {{rootfs}}/proc
```

```check
# the host kept its name
[ "$(hostname)" != "{{newname}}" ]
```

# Recap

Done.
"""


def load(tmp_path: Path, text: str) -> model.Lesson:
    path = tmp_path / "lesson.md"
    path.write_text(text)
    return loader.load_lesson(path)


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(loader.LessonError) as info:
        load(tmp_path, text)
    return [str(p) for p in info.value.problems]


def test_a_valid_lesson_becomes_the_model(tmp_path: Path) -> None:
    lesson = load(tmp_path, GOOD)
    assert (lesson.id, lesson.order, lesson.requires) == ("hostname", 15, ("root", "unshare"))
    assert lesson.consoles == ("host", "container")
    assert lesson.variables == {"newname": "box-{{session}}"}
    assert lesson.summary == "Intro." and lesson.outro == "Done."
    first, second = lesson.steps
    assert first.title == "A new UTS namespace"
    assert first.runs[0].console == "container" and first.runs[0].timeout == 5
    assert first.runs[0].lines == ("unshare --uts /bin/sh", "hostname {{newname}}")
    assert first.checks[0].description == "the container shell has its own UTS namespace"
    assert first.hints == ("Type unshare first.",)
    assert first.examples == ('print("shown, never run")',)
    assert first.expects[0].pattern == "^box-"
    assert second.runs[0].rc is None
    assert second.creates[0].kind == "mount" and second.creates[0].target == "{{rootfs}}/proc"


def test_continuation_lines_join_and_comments_are_not_typed(tmp_path: Path) -> None:
    text = GOOD.replace("hostname {{newname}}\n", "# a comment\nhostname \\\n  {{newname}}\n", 1)
    assert load(tmp_path, text).steps[0].runs[0].lines == ("unshare --uts /bin/sh", "hostname    {{newname}}")


BROKEN = [
    # (what is changed, into what, the line the error must point at, words the message must contain)
    ("id: hostname", "id: Hostname!", 2, "lowercase"),
    ("title: Your own hostname\n", "", 1, "'title"),
    ("order: 15", "order: soon", 4, "whole number"),
    ("requires: [root, unshare]", "requires: [root, unshare, overlai]", 5, "did you mean 'overlay'"),
    ("consoles: [host, container]", "consoles: [container, host]", 6, "first console is always 'host'"),
    ("  newname: box-{{session}}", "  newname: box-{{sesion}}", 8, "unknown variable {{sesion}}"),
    ("```run container timeout=5", "```run kontainer", 19, "unknown console 'kontainer'"),
    ("```run container timeout=5", "```run container timeout=forever", 19, "timeout must be seconds"),
    ("```run container timeout=5", "```run container retries=3", 19, "unknown option 'retries'"),
    ("```run container timeout=5", "```run", 19, "say which console"),
    ("```check\n# the container", "```chek\n# the container", 28, "did you mean 'check'"),
    ("not in_host_ns {{pid.container}} uts", "! in_host_ns {{pid.container}} uts", 30, "write `not CMD`"),
    ("not in_host_ns {{pid.container}} uts", "in_host_ns 1 uts && true", 30, "one assertion per line"),
    ("# the container shell has its own UTS namespace\n", "", 28, "start a check with a '# comment'"),
    ("hostname {{newname}}", "hostname {{pid.nosuch}}", 21, "unknown variable {{pid.nosuch}}"),
    ("^box-", "(unclosed", 25, "regular expressions"),
    ("Type unshare first.", "Type it in {{pid.contianer}}.", 34, "unknown variable {{pid.contianer}}"),
    ("mount {{rootfs}}/proc", "socket /tmp/x", 48, "creates lines are 'KIND TARGET'"),
    ("## Back on the host", "## A new UTS namespace", 41, "used twice"),
    ("hostname {{newname}}", "{{python}} {{lessondir}}/helper.py", 21, "no file 'helper.py' beside this lesson"),
]


@pytest.mark.parametrize(("old", "new", "line", "words"), BROKEN)
def test_a_broken_lesson_says_file_line_and_what(tmp_path: Path, old: str, new: str, line: int, words: str) -> None:
    assert old in GOOD
    found = problems(tmp_path, GOOD.replace(old, new, 1))
    assert any(p.startswith(f"{tmp_path / 'lesson.md'}:{line}: ") and words in p for p in found), found


def test_a_step_without_a_check_is_refused(tmp_path: Path) -> None:
    text = GOOD.replace('```check\n# the host kept its name\n[ "$(hostname)" != "{{newname}}" ]\n```\n', "")
    assert any("has no check" in p for p in problems(tmp_path, text))


def test_unclosed_fence_and_missing_front_matter(tmp_path: Path) -> None:
    assert any("never closed" in p for p in problems(tmp_path, GOOD.replace("Done.\n", "Done.\n```run host\nls\n")))
    assert any(":1: a lesson starts with front matter" in p for p in problems(tmp_path, "# no front matter\n"))
    assert any("not closed" in p for p in problems(tmp_path, "---\nid: x\ntitle: y\n"))


def test_unreadable_and_binary_files_are_problems_not_crashes(tmp_path: Path) -> None:
    path = tmp_path / "lesson.md"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(loader.LessonError) as info:
        loader.load_lesson(path)
    assert "cannot read the lesson file" in str(info.value)
    with pytest.raises(loader.LessonError):
        loader.load_lesson(tmp_path / "missing.md")


def test_duplicate_ids_across_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(GOOD)
    (tmp_path / "b.md").write_text(GOOD)
    with pytest.raises(loader.LessonError) as info:
        loader.load_all(loader.lesson_files(tmp_path))
    assert "already used" in str(info.value)


def test_the_shipped_curriculum_is_valid_and_in_order() -> None:
    lessons = loader.load_all(loader.lesson_files(REPO / "lessons"))
    ids = [lesson.id for lesson in lessons]
    assert ids[:3] == ["process", "chroot", "unshare-pid"]
    for lesson in lessons:
        assert all(step.checks for step in lesson.steps), lesson.id
        for step in lesson.steps:
            for run in step.runs:
                assert run.console in lesson.consoles


def test_try_it_blocks_tiered_hints_and_presenter_notes(tmp_path: Path) -> None:
    text = GOOD.replace("```run container timeout=5", "```run container try timeout=5").replace(
        "```hint\nType unshare first.\n```",
        "```hint\nA namespace of which kind?\n```\n\n```hint\nunshare --uts\n```\n\n```notes\nAsk the room first.\n```",
    )
    path = tmp_path / "lesson.md"
    path.write_text(text)
    step = loader.load_lesson(path).steps[0]
    assert step.is_try_it and step.runs[0].try_it and step.runs[0].timeout == 5
    assert step.hints == ("A namespace of which kind?", "unshare --uts")
    assert step.notes == ("Ask the room first.",)
    assert not loader.load_lesson(path).steps[1].is_try_it


def test_a_presenter_note_naming_an_unknown_variable_says_its_line(tmp_path: Path) -> None:
    """Notes are only shown in trainer mode, live in front of a room: the typo must surface in `workshop check`."""
    text = GOOD.replace(
        "```hint\nType unshare first.\n```", "```notes\nPoint at the pstree.\nAsk about {{pid.c9}}.\n```"
    )
    assert any(
        p.startswith(f"{tmp_path / 'lesson.md'}:35: unknown variable {{{{pid.c9}}}}") for p in problems(tmp_path, text)
    )


# -- front matter as YAML ----------------------------------------------------------------------------------------

YAML_FRONT = """\
---
id: hostname            # how `start` finds it
title: "Your own hostname: a first namespace"   # quoted, since it holds ': '
order: 15
requires:               # an indented list works as well as [root, unshare]
  - root
  - unshare
consoles: [host, container]
vars:
  newname: box-{{session}}   # plain text may start with anything but {{
  marker: "{{workdir}}/host-only.txt"
---
"""


def test_front_matter_is_yaml_with_comments_lists_and_quoted_variables(tmp_path: Path) -> None:
    text = YAML_FRONT + GOOD[GOOD.index("\n# Your own hostname") + 1 :]
    lesson = load(tmp_path, text)
    assert lesson.title == "Your own hostname: a first namespace"
    assert lesson.requires == ("root", "unshare") and lesson.order == 15
    assert lesson.variables == {"newname": "box-{{session}}", "marker": "{{workdir}}/host-only.txt"}


def test_yaml_values_stay_the_words_written(tmp_path: Path) -> None:
    # YAML 1.1 would read `no` as false and `1e3` as a float; a lesson gets the text it wrote
    text = GOOD.replace("title: Your own hostname", "title: no").replace("newname: box-{{session}}", "newname: 1e3")
    lesson = load(tmp_path, text.replace("hostname {{newname}}", "hostname x{{newname}}"))
    assert lesson.title == "no" and lesson.variables == {"newname": "1e3"}


FRONT_MATTER_BROKEN = [
    # (what is changed, into what, the line the error must point at, words the message must contain)
    ("  newname: box-{{session}}", "  newname: {{session}}-box", 8, 'must be quoted, as in  name: "{{workdir}}/file"'),
    ("  newname: box-{{session}}", "\tnewname: box-{{session}}", 8, "not valid YAML: found character '\\t'"),
    ("consoles: [host, container]", "consoles: [host, container]\nid: again", 7, "'id' is given twice"),
    ("title: Your own hostname", "title:\n  text: nested", 3, "'title' takes a text or a list"),
    ("id: hostname", "id: [host, name]", 2, "'id' takes one text, not a list"),
    ("  newname: box-{{session}}", "  NewName: box", 8, "lowercase name"),
    ("vars:\n  newname: box-{{session}}", "vars: [newname]", 7, "'vars:' takes indented 'name: value' lines"),
]


@pytest.mark.parametrize(("old", "new", "line", "words"), FRONT_MATTER_BROKEN)
def test_a_broken_front_matter_says_its_line_once(tmp_path: Path, old: str, new: str, line: int, words: str) -> None:
    assert old in GOOD
    found = problems(tmp_path, GOOD.replace(old, new, 1))
    assert any(f":{line}: " in p and words in p for p in found), found
    assert len(found) == 1, f"one mistake, one error (no cascade): {found}"


def test_the_readmes_example_lesson_passes_as_written(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    example = readme.split("````markdown\n", 1)[1].split("\n````", 1)[0] + "\n"
    lesson = load(tmp_path, example)
    assert lesson.id == "hostname" and lesson.steps


def test_commands_are_typed_short_as_the_talks_typed_them() -> None:
    """What lies in the work dir, where the consoles start, is named relative to it; the rest stays a placeholder."""
    lesson_vars = {"upper1": "{{workdir}}/upper1", "mc": "{{python}} {{lessondir}}/minicontainer.py", "c": "{{name}}c"}
    line = "{{mc}} run --state {{workdir}}/c1 --rootfs {{rootfs}} --upper {{upper1}} --cgroup {{cgroup}} {{c}}"
    assert variables.short_form(line, lesson_vars) == (
        "python3 minicontainer.py run --state c1 --rootfs rootfs --upper upper1 --cgroup {{cgroup}} {{c}}"
    )
    assert variables.helper_files([line, lesson_vars["mc"]]) == ["minicontainer.py"]


WITH_SABOTAGE = GOOD.replace(
    "```hint\nType unshare first.",
    "```sabotage\n- unshare --uts /bin/sh\n+ /bin/sh\n```\n\n```hint\nType unshare first.",
    1,
)


def test_a_sabotage_says_what_of_a_run_block_becomes_what(tmp_path: Path) -> None:
    first, second = load(tmp_path, WITH_SABOTAGE).steps
    assert first.sabotage is not None and second.sabotage is None
    assert (first.sabotage.old, first.sabotage.new) == ("unshare --uts /bin/sh", "/bin/sh")
    # a sabotage is for the tests, never shown or run: the step is otherwise the same
    assert first.runs == load(tmp_path, GOOD).steps[0].runs


BROKEN_SABOTAGE = [
    ("- unshare --uts /bin/sh", "- unshare --pid /bin/sh", 33, "not in any of this step's run blocks"),
    ("- unshare --uts /bin/sh", "unshare --uts /bin/sh", 34, "start with '- '"),
    ("- unshare --uts /bin/sh\n", "", 33, "say which lines to take out"),
    ("```hint\nType", "```sabotage\n- hostname\n```\n\n```hint\nType", 38, "at most one sabotage"),
]


@pytest.mark.parametrize(("old", "new", "line", "words"), BROKEN_SABOTAGE)
def test_a_sabotage_that_cannot_apply_says_its_line(tmp_path: Path, old: str, new: str, line: int, words: str) -> None:
    assert old in WITH_SABOTAGE
    found = problems(tmp_path, WITH_SABOTAGE.replace(old, new, 1))
    assert any(p.startswith(f"{tmp_path / 'lesson.md'}:{line}: ") and words in p for p in found), found


def test_a_step_that_only_looks_says_why_nothing_can_be_taken_out(tmp_path: Path) -> None:
    text = WITH_SABOTAGE.replace("- unshare --uts /bin/sh\n+ /bin/sh\n", "none: it only reads the machine's layout\n")
    sabotage = load(tmp_path, text).steps[0].sabotage
    assert sabotage is not None and sabotage.none == "it only reads the machine's layout" and not sabotage.old
    found = problems(tmp_path, WITH_SABOTAGE.replace("- unshare --uts /bin/sh\n+ /bin/sh\n", "none:\n"))
    assert any("say why nothing can be taken out" in p for p in found), found
