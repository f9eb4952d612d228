"""The cgroup v2 tier: every lesson (under pytest) inside a real Debian 12 kernel booted under qemu, laid out like the
learners' VMs (cgroup2 alone on /sys/fs/cgroup, `/` shared), plus fast tests of the harness's helpers.

The VM run takes several minutes (software emulation). `WORKSHOP_VM=0` skips it; without qemu it is skipped on
a laptop and fails under CI=true.
"""

from __future__ import annotations

import lzma
import os
import sys
from pathlib import Path

import pytest

from tests.ci import require_tool
from tests.harness import REPO
from tests.vm import background, vmtools

VM = REPO / "tests" / "vm"

# --- which kernel -----------------------------------------------------------------------------------------

APT_CACHE_DEPENDS = """\
linux-image-amd64
  Depends: linux-image-6.1.0-56-amd64
"""


def test_the_kernel_package_is_the_one_linux_image_amd64_depends_on() -> None:
    assert vmtools.kernel_package(APT_CACHE_DEPENDS) == "linux-image-6.1.0-56-amd64"


def test_the_newest_kernel_wins_comparing_numbers_not_text() -> None:
    text = (
        "linux-image-amd64\n"
        "  Depends: linux-image-6.1.0-100-amd64\n"
        "  Depends: linux-image-6.1.0-56-amd64\n"
        "  Depends: linux-image-6.12.0-1-amd64\n"
        "  Depends: linux-image-6.1.0-9-amd64\n"
    )
    assert vmtools.kernel_package(text) == "linux-image-6.12.0-1-amd64"
    assert vmtools.kernel_package(text.replace("6.12.0-1", "6.1.0-7")) == "linux-image-6.1.0-100-amd64"


def test_no_kernel_package_when_apt_knows_none() -> None:
    assert vmtools.kernel_package("") is None
    assert vmtools.kernel_package("W: No information about linux-image-amd64\n") is None
    # a signed or unsigned variant for another architecture or flavour is not ours
    assert vmtools.kernel_package("  Depends: linux-image-6.1.0-56-cloud-amd64\n") is None
    assert vmtools.kernel_package("  Depends: linux-image-6.1.0-56-arm64\n") is None


# --- which modules, in which order ------------------------------------------------------------------------


def _ko(depends: str) -> bytes:
    """A stand-in module: what matters here is its .modinfo strings."""
    return b"\x7fELF junk\0license=GPL\0depends=" + depends.encode() + b"\0vermagic=6.1.0 SMP\0"


def test_module_depends_reads_modinfo() -> None:
    assert vmtools.module_depends(_ko("virtio,9pnet,virtio_ring")) == ["virtio", "9pnet", "virtio_ring"]
    assert vmtools.module_depends(_ko("")) == []
    assert vmtools.module_depends(b"no modinfo at all") == []


def test_module_names_drop_the_suffix_and_use_underscores() -> None:
    assert vmtools.module_name(Path("a/9pnet_virtio.ko.xz")) == "9pnet_virtio"
    assert vmtools.module_name(Path("virtio-pci.ko")) == "virtio_pci"
    assert vmtools.module_name(Path("x.ko.zst")) == "x"


