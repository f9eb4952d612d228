"""The container image: built offline and reproducibly, and never a way to write onto the host.

Hostile tarballs are made in tmp_path with `tarfile`; each one aims at a canary directory next to the image
("outside"), so a rule that let it through would show up as a changed canary, not only as a missing error.
"""

from __future__ import annotations

import io
import os
import posixpath
import stat
import struct
import tarfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

import pytest

from workshop.image.rootfs import (
    ImageInfo,
    RootfsError,
    build_busybox_image,
    extract_image,
    find_static_busybox,
    import_image,
    is_static_elf,
)

Entry = tuple[tarfile.TarInfo, bytes | None]


# --- tarball helpers -----------------------------------------------------------------------------------


def _info(name: str, kind: bytes, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, 1_700_000_000
    return info


def reg(name: str, data: bytes = b"", mode: int = 0o644) -> Entry:
    info = _info(name, tarfile.REGTYPE, mode)
    info.size = len(data)
    return info, data


def directory(name: str, mode: int = 0o755) -> Entry:
    return _info(name, tarfile.DIRTYPE, mode), None


def symlink(name: str, target: str) -> Entry:
    info = _info(name, tarfile.SYMTYPE, 0o777)
    info.linkname = target
    return info, None


def hardlink(name: str, target: str) -> Entry:
    info = _info(name, tarfile.LNKTYPE)
    info.linkname = target
    return info, None


def device(name: str, kind: bytes = tarfile.CHRTYPE, major: int = 1, minor: int = 3) -> Entry:
    info = _info(name, kind, 0o666)
    info.devmajor, info.devminor = major, minor
    return info, None


WRITE_MODE: dict[str, Literal["w", "w:gz", "w:bz2", "w:xz"]] = {"": "w", "gz": "w:gz", "bz2": "w:bz2", "xz": "w:xz"}


def tar_bytes(entries: Iterable[Entry], compression: str = "") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=WRITE_MODE[compression]) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def make_tar(path: Path, entries: Iterable[Entry], compression: str = "") -> Path:
    path.write_bytes(tar_bytes(entries, compression))
    return path


def minimal_rootfs() -> list[Entry]:
    """Just enough of an image to pass: a shell."""
    return [
        directory("bin"),
        reg("bin/busybox", b"\x7fELF pretend busybox", 0o755),
        symlink("bin/sh", "busybox"),
    ]


def alpine_like() -> list[Entry]:
    """Shaped like an Alpine minirootfs: './' names, a root entry, absolute symlinks, setuid, a device."""
    return [
        directory("."),
        directory("./bin"),
        reg("./bin/busybox", b"\x7fELF pretend busybox", 0o755),
        symlink("./bin/sh", "/bin/busybox"),
        symlink("./bin/ls", "/bin/busybox"),
        reg("./bin/bbsuid", b"setuid helper", 0o4755),
        hardlink("./bin/busybox-again", "./bin/busybox"),
        directory("./etc"),
        reg("./etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
        symlink("./etc/mtab", "../proc/mounts"),
        directory("./dev"),
        device("./dev/null"),
        directory("./tmp", 0o1777),
        directory("./usr"),
        directory("./usr/bin"),
        symlink("./usr/bin/env", "../../bin/busybox"),
    ]


def names(tarball: Path) -> list[str]:
    with tarfile.open(tarball) as tar:
        return tar.getnames()


def members(tarball: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(tarball) as tar:
        return {m.name: m for m in tar.getmembers()}


def tree(root: Path) -> dict[str, str]:
    """What is under `root`, to prove a canary was not touched."""
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            found[str(path.relative_to(root))] = "-> " + os.readlink(path)
        elif path.is_file():
            found[str(path.relative_to(root))] = path.read_text()
        else:
            found[str(path.relative_to(root))] = "dir"
    return found


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    canary = tmp_path / "outside"
    canary.mkdir()
    (canary / "canary").write_text("untouched\n")
    return canary


def assert_left_nothing(dest: Path, outside: Path) -> None:
    """No image, no temp file, not even the directory made for it; and the canary as it was."""
    assert not dest.parent.exists(), f"left behind: {list(dest.parent.iterdir())}"
    assert tree(outside) == {"canary": "untouched\n"}


# --- finding busybox -----------------------------------------------------------------------------------


def fake_elf(path: Path, *, interp: bool, bits: int = 64, order: str = "<", e_type: int = 2) -> Path:
    """The ELF header and program headers only: enough for is_static_elf, nothing that runs."""
    word = "Q" if bits == 64 else "I"
    layout = f"{order}16sHHI{word}{word}{word}IHHHHHH"
    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1 if order == "<" else 2, 1])
    phentsize = 56 if bits == 64 else 32
    program_types = [1, 3, 1] if interp else [1, 1]  # PT_LOAD, PT_INTERP
    ehsize = struct.calcsize(layout)
    header = struct.pack(layout, ident, e_type, 62, 1, 0, ehsize, 0, 0, ehsize, phentsize, len(program_types), 0, 0, 0)
    program = b"".join(struct.pack(f"{order}I", t).ljust(phentsize, b"\0") for t in program_types)
    path.write_bytes(header + program)
    return path


