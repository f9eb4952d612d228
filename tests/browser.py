"""A real browser for the tests that show pages: Debian's chromium, driven by Playwright (never a downloaded one)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.ci import IN_CI, require_tool

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

WIDTH, HEIGHT = 1280, 760  # a 1280x720 slide and the 40px bar under it


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    require_tool("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if IN_CI:
            pytest.fail("playwright is missing, and CI=true: pip install -e '.[dev]'")
        pytest.skip("needs playwright (pip install -e '.[dev]')")
    # As root Chromium refuses to start with its sandbox; the pages are our own, offline ones.
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    # Chromium's GTK side writes a dconf cache (and more) below $HOME: the machine's home stays as it was
    home = tmp_path_factory.mktemp("chromium-home")
    env: dict[str, str | float | bool] = {
        **os.environ,
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_CONFIG_HOME": str(home),
    }
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=shutil.which("chromium"), args=args, env=env)
        yield b
        b.close()


class Watched:
    """A page whose console errors, uncaught exceptions and network requests are all recorded; a request for
    anything that does not start with `allowed` (our own files, our own server) is a problem too."""

    def __init__(self, browser: Browser, allowed: str = "file:") -> None:
        self.page: Page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        self.page.set_default_timeout(10_000)
        self.problems: list[str] = []
        self.page.on(
            "console",
            lambda m: self.problems.append(f"console.{m.type}: {m.text}") if m.type in ("error", "warning") else None,
        )
        self.page.on("pageerror", lambda e: self.problems.append(f"uncaught: {e}"))
        self.page.on("request", lambda r: None if r.url.startswith(allowed) else self.problems.append(r.url))

    def hash(self) -> str:
        return str(self.page.evaluate("location.hash"))

    def close(self) -> None:
        self.page.close()
