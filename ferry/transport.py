"""Transports move finished bundle files across the gap; a local folder is the reference one.

A file becomes visible under its name only when complete: it is written as ``NAME.part``,
fsynced and renamed. Names are checked against a strict pattern and never taken as paths.
A sealed (read-only) source on the same file system is hard-linked as ``NAME.part`` instead
of copied, so a bundle's bytes are written once on the sending machine (docs/ferry.md §1).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
from pathlib import Path
from typing import BinaryIO, Protocol

from schemas.exceptions import TerminalError

NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,128}")
BUNDLE_SUFFIX = ".peb"
PART_SUFFIX = ".part"
_CHUNK = 1024 * 1024
_WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
# os.link cannot share the inode: another file system, or one without hard links.
_NO_LINK = frozenset({errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP, errno.ENOTSUP})
# os.copy_file_range cannot copy between these files (old kernel, another file system type).
_NO_RANGE_COPY = frozenset(
    {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM}
)


class Transport(Protocol):
    """One channel's drop folder (or its remote equivalent)."""

    def put(self, name: str, source: Path) -> None:
        """Publish ``source`` as ``name`` atomically; a no-op if the same bytes are there."""

    def list_complete(self) -> list[str]:
        """Sorted names of complete bundle files (``*.peb``), never partial ones."""

    def open(self, name: str) -> BinaryIO:
        """Open a complete file for reading."""

    def path_of(self, name: str) -> Path | None:
        """A local path to ``name`` when the transport has one, else ``None``."""

    def remove(self, name: str) -> None:
        """Delete ``name``; no error if it is already gone."""


def check_name(name: str) -> str:
    """Return ``name`` if it is a safe plain file name, else raise TerminalError."""
    if (
        not isinstance(name, str)
        or not NAME_PATTERN.fullmatch(name)
        or name.startswith(".")
        or name.endswith(PART_SUFFIX)
    ):
        raise TerminalError(f"refused transport file name {name!r:.200}")
    return name


class LocalFolderTransport:
    """A folder that the gap appliance synchronises (or that both zones share, in the demo).

    One sender writes to a channel's folder; concurrent writers of the same name are
    not supported.

    ``put`` hard-links a *sealed* source (a regular file nobody may write: the sender's
    outbox copy is created read-only and never rewritten) when the folder is on its file
    system, so the bytes are not written a second time; the published file then shares the
    outbox copy's inode. Any other source, another file system or ``link=False`` gives a
    copy (``copy_file_range`` in the kernel where it can). Either way the file appears as
    ``NAME.part``, is fsynced and renamed.
    """

    def __init__(self, root: Path, *, link: bool = True) -> None:
        self.root = root
        self.link = link

    def put(self, name: str, source: Path) -> None:
        final = self.root / check_name(name)
        if _is_regular_file(final):
            if _same_file(final, source) or _same_content(final, source):
                return
            raise TerminalError(
                f"{final} already exists with different content; refusing to replace it"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        part = self.root / (name + PART_SUFFIX)
        # A stale part may be a hard link to a sealed outbox copy: unlink it, never write it.
        part.unlink(missing_ok=True)
        if self.link and _is_sealed(source) and _linked(source, part):
            with open_regular(part) as placed:  # cheap: nothing left to write back if the
                os.fsync(placed.fileno())  # sender fsynced its copy, as send_planned does
        else:
            _copy(source, part)
        os.rename(part, final)
        fsync_dir(self.root)

    def list_complete(self) -> list[str]:
        if not self.root.is_dir():
            return []
        names = []
        with os.scandir(self.root) as entries:
            for entry in entries:
                name = entry.name
                if (
                    name.endswith(BUNDLE_SUFFIX)
                    and NAME_PATTERN.fullmatch(name)
                    and not name.startswith(".")
                    and entry.is_file(follow_symlinks=False)
                ):
                    names.append(name)
        return sorted(names)

    def open(self, name: str) -> BinaryIO:
        return open_regular(self.root / check_name(name))

    def path_of(self, name: str) -> Path | None:
        return self.root / check_name(name)

    def remove(self, name: str) -> None:
        path = self.root / check_name(name)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        fsync_dir(self.root)


def _is_regular_file(path: Path) -> bool:
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(mode):
        raise TerminalError(f"{path} exists and is not a regular file")
    return True


def _is_sealed(path: Path) -> bool:
    """A regular file (not a symlink) that nobody may write."""
    mode = path.lstat().st_mode
    return stat.S_ISREG(mode) and not mode & _WRITE_BITS


def _linked(source: Path, part: Path) -> bool:
    """Hard-link ``source`` as ``part``; False where the file system cannot."""
    try:
        os.link(source, part, follow_symlinks=False)
    except OSError as error:
        if error.errno in _NO_LINK:
            return False
        raise
    return True


def _copy(source: Path, part: Path) -> None:
    """Copy ``source`` into a new ``part`` (mode 0644) and fsync it: in the kernel
    (``copy_file_range``) where possible, else through a buffer."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    with source.open("rb") as src, os.fdopen(os.open(part, flags, 0o644), "wb") as dst:
        if not _range_copy(src.fileno(), dst.fileno()):
            shutil.copyfileobj(src, dst, _CHUNK)
        dst.flush()
        os.fsync(dst.fileno())


def _range_copy(src: int, dst: int) -> bool:
    """Copy all of ``src`` to ``dst`` with copy_file_range; False (nothing copied) if the
    kernel cannot do it for these files."""
    copy_file_range = getattr(os, "copy_file_range", None)
    if copy_file_range is None:
        return False
    copied = 0
    while True:
        try:
            count = copy_file_range(src, dst, 1 << 30)
        except OSError as error:
            if copied == 0 and error.errno in _NO_RANGE_COPY:
                return False
            raise
        if count == 0:
            return True
        copied += count


def _same_file(a: Path, b: Path) -> bool:
    first, second = a.lstat(), b.stat()
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


def _same_content(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with a.open("rb") as fa, b.open("rb") as fb:
        while True:
            chunk = fa.read(_CHUNK)
            if chunk != fb.read(_CHUNK):
                return False
            if not chunk:
                return True


def fsync_dir(path: str | Path) -> None:
    """Make a folder's entries (creations, renames) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_regular(path: Path) -> BinaryIO:
    """Open a file for reading without following a symlink, and without blocking on a FIFO
    planted under a bundle name; anything but a regular file is refused."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise TerminalError(f"{path} is a symbolic link; refusing to follow it") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise TerminalError(f"{path} is not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")