def test_the_debian_static_busybox_is_a_static_elf(busybox: Path) -> None:
    assert is_static_elf(Path("/usr/bin/busybox"))
    assert is_static_elf(busybox)


def test_a_dynamically_linked_program_is_not_static() -> None:
    assert not is_static_elf(Path("/bin/ls"))


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("order", ["<", ">"])
def test_static_means_no_interpreter_header(tmp_path: Path, bits: int, order: str) -> None:
    assert is_static_elf(fake_elf(tmp_path / "static", interp=False, bits=bits, order=order))
    assert not is_static_elf(fake_elf(tmp_path / "dynamic", interp=True, bits=bits, order=order))


@pytest.mark.parametrize(
    "content",
    [b"#!/bin/sh\necho hi\n", b"\x7fELF", b"", b"\x7fELF\x02\x01\x01" + b"\0" * 9 + b"\x02\x00"],
    ids=["script", "magic only", "empty", "cut header"],
)
def test_anything_but_a_whole_elf_is_not_static(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "f").write_bytes(content)
    assert not is_static_elf(tmp_path / "f")


def test_missing_files_and_directories_are_not_static(tmp_path: Path) -> None:
    assert not is_static_elf(tmp_path / "missing")
    assert not is_static_elf(tmp_path)


def test_a_core_dump_is_not_an_executable(tmp_path: Path) -> None:
    assert not is_static_elf(fake_elf(tmp_path / "core", interp=False, e_type=4))


def test_find_rejects_a_dynamic_busybox_with_the_apt_hint(tmp_path: Path) -> None:
    with pytest.raises(RootfsError, match="dynamically linked") as caught:
        find_static_busybox([tmp_path / "missing", Path("/bin/ls")])
    assert "apt-get install busybox-static" in str(caught.value)


def test_find_explains_when_there_is_no_busybox_at_all(tmp_path: Path) -> None:
    with pytest.raises(RootfsError, match="No busybox found") as caught:
        find_static_busybox([tmp_path / "busybox"])
    assert "apt-get install busybox-static" in str(caught.value)


def test_find_takes_the_first_static_candidate(tmp_path: Path) -> None:
    dynamic = fake_elf(tmp_path / "dynamic", interp=True)
    static = fake_elf(tmp_path / "static", interp=False)
    assert find_static_busybox([dynamic, static]) == static


def test_find_looks_in_the_usual_places_by_default(busybox: Path) -> None:
    assert is_static_elf(busybox)
    assert busybox.name == "busybox"


# --- building the default image ------------------------------------------------------------------------


def test_building_twice_gives_the_same_bytes(built: ImageInfo, busybox: Path, tmp_path: Path) -> None:
    again = build_busybox_image(tmp_path / "again.tar", busybox)
    assert again.path.read_bytes() == built.path.read_bytes()
    assert (again.members, again.size, again.source) == (built.members, built.size, built.source)


