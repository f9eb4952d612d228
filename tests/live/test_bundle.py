"""An offline workshop day: a bare Debian 12 with no network at all installs workshop from a bundle.

The machine: a minimal Debian 12 root in namespaces with loopback only, as `tests.offline_debian` makes it;
the offline claim is tested, not assumed.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import offline_debian
from tests.ci import IN_CI, missing, require_root, require_tool
from tests.offline_debian import offline

pytestmark = pytest.mark.usefixtures("host_unchanged")


def _debian_12_amd64() -> None:
    if not offline_debian.is_debian_12_amd64():
        missing("a bundle is made on Debian 12 amd64, the learners' VM")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_root()
    _debian_12_amd64()
    require_tool("apt-ftparchive")
    return offline_debian.make_bundle(tmp_path_factory.mktemp("bundle") / "bundle")


@pytest.fixture
def bare_debian(tmp_path: Path) -> Iterator[Path]:
    """A fresh minimal Debian 12 root with this repository in /opt/workshop (no venv, no bundle yet)."""
    require_root()
    _debian_12_amd64()
    if not offline_debian.MINBASE.exists():
        require_tool("mmdebstrap")
    root = offline_debian.unpack(tmp_path / "root")
    yield root
    shutil.rmtree(root)


def test_no_network_and_no_bundle_stops_with_one_sentence(bare_debian: Path) -> None:
    done = offline(bare_debian, "/opt/workshop/setup.sh --no-shell")
    assert done.returncode == 1, done.stdout + done.stderr
    first, *rest = done.stderr.strip().splitlines()
    assert "no package archive is reachable" in first
    assert "./make-bundle" in first and "--bundle DIR" in first
    assert rest == ["  (details: /var/log/workshop-setup.log)"]
    assert "Traceback" not in done.stdout + done.stderr
    # what apt said is kept for whoever debugs it, on the machine that failed
    assert (bare_debian / "var/log/workshop-setup.log").read_text().strip()


def test_a_bundle_for_another_machine_is_refused_before_anything_is_installed(bare_debian: Path, bundle: Path) -> None:
    other = bare_debian / "opt" / "other-bundle"
    shutil.copytree(bundle, other)
    manifest = other / "MANIFEST"
    manifest.write_text(manifest.read_text().replace("arch=amd64", "arch=arm64"))
    done = offline(bare_debian, "/opt/workshop/setup.sh --no-shell --bundle /opt/other-bundle")
    assert done.returncode == 1
    assert "is for bookworm/arm64 and this machine is bookworm/amd64" in done.stderr
    assert not (bare_debian / "usr/bin/python3").exists()  # nothing was installed


def test_a_bare_debian_without_network_installs_from_the_bundle_beside_the_repository(
    bare_debian: Path, bundle: Path
) -> None:
    shutil.copytree(bundle, bare_debian / "opt" / "workshop" / "bundle")
    assert not (bare_debian / "usr/bin/python3").exists()  # minbase: really nothing of it yet
    start = time.monotonic()
    done = offline(bare_debian, "/opt/workshop/setup.sh --no-shell")
    seconds = time.monotonic() - start
    assert done.returncode == 0, done.stdout + done.stderr + _log(bare_debian)
    assert seconds < 60 * (3 if IN_CI else 1), f"setup from the bundle took {seconds:.0f} s"

    listed = offline(bare_debian, "workshop list --plain")
    assert listed.returncode == 0, listed.stderr
    for lesson in ("chroot", "unshare-pid", "overlay", "cgroup-pids", "veth", "capstone"):
        assert lesson in listed.stdout
    # the image came from the bundle, byte for byte
    image = bare_debian / "var/lib/workshop/images/rootfs.tar"
    assert image.read_bytes() == (bundle / "images" / "rootfs.tar").read_bytes()
    # a learner's venv is the runtime: no test tools in it, and small
    venv = bare_debian / "opt/workshop/.venv"
    assert not list(venv.glob("lib/python3*/site-packages/pytest"))
    size = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file() and not f.is_symlink())
    assert size < 70 * 2**20, f"the learner's venv is {size / 2**20:.0f} MB"


def _log(root: Path) -> str:
    log = root / "var/log/workshop-setup.log"
    return log.read_text()[-3000:] if log.exists() else ""


def test_a_bundle_for_arm64_learners_is_made_on_an_amd64_machine(tmp_path: Path) -> None:
    """A trainer's amd64 laptop makes the bundle for an Apple Silicon room: arm64 debs, aarch64 wheels, no image."""
    require_root()
    _debian_12_amd64()
    require_tool("apt-ftparchive")
    out = offline_debian.make_bundle(tmp_path / "bundle", arch="arm64")

    assert "arch=arm64" in (out / "MANIFEST").read_text().splitlines()
    debs = sorted((out / "debs").glob("*.deb"))
    assert any(deb.name.startswith("busybox-static_") for deb in debs)
    architectures = {
        deb.name: subprocess.run(
            ["dpkg-deb", "-f", str(deb), "Architecture"], capture_output=True, text=True
        ).stdout.strip()
        for deb in debs
    }
    assert set(architectures.values()) <= {"arm64", "all"}, architectures
    wheels = [w.name for w in (out / "wheels").glob("*.whl")]
    assert wheels and all(w.endswith("-none-any.whl") or "aarch64" in w for w in wheels), wheels
    # the host's busybox is amd64: setup.sh builds the image on the learner's machine from its own
    assert not (out / "images").exists()
