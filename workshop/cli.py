"""`workshop [shell] | list | run | doctor | cleanup | rootfs | check | slides`: parses, then calls the pieces."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from workshop.engine import signals
from workshop.environment import Environment

if TYPE_CHECKING:  # the real imports happen inside the commands: `workshop list` must start fast
    from workshop.doctor import Readiness
    from workshop.engine.driver import LessonDriver
    from workshop.lesson.model import Lesson
    from workshop.ui.render import Renderer

COMMANDS = ("shell", "list", "run", "doctor", "cleanup", "rootfs", "new", "check", "slides")
THEMES = ("default", "projector")
PLAIN_HELP = "no colour, ASCII only, no animation (NO_COLOR=1 alone drops the colour)"
SERVE_HELP = "a local page that follows the session: the diagram, and for the trainer notes and a timer"
SERVE_AT_HELP = "serve that page on this address (default 127.0.0.1:8017; a non-loopback address opens it to others)"
THEME_HELP = "projector: large and high contrast for a room (the default with --present)"
NEEDS_ROOT = ("shell", "run", "cleanup", "rootfs")
RECORD_HELP = "save a transcript: FILE.html (a web page) or FILE.cast (asciinema v2)"
LESSONS_HELP = "also offer the lessons in DIR, beside the curriculum (repeatable; WORKSHOP_EXTRA_LESSONS=DIR:DIR)"


Handler = Callable[[Environment, argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="workshop",
        description="An interactive teaching shell: how Linux containers really work, live on your kernel.",
    )
    p.add_argument("--plain", action="store_true", help=PLAIN_HELP)
    p.add_argument("--theme", choices=THEMES, help=THEME_HELP)
    p.add_argument("--record", type=Path, metavar="FILE", help=RECORD_HELP)
    p.add_argument("--lessons", type=Path, action="append", metavar="DIR", help=LESSONS_HELP)
    p.add_argument("--serve", action="store_true", help=SERVE_HELP)
    p.add_argument("--serve-at", metavar="ADDR:PORT", help=SERVE_AT_HELP)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    shell = sub.add_parser("shell", help="the interactive shell (the default); reopens where you left off")
    shell.add_argument("lesson", nargs="?", help="open this lesson (at the step where you left it)")
    sub.add_parser("list", help="lessons, whether they can run here, and your progress")
    run = sub.add_parser("run", help="run a lesson from start to end, showing every step")
    run.add_argument("lesson")
    run.add_argument("--yes", "-y", action="store_true", help="do not wait for a key between steps")
    run.add_argument("--quiet", action="store_true", help="leave out the pstree and namespace views")
    run.add_argument(
        "--present", action="store_true", help="trainer mode: lines typed out, a key per step, presenter notes"
    )
    run.add_argument(
        "--pace", type=float, default=25.0, metavar="CPS", help="characters a second --present types (0: at once)"
    )
    run.add_argument(
        "--save-progress",
        action="store_true",
        help="count this run in your progress (by default only lessons you work through in the shell count)",
    )
    sub.add_parser("doctor", help="what this machine can run, and how to fix what it cannot")
    clean = sub.add_parser("cleanup", help="undo everything an earlier (crashed) session left behind")
    clean.add_argument("--all", action="store_true", help="also sessions whose workshop still runs")
    rootfs = sub.add_parser("rootfs", help="build the container image offline, or import one")
    rootfs.add_argument("--from", dest="source", metavar="TARBALL_OR_DIR", help="import this instead of building")
    new = sub.add_parser("new", help="write a lesson skeleton that passes `workshop check`, to fill in")
    new.add_argument("id", help="the lesson's id: lowercase letters, digits and '-'")
    new.add_argument("--dir", type=Path, default=Path("lessons"), metavar="DIR", help="where (default: ./lessons)")
    check = sub.add_parser("check", help="validate lesson files")
    check.add_argument("paths", nargs="*", type=Path)
    slides = sub.add_parser("slides", help="every lesson as an offline HTML slide deck, plus an index")
    slides.add_argument("--out", type=Path, default=Path("slides"), metavar="DIR", help="where (default: ./slides)")
    slides.add_argument(
        "--diagrams",
        action="store_true",
        help="run every lesson once, live (root), and show after each step the diagram of the kernel it left",
    )
    for command in sub.choices.values():  # also after the command: `workshop run process --plain`
        command.add_argument("--plain", action="store_true", default=argparse.SUPPRESS, help=PLAIN_HELP)
        command.add_argument("--theme", choices=THEMES, default=argparse.SUPPRESS, help=THEME_HELP)
        command.add_argument(
            "--lessons", type=Path, action="append", metavar="DIR", default=argparse.SUPPRESS, help=LESSONS_HELP
        )
    for command in (shell, run):
        command.add_argument("--record", type=Path, metavar="FILE", default=argparse.SUPPRESS, help=RECORD_HELP)
        command.add_argument("--serve", action="store_true", default=argparse.SUPPRESS, help=SERVE_HELP)
        command.add_argument("--serve-at", metavar="ADDR:PORT", default=argparse.SUPPRESS, help=SERVE_AT_HELP)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    env = Environment.from_os()
    # `--theme projector`, `--record FILE`: values, not commands
    values = {i + 1 for i, a in enumerate(args_list) if a in ("--theme", "--record", "--lessons", "--serve-at")}
    first = next((a for i, a in enumerate(args_list) if not a.startswith("-") and i not in values), None)
    if first is not None and first not in COMMANDS:
        from workshop.ui.render import Renderer

        close = difflib.get_close_matches(first, COMMANDS, n=1)
        hint = f"did you mean `workshop {close[0]}`?" if close else f"commands: {', '.join(COMMANDS)}"
        Renderer(env).error(f"unknown command {first!r}; {hint}")
        return 2
    args = build_parser().parse_args(args_list)
    if args.plain:
        env.color = False
        env.plain = True
    env.theme = args.theme or ("projector" if getattr(args, "present", False) else "default")
    env.extra_lessons += tuple(args.lessons or ())
    command = args.command or "shell"
    if command in NEEDS_ROOT and not env.is_root:
        from workshop.ui.render import Renderer

        Renderer(env).error(
            f"`workshop {command}` changes kernel state (namespaces, mounts, cgroups) and needs root: "
            f"run it as `sudo workshop {command if args.command else ''}`".replace(" `", " `").rstrip()
        )
        return 2
    signals.exit_on_termination()
    try:
        if args.serve or args.serve_at:
            return _served(env, args, HANDLERS[command])
        if args.record is not None:
            return _recorded(env, args, HANDLERS[command])
        return HANDLERS[command](env, args)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug in workshop: what it made is undone by the handler's finally; no traceback
        from workshop import crashlog
        from workshop.ui.render import Renderer

        log = crashlog.record(env.state_dir)
        Renderer(env).error(f"workshop hit an internal error ({type(e).__name__}: {e}). Details: {log}")
        return 70  # EX_SOFTWARE


def _served(env: Environment, args: argparse.Namespace, handler: Handler) -> int:
    """`--serve`: the page that follows the session, for as long as the command runs."""
    from workshop.serve import server
    from workshop.serve.page_state import PageModel, default_diagram
    from workshop.ui.render import Renderer

    try:
        host, port = server.parse_address(args.serve_at or server.DEFAULT_ADDRESS)
        page = server.PageServer(host, port, PageModel(diagram=default_diagram(), curriculum=_lessons(env)))
        url = page.start()
    except server.ServeError as e:
        Renderer(env).error(str(e))
        return 2
    env.taps.append(page.publish)
    Renderer(env).text(f"the session's page: {url} (the room's view: {url}room)", "muted")
    try:
        return _recorded(env, args, handler) if args.record is not None else handler(env, args)
    finally:
        env.taps.remove(page.publish)
        page.stop()


def _lessons(env: Environment) -> Callable[[], Sequence[Lesson]]:
    """The curriculum, for the decks' recaps; an empty one where the lesson files are broken (the lesson says so)."""

    def lessons() -> Sequence[Lesson]:
        from workshop.lesson import loader
        from workshop.lesson.catalog import Catalog

        try:
            return Catalog.load(env).lessons
        except loader.LessonError:
            return ()

    return lessons


