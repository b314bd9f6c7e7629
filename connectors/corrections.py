"""Applying approved corrections of case data (第十九条, ``hub correct``): in one
transaction the correction is recorded with its reason and both people, the row is set or
deleted (the database's triggers refuse a deletion no correction recorded), a provenance
event goes into the audit trail, the corrected row and the correction are queued for the
province, and a published decision is corrected on the public side.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Connection,
    Engine,
    Integer,
    Table,
    and_,
    delete,
    select,
    update,
)

from connectors.audit import log_rows
from connectors.clock import iso, now
from connectors.db import (
    case_corrections,
    case_results,
    cases,
    metadata,
    status_outbox,
    transaction,
)
from connectors.provenance import record_events
from connectors.province_feed import SOURCES, enqueue_records
from rules.corrections import (
    CORRECTABLE,
    DELETE,
    DISCLOSED_TARGETS,
    SET,
    CorrectionRequest,
    correction_problems,
)
from schemas.exceptions import TerminalError

# A published decision stays published: its 双公示 record is replaced (rules.publication).
DECIDED_STATES = frozenset({"granted", "decided"})
CORRECTED_OPINION = "决定信息已依法更正"


class CorrectionRefused(TerminalError):
    """A correction that is not applied, with every reason; nothing was written."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("correction refused: " + "; ".join(problems))


@dataclass(frozen=True)
class AppliedCorrection:
    correction_id: int
    case_number: str
    target: str
    action: str
    before: dict[str, Any]
    after: dict[str, Any] | None
    public_change: int | None  # the ``corrected`` status change, for a published decision


def _table(name: str) -> Table:
    return metadata.tables[name]


def parse_value(table: str, column: str, text: str) -> Any:
    """An operator's ``field=value`` as the column stores it: ``null`` for none, integers,
    ``true``/``false``, JSON for JSON columns, text otherwise."""
    if text == "null":
        return None
    kind = _table(table).c[column].type
    try:
        if isinstance(kind, Boolean):
            if text not in ("true", "false"):
                raise ValueError(text)
            return text == "true"
        if isinstance(kind, Integer | BigInteger):
            return int(text)
        if isinstance(kind, JSON):
            return json.loads(text)
    except ValueError as error:
        raise CorrectionRefused([f"{table}.{column} 的值 {text!r} 格式不对：{error}"]) from error
    return text


def _jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


def apply_correction(engine: Engine, request: CorrectionRequest, *, at: datetime | None = None) -> AppliedCorrection:
    """Apply ``request`` (checked by ``rules.corrections``) or refuse it whole."""
    problems = correction_problems(request)
    if problems:
        raise CorrectionRefused(problems)
    table = _table(request.target)
    spec = CORRECTABLE[request.target]
    stamp = iso(at or now())
    where = and_(*(table.c[name] == request.key[name] for name in spec.key))
    with transaction(engine) as connection:
        found = connection.execute(select(table).where(where)).mappings().first()
        if found is None:
            raise CorrectionRefused([f"{request.target} 中没有记录 {dict(request.key)}"])
        before = _jsonable(dict(found))
        after: dict[str, Any] | None = None
        if request.action == SET:
            after = {name: value for name, value in request.changes.items() if before.get(name) != value}
            if not after:
                raise CorrectionRefused(["给出的值与现有数据相同，没有要更正的内容"])
        correction_id = int(connection.execute(case_corrections.insert().values(
            case_number=request.case_number, target=request.target, record_key=dict(request.key),
            action=request.action, before=before, after=after, reason=request.reason.strip(),
            requested_by=request.requested_by.strip(), approved_by=request.approved_by.strip(),
            state="applying", at=stamp,
        ).returning(case_corrections.c.id)).scalar_one())
        if request.action == DELETE:
            connection.execute(delete(table).where(where))
        else:
            connection.execute(update(table).where(where).values(**(after or {})))
        connection.execute(update(case_corrections).where(case_corrections.c.id == correction_id)
                           .values(state="applied"))
        log_rows(connection, "case_corrections", [correction_id], stamp)
        case = connection.execute(select(cases.c.net_id, cases.c.state).where(
            cases.c.case_number == request.case_number)).first()
        record_key = (case.net_id if case is not None else None) or request.case_number
        record_events(connection, [(record_key, "correction", request.action, None, {
            "correction_id": correction_id, "target": request.target, "key": dict(request.key),
            "fields": sorted(after or ()), "approved_by": request.approved_by.strip(),
        })], stamp)
        if spec.feed_kind is not None and request.action == SET:
            keys = ["/".join(str(request.key[name]) for name in spec.key)] if spec.feed_kind == "step" else [
                request.case_number]
            enqueue_records(connection, spec.feed_kind, SOURCES[spec.feed_kind].by_key(connection, keys), stamp)
        public_change = None
        if case is not None and case.state in DECIDED_STATES and request.target in DISCLOSED_TARGETS:
            public_change = _public_correction(connection, request.case_number, case.net_id, stamp)
    return AppliedCorrection(correction_id, request.case_number, request.target, request.action, before, after,
                             public_change)


def _public_correction(connection: Connection, case_number: str, net_id: str | None, stamp: str) -> int:
    """A ``corrected`` status change: the public side takes the decision's earlier 双公示
    record down and publishes the corrected one (``rules.publication``)."""
    result = connection.execute(select(case_results.c.result, case_results.c.finished_at, case_results.c.note)
                                .where(case_results.c.case_number == case_number)).first()
    outcome = None if result is None else {"code": result.result, "finished_at": result.finished_at,
                                           "note": result.note}
    return int(connection.execute(status_outbox.insert().values(
        net_id=net_id, case_number=case_number, status="corrected", at=stamp, step="更正",
        opinion=CORRECTED_OPINION, reasons=None, result=outcome,
    ).returning(status_outbox.c.event_id)).scalar_one())


def corrections_of(engine: Engine, case_number: str | None = None) -> list[dict[str, Any]]:
    """The recorded corrections, newest first (of one case when given)."""
    query = select(case_corrections).order_by(case_corrections.c.id.desc())
    if case_number is not None:
        query = query.where(case_corrections.c.case_number == case_number)
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]
