"""`workshop slides`: every lesson as an offline HTML deck, kept in sync in `slides/`, shown in a real Chromium."""

from __future__ import annotations

import html as htmllib
import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser import HEIGHT, WIDTH, Watched
from tests.ci import require_tool
from tests.harness import REPO, run_workshop
from tests.hygiene import HostState
from workshop.lesson import loader
from workshop.lesson.model import Lesson
from workshop.ui import slides, slides_html

if TYPE_CHECKING:
    from PIL.Image import Image
    from playwright.sync_api import Browser

SLIDES = REPO / "slides"
LESSON_FILES = loader.lesson_files(REPO / "lessons")
REBUILD = "run `workshop slides --out slides` and commit slides/"

DEMO = """\
---
id: demo
title: Escaping <script>alert("title")</script>
order: 5
consoles: [host, container]
---
# Demo

Intro with <img src=x onerror=alert(1)>, a [manual](https://example.org/docs) and `{{rootfs}}`.

## Step one & <two>

Prose <script>alert(1)</script> with **bold**.

```run host
echo "<script>alert(2)</script>" > {{workdir}}/x
```

```run container try
cat {{workdir}}/x
```

```expect host
my PID is \\d+
```

```check
# the file exists in {{workdir}} & <is> fine
test -e {{workdir}}/x
# and the container can read it
test -r {{workdir}}/x
```

```notes
Say "<hello>" to the room.
```

```hint
Look at `{{workdir}}`.
```

# Recap

Done.
"""


def demo_lesson(text: str = DEMO, name: str = "demo") -> Lesson:
    return loader.parse_lesson(Path(f"/somewhere/lessons/{name}/lesson.md"), text)


