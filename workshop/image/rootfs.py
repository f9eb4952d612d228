"""The container image: a busybox root filesystem built offline, or an image imported and checked.

An image is a plain tarball, like `docker export` output. Nothing here trusts an archive: a rootfs tarball
unpacked naively as root is the classic way to overwrite the host (a `../` name, a file written "inside" a
symlink that points at /etc, a hard link that follows a symlink out of the tree). So every member is checked
against the rules in `image_rules` before it is kept, the cleaned image is re-packed, and it is checked again
before it is extracted.

This module imports (from a tarball or a directory) and extracts; building the default image is in
`busybox_image`, the image tarball's reading and writing in `image_tar`. The names callers use are all here.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from workshop.image.busybox import INSTALL_HINT as INSTALL_HINT
from workshop.image.busybox import RootfsError as RootfsError
from workshop.image.busybox import find_static_busybox as find_static_busybox
from workshop.image.busybox import is_static_elf as is_static_elf
from workshop.image.busybox_image import build_busybox_image as build_busybox_image
from workshop.image.rules import TRUSTED_SOURCES, ImageRules
from workshop.image.tar import (
    READ_ERRORS,
    ImageWriter,
    SourceData,
    Unreadable,
    atomic_image,
    open_tar,
    read_members,
    unreadable_error,
)
from workshop.image.tar import ImageInfo as ImageInfo

_HAS_EXTRACTION_FILTERS = hasattr(tarfile, "fully_trusted_filter")


# --- copying a source through the rules ---------------------------------------------------------------


def _copy_tarball(source: Path, image: ImageWriter, rules: ImageRules) -> None:
    with open_tar(source) as tar:
        for member in read_members(tar):
            clean = rules.admit(member)
            if clean is None:
                continue
            data = tar.extractfile(member) if clean.isreg() else None
            if clean.isreg() and data is None:
                raise Unreadable(f"no data for {member.name!r}")
            image.add(clean, SourceData(data, clean.size) if data is not None else None)


def _unreadable_path(path: Path, exc: OSError) -> RootfsError:
    return RootfsError(f"Cannot read {path}: {exc.strerror or exc}. Run as root, or fix its permissions.")


def _walk_tree(root: Path) -> Iterator[tuple[Path, str, os.stat_result]]:
    """Every path under `root` as (path, name in the image, lstat), parents first, sorted, never following a
    symlink: a link to /etc inside the tree is a member, not an invitation to copy the host's /etc."""
    pending: list[tuple[Path, str]] = [(root, "")]
    while pending:
        directory, prefix = pending.pop()
        try:
            with os.scandir(directory) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
            found = [(Path(e.path), prefix + e.name, e.stat(follow_symlinks=False)) for e in entries]
        except OSError as exc:
            raise _unreadable_path(directory, exc) from exc
        yield from found
        pending.extend((path, name + "/") for path, name, st in reversed(found) if stat.S_ISDIR(st.st_mode))


def _info_from_stat(
    path: Path, name: str, st: os.stat_result, first_names: dict[tuple[int, int], str]
) -> tarfile.TarInfo | None:
    info = tarfile.TarInfo(name)
    mode = st.st_mode
    info.mode, info.uid, info.gid, info.mtime = stat.S_IMODE(mode), st.st_uid, st.st_gid, int(st.st_mtime)
    if stat.S_ISREG(mode):
        first = first_names.setdefault((st.st_dev, st.st_ino), name)
        if first != name:
            info.type, info.linkname = tarfile.LNKTYPE, first
        else:
            info.type, info.size = tarfile.REGTYPE, st.st_size
    elif stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(mode):
        info.type = tarfile.SYMTYPE
        try:
            info.linkname = os.readlink(path)
        except OSError as exc:
            raise _unreadable_path(path, exc) from exc
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    else:
        return None  # a socket is a leftover of a running system, not part of an image
    return info


def _open_regular(path: Path, st: os.stat_result) -> IO[bytes]:
    # O_NOFOLLOW and the inode check: the file must still be the one that was checked, not a symlink or
    # something else swapped in since.
    try:
        f = os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK), "rb")
    except OSError as exc:
        raise _unreadable_path(path, exc) from exc
    now = os.fstat(f.fileno())
    if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
        f.close()
        raise _changed_error(path)
    return f


