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


def test_the_contract_floor_carries_every_row_and_stores_one_record_each(hub_env: Path, tmp_path: Path) -> None:
    """The floor of the contracts now: every front-database row marked carried, every byte of
    the envelopes and the attachment store read, one stored record per application."""
    import sqlite3

    from sqlalchemy import select

    from bench.baselines import contract_floor
    from bench.workload import write_front_db
    from connectors.db import portal_submissions
    from hub.settings import load_settings
    from hub.zones import zone_engine

    settings = load_settings()
    engine = zone_engine(settings, "internet")
    write_front_db(engine, settings.portal_store, 30, 5, catalogue_documents(5))
    with engine.connect() as connection:
        envelopes = connection.execute(select(portal_submissions.c.envelope)).scalars().all()
    attached = sum(p.stat().st_size for p in settings.portal_store.rglob("*") if p.is_file())
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    _, seconds, size, note = contract_floor(tmp_path / "drop", scratch)

    assert seconds > 0 and "µs per application" in note
    assert size == sum(len(e.encode("utf-8")) for e in envelopes) + attached and attached > 0
    with engine.connect() as connection:
        states = connection.execute(select(portal_submissions.c.state)).scalars().all()
    assert states == ["carried"] * 30
    with sqlite3.connect(scratch / "status.sqlite") as store:
        assert store.execute("SELECT count(DISTINCT lookup), count(*) FROM events").fetchone() == (30, 30)