def test_built_image_has_a_shell_and_relative_applet_links(built: ImageInfo) -> None:
    image = members(built.path)
    assert image["bin/busybox"].isreg() and image["bin/busybox"].mode == 0o755
    assert image["bin/sh"].issym() and image["bin/sh"].linkname == "busybox"
    assert image["usr/bin/awk"].linkname == "../../bin/busybox"
    links = [m for m in image.values() if m.issym()]
    assert len(links) > 100
    for link in links:
        assert not link.linkname.startswith("/"), link.name
        assert posixpath.normpath(posixpath.join(posixpath.dirname(link.name), link.linkname)) == "bin/busybox"


def test_built_image_has_the_usual_directories_with_their_modes(built: ImageInfo) -> None:
    image = members(built.path)
    for name in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "mnt", "srv"):
        assert image[name].isdir() and image[name].mode == 0o755, name
    assert image["tmp"].mode == image["var/tmp"].mode == 0o1777
    assert image["root"].mode == 0o700


def test_built_image_has_users_and_an_identity(built: ImageInfo) -> None:
    with tarfile.open(built.path) as tar:

        def text(name: str) -> str:
            data = tar.extractfile(name)
            assert data is not None
            return data.read().decode()

        assert "root:x:0:0:root:/root:/bin/sh\n" in text("etc/passwd")
        assert "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n" in text("etc/passwd")
        assert "nobody:x:65534:" in text("etc/group")
        assert text("etc/hostname") == "container\n"
        assert 'NAME="workshop busybox image"' in text("etc/os-release")


def test_built_image_is_owned_by_root_and_sorted(built: ImageInfo) -> None:
    with tarfile.open(built.path) as tar:
        entries = tar.getmembers()
    assert all((m.uid, m.gid, m.uname, m.gname) == (0, 0, "root", "root") for m in entries)
    assert [m.name for m in entries] == sorted(m.name for m in entries)
    assert len({m.mtime for m in entries}) == 1


def test_build_reports_what_it_wrote(built: ImageInfo, busybox: Path) -> None:
    with tarfile.open(built.path) as tar:
        entries = tar.getmembers()
    assert built.members == len(entries)
    assert built.size == sum(m.size for m in entries if m.isreg())
    assert built.size > busybox.stat().st_size
    assert built.source.startswith("busybox 1.")


def test_build_creates_the_directory_and_leaves_no_temp_file(busybox: Path, tmp_path: Path) -> None:
    dest = tmp_path / "state" / "images" / "rootfs.tar"
    build_busybox_image(dest, busybox)
    assert [p.name for p in dest.parent.iterdir()] == ["rootfs.tar"]


def test_build_refuses_a_dynamic_busybox(tmp_path: Path) -> None:
    with pytest.raises(RootfsError, match="apt-get install busybox-static"):
        build_busybox_image(tmp_path / "rootfs.tar", Path("/bin/ls"))
    assert list(tmp_path.iterdir()) == []


def test_build_explains_a_busybox_that_cannot_run(tmp_path: Path) -> None:
    fake = fake_elf(tmp_path / "busybox", interp=False)
    fake.chmod(0o755)
    with pytest.raises(RootfsError, match="apt-get install busybox-static"):
        build_busybox_image(tmp_path / "out" / "rootfs.tar", fake)
    assert not (tmp_path / "out").exists()


# --- importing good images -----------------------------------------------------------------------------


def test_import_keeps_absolute_symlinks_setuid_and_devices(tmp_path: Path) -> None:
    source = make_tar(tmp_path / "alpine-minirootfs.tar", alpine_like())
    info = import_image(source, tmp_path / "images" / "rootfs.tar")
    image = members(info.path)
    assert image["bin/sh"].linkname == "/bin/busybox"
    assert image["bin/bbsuid"].mode == 0o4755
    assert image["bin/busybox-again"].islnk() and image["bin/busybox-again"].linkname == "bin/busybox"
    assert image["dev/null"].ischr() and (image["dev/null"].devmajor, image["dev/null"].devminor) == (1, 3)
    assert image["tmp"].mode == 0o1777
    assert info.members == len(alpine_like()) - 1  # the root entry './' is not a member of the image
    assert info.size == sum(len(data or b"") for _, data in alpine_like())
    assert info.source == str(source)


