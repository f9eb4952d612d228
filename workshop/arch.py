"""What differs between CPU architectures, in one place.

System call numbers come from libseccomp (through pyseccomp), which carries the table of every architecture the
kernel runs on: `pivot_root` is 155 on x86_64 and 41 on arm64, `read` 0 and 63, and arm64 has no `mkdir` at all,
only `mkdirat`. Code that makes a system call by number (one the C library has no wrapper for) asks here, and
an architecture or a call that libseccomp does not know is an error that names both, never a wrong number.
"""

from __future__ import annotations

import platform

MACHINES = {"x86_64": "X86_64", "amd64": "X86_64", "aarch64": "AARCH64", "arm64": "AARCH64", "riscv64": "RISCV64"}
"""`uname -m` spellings → libseccomp's architecture names."""


class ArchError(RuntimeError):
    """A system call number this architecture does not have, or that cannot be looked up here."""


def machine() -> str:
    return platform.machine()


def syscall_number(name: str, arch: str | None = None) -> int:
    """The number of system call `name` on `arch` (`uname -m` spelling; this machine's by default)."""
    arch = arch or machine()
    try:
        import pyseccomp  # loads libseccomp: only when a number is needed
    except (ImportError, OSError) as exc:
        raise ArchError(f"cannot look up system call {name!r}: libseccomp is not available ({exc})") from exc
    if arch not in MACHINES:
        raise ArchError(f"cannot look up system call {name!r}: unknown architecture {arch!r}")
    number = pyseccomp.resolve_syscall(getattr(pyseccomp.Arch, MACHINES[arch]), name)
    if number < 0:  # libseccomp's pseudo numbers stand for calls the architecture does not have
        raise ArchError(f"{name!r} is not a system call on {arch}")
    return int(number)
