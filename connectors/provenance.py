"""Provenance: one event per record per stage, so an operator can answer
"where is application X?" (``hub trace``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, func, select

from connectors.db import insert_values, provenance

_COLUMNS = ("record_id", "stage", "outcome", "bundle", "detail", "at")


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
    rows go to the driver as plain tuples (building SQLAlchemy's per-row parameters cost more
    than the insert; ``connectors.db.insert_values``: executemany, COPY on PostgreSQL). ``detail`` is stored as JSON text that reads back
    as the value SQLAlchemy's JSON type would store (``null`` for None, not SQL NULL), so
    readers see the same values.

    The log's head is locked before the insert, so no other writer inserts provenance rows
    until this transaction ends: the new ids are exactly those above the highest id before
    it, in the order of ``events`` (one range read), and leaf numbers follow commit order.
    """
    # Here, not at the top: ``trace`` (``hub trace``) needs none of the log's machinery.
    from connectors.audit import (
        append_entries,
        canonical,
        lock_head,
        plain_json,
        provenance_entry,
        salts,
    )
    from schemas.exceptions import TerminalError

    rows = []
    canonicals = []
    for r, s, o, b, d in events:
        stored, canon = _NULL if d is None else _detail_texts(d, plain_json, canonical)
        rows.append((r, s, o, b, stored, at))
        canonicals.append(canon)
    if not rows:
        return 0
    head = lock_head(connection)
    before = connection.execute(select(func.max(provenance.c.id))).scalar() or 0
    insert_values(connection, provenance, _COLUMNS, rows)  # COPY on PostgreSQL
    ids = _new_ids(connection, before)
    if len(ids) != len(rows):
        raise TerminalError(f"{len(ids)} provenance rows appeared for {len(rows)} events: another writer "
                            "bypassed the audit log's lock")
    append_entries(connection, head, "provenance", [
        (key, provenance_entry(key, r, s, o, b, canon, a, salt))
        for key, (r, s, o, b, _, a), canon, salt in zip(ids, rows, canonicals, salts(len(rows)), strict=True)
    ], at)
    return len(rows)


_NULL = ("null", "null")  # detail None: JSON null (not SQL NULL), as SQLAlchemy's JSON type stores it


def _detail_texts(detail: Any, plain_json: Callable[[Any], bool], canonical: Callable[[Any], str]) -> tuple[str, str]:
    """A detail's stored JSON text and its canonical JSON (``connectors.audit.canonical``,
    passed in with ``plain_json`` so ``hub trace`` does not import the log).

    The stored text parses to the same value as SQLAlchemy's JSON type would store
    (``json.dumps``); for plain values (``connectors.audit.plain_json``) it is the canonical
    text itself (orjson's, keys sorted: the same value, one encoding, a tenth of the cost)."""
    if plain_json(detail):
        try:
            text = orjson.dumps(detail, option=orjson.OPT_SORT_KEYS).decode("utf-8")
        except TypeError:  # an integer beyond 64 bits, nesting deeper than orjson allows
            pass
        else:
            return text, text
    return json.dumps(detail), canonical(json.loads(json.dumps(detail)))


def _new_ids(connection: Connection, before: int) -> Sequence[int]:
    """The provenance ids above ``before``, ascending: one aggregate when they are one
    unbroken range (always, under the log's lock), else read one by one."""
    count, low, high = connection.execute(
        select(func.count(), func.min(provenance.c.id), func.max(provenance.c.id)).where(provenance.c.id > before)
    ).one()
    if count and high - low + 1 == count:
        return range(low, high + 1)
    return connection.execute(
        select(provenance.c.id).where(provenance.c.id > before).order_by(provenance.c.id)).scalars().all()


def trace(engines: Sequence[tuple[str, Engine]], record_id: str) -> list[dict[str, Any]]:
    """Every event of ``record_id`` in the given zone databases, in time order."""
    found: list[dict[str, Any]] = []
    for zone, engine in engines:
        with engine.connect() as connection:
            query = select(provenance).where(provenance.c.record_id == record_id)
            for row in connection.execute(query.order_by(provenance.c.id)):
                found.append({"zone": zone, **row._asdict()})
    return sorted(found, key=lambda e: (e["at"], e["zone"] != "internet", e["id"]))