def test_import_strips_the_leading_dot_slash(tmp_path: Path) -> None:
    info = import_image(make_tar(tmp_path / "a.tar", alpine_like()), tmp_path / "rootfs.tar")
    assert all(not name.startswith(("./", "/")) and name != "." for name in names(info.path))


@pytest.mark.parametrize("compression", ["gz", "bz2", "xz"])
def test_import_reads_compressed_tarballs(tmp_path: Path, compression: str) -> None:
    source = make_tar(tmp_path / f"rootfs.tar.{compression}", alpine_like(), compression)
    info = import_image(source, tmp_path / "rootfs.tar")
    assert "bin/sh" in names(info.path)
    with tarfile.open(info.path, "r:") as plain:  # the copy is a plain tarball
        assert "bin/sh" in plain.getnames()


@pytest.mark.parametrize("target", ["usr/bin", "/usr/bin"])
def test_import_finds_the_shell_through_a_merged_usr(tmp_path: Path, target: str) -> None:
    entries = [symlink("bin", target), directory("usr"), directory("usr/bin"), reg("usr/bin/sh", b"sh")]
    info = import_image(make_tar(tmp_path / "debian.tar", entries), tmp_path / "rootfs.tar")
    assert info.members == 4


def test_import_of_a_built_image_is_the_same_image(built: ImageInfo, tmp_path: Path) -> None:
    info = import_image(built.path, tmp_path / "copy.tar")
    assert info.path.read_bytes() == built.path.read_bytes()


def test_import_replaces_an_older_image(tmp_path: Path) -> None:
    dest = tmp_path / "rootfs.tar"
    dest.write_bytes(b"old")
    import_image(make_tar(tmp_path / "new.tar", minimal_rootfs()), dest)
    assert names(dest) == ["bin", "bin/busybox", "bin/sh"]


def test_import_a_directory_without_following_its_symlinks(tmp_path: Path) -> None:
    source = tmp_path / "tree"
    (source / "bin").mkdir(parents=True)
    (source / "bin" / "busybox").write_bytes(b"\x7fELF pretend")
    os.link(source / "bin" / "busybox", source / "bin" / "hardlinked")
    (source / "bin" / "sh").symlink_to("busybox")
    (source / "etc").mkdir()
    (source / "etc" / "host-etc").symlink_to("/etc")
    (source / "tmp").mkdir()
    (source / "tmp").chmod(0o1777)
    os.mkfifo(source / "tmp" / "fifo")
    info = import_image(source, tmp_path / "rootfs.tar")
    image = members(info.path)
    assert sorted(image) == [
        "bin", "bin/busybox", "bin/hardlinked", "bin/sh", "etc", "etc/host-etc", "tmp", "tmp/fifo",
    ]  # fmt: skip
    assert image["etc/host-etc"].linkname == "/etc"
    assert image["bin/hardlinked"].islnk() and image["bin/hardlinked"].linkname == "bin/busybox"
    assert image["tmp"].mode == 0o1777 and image["tmp/fifo"].isfifo()
    assert info.size == len(b"\x7fELF pretend")


def test_a_rejected_import_keeps_the_previous_image(tmp_path: Path, outside: Path) -> None:
    dest = tmp_path / "images" / "rootfs.tar"
    import_image(make_tar(tmp_path / "good.tar", minimal_rootfs()), dest)
    before = dest.read_bytes()
    bad = make_tar(tmp_path / "bad.tar", [*minimal_rootfs(), reg("../outside/pwned", b"pwned")])
    with pytest.raises(RootfsError, match="climbs out"):
        import_image(bad, dest)
    assert dest.read_bytes() == before
    assert [p.name for p in dest.parent.iterdir()] == ["rootfs.tar"]
    assert tree(outside) == {"canary": "untouched\n"}


