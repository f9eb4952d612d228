"""The container image: a busybox root filesystem built offline, or an image imported and checked.

An image is a plain tarball, like `docker export` output. Nothing here trusts an archive: a rootfs tarball
unpacked naively as root is the classic way to overwrite the host (a `../` name, a file written "inside" a
symlink that points at /etc, a hard link that follows a symlink out of the tree). So every member is checked
against the rules in `_ImageRules` before it is kept, the cleaned image is re-packed, and it is checked again
before it is extracted.
"""

from __future__ import annotations

import io
import lzma
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from workshop.busybox import INSTALL_HINT as INSTALL_HINT
from workshop.busybox import RootfsError as RootfsError
from workshop.busybox import find_static_busybox as find_static_busybox
from workshop.busybox import is_static_elf as is_static_elf
from workshop.processes import run

TRUSTED_SOURCES = (
    "Use an image you trust, such as `docker export` output or an Alpine minirootfs, "
    "or build the default busybox image with `workshop rootfs`."
)
# Any fixed time will do: it only has to be the same on every build so rebuilding gives the same bytes.
FIXED_MTIME = 946_684_800  # 2000-01-01T00:00:00Z

_MAX_SYMLINK_HOPS = 40  # the kernel's own limit, so the check agrees with what the container will see
# Everything that reading a damaged or foreign archive can raise, from tarfile and the decompressors.
_READ_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError)
_HAS_EXTRACTION_FILTERS = hasattr(tarfile, "fully_trusted_filter")

_Kind = Literal["dir", "file", "symlink", "device", "fifo"]


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


def _require_static(busybox: Path) -> Path:
    if not busybox.is_file():
        raise RootfsError(f"{busybox} does not exist; {INSTALL_HINT}, or pass the path of a static busybox.")
    return find_static_busybox([busybox])


def _run_busybox(busybox: Path, *args: str) -> str:
    try:
        result = run([str(busybox), *args])
    except OSError as exc:  # exec itself failed: not an executable for this machine
        raise RootfsError(f"Cannot run {busybox}: {exc.strerror or exc}; {INSTALL_HINT}") from exc
    if not result.ok:
        detail = result.stderr.strip() or f"exit status {result.returncode}"
        raise RootfsError(
            f"`{busybox} {' '.join(args)}` failed ({detail}); this busybox is broken or too old to build an "
            f"image from; {INSTALL_HINT}"
        )
    return result.stdout


def _busybox_applets(busybox: Path) -> list[str]:
    """Where each applet lives (`usr/bin/awk`, …), as busybox itself says, so the image matches its build."""
    applets = sorted({line.strip() for line in _run_busybox(busybox, "--list-full").splitlines()} - {""})
    for applet in applets:
        try:
            clean = _normalized(applet)
        except _Violation:
            clean = ""
        if clean != applet:
            raise RootfsError(f"`{busybox} --list-full` lists an odd path {applet!r}; {INSTALL_HINT}")
    if "bin/sh" not in applets:
        raise RootfsError(
            f"{busybox} was built without the `sh` applet, and every lesson starts a shell in the container; "
            f"{INSTALL_HINT}"
        )
    return [applet for applet in applets if applet != "bin/busybox"]


def _busybox_version(busybox: Path) -> str:
    # Only a label for ImageInfo and os-release: an odd banner must not stop the build.
    try:
        banner = run([str(busybox)])
    except OSError:
        return "(unknown version)"
    match = re.search(r"BusyBox v(\S+)", banner.stdout + banner.stderr)
    return match.group(1) if match else "(unknown version)"


# --- building the default image -----------------------------------------------------------------------

_DIR_MODES = {
    "bin": 0o755,
    "sbin": 0o755,
    "usr/bin": 0o755,
    "usr/sbin": 0o755,
    "etc": 0o755,
    "proc": 0o755,
    "sys": 0o755,
    "dev": 0o755,
    "tmp": 0o1777,
    "root": 0o700,
    "var/tmp": 0o1777,
    "mnt": 0o755,
    "srv": 0o755,
}


def _etc_files(version: str) -> dict[str, bytes]:
    return {
        "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        "etc/group": b"root:x:0:\nnobody:x:65534:\n",
        "etc/hostname": b"container\n",
        "etc/os-release": (
            'NAME="workshop busybox image"\nID=workshop\n'
            f'VERSION_ID="{version}"\nPRETTY_NAME="workshop busybox image (BusyBox {version})"\n'
        ).encode(),
    }


def _applet_link(applet: str) -> str:
    # Relative, so the link also works from the host side, e.g. when a lesson lists the unpacked rootfs.
    if applet.startswith("bin/") and applet.count("/") == 1:
        return "busybox"
    return "../" * applet.count("/") + "bin/busybox"


