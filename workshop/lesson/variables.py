"""`{{name}}` placeholders in lesson files, so lessons stay portable across machines and sessions.

Static names (work dir, rootfs, image, …) are known when a lesson starts; `pid.<console>` and friends are read
from the kernel at the moment a command is typed, because the process a learner talks to changes as shells nest.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.\-]*)\s*\}\}")

STATIC = {
    "session": "this session's unique id (short hex), for names that must not collide with another session",
    "name": "a short unique prefix for kernel object names (links, netns, cgroups): `ws` + session",
    "workdir": "this session's private work directory; everything the lesson writes goes below it",
    "rootfs": "where lessons unpack the image: {{workdir}}/rootfs",
    "image": "the container image tarball built by `workshop rootfs`",
    "lessondir": "the folder of the lesson file (helper scripts live there)",
    "python": "the Python interpreter running workshop",
    "cgroup": "this session's pids cgroup, on cgroup v1 or v2 (its parent is prepared when a step `creates cgroup`)",
    "cgroup_version": "v1 or v2: where {{cgroup}} lives",
    "cgroup_layout": "one sentence on this machine's cgroup layout (v1, hybrid or v2)",
    "net": "the first three numbers of a private /24 no route on this host uses, leased to this session: {{net}}.1",
}
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
