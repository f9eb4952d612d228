"""The fixtures every test file shares, in one place: root gating (`@pytest.mark.root`), a private state dir with a
real image, the host-hygiene check, the in-process REPL's environment, a learner on a pty, the busybox image.

What tests import lives in `tests.harness` (running `workshop`, the in-process REPL) and `tests.terminal` (the real
program on a pty); what counts as CI in `tests.ci`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser import browser as browser  # the real Chromium fixture, for every test module
from tests.ci import IN_CI, missing, require_root
from tests.harness import REPO, repl_environment
from tests.hygiene import HostState
from tests.terminal import Learner
from tests.vm import background
from workshop.environment import Environment

if TYPE_CHECKING:
    from workshop.image.rootfs import ImageInfo


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that judge a background VM tier go after the others, so that the tier has the whole run to work beside
    them; tests that want both cores to themselves (`after_background`) go after those."""

    def place(item: pytest.Item) -> int:
        return (
            2 if item.get_closest_marker("after_background") else 1 if item.get_closest_marker("background_tier") else 0
        )

    items.sort(key=place)  # stable: the order within each group stays


def pytest_collection_finish(session: pytest.Session) -> None:
    tiers = [m.args[0] for item in session.items for m in item.iter_markers("background_tier")]
    if not session.config.option.collectonly:
        background.QUEUE.start(list(dict.fromkeys(tiers)))  # each once, in the order their tests run


def pytest_sessionfinish() -> None:
    background.QUEUE.stop()


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


@pytest.fixture
def private_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Progress is saved under the test's own XDG state dir, never the invoking user's (no SUDO_USER)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("SUDO_USER", raising=False)


@pytest.fixture
def repl_env(state_dir: Path, private_progress: None) -> Environment:
    """The environment the in-process REPL runs with (see `tests.harness.type_into_shell`)."""
    return repl_environment(state_dir)


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


@pytest.fixture
def learner(workshop_env: dict[str, str], host_unchanged: HostState) -> Iterator[Callable[..., Learner]]:
    """Starts `workshop ARGS` on a pty (`tests.terminal.Learner`), as often as a test asks; all torn down before
    `host_unchanged` compares the host."""
    started: list[Learner] = []

    def start(*args: str) -> Learner:
        started.append(Learner(workshop_env, args))
        return started[-1]

    yield start
    for one in started:
        one.teardown()


@pytest.fixture(scope="module")
def busybox() -> Path:
    """The host's static busybox, which the image is built from (skipped on a laptop without it, a CI failure)."""
    from workshop.image.rootfs import RootfsError, find_static_busybox

    try:
        return find_static_busybox()
    except RootfsError as exc:
        missing(f"needs a static busybox ({exc})")
        raise


@pytest.fixture(scope="module")
def built(busybox: Path, tmp_path_factory: pytest.TempPathFactory) -> ImageInfo:
    """An image built from it, once per test module."""
    from workshop.image.rootfs import build_busybox_image

    return build_busybox_image(tmp_path_factory.mktemp("built") / "rootfs.tar", busybox)
