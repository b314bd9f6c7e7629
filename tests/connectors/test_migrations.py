"""The Alembic migrations create exactly the schema of ``connectors.db`` on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from connectors.db import engine_for
from connectors.migrate import ZONE_TABLES, current_revision, head_revision, schema_diff, upgrade


@pytest.mark.parametrize("zone", ["admin", "internet"])
def test_migrated_schema_equals_the_metadata(exchange_url: str, zone: str) -> None:
    engine = engine_for(exchange_url)
    assert current_revision(engine) is None
    assert upgrade(engine, zone) == head_revision()
    assert schema_diff(engine, zone) == []
    tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
    assert tables == ZONE_TABLES[zone]


def test_upgrade_is_a_no_op_at_head(exchange_engine: object) -> None:
    from sqlalchemy import Engine

    assert isinstance(exchange_engine, Engine)
    statements: list[str] = []
    from sqlalchemy import event

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(exchange_engine, "before_cursor_execute", count)
    try:
        assert upgrade(exchange_engine, "admin") == head_revision()
    finally:
        event.remove(exchange_engine, "before_cursor_execute", count)
    assert not [s for s in statements if s.lstrip().upper().startswith(("CREATE", "ALTER"))]


def test_hub_db_upgrade_migrates_the_configured_database(
    exchange_url: str, tmp_path: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hub.cli import main

    monkeypatch.setenv("HUB_DATA_ROOT", str(tmp_path))
    monkeypatch.setenv("HUB_ZONE", "admin")
    monkeypatch.setenv("HUB_EXCHANGE_DB_URL", exchange_url)
    assert main(["db", "upgrade"]) == 0
    assert f"at revision {head_revision()}" in capsys.readouterr().out
    assert schema_diff(engine_for(exchange_url), "admin") == []


def test_postgresql_serialises_outbox_writers_in_the_database(exchange_engine: object) -> None:
    from sqlalchemy import Engine

    assert isinstance(exchange_engine, Engine)
    with exchange_engine.connect() as connection:
        if connection.dialect.name != "postgresql":
            # SQLite has one writer at a time by construction: nothing to install.
            assert connection.dialect.name == "sqlite"
            return
        triggers = connection.execute(
            text("SELECT tgname FROM pg_trigger WHERE tgrelid = 'status_outbox'::regclass AND NOT tgisinternal")
        ).scalars().all()
    # The lock that serialises writers, and the refusal of any change to a written row.
    assert sorted(triggers) == ["status_outbox_refuse_change", "status_outbox_serialise"]


def test_0015_moves_the_stored_hashes_into_pages_and_back(exchange_url: str) -> None:
    """A log stored a row per hash (0012-0014) keeps every hash at its index in pages; a
    gap (a row deleted behind the hub's back) reads as zeros, never as the next hash."""
    import sqlalchemy as sa

    from connectors.audit import hash_reader
    from ferry.tlog import Frontier, tree_hasher

    engine = engine_for(exchange_url)
    upgrade(engine, "admin", "0014")
    hasher = tree_hasher("intl")
    stored = Frontier(0, [], hasher).extend(hasher.leaf_hashes([b"leaf %d" % n for n in range(300)]))
    assert len(stored) > 2 * 256  # three pages, the last partial
    rows = sa.table("audit_hashes", sa.column("idx", sa.BigInteger()), sa.column("hash", sa.LargeBinary()))
    with engine.begin() as connection:
        connection.execute(rows.insert(), [{"idx": i, "hash": h} for i, h in enumerate(stored) if i != 300])
    upgrade(engine, "admin")
    with engine.connect() as connection:
        read = hash_reader(connection).read_hashes(range(len(stored)))
        pages = connection.execute(text("SELECT page FROM audit_hash_pages ORDER BY page")).scalars().all()
    assert read == [bytes(32) if i == 300 else h for i, h in enumerate(stored)]
    assert pages == [0, 1, 2]
    assert "audit_hashes" not in inspect(engine).get_table_names()

    from alembic import command

    from connectors.migrate import _config

    with engine.begin() as connection:
        command.downgrade(_config(connection, "admin"), "0014")
    with engine.connect() as connection:
        back = connection.execute(sa.select(rows.c.idx, rows.c.hash).order_by(rows.c.idx)).all()
    assert [(i, bytes(h)) for i, h in back] == [(i, bytes(32) if i == 300 else h) for i, h in enumerate(stored)]
