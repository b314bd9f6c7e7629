"""Schema migrations of the zone databases (Alembic, ``connectors/migrations``).

The hub runs ``upgrade head`` whenever it opens a zone database (``hub.zones``) and on
``hub db upgrade``. One revision history serves both zones: each revision creates only
the tables of the zone it runs for, and the zone's table set is ``connectors.db.ZONE_TABLES``.
Concurrent first opens are serialised (an advisory lock on PostgreSQL, a file lock next to
a SQLite file), so two processes never race to create the same table.
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from connectors.db import ADMIN, INTERNET, metadata

MIGRATIONS = Path(__file__).parent / "migrations"
ZONE_TABLES: dict[str, frozenset[str]] = {
    "internet": frozenset(t.name for t in INTERNET),
    "admin": frozenset(t.name for t in ADMIN),
}
_LOCK_KEY = 0x50454855  # "PEHU": the migration advisory lock on PostgreSQL


def zone_has(table: str) -> bool:
    """Inside a revision: whether the zone being migrated has ``table``."""
    from alembic import op

    zone = op.get_context().config.attributes["zone"]  # type: ignore[union-attr]
    return table in ZONE_TABLES[zone]


def include_for_zone(zone: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """Autogenerate filter: only the tables (and their indexes) of ``zone``."""
    tables = ZONE_TABLES[zone]

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ == "table":
            return name in tables
        table = getattr(obj, "table", None)
        return table is None or table.name in tables

    return include


def _config(connection: Connection, zone: str) -> Config:
    if zone not in ZONE_TABLES:
        raise ValueError(f"unknown zone {zone!r}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    config.attributes["zone"] = zone
    return config


def head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _LOCK_KEY})
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _LOCK_KEY})
                connection.commit()
    elif engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        lock_file = Path(str(engine.url.database) + ".migrate.lock")
        with open(lock_file, "a") as stream:
            fcntl.flock(stream, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(stream, fcntl.LOCK_UN)
    else:
        yield


def upgrade(engine: Engine, zone: str, revision: str = "head") -> str | None:
    """Bring the database of ``zone`` to ``revision``; a no-op when it is there already.
    Returns the revision the database is at afterwards."""
    target = head_revision() if revision == "head" else revision
    if current_revision(engine) == target:
        return target
    with _migration_lock(engine), engine.begin() as connection:
        command.upgrade(_config(connection, zone), revision)
    return current_revision(engine)


def create_schema(engine: Engine, zone: str) -> None:
    """Bring the database of ``zone`` ("internet" or "admin") to the newest schema through
    the Alembic migrations; never ``create_all``."""
    upgrade(engine, zone)


def schema_diff(engine: Engine, zone: str) -> list[Any]:
    """The differences between the migrated database and ``connectors.db.metadata`` for
    ``zone`` (empty when migrations and metadata agree)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "include_object": include_for_zone(zone),
                "compare_type": True,
                "target_metadata": metadata,
            },
        )
        return list(compare_metadata(context, metadata))
