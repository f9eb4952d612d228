"""The rules every member of an image must pass, whether it comes from a tarball or a directory.

A rootfs tarball unpacked naively as root is the classic way to overwrite the host: a `../` name, a file written
"inside" a symlink that points at /etc, a hard link that follows a symlink out of the tree. `ImageRules` checks
members one by one, in order, and keeps a clean copy of each one that passes; it knows nothing of where the
members come from or where they go.
"""

from __future__ import annotations

import tarfile
from typing import Literal

from workshop.image.busybox import RootfsError

TRUSTED_SOURCES = (
    "Use an image you trust, such as `docker export` output or an Alpine minirootfs, "
    "or build the default busybox image with `workshop rootfs`."
)

_MAX_SYMLINK_HOPS = 40  # the kernel's own limit, so the check agrees with what the container will see

_Kind = Literal["dir", "file", "symlink", "device", "fifo"]


class Violation(Exception):
    """A broken rule, worded to follow "member 'NAME' …"."""


def ancestors(name: str) -> list[str]:
    parts = name.split("/")
    return ["/".join(parts[:depth]) for depth in range(1, len(parts))]


def normalized(raw: str) -> str:
    """The member's path inside the image ('' for the image root), or Violation."""
    if not raw or "\x00" in raw:
        raise Violation("has an empty name or a NUL byte in its name")
    if raw.startswith("/"):
        raise Violation("has an absolute path (an image stores paths relative to its root)")
    parts = [part for part in raw.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise Violation("climbs out of the image ('..')")
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
    raise Violation(f"has an entry type that has no place in a rootfs (tar type {member.type!r})")


def _check_symlink_target(name: str, target: str) -> None:
    if not target or "\x00" in target:
        raise Violation("is a symlink with an empty target")
    if target.startswith("/"):
        return  # inside the container it resolves against the container's own root
    depth = name.count("/")  # directories between the image root and the link
    for part in target.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                raise Violation(f"is a symlink to {target!r}, which leads out of the image")
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


class ImageRules:
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
        except Violation as rule:
            raise RootfsError(
                f"{self._label}: member {member.name!r} {rule}; refusing to {self._verb}. {TRUSTED_SOURCES}"
            ) from None

    def _admit(self, member: tarfile.TarInfo) -> tarfile.TarInfo | None:
        name = normalized(member.name)
        if not name:
            if not member.isdir():
                raise Violation("stands for the image root but is not a directory")
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
            raise Violation("is a device node outside dev/ (device nodes belong only in dev/)")
        for parent in ancestors(name):
            self._kinds.setdefault(parent, "dir")
        self._kinds[name] = kind
        return _clean_copy(member, name, linkname)

    def _check_parents(self, name: str) -> None:
        for parent in ancestors(name):
            kind = self._kinds.get(parent)
            if kind == "symlink":
                raise Violation(
                    f"goes through the symlink {parent!r}; extracting it would write wherever that link "
                    "points, which can be on the host"
                )
            if kind not in (None, "dir"):
                raise Violation(f"is inside {parent!r}, which is not a directory")

    def _check_not_replacing(self, name: str, kind: _Kind) -> None:
        # A second entry replaces the first when extracted; a file written over a symlink lands wherever the
        # link points. Only a directory listed twice is harmless.
        earlier = self._kinds.get(name)
        if earlier is not None and not (earlier == kind == "dir"):
            raise Violation(f"appears twice (first as a {earlier}); the later entry would replace it")

    def _hardlink_target(self, raw: str) -> str:
        try:
            target = normalized(raw)
        except Violation:
            raise Violation(f"is a hard link to {raw!r}, which is outside the image") from None
        # Only a regular file: linking to a symlink would make tar hard-link whatever the symlink points at.
        if self._kinds.get(target) != "file":
            raise Violation(f"is a hard link to {raw!r}, which is not an earlier regular file in the image")
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
