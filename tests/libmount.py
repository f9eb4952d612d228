"""util-linux's `mount` and `umount` keep a lock and their utab in /run/mount, on the host's /run even when they run
in a mount namespace of their own. A test that runs them itself (not through a lesson, whose journal covers it)
removes that directory again when it made it, so the host is left as found."""

from __future__ import annotations

import contextlib
import os
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


def elsewhere(scratch: Path) -> dict[str, str]:
    """An environment in which util-linux keeps its utab and lock in `scratch` instead of /run/mount: for tools
    that mount in namespaces of their own (mmdebstrap) while other tests compare the host."""
    scratch.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "LIBMOUNT_UTAB": str(scratch / "utab")}
