"""`{{name}}` placeholders in lesson files, so lessons stay portable across machines and sessions.

Static names (work dir, rootfs, image, …) are known when a lesson starts; `pid.<console>` and friends are read
from the kernel at the moment a command is typed, because the process a learner talks to changes as shells nest.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.\-]*)\s*\}\}")


class SessionFacts(Protocol):
    """What a running session knows, from which the built-in variables are read (the engine's session has it)."""

    @property
    def id(self) -> str: ...
    @property
    def workdir(self) -> Path: ...
    @property
    def image_path(self) -> Path: ...
    @property
    def lessondir(self) -> Path: ...
    def cgroup_path(self, controller: str) -> str:
        """Where the session's cgroup limiting `controller` (pids, memory, cpu) goes on this machine."""
        ...

    def cgroup_facts(self) -> tuple[str, str]:
        """`v1` or `v2` (the rules the session's cgroups follow), and one sentence on the machine's layout."""
        ...

    def cgroup_relative(self) -> str:
        """{{cgroup}} as a path from the root of its hierarchy (`/workshop/ws1a2b3c`)."""
        ...

    def subnet(self) -> str:
        """The /24 leased to the session (its first three numbers)."""
        ...


@dataclass(frozen=True)
class Builtin:
    meaning: str
    """What the variable stands for, as the lint, the slides' legend and the docs say it."""
    value: Callable[[SessionFacts], str]
    short: str | None = None
    """How a typed command writes it, relative to the work dir the consoles start in (None: its value)."""


BUILTINS: dict[str, Builtin] = {
    "session": Builtin(
        "this session's unique id (short hex), for names that must not collide with another session", lambda s: s.id
    ),
    "name": Builtin(
        "a short unique prefix for kernel object names (links, netns, cgroups): `ws` + session", lambda s: f"ws{s.id}"
    ),
    "workdir": Builtin(
        "this session's private work directory; everything the lesson writes goes below it",
        lambda s: str(s.workdir),
        short=".",
    ),
    "rootfs": Builtin(
        "where lessons unpack the image: {{workdir}}/rootfs", lambda s: str(s.workdir / "rootfs"), short="rootfs"
    ),
    "image": Builtin("the container image tarball built by `workshop rootfs`", lambda s: str(s.image_path)),
    "lessondir": Builtin(
        "the folder of the lesson file (helper scripts live there; a session copies those its commands run into its "
        "work dir)",
        lambda s: str(s.lessondir),
    ),
    "python": Builtin(
        "the Python interpreter running workshop (commands type `python3`: its folder comes first on the consoles' "
        "PATH)",
        lambda s: sys.executable,
        short="python3",
    ),
    "cgroup": Builtin(
        "this session's pids cgroup, on cgroup v1 or v2 (its parent is prepared when a step `creates cgroup`)",
        lambda s: s.cgroup_path("pids"),
    ),
    "memory_cgroup": Builtin(
        "this session's memory cgroup (on v1 in the memory hierarchy; on v2 beside {{cgroup}})",
        lambda s: s.cgroup_path("memory"),
    ),
    "cpu_cgroup": Builtin(
        "this session's cpu cgroup (on v1 in the cpu hierarchy; on v2 beside {{cgroup}})",
        lambda s: s.cgroup_path("cpu"),
    ),
    "cgroup_version": Builtin(
        "v1 or v2: the rules {{cgroup}}, {{memory_cgroup}} and {{cpu_cgroup}} follow", lambda s: s.cgroup_facts()[0]
    ),
    "cgroup_path": Builtin(
        "{{cgroup}} as a path from the root of its hierarchy (/workshop/ws + session): what a runtime's "
        "--cgroup-parent takes",
        lambda s: s.cgroup_relative(),
    ),
    "cgroup_layout": Builtin(
        "one sentence on this machine's cgroup layout (v1, hybrid or v2)", lambda s: s.cgroup_facts()[1]
    ),
    "net": Builtin(
        "the first three numbers of a private /24 no route on this host uses, leased to this session: {{net}}.1",
        lambda s: s.subnet(),
    ),
}
"""The one table of built-in variables: the engine reads their values from it, the lint and the slides their
names and meanings."""

STATIC = {name: builtin.meaning for name, builtin in BUILTINS.items()}
"""Built-in name -> meaning."""
DYNAMIC_PREFIXES = {
    "pid": "the process the learner talks to in that console (its foreground shell), e.g. {{pid.container}}",
    "shell": "the console's own top-level shell, e.g. {{shell.container}}",
    "before.pid": "{{pid.X}} as it was when the step started (for checks about a process that is now gone)",
}


class UnknownVariable(KeyError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown variable {{{{{self.name}}}}}"


LOCAL_PREFIX = re.compile(r"\{\{\s*(?:workdir|lessondir)\s*\}\}/")
"""What a command writes without when it is typed where the consoles start: the work dir, into which a session
copies the lesson's helper files too."""
HELPER = re.compile(r"\{\{\s*lessondir\s*\}\}/([\w.-]+)")


def helper_files(texts: Iterable[str]) -> list[str]:
    """The lesson's own files its commands run (`{{lessondir}}/escape.py`): a session copies them into its work dir,
    so a command names them as the talks did, `escape.py`."""
    return list(dict.fromkeys(m.group(1) for text in texts for m in HELPER.finditer(text)))


def short_form(text: str, lesson_vars: Mapping[str, str]) -> str:
    """A command as the consoles get it, written without a session: what lies in the work dir relative to it
    (`{{rootfs}}` is `rootfs`, a lesson's `{{workdir}}/upper1` is `upper1`, `{{lessondir}}/escape.py` is
    `escape.py`), the interpreter as `python3`, every other placeholder as it is. The slides show commands so; a
    running session writes them the same way and fills in the rest from the real values."""

    def short(m: re.Match[str]) -> str:
        name = m.group(1)
        builtin = BUILTINS.get(name)
        if builtin is not None:
            return builtin.short or m.group(0)
        definition = lesson_vars.get(name)
        rest = short_form(definition, {}) if definition is not None else ""
        return rest if rest and not referenced(rest) else m.group(0)

    return PLACEHOLDER.sub(short, LOCAL_PREFIX.sub("", text))


def referenced(text: str) -> list[str]:
    return [m.group(1) for m in PLACEHOLDER.finditer(text)]


def is_known(name: str, consoles: Iterable[str], lesson_vars: Iterable[str]) -> bool:
    if name in STATIC or name in set(lesson_vars):
        return True
    prefix, _, console = name.rpartition(".")
    return prefix in DYNAMIC_PREFIXES and console in set(consoles)


def substitute(text: str, lookup: Callable[[str], str] | Mapping[str, str]) -> str:
    """Replace every placeholder; raises UnknownVariable for a name `lookup` does not know."""

    def value(m: re.Match[str]) -> str:
        name = m.group(1)
        if callable(lookup):
            return lookup(name)
        if name not in lookup:
            raise UnknownVariable(name)
        return lookup[name]

    return PLACEHOLDER.sub(value, text)
