"""Alarms (告警) of a zone: raised when something needs an operator, resolved when it no
longer does. A condition the hub watches (feed lag, a silent channel) resolves its own
alarm once it clears; the others (security events, invalid receipts, impossible resends)
are resolved by an operator with a written reason. Nothing is deleted: a resolved alarm
keeps when, how and by whom."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from connectors.audit import log_rows
from connectors.clock import iso, now
from connectors.db import alarms, transaction
from schemas.exceptions import TerminalError

AUTOMATIC = "hub"


def raise_alarm(connection: Connection, kind: str, detail: Any, at: datetime | str) -> int:
    """Record an open alarm; returns its id."""
    moment = at if isinstance(at, str) else iso(at)
    key = connection.execute(alarms.insert().values(kind=kind, detail=detail, at=moment)).inserted_primary_key
    assert key is not None
    log_rows(connection, "alarms", [int(key[0])], moment)
    return int(key[0])


def open_alarm_rows(connection: Connection, kind: str) -> list[Any]:
    return list(connection.execute(
        select(alarms).where(alarms.c.kind == kind, alarms.c.resolved_at.is_(None)).order_by(alarms.c.id)
    ).all())


def resolve_open(
    connection: Connection, kind: str, resolution: str, at: datetime, *,
    matching: Callable[[Any], bool] = lambda detail: True,
) -> list[int]:
    """Resolve every open alarm of ``kind`` whose detail matches (the condition cleared);
    returns the ids resolved."""
    ids = [row.id for row in open_alarm_rows(connection, kind) if matching(row.detail)]
    if ids:
        connection.execute(update(alarms).where(alarms.c.id.in_(ids)).values(
            resolved_at=iso(at), resolution=resolution, resolved_by=AUTOMATIC))
        log_rows(connection, "alarms", ids, iso(at))
    return ids


def resolve_by_operator(engine: Engine, alarm_id: int, *, reason: str, operator: str) -> None:
    """An operator's resolution, with the reason kept; refused for an unknown or already
    resolved alarm and without a reason."""
    if not reason.strip():
        raise TerminalError("give the reason the alarm is resolved (--reason)")
    with transaction(engine) as connection:
        row = connection.execute(select(alarms).where(alarms.c.id == alarm_id)).first()
        if row is None:
            raise TerminalError(f"no alarm {alarm_id}")
        if row.resolved_at is not None:
            raise TerminalError(f"alarm {alarm_id} was resolved at {row.resolved_at} by {row.resolved_by}: {row.resolution}")
        moment = iso(now())
        connection.execute(update(alarms).where(alarms.c.id == alarm_id).values(
            resolved_at=moment, resolution=reason.strip(), resolved_by=operator))
        log_rows(connection, "alarms", [alarm_id], moment)


def alarm_rows(engine: Engine, *, include_resolved: bool = False, limit: int | None = None) -> list[dict[str, Any]]:
    """Alarms newest first; open ones only unless ``include_resolved``."""
    query = select(alarms).order_by(alarms.c.id.desc())
    if not include_resolved:
        query = query.where(alarms.c.resolved_at.is_(None))
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [{"id": r.id, "kind": r.kind, "at": r.at, "detail": r.detail, "state": "open" if r.resolved_at is None else "resolved",
             "resolved_at": r.resolved_at, "resolution": r.resolution, "resolved_by": r.resolved_by,
             "notified_at": r.notified_at} for r in rows]


def unnotified(engine: Engine) -> list[dict[str, Any]]:
    """Open alarms the deployment's notifier has not been told about, oldest first."""
    with engine.connect() as connection:
        rows = connection.execute(select(alarms).where(
            alarms.c.notified_at.is_(None), alarms.c.resolved_at.is_(None)).order_by(alarms.c.id)).all()
    return [{"id": r.id, "kind": r.kind, "at": r.at, "detail": r.detail} for r in rows]


def mark_notified(engine: Engine, ids: list[int], at: datetime | None = None) -> None:
    if ids:
        with transaction(engine) as connection:
            connection.execute(update(alarms).where(alarms.c.id.in_(ids)).values(notified_at=iso(at or now())))
