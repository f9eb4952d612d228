"""The background tiers' runner: a queued tier runs niced on its own thread and its test waits for the outcome; one
that was not queued runs when its test asks; a tier past its timeout is stopped, its whole process group with it."""

from __future__ import annotations

import time
from pathlib import Path

from tests.vm import background


def tier(script: str, timeout: float = 30, blocker: str | None = None) -> background.Tier:
    return background.Tier("t", ["sh", "-c", script], blocker=lambda: blocker, timeout=timeout, cwd=Path.cwd())


def test_queued_tiers_run_one_after_the_other_in_the_background_and_their_tests_get_the_outcome() -> None:
    first = tier("echo one; sleep 0.3; exit 3")
    second = tier("echo two")
    queue = background.Queue()
    queue.start([first, second])
    assert queue.tiers == [first, second]
    one, two = first.result(), second.result()
    assert (one.rc, one.output, one.timed_out) == (3, "one\n", False)
    assert (two.rc, two.output) == (0, "two\n")
    assert two.started >= one.started + one.seconds, "the second began when the first was done"


def test_a_blocked_tier_is_not_started_and_an_unqueued_one_runs_when_asked() -> None:
    blocked = tier("echo never", blocker="needs qemu")
    queue = background.Queue()
    queue.start([blocked])
    assert queue.tiers == []
    later = tier("echo now")
    assert later.result().output == "now\n"


def test_a_tier_past_its_timeout_is_stopped_with_its_children() -> None:
    slow = tier("sleep 60 & echo $! ; wait", timeout=1)
    t0 = time.monotonic()
    outcome = slow.result()
    assert outcome.timed_out and time.monotonic() - t0 < 20
    child = int(outcome.output.split()[0])
    deadline = time.monotonic() + 5
    while not _gone_or_zombie(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone_or_zombie(child), "the tier's child outlived the stop"


def _gone_or_zombie(pid: int) -> bool:
    try:  # a killed child of a killed shell is a zombie until init reaps it
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


SUMMARY = """\
===== summary: Debian 12 arm64, kernel 6.1.0-57-arm64, installed from a bundle
  what                                     result              seconds
  setup.sh --bundle                        passed                111.6
  lesson podman (no podman here)           shown                   2.4
  lesson veth                              {veth:<18}    17.9
RESULT: {result}
"""


def summary_tier(veth: str, result: str, rc: int = 0) -> background.Tier:
    text = SUMMARY.format(veth=veth, result=result).replace("'", "'\\''")
    return tier(f"echo booting; printf '%s' '{text}'; exit {rc}")


def test_a_tier_passes_when_its_summary_passed_every_expected_row() -> None:
    assert summary_tier("passed", "all passed").problems(["setup.sh --bundle", "lesson veth"]) == []


def test_a_failed_row_a_missing_row_and_the_exit_status_are_each_named() -> None:
    problems = summary_tier("FAILED (exit 1)", "1 FAILED", rc=1).problems(["lesson veth", "lesson capstone"])
    assert problems[:4] == [
        "t exited with 1",
        "lesson veth: FAILED (exit 1)",
        "lesson capstone: missing",
        "no 'RESULT: all passed'",
    ]
    assert problems[-1].startswith("===== summary")  # the table itself, for the reader of the failure


def test_a_tier_that_ran_out_of_time_says_so_with_its_last_lines() -> None:
    (problem,) = tier("echo last words; sleep 30", timeout=1).problems(["anything"])
    assert problem.startswith("t did not finish in 1 s") and "last words" in problem
