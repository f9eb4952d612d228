"""The REPL's commands: each turns a word the learner types into a call on the lesson driver.

The lesson itself (running steps, try-it goals, hints, jumping back and forth, progress) is the driver's; these
functions check that the command makes sense now and say so in the learner's words when it does not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workshop.engine.driver import DEFAULT_PACE, Leftovers
from workshop.engine.session import LessonSession
from workshop.lesson import variables

if TYPE_CHECKING:
    from workshop.ui.shell import Shell


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    help: str
    action: Callable[[Shell, str], None]


def _need_lesson(shell: Shell) -> LessonSession | None:
    if shell.lesson is None:
        shell.error("no lesson is running: `start ID` first (`lessons` lists them)")
    return shell.lesson


def cmd_lessons(shell: Shell, arg: str) -> None:
    assert shell.catalog is not None
    lessons = shell.catalog.lessons
    shell.out.lessons(lessons, shell.readiness.unmet_text(lessons), shell.catalog.progress_text())


def cmd_start(shell: Shell, arg: str) -> None:
    if not arg:
        shell.error("which lesson? `start ID`, e.g. `start process`; `lessons` lists them")
        return
    shell.start_lesson(arg.split()[0])


def _step_ahead(shell: Shell, when_complete: str, style: str = "muted") -> bool:
    """A lesson runs and has a step ahead; otherwise says why not (`when_complete` when the lesson is done)."""
    s = _need_lesson(shell)
    if s is not None and s.finished:
        shell.say(when_complete.format(id=s.lesson.id), style)
    return s is not None and not s.finished


def cmd_next(shell: Shell, arg: str) -> None:
    complete = "lesson {id!r} is complete. `stop` cleans up, `lessons` shows what is next."
    if _step_ahead(shell, complete, "check.pass"):
        shell.driver.next()


def cmd_again(shell: Shell, arg: str) -> None:
    if _need_lesson(shell) is not None:
        shell.driver.again()


def cmd_hint(shell: Shell, arg: str) -> None:
    if _need_lesson(shell) is not None:
        shell.driver.hint()


def cmd_solution(shell: Shell, arg: str) -> None:
    if _step_ahead(shell, "the lesson is complete: there is no next step to solve"):
        shell.driver.solution()


def cmd_skip(shell: Shell, arg: str) -> None:
    """Types the step for the learner: the rest of a try-it step on screen, else the whole next step."""
    if _step_ahead(shell, "the lesson is complete: nothing left to skip"):
        shell.driver.skip()


def cmd_present(shell: Shell, arg: str) -> None:
    """Trainer mode: presenter notes, each step's lines typed out for the room, the projector theme."""
    word, _, pace = arg.partition(" ")
    if word not in ("on", "off") or (pace.strip() and not pace.strip().isdigit()):
        state = "on" if shell.driver.trainer else "off"
        shell.error(f"`present on [CHARS_PER_SECOND]` or `present off` (trainer mode is {state} now)")
        return
    on = word == "on"
    shell.driver.present(on, float(pace) if pace.strip() else DEFAULT_PACE, projector=True)
    if on:
        shell.say("trainer mode: Enter presents the next step; `skip`, `back`, `goto N` jump")
    else:
        shell.say("learner mode: no presenter notes, lines shown at once")


def cmd_back(shell: Shell, arg: str) -> None:
    if _need_lesson(shell) is not None:
        shell.driver.back()


def cmd_goto(shell: Shell, arg: str) -> None:
    s = _need_lesson(shell)
    if s is None:
        return
    total = len(s.lesson.steps)
    if not arg.isdigit() or not 1 <= int(arg) <= total:
        shell.error(f"`goto N`, N from 1 to {total}: the step Enter runs next (the ones before it replayed)")
        return
    shell.driver.jump(int(arg) - 1)


def cmd_reset(shell: Shell, arg: str) -> None:
    assert shell.catalog is not None
    lesson_id = arg.split()[0] if arg else (shell.lesson.lesson.id if shell.lesson is not None else "")
    if not lesson_id:
        shell.error("which lesson? `reset ID` forgets your progress in it and starts it over")
        return
    lesson = shell.catalog.find(lesson_id)
    if lesson is None:
        shell.error(f"no lesson {lesson_id!r}{shell.catalog.suggest(lesson_id)}")
        return
    shell.driver.forget(lesson.id)
    shell.say(f"{lesson.id}: progress cleared, starting again from a clean state at step 1")
    if shell.env.is_root:
        shell.start_lesson(lesson.id, resume=False)


