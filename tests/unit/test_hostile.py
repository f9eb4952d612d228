"""Hostile and broken input: a rejected rootfs writes nothing anywhere, a non-root user is sent to sudo with
nothing created, and a kernel or machine that lacks a feature gets a clear refusal, not a half-made session.

Every rootfs case runs in a sandbox (the test's tmp dir) that holds the archive, a canary directory the archive
aims at, and the target; the whole sandbox is compared before and after, so a write anywhere in it shows, not
only a write to the canary.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import os
import random
import shutil
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness import REPO
from tests.hygiene import HostState
from tests.unit.test_rootfs import DAMAGED, HOSTILE, alpine_like, make_tar, minimal_rootfs, reg, tar_bytes
from workshop import cli, doctor
from workshop.environment import Environment
from workshop.image.rootfs import RootfsError, extract_image, import_image

FIXTURES = Path(__file__).parent.parent / "fixtures"
Snapshot = dict[str, tuple[object, ...]]


def snapshot(root: Path) -> Snapshot:
    """Every entry under `root`: its type, mode and content (or link target, or device number); never follows
    a symlink."""
    found: Snapshot = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory) / name
            st_ = path.lstat()
            key = str(path.relative_to(root))
            if stat.S_ISLNK(st_.st_mode):
                found[key] = ("symlink", os.readlink(path))
            elif stat.S_ISREG(st_.st_mode):
                found[key] = ("file", st_.st_mode, st_.st_nlink, hashlib.sha256(path.read_bytes()).hexdigest())
            elif stat.S_ISDIR(st_.st_mode):
                found[key] = ("dir", st_.st_mode)
            else:
                found[key] = ("special", st_.st_mode, st_.st_rdev)
    return found


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """tmp_path with the canary an archive aims at: `outside/canary`, next to where the rootfs goes."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "canary").write_text("untouched\n")
    return tmp_path


def hostile_archive(sandbox: Path, case: str) -> tuple[Path, str, str]:
    extra, member, rule = HOSTILE[case](sandbox / "outside")
    return make_tar(sandbox / "rootfs.tar", [*minimal_rootfs(), *extra]), member, rule


# -- rootfs: import and extract, the whole sandbox compared ---------------------------------------------------------


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_import_changes_nothing_anywhere(sandbox: Path, case: str) -> None:
    source, member, rule = hostile_archive(sandbox, case)
    before = snapshot(sandbox)
    with pytest.raises(RootfsError) as caught:
        import_image(source, sandbox / "state" / "images" / "rootfs.tar")
    said = str(caught.value)
    assert said.startswith(f"rootfs.tar: member {member!r} ") and rule in said, said
    assert snapshot(sandbox) == before


@pytest.mark.parametrize("premade", [False, True], ids=["new target", "empty target"])
@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_extract_changes_nothing_anywhere(sandbox: Path, case: str, premade: bool) -> None:
    image, member, rule = hostile_archive(sandbox, case)
    target = sandbox / "rootfs"
    if premade:
        target.mkdir()
    before = snapshot(sandbox)
    with pytest.raises(RootfsError) as caught:
        extract_image(image, target)
    said = str(caught.value)
    assert f"member {member!r} " in said and rule in said and "refusing to extract" in said, said
    assert snapshot(sandbox) == before, "a rejected image left something behind (or the empty target is gone)"


@pytest.mark.parametrize("premade", [False, True], ids=["new target", "empty target"])
@pytest.mark.parametrize("case", list(DAMAGED))
def test_a_damaged_archive_changes_nothing_anywhere(sandbox: Path, case: str, premade: bool) -> None:
    archive = sandbox / "rootfs.tar"
    archive.write_bytes(DAMAGED[case]())
    target = sandbox / "rootfs"
    if premade:
        target.mkdir()
    before = snapshot(sandbox)
    with pytest.raises(RootfsError, match=r"^rootfs.tar is truncated, damaged or not a tar archive \(.+\)\. "):
        import_image(archive, sandbox / "state" / "images" / "rootfs.tar")
    with pytest.raises(RootfsError, match=r"^rootfs.tar is truncated, damaged or not a tar archive"):
        extract_image(archive, target)
    assert snapshot(sandbox) == before


