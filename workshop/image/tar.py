"""The image tarball on disk: written atomically, and read so that damage is never taken for a whole archive.

Both building and importing write through `atomic_image`, so a failed or rejected image leaves nothing behind;
both importing and extracting read through `open_tar` and `read_members`, which raise `Unreadable` for a
damaged source, so it is never mistaken for a failure to write the image.
"""

from __future__ import annotations

import lzma
import os
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from workshop.image.busybox import RootfsError

# Everything that reading a damaged or foreign archive can raise, from tarfile and the decompressors.
READ_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError)


@dataclass(frozen=True)
class ImageInfo:
    path: Path
    """The tarball written."""
    members: int
    """Number of entries in it."""
    size: int
    """Bytes of regular file content."""
    source: str
    """`busybox <version>` for a built image, or the imported path."""


class Unreadable(Exception):
    """The source archive is damaged or is not a tar archive at all."""


# --- writing an image atomically ----------------------------------------------------------------------


class ImageWriter:
    """Adds members to the tarball being written and counts them for ImageInfo."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self._tar = tar
        self.members = 0
        self.size = 0

    def add(self, info: tarfile.TarInfo, data: SourceData | IO[bytes] | None = None) -> None:
        self._tar.addfile(info, data)
        self.members += 1
        if info.isreg():
            self.size += info.size


def _write_error(dest: Path, exc: OSError) -> RootfsError:
    return RootfsError(
        f"Could not write the image {dest}: {exc.strerror or exc}. Check that its directory is writable "
        "(run as root for the default location) and that the disk has space."
    )


def _missing_dirs(directory: Path) -> list[Path]:
    """`directory` and those of its parents that do not exist yet, deepest first: what to undo."""
    missing: list[Path] = []
    probe = directory
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    return missing


def _remove_empty(directories: list[Path]) -> None:
    for directory in directories:
        try:
            directory.rmdir()
        except OSError:
            return


@contextmanager
def atomic_image(dest: Path) -> Iterator[ImageWriter]:
    """Write into a temp file beside `dest` and rename it over `dest` only when complete, so a rejected or
    failed import leaves nothing behind and never damages an existing image."""
    created = _missing_dirs(dest.parent)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as exc:
        _remove_empty(created)
        raise _write_error(dest, exc) from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
                yield ImageWriter(tar)
            raw.flush()
            os.fsync(raw.fileno())
        tmp.chmod(0o644)
        os.replace(tmp, dest)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        _remove_empty(created)
        if isinstance(exc, OSError):
            raise _write_error(dest, exc) from exc
        raise


# --- reading a tarball, damage told apart -------------------------------------------------------------


class SourceData:
    """One member's bytes. A short or failing read means a damaged source, and is raised as Unreadable so
    it is never mistaken for a failure to write the image."""

    def __init__(self, inner: IO[bytes], size: int) -> None:
        self._inner = inner
        self._left = size

    def read(self, size: int = -1, /) -> bytes:
        wanted = self._left if size < 0 else min(size, self._left)
        try:
            chunk = self._inner.read(wanted)
        except READ_ERRORS as exc:
            raise Unreadable(str(exc) or type(exc).__name__) from exc
        if len(chunk) < wanted:
            raise Unreadable("unexpected end of data")
        self._left -= len(chunk)
        return chunk


def open_tar(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, "r:*")
    except tarfile.ReadError as exc:  # its text lists every method tried, one per line
        raise Unreadable("no tar archive, plain or gzip/bzip2/xz-compressed, could be read") from exc
    except READ_ERRORS as exc:
        raise Unreadable(str(exc) or type(exc).__name__) from exc


def read_members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    while True:
        try:
            member = tar.next()
        except READ_ERRORS as exc:
            raise Unreadable(str(exc) or type(exc).__name__) from exc
        if member is None:
            break
        yield member
    _require_end_marker(tar)


def _require_end_marker(tar: tarfile.TarFile) -> None:
    # tarfile treats an archive cut at a header boundary as a complete, shorter one. Every tar writer ends
    # with zero blocks, so their absence where the members stop means the file was cut.
    try:
        tar.fileobj.seek(tar.offset)
        block = tar.fileobj.read(tarfile.BLOCKSIZE)
    except READ_ERRORS as exc:
        raise Unreadable(str(exc) or type(exc).__name__) from exc
    if block != tarfile.NUL * tarfile.BLOCKSIZE:
        raise Unreadable("it stops before the end-of-archive marker")
    # Reading on to the end is what makes gzip check its CRC: a flipped bit in a member's data would otherwise
    # be imported without a word, since tar stops at the marker.
    try:
        while tar.fileobj.read(1 << 16):
            pass
    except READ_ERRORS as exc:
        raise Unreadable(str(exc) or type(exc).__name__) from exc


def unreadable_error(label: str, exc: Unreadable) -> RootfsError:
    return RootfsError(
        f"{label} is truncated, damaged or not a tar archive ({exc}). Download or export it again; an image is a "
        "tarball (plain, .gz, .bz2 or .xz) or a directory holding a root filesystem."
    )
