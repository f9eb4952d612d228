"""Lessons → self-contained HTML slide decks (`workshop slides`): one deck per lesson, and an index.

A deck needs nothing but a browser: its CSS and JavaScript are inlined and a Content-Security-Policy forbids
every network load. The output is a pure function of the lessons (no dates, no session ids, no absolute
paths), so the decks committed in `slides/` can be compared byte for byte with a fresh build.

Lesson text is data: prose goes through Markdown with raw HTML disabled, everything else is escaped.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from workshop.lesson import variables
from workshop.lesson.model import Expect, Lesson, Run, Step
from workshop.ui.slides_html import code, esc, expected, markdown, markdown_inline, var

INDEX = "index.html"
GENERATOR = '<meta name="generator" content="workshop slides">'
"""Marks a file as ours: a rebuild removes a deck whose lesson is gone only if it carries this."""
KEYS = "← → Space PageUp PageDown: move · Home End: first, last · n: presenter notes"


# -- the parts of a slide -------------------------------------------------------------------------------------------
def _console_class(lesson: Lesson, console: str) -> str:
    index = lesson.consoles.index(console) if console in lesson.consoles else len(lesson.consoles)
    return f"c{index % 6}"


def _run(lesson: Lesson, run: Run) -> str:
    typed = (variables.short_form(line, lesson.variables) for line in run.lines)  # as the consoles get them
    lines = "\n".join(f'<span class="prompt">$ </span>{code(line)}' for line in typed)
    badge = '<span class="try">try it</span>' if run.try_it else ""
    return (
        f'<div class="console {_console_class(lesson, run.console)}">'
        f'<div class="console-name">{esc(run.console)}{badge}</div>'
        f"<pre><code>{lines}</code></pre></div>"
    )


def _expects(lesson: Lesson, expects: Sequence[Expect]) -> str:
    blocks: list[str] = []
    for console in dict.fromkeys(e.console for e in expects):
        lines: list[str] = []
        for e in expects:
            if e.console == console:
                text, is_regex = expected(e.pattern)
                lines.append(f'<span class="regex">{text}</span>' if is_regex else text)
        blocks.append(
            f'<div class="console {_console_class(lesson, console)}">'
            f'<div class="console-name">{esc(console)} shows</div>'
            f"<pre><code>{chr(10).join(lines)}</code></pre></div>"
        )
    return "\n".join(blocks)


def proofs(step: Step) -> list[str]:
    """What the step's checks prove: each check's description, then the further `#` comments in its script."""
    found: list[str] = []
    for check in step.checks:
        found.append(check.description)
        found.extend(
            line.strip().lstrip("#").strip() for line in check.script.splitlines()[1:] if line.strip().startswith("#")
        )
    return [p for p in found if p]


def _source(lesson: Lesson, line: int | None = None) -> str:
    where = f"{lesson.path.parent.name}/{lesson.path.name}" + (f":{line}" if line else "")
    return f'<p class="source">{esc(where)}</p>'


def used_variables(lesson: Lesson) -> list[str]:
    """Placeholders the audience sees (prose, commands, expected output, proofs), in order of first use."""
    texts: list[str] = []
    for step in lesson.steps:
        texts.append(step.prose)
        texts.extend(variables.short_form(line, lesson.variables) for run in step.runs for line in run.lines)
        texts.extend(e.pattern for e in step.expects)
        texts.extend(proofs(step))
        texts.extend(step.examples)
    return list(dict.fromkeys(name for text in texts for name in variables.referenced(text)))


def meaning(lesson: Lesson, name: str) -> str:
    if name in lesson.variables:
        return f"this lesson's <code>{code(lesson.variables[name])}</code>"
    if name in variables.STATIC:
        return markdown_inline(variables.STATIC[name])
    prefix, _, console = name.rpartition(".")
    per_console = {
        "pid": f"the PID, on the host, of the shell you talk to in the <b>{esc(console)}</b> console",
        "shell": f"the <b>{esc(console)}</b> console's own top-level shell",
        "before.pid": f"{var('pid.' + console)} as it was when the step started",
    }
    return per_console.get(prefix, "")


# -- slides ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Slide:
    kind: str
    """CSS class: title, legend, step, commands, check or recap."""
    title: str
    body: str
    """HTML inside the 1280x720 frame."""
    notes: str = ""
    """HTML for the presenter notes view."""


def deck_name(lesson: Lesson) -> str:
    return f"{lesson.id}.html" if f"{lesson.id}.html" != INDEX else f"lesson-{lesson.id}.html"


def slides_of(lesson: Lesson, curriculum: Sequence[Lesson], diagrams: Mapping[int, str] | None = None) -> list[Slide]:
    """The deck's slides; with `diagrams` (step index -> SVG recorded from a real run), each step is followed by
    the kernel's state as that run left it."""
    position = next((i for i, x in enumerate(curriculum, start=1) if x.id == lesson.id), 0)
    total = len(lesson.steps)
    steps_list = "".join(f"<li>{markdown_inline(s.title)}</li>" for s in lesson.steps)
    facts = [f"{total} steps", "consoles: " + ", ".join(lesson.consoles)]
    if lesson.requires:
        facts.append("needs: " + ", ".join(lesson.requires))
    out = [
        Slide(
            "title",
            lesson.title,
            f'<p class="kicker">Lesson {position} of {len(curriculum)}</p>\n<h1>{esc(lesson.title)}</h1>\n'
            f'<div class="prose">{markdown(lesson.summary)}</div>\n<p class="meta">{esc(" · ".join(facts))}</p>',
            f"<h4>The steps</h4><ol>{steps_list}</ol>{_source(lesson)}",
        )
    ]
    names = used_variables(lesson)
    if names:
        rows = "\n".join(f"<tr><td>{var(n)}</td><td>{meaning(lesson, n)}</td></tr>" for n in names)
        out.append(
            Slide(
                "legend",
                "Placeholders in the commands",
                '<p class="kicker">Before we start</p>\n<h2>Placeholders in the commands</h2>\n'
                "<p>The workshop fills these in for each session. Paths below the session's work directory, "
                "where every console starts, are typed relative to it: <code>rootfs</code> is the unpacked "
                "image.</p>\n"
                f'<table class="legend">\n{rows}\n</table>',
                "<p>Every session gets its own work directory and unique names, so lessons never collide "
                "with each other or with what the host already has.</p>",
            )
        )
    for k, step in enumerate(lesson.steps, start=1):
        out.extend(_step_slides(lesson, step, k, total))
        if diagrams and k - 1 in diagrams:
            out.append(_diagram_slide(step, k, total, diagrams[k - 1]))
    out.append(_recap(lesson, curriculum, position, steps_list))
    return out


