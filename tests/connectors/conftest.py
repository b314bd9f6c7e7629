"""The connector tests reuse the ferry test kit (keys, sample files, the bundle forger).

Exchange-database fixtures: every test that takes ``exchange_url`` runs on SQLite and on
the PostgreSQL server on 127.0.0.1:5432 (a database created for this test session and
dropped at its end). PostgreSQL being unreachable is a failure, never a skip."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from connectors.db import engine_for
from connectors.migrate import upgrade

sys.path.insert(0, str(Path(__file__).parents[1] / "ferry"))

BACKENDS = ("sqlite", "postgresql")
# Trust authentication on loopback; the first role that can log in is used.
SERVER_URLS = tuple(
    url for url in (
        os.environ.get("HUB_TEST_POSTGRES_URL"),
        "postgresql+psycopg2://postgres@127.0.0.1:5432/test",
        "postgresql+psycopg2://root@127.0.0.1:5432/test",
    ) if url
)


def _server() -> Engine:
    errors = []
    for url in SERVER_URLS:
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect():
                return engine
        except OperationalError as error:
            errors.append(f"{url}: {error.orig}")
            engine.dispose()
    pytest.fail("PostgreSQL is required for the exchange-database tests: " + "; ".join(errors))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of its own on the local server for this test session."""
    server = _server()
    name = f"hub_test_{os.getpid()}"
    with server.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.url.set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        engine_for(url).dispose()
        with server.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


def reset_postgres(url: str) -> None:
    """An empty public schema (what a fresh database has)."""
    engine_for(url).dispose()
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def exchange_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty exchange database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'exchange.sqlite'}"
        return
    url: str = request.getfixturevalue("postgres_url")
    reset_postgres(url)
    yield url
    engine_for(url).dispose()


@pytest.fixture
def exchange_engine(exchange_url: str) -> Engine:
    """A migrated exchange database on each backend (the hub's own engine for its URL)."""
    engine = engine_for(exchange_url)
    upgrade(engine, "admin")
    return engine


@pytest.fixture
def hub_settings(exchange_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Both zones on this machine with the exchange database on the backend under test,
    keys exchanged, and the zone engines' migration cache cleared."""
    from hub import zones
    from hub.keys import init_keys
    from hub.settings import load_settings

    monkeypatch.setenv("HUB_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("HUB_ZONE", "both")
    monkeypatch.setenv("HUB_EXCHANGE_DB_URL", exchange_url)
    monkeypatch.delenv("HUB_INTERNET_DB_URL", raising=False)
    zones._prepared_engine.cache_clear()
    settings = load_settings()
    init_keys(settings)
    yield settings
    zones._prepared_engine.cache_clear()