class Resources(HTMLParser):
    """Every tag and every attribute that could make a browser load or run something."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.urls: list[tuple[str, str, str]] = []
        self.handlers: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "action", "srcset", "poster", "data"):
                self.urls.append((tag, name, value or ""))
            if name.startswith("on"):
                self.handlers.append(f"<{tag} {name}>")


def assert_offline(name: str, text: str, scripts: int) -> None:
    found = Resources(text)
    remote = [u for u in found.urls if re.match(r"^\s*(https?:|//|ftp:)", u[2], re.IGNORECASE)]
    assert not remote, f"{name} refers to the network: {remote}"
    assert found.tags.count("script") == scripts, f"{name}: only the deck's own script may run"
    assert not {"img", "iframe", "link", "object", "embed", "video", "audio"} & set(found.tags), name
    assert not found.handlers, f"{name} has inline event handlers: {found.handlers}"
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', text)
    assert csp, f"{name} has no Content-Security-Policy"
    assert "default-src 'none'" in csp.group(1)


# -- the HTML, without a browser -------------------------------------------------------------------------------------
def test_lesson_text_is_data_everything_is_escaped() -> None:
    deck = slides.render_deck(demo_lesson(), [demo_lesson()])
    assert_offline("demo", deck, scripts=1)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in deck  # prose
    assert "echo &quot;&lt;script&gt;alert(2)&lt;/script&gt;&quot;" in deck  # a command
    assert "Escaping &lt;script&gt;alert(&quot;title&quot;)&lt;/script&gt;" in deck  # the title
    assert "&lt;img src=x onerror=alert(1)&gt;" in deck  # raw HTML in Markdown is shown as text
    assert "Step one &amp; &lt;two&gt;" in deck
    assert "the file exists in" in deck
    assert "&amp; &lt;is&gt; fine" in deck
    assert "&lt;hello&gt;" in deck  # presenter notes


def test_a_link_out_shows_its_address_instead_of_leaving_the_deck() -> None:
    deck = slides.render_deck(demo_lesson(), [demo_lesson()])
    assert 'href="https://example.org/docs"' not in deck
    assert '<span class="link">manual</span> <span class="url">(https://example.org/docs)</span>' in deck


def test_placeholders_are_highlighted_and_explained_on_a_legend_slide() -> None:
    deck = slides.render_deck(demo_lesson(), [demo_lesson()])
    # a command is shown as the console gets it: the work dir, where consoles start, is left out
    assert "echo &quot;&lt;script&gt;alert(2)&lt;/script&gt;&quot; &gt; x</code>" in deck
    assert '<li>the file exists in <span class="var">⟨workdir⟩</span> &amp; &lt;is&gt; fine' in deck  # a proof
    assert "{{" not in deck
    legend = deck.split('class="slide legend"', 1)[1].split("</section>", 1)[0]
    assert "⟨workdir⟩" in legend
    assert "private work directory" in legend  # variables.STATIC's meaning, not a made-up one


def test_a_step_shows_its_consoles_what_to_expect_and_what_the_check_proves() -> None:
    lesson = demo_lesson()
    shown = slides.slides_of(lesson, [lesson])
    step = "\n".join(s.body for s in shown if s.kind in ("step", "check"))
    assert '<div class="console-name">host</div>' in step
    assert '<div class="console-name">container<span class="try">try it</span></div>' in step
    assert "try it yourself: the solution" in step
    # before the solution, the try-it step is an exercise for the room: its goal, and no solution yet
    exercise = next(s for s in shown if s.kind == "exercise")
    assert "exercise for the room" in exercise.body and "your turn" in exercise.body
    assert "the file exists in" in exercise.body and "cat x" not in exercise.body
    assert "Hints, one tier at a time" in exercise.notes
    assert 'my PID is <span class="wild">‹number›</span>' in step
    assert "<li>the file exists in" in step
    assert "<li>and the container can read it</li>" in step  # a later `#` line of the check is a proof too
    assert "Done." in shown[-1].body


def kinds_with_paragraphs(n: int) -> list[str]:
    prose = "\n\n".join(["A paragraph that keeps explaining the same thing at length. " * 3] * n)
    lesson = demo_lesson(DEMO.replace("Prose <script>", prose + "\n\nProse <script>"))
    return [s.kind for s in slides.slides_of(lesson, [lesson])]


def test_a_step_gets_as_many_slides_as_a_projector_needs() -> None:
    short = demo_lesson(DEMO.replace("```run container try\ncat {{workdir}}/x\n```\n", ""))
    assert [s.kind for s in slides.slides_of(short, [short])] == ["title", "legend", "step", "recap"]
    # what to do, then what to expect
    assert kinds_with_paragraphs(1) == ["title", "legend", "exercise", "step", "check", "recap"]
    # the explanation, the commands, what to expect
    assert kinds_with_paragraphs(6) == ["title", "legend", "exercise", "step", "commands", "check", "recap"]


@pytest.mark.parametrize(
    ("pattern", "shown", "is_regex"),
    [
        ("my PID is 1", "my PID is 1", False),
        (r"NSpid:\s+{{pid.container}}\s+1", 'NSpid: <span class="var">⟨pid.container⟩</span> 1', False),
        (r"LISTEN .*:8080", 'LISTEN <span class="wild">…</span>:8080', False),
        (r"can\'t fork\.", "can&#x27;t fork.", False),
        (r"^my PID is ([2-9]|[1-9][0-9])$", "^my PID is ([2-9]|[1-9][0-9])$", True),
    ],
)
def test_expected_output_reads_as_text_unless_it_is_a_real_pattern(pattern: str, shown: str, is_regex: bool) -> None:
    assert slides_html.expected(pattern) == (shown, is_regex)


def test_the_build_is_deterministic_and_holds_no_paths_of_this_machine(tmp_path: Path) -> None:
    lessons = loader.load_all(LESSON_FILES)
    first = {p.name: p.read_bytes() for p in slides.build(lessons, tmp_path / "a")}
    second = {p.name: p.read_bytes() for p in slides.build(lessons, tmp_path / "b")}
    assert first == second
    assert set(first) == {slides.deck_name(x) for x in lessons} | {slides.INDEX}
    for name, data in first.items():
        text = data.decode()
        assert str(REPO) not in text
        assert str(tmp_path) not in text
        assert_offline(name, text, scripts=0 if name == slides.INDEX else 1)


def test_a_rebuild_removes_our_deck_of_a_lesson_that_is_gone_and_nothing_else(tmp_path: Path) -> None:
    old = demo_lesson(DEMO.replace("id: demo", "id: retired"), "retired")
    slides.build([old, demo_lesson()], tmp_path)
    (tmp_path / "mine.html").write_text("<p>someone's own page</p>")
    written = slides.build([demo_lesson()], tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.html", "index.html", "mine.html"]
    assert [p.name for p in written] == ["demo.html", "index.html"]


def test_the_index_lists_every_deck_in_curriculum_order() -> None:
    lessons = loader.load_all(LESSON_FILES)
    index = slides.render_index(lessons)
    links = re.findall(r'<li><a href="([^"]+)">', index)
    assert links == [slides.deck_name(x) for x in sorted(lessons, key=lambda x: (x.order, x.id))]


def _workshop(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "WORKSHOP_LESSONS"}
    env.update(PYTHONPATH=str(REPO), NO_COLOR="1", COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "workshop", *args], env=env, capture_output=True, text=True, timeout=60, cwd=REPO
    )


def test_committed_slides_match_the_lessons(tmp_path: Path) -> None:
    """Fails when a lesson changed and `slides/` was not rebuilt."""
    result = _workshop("slides", "--out", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"written to {tmp_path}" in result.stdout
    fresh = {p.name: p.read_bytes() for p in tmp_path.glob("*.html")}
    committed = {p.name: p.read_bytes() for p in SLIDES.glob("*.html")}
    differ = sorted(n for n in fresh.keys() | committed.keys() if fresh.get(n) != committed.get(n))
    assert not differ, f"slides/ is out of date with lessons/ ({', '.join(differ)}): {REBUILD}"


def test_slides_into_a_file_is_a_clear_error(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("keep me")
    result = _workshop("slides", "--out", str(target))
    assert result.returncode == 2
    assert "is not a directory" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert target.read_text() == "keep me"


# -- in a real browser: Debian's chromium, driven by Playwright (tests/browser.py) -----------------------------------


class Deck(Watched):
    def visible_slides(self) -> list[str]:
        return [str(x) for x in self.page.evaluate(VISIBLE)]


VISIBLE = "() => [...document.querySelectorAll('.slide')].filter(s => s.checkVisibility()).map(s => s.id)"
OVERFLOW = "() => { const f = document.querySelector('.slide.active .frame'); return f.scrollHeight - f.clientHeight }"


@pytest.fixture
def watched(browser: Browser) -> Iterator[Deck]:
    w = Deck(browser)
    yield w
    w.close()


def _deck(path: Path) -> tuple[Lesson, Path]:
    lesson = loader.load_lesson(path)
    deck = SLIDES / slides.deck_name(lesson)
    assert deck.is_file(), f"no deck for lesson {lesson.id!r}: {REBUILD}"
    return lesson, deck


@pytest.mark.parametrize("lesson_file", LESSON_FILES, ids=[p.parent.name for p in LESSON_FILES])
def test_a_deck_opens_cleanly_and_the_keyboard_moves_through_it(lesson_file: Path, watched: Deck) -> None:
    lesson, deck = _deck(lesson_file)
    page = watched.page
    page.goto(deck.as_uri())
    total = page.locator(".slide").count()
    assert watched.hash() == "#1"
    assert watched.visible_slides() == ["slide-1"]
    assert lesson.title in page.locator(".slide.active h1").inner_text()

    page.keyboard.press("ArrowRight")
    assert (watched.hash(), watched.visible_slides()) == ("#2", ["slide-2"])
    page.keyboard.press("ArrowLeft")
    assert (watched.hash(), watched.visible_slides()) == ("#1", ["slide-1"])
    for key, expected in (("PageDown", 2), ("Space", 3), ("PageUp", 2), ("End", total), ("Home", 1)):
        page.keyboard.press(key)
        assert watched.hash() == f"#{expected}", f"{key} should show slide {expected}"
        assert watched.visible_slides() == [f"slide-{expected}"]

    # `#N` in the address is the slide shown: the first step's slide, by its title
    first_step = page.locator(".slide.step").first.get_attribute("id") or ""
    page.evaluate(f"location.hash = '#{first_step.removeprefix('slide-')}'")
    page.wait_for_function(f"document.getElementById('{first_step}').checkVisibility()")
    assert lesson.steps[0].title in page.locator(".slide.active h2").inner_text()

    notes = page.locator(".slide.active .notes")
    assert not notes.is_visible()
    page.keyboard.press("n")
    assert notes.is_visible()
    assert f"{lesson.path.parent.name}/lesson.md:{lesson.steps[0].where.line}" in notes.inner_text()
    box = notes.bounding_box()
    assert box is not None and box["x"] > WIDTH / 2, "the notes sit beside the slide"
    page.keyboard.press("n")
    assert not notes.is_visible()

    # every slide fits the screen once the deck has sized its type (no text cut off on a projector)
    page.keyboard.press("Home")
    for n in range(1, total + 1):
        assert page.evaluate(OVERFLOW) <= 1, f"slide {n} of {deck.name} runs off the screen: split that step"
        page.keyboard.press("ArrowRight")
    assert watched.hash() == f"#{total}"
    assert page.locator(".slide.active.recap").count() == 1
    assert not watched.problems, f"{deck.name}: {watched.problems}"


def _png(data: bytes) -> Image:
    from PIL import Image

    return Image.open(io.BytesIO(data)).convert("L")


def _ink(image: Image) -> float:
    """The share of dark pixels: text, code blocks, rules."""
    histogram = image.histogram()
    return float(sum(histogram[:128])) / (image.width * image.height)


@pytest.mark.parametrize("lesson_file", LESSON_FILES, ids=[p.parent.name for p in LESSON_FILES])
def test_a_screenshot_of_a_step_shows_its_title_and_commands(lesson_file: Path, watched: Deck) -> None:
    lesson, deck = _deck(lesson_file)
    page = watched.page
    page.set_content("<html><body></body></html>")
    blank = _png(page.screenshot())

    page.goto(deck.as_uri())
    # the first slide with commands on it, opened straight from its `#N` address
    with_commands = page.locator(".slide:has(.console pre)").first.get_attribute("id") or ""
    page.goto(f"{deck.as_uri()}#{with_commands.removeprefix('slide-')}")
    page.reload()
    heading = page.locator(".slide.active h2").inner_text()
    assert any(step.title in heading for step in lesson.steps if step.runs), heading
    assert page.locator(".slide.active .console pre").first.inner_text().startswith("$ ")
    shot = _png(page.screenshot())

    from PIL import ImageChops

    changed = ImageChops.difference(shot, blank).point(lambda v: 255 if v > 40 else 0).histogram()[255]
    assert changed > 0.03 * WIDTH * HEIGHT, "the slide looks like an empty page"
    title = page.locator(".slide.active h2").bounding_box()
    assert title is not None
    crop = shot.crop((int(title["x"]), int(title["y"]), int(title["x"] + title["width"]), int(title["y"] + 40)))
    assert 0.03 < _ink(crop) < 0.6, "the title's letters are not painted"
    term = page.locator(".slide.active .console pre").first.bounding_box()
    assert term is not None
    inside = shot.crop(
        (
            int(term["x"]) + 4,
            int(term["y"]) + 4,
            int(term["x"] + term["width"]) - 4,
            int(term["y"] + term["height"]) - 4,
        )
    )
    assert _ink(inside) > 0.6, "the commands are not on a terminal-dark background"
    assert sum(inside.histogram()[200:]) > 100, "no light command text on the terminal"
    assert not watched.problems, f"{deck.name}: {watched.problems}"


def test_the_index_opens_cleanly_and_links_every_deck(watched: Deck) -> None:
    index = SLIDES / slides.INDEX
    assert index.is_file(), REBUILD
    lessons = loader.load_all(LESSON_FILES)
    page = watched.page
    page.goto(index.as_uri())
    links = page.locator("ol.lessons a")
    assert links.all_inner_texts() == [x.title for x in lessons]
    links.first.click()
    page.wait_for_url(re.compile(re.escape(slides.deck_name(lessons[0])) + r"(#\d+)?$"))  # the deck adds #1
    assert lessons[0].title in page.locator(".slide.active h1").inner_text()
    page.locator("#bar a").click()
    page.wait_for_url(f"**/{slides.INDEX}")
    assert not watched.problems, watched.problems


@pytest.mark.root
@pytest.mark.timeout(240)
def test_decks_with_diagrams_recorded_from_a_real_run(
    workshop_env: dict[str, str], tmp_path: Path, watched: Deck, host_unchanged: HostState
) -> None:
    """`workshop slides --diagrams` runs the lesson live and puts the kernel's state after each step in its deck."""
    require_tool("dot")
    lessons = tmp_path / "lessons"
    shutil.copytree(REPO / "lessons" / "process", lessons / "process")
    out = tmp_path / "decks"
    done = run_workshop(["slides", "--diagrams", "--out", str(out)], {**workshop_env, "WORKSHOP_LESSONS": str(lessons)})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    lesson = loader.load_lesson(lessons / "process" / "lesson.md")
    html = (out / slides.deck_name(lesson)).read_text()
    kinds = [
        (kind, htmllib.unescape(title))
        for kind, title in re.findall(r'<section class="slide (\w+)" id="slide-\d+" aria-label="\d+: ([^"]*)"', html)
    ]
    drawn = [title for kind, title in kinds if kind == "diagram"]
    assert drawn == [f"{s.title}: the kernel afterwards" for s in lesson.steps]
    # each right after its own step's slides: the next slide belongs to the next step (or is the recap)
    order = [title for _, title in kinds]
    for step in lesson.steps:
        at = order.index(f"{step.title}: the kernel afterwards")
        assert any(t.startswith(step.title) for t in order[at - 1 : at]), order
    figures = re.findall(r'<figure class="diagram">(<svg.*?</svg>)\s*</figure>', html, re.S)
    assert len(figures) == len(lesson.steps)
    assert "PID 1 · host" in figures[4], "step 5's clone()d child is drawn as PID 1 of its namespace"

    # shown in a real browser: under the deck's own content policy, with nothing loaded from anywhere
    watched.page.goto((out / slides.deck_name(lesson)).as_uri() + f"#{order.index(drawn[4]) + 1}")
    figure = watched.page.locator(".slide.active figure.diagram svg")
    assert figure.is_visible() and figure.bounding_box()["width"] > 200  # type: ignore[index]
    assert watched.problems == [], watched.problems
