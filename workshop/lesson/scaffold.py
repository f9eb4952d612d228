"""`workshop new ID`: a lesson skeleton that passes `workshop check` as written, for an author to fill in."""

from __future__ import annotations

from pathlib import Path

from workshop.lesson.loader import ID_RE

SKELETON = """\
---
id: {id}
title: {title}
order: 100                  # its place in the curriculum: lower comes first
requires: [root, unshare]   # what the machine must offer (docs/lesson-authoring.md lists every word)
consoles: [host, container] # persistent shells; host is always first
---

# {title}

What the learner will see, and why it matters. (Shown when the lesson starts.)

## A first step

What this step does, and what to look at in the process tree and the namespace view after it.

```run container
unshare --uts /bin/sh
hostname {id}-{{{{session}}}}
```

```check
# the container shell has a UTS namespace of its own
not in_host_ns {{{{pid.container}}}} uts
```

```hint
Start a shell in a new UTS namespace: `unshare --uts /bin/sh`.
```

# Recap

- What the learner should remember. (Shown when the last step passes.)
"""


class ScaffoldError(Exception):
    pass


def write(lesson_id: str, folder: Path) -> Path:
    """Writes `folder/ID/lesson.md`; never overwrites."""
    if not ID_RE.match(lesson_id):
        raise ScaffoldError(
            f"{lesson_id!r} cannot be a lesson id: lowercase letters, digits and '-', starting with a letter"
        )
    path = folder / lesson_id / "lesson.md"
    if path.exists():
        raise ScaffoldError(f"{path} already exists; choose another id, or edit that file")
    path.parent.mkdir(parents=True, exist_ok=True)
    title = lesson_id.replace("-", " ").capitalize()
    path.write_text(SKELETON.format(id=lesson_id, title=title))
    return path
