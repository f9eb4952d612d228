"""Setup from an offline bundle on a machine that has none of it: a bare Debian 12 with no network.

The machine and its namespaces are the offline install test's (`tests.offline_debian`): minbase, the repository
in /opt/workshop, `./make-bundle`'s output beside it, loopback only. Measured: `setup.sh --no-shell` from start
to exit, which installs the bundle's Debian packages (Python among them), the venv from its wheels and the image.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.measure import Row, Verdict, is_root, judge, skipped
from tests import offline_debian

WHAT = "setup from the bundle, bare Debian 12, no network"
TARGET_S = 60.0


def rows() -> list[Row]:
    if not is_root():
        return [skipped(WHAT, f"< {TARGET_S:.0f} s", "needs root")]
    if not offline_debian.is_debian_12_amd64() or shutil.which("apt-ftparchive") is None:
        return [skipped(WHAT, f"< {TARGET_S:.0f} s", "needs Debian 12 amd64 with apt-utils")]
    with tempfile.TemporaryDirectory(prefix="ws-bench-bundle-") as tmp:
        bundle = offline_debian.make_bundle(Path(tmp) / "bundle")
        root = offline_debian.unpack(Path(tmp) / "root")
        shutil.copytree(bundle, root / "opt" / "workshop" / "bundle")
        start = time.monotonic()
        done = offline_debian.offline(root, "/opt/workshop/setup.sh --no-shell")
        seconds = time.monotonic() - start
        debs = sum(1 for _ in (bundle / "debs").glob("*.deb"))
        wheels = sum(1 for _ in (bundle / "wheels").glob("*.whl"))
    if done.returncode != 0:
        return [Row(WHAT, "—", "—", "—", f"< {TARGET_S:.0f} s", Verdict.FAILED, done.stderr.strip()[:120])]
    note = f"{debs} debs, {wheels} wheels and the image; venv, /usr/local/bin/workshop"
    return [Row(WHAT, f"{seconds:.1f} s", "—", "—", f"< {TARGET_S:.0f} s", judge(seconds < TARGET_S), note)]
