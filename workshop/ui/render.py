"""The only module that prints: turns events and reports into rich output on the environment's stdout."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, TextIO, cast

from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from workshop.environment import Environment
from workshop.ui.lines import fit
from workshop.ui.theme import AsciiStream, theme_named

if TYPE_CHECKING:  # `workshop list` must start fast: events pulls in the observer, markdown its parser
    from rich.markdown import Markdown
    from rich.panel import Panel

    from workshop.doctor import Finding
    from workshop.engine import events as ev
    from workshop.engine.journal import Undone
    from workshop.lesson.model import Lesson


def make_console(env: Environment) -> Console:
    color = env.color and not env.plain
    return Console(
        file=cast(TextIO, AsciiStream(env.stdout)) if env.plain else env.stdout,
        theme=theme_named(env.theme),
        no_color=not color,
        width=env.width,
        highlight=False,
        color_system="auto" if color else None,
        emoji=False,
    )


def _markdown(text: str) -> Markdown:
    from rich.markdown import Markdown

    return Markdown(text)


class Renderer:
    """Handles every `events.Event`; also renders the CLI's tables and messages."""

    def __init__(self, env: Environment, observe: bool = True) -> None:
        self.env = env
        self.out = make_console(env)
        self.observe = observe
        """Show pstree and namespaces after each step (off for quiet tests)."""
        self.last_observed: ev.Observed | None = None
        self.present = False
        """Trainer mode: presenter notes are shown (never to learners, never in `--yes` runs)."""
        self.pace = 0.0
        """Characters per second at which a step's lines are typed out before they run; 0 shows them at once."""
        self._in_step = False
        self._theme = env.theme

    # -- events ---------------------------------------------------------------------------------------------------
    def __call__(self, event: ev.Event) -> None:
        from workshop.engine import events as ev

        for tap in self.env.taps:
            tap(event)
        if isinstance(event, ev.LessonStarted):
            self.lesson_started(event)
        elif isinstance(event, ev.StepStarted):
            self.step_started(event)
        elif isinstance(event, ev.LineTyped):
            self.line_typed(event)
        elif isinstance(event, ev.OutputLine):
            self.output_line(event.text)
        elif isinstance(event, ev.LineFinished):
            self.line_finished(event)
        elif isinstance(event, ev.CheckDone):
            self.check_done(event)
        elif isinstance(event, ev.Observed):
            self.last_observed = event
            if self.observe:
                self.observation(event)
        elif isinstance(event, ev.Notice):
            self.notice(event.text, event.level)
        elif isinstance(event, ev.StepFinished):
            self.step_finished(event)
        elif isinstance(event, ev.CleanedUp):
            self.cleaned_up(event)
        elif isinstance(event, ev.LessonFinished):
            self.lesson_finished(event)
        elif isinstance(event, ev.Said):
            self.text(event.text, event.style)
        elif isinstance(event, ev.Looked):
            self.looked(event)
        elif isinstance(event, (ev.TryItShown, ev.GoalChecked, ev.HintShown, ev.SolutionShown)):
            self.learner_help(event)
        elif isinstance(event, ev.TrainerMode):
            self.trainer_mode(event)
        elif isinstance(event, ev.LeftoverUndone):
            if event.announce:
                self.notice(f"undoing what session {event.session} left behind (its workshop is gone)", "warning")
            self.undone(event.session, event.results)

    def lesson_started(self, e: ev.LessonStarted) -> None:
        self.out.print(Rule(Text(f"{e.lesson.title}", style="lesson.title")))
        if e.lesson.summary:
            self.out.print(_markdown(e.lesson.summary))
        consoles = ", ".join(e.lesson.consoles)
        self.out.print(Text(f"session {e.session} · consoles: {consoles} · work dir {e.workdir}", style="muted"))
        if e.helpers:
            self.out.print(Text(f"this lesson's programs, copied into the work dir: {', '.join(e.helpers)}", "muted"))

    def step_started(self, e: ev.StepStarted) -> None:
        total = len(e.lesson.steps)
        self.out.print()
        title = Text.assemble((f"step {e.index + 1}/{total} ", "step.counter"), (e.step.title, "step.title"))
        self.out.print(self._big(title) if self.env.theme == "projector" else Rule(title, align="left"))
        if e.prose:
            self.out.print(_markdown(e.prose))
        for example in e.step.examples:
            self.out.print(Padding(Text(example, style="muted"), (0, 0, 0, 4)))
        if self.present:
            self.notes(e.notes)
        self._in_step = True

    def line_typed(self, e: ev.LineTyped) -> None:
        """The line after its console's prompt; a line too long for the screen goes on in rows indented under it,
        cut where a reader expects (see `lines.fit`), never by the terminal at its edge."""
        prompt = f"{e.console}# "
        indent = cell_len(prompt)
        rows = fit(e.line, self.out.width - indent)
        paced = self.pace > 0 and not self.env.plain and self._in_step  # a line typed by a person is not typed again
        for k, row in enumerate(rows):
            lead = Text(prompt, style="console.name") if k == 0 else Text(" " * indent)
            if not paced:
                self.out.print(Text.assemble(lead, (row, "command")))
                continue
            # display only, so the room can follow: the line itself is sent to the console once it is all shown
            self.out.print(lead, end="")
            for ch in row:
                self.out.print(Text(ch, style="command"), end="")
                time.sleep(1 / self.pace)
            self.out.print()

    def output_line(self, text: str) -> None:
        """A line the console printed, under a bar; too long for the screen, it goes on in rows indented under it."""
        bar = "  │ "
        for k, row in enumerate(fit(text, self.out.width - cell_len(bar) - 2)):
            self.out.print(Text.assemble((bar, "muted"), ("" if k == 0 else "  ", ""), (row, "output")))

    def line_finished(self, e: ev.LineFinished) -> None:
        r = e.result
        if r.interrupted:
            self.notice(f"{e.console}: interrupted (Ctrl-C); back at the prompt", "warning")
        elif r.timed_out:
            self.notice(
                f"{e.console}: `{e.line}` ran longer than {e.timeout:g}s and was interrupted with Ctrl-C",
                "warning",
            )
        if r.restarted:
            self.notice(
                f"{e.console}: the shell had to be restarted; what earlier steps did in it is gone "
                "(`again` re-runs the step)",
                "warning",
            )
        if r.rc not in (None, 0) or (e.expected_rc not in (None, 0) and r.rc is not None):
            ok = e.expected_rc is None or r.rc == e.expected_rc
            style = "muted" if ok else "error"
            why = " (as expected)" if ok and e.expected_rc is not None else ""
            self.out.print(Text(f"  exit status {r.rc}{why}", style=style))
        elif e.expected_rc not in (None, 0) and r.rc == 0:
            self.out.print(Text(f"  exit status 0, but this step expects {e.expected_rc}", style="error"))

    def check_done(self, e: ev.CheckDone) -> None:
        r = e.result
        label = r.check.description or "check"
        if r.passed:
            self.out.print(Text.assemble(("  ✓ ", "check.pass"), (label, "check.pass")))
            return
        self.out.print(Text.assemble(("  ✗ ", "check.fail"), (label, "check.fail")))
        if r.failed_at:
            self.out.print(Text(f"      failed at: {r.failed_at}", style="muted"))
        for line in r.output.splitlines()[-8:]:
            self.out.print(Text(f"      {line}", style="muted"))

    def observation(self, e: ev.Observed) -> None:
        from workshop.ui import process_views, resource_views

        self.out.print(process_views.pstree_view(e.snapshot, e.diff))
        self.out.print(process_views.namespace_view(e.snapshot, e.diff, whole=False))
        if e.extras is not None:
            for view in resource_views.extra_views(e.extras):
                self.out.print(view)

    def looked(self, e: ev.Looked) -> None:
        from workshop.ui import process_views

        view = process_views.pstree_view if e.view == "pstree" else process_views.namespace_view
        self.out.print(view(e.snapshot, e.diff))

    def lesson_finished(self, e: ev.LessonFinished) -> None:
        if e.lesson.outro:
            self.out.print(_markdown(e.lesson.outro))
        if e.note:
            self.text(e.note, "check.pass")

    def learner_help(self, e: ev.TryItShown | ev.GoalChecked | ev.HintShown | ev.SolutionShown) -> None:
        """What learner mode says around a try-it step: its goal, what is still missing, hints, the solution."""
        from workshop.engine import events as ev

        if isinstance(e, ev.TryItShown):
            self.text(f"your turn: type it yourself in the {e.console} console. The goal:", "heading")
            for goal in e.goals:
                self.text(f"  ○ {goal}")
            self.text(
                "after each line you type, workshop checks the kernel. Stuck? `hint`, `solution`, `skip`.", "muted"
            )
        elif isinstance(e, ev.GoalChecked) and e.missing:
            self.text("not there yet; still missing:", "muted")
            for what in e.missing:
                self.text(f"  ○ {what}", "check.fail")
        elif isinstance(e, ev.GoalChecked):
            self.text("goal reached ✓", "check.pass")
            for goal in e.goals:
                self.text(f"  ✓ {goal}", "check.pass")
        elif isinstance(e, ev.HintShown):
            self.hint(e.text)
        elif not e.lines:
            self.text("this step types nothing; it looks at what is already there", "muted")
        else:
            self.text("the solution, as workshop would type it:", "heading")
            for console, line in e.lines:
                self.text(f"  {console}# {line}", "command")
            self.text("type it yourself, or `skip` to have it typed for you", "muted")

    def step_finished(self, e: ev.StepFinished) -> None:
        self._in_step = False
        if e.passed:
            self.out.print(Text("step done", style="check.pass"))
        else:
            self.out.print(
                Text(
                    "this step did not do what it teaches yet — `hint`, or `again` to re-run it",
                    style="check.fail",
                )
            )

    def cleaned_up(self, e: ev.CleanedUp) -> None:
        if e.failed:
            self.notice("cleanup could not undo everything:", "error")
            for line in e.failed:
                self.out.print(Text(f"  {line}", style="error"))
            self.notice("run `sudo workshop cleanup` to try again", "error")
        elif e.removed:
            self.out.print(Text(f"cleaned up: {len(e.removed)} resources undone, the host is as it was", style="muted"))

    # -- messages ---------------------------------------------------------------------------------------------------
    def notice(self, text: str, level: str = "info") -> None:
        style = {"info": "notice", "warning": "warning", "error": "error"}.get(level, "notice")
        prefix = {"warning": "! ", "error": "✗ "}.get(level, "")
        self.out.print(Text(prefix + text, style=style))

    def error(self, text: str) -> None:
        self.notice(text, "error")

    def text(self, text: str, style: str = "") -> None:
        self.out.print(Text(text, style=style))

    def markdown(self, text: str) -> None:
        self.out.print(_markdown(text))

    def hint(self, text: str) -> None:
        self.out.print(Text.assemble(("hint: ", "hint"), (text, "")))

    # -- trainer mode -----------------------------------------------------------------------------------------------
    def _big(self, title: Text) -> Panel:
        """A title a room can read: a heavy full-width box with air around it."""
        from rich import box
        from rich.panel import Panel

        return Panel(title, box=box.HEAVY, expand=True, padding=(1, 2), border_style="step.counter")

    def notes(self, notes: Iterable[str]) -> None:
        """Presenter notes, in a panel of their own so nobody mistakes them for the lesson's text."""
        from rich.panel import Panel

        for note in notes:
            title = Text("notes for the trainer", style="notes.title")
            self.out.print(Panel(_markdown(note), title=title, title_align="left", border_style="notes"))

    def trainer_mode(self, e: ev.TrainerMode) -> None:
        """Notes shown and lines typed out (or not); the REPL's switch also changes to the projector theme and back."""
        self.present = e.on
        self.pace = e.pace if e.on else 0.0
        if e.projector:
            self.env.theme = "projector" if e.on else self._theme
            self.out = make_console(self.env)

    def footer(self, text: str) -> None:
        self.out.print(Text(f" {text} ", style="footer"))

    def prompt(self, text: str) -> None:
        """A prompt the user answers on the same line (the terminal echoes what they type)."""
        self.out.print(Text(text, style="console.name"), end="")

    # -- reports ---------------------------------------------------------------------------------------------------
    def lessons(self, lessons: Sequence[Lesson], unmet: dict[str, list[str]], progress: dict[str, str]) -> None:
        table = Table(box=None, pad_edge=False, header_style="heading")
        table.add_column("id", style="command")
        table.add_column("lesson")
        table.add_column("steps", justify="right")
        table.add_column("can run here")
        table.add_column("progress")
        for lesson in lessons:
            missing = unmet.get(lesson.id, [])
            runnable = (
                Text("yes", style="doctor.ok") if not missing else Text("no: " + "; ".join(missing), "doctor.fail")
            )
            table.add_row(lesson.id, lesson.title, str(len(lesson.steps)), runnable, progress.get(lesson.id, ""))
        self.out.print(table)

    def doctor(self, findings: Iterable[Finding]) -> None:
        for f in findings:
            status = f.status.value
            mark = {"ok": "✓", "warn": "!", "fail": "✗"}[status]
            line = Text.assemble((f"{mark} ", f"doctor.{status}"), (f.label, ""), (f"  {f.detail}", "muted"))
            self.out.print(line)
            if f.fix and status != "ok":
                self.out.print(Text(f"    fix: {f.fix}", style=f"doctor.{status}"))

    def undone(self, session: str, results: Iterable[Undone]) -> None:
        for r in results:
            style = "error" if r.failed else ("muted" if r.outcome == "already gone" else "check.pass")
            self.out.print(Text(f"  {session}  {r.entry.kind} {r.entry.target}: {r.outcome}", style=style))

    def table(self, rows: Iterable[tuple[str, str]], title: str = "") -> None:
        t = Table(box=None, show_header=False, title=title or None, title_justify="left", title_style="heading")
        t.add_column(style="command")
        t.add_column()
        for a, b in rows:
            t.add_row(escape(a), b)
        self.out.print(t)
