"""Provenance: one event per record per stage, so an operator can answer
"where is application X?" (``hub trace``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from connectors.db import PLACEHOLDER_BY_PARAMSTYLE, provenance

_COLUMNS = ("record_id", "stage", "outcome", "bundle", "detail", "at")
_PLACEHOLDER = PLACEHOLDER_BY_PARAMSTYLE


# (record_id, stage, outcome, bundle, detail)
ProvenanceEvent = tuple[str, str, str, str | None, dict[str, Any] | None]


def record_events(
    connection: Connection,
    events: Iterable[ProvenanceEvent],
    at: str,
) -> int:
    """Insert (record_id, stage, outcome, bundle, detail) events in one statement, and append
    one leaf per event to the zone's audit log in the same transaction (``connectors.audit``).

    There is one event per record per stage, so this is the hub's most frequent insert: the
    rows go to the driver's executemany as plain tuples (building SQLAlchemy's per-row
    parameters cost more than the insert). ``detail`` is stored as SQLAlchemy's JSON type
    stores it (``json.dumps``, ``null`` for None), so readers see the same values.

    The log's head is locked before the insert, so no other writer inserts provenance rows
    until this transaction ends: the new ids are exactly those above the highest id before
    it, in the order of ``events`` (one range read), and leaf numbers follow commit order.
    """
    # Here, not at the top: ``trace`` (``hub trace``) needs none of the log's machinery.
    from connectors.audit import append_entries, canonical, lock_head, provenance_entry, salts
    from schemas.exceptions import TerminalError

    rows = [(r, s, o, b, json.dumps(d), at) for r, s, o, b, d in events]
    if not rows:
        return 0
    head = lock_head(connection)
    before = connection.execute(select(func.max(provenance.c.id))).scalar() or 0
    placeholder = _PLACEHOLDER.get(connection.dialect.paramstyle)
    if placeholder is None:
        connection.execute(provenance.insert(), [dict(zip(_COLUMNS, row)) for row in rows])
    else:
        statement = (
            f"INSERT INTO {provenance.name} ({', '.join(_COLUMNS)}) "
            f"VALUES ({', '.join([placeholder] * len(_COLUMNS))})"
        )
        connection.exec_driver_sql(statement, rows)
    ids = connection.execute(
        select(provenance.c.id).where(provenance.c.id > before).order_by(provenance.c.id)).scalars().all()
    if len(ids) != len(rows):
        raise TerminalError(f"{len(ids)} provenance rows appeared for {len(rows)} events: another writer "
                            "bypassed the audit log's lock")
    append_entries(connection, head, "provenance", [
        (key, provenance_entry(key, r, s, o, b, "null" if text == "null" else canonical(json.loads(text)), a, salt))
        for key, (r, s, o, b, text, a), salt in zip(ids, rows, salts(len(rows)), strict=True)
    ], at)
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