# --- hostile images ------------------------------------------------------------------------------------

# Each case: the extra members (given the canary dir), the member the error must name, and the rule.
Hostile = Callable[[Path], tuple[list[Entry], str, str]]
HOSTILE: dict[str, Hostile] = {
    "absolute member": lambda o: ([reg(f"{o}/pwned", b"pwned")], f"{o}/pwned", "absolute path"),
    "dot-dot member": lambda o: ([reg("../outside/pwned", b"pwned")], "../outside/pwned", "climbs out"),
    "dot-dot inside a path": lambda o: (
        [reg("bin/../../outside/pwned", b"pwned")], "bin/../../outside/pwned", "climbs out",
    ),
    "relative symlink climbing out": lambda o: (
        [directory("etc"), symlink("etc/escape", "../../outside")], "etc/escape", "leads out of the image",
    ),
    "write through an absolute symlink": lambda o: (
        [symlink("evil", str(o)), reg("evil/pwned", b"pwned")], "evil/pwned", "goes through the symlink 'evil'",
    ),
    "write through a climbing symlink": lambda o: (
        [symlink("evil", "../../.."), reg("evil/pwned", b"pwned")], "evil", "leads out of the image",
    ),
    "hard link to outside": lambda o: (
        [hardlink("bin/h", "../outside/canary")], "bin/h", "outside the image",
    ),
    "hard link to an absolute path": lambda o: (
        [hardlink("bin/h", f"{o}/canary")], "bin/h", "outside the image",
    ),
    "hard link to a non-member": lambda o: (
        [hardlink("bin/h", "etc/shadow")], "bin/h", "not an earlier regular file",
    ),
    "hard link to a symlink out": lambda o: (
        [symlink("bin/s", f"{o}/canary"), hardlink("bin/h", "bin/s")], "bin/h", "not an earlier regular file",
    ),
    "file over a symlink": lambda o: (
        [symlink("bin/passwd", f"{o}/canary"), reg("bin/passwd", b"pwned")], "bin/passwd", "appears twice",
    ),
    "device node in etc": lambda o: ([directory("etc"), device("etc/x")], "etc/x", "device node outside dev/"),
    "block device at the top": lambda o: ([device("sda", tarfile.BLKTYPE, 8, 0)], "sda", "outside dev/"),
    "file inside a file": lambda o: ([reg("bin/busybox/x", b"x")], "bin/busybox/x", "not a directory"),
    "symlink to a symlink that climbs out": lambda o: (
        [symlink("bin/a", "b"), symlink("bin/b", "../../outside")], "bin/b", "leads out of the image",
    ),
    "symlink out through another symlink": lambda o: (
        [directory("d"), symlink("d/up", ".."), symlink("a", "d/up/../outside")], "a", "through the symlink 'd/up'",
    ),
    "symlink out through a symlink that comes later": lambda o: (
        [symlink("a", "d/up/../outside"), directory("d"), symlink("d/up", "..")], "a", "through the symlink 'd/up'",
    ),
    "hard link through a symlink out": lambda o: (
        [symlink("evil", str(o)), hardlink("bin/h", "evil/canary")], "bin/h", "not an earlier regular file",
    ),
    "device named dev": lambda o: ([device("dev")], "dev", "outside dev/"),
    "empty name": lambda o: ([reg("", b"x")], "", "empty name"),
}  # fmt: skip


@pytest.mark.parametrize("case", HOSTILE.values(), ids=HOSTILE.keys())
def test_import_rejects_hostile_members(tmp_path: Path, outside: Path, case: Hostile) -> None:
    extra, member, rule = case(outside)
    source = make_tar(tmp_path / "rootfs.tar", [*minimal_rootfs(), *extra])
    dest = tmp_path / "images" / "imported.tar"
    with pytest.raises(RootfsError) as caught:
        import_image(source, dest)
    message = str(caught.value)
    assert message.startswith(f"rootfs.tar: member {member!r} ")
    assert rule in message and "refusing to import" in message
    assert_left_nothing(dest, outside)


