"""Transports move finished bundle files across the gap; a local folder is the reference one.

A file becomes visible under its name only when complete: it is written as ``NAME.part``,
fsynced and renamed. Names are checked against a strict pattern and never taken as paths.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
from pathlib import Path
from typing import BinaryIO, Protocol

from ferry.errors import TerminalError

NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,128}")
BUNDLE_SUFFIX = ".peb"
PART_SUFFIX = ".part"
_CHUNK = 1024 * 1024


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
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, name: str, source: Path) -> None:
        final = self.root / check_name(name)
        if _is_regular_file(final):
            if _same_content(final, source):
                return
            raise TerminalError(
                f"{final} already exists with different content; refusing to replace it"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        part = self.root / (name + PART_SUFFIX)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        with source.open("rb") as src, os.fdopen(os.open(part, flags, 0o644), "wb") as dst:
            shutil.copyfileobj(src, dst, _CHUNK)
            dst.flush()
            os.fsync(dst.fileno())
        os.rename(part, final)
        _fsync_dir(self.root)

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
        _fsync_dir(self.root)


def _is_regular_file(path: Path) -> bool:
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(mode):
        raise TerminalError(f"{path} exists and is not a regular file")
    return True


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


def _fsync_dir(path: Path) -> None:
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