def step_slide(lesson: Lesson, curriculum: Sequence[Lesson], index: int) -> int:
    """The number (1-based, as `#N` in a deck's address) of the first slide of step `index` (0-based): its exercise
    for a try-it step, else its own slide."""
    slides = slides_of(lesson, curriculum)
    before = len(slides) - 1 - sum(len(_step_slides(lesson, s, k, len(lesson.steps))) for k, s in
                                   enumerate(lesson.steps, start=1))  # fmt: skip
    return (
        before
        + 1
        + sum(len(_step_slides(lesson, s, k, len(lesson.steps))) for k, s in enumerate(lesson.steps[:index], start=1))
    )


def _diagram_slide(step: Step, k: int, total: int, svg: str) -> Slide:
    return Slide(
        "diagram",
        f"{step.title}: the kernel afterwards",
        f'<p class="kicker">Step {k} of {total} · the kernel afterwards</p>\n<h2>{markdown_inline(step.title)}</h2>\n'
        f'<figure class="diagram">{svg}</figure>',
        "<p>Drawn by Graphviz from the kernel's state after this step in a real run of the lesson (`workshop slides "
        "--diagrams`): processes in the boxes of their PID namespaces, cables between network namespaces, layers "
        "and cgroups; what the step made is marked. PIDs and inodes are that run's.</p>",
    )


def _step_slides(lesson: Lesson, step: Step, k: int, total: int) -> list[Slide]:
    """A try-it step is first an exercise for the room, then its solution."""
    solution = _solution_slides(lesson, step, k, total)
    return [_exercise(lesson, step, k, total), *solution] if step.is_try_it else solution


def _exercise(lesson: Lesson, step: Step, k: int, total: int) -> Slide:
    """What the step prepares, whose turn it is in which console, and the goal the checks verify; the presenter's
    view holds the hints, one tier at a time."""
    boxes = [
        _run(lesson, run)
        if not run.try_it
        else (
            f'<div class="console {_console_class(lesson, run.console)}">'
            f'<div class="console-name">{esc(run.console)}<span class="try">your turn</span></div>'
            '<p class="your-turn">Type it yourself; the next slide shows one way.</p></div>'
        )
        for run in step.runs
    ]
    goals = "".join(f"<li>{markdown_inline(c.description)}</li>" for c in step.checks)
    body = [
        f'<p class="kicker">{esc(f"Step {k} of {total} · exercise for the room")}</p>',
        f"<h2>{markdown_inline(step.title)}</h2>",
        *([f'<div class="prose">{markdown(step.prose)}</div>'] if step.prose else []),
        *boxes,
        f'<h3>The goal, checked on the live kernel</h3>\n<ul class="proves">{goals}</ul>',
    ]
    hints = "".join(f"<li>{markdown(h)}</li>" for h in step.hints)
    notes = f"<h4>Hints, one tier at a time</h4><ol>{hints}</ol>" if hints else ""
    return Slide("exercise", f"{step.title}: exercise", "\n".join(body), notes)


