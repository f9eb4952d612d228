"""The live half of tests/unit/test_hostile.py: what needs root and the real kernel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ci import require_tool
from tests.harness import REPO
from tests.hygiene import HostState
from tests.unit.test_hostile import (
    hostile_archive,
    snapshot,
)
from tests.unit.test_rootfs import DAMAGED, HOSTILE


def cli_env(workshop_env: dict[str, str]) -> dict[str, str]:
    return {**workshop_env, "COLUMNS": "100000"}  # one message, one line: nothing wraps the member's name


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workshop", *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


CLI_MEMBERS = [
    "dot-dot member", "absolute member", "relative symlink climbing out", "symlink out through another symlink",
    "write through an absolute symlink", "hard link to outside", "device node in etc",
]  # fmt: skip


CLI_DAMAGED = ["plain tar cut in half", "gzip tar with a flipped byte", "xz tar cut in half", "not a tar at all"]


@pytest.mark.root
@pytest.mark.parametrize("case", CLI_MEMBERS + CLI_DAMAGED)
def test_workshop_rootfs_from_a_bad_tarball_says_why_and_changes_nothing(
    case: str, tmp_path: Path, state_dir: Path, workshop_env: dict[str, str], host_unchanged: HostState
) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "canary").write_text("untouched\n")
    if case in HOSTILE:
        source, member, rule = hostile_archive(tmp_path, case)
        expected = [f"rootfs.tar: member {member!r}", rule, "refusing to import"]
    else:
        source = tmp_path / "rootfs.tar"
        source.write_bytes(DAMAGED[case]())
        expected = ["rootfs.tar is truncated, damaged or not a tar archive", "Download or export it again"]
    image = state_dir / "images" / "rootfs.tar"
    image_bytes = image.read_bytes()
    before = snapshot(tmp_path)
    done = run_cli(["rootfs", "--from", str(source)], cli_env(workshop_env))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr and done.stderr == ""
    said = done.stdout
    assert said.startswith("✗ ") and said.count("\n") == 1, said
    for words in expected:
        assert words in said, said
    assert snapshot(tmp_path) == before
    assert image.read_bytes() == image_bytes


@pytest.mark.root
@pytest.mark.parametrize("what", ["missing file", "directory with a symlink out", "a fifo"])
def test_workshop_rootfs_from_a_bad_path_says_why_and_changes_nothing(
    what: str, tmp_path: Path, state_dir: Path, workshop_env: dict[str, str], host_unchanged: HostState
) -> None:
    (tmp_path / "outside").mkdir()
    source = tmp_path / "source"
    if what == "directory with a symlink out":
        (source / "bin").mkdir(parents=True)
        (source / "bin" / "sh").write_bytes(b"sh")
        (source / "bin" / "escape").symlink_to("../../outside")
        expected = "member 'bin/escape' is a symlink to '../../outside', which leads out of the image"
    elif what == "a fifo":
        os.mkfifo(source)
        expected = "is neither a tarball nor a directory"
    else:
        expected = "source not found"
    before = snapshot(tmp_path)
    done = run_cli(["rootfs", "--from", str(source)], cli_env(workshop_env))
    assert done.returncode == 1 and done.stderr == "", done.stdout + done.stderr
    assert expected in done.stdout and "Traceback" not in done.stdout
    assert snapshot(tmp_path) == before


NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


AS_NOBODY = {
    "the shell": [],
    "workshop shell": ["shell"],
    "a lesson": ["run", "process", "--yes"],
    "cleanup": ["cleanup"],
    "cleanup --all": ["cleanup", "--all"],
    "an image": ["rootfs"],
}


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory anyone may write to (pytest's own tmp dirs are root's alone): nobody *could* create its state
    dir, progress or history here, so finding it empty afterwards means something."""
    path = Path(tempfile.mkdtemp(prefix="ws-nobody-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path)


@pytest.mark.root  # to become nobody
@pytest.mark.parametrize("args", AS_NOBODY.values(), ids=AS_NOBODY.keys())
def test_as_nobody_the_answer_is_sudo_and_nothing_is_created(
    args: list[str], open_dir: Path, workshop_env: dict[str, str], host_unchanged: HostState
) -> None:
    require_tool("setpriv")
    env = {
        **workshop_env,
        "WORKSHOP_STATE_DIR": str(open_dir / "state"),
        "XDG_STATE_HOME": str(open_dir / "xdg"),
        "HOME": str(open_dir / "home"),
    }
    done = subprocess.run(
        [*NOBODY, sys.executable, "-m", "workshop", *args], env=env, cwd=REPO, capture_output=True, text=True,
        timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    said = done.stdout + done.stderr
    assert done.returncode == 2, said
    assert "needs root" in said and "sudo workshop" in said, said
    assert "Traceback" not in said
    assert sorted(p.name for p in open_dir.iterdir()) == [], "something was created for a user who was refused"


TINY = """\
---
id: tiny
title: A new hostname
requires: [root, unshare]
consoles: [host, container]
---

# A new hostname

## Unshare

```run container
unshare --uts /bin/sh
```

```check
# the container shell has its own UTS namespace
not in_host_ns {{pid.container}} uts
```
"""


@pytest.mark.root
def test_a_missing_tool_is_named_with_its_package_and_nothing_is_created(
    tmp_path: Path, state_dir: Path, workshop_env: dict[str, str], host_unchanged: HostState
) -> None:
    """The real command, with util-linux's directory off PATH: as on a machine without unshare."""
    (tmp_path / "lessons" / "tiny").mkdir(parents=True)
    (tmp_path / "lessons" / "tiny" / "lesson.md").write_text(TINY)
    env = {**cli_env(workshop_env), "WORKSHOP_LESSONS": str(tmp_path / "lessons"), "PATH": "/usr/sbin:/sbin"}
    assert shutil.which("unshare", path=env["PATH"]) is None
    before = snapshot(state_dir)
    done = run_cli(["run", "tiny", "--yes"], env)
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert "Traceback" not in said
    assert "lesson 'tiny' cannot run on this machine yet" in said
    assert "unshare not found in PATH" in said and "fix: apt-get install util-linux" in said, said
    assert snapshot(state_dir) == before
    assert not (tmp_path / "xdg").exists()
