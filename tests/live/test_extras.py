"""The live half of tests/unit/test_extras.py: what needs root and the real kernel."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ci import require_root, require_tool
from tests.libmount import lock_dir_as_found
from tests.unit.test_extras import (
    THEIRS,
    mounts_text,
    render,
    two_learners,
)
from workshop.observe import process_tree
from workshop.observe.links import diff_links, read_links
from workshop.observe.mounts import read_mounts
from workshop.ui import resource_views


@contextlib.contextmanager
def unshared(flag: str, ns_type: str) -> Iterator[int]:
    """A `sleep` in a new namespace of one type; it (and the namespace) dies at the end, whatever happens."""
    require_root()  # besides the mark: conftest's usefixtures added at collection time does not take effect
    require_tool("unshare")
    require_tool("nsenter")
    # the test's own `mount` inside makes /run/mount on the host's /run
    with lock_dir_as_found():
        sleeper = subprocess.Popen(["unshare", flag, "sleep", "60"])
        try:
            mine = os.readlink(f"/proc/self/ns/{ns_type}")
            deadline = time.monotonic() + 15
            # until unshare has exec'ed sleep: a new mount namespace is private only once unshare made it so, which
            # it does after unshare() and before the exec; a mount made before then could reach the host
            while (
                os.readlink(f"/proc/{sleeper.pid}/ns/{ns_type}") == mine
                or Path(f"/proc/{sleeper.pid}/comm").read_text().strip() != "sleep"
            ):
                assert time.monotonic() < deadline, "unshare did not start"
                time.sleep(0.01)
            yield sleeper.pid
        finally:
            sleeper.kill()
            sleeper.wait()


def inside(pid: int, flag: str, *command: str) -> None:
    subprocess.run(["nsenter", "-t", str(pid), flag, *command], check=True, capture_output=True)


@pytest.mark.root
def test_a_veth_pair_made_inside_a_new_network_namespace_shows_with_peer_state_and_address(
    host_unchanged: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_tool("ip")

    def no_fork() -> int:
        # a forked copy of a running lesson, killed with SIGTERM, would unwind into the session's cleanup
        raise AssertionError("reading links must not fork the tool")

    monkeypatch.setattr(os, "fork", no_fork)
    with unshared("-n", "net") as pid:
        snap = process_tree.snapshot(Path("/proc"), {"host": os.getpid(), "container": pid})
        before = read_links(Path("/proc"), snap)
        # only inside the sleeper's namespace: never the host's links or routes
        inside(pid, "-n", "ip", "link", "add", "dev", "wsx0", "type", "veth", "peer", "name", "wsx1")
        inside(pid, "-n", "ip", "addr", "add", "127.0.0.2/8", "dev", "lo")
        start = time.perf_counter()
        after = read_links(Path("/proc"), snap)
        took = time.perf_counter() - start

    assert after.error is None, after.error
    text = render(resource_views.links_view(diff_links(before, after)))
    print(text, f"\n(read in {took * 1000:.1f} ms)")
    [wsx0] = [" ".join(line.split()) for line in text.splitlines() if ": wsx0 " in line]
    assert wsx0.startswith("+ ") and "veth DOWN peer wsx1" in wsx0
    [lo] = [" ".join(line.split()) for line in text.splitlines() if ": lo " in line]
    assert lo.endswith("loopback DOWN +127.0.0.2/8")  # the address is new; lo is still down
    assert "host — netns" in text and ", no change" in text


@pytest.mark.root
def test_a_tmpfs_mounted_inside_a_new_mount_namespace_shows_there_only(tmp_path: Path, host_unchanged: object) -> None:
    target = tmp_path / "mnt"
    target.mkdir()
    host = process_tree.snapshot(Path("/proc"), {"host": os.getpid()})
    first = read_mounts(Path("/proc"), host)
    with unshared("-m", "mnt") as pid:  # util-linux makes the new namespace private: nothing propagates back
        inside(pid, "-m", "mount", "-t", "tmpfs", "wsxtmp", str(target))
        snap = process_tree.snapshot(Path("/proc"), {"host": os.getpid(), "container": pid})
        second = read_mounts(Path("/proc"), snap)
        inside(pid, "-m", "umount", str(target))
        third = read_mounts(Path("/proc"), snap)

    text = mounts_text(first, second)
    print(text)
    assert "(host): " in text and ", no change" in text
    assert "(container): " in text and "new — how it differs from the host's:" in text
    assert f"  + tmpfs on {target} (wsxtmp)" in text.splitlines()
    assert f"  - tmpfs on {target} (wsxtmp)" in mounts_text(second, third).splitlines()


@pytest.mark.root
def test_another_sessions_mount_in_a_learners_namespace_is_left_out_on_the_real_kernel(
    tmp_path: Path, host_unchanged: object
) -> None:
    scope, mine, theirs = two_learners(tmp_path)
    targets = {"mine": mine / "m", "theirs": theirs / "m", "elsewhere": tmp_path / "elsewhere"}
    for target in targets.values():
        target.mkdir()
    with unshared("-m", "mnt") as pid:  # private: nothing of this reaches the host's mount namespace
        snap = process_tree.snapshot(Path("/proc"), {"host": os.getpid(), "container": pid})
        before = read_mounts(Path("/proc"), snap, scope=scope)
        for name, target in targets.items():
            inside(pid, "-m", "mount", "-t", "tmpfs", f"wsx{name}", str(target))
        after = read_mounts(Path("/proc"), snap, scope=scope)

    text = mounts_text(before, after, 300)
    print(text)
    lines = text.splitlines()
    assert f"  + tmpfs on {targets['mine']} (wsxmine)" in lines
    assert f"  + tmpfs on {targets['elsewhere']} (wsxelsewhere)" in lines  # in the learner's own namespace
    assert THEIRS not in text and "wsxtheirs" not in text
