"""Shared fixtures: root gating, a private state dir with a real image, and a host-hygiene check."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hygiene import HostState

REPO = Path(__file__).resolve().parent.parent
WORKSHOP = [sys.executable, "-m", "workshop"]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_root() -> None:
    """Skip on a laptop without root; under CI a missing capability is a failure, never a skip."""
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail("this test needs root, and CI=true: run the suite as root")
        pytest.skip("needs root (runs in CI)")


def require_tool(name: str) -> None:
    if shutil.which(name) is None:
        if IN_CI:
            pytest.fail(f"{name} is missing, and CI=true: .ci/run must install it")
        pytest.skip(f"needs {name}")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """`@pytest.mark.root`: skipped without root on a laptop, a failure under CI."""
    if item.get_closest_marker("root"):
        require_root()


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state dir holding a freshly built default image, shared by the whole run (building takes ~1 s)."""
    from workshop.image import rootfs

    state = tmp_path_factory.mktemp("state")
    try:
        rootfs.build_busybox_image(state / "images" / "rootfs.tar")
    except rootfs.RootfsError as e:
        if IN_CI:
            pytest.fail(f"cannot build the image in CI: {e}")
        pytest.skip(f"cannot build the image here: {e}")
    return state


@pytest.fixture
def state_dir(image_dir: Path, tmp_path: Path) -> Path:
    """A private state dir per test (journals, sessions) sharing the one built image."""
    state = tmp_path / "state"
    (state / "images").mkdir(parents=True)
    os.symlink(image_dir / "images" / "rootfs.tar", state / "images" / "rootfs.tar")
    return state


@pytest.fixture
def workshop_env(state_dir: Path, tmp_path: Path) -> dict[str, str]:
    """Environment for running the real `workshop` program against the private state dir."""
    env = dict(os.environ)
    env.update(
        WORKSHOP_STATE_DIR=str(state_dir),
        XDG_STATE_HOME=str(tmp_path / "xdg"),
        NO_COLOR="1",
        COLUMNS="120",
        LINES="40",
        PROMPT_TOOLKIT_NO_CPR="1",
        PYTHONPATH=str(REPO),
    )
    env.pop("SUDO_USER", None)
    return env


def run_workshop(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        WORKSHOP + args,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        cwd=REPO,
    )


@pytest.fixture
def host_unchanged() -> Iterator[HostState]:
    """Fails the test if it leaves a mount, link, netns, cgroup or process behind on the host."""
    before = HostState.read()
    yield before
    deadline = time.monotonic() + 5
    while True:  # processes killed at teardown may take a moment to be reaped
        leaks = HostState.read().leaks_since(before)
        if not leaks or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not leaks, "the host was changed:\n" + "\n".join(leaks)
