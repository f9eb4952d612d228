"""The interactive shell: a prompt_toolkit REPL over lessons, steps and consoles.

A thin front end over the lesson driver (`engine/driver.py`), which owns the running lesson; the commands are in
`shell_commands`. Input and output are injectable (tests pass a pipe input and DummyOutput). Lines that are not
commands go to the active console while a lesson runs, so the learner can explore freely; every line is followed by
the same pstree and namespace view as a step. What the learner sees goes to the renderer as events, the shell's own
words too. Nothing a learner types ends in a traceback.
"""

from __future__ import annotations

import contextlib
import difflib
import re
from collections.abc import Callable

from prompt_toolkit import PromptSession
from prompt_toolkit.application.current import get_app_or_none
from prompt_toolkit.completion import NestedCompleter
from prompt_toolkit.formatted_text import HTML, AnyFormattedText, FormattedText, to_formatted_text
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.output import ColorDepth, Output
from rich.cells import cell_len

from workshop import crashlog
from workshop.doctor import Readiness
from workshop.engine import signals
from workshop.engine.driver import Leftovers, LessonDriver
from workshop.engine.events import HintShown, Notice, Said
from workshop.engine.session import LessonSession
from workshop.environment import Environment
from workshop.lesson import loader
from workshop.lesson.catalog import Catalog
from workshop.ui.render import Renderer
from workshop.ui.shell_commands import ALIASES, COMMANDS, CONSOLE_WORDS, Command
from workshop.ui.theme import to_ascii
from workshop.ui.transcript import Recorder

__all__ = ["ALIASES", "COMMANDS", "CONSOLE_WORDS", "Command", "Shell"]

FINISHED = "lesson complete! `stop` cleans up; `lessons` shows what is next."


def _width(html: str) -> int:
    """How many cells a toolbar's text takes, without its tags."""
    return cell_len(re.sub(r"</?b>", "", html))


