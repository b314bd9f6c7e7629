"""Provenance: one event per record per stage, so an operator can answer
"where is application X?" (``hub trace``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, select

from connectors.db import provenance


def record_events(
    connection: Connection,
    events: Iterable[tuple[str, str, str, str | None, dict[str, Any] | None]],
    at: str,
) -> int:
    """Insert (record_id, stage, outcome, bundle, detail) events in one statement."""
    rows = [
        {"record_id": r, "stage": s, "outcome": o, "bundle": b, "detail": d, "at": at}
        for r, s, o, b, d in events
    ]
    if rows:
        connection.execute(provenance.insert(), rows)
    return len(rows)


def trace(engines: Sequence[tuple[str, Engine]], record_id: str) -> list[dict[str, Any]]:
    """Every event of ``record_id`` in the given zone databases, in time order."""
    found: list[dict[str, Any]] = []
    for zone, engine in engines:
        with engine.connect() as connection:
            query = select(provenance).where(provenance.c.record_id == record_id)
            for row in connection.execute(query.order_by(provenance.c.id)):
                found.append({"zone": zone, **row._asdict()})
    return sorted(found, key=lambda e: (e["at"], e["zone"] != "internet", e["id"]))