def cmd_tree(shell: Shell, arg: str) -> None:
    if _need_lesson(shell) is not None:
        shell.driver.look("pstree")


def cmd_ns(shell: Shell, arg: str) -> None:
    if _need_lesson(shell) is not None:
        shell.driver.look("namespaces")


def cmd_status(shell: Shell, arg: str) -> None:
    s = shell.lesson
    if s is None:
        shell.say("no lesson running; `lessons` lists them")
        return
    total = len(s.lesson.steps)
    rows = [
        ("lesson", f"{s.lesson.id} — {s.lesson.title}"),
        ("step", f"{min(s.position + 1, total)} of {total}; passed: {len(s.passed)}"),
        ("session", f"{s.id}, work dir {s.workdir}"),
        ("active console", s.active),
    ]
    rows += [(f"console {n}", f"shell pid {c.pid}, talking to pid {c.focus_pid()}") for n, c in s.consoles.items()]
    rows += [(short, f"is {full}") for short, full in _short_paths(s)]
    shell.out.table(rows)


def _short_paths(s: LessonSession) -> list[tuple[str, str]]:
    """The relative paths the lesson's commands type (`rootfs`, `upper1`), each with the full path it stands for."""
    found: dict[str, str] = {}
    for line in (line for step in s.lesson.steps for run in step.runs for line in run.lines):
        for name in variables.referenced(line):
            placeholder = "{{" + name + "}}"
            short = variables.short_form(placeholder, s.lesson.variables)
            if short not in (placeholder, "."):
                found.setdefault(short, s.value(name))
    return list(found.items())


def cmd_console(shell: Shell, arg: str) -> None:
    s = _need_lesson(shell)
    if s is None:
        return
    if arg not in s.consoles:
        shell.error(f"no console {arg!r}; this lesson has: {', '.join(s.consoles)}")
        return
    s.active = arg
    shell.say(f"lines you type now go to the {arg} console")


def cmd_cleanup(shell: Shell, arg: str) -> None:
    shell.driver.stop()
    Leftovers.find(shell.env).undo(shell.out)
    shell.say("everything workshop created is undone", "check.pass")


def cmd_stop(shell: Shell, arg: str) -> None:
    if shell.lesson is None:
        shell.say("no lesson running")
        return
    shell.driver.stop(forget_place=True)


def cmd_help(shell: Shell, arg: str) -> None:
    rows = [(c.usage, c.help) for c in COMMANDS.values()]
    rows.append(("!LINE", "send LINE to the active console even if it looks like a command"))
    rows.append(("anything else", "while a lesson runs: typed into the active console, then pstree + namespaces"))
    shell.out.table(rows, title="commands")


def cmd_quit(shell: Shell, arg: str) -> None:
    shell.running = False


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in [
        Command("lessons", "lessons", "list the lessons, whether they run here, your progress", cmd_lessons),
        Command("start", "start ID", "start a lesson (cleans up a running one first)", cmd_start),
        Command("next", "next (or Enter)", "run the next step", cmd_next),
        Command("again", "again", "run the current step again", cmd_again),
        Command("hint", "hint", "a hint for the current step (ask again for the next one)", cmd_hint),
        Command("solution", "solution", "show the command(s) the current step wants", cmd_solution),
        Command("skip", "skip", "type the current step for you (its goal is still checked)", cmd_skip),
        Command("back", "back", "back one step: a fresh session, the steps before it replayed", cmd_back),
        Command("goto", "goto N", "jump to step N (the steps before it replayed quietly)", cmd_goto),
        Command("present", "present on|off", "trainer mode: presenter notes, lines typed out", cmd_present),
        Command("tree", "tree", "the lesson's processes now (pstree)", cmd_tree),
        Command("ns", "ns", "the namespaces of each console's process now", cmd_ns),
        Command("status", "status", "lesson, step, session and consoles", cmd_status),
        Command("console", "console NAME", "type free lines into another console (host, container, …)", cmd_console),
        Command("stop", "stop", "end the lesson and undo everything it created", cmd_stop),
        Command("reset", "reset [ID]", "forget your progress in a lesson and start it over, clean", cmd_reset),
        Command("cleanup", "cleanup", "undo everything workshop created, also after a crash", cmd_cleanup),
        Command("help", "help", "this list", cmd_help),
        Command("quit", "quit (or Ctrl-D)", "clean up and leave", cmd_quit),
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