@pytest.mark.parametrize("case", HOSTILE.values(), ids=HOSTILE.keys())
def test_extract_rejects_hostile_members(tmp_path: Path, outside: Path, case: Hostile) -> None:
    extra, member, rule = case(outside)
    image = make_tar(tmp_path / "rootfs.tar", [*minimal_rootfs(), *extra])
    dest = tmp_path / "rootfs"  # so '../outside' from inside it is the canary
    with pytest.raises(RootfsError, match="refusing to extract") as caught:
        extract_image(image, dest)
    assert f"member {member!r} " in str(caught.value) and rule in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outside", "rootfs.tar"]
    assert tree(outside) == {"canary": "untouched\n"}


def test_import_rejects_a_directory_with_a_symlink_out(tmp_path: Path, outside: Path) -> None:
    source = tmp_path / "tree"
    (source / "bin").mkdir(parents=True)
    (source / "bin" / "sh").write_bytes(b"sh")
    (source / "bin" / "escape").symlink_to("../../outside")
    dest = tmp_path / "images" / "rootfs.tar"
    with pytest.raises(RootfsError) as caught:
        import_image(source, dest)
    assert str(caught.value).startswith("tree: member 'bin/escape' is a symlink to '../../outside'")
    assert_left_nothing(dest, outside)


def test_import_needs_a_shell(tmp_path: Path, outside: Path) -> None:
    source = make_tar(tmp_path / "noshell.tar", [directory("bin"), reg("bin/busybox", b"x", 0o755)])
    dest = tmp_path / "images" / "rootfs.tar"
    with pytest.raises(RootfsError, match=r"noshell.tar has no /bin/sh .* starts a shell"):
        import_image(source, dest)
    assert_left_nothing(dest, outside)


def test_a_shell_link_through_a_link_out_of_the_image_does_not_count(tmp_path: Path) -> None:
    source = make_tar(tmp_path / "r.tar", [directory("usr"), symlink("bin", "usr/missing"), reg("usr/sh")])
    with pytest.raises(RootfsError, match="has no /bin/sh"):
        import_image(source, tmp_path / "rootfs.tar")