def _solution_slides(lesson: Lesson, step: Step, k: int, total: int) -> list[Slide]:
    """One slide when the whole step fits a projector; else what to do, then what to expect; and when even
    the explanation and the commands do not fit together, each gets a slide of its own."""
    kicker = f"Step {k} of {total}" + (" · try it yourself: the solution" if step.is_try_it else "")

    def head(suffix: str = "") -> list[str]:
        return [f'<p class="kicker">{esc(kicker + suffix)}</p>', f"<h2>{markdown_inline(step.title)}</h2>"]

    prose = [f'<div class="prose">{markdown(step.prose)}</div>'] if step.prose else []
    commands = [_run(lesson, run) for run in step.runs]
    commands.extend(f'<pre class="example"><code>{code(example)}</code></pre>' for example in step.examples)
    expecting: list[str] = []
    if step.expects:
        expecting.append("<h3>Expected output</h3>")
        expecting.append(_expects(lesson, step.expects))
    proven = "".join(f"<li>{markdown_inline(p)}</li>" for p in proofs(step))
    expecting.append(f'<h3>The check proves, on the live kernel</h3>\n<ul class="proves">{proven}</ul>')

    notes = [f"<h4>Notes</h4>{markdown(n)}" for n in step.notes]
    if step.hints:
        hints = "".join(f"<li>{markdown(h)}</li>" for h in step.hints)
        notes.append(f"<h4>Hints, one tier at a time</h4><ol>{hints}</ol>")
    notes.append(_source(lesson, step.where.line))
    scripts = "".join(f"<pre><code>{code(c.script)}</code></pre>" for c in step.checks)
    check_notes = f"<h4>How the check verifies it (a host shell script; exit 0 = passed)</h4>{scripts}"

    size = estimate(step)
    if size.total <= LINES_PER_SLIDE:
        return [
            Slide(
                "step", step.title, "\n".join(head() + prose + commands + expecting), "\n".join([*notes, check_notes])
            )
        ]
    check = Slide(
        "check", f"{step.title}: what to expect", "\n".join(head(" · what to expect") + expecting), check_notes
    )
    if size.head + size.prose + size.commands <= LINES_PER_SLIDE or not prose or not commands:
        return [Slide("step", step.title, "\n".join(head() + prose + commands), "\n".join(notes)), check]
    return [
        Slide("step", step.title, "\n".join(head() + prose), "\n".join(notes)),
        Slide(
            "commands",
            f"{step.title}: the commands",
            "\n".join(head(" · the commands") + commands),
            _source(lesson, step.where.line),
        ),
        check,
    ]


# How much a 1280x720 frame holds, in lines of body text (28px type); the deck's script shrinks the type of a
# slide that still overflows, so this only has to be about right.
LINES_PER_SLIDE = 19.0
_PROSE_CHARS, _MONO_CHARS, _TITLE_CHARS = 78, 84, 40


