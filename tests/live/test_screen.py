"""The screen as the room sees it: the real program on a pseudo-terminal of a laptop's and a projector's size, drawn
by a terminal emulator. Whatever is typed at pace, printed by a step or drawn by the prompt, no line is broken
inside a word or path, nothing is drawn past the right edge, a line the learner typed shows once, and the
toolbar sits on the last row while the prompt waits."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.hygiene import HostState
from tests.screen import SIZES, Terminal
from tests.terminal import UNSHARE_STEPS

pytestmark = [pytest.mark.root, pytest.mark.timeout(300)]


@pytest.fixture
def short_state(image_dir: Path) -> Iterator[Path]:
    """A state dir whose path is as short as a learner's (/var/lib/workshop): the kernel prints absolute paths
    (findmnt, mount tables), and a test's deep temporary path would make them longer than any learner sees."""
    state = Path(tempfile.mkdtemp(prefix="ws-", dir="/tmp"))
    (state / "images").mkdir()
    os.symlink(image_dir / "images" / "rootfs.tar", state / "images" / "rootfs.tar")
    yield state
    shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def terminal(
    workshop_env: dict[str, str], short_state: Path, host_unchanged: HostState
) -> Iterator[Callable[..., Terminal]]:
    started: list[Terminal] = []

    def start(columns: int, lines: int, *args: str) -> Terminal:
        started.append(Terminal(args, {**workshop_env, "WORKSHOP_STATE_DIR": str(short_state)}, columns, lines))
        return started[-1]

    yield start
    for t in started:
        t.close()


def whole_lines(t: Terminal) -> None:
    """Nothing went past the right edge, so the terminal broke no line (inside a word or anywhere else)."""
    assert not t.glass.breaks, "drawn past the right edge, broken by the terminal:\n" + "\n".join(
        f"{'inside a word: ' if b.inside_a_word else ''}{b}" for b in t.glass.breaks
    )


@pytest.mark.parametrize(("columns", "lines"), SIZES, ids=[f"{c}x{r}" for c, r in SIZES])
def test_a_presented_lesson_types_whole_lines_at_any_size(
    terminal: Callable[..., Terminal], columns: int, lines: int
) -> None:
    # overlay's first steps type the longest lines of the curriculum: mkdir of six directories, a mount with three
    t = terminal(columns, lines, "run", "overlay", "--present", "--pace", "400")
    t.wait_for("Enter next")
    for step in (2, 3, 4):
        t.send("\r")
        t.wait_for(f"next {step}/", timeout=90)
    whole_lines(t)
    t.send("q")
    t.wait_for("steps passed")


@pytest.mark.parametrize(("columns", "lines"), SIZES, ids=[f"{c}x{r}" for c, r in SIZES])
def test_the_repl_shows_each_line_once_and_keeps_its_toolbar_on_the_last_row(
    terminal: Callable[..., Terminal], columns: int, lines: int
) -> None:
    t = terminal(columns, lines)
    t.wait_for("workshop ❯")
    t.send("start overlay\r")
    t.wait_for("· help", row=-1)  # the toolbar, on the last row
    t.send("\r")  # step 1
    t.wait_for("overlay 2/9")
    t.wait_for("· help", row=-1)  # the toolbar, on the last row
    t.send("\r")  # step 2 is the learner's to type: the toolbar says so
    t.wait_for("your turn")
    t.wait_for("· help", row=-1)
    t.send("skip\r")
    t.wait_for("overlay 3/9")
    t.wait_for("· help", row=-1)  # the toolbar, on the last row

    t.send("echo screen-$((6*7)) from the host\r")
    rows = t.wait_for("screen-42 from the host")
    rows = t.wait_for("· help", row=-1)  # the toolbar, on the last row
    typed = [r for r in rows if "echo screen-$((6*7))" in r]
    assert len(typed) == 1, "the typed line is shown more than once:\n" + "\n".join(typed)
    assert rows.index(typed[0]) < next(i for i, r in enumerate(rows) if "screen-42 from the host" in r)
    whole_lines(t)


@pytest.mark.parametrize(("columns", "lines"), SIZES, ids=[f"{c}x{r}" for c, r in SIZES])
def test_a_learner_typing_a_try_it_step_sees_their_line_once(
    terminal: Callable[..., Terminal], columns: int, lines: int
) -> None:
    t = terminal(columns, lines)
    t.wait_for("workshop ❯")
    t.send("start unshare-pid\r")
    t.wait_for("· help", row=-1)  # the toolbar, on the last row
    t.send("\r")  # step 1 unpacks the image
    t.wait_for(f"unshare-pid 2/{UNSHARE_STEPS} host#")
    t.send("\r")  # step 2 is the learner's to type
    t.wait_for("your turn", row=-1)
    t.send("unshare -p -f --kill-child --mount-proc=rootfs/proc chroot rootfs /bin/sh\r")
    t.send('echo "my PID is $$"\r')
    rows = t.wait_for("goal reached", timeout=60)
    rows = t.wait_for(f"unshare-pid 3/{UNSHARE_STEPS}", timeout=60)
    for line in ("# unshare -p -f --kill-child", '# echo "my PID is $$"'):  # (80 columns wrap the rest of the first)
        shown = [r for r in rows if line in r]
        assert len(shown) == 1, f"{line!r} is shown {len(shown)} times:\n" + "\n".join(rows)
    whole_lines(t)
