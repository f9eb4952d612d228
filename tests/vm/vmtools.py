"""Host-side helpers for `tests/vm/run-in-vm`: which kernel package, which modules in which order, and the
serial console (printed live, scanned for the guest's exit-status marker).

Pure functions first (unit-tested in tests/live/test_vm_tier.py), then a small command line the bash script calls:

    vmtools.py kernel-package < output-of-apt-cache-depends
    vmtools.py is-static FILE                          # exit 0 if FILE is a static x86-64 ELF
    vmtools.py modules MODULE_DIR OUT_DIR NAME...      # copies NAME and its dependencies, prints the load order
    vmtools.py console NONCE RC_FILE [LOG_FILE]        # stdin: the VM's console
"""

from __future__ import annotations

import gzip
import lzma
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

_KERNEL_DEP = re.compile(r"^\s*Depends:\s*(linux-image-(\d+(?:\.\d+)*)-(\d+)-amd64)\s*$")
_MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.gz", ".ko.zst")
# The firmware clears the screen and turns off line wrapping on the host's terminal: drop escape sequences
# until the guest is ready (the job's own output is passed through untouched).
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_]|c)")


def kernel_package(apt_cache_depends: str) -> str | None:
    """The newest `linux-image-<version>-<abi>-amd64` that `apt-cache depends linux-image-amd64` names.

    Newest by (kernel version, ABI number) compared as numbers, so 6.1.0-100 beats 6.1.0-56.
    """
    best: tuple[tuple[int, ...], str] | None = None
    for line in apt_cache_depends.splitlines():
        m = _KERNEL_DEP.match(line)
        if not m:
            continue
        key = (*(int(x) for x in m.group(2).split(".")), int(m.group(3)))
        if best is None or key > best[0]:
            best = (key, m.group(1))
    return best[1] if best else None


def is_static_elf(head: bytes) -> bool:
    """True for a 64-bit little-endian ELF without a program interpreter (PT_INTERP): it runs with no libc
    around it, as the initramfs needs. `head` is the file's start (program headers included)."""
    if head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
        return False
    phoff = int.from_bytes(head[0x20:0x28], "little")
    phentsize = int.from_bytes(head[0x36:0x38], "little")
    phnum = int.from_bytes(head[0x38:0x3A], "little")
    for i in range(phnum):
        entry = head[phoff + i * phentsize : phoff + i * phentsize + 4]
        if len(entry) < 4:
            return False
        if int.from_bytes(entry, "little") == 3:  # PT_INTERP
            return False
    return True


def module_name(path: Path) -> str:
    """The kernel's name for a module file: `9pnet_virtio.ko.xz` → `9pnet_virtio` (dashes become underscores)."""
    name = path.name
    for suffix in _MODULE_SUFFIXES[::-1]:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.replace("-", "_")


def index_modules(module_dir: Path) -> dict[str, Path]:
    """Every module file below `module_dir` by its kernel name."""
    found: dict[str, Path] = {}
    for path in sorted(module_dir.rglob("*.ko*")):
        if path.name.endswith(_MODULE_SUFFIXES):
            found[module_name(path)] = path
    return found


def read_module(path: Path) -> bytes:
    """The uncompressed ELF of a module (busybox insmod cannot decompress)."""
    name = path.name
    if name.endswith(".xz"):
        return lzma.decompress(path.read_bytes())
    if name.endswith(".gz"):
        return gzip.decompress(path.read_bytes())
    if name.endswith(".zst"):
        return subprocess.run(["zstd", "-dc", str(path)], check=True, capture_output=True).stdout
    return path.read_bytes()


def module_depends(elf: bytes) -> list[str]:
    """The `depends=` field of a module's .modinfo section (what modules.dep is built from)."""
    for field in elf.split(b"\0"):
        if field.startswith(b"depends="):
            value = field[len(b"depends=") :].decode()
            return [d.replace("-", "_") for d in value.split(",") if d]
    return []


