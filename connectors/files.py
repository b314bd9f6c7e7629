"""Durable file writes for the folders the hub publishes into: one file at a time, or a whole
batch made durable with two file-system syncs instead of one fsync per file.

A batch is written in two phases: every new content goes to ``NAME.part`` and the file
system is synced once; only then is each ``.part`` renamed over its target, and the file
system is synced once more (which makes the renames durable in all folders at once).
After a crash at any point, every target holds either its old or its complete new
content, never a torn file, on any POSIX file system.
"""

from __future__ import annotations

import ctypes
import os
import secrets
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Final

from ferry.transport import fsync_dir

PART_SUFFIX: Final = ".part"
_CREATE_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)


@cache
def _syncfs() -> Callable[[int], int] | None:
    """The C library's ``syncfs``, looked up on first use (the process already has the C
    library loaded, so no library search), or None where it has none."""
    function = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
    if function is not None:
        function.argtypes = [ctypes.c_int]
        function.restype = ctypes.c_int
    return function


def sync_file_system(path: Path) -> None:
    """Flush every dirty page and inode of the file system holding ``path`` (Linux
    ``syncfs``; ``sync`` of every file system where the C library lacks it)."""
    syncfs = _syncfs()
    if syncfs is None:
        os.sync()
        return
    descriptor = os.open(path, os.O_RDONLY)
    try:
        if syncfs(descriptor) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"syncfs failed on {path}: {os.strerror(error)}")
    finally:
        os.close(descriptor)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace one file durably: ``.part``, fsync, rename, fsync of the folder.

    The ``.part`` name is the writer's own (``NAME.<random>.part``): two tasks that replace
    the same file at once (the steward summary is written by every ``check_quality``) would
    otherwise share one ``.part``, and the slower one's rename would find it gone. The last
    rename wins, with a whole file either way."""
    partial = path.with_name(f"{path.name}.{secrets.token_hex(6)}{PART_SUFFIX}")
    try:
        with open(partial, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_batch(root: Path, files: Iterable[tuple[str | Path, bytes]]) -> int:
    """Replace every ``(path, data)`` under ``root`` so that all are durable when this
    returns, at the cost of two syncs of ``root``'s file system whatever their number."""
    staged: list[str] = []
    for path, data in files:
        target = os.fspath(path)
        # Plain descriptors: a buffered file object per file costs a third of the write
        # on a fast disk, and the public feed writes a file per application.
        descriptor = os.open(target + PART_SUFFIX, _CREATE_FLAGS, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
        finally:
            os.close(descriptor)
        staged.append(target)
    if not staged:
        return 0
    sync_file_system(root)
    for target in staged:
        os.replace(target + PART_SUFFIX, target)
    sync_file_system(root)  # the renames, in every folder at once
    return len(staged)

