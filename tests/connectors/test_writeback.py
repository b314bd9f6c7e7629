"""Early write-back of bundle and staged files: every byte still lands, and the kernel is
asked to start writing contiguous ranges as they are completed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from connectors import ferry_ledger
from connectors.ferry_ledger import _WritingBack, start_writeback


def test_writing_back_passes_every_byte_and_advises_each_completed_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    advised: list[tuple[int, int, int]] = []
    real = os.posix_fadvise

    def record(fd: int, offset: int, length: int, advice: int) -> None:
        advised.append((offset, length, advice))
        real(fd, offset, length, advice)

    monkeypatch.setattr(os, "posix_fadvise", record)
    monkeypatch.setattr(ferry_ledger, "WRITEBACK_BYTES", 1000)
    pieces = [os.urandom(n) for n in (300, 800, 5, 2500, 10, 999)]
    path = tmp_path / "bundle"
    with path.open("wb") as stream:
        out = _WritingBack(stream)
        for piece in pieces:
            out.write(piece)
    assert path.read_bytes() == b"".join(pieces)
    dontneed = os.POSIX_FADV_DONTNEED
    assert advised == [(0, 1100, dontneed), (1100, 2505, dontneed), (3605, 1009, dontneed)]


def test_start_writeback_is_a_no_op_without_posix_fadvise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(os, "posix_fadvise")
    with (tmp_path / "f").open("wb") as stream:
        stream.write(b"x")
        stream.flush()
        start_writeback(stream.fileno())
    assert (tmp_path / "f").read_bytes() == b"x"
