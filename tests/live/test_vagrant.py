"""The Vagrantfile: valid for Debian 12's vagrant, provisions with setup.sh, keeps work dirs off shared folders."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.ci import require_tool
from tests.harness import REPO

VAGRANTFILE = REPO / "Vagrantfile"


def validate(tmp_path: Path, **env_extra: str) -> subprocess.CompletedProcess[str]:
    # A copy, so `vagrant validate` writes its .vagrant dir and home under tmp_path, not into the repository.
    shutil.copy(VAGRANTFILE, tmp_path / "Vagrantfile")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAGRANT_") and k != "WORKSHOP_BOX"}
    env.update(VAGRANT_HOME=str(tmp_path / "vagrant.d"), VAGRANT_CHECKPOINT_DISABLE="1", **env_extra)
    # No provider (VirtualBox, libvirt) is installed where the tests run: validate everything but their blocks.
    return subprocess.run(
        ["vagrant", "validate", "--ignore-provider"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("box", ["", "ubuntu", "debian"])
def test_vagrant_validate(tmp_path: Path, box: str) -> None:
    require_tool("vagrant")
    done = validate(tmp_path, **({"WORKSHOP_BOX": box} if box else {}))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "validated successfully" in done.stdout
    assert "==> ubuntu" in done.stdout and "==> debian" in done.stdout


def test_vagrant_rejects_an_unknown_box(tmp_path: Path) -> None:
    require_tool("vagrant")
    done = validate(tmp_path, WORKSHOP_BOX="fedora")
    assert done.returncode != 0
    assert "choose one of ubuntu, debian" in done.stdout + done.stderr


def text() -> str:
    # Comments document ARM hosts and the smoke test; the checks below are about the code.
    return "\n".join(line for line in VAGRANTFILE.read_text().splitlines() if not line.lstrip().startswith("#"))


def test_boxes_and_resources() -> None:
    code = text()
    assert '"bento/ubuntu-24.04"' in code and '"bento/debian-12"' in code
    assert 'ENV.fetch("WORKSHOP_BOX", "debian")' in code  # the box tests/live/test_vagrant_tier.py boots
    assert "primary: primary, autostart: primary" in code
    for provider in ("virtualbox", "libvirt"):
        assert f'config.vm.provider "{provider}"' in code
    assert code.count("cpus = 2") >= 2 and code.count("memory = 2048") >= 2


def test_provisions_with_the_readme_setup_script() -> None:
    code = text()
    # the one setup.sh, from the rsync copy, as the README's quick start runs it
    assert re.search(r'provision "workshop", type: "shell", inline: "/opt/workshop/setup\.sh --no-shell"', code)
    assert "sudo ./setup.sh" in (REPO / "README.md").read_text()
    assert code.count("setup.sh") == 1
    assert "sudo workshop" in code  # post_up_message and MOTD
    assert "vagrant ssh -c 'sudo workshop run process --yes'" in VAGRANTFILE.read_text()


def test_no_work_dir_on_a_shared_folder() -> None:
    code = text()
    # the repository reaches the VM by rsync (a local copy), the default vboxsf /vagrant share is off
    assert 'synced_folder ".", "/vagrant", disabled: true' in code
    (synced,) = re.findall(r'synced_folder "\.", "/opt/workshop", type: "rsync",\s*rsync__exclude: \[([^\]]*)\]', code)
    for excluded in (".venv/", "tests/vm/.cache/"):
        assert f'"{excluded}"' in synced
    assert "bundle" not in synced  # an offline bundle beside the repository travels into the VM
    assert code.count("synced_folder") == 2
    # nothing moves the state dir (the lessons' work dirs) anywhere, let alone onto a share
    assert "WORKSHOP_STATE_DIR" not in code
    assert "/var/lib/workshop" not in code
