"""Alembic environment of the zone databases, driven from ``connectors.db.metadata``.

Always run through ``connectors.migrate``, which passes the open connection and the zone
("internet" or "admin") in the config attributes; a revision creates only the tables of
that zone (``zone_has``).
"""

from __future__ import annotations

from typing import Any

from alembic import context

from connectors.db import metadata
from connectors.migrate import include_for_zone

config = context.config
connection = config.attributes["connection"]
zone: str = config.attributes["zone"]


def _include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return include_for_zone(zone)(obj, name, type_, reflected, compare_to)


context.configure(
    connection=connection,
    target_metadata=metadata,
    include_object=_include,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    compare_server_default=False,
)
with context.begin_transaction():
    context.run_migrations()
