"""The interactive shell: a prompt_toolkit REPL over lessons, steps and consoles.

Input and output are injectable (tests pass a pipe input and DummyOutput). Lines that are not commands go to
the active console while a lesson runs, so the learner can explore freely; every line is followed by the
same pstree and namespace view as a step. Nothing a learner types ends in a traceback.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Callable
from dataclasses import dataclass

from prompt_toolkit import PromptSession
from prompt_toolkit.application.current import get_app_or_none
from prompt_toolkit.completion import NestedCompleter
from prompt_toolkit.formatted_text import HTML, AnyFormattedText, FormattedText, to_formatted_text
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.output import ColorDepth, Output

from workshop import crashlog
from workshop.engine import journal, learner, replay, runner, signals
from workshop.engine.session import LessonSession
from workshop.environment import Environment
from workshop.lesson import loader
from workshop.lesson.catalog import Catalog
from workshop.observe import process_tree
from workshop.ui import process_views
from workshop.ui.render import Renderer
from workshop.ui.theme import to_ascii
from workshop.ui.transcript import Recorder


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
        self.lesson: LessonSession | None = None
        self.hint_level = 0
        self.learner_mode = True
        """Try-it steps wait for the learner to type them (trainer mode types them for the room instead)."""
        self.trying: learner.TryIt | None = None
        """The try-it step the learner is typing towards, while there is one."""
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
            bottom_toolbar=self._shown(self.toolbar),
            color_depth=None if self.env.color else ColorDepth.DEPTH_1_BIT,
        )
        signals.on_termination(self._leave_prompt)
        self.out.text("workshop — how Linux containers really work, live on this kernel.", "lesson.title")
        self.out.text("`lessons` lists them, `start ID` begins one, `help` shows every command.", "muted")
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
        controls = sorted({f"\\x{ord(c):02x}" for c in text if (c < " " and c != "\t") or c == "\x7f"})
        if controls:  # the console's terminal acts on them: a pasted \x04 would end the container's shell
            self.out.error(f"not sent: the line holds control characters ({' '.join(controls)}); type it without them")
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
        trying = self.trying
        if trying is not None and not result.interrupted and learner.after_line(self.lesson, self.out, trying):
            self._step_passed(self.lesson, trying.index)

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
        if self.trying is not None:
            nxt = "your turn: type towards the goal · <b>solution</b> · <b>skip</b>"
        return HTML(
            f" <b>{s.lesson.id}</b> · step {min(s.position + 1, total)}/{total} {bar} · "
            f"console <b>{s.active}</b> · {nxt} · <b>hint</b> · <b>help</b>"
        )

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
        total = len(lesson.steps)
        at = self.catalog.progress.resume_at(lesson.id, total) if resume else 0
        if at > 0:
            self.out.notice(f"resuming {lesson.id} at step {at + 1}, where you left it")
            replay.rebuild(session, at)
            self.out.text(
                f"`reset` starts {lesson.id} over from step 1, `stop` ends it; Enter runs step {session.position + 1}",
                "muted",
            )
        else:
            self.out.text("press Enter to run the first step", "muted")
        self._save_position()

    def stop_lesson(self) -> None:
        self.trying = None
        if self.lesson is not None:
            session, self.lesson = self.lesson, None
            session.close()

    def _reopen(self) -> None:
        """At start: `workshop shell LESSON`'s lesson, or the one the learner left unfinished, where they left it."""
        assert self.catalog is not None
        progress = self.catalog.progress
        if progress.problem:
            self.out.notice(progress.problem, "warning")
        if self.start is not None:
            self.start_lesson(self.start)
            return
        left = progress.to_resume({x.id: len(x.steps) for x in self.catalog.lessons})
        if left is None:
            return
        lesson_id, at = left
        if not self.env.is_root:
            self.out.text(f"you left {lesson_id} at step {at + 1}: `sudo workshop` picks it up there", "muted")
            return
        self.start_lesson(lesson_id)

    def _save_position(self) -> None:
        s = self.lesson
        if s is not None and self.catalog is not None:
            self.catalog.progress.at(s.lesson.id, s.position, len(s.lesson.steps))

    def _step_passed(self, s: LessonSession, index: int) -> None:
        """A step passed (run, skipped, or its goal reached by the learner): saved, and the lesson moves on."""
        self.trying = None
        self.hint_level = 0
        if self.catalog is not None:
            self.catalog.progress.step_done(s.lesson.id, index, len(s.lesson.steps))
        self._save_position()
        if s.finished:
            if s.lesson.outro:
                self.out.markdown(s.lesson.outro)
            self.out.text("lesson complete! `stop` cleans up; `lessons` shows what is next.", "check.pass")

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
        return str(crashlog.record(self.env.state_dir))

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
        if self.trying is not None and self.trying.index == s.position:
            learner.remind(s, self.out, self.trying)
            return
        if self.learner_mode and s.lesson.steps[s.position].is_try_it:
            self.hint_level = 0
            self.trying = learner.present(s, self.out, s.position)
            self._save_position()
            return
        self._run(s, s.position)

    def cmd_again(self, arg: str) -> None:
        s = self._need_lesson()
        if s is None:
            return
        if self.trying is not None and self.trying.index == s.position:
            learner.remind(s, self.out, self.trying)
            return
        self._run(s, s.last_run if s.last_run is not None else s.position)

    def _run(self, s: LessonSession, index: int, part: runner.Part = "all") -> None:
        self.hint_level = 0
        self.trying = None
        outcome = runner.run_step(s, index, part)
        if outcome.passed:
            self._step_passed(s, index)

    def cmd_hint(self, arg: str) -> None:
        s = self._need_lesson()
        if s is None:
            return
        learner.hint(s, self.out, s.lesson.steps[min(s.position, len(s.lesson.steps) - 1)], self.hint_level)
        self.hint_level += 1

    def cmd_solution(self, arg: str) -> None:
        s = self._need_lesson()
        if s is None:
            return
        if s.finished:
            self.out.text("the lesson is complete: there is no next step to solve", "muted")
            return
        learner.solution(s, self.out, s.lesson.steps[s.position])

    def cmd_skip(self, arg: str) -> None:
        """Types the step for the learner: the rest of a try-it step on screen, else the whole next step."""
        s = self._need_lesson()
        if s is None:
            return
        if s.finished:
            self.out.text("the lesson is complete: nothing left to skip", "muted")
            return
        presented = self.trying is not None and self.trying.index == s.position
        self._run(s, s.position, "try" if presented else "all")

    def cmd_present(self, arg: str) -> None:
        """Trainer mode: presenter notes, each step's lines typed out for the room, the projector theme."""
        from workshop.ui.presenter import DEFAULT_PACE

        word, _, pace = arg.partition(" ")
        if word not in ("on", "off") or (pace.strip() and not pace.strip().isdigit()):
            state = "on" if self.out.present else "off"
            self.out.error(f"`present on [CHARS_PER_SECOND]` or `present off` (trainer mode is {state} now)")
            return
        on = word == "on"
        self.out.presenting(on, float(pace) if pace.strip() else DEFAULT_PACE)
        self.learner_mode = not on  # try-it steps are typed for the room, not left to the audience
        if on:
            self.out.text("trainer mode: Enter presents the next step; `skip`, `back`, `goto N` jump", "muted")
        else:
            self.out.text("learner mode: no presenter notes, lines shown at once", "muted")

    def cmd_back(self, arg: str) -> None:
        s = self._need_lesson()
        if s is None:
            return
        if s.position == 0:
            self.out.notice("this is the first step already", "warning")
            return
        self._jump(s, s.position - 1)

    def cmd_goto(self, arg: str) -> None:
        s = self._need_lesson()
        if s is None:
            return
        total = len(s.lesson.steps)
        if not arg.isdigit() or not 1 <= int(arg) <= total:
            self.out.error(f"`goto N`, N from 1 to {total}: the step Enter runs next (the ones before it replayed)")
            return
        self._jump(s, int(arg) - 1)

    def _jump(self, s: LessonSession, target: int) -> None:
        from workshop.ui.presenter import jump

        self.trying = None
        self.hint_level = 0
        try:
            self.lesson = jump(s, target, self.out)
        except BaseException:
            if s.journal is None:  # the old session is closed and a fresh one did not start
                self.lesson = None
            raise
        self._save_position()

    def cmd_reset(self, arg: str) -> None:
        assert self.catalog is not None
        lesson_id = arg.split()[0] if arg else (self.lesson.lesson.id if self.lesson is not None else "")
        if not lesson_id:
            self.out.error("which lesson? `reset ID` forgets your progress in it and starts it over")
            return
        lesson = self.catalog.find(lesson_id)
        if lesson is None:
            self.out.error(f"no lesson {lesson_id!r}{self.catalog.suggest(lesson_id)}")
            return
        if self.lesson is not None and self.lesson.lesson.id == lesson.id:
            self.stop_lesson()
        self.catalog.progress.reset(lesson.id)
        self.out.text(f"{lesson.id}: progress cleared, starting again from a clean state at step 1", "muted")
        if self.env.is_root:
            self.start_lesson(lesson.id, resume=False)

    def cmd_tree(self, arg: str) -> None:
        snap, d = self._observe()
        if snap is not None and d is not None:
            self.out.out.print(process_views.pstree_view(snap, d))

    def cmd_ns(self, arg: str) -> None:
        snap, d = self._observe()
        if snap is not None and d is not None:
            self.out.out.print(process_views.namespace_view(snap, d))

    def _observe(self) -> tuple[process_tree.Snapshot | None, process_tree.Diff | None]:
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
        if self.catalog is not None:
            self.catalog.progress.left(self.lesson.lesson.id)
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
        Command("hint", "hint", "a hint for the current step (ask again for the next one)", Shell.cmd_hint),
        Command("solution", "solution", "show the command(s) the current step wants", Shell.cmd_solution),
        Command("skip", "skip", "type the current step for you (its goal is still checked)", Shell.cmd_skip),
        Command("back", "back", "back one step: a fresh session, the steps before it replayed", Shell.cmd_back),
        Command("goto", "goto N", "jump to step N (the steps before it replayed quietly)", Shell.cmd_goto),
        Command("present", "present on|off", "trainer mode: presenter notes, lines typed out", Shell.cmd_present),
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
        Command("reset", "reset [ID]", "forget your progress in a lesson and start it over, clean", Shell.cmd_reset),
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
