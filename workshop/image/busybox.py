"""Finding a busybox that can live in an empty image: statically linked, so it needs nothing from the host.

Apart from the image code (`rootfs`, `busybox_image`, `image_tar`: they pull in tarfile and the decompressors) so
that `doctor`, and with it `workshop list`, can ask "is there a usable busybox?" without loading all of that.
"""

from __future__ import annotations

import shutil
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import IO

INSTALL_HINT = "install it with: apt-get install busybox-static"

_ET_EXEC, _ET_DYN = 2, 3
_PT_INTERP = 3


class RootfsError(Exception):
    """A clear, actionable, one-paragraph message for the learner (what is wrong, and how to fix it)."""


def is_static_elf(path: Path) -> bool:
    """True for an ELF executable without a PT_INTERP header: it needs no dynamic loader or libc from the
    host, so it runs in an image that holds nothing else."""
    try:
        with path.open("rb") as f:
            return _elf_is_static(f)
    except (OSError, struct.error):
        return False


def _elf_is_static(f: IO[bytes]) -> bool:
    ident = f.read(16)
    if len(ident) != 16 or ident[:4] != b"\x7fELF" or ident[4] not in (1, 2) or ident[5] not in (1, 2):
        return False
    order = "<" if ident[5] == 1 else ">"
    word = "I" if ident[4] == 1 else "Q"
    layout = f"{order}HHI{word}{word}{word}IHHHHHH"
    fields = struct.unpack(layout, f.read(struct.calcsize(layout)))
    e_type, phoff, phentsize, phnum = fields[0], fields[4], fields[8], fields[9]
    if e_type not in (_ET_EXEC, _ET_DYN) or phentsize < 4 or phnum == 0:
        return False
    for index in range(phnum):
        f.seek(phoff + index * phentsize)
        (p_type,) = struct.unpack(f"{order}I", f.read(4))
        if p_type == _PT_INTERP:
            return False
    return True


def _default_busybox_candidates() -> list[Path]:
    found = shutil.which("busybox")
    paths = [Path(found)] if found else []
    paths += [Path("/bin/busybox"), Path("/usr/bin/busybox")]
    return list(dict.fromkeys(paths))


def find_static_busybox(candidates: Sequence[Path] | None = None) -> Path:
    """The first candidate that is a statically linked busybox; RootfsError with the apt hint otherwise."""
    paths = list(candidates) if candidates is not None else _default_busybox_candidates()
    dynamic: list[Path] = []
    for path in paths:
        if not path.is_file():
            continue
        if is_static_elf(path):
            return path
        dynamic.append(path)
    if dynamic:
        raise RootfsError(
            f"busybox at {', '.join(map(str, dynamic))} is dynamically linked: it needs the host's C "
            "library, which the container image does not have, so every command in the container would "
            f"fail with 'not found'. The image needs the statically linked build; {INSTALL_HINT}"
        )
    looked = ", ".join(map(str, paths)) or "nowhere (no candidates given)"
    raise RootfsError(
        f"No busybox found (looked at {looked}). The default container image is built from a statically "
        f"linked busybox; {INSTALL_HINT}"
    )
