"""The file-floor baseline does the file work the contracts require, all of it: every drop
folder read and moved out, one complete public document per application."""

from __future__ import annotations

import os
from pathlib import Path

from bench.baselines import file_floor
from bench.workload import catalogue_documents, write_drop


def test_the_file_floor_moves_every_folder_and_writes_one_document_each(tmp_path: Path) -> None:
    drop, scratch = tmp_path / "drop", tmp_path / "scratch"
    workload = write_drop(drop, 30, 5, catalogue_documents(5))
    scratch.mkdir()
    names = sorted(os.listdir(drop))
    drop_bytes = sum(p.stat().st_size for p in drop.rglob("*") if p.is_file())

    _, seconds, size, note = file_floor(drop, scratch)

    assert seconds > 0 and "µs per application" in note
    assert size == drop_bytes  # every byte of every folder was read
    assert os.listdir(drop) == []
    assert sorted(p.name for p in (scratch / "collected").glob("*/*")) == names
    documents = sorted((scratch / "public").glob("*/*"))
    assert len(documents) == workload.records == 30
    assert all(p.suffix == ".json" and p.stat().st_size > 0 for p in documents)