def load_order(wanted: Iterable[str], depends: Callable[[str], list[str]]) -> list[str]:
    """`wanted` and everything they depend on, each after its dependencies, otherwise in the order asked.

    Raises ValueError on a dependency cycle.
    """
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise ValueError(f"module dependency cycle through {name}")
        visiting.add(name)
        for dep in depends(name):
            visit(dep)
        visiting.discard(name)
        order.append(name)

    for name in wanted:
        visit(name.replace("-", "_"))
    return order


def copy_modules(module_dir: Path, out_dir: Path, wanted: list[str]) -> list[str]:
    """Uncompressed `<name>.ko` files for `wanted` and their dependencies in `out_dir`; returns the load order.

    Modules built into the kernel (listed in modules.builtin) are skipped, not an error.
    """
    index = index_modules(module_dir)
    builtin: set[str] = set()
    for listing in module_dir.rglob("modules.builtin"):
        builtin.update(module_name(Path(line.strip())) for line in listing.read_text().splitlines() if line.strip())
    elves: dict[str, bytes] = {}

    def depends(name: str) -> list[str]:
        if name in builtin:
            return []
        if name not in index:
            raise ValueError(f"module {name} is neither in {module_dir} nor built in")
        elves[name] = read_module(index[name])
        return module_depends(elves[name])

    order = [name for name in load_order(wanted, depends) if name not in builtin]
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in order:
        (out_dir / f"{name}.ko").write_bytes(elves[name])
    return order


class Console:
    """Follows the VM's serial console: each line is printed as it comes (CR removed), the marker lines the
    guest's init prints are recognized and turned into short host messages."""

    def __init__(self, nonce: str, out: Callable[[str], None], clock: Callable[[], float] = time.monotonic) -> None:
        self.exit_re = re.compile(rf"WS_VM_EXIT_{re.escape(nonce)}=(\d+)")
        self.ready = f"WS_VM_READY_{nonce}"
        self.out = out
        self.clock = clock
        self.start = clock()
        self.rc: int | None = None
        self.ready_after: float | None = None

    def feed(self, line: str) -> None:
        line = line.rstrip("\r\n").replace("\r", "")
        if self.ready_after is None and "\x1b" in line:
            parts = [_ESCAPES.sub("", part) for part in line.split("\x1bc")]  # ESC c resets the screen
            for part in parts[:-1]:
                if part.strip():
                    self.out(part)
            line = parts[-1]
        m = self.exit_re.search(line)
        if m:
            self.rc = int(m.group(1))
            before = line[: m.start()]
            if before.strip():
                self.out(before)
            self.out(
                f"[run-in-vm] the command exited with status {self.rc}, {self.clock() - self.start:.1f} s after start"
            )
            return
        if self.ready in line:
            self.ready_after = self.clock() - self.start
            before = line[: line.index(self.ready)]
            if before.strip():
                self.out(before)
            self.out(f"[run-in-vm] guest ready: {self.ready_after:.1f} s after qemu started (boot time)")
            return
        self.out(line)


def _console_main(nonce: str, rc_file: str, log_file: str | None) -> int:
    log = open(log_file, "w", encoding="utf-8") if log_file else None  # noqa: SIM115

    def out(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        if log:
            log.write(text + "\n")
            log.flush()

    console = Console(nonce, out)
    for raw in sys.stdin.buffer:
        console.feed(raw.decode("utf-8", "replace"))
    if log:
        log.close()
    if console.rc is not None:
        Path(rc_file).write_text(f"{console.rc}\n")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) >= 1 and argv[0] == "kernel-package":
        name = kernel_package(sys.stdin.read())
        if name is None:
            return 1
        print(name)
        return 0
    if len(argv) == 2 and argv[0] == "is-static":
        with open(argv[1], "rb") as f:
            return 0 if is_static_elf(f.read(65536)) else 1
    if len(argv) >= 3 and argv[0] == "modules":
        try:
            order = copy_modules(Path(argv[1]), Path(argv[2]), [n for a in argv[3:] for n in a.split(",") if n])
        except (ValueError, OSError, subprocess.CalledProcessError) as exc:
            print(f"vmtools: {exc}", file=sys.stderr)
            return 1
        print(" ".join(order))
        return 0
    if len(argv) in (3, 4) and argv[0] == "console":
        return _console_main(argv[1], argv[2], argv[3] if len(argv) == 4 else None)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