class Shell:
    def __init__(
        self,
        env: Environment,
        input: Input | None = None,
        output: Output | None = None,
        history: History | None = None,
        start: str | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self.env = env
        self.out = Renderer(env)
        self.input = input
        self.output = output
        self.history = history
        self.start = start
        """`workshop shell LESSON`: open this lesson first (at the step where the learner left it)."""
        self.recorder = recorder
        """`--record`: also gets what the learner types, which the terminal echoes and no renderer sees."""
        self.catalog: Catalog | None = None
        self.readiness = Readiness(env)
        self.driver = LessonDriver(env, self.out, keep_place=True, finish_note=FINISHED)
        self.running = True
        self.prompt_session: PromptSession[str] | None = None

    @property
    def lesson(self) -> LessonSession | None:
        """The running lesson's session (the driver owns it)."""
        return self.driver.session

    # -- output -------------------------------------------------------------------------------------------------------
    def say(self, text: str, style: str = "muted") -> None:
        self.out(Said(text, style))

    def notice(self, text: str, level: str = "info") -> None:
        self.out(Notice(text, level))

    def error(self, text: str) -> None:
        self.out(Notice(text, "error"))

    # -- the loop -----------------------------------------------------------------------------------------------------
    def run(self) -> int:
        try:
            self.catalog = Catalog.load(self.env)
        except loader.LessonError as e:
            self.error(f"some lesson files are broken; fix them or run `workshop check`:\n{e}")
            return 1
        self.driver.progress = self.catalog.progress
        self.prompt_session = PromptSession(
            history=self.history or self._history(),
            input=self.input,
            output=self.output,
            completer=self._completer(),
            complete_while_typing=False,
            bottom_toolbar=self._shown(self.toolbar),
            color_depth=None if self.env.color else ColorDepth.DEPTH_1_BIT,
        )
        signals.on_termination(self._leave_prompt)
        self.say("workshop — how Linux containers really work, live on this kernel.", "lesson.title")
        self.say("`lessons` lists them, `start ID` begins one, `help` shows every command.")
        try:
            self._offer_leftover_cleanup()
            self._reopen()
            while self.running:
                try:
                    line = self.prompt_session.prompt(self._shown(self.prompt_text))
                except KeyboardInterrupt:
                    continue  # Ctrl-C at the prompt clears the line, as in any shell
                except EOFError:
                    break
                if self.recorder is not None:
                    self.recorder.typed("".join(text for _, text, *_ in self.prompt_text()) + line)
                self.handle(line)
                signals.check()
        finally:
            self.driver.stop()
        return 0

    def _leave_prompt(self, code: int) -> None:
        """SIGTERM while the prompt waits: make the prompt return (through the loop's own wake-up pipe, which is
        safe from a signal handler), so the `finally` below cleans up even if the handler's exception is lost."""
        app = get_app_or_none()
        loop = getattr(app, "loop", None) if app is not None else None
        if app is not None and loop is not None and app.is_running:
            loop.call_soon_threadsafe(lambda: app.exit(exception=SystemExit(code)) if app.is_running else None)

    def handle(self, line: str) -> None:
        """One line of input; never raises (a bug in the tool is reported, and the prompt comes back)."""
        try:
            self._dispatch(line)
        except KeyboardInterrupt:
            self.notice("interrupted; back at the prompt", "warning")
        except Exception as e:
            log = crashlog.record(self.env.state_dir)
            self.error(
                f"workshop hit an internal error ({type(e).__name__}: {e}); the lesson is still here, "
                f"`again` retries the step. Details: {log}"
            )

    def _dispatch(self, line: str) -> None:
        text = line.strip()
        if not text:
            if self.lesson is not None:
                COMMANDS["next"].action(self, "")
            return
        if text.startswith("!"):
            self._to_console(text[1:].strip())
            return
        word, _, rest = text.partition(" ")
        command = COMMANDS.get(word) or ALIASES.get(word)
        if command is not None and not (self.lesson is not None and word in CONSOLE_WORDS):
            command.action(self, rest.strip())
            return
        if self.lesson is not None:
            self._to_console(text)
            return
        close = difflib.get_close_matches(word, list(COMMANDS), n=1, cutoff=0.6)
        suggestion = f"did you mean `{close[0]}`?" if close else "`help` lists the commands"
        self.error(f"unknown command {word!r}; {suggestion} (start a lesson to type shell commands)")

    def _to_console(self, text: str) -> None:
        if self.lesson is None:
            self.error("no lesson is running, so there is no console to type into: `start ID` first")
            return
        if not text:
            return
        controls = sorted({f"\\x{ord(c):02x}" for c in text if (c < " " and c != "\t") or c == "\x7f"})
        if controls:  # the console's terminal acts on them: a pasted \x04 would end the container's shell
            self.error(f"not sent: the line holds control characters ({' '.join(controls)}); type it without them")
            return
        console = self.lesson.active
        result = self.driver.type_line(text, echoed=True)  # the prompt line already shows it, as typed
        word = text.split()[0]
        if result.rc == 127:
            close = difflib.get_close_matches(word, list(COMMANDS), n=1, cutoff=0.7)
            if close:
                self.out(
                    HintShown(
                        f"`{word}` is not a program in the {console} console; "
                        f"did you mean the workshop command `{close[0]}`?"
                    )
                )

    # -- prompt, toolbar, completion --------------------------------------------------------------------------------
    def prompt_text(self) -> FormattedText:
        if self.lesson is None:
            return FormattedText([("bold", "workshop"), ("", " ❯ ")])
        s = self.lesson
        step = min(s.position + 1, len(s.lesson.steps))
        return FormattedText(
            [
                ("ansicyan", f"{s.lesson.id} {step}/{len(s.lesson.steps)} "),
                ("ansimagenta", s.active),
                ("", "# "),
            ]
        )

    def toolbar(self) -> HTML:
        if self.lesson is None:
            return HTML(" no lesson running · <b>lessons</b> · <b>start ID</b> · <b>help</b> · Ctrl-D quits")
        s = self.lesson
        total = len(s.lesson.steps)
        bar = "".join("●" if i in s.passed else "○" for i in range(total))
        nxt, short = (
            ("finished: <b>stop</b> ends it", "<b>stop</b>")
            if s.finished
            else ("Enter runs the next step", "Enter: next")
        )
        if self.driver.trying is not None:
            nxt = short = "your turn · <b>solution</b> · <b>skip</b>"
        step = f"{min(s.position + 1, total)}/{total}"
        where = f"<b>{s.lesson.id}</b> · step {step}"
        keys = f"console <b>{s.active}</b> · {nxt} · <b>hint</b> · <b>help</b>"
        # one row whatever the terminal's width: prompt_toolkit cuts a longer toolbar off at the right edge, the
        # keys with it, so the progress dots go first, then the words around the keys
        fitting = (
            f" {where} {bar} · {keys}",
            f" {where} · {keys}",
            f" <b>{s.lesson.id}</b> {step} · <b>{s.active}</b> · {short} · <b>hint</b> · <b>help</b>",
        )
        return HTML(next((t for t in fitting if _width(t) <= self._columns()), fitting[-1]))

    def _columns(self) -> int:
        app = get_app_or_none()
        return app.output.get_size().columns if app is not None else 80

    def _shown(self, make: Callable[[], AnyFormattedText]) -> Callable[[], AnyFormattedText]:
        """`--plain` reaches the prompt and toolbar too: prompt_toolkit draws them, not the renderer."""
        if not self.env.plain:
            return make
        return lambda: FormattedText([(part[0], to_ascii(part[1])) for part in to_formatted_text(make())])

    def _completer(self) -> NestedCompleter:
        ids = {i: None for i in (self.catalog.ids() if self.catalog else [])}
        tree: dict[str, object] = {name: None for name in COMMANDS}
        tree["start"] = ids
        tree["reset"] = ids
        consoles = {c for lesson in (self.catalog.lessons if self.catalog else []) for c in lesson.consoles}
        tree["console"] = dict.fromkeys(sorted(consoles))
        return NestedCompleter.from_nested_dict(tree)

    def _history(self) -> History:
        assert self.catalog is not None
        path = self.catalog.progress.path.parent / "history"
        with contextlib.suppress(OSError):
            self.catalog.progress.make_dirs(path.parent)
            path.touch()
            self.catalog.progress.give_to_owner(path)
            return FileHistory(str(path))
        return InMemoryHistory()

    # -- lesson life cycle -------------------------------------------------------------------------------------------
    def start_lesson(self, lesson_id: str, resume: bool = True) -> None:
        """Starts a lesson from a clean state; with `resume`, rebuilds the steps the learner had done before."""
        assert self.catalog is not None
        lesson = self.catalog.find(lesson_id)
        if lesson is None:
            self.error(f"no lesson {lesson_id!r}{self.catalog.suggest(lesson_id)}")
            return
        if not self.env.is_root:
            self.error("lessons change kernel state and need root: quit and run `sudo workshop`")
            return
        missing = self.readiness.unmet(lesson)
        if missing:
            self.error(f"lesson {lesson.id!r} cannot run on this machine yet:")
            self.out.doctor(missing)
            return
        at = self.driver.start(lesson, resume)
        if at > 0:
            self.say(f"`reset` starts {lesson.id} over from step 1, `stop` ends it; Enter runs step {at + 1}")
        else:
            self.say("press Enter to run the first step")

    def _reopen(self) -> None:
        """At start: `workshop shell LESSON`'s lesson, or the one the learner left unfinished, where they left it."""
        assert self.catalog is not None
        progress = self.catalog.progress
        if progress.problem:
            self.notice(progress.problem, "warning")
        if self.start is not None:
            self.start_lesson(self.start)
            return
        left = progress.to_resume({x.id: len(x.steps) for x in self.catalog.lessons})
        if left is None:
            return
        lesson_id, at = left
        if not self.env.is_root:
            self.say(f"you left {lesson_id} at step {at + 1}: `sudo workshop` picks it up there")
            return
        self.start_lesson(lesson_id)

    def _offer_leftover_cleanup(self) -> None:
        if not self.env.is_root:
            return
        left = Leftovers.find(self.env)
        if not left.stale:
            return
        self.notice(
            f"an earlier workshop session ended without cleaning up ({len(left.stale)} session(s), "
            f"{left.resources} recorded resources).",
            "warning",
        )
        assert self.prompt_session is not None
        try:
            answer = self.prompt_session.prompt("undo them now? [Y/n] ")
        except (EOFError, KeyboardInterrupt):
            answer = "n"
        if answer.strip().lower() in ("", "y", "yes"):
            left.undo(self.out)
        else:
            self.say("left as is; `cleanup` or `sudo workshop cleanup` undoes them later")