def damage(data: bytes, rng: random.Random) -> bytes:
    """Flip, cut, insert or zero bytes: what a bad download or a bad disk does."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(buf)) if buf else 0
        how = rng.choice(("flip", "cut", "insert", "zero"))
        if how == "flip" and buf:
            buf[at] ^= 1 << rng.randrange(8)
        elif how == "cut":
            del buf[at:]
        elif how == "insert":
            buf[at:at] = rng.randbytes(rng.randint(1, 600))
        else:
            buf[at : at + rng.randint(1, 1024)] = bytes(min(1024, len(buf) - at))
    return bytes(buf)


BIG = reg("big", b"0123456789" * 3000)
ARCHIVES = {compression: tar_bytes([*alpine_like(), BIG], compression) for compression in ("", "gz", "xz", "bz2")}


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(compression=st.sampled_from(sorted(ARCHIVES)), rng=st.randoms(use_true_random=False))
def test_a_damaged_archive_is_refused_or_imported_never_a_crash(
    compression: str, rng: random.Random, tmp_path_factory: pytest.TempPathFactory
) -> None:
    sandbox = tmp_path_factory.mktemp("damaged")
    archive = sandbox / "rootfs.tar"
    archive.write_bytes(damage(ARCHIVES[compression], rng))
    before = snapshot(sandbox)
    dest = sandbox / "state" / "images" / "rootfs.tar"
    try:
        info = import_image(archive, dest)
    except RootfsError as e:
        assert str(e).startswith("rootfs.tar") and "\n" not in str(e), str(e)
        assert snapshot(sandbox) == before
    else:  # damage tar cannot see (a byte of file data in a plain tar): a clean image, checked again
        assert info.members > 0 and dest.is_file()
        with tarfile.open(dest) as tar:
            assert all(not m.name.startswith(("/", "../")) for m in tar.getmembers())
    target = sandbox / "rootfs"
    try:
        extract_image(archive, target)
    except RootfsError:
        assert not target.exists()
    else:
        assert (target / "bin").is_dir()


# -- rootfs from the command line (root: `workshop rootfs` refuses everyone else) ------------------------------------


# -- without root ----------------------------------------------------------------------------------------------------


# -- a machine that lacks a feature ----------------------------------------------------------------------------------


def fake_machine(root: Path, missing: str) -> tuple[Path, Path]:
    """A /proc and /sys like Ubuntu 24.04's (cgroup v2 with pids, overlay, every namespace), minus `missing`."""
    proc, sys_ = root / "proc", root / "sys"
    (proc / "self" / "ns").mkdir(parents=True)
    shutil.copy(FIXTURES / "mountinfo" / "v2-ubuntu2404.txt", proc / "self" / "mountinfo")
    for ns in doctor.NAMESPACES:
        if missing != f"ns:{ns}":
            (proc / "self" / "ns" / ns).touch()
    filesystems = (FIXTURES / "doctor" / "filesystems.txt").read_text()
    if missing == "overlay":
        filesystems = "".join(line for line in filesystems.splitlines(True) if "overlay" not in line)
    (proc / "filesystems").write_text(filesystems)
    (proc / "sys" / "user").mkdir(parents=True)
    (proc / "sys" / "user" / "max_user_namespaces").write_text("15000\n")
    (proc / "modules").write_text("")
    controllers = (FIXTURES / "doctor" / "cgroup.controllers-ubuntu2404.txt").read_text()
    if missing == "cgroup:pids":
        controllers = controllers.replace("pids ", "")
    if missing == "cgroup:memory":
        controllers = controllers.replace("memory ", "")
    (sys_ / "fs" / "cgroup").mkdir(parents=True)
    (sys_ / "fs" / "cgroup" / "cgroup.controllers").write_text(controllers)
    for module in ("veth", "bridge"):
        (sys_ / "module" / module).mkdir(parents=True)
    return proc, sys_


MISSING = {
    # what the machine lacks: (the lesson that needs it, words the refusal must say)
    "cgroup:pids": ("cgroup-pids", ["cgroup pids controller", "pids is not in", "cgroup.controllers"]),
    "cgroup:memory": ("cgroup-limits", ["cgroup memory controller", "no memory controller", "cgroup_disable=memory"]),
    "overlay": ("overlay", ["overlay filesystem", "overlay is not in /proc/filesystems", "fix: modprobe overlay"]),
    "ns:pid": ("unshare-pid", ["pid namespace", "is missing: the kernel lacks pid namespaces", "CONFIG_PID_NS"]),
}


@pytest.mark.parametrize("missing", list(MISSING))
def test_a_lesson_needing_a_missing_kernel_feature_is_refused_and_nothing_is_created(
    missing: str,
    tmp_path: Path,
    state_dir: Path,
    host_unchanged: HostState,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`workshop run` in-process with an Environment over a fake /proc and /sys (the CLI reads the real ones):
    the least invasive way to show a kernel this machine is not."""
    lesson, words = MISSING[missing]
    lessons = tmp_path / "lessons"
    shutil.copytree(REPO / "lessons" / lesson, lessons / lesson)
    proc, sys_ = fake_machine(tmp_path / "machine", missing)
    # modprobe would find the host's overlay module; on the machine described here there is none
    monkeypatch.setattr(doctor, "Probe", functools.partial(doctor.Probe, which=hide("modprobe")))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    out = io.StringIO()
    env = Environment(
        stdout=out, is_root=True, state_dir=state_dir, proc_root=proc, sys_root=sys_, lessons_dir=lessons,
        color=False, width=400,
    )  # fmt: skip
    before = snapshot(state_dir)
    rc = cli.HANDLERS["run"](env, parse(["run", lesson, "--yes"]))
    said = out.getvalue()
    assert rc == 1, said
    assert f"lesson {lesson!r} cannot run on this machine yet" in said
    for w in words:
        assert w in said, said
    assert said.count("✗") == 2, f"only the missing piece is named:\n{said}"
    assert snapshot(state_dir) == before, "a refused lesson created a session, a journal or a work dir"
    assert not (tmp_path / "xdg").exists()

    env.stdout = out = io.StringIO()
    assert cli.HANDLERS["doctor"](env, parse(["doctor"])) == 1
    assert words[0] in out.getvalue()


def hide(*tools: str) -> Callable[[str], str | None]:
    def which(name: str) -> str | None:
        return None if name in tools else shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")

    return which


def parse(argv: list[str]) -> argparse.Namespace:
    return cli.build_parser().parse_args(argv)
