"""The live half of tests/unit/test_rootfs.py: what needs root and the real kernel."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.ci import require_root
from tests.unit.test_rootfs import (
    alpine_like,
    make_tar,
    reg,
)
from workshop.engine.processes import run
from workshop.image.rootfs import (
    ImageInfo,
    extract_image,
)


@pytest.mark.root
def test_built_image_runs_a_shell_under_chroot(built: ImageInfo, tmp_path: Path) -> None:
    require_root()
    root = tmp_path / "rootfs"
    extract_image(built.path, root)
    shell = run(["chroot", str(root), "/bin/sh", "-c", "echo $((6*7)); ls /bin | head -1"])
    assert shell.ok, shell.stderr
    answer, first = shell.stdout.splitlines()
    assert answer == "42"
    assert first


@pytest.mark.root
def test_extract_keeps_numeric_owners_and_device_nodes(tmp_path: Path) -> None:
    require_root()
    owned, _ = reg("bin/owned", b"x")
    owned.uid, owned.gid, owned.uname, owned.gname = 1234, 5678, "root", "root"
    image = make_tar(tmp_path / "a.tar", [*alpine_like(), (owned, b"x")])
    root = tmp_path / "rootfs"
    extract_image(image, root)
    found = (root / "bin" / "owned").stat()
    assert (found.st_uid, found.st_gid) == (1234, 5678)  # the numbers, not the host's idea of "root"
    null = (root / "dev" / "null").stat()
    assert stat.S_ISCHR(null.st_mode) and (os.major(null.st_rdev), os.minor(null.st_rdev)) == (1, 3)
