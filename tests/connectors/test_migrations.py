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