def _recorded(env: Environment, args: argparse.Namespace, handler: Handler) -> int:
    """`--record FILE`: the command's output also goes into a transcript, saved however the command ends."""
    from workshop.ui.render import Renderer
    from workshop.ui.transcript import Recorder, TranscriptError

    terminal = env.stdout
    try:
        args.recorder = Recorder(args.record, terminal)
    except TranscriptError as e:
        Renderer(env).error(str(e))
        return 2
    env.stdout = args.recorder.stream
    env.taps.append(args.recorder.hear)
    try:
        return handler(env, args)
    finally:
        env.taps.remove(args.recorder.hear)
        env.stdout = terminal
        saved = args.recorder.save()
        Renderer(env).text(f"transcript saved: {saved}", "muted")


def cmd_shell(env: Environment, args: argparse.Namespace) -> int:
    from workshop.ui.shell import Shell

    return Shell(env, start=getattr(args, "lesson", None), recorder=getattr(args, "recorder", None)).run()


def cmd_list(env: Environment, args: argparse.Namespace) -> int:
    from workshop.doctor import Readiness
    from workshop.lesson import loader
    from workshop.lesson.catalog import Catalog
    from workshop.ui.render import Renderer

    out = Renderer(env)
    try:
        catalog = Catalog.load(env)
    except loader.LessonError as e:
        out.error(f"some lesson files are broken:\n{e}")
        return 1
    out.lessons(catalog.lessons, Readiness(env).unmet_text(catalog.lessons), catalog.progress_text())
    return 0


