"""A lesson's front matter: YAML between a first line `---` and the next `---`, read with PyYAML's safe loader.

Values are taken from the YAML node tree as written (the text of each scalar), not converted by YAML's implicit
types, so `title: no` stays the word "no" and `order: 015` the text the lesson parser checks itself. Every value
keeps the line it was written on, so a problem still reads `file:line: what is wrong`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

VAR_NAME = re.compile(r"[a-z_][a-z0-9_]*")

Value = str | list[str]
"""A front matter value: a text, or a list of texts (`[a, b]` or an indented `- a` list)."""


@dataclass
class FrontMatter:
    keys: dict[str, tuple[int, Value]] = field(default_factory=dict)
    """Each top-level key (but `vars`) with the line it is on and its value."""
    variables: dict[str, tuple[int, str]] = field(default_factory=dict)
    """The lesson's own variables (`vars:`), with their lines."""
    body_start: int = 0
    """Index of the first line after the closing `---`."""
    problems: list[tuple[int, str]] = field(default_factory=list)
    """(line, message) for everything wrong in it."""


def read(lines: list[str]) -> FrontMatter:
    """The front matter of a lesson given as its lines (without line ends)."""
    fm = FrontMatter()
    if not lines or lines[0].strip() != "---":
        fm.problems.append((1, "a lesson starts with front matter: a line '---', then 'id: …', 'title: …', then '---'"))
        return fm
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
    if end is None:
        fm.problems.append((1, "the front matter is not closed: add a line '---' after it"))
        fm.body_start = len(lines)
        return fm
    fm.body_start = end + 1
    text = "\n".join(lines[1:end])
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        fm.problems.append(_yaml_problem(e, text, lines))
        return fm
    except yaml.reader.ReaderError as e:  # a character YAML does not allow: the line is counted from its position
        line = text[: e.position].count("\n") + 2
        fm.problems.append((line, f"the front matter holds a character YAML does not allow: U+{e.character:04X}"))
        return fm
    except yaml.YAMLError as e:  # not marked: no line to point at
        fm.problems.append((1, f"the front matter is not valid YAML: {_one_line(str(e))}"))
        return fm
    if root is None:
        return fm
    if not isinstance(root, yaml.MappingNode):
        fm.problems.append((_line_of(text, root.start_mark), "front matter lines are 'key: value'"))
        return fm
    seen: dict[str, int] = {}
    for key_node, value_node in root.value:
        key, at = _text(key_node), _line_of(text, key_node.start_mark)
        if key is not None and key in seen:
            fm.problems.append((at, f"{key!r} is given twice in the front matter (first on line {seen[key]})"))
            continue
        if key is not None:
            seen[key] = at
        _take(fm, text, key_node, value_node)
    return fm


def _line_of(text: str, mark: yaml.Mark) -> int:
    # Counted from the character index, not YAML's own line count: YAML also breaks lines at \r, U+0085, U+2028
    # and U+2029, which an editor (and the lesson parser) does not. +2: the text starts after the '---' line.
    return text[: mark.index].count("\n") + 2


def _yaml_problem(e: yaml.MarkedYAMLError, text: str, lines: list[str]) -> tuple[int, str]:
    mark = e.problem_mark or e.context_mark
    line = _line_of(text, mark) if mark is not None else 1
    what = _one_line(e.problem or "not valid YAML")
    source = lines[line - 1] if 0 < line <= len(lines) else ""
    if re.search(r"(:|^\s*-)\s*\{\{", source):
        # As in Ansible: a value that starts with {{ reads as a YAML mapping unless it is quoted.
        return line, f'a value with {{{{…}}}} must be quoted, as in  name: "{{{{workdir}}}}/file"  ({what})'
    return line, f"the front matter is not valid YAML: {what}"


def _one_line(message: str) -> str:
    """A message for one terminal line: whitespace runs become one space, other control characters escapes."""
    flat = " ".join(message.split())
    return re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\x{ord(m.group()):02x}", flat)


def _text(node: yaml.Node) -> str | None:
    return node.value if isinstance(node, yaml.ScalarNode) else None


def _take(fm: FrontMatter, text: str, key_node: yaml.Node, value_node: yaml.Node) -> None:
    n = _line_of(text, key_node.start_mark)
    key = _text(key_node)
    if key is None:
        fm.problems.append((n, "front matter keys are plain words ('id', 'title', …)"))
        return
    if key == "vars":
        _take_vars(fm, text, n, value_node)
        return
    value = _text(value_node)
    if value is not None:
        fm.keys[key] = (n, value.strip())
    elif isinstance(value_node, yaml.SequenceNode) and all(_text(item) is not None for item in value_node.value):
        fm.keys[key] = (n, [str(_text(item)).strip() for item in value_node.value])
    else:
        fm.problems.append((n, f"{key!r} takes a text or a list of words, not a nested mapping"))


def _take_vars(fm: FrontMatter, text: str, n: int, node: yaml.Node) -> None:
    if _text(node) == "":  # `vars:` with nothing below
        return
    if not isinstance(node, yaml.MappingNode):
        fm.problems.append((n, "'vars:' takes indented 'name: value' lines below it"))
        return
    for name_node, value_node in node.value:
        line = _line_of(text, name_node.start_mark)
        name, value = _text(name_node), _text(value_node)
        if name is None or not VAR_NAME.fullmatch(name):
            fm.problems.append((line, f"a variable is written 'name: value' (lowercase name), not {name!r}"))
        elif value is None:
            fm.problems.append((line, f"variable {name!r} takes a text value"))
        elif name in fm.variables:
            fm.problems.append((line, f"variable {name!r} is given twice (first on line {fm.variables[name][0]})"))
        else:
            fm.variables[name] = (line, value.strip())
