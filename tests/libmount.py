"""util-linux's `mount` and `umount` keep a lock and their utab in /run/mount, on the host's /run even when they run
in a mount namespace of their own. A test that runs them itself (not through a lesson, whose journal covers it)
removes that directory again when it made it, so the host is left as found."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

LOCK_DIR = Path("/run/mount")


@contextlib.contextmanager
def lock_dir_as_found() -> Iterator[None]:
    was_there = LOCK_DIR.exists()
    try:
        yield
    finally:
        restore(was_there)


def restore(was_there: bool) -> None:
    if not was_there:
        with contextlib.suppress(OSError):  # gone again only while empty: a lock another mount holds stays
            LOCK_DIR.rmdir()
