"""The page that follows a session: what the trainer's view and the room's view are sent, folded from the
engine's events, and the address it may be served on."""

from __future__ import annotations

import pytest

from tests.harness import REPO
from tests.unit.test_views import after_unshare, before_unshare
from workshop.engine import events as ev
from workshop.lesson import loader
from workshop.observe import process_diff
from workshop.serve.page_state import PageModel
from workshop.serve.server import ServeError, parse_address

LESSON = loader.load_lesson(REPO / "lessons" / "process" / "lesson.md")


def started(model: PageModel, index: int) -> None:
    step = LESSON.steps[index]
    model.apply(ev.StepStarted(LESSON, index, step, step.prose, ("say this to the room",)))


def test_a_step_and_its_observation_reach_both_views_but_notes_only_the_trainers() -> None:
    drawn: list[ev.Observed] = []

    def diagram(o: ev.Observed) -> str:
        drawn.append(o)
        return "<svg>the picture</svg>"

    times = iter([100.0, 130.0])
    model = PageModel(diagram=diagram, clock=lambda: next(times))
    assert model.apply(ev.LessonStarted(LESSON, "abc123", "/work"))
    started(model, 1)
    snap = after_unshare()
    assert model.apply(ev.Observed(snap, process_diff.diff(before_unshare(), snap)))
    model.apply(ev.StepFinished(1, True))

    room, trainer = model.state.for_room(), model.state.for_trainer()
    assert (room["step"], room["steps"], room["step_title"], room["status"]) == (2, 6, LESSON.steps[1].title, "passed")
    assert room["diagram_svg"] == trainer["diagram_svg"] == "<svg>the picture</svg>"
    assert "notes" not in room and "pstree_html" not in room and "started" not in room
    assert trainer["notes"] == ["say this to the room"]
    assert (trainer["started"], trainer["step_started"]) == (100.0, 130.0)
    assert "unshare" in trainer["pstree_html"] and trainer["pstree_html"].startswith('<pre class="term">')
    assert len(drawn) == 1
    assert room["seq"] == 4


def test_a_diagram_that_cannot_be_drawn_says_why_and_the_page_goes_on() -> None:
    def broken(o: ev.Observed) -> str:
        raise RuntimeError("dot is not installed: apt install graphviz")

    model = PageModel(diagram=broken)
    snap = after_unshare()
    model.apply(ev.Observed(snap, process_diff.diff(None, snap)))
    assert model.state.diagram_svg == ""
    assert model.state.diagram_error == "no diagram: dot is not installed: apt install graphviz"
    assert model.state.pstree_html


def test_events_the_page_does_not_show_change_nothing() -> None:
    model = PageModel()
    assert not model.apply(ev.Notice("hello"))
    assert model.state.seq == 0


@pytest.mark.parametrize(
    ("text", "address"),
    [("127.0.0.1:8017", ("127.0.0.1", 8017)), (":9000", ("127.0.0.1", 9000)), ("9000", ("127.0.0.1", 9000)),
     ("[::1]:8017", ("::1", 8017)), ("127.0.0.1:0", ("127.0.0.1", 0))],
)  # fmt: skip
def test_addresses(text: str, address: tuple[str, int]) -> None:
    assert parse_address(text) == address


@pytest.mark.parametrize(("text", "words"), [("localhost:8017", "an IP address"), ("127.0.0.1:http", "a port"),
                                             ("127.0.0.1:70000", "a port")])  # fmt: skip
def test_bad_addresses_say_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(ServeError, match=words):
        parse_address(text)
