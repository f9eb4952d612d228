"""The package's layers, as import rules: data flows lesson → engine → observer → renderer, and no layer reaches up.

Each rule is read from the source (every `import`, also the ones inside functions, which run later but still tie
the modules together) and, where it is about what importing costs, from a fresh interpreter.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import REPO

PACKAGE = REPO / "workshop"


def imported_by(path: Path) -> set[str]:
    """Every module an `import` in the file names, as dotted names (`from workshop import doctor` names both
    `workshop` and `workshop.doctor`, since `doctor` may be a module)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def reaching(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    """`file: module` for each import of a forbidden module (or anything inside it)."""
    return [
        f"{f.relative_to(REPO)}: {name}"
        for f in files
        for name in sorted(imported_by(f))
        if any(name == bad or name.startswith(bad + ".") for bad in forbidden)
    ]


def modules_in(folder: str) -> list[Path]:
    found = sorted((PACKAGE / folder).rglob("*.py"))
    assert found, f"no modules in workshop/{folder}: the rule below would prove nothing"
    return found


def test_reading_lessons_needs_neither_the_machine_checks_nor_the_screen() -> None:
    """`workshop check` and the slides read lessons on any machine: the lesson layer knows no `doctor`, no UI."""
    assert reaching(modules_in("lesson"), ("workshop.doctor", "workshop.ui", "workshop.cli")) == []


def test_the_engine_says_everything_through_events_never_to_the_screen() -> None:
    """The engine emits events; only the UI renders them (so the REPL, `run` and trainer mode show the same)."""
    assert reaching(modules_in("engine"), ("workshop.ui", "workshop.cli", "workshop.doctor")) == []


def test_the_proc_layer_stands_alone() -> None:
    """`observe/procfs` is the one reader of `/proc`: the engine, the observer and `doctor` all ask it, so it may
    import nothing of the package (or one of them could not)."""
    assert reaching([PACKAGE / "observe" / "procfs.py"], ("workshop",)) == []


def test_only_the_proc_layer_decodes_mountinfo_escapes() -> None:
    """mountinfo's octal escapes (`\\040` for a space) are decoded in one place, the same way for everyone."""
    decoding = [str(f.relative_to(REPO)) for f in PACKAGE.rglob("*.py") if "[0-7]{3}" in f.read_text()]
    assert decoding == ["workshop/observe/procfs.py"]


def test_the_diagram_is_drawn_from_the_observer_for_any_front_end() -> None:
    """The diagram knows the observer's data, not the screen: the web page, recordings and slides all embed it."""
    assert reaching(modules_in("diagram"), ("workshop.ui", "workshop.cli", "workshop.doctor")) == []


def test_only_the_diagrams_svg_module_runs_dot() -> None:
    """The picture is a pure function of a snapshot; `svg` alone runs `dot`, through the one process runner."""
    pure = [f for f in modules_in("diagram") if f.name not in ("svg.py", "__init__.py")]
    assert reaching(pure, ("workshop.engine", "subprocess", "os")) == []
    assert reaching([PACKAGE / "diagram" / "svg.py"], ("subprocess",)) == []


def test_the_repl_does_not_borrow_from_trainer_mode() -> None:
    """`back` and `goto` are the lesson driver's, for the REPL and trainer mode alike."""
    shell = [PACKAGE / "ui" / "shell.py", PACKAGE / "ui" / "shell_commands.py"]
    assert reaching(shell, ("workshop.ui.presenter",)) == []


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("workshop.engine.events", ("pexpect", "workshop.engine.consoles", "workshop.ui", "rich")),
        ("workshop.ui.shell", ("workshop.ui.presenter",)),
        ("workshop.lesson.loader", ("workshop.doctor", "workshop.ui")),
        ("workshop.lesson.catalog", ("workshop.doctor", "workshop.ui")),
    ],
)
def test_importing_a_module_brings_in_only_its_own_layer(module: str, absent: tuple[str, ...]) -> None:
    """Events are plain data: a front end, a test or a tool can name them without starting console machinery."""
    probe = f"import sys, {module}; print('\\n'.join(sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout.split()
    assert [m for m in loaded if any(m == a or m.startswith(a + ".") for a in absent)] == []
