"""Test-wide environment: a private Airflow home and hub data root per test session,
set before anything imports Airflow and restored afterwards.

Exchange-database fixtures: every test that takes ``exchange_url`` or ``exchange_engine``
runs on SQLite and on the PostgreSQL server on 127.0.0.1:5432 (a database created for this
test session and dropped at its end). PostgreSQL being unreachable is a failure, never a
skip."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

_saved: dict[str, str | None] = {}
_session_dir: Path | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _session_dir
    from hub.airflow_env import airflow_env

    _session_dir = Path(tempfile.mkdtemp(prefix="hub-tests-"))
    env = airflow_env(_session_dir / "airflow", _session_dir / "data")
    for key, value in env.items():
        _saved[key] = os.environ.get(key)
        os.environ[key] = value


def pytest_unconfigure(config: pytest.Config) -> None:
    for key, value in _saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    if _session_dir is not None:
        shutil.rmtree(_session_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata database (SQLite) for this test session."""
    from hub.demo import migrate_metadata

    migrate_metadata(dict(os.environ))
    return Path(os.environ["AIRFLOW_HOME"])


@pytest.fixture
def hub_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh hub data root for one test (both zones, simulators on)."""
    root = tmp_path / "hub-data"
    monkeypatch.setenv("HUB_DATA_ROOT", str(root))
    monkeypatch.setenv("HUB_ZONE", "both")
    monkeypatch.setenv("HUB_SIMULATE", "1")
    yield root


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
    from connectors.db import engine_for

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
    from connectors.db import engine_for

    engine_for(url).dispose()
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def exchange_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty exchange database on each backend."""
    from connectors.db import engine_for

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
    from connectors.db import engine_for
    from connectors.migrate import upgrade

    engine = engine_for(exchange_url)
    upgrade(engine, "admin")
    return engine