def _wrapped(text: str, width: int) -> int:
    return max(1, -(-len(text) // width))


@dataclass(frozen=True)
class Size:
    """How tall the parts of a step are on a slide, in lines of body text."""

    head: float
    prose: float
    commands: float
    expecting: float

    @property
    def total(self) -> float:
        return self.head + self.prose + self.commands + self.expecting


def estimate(step: Step) -> Size:
    prose = 0.0
    for block in (b for b in step.prose.split("\n\n") if b.strip()):
        items = [i for i in block.splitlines() if i.lstrip().startswith(("- ", "* ", "1.", "2.", "3.", "4.", "5."))]
        pieces = items if items else [" ".join(block.split())]
        prose += sum(_wrapped(p, _PROSE_CHARS) for p in pieces) + 0.45
    commands = 0.0
    for run in step.runs:
        commands += 1.9 + 0.8 * sum(_wrapped(line, _MONO_CHARS) for line in run.lines)
    for example in step.examples:
        commands += 0.9 + 0.8 * sum(_wrapped(line, _MONO_CHARS) for line in example.splitlines())
    expecting = 1.8 + sum(_wrapped(p, _PROSE_CHARS) + 0.3 for p in proofs(step))
    if step.expects:
        expecting += 3.2 + 0.8 * len(step.expects) + len({e.console for e in step.expects})
    return Size(1.3 + 1.5 * _wrapped(step.title, _TITLE_CHARS), prose, commands, expecting)


def _recap(lesson: Lesson, curriculum: Sequence[Lesson], position: int, steps_list: str) -> Slide:
    parts = ['<p class="kicker">Recap</p>', f"<h2>{esc(lesson.title)}</h2>"]
    if lesson.outro:
        parts.append(f'<div class="prose">{markdown(lesson.outro)}</div>')
    parts.append(f'<ol class="steps">{steps_list}</ol>')
    following = curriculum[position] if 0 < position < len(curriculum) else None
    if following is not None:
        parts.append(
            f'<p class="next">Next lesson: <a href="{esc(deck_name(following))}">{esc(following.title)}</a></p>'
        )
    else:
        parts.append(f'<p class="next">That was the last lesson. <a href="{INDEX}">All lessons</a></p>')
    return Slide("recap", "Recap", "\n".join(parts), _source(lesson))


# -- pages ----------------------------------------------------------------------------------------------------------
def _asset(name: str) -> str:
    return (resources.files("workshop.ui") / "slides_assets" / name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def _head(title: str, css: str, script: str | None) -> str:
    # The policy is the "no network at show time" guarantee: only this page's own style and script may run.
    scripts = _sha256(script) if script is not None else "'none'"
    csp = (
        f"default-src 'none'; style-src {_sha256(css)}; script-src {scripts}; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n{GENERATOR}\n'
        f"<title>{esc(title)}</title>\n<style>{css}</style>\n</head>\n"
    )


def render_deck(lesson: Lesson, curriculum: Sequence[Lesson], diagrams: Mapping[int, str] | None = None) -> str:
    slides = slides_of(lesson, curriculum, diagrams)
    sections: list[str] = []
    for n, slide in enumerate(slides, start=1):
        following = f"<b>Next:</b> {esc(slides[n].title)}" if n < len(slides) else "<b>Last slide.</b>"
        notes = slide.notes or '<p class="empty">No presenter notes for this slide.</p>'
        sections.append(
            f'<section class="slide {slide.kind}" id="slide-{n}" aria-label="{n}: {esc(slide.title)}">\n'
            f'<div class="frame">\n{slide.body}\n</div>\n'
            f'<aside class="notes">\n{notes}\n<p class="next-slide">{following}</p>\n</aside>\n</section>'
        )
    css, script = _asset("deck.css"), _asset("deck.js")
    return (
        _head(f"{lesson.title} · workshop slides", css, script)
        + '<body class="deck">\n<main>\n'
        + "\n".join(sections)
        + '\n</main>\n<div id="progress"></div>\n'
        + f'<footer id="bar"><a href="{INDEX}">All lessons</a><span class="lesson">{esc(lesson.title)}</span>'
        + f'<span class="count" id="count">1 / {len(slides)}</span><span class="keys">{esc(KEYS)}</span></footer>\n'
        + f"<script>{script}</script>\n</body>\n</html>\n"
    )


def render_index(curriculum: Sequence[Lesson]) -> str:
    items: list[str] = []
    for lesson in curriculum:
        first = lesson.summary.split("\n\n", 1)[0].replace("\n", " ")
        items.append(
            f'<li><a href="{esc(deck_name(lesson))}">{esc(lesson.title)}</a> '
            f'<span class="meta">· {len(lesson.steps)} steps</span>\n'
            f'<div class="summary">{markdown_inline(first)}</div></li>'
        )
    return (
        _head("workshop slides", _asset("deck.css"), None)
        + '<body class="index">\n<main>\n<h1>workshop: the slides</h1>\n'
        + "<p>One deck per lesson, in curriculum order: the commands, what they should show, and what each "
        + "step's check proves on the live kernel.</p>\n"
        + '<ol class="lessons">\n'
        + "\n".join(items)
        + f'\n</ol>\n<p class="keys">In a deck: {esc(KEYS)}; <code>#N</code> at the end of the address opens '
        + "slide N.</p>\n</main>\n</body>\n</html>\n"
    )


def pages(lessons: Iterable[Lesson], diagrams: Mapping[str, Mapping[int, str]] | None = None) -> dict[str, str]:
    """File name → HTML for every deck and the index, in curriculum order (`diagrams`: lesson id → step → SVG)."""
    curriculum = sorted(lessons, key=lambda x: (x.order, x.id))
    drawn = diagrams or {}
    out = {deck_name(lesson): render_deck(lesson, curriculum, drawn.get(lesson.id)) for lesson in curriculum}
    out[INDEX] = render_index(curriculum)
    return out


def build(
    lessons: Iterable[Lesson], out_dir: Path, diagrams: Mapping[str, Mapping[int, str]] | None = None
) -> list[Path]:
    """Writes every deck and the index into `out_dir`, removing our decks of lessons that are gone.

    Raises OSError when the directory cannot be written.
    """
    rendered = pages(lessons, diagrams)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in sorted(out_dir.glob("*.html")):
        if old.name not in rendered and GENERATOR in old.read_text(encoding="utf-8", errors="replace"):
            old.unlink()
    written: list[Path] = []
    for name, text in rendered.items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    return written