def _changed_error(path: Path) -> RootfsError:
    return RootfsError(f"{path} changed while it was being imported; stop whatever writes there, and retry.")


def _copy_directory(source: Path, image: ImageWriter, rules: ImageRules) -> None:
    first_names: dict[tuple[int, int], str] = {}
    for path, name, st in _walk_tree(source):
        info = _info_from_stat(path, name, st, first_names)
        clean = rules.admit(info) if info is not None else None
        if clean is None:
            continue
        if not clean.isreg():
            image.add(clean)
            continue
        with _open_regular(path, st) as f:
            try:
                image.add(clean, SourceData(f, clean.size))
            except Unreadable:
                raise _changed_error(path) from None


# --- importing and extracting -------------------------------------------------------------------------


def import_image(source: Path, dest: Path) -> ImageInfo:
    """Check every member of `source` (a tarball, possibly compressed, or a directory holding a root
    filesystem) and write a clean, re-packed tarball at `dest`. On any rejection nothing is left behind."""
    label = source.name or str(source)
    if not source.exists():
        raise RootfsError(
            f"{source} not found. Give the path of a rootfs tarball (such as `docker export` output or an "
            "Alpine minirootfs) or of a directory holding a root filesystem."
        )
    if not (source.is_dir() or source.is_file()):
        raise RootfsError(f"{source} is neither a tarball nor a directory. {TRUSTED_SOURCES}")
    rules = ImageRules(label, "import")
    try:
        with atomic_image(dest) as image:
            if source.is_dir():
                _copy_directory(source, image, rules)
            else:
                _copy_tarball(source, image, rules)
            rules.require_shell()
            rules.require_links_inside()
    except Unreadable as exc:
        raise unreadable_error(label, exc) from None
    return ImageInfo(dest, image.members, image.size, str(source))


def _require_empty_or_missing(dest: Path) -> None:
    # Files already in `dest` could be symlinks that would redirect the extraction onto the host.
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise RootfsError(
            f"{dest} already exists and is not an empty directory; extract the image into a new or empty "
            "directory (remove the old rootfs first)."
        )


def _admitted_members(tar: tarfile.TarFile, rules: ImageRules) -> list[tarfile.TarInfo]:
    kept: list[tarfile.TarInfo] = []
    for member in read_members(tar):
        clean = rules.admit(member)
        if clean is not None:
            # Extract under the checked names, which are the ones the rules reasoned about.
            member.name, member.linkname = clean.name, clean.linkname
            kept.append(member)
    return kept


def _discard(dest: Path, created: bool) -> None:
    if created:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _extract_members(tar: tarfile.TarFile, members: list[tarfile.TarInfo], dest: Path, label: str) -> None:
    created = not dest.exists()
    try:
        dest.mkdir(parents=True, exist_ok=True)
        # Full trust is deliberate and safe here: every member passed the rules above. The 'data' filter
        # would reject any real rootfs (absolute symlinks, setuid files, devices).
        if _HAS_EXTRACTION_FILTERS:
            tar.extractall(dest, members, numeric_owner=True, filter="fully_trusted")
        else:
            tar.extractall(dest, members, numeric_owner=True)
    except READ_ERRORS as exc:
        _discard(dest, created)
        raise RootfsError(
            f"Could not extract {label} into {dest}: {exc}. Device nodes and owners need root; check free "
            "space, and rebuild or re-import the image if it is damaged."
        ) from exc


def extract_image(image: Path, dest: Path) -> None:
    """Unpack an image made by `build_busybox_image` or `import_image` into `dest` (new or empty), keeping
    modes, numeric owners and symlinks exactly, after checking every member again."""
    label = image.name or str(image)
    if not image.is_file():
        raise RootfsError(f"No image at {image}; build one with `workshop rootfs` (or import: --from PATH).")
    _require_empty_or_missing(dest)
    rules = ImageRules(label, "extract")
    try:
        with open_tar(image) as tar:
            members = _admitted_members(tar, rules)
            rules.require_shell()
            rules.require_links_inside()
            _extract_members(tar, members, dest, label)
    except Unreadable as exc:
        raise unreadable_error(label, exc) from None
