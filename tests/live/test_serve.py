"""`--serve`: the page that follows the session, opened in a real Chromium beside a real REPL on a pty.

A trainer's laptop shows `/` (step, diagram, pstree, notes, timer); the projector shows `/room` (step and diagram
only). The page only ever talks to the address it was served from, never sends anything back, and answers to no
other Host; when workshop ends, however it ends, the port is closed.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser import Watched
from tests.harness import REPO
from tests.terminal import PROMPT, Learner
from workshop.lesson import loader
from workshop.ui import slides

if TYPE_CHECKING:
    from playwright.sync_api import Browser

URL = re.compile(r"the session's page: (http://127\.0\.0\.1:(\d+)/)")
LESSON = loader.load_lesson(REPO / "lessons" / "process" / "lesson.md")
STEPS = len(LESSON.steps)


def served(learner: Callable[..., Learner], *args: str) -> tuple[Learner, str, int]:
    me = learner("--serve-at", "127.0.0.1:0", *args)
    me.wait_for("the room's view")
    found = URL.search(me.screen())
    assert found, me.screen()
    me.wait_for(PROMPT if args == ("shell",) else "press Enter to run the first step")
    return me, found.group(1), int(found.group(2))


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def until(w: Watched, expression: str, value: str, seconds: float) -> None:
    """Polls `expression` in the page (evaluated by the browser's devtools protocol, which the page's own policy,
    forbidding eval, does not govern) until it is `value`."""
    deadline = time.monotonic() + seconds
    while (got := w.page.evaluate(expression)) != value:
        assert time.monotonic() < deadline, f"{expression} is {got!r}, not {value!r}, after {seconds} s"
        time.sleep(0.02)


def text(w: Watched, selector: str) -> str:
    return str(w.page.inner_text(selector))


@pytest.mark.root
@pytest.mark.timeout(180)
def test_the_page_follows_the_repl_and_shows_notes_and_a_timer_only_to_the_trainer(
    learner: Callable[..., Learner], browser: Browser
) -> None:
    me, url, port = served(learner, "shell", "process")
    trainer, room, deck = (Watched(browser, allowed=url) for _ in range(3))
    trainer.page.goto(url)
    room.page.goto(url + "room")
    deck.page.goto(url + "slides")
    for w in (trainer, room):
        until(w, "document.getElementById('connection').textContent", "live", seconds=10)
        assert "A container is just a process" in text(w, "#lesson")

    for step in (1, 2):
        me.type("")  # Enter runs step 1 in the REPL, then shows step 2 (a try-it step: the learner's turn)
        me.wait_for(f"process {step + 1}/{STEPS} " if step == 1 else "your turn")
        seen = time.monotonic()
        title = re.findall(rf"step {step}/{STEPS} (.+?) ─", me.screen(tail=100_000))
        for w in (trainer, room):
            # within a second of the REPL showing it
            until(w, "document.getElementById('step-count').textContent", f"step {step}/{STEPS}",
                  seconds=seen + 1.0 - time.monotonic())  # fmt: skip
            assert title and title[-1].strip() in text(w, "#step-title")
            # and the diagram of the kernel's state, drawn by Graphviz, once the step was observed
            until(w, "String(document.querySelector('#diagram svg') !== null)", "true", seconds=5)
        # the lesson's deck jumped to the step's slide (its exercise, for a try-it step)
        slide = slides.step_slide(LESSON, [LESSON], step - 1)
        until(deck, "document.getElementById('deck').contentWindow.location.hash", f"#{slide}", seconds=2)
        shown = deck.page.frame_locator("#deck").locator(f"#slide-{slide}")
        assert shown.is_visible() and LESSON.steps[step - 1].title.split(":")[0] in shown.inner_text()

    # the timer runs on the trainer's page; the notes are there and nowhere on the room's
    before = text(trainer, "#timer")
    trainer.page.wait_for_timeout(1300)
    assert text(trainer, "#timer") != before and re.match(r"\d+:\d\d", before)
    notes = text(trainer, "#notes")
    assert notes.strip(), "the trainer sees the step's presenter notes"
    assert not room.page.is_visible("#notes")
    assert notes.split()[0] not in room.page.evaluate("document.body.innerText")
    assert room.page.evaluate("document.getElementById('notes').textContent") == ""
    assert "pstree" in text(trainer, ".pstree") and "bash(" in text(trainer, "#pstree")

    me.type("quit")
    assert me.wait_exit() == 0
    for w in (trainer, room, deck):
        assert w.problems == [], w.problems
        w.close()
    assert not listening(port), "the page's port is closed when workshop ends"


@pytest.mark.root
@pytest.mark.timeout(60)
def test_only_our_own_address_is_answered_and_nothing_takes_input(learner: Callable[..., Learner]) -> None:
    me, _url, port = served(learner, "shell")

    def ask(method: str, path: str, host: str) -> int:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request(method, path, headers={"Host": host})
        status = c.getresponse().status
        c.close()
        return status

    ours = f"127.0.0.1:{port}"
    assert ask("GET", "/", ours) == 200
    assert ask("GET", "/room", ours) == 200
    for host in (f"attacker.example:{port}", f"localhost:{port}", "127.0.0.1", f"127.0.0.1:{port + 1}"):
        assert ask("GET", "/", host) == 403, host  # DNS rebinding: a name that points here is still refused
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert ask(method, "/", ours) == 405
    assert ask("GET", "/type?line=reboot", ours) == 404
    table = Path("/proc/net/tcp").read_text().splitlines()[1:]
    listeners = [line.split()[1] for line in table if line.split()[3] == "0A"]
    assert f"0100007F:{port:04X}" in listeners and f"00000000:{port:04X}" not in listeners, "bound to 127.0.0.1 only"

    os.kill(me.pid, signal.SIGKILL)  # a crash: the kernel closes the socket with the process, and no child has it
    me.wait_exit()
    deadline = time.monotonic() + 5
    while listening(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not listening(port)


@pytest.mark.root
@pytest.mark.timeout(60)
def test_ctrl_c_of_a_run_closes_the_page_with_it(learner: Callable[..., Learner]) -> None:
    me = learner("--serve-at", "127.0.0.1:0", "run", "process")  # no --yes: it waits for a key before each step
    me.wait_for("the room's view")
    found = URL.search(me.screen())
    assert found
    port = int(found.group(2))
    assert listening(port)
    me.wait_for("press")
    me.child.sendintr()
    me.wait_exit()
    assert not listening(port)
