"""The lesson format's vocabulary, each word with what it means: the one table the loader checks against and the
author's guide (docs/lesson-authoring.md, see `reference`) is generated from."""

from __future__ import annotations

FRONT_MATTER = {
    "id": "how `start ID` and `workshop run ID` find the lesson: lowercase letters, digits and '-'",
    "title": "shown in `lessons` and at the top of the lesson",
    "order": "its place in the curriculum (a whole number; lower comes first; default 100)",
    "requires": "what the machine must offer, checked before the lesson starts (see Requirements)",
    "consoles": "the persistent shells the lesson types into, `host` first (default: `[host]`)",
    "observe": "extra views after every step, beyond the process tree and namespaces (see Views)",
    "vars": "the lesson's own variables, `name: value`, built from the engine's (a value starting with `{{` is quoted)",
}

ROLES = {
    "run": "`run CONSOLE [try] [timeout=SECONDS] [rc=N|any]`: each line typed into that console and waited for",
    "check": "a bash script run on the host after the step; it passes when it exits 0 (helpers below)",
    "hint": "one block per tier: `hint` shows the next one each time the learner asks",
    "expect": "`expect CONSOLE`: each line a regular expression that must appear in that console during the step",
    "creates": "`KIND TARGET` lines: what the step is about to make, journaled first so it is always undone",
    "notes": "presenter notes, shown only in trainer mode and in the slides' notes view",
    "sabotage": "`- OLD` lines of a run block and `+ NEW` lines: the step without its primitive, which the tests "
    "run and whose check must then fail at this step (`none: WHY` for a step that only looks at the machine)",
}
"""Fenced blocks that mean something; any other fenced block (```python, ```text) is shown, never run."""

RUN_OPTIONS = {
    "try": "a try-it block: in the shell the learner types it, and the checks say when the goal is reached",
    "timeout=SECONDS": "how long each line may take (default 30)",
    "rc=N|any": "the exit status each line must have (default 0); `any` for a step that shows a failure",
}

CREATES_KINDS = {
    "mount": "a mount point (unmounted at the end)",
    "path": "a file or directory (removed; never journaled if the host already had it)",
    "dir": "a directory (removed when empty)",
    "netns": "a named network namespace (/run/netns/NAME)",
    "link": "a network link (deleted)",
    "cgroup": "a cgroup (its processes killed, then removed; its parent is prepared)",
    "podman": "podman's storage dir DIR, used as `--root DIR/root --tmpdir DIR/tmp --runtime-flag root=DIR/runc "
    "--runroot /run/{{name}}-podman` (its containers removed, their conmon killed, the mounts below DIR unmounted, "
    "DIR and the runroot removed; the cgroups podman makes under `--cgroup-parent {{cgroup_path}}`, in every "
    "hierarchy, removed; /var/lib/containers, where podman caches blob digests, removed if the machine had none)",
}