def test_load_order_puts_dependencies_first_and_each_module_once() -> None:
    deps = {
        "virtio_pci": ["virtio_ring", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio"],
        "virtio": ["virtio_ring"],
        "9pnet_virtio": ["virtio", "9pnet", "virtio_ring"],
        "9p": ["9pnet", "fscache", "netfs"],
        "fscache": ["netfs"],
        "bridge": ["llc", "stp"],
        "stp": ["llc"],
    }
    order = vmtools.load_order(["virtio_pci", "9pnet_virtio", "9p", "overlay", "bridge"], lambda m: deps.get(m, []))
    assert sorted(order) == sorted(set(order))
    for module, needs in deps.items():
        for need in needs:
            assert order.index(need) < order.index(module), (need, module, order)
    assert order[-2:] == ["stp", "bridge"]


def test_load_order_refuses_a_cycle() -> None:
    with pytest.raises(ValueError, match="cycle"):
        vmtools.load_order(["a"], lambda m: {"a": ["b"], "b": ["a"]}[m])


def test_copy_modules_decompresses_and_skips_builtins(tmp_path: Path) -> None:
    tree = tmp_path / "lib/modules/6.1.0-56-amd64"
    (tree / "kernel/fs/9p").mkdir(parents=True)
    (tree / "kernel/net/9p").mkdir(parents=True)
    (tree / "kernel/fs/9p/9p.ko.xz").write_bytes(lzma.compress(_ko("9pnet,netfs")))
    (tree / "kernel/net/9p/9pnet.ko").write_bytes(_ko(""))
    (tree / "modules.builtin").write_text("kernel/fs/netfs/netfs.ko\n")
    out = tmp_path / "out"
    assert vmtools.copy_modules(tree, out, ["9p"]) == ["9pnet", "9p"]
    assert (out / "9p.ko").read_bytes() == _ko("9pnet,netfs")
    assert sorted(p.name for p in out.iterdir()) == ["9p.ko", "9pnet.ko"]
    with pytest.raises(ValueError, match="nor built in"):
        vmtools.copy_modules(tree, out, ["veth"])


def _elf_header(with_interp: bool) -> bytes:
    head = bytearray(0x40 + 2 * 0x38)
    head[:6] = b"\x7fELF\x02\x01"
    head[0x20:0x28] = (0x40).to_bytes(8, "little")
    head[0x36:0x38] = (0x38).to_bytes(2, "little")
    head[0x38:0x3A] = (2).to_bytes(2, "little")
    head[0x40:0x44] = (1).to_bytes(4, "little")  # PT_LOAD
    head[0x78:0x7C] = (3 if with_interp else 1).to_bytes(4, "little")
    return bytes(head)


def test_only_a_static_busybox_fits_an_initramfs() -> None:
    assert vmtools.is_static_elf(_elf_header(with_interp=False))
    assert not vmtools.is_static_elf(_elf_header(with_interp=True))
    assert not vmtools.is_static_elf(b"#!/bin/sh\n")
    assert not vmtools.is_static_elf(Path(sys.executable).resolve().read_bytes()[:65536])


# --- the serial console -------------------------------------------------------------------------------------


def test_the_console_passes_output_and_reads_the_exit_marker() -> None:
    printed: list[str] = []
    ticks = iter([100.0, 107.5, 130.0])
    console = vmtools.Console("abc123", printed.append, clock=lambda: next(ticks))
    for line in [
        "\x1bc\x1b[?7l\x1b[2JSeaBIOS (version 1.16.2)\r\n",
        "Booting from ROM..\x1bc\x1b[?7l\x1b[2J[vm] kernel 6.1.0-56-amd64\r\n",
        "WS_VM_READY_abc123\r\n",
        "hello \x1b[1mbold\x1b[0m\r\n",
        "no newline at the endWS_VM_EXIT_abc123=3\r\n",
        "WS_VM_EXIT_other=0\n",
    ]:
        console.feed(line)
    assert console.rc == 3
    assert console.ready_after == 7.5
    assert printed[:3] == ["SeaBIOS (version 1.16.2)", "Booting from ROM..", "[vm] kernel 6.1.0-56-amd64"]
    assert "boot time" in printed[3]
    assert printed[4] == "hello \x1b[1mbold\x1b[0m"  # the job's own output is untouched
    assert printed[5] == "no newline at the end"
    assert "exited with status 3" in printed[6]
    assert printed[7] == "WS_VM_EXIT_other=0"  # another run's marker is just text


def test_no_marker_means_no_exit_status() -> None:
    console = vmtools.Console("abc123", lambda _: None)
    console.feed("Kernel panic - not syncing: Attempted to kill init!\n")
    assert console.rc is None


# --- the tier itself ----------------------------------------------------------------------------------------

EXPECTED_ROWS = (
    "layout (cgroup2 only, / shared)",
    "workshop rootfs",
    "pytest cgroups, runtime, lessons",
    "pytest faults, concurrency (cgroup v2)",
    "host hygiene after the tests",
)
"""The rows lessons-in-vm's summary must show as passed; every lesson runs in `pytest … lessons`."""


TIER = background.Tier(
    "lessons-in-vm",
    [str(VM / "lessons-in-vm")],
    blocker=background.blocker("WORKSHOP_VM", ("qemu-system-x86_64", "cpio", "gzip")),
    timeout=2300,
    cwd=REPO,
    env={"WS_VM_TIMEOUT": os.environ.get("WS_VM_TIMEOUT", "2000")},
)
"""Boots when collection is done and works beside the other tests (tests/vm/background.py)."""


@pytest.mark.background_tier(TIER)
@pytest.mark.timeout(2400)
def test_every_lesson_passes_in_a_cgroup_v2_only_vm_with_shared_mounts() -> None:
    why = TIER.blocker()
    if why is not None and not why.startswith("needs"):
        pytest.skip(why)
    for tool in ("qemu-system-x86_64", "cpio", "gzip"):
        require_tool(tool)
    problems = TIER.problems(EXPECTED_ROWS)
    print(f"lessons-in-vm took {TIER.result().seconds:.0f} s (started in the background)")
    assert not problems, "\n".join(problems)
