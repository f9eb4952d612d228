"""The Vagrantfile: valid for Debian 12's vagrant, provisions with setup.sh, keeps work dirs off shared folders."""

from __future__ import annotations

import json
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
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAGRANT_", "WORKSHOP_"))}
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
    assert "bento/debian-12-arm64" in code and "bento/ubuntu-24.04-arm64" in code


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


# What the Vagrantfile chooses, read by evaluating it under Vagrant's Ruby with a stand-in for Vagrant's config
# object that records every setting, and a stand-in uname: the host an Apple Silicon learner has.
RECORDER = r"""
require "etc"
require "json"
UNAME = JSON.parse(ENV.fetch("FAKE_UNAME"), symbolize_names: true)
module Etc
  def self.uname = UNAME
end
class Recorder
  def initialize(log, path) = (@log, @path = log, path)
  def method_missing(name, *args, **kw, &block)
    key = "#{@path}.#{name}".delete_suffix("=")
    @log << [key, *args.map(&:to_s)]
    block&.call(Recorder.new(@log, "#{key}(#{args.first})"))
    Recorder.new(@log, key)
  end
  def respond_to_missing?(*) = true
end
module Vagrant
  def self.require_version(*) = nil
  def self.configure(_version) = yield(Recorder.new(LOG, "config"))
end
LOG = []
load ARGV.fetch(0)
puts JSON.dump(LOG)
"""

MAC = {
    "sysname": "Darwin",
    "machine": "arm64",
    "version": "Darwin Kernel Version 23.4.0: root:xnu-10063.101.17~1/RELEASE_ARM64_T6030",
}
MAC_UNDER_ROSETTA = {**MAC, "machine": "x86_64"}
LINUX_PC = {"sysname": "Linux", "machine": "x86_64", "version": "#1 SMP PREEMPT_DYNAMIC Debian 6.1.158-1"}
LINUX_ARM = {"sysname": "Linux", "machine": "aarch64", "version": "#1 SMP Debian 6.1.158-1"}


def settings(tmp_path: Path, uname: dict[str, str], **env_extra: str) -> list[list[str]]:
    require_tool("ruby")
    script = tmp_path / "recorder.rb"
    script.write_text(RECORDER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKSHOP_")}
    env.update(FAKE_UNAME=json.dumps(uname), **env_extra)
    done = subprocess.run(
        ["ruby", str(script), str(VAGRANTFILE)], capture_output=True, text=True, env=env, timeout=60, check=True
    )
    return [list(entry) for entry in json.loads(done.stdout)]


def boxes(log: list[list[str]]) -> dict[str, str]:
    return {e[0].split("define(")[1].split(")")[0]: e[1] for e in log if e[0].endswith(".vm.box") and len(e) > 1}


def providers(log: list[list[str]]) -> list[str]:
    return [e[1] for e in log if e[0] == "config.vm.provider" and len(e) > 1]


@pytest.mark.parametrize("uname", [MAC, MAC_UNDER_ROSETTA, LINUX_ARM], ids=["mac", "mac-rosetta", "linux-arm64"])
def test_an_arm64_host_gets_arm64_boxes_and_a_macs_providers_first(tmp_path: Path, uname: dict[str, str]) -> None:
    log = settings(tmp_path, uname)
    assert boxes(log) == {"ubuntu": "bento/ubuntu-24.04-arm64", "debian": "bento/debian-12-arm64"}
    assert providers(log) == ["parallels", "vmware_desktop", "virtualbox"]
    for provider in providers(log):
        assert [f"config.vm.provider({provider}).cpus", "2"] in log
        assert [f"config.vm.provider({provider}).memory", "2048"] in log


def test_an_amd64_host_keeps_its_boxes_and_virtualbox_first(tmp_path: Path) -> None:
    log = settings(tmp_path, LINUX_PC)
    assert boxes(log) == {"ubuntu": "bento/ubuntu-24.04", "debian": "bento/debian-12"}
    assert providers(log)[:2] == ["virtualbox", "libvirt"]


def test_workshop_arch_overrides_what_the_host_says(tmp_path: Path) -> None:
    assert boxes(settings(tmp_path, LINUX_PC, WORKSHOP_ARCH="arm64"))["debian"] == "bento/debian-12-arm64"
    assert boxes(settings(tmp_path, MAC, WORKSHOP_ARCH="amd64"))["debian"] == "bento/debian-12"


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_vagrant_validate_for_either_architecture(tmp_path: Path, arch: str) -> None:
    require_tool("vagrant")
    # without --ignore-provider: the blocks of every provider installed here (virtualbox's, libvirt's) are checked
    shutil.copy(VAGRANTFILE, tmp_path / "Vagrantfile")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAGRANT_", "WORKSHOP_"))}
    env.update(VAGRANT_HOME=str(tmp_path / "vagrant.d"), VAGRANT_CHECKPOINT_DISABLE="1", WORKSHOP_ARCH=arch)
    done = subprocess.run(
        ["vagrant", "validate"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "validated successfully" in done.stdout


def test_an_unknown_architecture_is_refused_with_the_choices(tmp_path: Path) -> None:
    done = validate(tmp_path, WORKSHOP_ARCH="sparc")
    assert done.returncode != 0
    assert "choose one of amd64, arm64" in done.stdout + done.stderr