def cmd_run(env: Environment, args: argparse.Namespace) -> int:
    from workshop.doctor import Readiness
    from workshop.engine.driver import LessonDriver, undo_leftovers
    from workshop.lesson import loader
    from workshop.lesson.catalog import Catalog
    from workshop.ui.render import Renderer

    out = Renderer(env, observe=not args.quiet)
    try:
        catalog = Catalog.load(env)
    except loader.LessonError as e:
        out.error(f"some lesson files are broken:\n{e}")
        return 1
    lesson = catalog.find(args.lesson)
    if lesson is None:
        out.error(f"no lesson {args.lesson!r}{catalog.suggest(args.lesson)}")
        return 2
    if not _ready(Readiness(env), lesson, out):
        return 1
    if args.present and not _present_options_ok(args, out):
        return 2
    undo_leftovers(env, out, announce=True)
    total = len(lesson.steps)
    # workshop types every line of a run: a lesson counts as done when a learner worked through it, not watched it
    progress = catalog.progress if args.save_progress else None
    if args.present:
        from workshop.ui import presenter

        passed = presenter.present(env, lesson, out, args.pace, progress=progress)
    else:
        passed = _run_through(LessonDriver(env, out, progress, learner_mode=False), lesson, args.yes)
    out.text(f"{lesson.id}: {passed}/{total} steps passed", "check.pass" if passed == total else "check.fail")
    return 0 if passed == total else 1


def _run_through(driver: LessonDriver, lesson: Lesson, yes: bool) -> int:
    """`workshop run`: every step in order (a key between steps unless --yes); stops at the first that fails.
    Returns how many passed."""
    try:
        driver.start(lesson)
        while not driver.finished:
            if not yes and not _wait_for_key(driver.env, driver):
                break
            outcome = driver.next()
            signals.check()  # a SIGTERM whose exception Python dropped (inside a __del__) ends the lesson here
            if outcome is None or not outcome.passed:
                break
        return len(driver.session.passed) if driver.session is not None else 0
    finally:
        driver.stop()


def _present_options_ok(args: argparse.Namespace, out: Renderer) -> bool:
    if args.yes:
        out.error("--present waits for the trainer's keys and --yes for none: choose one")
        return False
    if not args.pace >= 0:  # NaN too
        out.error(f"--pace {args.pace:g}: give characters per second, 0 or more (0 shows lines at once)")
        return False
    return True


def _ready(readiness: Readiness, lesson: Lesson, out: Renderer) -> bool:
    missing = readiness.unmet(lesson)
    if not missing:
        return True
    out.error(f"lesson {lesson.id!r} cannot run on this machine yet:")
    out.doctor(missing)
    return False


def _wait_for_key(env: Environment, driver: LessonDriver) -> bool:
    from workshop.engine.events import Said

    if not env.stdin.isatty():
        return True
    driver.sink(Said("press Enter for the next step (q and Enter to stop)"))
    return signals.read_line(env.stdin).strip().lower() not in ("q", "quit")


def cmd_doctor(env: Environment, args: argparse.Namespace) -> int:
    from workshop import doctor
    from workshop.ui.render import Renderer

    findings = doctor.diagnose(env)
    Renderer(env).doctor(findings)
    return doctor.exit_status(findings)


def cmd_cleanup(env: Environment, args: argparse.Namespace) -> int:
    from workshop.engine.driver import Leftovers
    from workshop.ui.render import Renderer

    out = Renderer(env)
    found = Leftovers.find(env, live_too=args.all)
    for j in found.live:
        out.notice(
            f"session {j.session} is still running (workshop pid {j.header.get('owner_pid')}); "
            "left alone (use --all to undo it anyway)",
            "warning",
        )
    if not found.undo(out):
        out.error("some resources could not be undone; see above")
        return 1
    out.text(
        "the host is clean: nothing left from workshop sessions" if not found.stale else "done: the host is clean",
        "check.pass",
    )
    return 0