def _root_owned(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _busybox_entries(busybox: Path, applets: list[str], version: str) -> list[tuple[tarfile.TarInfo, bytes]]:
    files = {"bin/busybox": (busybox.read_bytes(), 0o755)}
    files.update({name: (data, 0o644) for name, data in _etc_files(version).items()})
    links = {applet: _applet_link(applet) for applet in applets if applet not in files}
    dirs = dict(_DIR_MODES)
    for name in [*files, *links, *_DIR_MODES]:
        for parent in _ancestors(name):
            dirs.setdefault(parent, 0o755)
    entries: list[tuple[tarfile.TarInfo, bytes]] = []
    for name in sorted({*dirs, *files, *links}):
        if name in files:
            data, mode = files[name]
            info = _root_owned(name, tarfile.REGTYPE, mode)
            info.size = len(data)
            entries.append((info, data))
        elif name in links:
            info = _root_owned(name, tarfile.SYMTYPE, 0o777)
            info.linkname = links[name]
            entries.append((info, b""))
        else:
            entries.append((_root_owned(name, tarfile.DIRTYPE, dirs[name]), b""))
    return entries


def build_busybox_image(dest: Path, busybox: Path | None = None) -> ImageInfo:
    """Write the default image at `dest`, offline and reproducibly: a static busybox, its applet links and a
    minimal /etc, all owned by root."""
    binary = find_static_busybox() if busybox is None else _require_static(busybox)
    applets = _busybox_applets(binary)
    version = _busybox_version(binary)
    entries = _busybox_entries(binary, applets, version)
    with _atomic_image(dest) as image:
        for info, data in entries:
            image.add(info, io.BytesIO(data) if info.isreg() else None)
    return ImageInfo(dest, image.members, image.size, f"busybox {version}")


# --- the rules every member must pass -----------------------------------------------------------------


class _Violation(Exception):
    """A broken rule, worded to follow "member 'NAME' …"."""


class _Unreadable(Exception):
    """The source archive is damaged or is not a tar archive at all."""


def _ancestors(name: str) -> list[str]:
    parts = name.split("/")
    return ["/".join(parts[:depth]) for depth in range(1, len(parts))]


def _normalized(raw: str) -> str:
    """The member's path inside the image ('' for the image root), or _Violation."""
    if not raw or "\x00" in raw:
        raise _Violation("has an empty name or a NUL byte in its name")
    if raw.startswith("/"):
        raise _Violation("has an absolute path (an image stores paths relative to its root)")
    parts = [part for part in raw.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise _Violation("climbs out of the image ('..')")
    return "/".join(parts)


def _kind_of(member: tarfile.TarInfo) -> _Kind:
    if member.isreg() or member.islnk():
        return "file"
    if member.isdir():
        return "dir"
    if member.issym():
        return "symlink"
    if member.ischr() or member.isblk():
        return "device"
    if member.isfifo():
        return "fifo"
    raise _Violation(f"has an entry type that has no place in a rootfs (tar type {member.type!r})")


def _check_symlink_target(name: str, target: str) -> None:
    if not target or "\x00" in target:
        raise _Violation("is a symlink with an empty target")
    if target.startswith("/"):
        return  # inside the container it resolves against the container's own root
    depth = name.count("/")  # directories between the image root and the link
    for part in target.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                raise _Violation(f"is a symlink to {target!r}, which leads out of the image")
        elif part not in ("", "."):
            depth += 1


def _clean_copy(member: tarfile.TarInfo, name: str, linkname: str) -> tarfile.TarInfo:
    # A fresh header, not a copy: the source's pax headers (a `path` record, xattrs) would otherwise be
    # written back and override the clean name.
    clean = tarfile.TarInfo(name)
    clean.type = tarfile.REGTYPE if member.isreg() else member.type
    clean.size = member.size if member.isreg() else 0
    clean.linkname = linkname
    clean.mode, clean.mtime = member.mode, member.mtime
    clean.uid, clean.gid, clean.uname, clean.gname = member.uid, member.gid, member.uname, member.gname
    clean.devmajor, clean.devminor = member.devmajor, member.devminor
    return clean


class _ImageRules:
    """Checks members one by one, remembering the earlier ones: whether a path goes through a symlink or a
    hard link points at a real file depends on what came before it."""

    def __init__(self, label: str, verb: str) -> None:
        self._label = label
        self._verb = verb
        self._kinds: dict[str, _Kind] = {}
        self._symlinks: dict[str, str] = {}

    def admit(self, member: tarfile.TarInfo) -> tarfile.TarInfo | None:
        """A clean copy of `member` to keep, None for the image root itself; RootfsError naming the member
        and the rule if it breaks one."""
        try:
            return self._admit(member)
        except _Violation as rule:
            raise RootfsError(
                f"{self._label}: member {member.name!r} {rule}; refusing to {self._verb}. {TRUSTED_SOURCES}"
            ) from None

    def _admit(self, member: tarfile.TarInfo) -> tarfile.TarInfo | None:
        name = _normalized(member.name)
        if not name:
            if not member.isdir():
                raise _Violation("stands for the image root but is not a directory")
            return None
        kind = _kind_of(member)
        self._check_parents(name)
        self._check_not_replacing(name, kind)
        linkname = member.linkname
        if member.issym():
            _check_symlink_target(name, linkname)
            self._symlinks[name] = linkname
        elif member.islnk():
            linkname = self._hardlink_target(linkname)
        elif kind == "device" and not name.startswith("dev/"):
            raise _Violation("is a device node outside dev/ (device nodes belong only in dev/)")
        for parent in _ancestors(name):
            self._kinds.setdefault(parent, "dir")
        self._kinds[name] = kind
        return _clean_copy(member, name, linkname)

    def _check_parents(self, name: str) -> None:
        for parent in _ancestors(name):
            kind = self._kinds.get(parent)
            if kind == "symlink":
                raise _Violation(
                    f"goes through the symlink {parent!r}; extracting it would write wherever that link "
                    "points, which can be on the host"
                )
            if kind not in (None, "dir"):
                raise _Violation(f"is inside {parent!r}, which is not a directory")

    def _check_not_replacing(self, name: str, kind: _Kind) -> None:
        # A second entry replaces the first when extracted; a file written over a symlink lands wherever the
        # link points. Only a directory listed twice is harmless.
        earlier = self._kinds.get(name)
        if earlier is not None and not (earlier == kind == "dir"):
            raise _Violation(f"appears twice (first as a {earlier}); the later entry would replace it")

    def _hardlink_target(self, raw: str) -> str:
        try:
            target = _normalized(raw)
        except _Violation:
            raise _Violation(f"is a hard link to {raw!r}, which is outside the image") from None
        # Only a regular file: linking to a symlink would make tar hard-link whatever the symlink points at.
        if self._kinds.get(target) != "file":
            raise _Violation(f"is a hard link to {raw!r}, which is not an earlier regular file in the image")
        return target

    def require_shell(self) -> None:
        """RootfsError unless /bin/sh exists, following the image's own links (`bin -> usr/bin` is common)."""
        shell = self._resolve_parents("bin/sh")
        if shell is None or self._kinds.get(shell) not in ("file", "symlink"):
            raise RootfsError(
                f"{self._label} has no /bin/sh (neither a file nor a symlink), and every lesson starts a "
                "shell inside the container. Use an image that has one (an Alpine minirootfs, or `docker "
                "export` of a container that has a shell), or build the default busybox image with "
                "`workshop rootfs`."
            )

    def require_links_inside(self) -> None:
        """RootfsError for a relative symlink that leads out of the image through other links, as the host
        resolves it (`a -> d/l/../..` with `d/l -> ..`): each link passed on its own, the chain does not."""
        for name, target in self._symlinks.items():
            via = self._escape_route(name)
            if via is not None:
                raise RootfsError(
                    f"{self._label}: member {name!r} is a symlink to {target!r}, which leads out of the image "
                    f"through the symlink {via!r}; refusing to {self._verb}. {TRUSTED_SOURCES}"
                )

    def _escape_route(self, name: str) -> str | None:
        """The last symlink followed on the way out of the image, or None if `name` stays inside."""
        resolved = name.split("/")[:-1]
        pending = self._symlinks[name].split("/")
        if pending[0] == "":
            return None  # absolute: the container's own root (the rule for every absolute link)
        via = name
        hops = 0
        while pending:
            part = pending.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if not resolved:
                    return via
                resolved.pop()
                continue
            here = "/".join([*resolved, part])
            link = self._symlinks.get(here)
            if link is None:
                resolved.append(part)
                continue
            hops += 1
            if hops > _MAX_SYMLINK_HOPS or link.startswith("/"):
                return None  # a loop ends in ELOOP; an absolute link is allowed anyway
            via = here
            pending = link.split("/") + pending
        return None

    def _resolve_parents(self, name: str) -> str | None:
        *pending, last = name.split("/")
        resolved: list[str] = []
        hops = 0
        while pending:
            part = pending.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                resolved = resolved[:-1]
                continue
            here = "/".join([*resolved, part])
            if self._kinds.get(here) == "dir":
                resolved.append(part)
            elif here in self._symlinks and hops < _MAX_SYMLINK_HOPS:
                hops += 1
                target = self._symlinks[here]
                resolved = [] if target.startswith("/") else resolved
                pending = target.split("/") + pending
            else:
                return None
        return "/".join([*resolved, last])


# --- writing an image atomically ----------------------------------------------------------------------


class _ImageWriter:
    """Adds members to the tarball being written and counts them for ImageInfo."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self._tar = tar
        self.members = 0
        self.size = 0

    def add(self, info: tarfile.TarInfo, data: _SourceData | IO[bytes] | None = None) -> None:
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
def _atomic_image(dest: Path) -> Iterator[_ImageWriter]:
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
                yield _ImageWriter(tar)
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


# --- reading sources ----------------------------------------------------------------------------------


class _SourceData:
    """One member's bytes. A short or failing read means a damaged source, and is raised as _Unreadable so
    it is never mistaken for a failure to write the image."""

    def __init__(self, inner: IO[bytes], size: int) -> None:
        self._inner = inner
        self._left = size

    def read(self, size: int = -1, /) -> bytes:
        wanted = self._left if size < 0 else min(size, self._left)
        try:
            chunk = self._inner.read(wanted)
        except _READ_ERRORS as exc:
            raise _Unreadable(str(exc) or type(exc).__name__) from exc
        if len(chunk) < wanted:
            raise _Unreadable("unexpected end of data")
        self._left -= len(chunk)
        return chunk


def _open_tar(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, "r:*")
    except tarfile.ReadError as exc:  # its text lists every method tried, one per line
        raise _Unreadable("no tar archive, plain or gzip/bzip2/xz-compressed, could be read") from exc
    except _READ_ERRORS as exc:
        raise _Unreadable(str(exc) or type(exc).__name__) from exc


def _read_members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    while True:
        try:
            member = tar.next()
        except _READ_ERRORS as exc:
            raise _Unreadable(str(exc) or type(exc).__name__) from exc
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
    except _READ_ERRORS as exc:
        raise _Unreadable(str(exc) or type(exc).__name__) from exc
    if block != tarfile.NUL * tarfile.BLOCKSIZE:
        raise _Unreadable("it stops before the end-of-archive marker")
    # Reading on to the end is what makes gzip check its CRC: a flipped bit in a member's data would otherwise
    # be imported without a word, since tar stops at the marker.
    try:
        while tar.fileobj.read(1 << 16):
            pass
    except _READ_ERRORS as exc:
        raise _Unreadable(str(exc) or type(exc).__name__) from exc


def _unreadable_error(label: str, exc: _Unreadable) -> RootfsError:
    return RootfsError(
        f"{label} is truncated, damaged or not a tar archive ({exc}). Download or export it again; an image is a "
        "tarball (plain, .gz, .bz2 or .xz) or a directory holding a root filesystem."
    )


def _copy_tarball(source: Path, image: _ImageWriter, rules: _ImageRules) -> None:
    with _open_tar(source) as tar:
        for member in _read_members(tar):
            clean = rules.admit(member)
            if clean is None:
                continue
            data = tar.extractfile(member) if clean.isreg() else None
            if clean.isreg() and data is None:
                raise _Unreadable(f"no data for {member.name!r}")
            image.add(clean, _SourceData(data, clean.size) if data is not None else None)


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


def _copy_directory(source: Path, image: _ImageWriter, rules: _ImageRules) -> None:
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
                image.add(clean, _SourceData(f, clean.size))
            except _Unreadable:
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
    rules = _ImageRules(label, "import")
    try:
        with _atomic_image(dest) as image:
            if source.is_dir():
                _copy_directory(source, image, rules)
            else:
                _copy_tarball(source, image, rules)
            rules.require_shell()
            rules.require_links_inside()
    except _Unreadable as exc:
        raise _unreadable_error(label, exc) from None
    return ImageInfo(dest, image.members, image.size, str(source))


def _require_empty_or_missing(dest: Path) -> None:
    # Files already in `dest` could be symlinks that would redirect the extraction onto the host.
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise RootfsError(
            f"{dest} already exists and is not an empty directory; extract the image into a new or empty "
            "directory (remove the old rootfs first)."
        )


def _admitted_members(tar: tarfile.TarFile, rules: _ImageRules) -> list[tarfile.TarInfo]:
    kept: list[tarfile.TarInfo] = []
    for member in _read_members(tar):
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
    except _READ_ERRORS as exc:
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
    rules = _ImageRules(label, "extract")
    try:
        with _open_tar(image) as tar:
            members = _admitted_members(tar, rules)
            rules.require_shell()
            rules.require_links_inside()
            _extract_members(tar, members, dest, label)
    except _Unreadable as exc:
        raise _unreadable_error(label, exc) from None
