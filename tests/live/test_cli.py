"""The live half of tests/unit/test_cli.py: what needs root and the real kernel."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.ci import require_tool
from tests.harness import REPO, run_workshop

CURRICULUM = [
    "process",
    "chroot",
    "unshare-pid",
    "mount-ns",
    "namespaces",
    "overlay",
    "cgroup-pids",
    "veth",
    "nsenter",
    "capstone",
]


def test_list_shows_the_curriculum_in_teaching_order_with_what_can_run_here(workshop_env: dict[str, str]) -> None:
    done = run_workshop(["list", "--plain"], workshop_env)
    assert done.returncode == 0, done.stderr
    first_words = [line.split()[0] for line in done.stdout.splitlines() if line.split()]
    shown = [word for word in first_words if word in CURRICULUM]
    assert shown == CURRICULUM, done.stdout
    assert "can run here" in done.stdout


def test_an_unknown_lesson_suggests_the_closest(workshop_env: dict[str, str]) -> None:
    done = run_workshop(["run", "chroo", "--yes"], workshop_env)
    assert done.returncode != 0
    assert "did you mean 'chroot'" in done.stdout


@pytest.mark.root
@pytest.mark.parametrize("command", [["run", "process", "--yes"], ["cleanup"], ["rootfs"]])
def test_without_root_the_answer_is_sudo_and_nothing_is_created(
    command: list[str], workshop_env: dict[str, str], state_dir: Path
) -> None:
    require_tool("setpriv")
    before = sorted(p.name for p in state_dir.rglob("*"))
    argv = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        str(REPO / ".venv/bin/python"),
        "-m",
        "workshop",
        *command,
    ]

    done = subprocess.run(argv, env=workshop_env, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 2
    assert "sudo workshop" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert sorted(p.name for p in state_dir.rglob("*")) == before


@pytest.mark.root
def test_a_hostile_tarball_is_refused_with_a_reason(
    tmp_path: Path, workshop_env: dict[str, str], state_dir: Path
) -> None:
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        data = b"owned\n"
        info = tarfile.TarInfo("../../etc/owned")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    image = state_dir / "images" / "rootfs.tar"
    before = image.resolve().read_bytes()
    done = run_workshop(["rootfs", "--from", str(evil)], workshop_env)
    assert done.returncode == 1
    assert "../../etc/owned" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert image.resolve().read_bytes() == before
    assert not Path("/etc/owned").exists()
