"""Consoles are real interactive shells on a pty: state carries from line to line, every line reports its exit
status, and a line that hangs, a nested shell, or a shell that exits never leaves the console unusable.

Every test runs a real bash and reads the kernel's view of it from /proc; `host_unchanged` fails a test that
leaves a process (or a namespace) behind.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.hygiene import HostState
from workshop.engine.consoles import Console

PROC = Path("/proc")


# -- helpers -------------------------------------------------------------------------------------------------------


def environ(pid: int) -> list[bytes]:
    """The process's environment. Read in the middle of its execve, the file is empty (the new memory map has no
    environment yet): `$!` is printed before the background child has finished exec'ing, so wait that out."""
    deadline = time.monotonic() + 2
    while True:
        raw = (PROC / str(pid) / "environ").read_bytes()
        if raw or time.monotonic() > deadline:
            return raw.split(b"\0")
        time.sleep(0.01)


def exec_settled(pid: int, program: str) -> int:
    """`$!` is printed as soon as the shell forks, before the child has exec'd: until then its comm is the shell's.
    Wait for the child to become `program`, so a test looks at the process it started and not at that moment."""
    assert wait_for(lambda: (PROC / str(pid) / "comm").read_text().strip() == program, timeout=5), (
        f"{pid} never became {program}"
    )
    environ(pid)  # the kernel names the new program before it lays out the new program's environment
    return pid


def session_processes(session: str) -> dict[int, str]:
    """pid → comm of every live process whose environment names `session`, read straight from /proc."""
    marker = f"WORKSHOP_SESSION={session}".encode()
    found = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                stat = (entry / "stat").read_text()
                if stat.rpartition(")")[2].split()[0] not in ("Z", "X"):
                    found[int(entry.name)] = (entry / "comm").read_text().strip()
        except OSError:
            continue
    return found


def drain_until(console: Console, text: str, timeout: float = 10.0) -> str:
    """What a background job printed between lines, collected until `text` shows (a loaded machine is slow)."""
    drained = console.drain()
    deadline = time.monotonic() + timeout
    while text not in drained and time.monotonic() < deadline:
        time.sleep(0.05)
        drained += console.drain()
    return drained


