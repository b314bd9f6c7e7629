"""Batched durable writes of published files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from connectors import files


def test_a_batch_replaces_every_file_with_two_syncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    syncs: list[Path] = []
    real = files.sync_file_system
    monkeypatch.setattr(files, "sync_file_system", lambda path: (syncs.append(path), real(path))[1])
    (tmp_path / "a.json").write_bytes(b"old a")
    written = files.write_batch(tmp_path, [(tmp_path / f"{n}.json", f"new {n}".encode()) for n in "abc"])
    assert written == 3 and syncs == [tmp_path, tmp_path]
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == {
        "a.json": b"new a", "b.json": b"new b", "c.json": b"new c"}
    assert files.write_batch(tmp_path, []) == 0 and len(syncs) == 2


def test_a_batch_cut_before_its_renames_leaves_the_old_content_and_a_retry_completes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.json").write_bytes(b"old a")

    def cut(path: Path) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(files, "sync_file_system", cut)
    with pytest.raises(OSError):
        files.write_batch(tmp_path, [(tmp_path / "a.json", b"new a"), (tmp_path / "b.json", b"new b")])
    assert (tmp_path / "a.json").read_bytes() == b"old a" and not (tmp_path / "b.json").exists()
    monkeypatch.undo()
    files.write_batch(tmp_path, [(tmp_path / "a.json", b"new a"), (tmp_path / "b.json", b"new b")])
    assert sorted(os.listdir(tmp_path)) == ["a.json", "b.json"]  # no .part left behind
    assert (tmp_path / "a.json").read_bytes() == b"new a"


def test_sync_file_system_reports_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        files.sync_file_system(tmp_path / "absent")
    files.sync_file_system(tmp_path)


def test_two_writers_replacing_one_file_at_once_both_succeed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What two check_quality tasks do to the steward summary: the second writer runs whole
    while the first is between its write and its rename. Sharing one ``.part`` name, the
    first rename found its file gone (FileNotFoundError, a retry a minute later)."""
    target = tmp_path / "summary.html"
    real_replace = os.replace
    nested: list[bool] = []

    def replace_after_another_writer(source: str | Path, destination: str | Path) -> None:
        if not nested:
            nested.append(True)
            files.write_atomic(target, b"second")
        real_replace(source, destination)

    monkeypatch.setattr(files.os, "replace", replace_after_another_writer)
    files.write_atomic(target, b"first")
    assert target.read_bytes() == b"first" and nested
    assert os.listdir(tmp_path) == ["summary.html"]  # no .part left behind


def test_a_failed_write_leaves_no_part_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(source: str | Path, destination: str | Path) -> None:
        raise OSError("read-only file system")

    monkeypatch.setattr(files.os, "replace", refuse)
    with pytest.raises(OSError, match="read-only"):
        files.write_atomic(tmp_path / "index.json", b"{}")
    assert os.listdir(tmp_path) == []
