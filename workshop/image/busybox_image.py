"""The default image, built offline and reproducibly from the host's static busybox.

Busybox itself says where each applet lives (`--list-full`), so the image matches its build; everything is owned
by root and carries one fixed time, so rebuilding gives the same bytes.
"""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

from workshop.engine.processes import run
from workshop.image.busybox import INSTALL_HINT, RootfsError, find_static_busybox
from workshop.image.rules import Violation, ancestors, normalized
from workshop.image.tar import ImageInfo, atomic_image

# Any fixed time will do: it only has to be the same on every build so rebuilding gives the same bytes.
FIXED_MTIME = 946_684_800  # 2000-01-01T00:00:00Z


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
            clean = normalized(applet)
        except Violation:
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
        for parent in ancestors(name):
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
    with atomic_image(dest) as image:
        for info, data in entries:
            image.add(info, io.BytesIO(data) if info.isreg() else None)
    return ImageInfo(dest, image.members, image.size, f"busybox {version}")