def wait_for(predicate: Callable[[], object], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def nspid(pid: int) -> list[int]:
    for line in (PROC / str(pid) / "status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return [int(f) for f in line.split()[1:]]
    raise AssertionError(f"no NSpid line for {pid}")


@pytest.fixture
def console(tmp_path: Path, host_unchanged: HostState) -> Iterator[Console]:
    """A started console in a private work dir; closed afterwards, and none of its processes may survive."""
    c = Console("test", f"test-{secrets.token_hex(4)}", cwd=tmp_path)
    c.start()
    try:
        yield c
    finally:
        c.close()
        assert wait_for(lambda: not session_processes(c.session)), (
            f"processes of the console survived close(): {session_processes(c.session)}"
        )


# -- state and exit status -----------------------------------------------------------------------------------------


def test_a_console_keeps_its_state_between_lines(console: Console) -> None:
    assert console.type("cd /tmp").rc == 0
    assert console.type("pwd").output == "/tmp"
    # the kernel agrees: the shell's working directory really changed
    assert os.readlink(PROC / str(console.pid) / "cwd") == "/tmp"
    assert console.type("X=5").rc == 0
    assert console.type("echo $X").output == "5"


def test_a_console_starts_in_its_work_dir(console: Console, tmp_path: Path) -> None:
    assert console.type("pwd").output == str(tmp_path)


@pytest.mark.parametrize(("line", "rc"), [("true", 0), ("false", 1), ("(exit 3)", 3), ("sh -c 'exit 42'", 42)])
def test_each_line_reports_its_exit_status(console: Console, line: str, rc: int) -> None:
    result = console.type(line)
    assert result.rc == rc
    assert not result.timed_out and not result.restarted


def test_output_is_streamed_line_by_line_in_order(console: Console) -> None:
    seen: list[tuple[float, str]] = []
    start = time.monotonic()
    result = console.type(
        "printf 'a\\nb\\nc\\n'; echo one; sleep 1; echo two",
        on_output=lambda ln: seen.append((time.monotonic() - start, ln)),
    )
    assert result.rc == 0
    assert [ln for _, ln in seen] == ["a", "b", "c", "one", "two"]
    assert result.output == "a\nb\nc\none\ntwo"
    # streamed, not collected at the end: "one" arrived while the line was still sleeping
    at = {ln: t for t, ln in seen}
    assert at["two"] - at["one"] >= 0.8


def test_a_last_line_without_newline_still_arrives(console: Console) -> None:
    seen: list[str] = []
    result = console.type("printf abc", on_output=seen.append)
    assert result.rc == 0
    assert seen == ["abc"]
    assert result.output == "abc"
    # and it does not glue itself to the next line's output
    assert console.type("echo next").output == "next"


def test_unicode_comes_through_intact(console: Console) -> None:
    text = "héllo ✓ 日本語 🐧"
    assert console.type(f"echo '{text}'").output == text


def test_a_very_long_output_line_comes_through_intact(console: Console) -> None:
    result = console.type("head -c 200000 /dev/zero | tr '\\0' x; echo", timeout=30)
    assert result.rc == 0
    assert len(result.output) == 200000
    assert set(result.output) == {"x"}


def test_console_output_never_shows_the_marker(console: Console) -> None:
    seen: list[str] = []
    outputs = []
    for line in ("true", "false", "printf abc", "printf 'x\\ny'", "echo; echo", "(exit 7)", "echo $?", "cd /nope"):
        result = console.type(line, on_output=seen.append)
        outputs.append(result.output)
    outputs.append(console.type("sleep 100", timeout=1).output)  # a timed-out line and the sync after it
    console.type("(sleep 0.2; echo bg) &")
    outputs.append(drain_until(console, "bg"))
    everything = "\n".join(outputs + seen)
    assert "__WS_" not in everything
    assert "bg" in everything  # the drain above did see something: the check is not vacuous


def test_a_line_that_reads_stdin_does_not_see_the_marker(console: Console) -> None:
    result = console.type("cat", timeout=1)
    assert result.timed_out
    assert "__WS_" not in result.output + console.drain()


# -- nested shells -------------------------------------------------------------------------------------------------


@pytest.mark.root
def test_a_nested_shell_in_a_new_pid_namespace_receives_the_next_lines(console: Console) -> None:
    assert console.type("unshare -p -f --mount-proc /bin/sh").rc == 0
    # the next line is read by the nested shell, which is PID 1 of its namespace
    assert console.type("echo $$").output == "1"
    focus = console.focus_pid()
    assert focus != console.pid
    assert nspid(focus)[-1] == 1 and len(nspid(focus)) == 2
    assert os.readlink(PROC / str(focus) / "ns/pid") != os.readlink(PROC / str(console.pid) / "ns/pid")
    # lines keep working and keep their status inside the nested shell
    assert console.type("false").rc == 1
    assert console.type("true").rc == 0

    console.type("exit")  # dash as PID 1 may complain about the tty's process group: its status is not asserted
    assert console.focus_pid() == console.pid
    assert console.type("echo $$").output == str(console.pid)
    assert wait_for(lambda: set(session_processes(console.session)) == {console.pid})


# -- hangs, interrupts, dying shells -------------------------------------------------------------------------------


def test_a_hanging_line_times_out_and_the_console_keeps_its_state(console: Console) -> None:
    assert console.type("KEEP=still-here").rc == 0
    start = time.monotonic()
    result = console.type("sleep 100", timeout=1)
    elapsed = time.monotonic() - start
    assert result.timed_out and result.rc is None
    assert not result.restarted
    assert elapsed < 20  # it gave up after its 1 s and an interrupt, not after sleep's 100 s (a loaded CI box is slow)
    assert wait_for(lambda: "sleep" not in session_processes(console.session).values()), (
        f"the hanging command survived: {session_processes(console.session)}"
    )
    after = console.type("echo $KEEP")
    assert after.rc == 0 and after.output == "still-here"


def test_interrupt_with_a_background_job_leaves_a_working_console(console: Console) -> None:
    assert console.type("KEEP=yes").rc == 0
    job = console.type("sleep 100 & echo $!")
    bg = exec_settled(int(job.output.splitlines()[-1]), "sleep")
    assert session_processes(console.session).get(bg) == "sleep"

    assert console.interrupt() is True  # the shell answered again: nothing had to be restarted
    result = console.type("echo ok $KEEP")
    assert result.rc == 0 and result.output == "ok yes"
    # Ctrl-C goes to the foreground only, as in a terminal: the background job runs on (close() ends it)
    assert session_processes(console.session).get(bg) == "sleep"


def test_exit_in_the_console_restarts_it_with_a_fresh_shell(console: Console) -> None:
    assert console.type("X=5").rc == 0
    old = console.pid
    result = console.type("exit")
    assert result.restarted and result.rc is None
    assert console.alive and console.pid != old
    assert wait_for(lambda: not (PROC / str(old)).exists())  # the old shell is gone, not just abandoned
    fresh = console.type('echo "[$X]"')
    assert fresh.rc == 0 and fresh.output == "[]"  # the old shell's state is gone, as restarted=True says
    assert not fresh.restarted


def test_a_shell_killed_between_lines_is_restarted_and_says_so(console: Console) -> None:
    assert console.type("X=5").rc == 0
    old = console.pid
    os.kill(old, signal.SIGKILL)
    assert wait_for(lambda: not console.alive)
    result = console.type('echo "[$X]"')
    assert result.rc == 0 and result.output == "[]" and console.pid != old
    assert result.restarted


def test_drain_returns_output_of_a_background_job_that_finished_between_lines(console: Console) -> None:
    assert console.type("(sleep 0.3; echo late) &").rc == 0
    assert "late" in drain_until(console, "late")
    assert "late" not in console.drain()  # drained once, not twice
    # bash may still report the finished job ("[1]+ Done …") with the next line, as in a terminal
    assert console.type("echo now").output.splitlines()[0] == "now"


# -- processes carry the session -----------------------------------------------------------------------------------


def test_every_process_from_a_console_carries_its_session(console: Console) -> None:
    marker = f"WORKSHOP_SESSION={console.session}".encode()
    assert marker in environ(console.pid)
    bg = exec_settled(int(console.type("sleep 100 & echo $!").output.splitlines()[-1]), "sleep")
    assert marker in environ(bg)
    # a grandchild, started from a child shell that changed other variables, and orphaned when that shell exits
    grandchild = exec_settled(int(console.type("sh -c 'FOO=bar sleep 100 & echo $!'").output.splitlines()[-1]), "sleep")
    try:
        assert marker in environ(grandchild)
        assert {bg, grandchild} <= set(session_processes(console.session))
    finally:
        # not a job of the console's shell, so close() cannot end it: finding such orphans by their
        # WORKSHOP_SESSION is what the journal's session-procs entry is for (tested in test_journal.py)
        os.kill(grandchild, signal.SIGKILL)


def test_the_session_in_the_environment_cannot_be_overridden(tmp_path: Path, host_unchanged: HostState) -> None:
    c = Console("test", f"test-{secrets.token_hex(4)}", env={"WORKSHOP_SESSION": "other", "FOO": "1"}, cwd=tmp_path)
    c.start()
    try:
        env = environ(c.pid)
        assert f"WORKSHOP_SESSION={c.session}".encode() in env
        assert b"WORKSHOP_SESSION=other" not in env
        assert b"FOO=1" in env
    finally:
        c.close()
    assert wait_for(lambda: not session_processes(c.session))


@pytest.mark.root
def test_processes_in_a_new_pid_namespace_carry_the_session(console: Console) -> None:
    assert console.type("unshare -p -f --mount-proc /bin/sh").rc == 0
    assert console.type("sleep 100 &").rc == 0

    def sleeping() -> list[int]:
        return [pid for pid, comm in session_processes(console.session).items() if comm == "sleep"]

    assert wait_for(sleeping), "the background sleep never showed up with the session in its environment"
    inside = sleeping()
    assert len(inside) == 1
    assert nspid(inside[0])[-1] != inside[0]  # it really is in the nested namespace
    console.type("exit")