def cmd_rootfs(env: Environment, args: argparse.Namespace) -> int:
    from workshop.image import rootfs
    from workshop.ui.render import Renderer

    out = Renderer(env)
    try:
        if args.source:
            info = rootfs.import_image(Path(args.source), env.image_path)
        else:
            info = rootfs.build_busybox_image(env.image_path)
    except rootfs.RootfsError as e:
        out.error(str(e))
        return 1
    out.text(
        f"image ready: {info.path} ({info.members} entries, {info.size // 1024} KiB, from {info.source})",
        "check.pass",
    )
    return 0


def cmd_check(env: Environment, args: argparse.Namespace) -> int:
    from workshop.lesson import loader
    from workshop.ui.render import Renderer

    out = Renderer(env)
    paths: list[Path] = []
    for p in args.paths or env.lesson_dirs:
        paths.extend(loader.lesson_files(p) if p.is_dir() else [p])
    if not paths:
        out.error("no lesson files found")
        return 1
    try:
        lessons = loader.load_all(paths)
    except loader.LessonError as e:
        for problem in e.problems:
            out.error(str(problem))
        return 1
    steps = [step for lesson in lessons for step in lesson.steps]
    out.text(
        f"{len(lessons)} lessons, {len(steps)} steps: all valid "
        f"({sum(s.is_try_it for s in steps)} try-it, "
        f"{sum(s.sabotage is not None and not s.sabotage.none for s in steps)} with a sabotage that proves them)",
        "check.pass",
    )
    return 0


def cmd_new(env: Environment, args: argparse.Namespace) -> int:
    from workshop.lesson import scaffold
    from workshop.ui.render import Renderer

    out = Renderer(env)
    try:
        path = scaffold.write(args.id, args.dir)
    except (scaffold.ScaffoldError, OSError) as e:
        out.error(str(e))
        return 1
    known = {d.resolve() for d in env.lesson_dirs}
    lessons = "" if args.dir.resolve() in known else f" --lessons {args.dir}"
    out.text(f"wrote {path}: edit it, then `workshop check {path}` and `sudo workshop{lessons} run {args.id} --yes`")
    return 0


def cmd_slides(env: Environment, args: argparse.Namespace) -> int:
    from workshop.lesson import loader
    from workshop.ui import slides
    from workshop.ui.render import Renderer

    out = Renderer(env)
    try:
        lessons = loader.load_all(loader.lesson_files_in(env.lesson_dirs))
    except loader.LessonError as e:
        out.error(f"some lesson files are broken:\n{e}")
        return 1
    if not lessons:
        out.error(f"no lesson files found in {env.lessons_dir}")
        return 1
    if args.out.exists() and not args.out.is_dir():
        out.error(f"{args.out} is not a directory: give --out a directory for the decks")
        return 2
    diagrams = None
    if args.diagrams:
        diagrams = _recorded_diagrams(env, lessons, out)
        if diagrams is None:
            return 1
    try:
        written = slides.build(lessons, args.out, diagrams)
    except OSError as e:
        out.error(f"cannot write the slides to {args.out}: {e.strerror or e}")
        return 1
    out.text(f"{len(written) - 1} decks and {slides.INDEX} written to {args.out}/", "check.pass")
    return 0


def _recorded_diagrams(env: Environment, lessons: Sequence[Lesson], out: Renderer) -> dict[str, dict[int, str]] | None:
    """Each lesson run once for `slides --diagrams`; None (and said why) when that cannot be done here."""
    from workshop.diagram import DiagramError, svg_for
    from workshop.doctor import Readiness
    from workshop.engine.driver import undo_leftovers
    from workshop.ui import recorded_diagrams

    if not env.is_root:
        out.error(
            "`workshop slides --diagrams` runs every lesson live, which needs root: sudo workshop slides --diagrams"
        )
        return None
    readiness = Readiness(env)
    runnable = []
    for lesson in lessons:
        if readiness.unmet(lesson):
            out.text(f"{lesson.id}: no diagrams, it cannot run on this machine (`workshop doctor` says why)", "muted")
        else:
            runnable.append(lesson)
    undo_leftovers(env, out, announce=True)
    try:
        return recorded_diagrams.record(env, runnable, svg_for, lambda text: out.text(text, "muted"))
    except (recorded_diagrams.DiagramsFailed, DiagramError) as e:
        out.error(f"no decks written: {e}")
        return None


HANDLERS: dict[str, Handler] = {
    "shell": cmd_shell,
    "list": cmd_list,
    "run": cmd_run,
    "doctor": cmd_doctor,
    "cleanup": cmd_cleanup,
    "rootfs": cmd_rootfs,
    "new": cmd_new,
    "check": cmd_check,
    "slides": cmd_slides,
}