def cut_in_half(compression: str) -> bytes:
    data = tar_bytes([*alpine_like(), reg("big", os.urandom(64 * 1024))], compression)
    return data[: len(data) // 2]


def cut_between_members() -> bytes:
    """A cut exactly where a header starts: tarfile alone would take this for a shorter, complete archive."""
    data = tar_bytes(alpine_like())
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        last = tar.getmembers()[-1]
    return data[: last.offset]


def flip_a_byte(compression: str) -> bytes:
    """One byte changed in the middle of the compressed data: only the format's checksum can tell."""
    data = bytearray(tar_bytes([*alpine_like(), reg("big", os.urandom(64 * 1024))], compression))
    data[len(data) // 2] ^= 0xFF
    return bytes(data)


DAMAGED: dict[str, Callable[[], bytes]] = {
    "plain tar cut in half": lambda: cut_in_half(""),
    "gzip tar with a flipped byte": lambda: flip_a_byte("gz"),
    "xz tar with a flipped byte": lambda: flip_a_byte("xz"),
    "bzip2 tar with a flipped byte": lambda: flip_a_byte("bz2"),
    "gzip tar cut in half": lambda: cut_in_half("gz"),
    "xz tar cut in half": lambda: cut_in_half("xz"),
    "tar cut between members": cut_between_members,
    "not a tar at all": lambda: b"this is a shell script, not an image\n" * 100,
    "empty file": lambda: b"",
}


@pytest.mark.parametrize("damaged", DAMAGED.values(), ids=DAMAGED.keys())
def test_import_rejects_damaged_archives(tmp_path: Path, outside: Path, damaged: Callable[[], bytes]) -> None:
    source = tmp_path / "rootfs.tar"
    source.write_bytes(damaged())
    dest = tmp_path / "images" / "imported.tar"
    with pytest.raises(RootfsError, match=r"^rootfs.tar is truncated, damaged or not a tar archive"):
        import_image(source, dest)
    assert_left_nothing(dest, outside)


@pytest.mark.parametrize("damaged", DAMAGED.values(), ids=DAMAGED.keys())
def test_extract_rejects_damaged_archives(tmp_path: Path, outside: Path, damaged: Callable[[], bytes]) -> None:
    image = tmp_path / "rootfs.tar"
    image.write_bytes(damaged())
    dest = tmp_path / "unpacked" / "rootfs"
    with pytest.raises(RootfsError, match="truncated, damaged or not a tar archive"):
        extract_image(image, dest)
    assert_left_nothing(dest, outside)


def test_a_failed_write_leaves_no_temp_file(tmp_path: Path) -> None:
    source = make_tar(tmp_path / "good.tar", minimal_rootfs())
    (tmp_path / "images" / "rootfs.tar").mkdir(parents=True)  # a directory where the image should go
    with pytest.raises(RootfsError, match="Could not write the image"):
        import_image(source, tmp_path / "images" / "rootfs.tar")
    assert [p.name for p in (tmp_path / "images").iterdir()] == ["rootfs.tar"]


def test_import_explains_a_missing_source(tmp_path: Path) -> None:
    with pytest.raises(RootfsError, match="not found"):
        import_image(tmp_path / "nope.tar", tmp_path / "rootfs.tar")
    assert list(tmp_path.iterdir()) == []


def test_import_refuses_something_that_is_neither_file_nor_directory(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(RootfsError, match="neither a tarball nor a directory"):
        import_image(tmp_path / "pipe", tmp_path / "rootfs.tar")


# --- extracting ----------------------------------------------------------------------------------------


def test_extract_keeps_modes_and_links_exactly(tmp_path: Path) -> None:
    entries = [e for e in alpine_like() if not e[0].isdev()]  # mknod needs root: see the root test below
    image = import_image(make_tar(tmp_path / "a.tar", entries), tmp_path / "rootfs.tar").path
    root = tmp_path / "rootfs"
    extract_image(image, root)
    assert os.readlink(root / "bin" / "sh") == "/bin/busybox"
    assert os.readlink(root / "etc" / "mtab") == "../proc/mounts"
    assert stat.S_IMODE((root / "bin" / "bbsuid").stat().st_mode) == 0o4755
    assert stat.S_IMODE((root / "tmp").stat().st_mode) == 0o1777
    assert (root / "bin" / "busybox-again").stat().st_ino == (root / "bin" / "busybox").stat().st_ino


def test_extract_the_built_image(built: ImageInfo, tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    root.mkdir()
    extract_image(built.path, root)
    assert os.readlink(root / "usr" / "bin" / "awk") == "../../bin/busybox"
    assert (root / "usr" / "bin" / "awk").resolve() == (root / "bin" / "busybox").resolve()
    assert stat.S_IMODE((root / "root").stat().st_mode) == 0o700
    assert stat.S_IMODE((root / "var" / "tmp").stat().st_mode) == 0o1777


def test_extract_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    image = make_tar(tmp_path / "a.tar", minimal_rootfs())
    root = tmp_path / "rootfs"
    root.mkdir()
    (root / "etc").symlink_to("/etc")
    with pytest.raises(RootfsError, match="not an empty directory"):
        extract_image(image, root)
    assert [p.name for p in root.iterdir()] == ["etc"]


def test_extract_explains_a_missing_image(tmp_path: Path) -> None:
    with pytest.raises(RootfsError, match="workshop rootfs"):
        extract_image(tmp_path / "rootfs.tar", tmp_path / "rootfs")
    assert not (tmp_path / "rootfs").exists()
