"""The interactive shell: a prompt_toolkit REPL over lessons, steps and consoles.

Input and output are injectable (tests pass a pipe input and DummyOutput). Lines that are not commands go to
the active console while a lesson runs, so the learner can explore freely; every line is followed by the
same pstree and namespace view as a step. Nothing a learner types ends in a traceback.
"""

from __future__ import annotations

import contextlib
import difflib
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from prompt_toolkit import PromptSession
from prompt_toolkit.application.current import get_app_or_none
from prompt_toolkit.completion import NestedCompleter
from prompt_toolkit.formatted_text import HTML, FormattedText
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output

from workshop import journal, loader, observer, runner, signals, views
from workshop.catalog import Catalog
from workshop.environment import Environment
from workshop.render import Renderer
from workshop.session import LessonSession


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    help: str
    action: Callable[[Shell, str], None]


class Shell:
    def __init__(
        self,
        env: Environment,
        input: Input | None = None,
        output: Output | None = None,
        history: History | None = None,
    ) -> None:
        self.env = env
        self.out = Renderer(env)
        self.input = input
        self.output = output
        self.history = history
        self.catalog: Catalog | None = None
        self.lesson: LessonSession | None = None
        self.hint_level = 0
        self.running = True
        self.prompt_session: PromptSession[str] | None = None

    # -- the loop -----------------------------------------------------------------------------------------------
    def run(self) -> int:
        try:
            self.catalog = Catalog.load(self.env)
        except loader.LessonError as e:
            self.out.error(f"some lesson files are broken; fix them or run `workshop check`:\n{e}")
            return 1
        self.prompt_session = PromptSession(
            history=self.history or self._history(),
            input=self.input,
            output=self.output,
            completer=self._completer(),
            complete_while_typing=False,
            bottom_toolbar=self.toolbar,
        )
        signals.on_termination(self._leave_prompt)
        self.out.text("workshop — how Linux containers really work, live on this kernel.", "lesson.title")
        self.out.text("`lessons` lists them, `start ID` begins one, `help` shows every command.", "muted")
        try:
            self._offer_leftover_cleanup()
            while self.running:
                try:
                    line = self.prompt_session.prompt(self.prompt_text)
                except KeyboardInterrupt:
                    continue  # Ctrl-C at the prompt clears the line, as in any shell
                except EOFError:
                    break
                self.handle(line)
                signals.check()
        finally:
            self.stop_lesson()
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
            self.out.notice("interrupted; back at the prompt", "warning")
        except Exception as e:
            log = self._log_crash()
            self.out.error(
                f"workshop hit an internal error ({type(e).__name__}: {e}); the lesson is still here, "
                f"`again` retries the step. Details: {log}"
            )

    def _dispatch(self, line: str) -> None:
        text = line.strip()
        if not text:
            if self.lesson is not None:
                self.cmd_next("")
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
        self.out.error(f"unknown command {word!r}; {suggestion} (start a lesson to type shell commands)")

    def _to_console(self, text: str) -> None:
        if self.lesson is None:
            self.out.error("no lesson is running, so there is no console to type into: `start ID` first")
            return
        if not text:
            return
        result = runner.type_line(self.lesson, text)
        word = text.split()[0]
        if result.rc == 127:
            close = difflib.get_close_matches(word, list(COMMANDS), n=1, cutoff=0.7)
            if close:
                self.out.hint(
                    f"`{word}` is not a program in the {self.lesson.active} console; "
                    f"did you mean the workshop command `{close[0]}`?"
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
        nxt = "finished: <b>stop</b> ends it" if s.finished else "Enter runs the next step"
        return HTML(
            f" <b>{s.lesson.id}</b> · step {min(s.position + 1, total)}/{total} {bar} · "
            f"console <b>{s.active}</b> · {nxt} · <b>hint</b> · <b>help</b>"
        )

    def _completer(self) -> NestedCompleter:
        ids = {i: None for i in (self.catalog.ids() if self.catalog else [])}
        tree: dict[str, object] = {name: None for name in COMMANDS}
        tree["start"] = ids
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
    def start_lesson(self, lesson_id: str) -> None:
        assert self.catalog is not None
        lesson = self.catalog.find(lesson_id)
        if lesson is None:
            self.out.error(f"no lesson {lesson_id!r}{self.catalog.suggest(lesson_id)}")
            return
        if not self.env.is_root:
            self.out.error("lessons change kernel state and need root: quit and run `sudo workshop`")
            return
        missing = self.catalog.unmet(self.env, lesson)
        if missing:
            self.out.error(f"lesson {lesson.id!r} cannot run on this machine yet:")
            self.out.doctor(missing)
            return
        self.stop_lesson()
        session = LessonSession(self.env, lesson, self.out)
        self.lesson = session
        self.hint_level = 0
        try:
            session.start()
        except BaseException:
            self.stop_lesson()
            raise
        self.out.text("press Enter to run the first step", "muted")

    def stop_lesson(self) -> None:
        if self.lesson is not None:
            session, self.lesson = self.lesson, None
            session.close()

    def _offer_leftover_cleanup(self) -> None:
        left = list(journal.iter_leftovers(self.env.journal_dir))
        if not left or not self.env.is_root:
            return
        count = sum(len(j.entries) for j in left)
        self.out.notice(
            f"an earlier workshop session ended without cleaning up ({len(left)} session(s), "
            f"{count} recorded resources).",
            "warning",
        )
        assert self.prompt_session is not None
        try:
            answer = self.prompt_session.prompt("undo them now? [Y/n] ")
        except (EOFError, KeyboardInterrupt):
            answer = "n"
        if answer.strip().lower() in ("", "y", "yes"):
            for j in left:
                self.out.undone(j.session, j.undo())
        else:
            self.out.text("left as is; `cleanup` or `sudo workshop cleanup` undoes them later", "muted")

    def _log_crash(self) -> str:
        path = self.env.state_dir / "workshop.log"
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a") as f:
                f.write(traceback.format_exc() + "\n")
        return str(path)

    # -- commands -----------------------------------------------------------------------------------------------------
    def cmd_lessons(self, arg: str) -> None:
        assert self.catalog is not None
        self.out.lessons(self.catalog.lessons, self.catalog.unmet_text(self.env), self.catalog.progress_text())

    def cmd_start(self, arg: str) -> None:
        if not arg:
            self.out.error("which lesson? `start ID`, e.g. `start process`; `lessons` lists them")
            return
        self.start_lesson(arg.split()[0])

    def cmd_next(self, arg: str) -> None:
        s = self._need_lesson()
        if s is None:
            return
        if s.finished:
            self.out.text(
                f"lesson {s.lesson.id!r} is complete. `stop` cleans up, `lessons` shows what is next.",
                "check.pass",
            )
            return
        self._run(s, s.position)

    def cmd_again(self, arg: str) -> None:
        s = self._need_lesson()
        if s is None:
            return
        self._run(s, s.last_run if s.last_run is not None else s.position)

    def _run(self, s: LessonSession, index: int) -> None:
        self.hint_level = 0
        outcome = runner.run_step(s, index)
        if outcome.passed and self.catalog is not None:
            self.catalog.progress.step_done(s.lesson.id, index, len(s.lesson.steps))
        if outcome.passed and s.finished:
            if s.lesson.outro:
                self.out.markdown(s.lesson.outro)
            self.out.text("lesson complete! `stop` cleans up; `lessons` shows what is next.", "check.pass")

    def cmd_hint(self, arg: str) -> None:
        s = self._need_lesson()
        if s is None:
            return
        step = s.lesson.steps[min(s.position, len(s.lesson.steps) - 1)]
        hints = list(step.hints) or [f"this step types: {'; '.join(ln for r in step.runs for ln in r.lines)}"]
        self.out.hint(s.substitute(hints[min(self.hint_level, len(hints) - 1)]))
        self.hint_level += 1

    def cmd_tree(self, arg: str) -> None:
        snap, d = self._observe()
        if snap is not None and d is not None:
            self.out.out.print(views.pstree_view(snap, d))

    def cmd_ns(self, arg: str) -> None:
        snap, d = self._observe()
        if snap is not None and d is not None:
            self.out.out.print(views.namespace_view(snap, d))

    def _observe(self) -> tuple[observer.Snapshot | None, observer.Diff | None]:
        s = self._need_lesson()
        if s is None:
            return None, None
        d = s.observe(emit=False)
        return s.last, d

    def cmd_status(self, arg: str) -> None:
        s = self.lesson
        if s is None:
            self.out.text("no lesson running; `lessons` lists them", "muted")
            return
        total = len(s.lesson.steps)
        rows = [
            ("lesson", f"{s.lesson.id} — {s.lesson.title}"),
            ("step", f"{min(s.position + 1, total)} of {total}; passed: {len(s.passed)}"),
            ("session", f"{s.id}, work dir {s.workdir}"),
            ("active console", s.active),
        ]
        rows += [(f"console {n}", f"shell pid {c.pid}, talking to pid {c.focus_pid()}") for n, c in s.consoles.items()]
        self.out.table(rows)

    def cmd_console(self, arg: str) -> None:
        s = self._need_lesson()
        if s is None:
            return
        if arg not in s.consoles:
            self.out.error(f"no console {arg!r}; this lesson has: {', '.join(s.consoles)}")
            return
        s.active = arg
        self.out.text(f"lines you type now go to the {arg} console", "muted")

    def cmd_cleanup(self, arg: str) -> None:
        self.stop_lesson()
        for j in journal.iter_leftovers(self.env.journal_dir):
            self.out.undone(j.session, j.undo())
        self.out.text("everything workshop created is undone", "check.pass")

    def cmd_stop(self, arg: str) -> None:
        if self.lesson is None:
            self.out.text("no lesson running", "muted")
            return
        self.stop_lesson()

    def cmd_help(self, arg: str) -> None:
        rows = [(c.usage, c.help) for c in COMMANDS.values()]
        rows.append(("!LINE", "send LINE to the active console even if it looks like a command"))
        rows.append(("anything else", "while a lesson runs: typed into the active console, then pstree + namespaces"))
        self.out.table(rows, title="commands")

    def cmd_quit(self, arg: str) -> None:
        self.running = False

    def _need_lesson(self) -> LessonSession | None:
        if self.lesson is None:
            self.out.error("no lesson is running: `start ID` first (`lessons` lists them)")
        return self.lesson


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in [
        Command("lessons", "lessons", "list the lessons, whether they run here, your progress", Shell.cmd_lessons),
        Command("start", "start ID", "start a lesson (cleans up a running one first)", Shell.cmd_start),
        Command("next", "next (or Enter)", "run the next step", Shell.cmd_next),
        Command("again", "again", "run the current step again", Shell.cmd_again),
        Command("hint", "hint", "a hint for the current step (ask again for more)", Shell.cmd_hint),
        Command("tree", "tree", "the lesson's processes now (pstree)", Shell.cmd_tree),
        Command("ns", "ns", "the namespaces of each console's process now", Shell.cmd_ns),
        Command("status", "status", "lesson, step, session and consoles", Shell.cmd_status),
        Command(
            "console",
            "console NAME",
            "type free lines into another console (host, container, …)",
            Shell.cmd_console,
        ),
        Command("stop", "stop", "end the lesson and undo everything it created", Shell.cmd_stop),
        Command("cleanup", "cleanup", "undo everything workshop created, also after a crash", Shell.cmd_cleanup),
        Command("help", "help", "this list", Shell.cmd_help),
        Command("quit", "quit (or Ctrl-D)", "clean up and leave", Shell.cmd_quit),
    ]
}
ALIASES = {
    "list": COMMANDS["lessons"],
    "n": COMMANDS["next"],
    "exit": COMMANDS["quit"],
    "?": COMMANDS["help"],
}
CONSOLE_WORDS = {"exit"}
"""Words that mean something to the shell in a console; while a lesson runs they go there, not to workshop."""
