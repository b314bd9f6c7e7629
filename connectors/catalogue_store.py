"""The power catalogue in the exchange database: importing the provincial platform's
catalogue files (JSON Lines or XLSX), every item version and transition, and the
catalogue the administration zone validates against.

An import applies its good rows and reports each bad row with its reason; applying the
same file twice changes nothing (an item already exactly so gets no new version).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from connectors.audit import log_rows
from connectors.clock import iso, now
from connectors.db import catalogue_items, catalogue_transitions, transaction
from rules.catalogue import (
    Catalogue,
    CatalogueError,
    PowerItem,
    catalogue_from_versions,
    content_digest,
    plan_change,
)
from rules.catalogue_import import SourceRow, rows_from_json_lines, rows_from_sheet


@dataclass
class ImportReport:
    """What one import did: changes applied, rows already so, and refused rows."""

    source: str
    rows: int = 0
    applied: list[dict[str, Any]] = field(default_factory=list)
    unchanged: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    catalogue_version: str | None = None


def read_catalogue_file(path: Path) -> list[SourceRow]:
    """The rows of a provincial catalogue file: ``.jsonl`` / ``.ndjson`` or ``.xlsx``."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        with open(path, "rb") as stream:
            return rows_from_json_lines(stream)
    if suffix == ".xlsx":
        from openpyxl import load_workbook

        workbook = load_workbook(path, read_only=True, data_only=True)
        try:
            return rows_from_sheet(workbook.worksheets[0].iter_rows(values_only=True))
        finally:
            workbook.close()
    raise CatalogueError(f"{path.name}: a catalogue file is .jsonl, .ndjson or .xlsx")


def _current_versions(connection: Connection) -> dict[str, PowerItem]:
    rows = connection.execute(
        select(catalogue_items.c.document, catalogue_items.c.effective_from)
    ).all()
    if not rows:
        return {}
    catalogue = catalogue_from_versions(
        (row.document, datetime.fromisoformat(row.effective_from)) for row in rows
    )
    return dict(catalogue.items)


def import_rows(engine: Engine, rows: Iterable[SourceRow], *, source: str) -> ImportReport:
    """Apply every good row in one transaction; report every bad row with its reason."""
    report = ImportReport(source=source)
    recorded_at = iso(now())
    with transaction(engine) as connection:
        current = _current_versions(connection)
        for row in rows:
            report.rows += 1
            if row.entry is None:
                report.errors.append({"row": row.number, "code": None, "reason": row.error})
                continue
            item = row.entry.get("item")
            code = item.get("code") if isinstance(item, dict) else None
            try:
                planned = plan_change(current.get(code) if isinstance(code, str) else None, row.entry)
            except CatalogueError as error:
                report.errors.append({"row": row.number, "code": code, "reason": str(error)})
                continue
            if planned is None:
                report.unchanged += 1
                continue
            document, transition = planned
            effective_from = transition.at.isoformat()
            connection.execute(
                catalogue_items.insert().values(
                    code=document["code"], version=document["version"], state=document["state"],
                    document=document, content_digest=content_digest(document),
                    effective_from=effective_from, recorded_at=recorded_at,
                )
            )
            record = transition.as_dict()
            logged = connection.execute(
                catalogue_transitions.insert().values(
                    code=record["code"], action=record["action"], from_state=record["from_state"],
                    to_state=record["to_state"], from_version=record["from_version"],
                    to_version=record["to_version"], changed_by=record["by"], changed_at=record["at"],
                    reason=record["reason"], approvals=record["approvals"], source=source,
                    recorded_at=recorded_at,
                )
            ).inserted_primary_key
            assert logged is not None
            log_rows(connection, "catalogue_transitions", [int(logged[0])], recorded_at)
            current[document["code"]] = catalogue_from_versions(
                [(document, transition.at)]
            ).items[document["code"]]
            report.applied.append(
                {"row": row.number, "code": document["code"], "action": transition.action,
                 "version": document["version"], "state": document["state"]}
            )
    stored = stored_catalogue(engine)
    report.catalogue_version = stored.version if stored else None
    return report


def import_file(engine: Engine, path: Path) -> ImportReport:
    return import_rows(engine, read_catalogue_file(path), source=path.name)


def stored_catalogue(engine: Engine) -> Catalogue | None:
    """The imported catalogue with its history, or None before the first import."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(catalogue_items.c.document, catalogue_items.c.effective_from)
        ).all()
    if not rows:
        return None
    return catalogue_from_versions(
        (row.document, datetime.fromisoformat(row.effective_from)) for row in rows
    )


def store_mark(engine: Engine) -> tuple[int, str | None]:
    """A cheap fingerprint of the stored catalogue (versions, last change) for caching."""
    with engine.connect() as connection:
        count, last = connection.execute(
            select(func.count(), func.max(catalogue_items.c.recorded_at)).select_from(catalogue_items)
        ).one()
    return int(count), last


def item_history(engine: Engine, code: str) -> dict[str, Any] | None:
    """Every version and every transition of one item, oldest first."""
    with engine.connect() as connection:
        versions = connection.execute(
            select(catalogue_items).where(catalogue_items.c.code == code).order_by(catalogue_items.c.version)
        ).all()
        transitions = connection.execute(
            select(catalogue_transitions)
            .where(catalogue_transitions.c.code == code)
            .order_by(catalogue_transitions.c.id)
        ).all()
    if not versions:
        return None
    return {
        "code": code,
        "versions": [
            {"version": v.version, "state": v.state, "effective_from": v.effective_from,
             "recorded_at": v.recorded_at, "document": v.document}
            for v in versions
        ],
        "history": [
            {"action": t.action, "from_state": t.from_state, "to_state": t.to_state,
             "from_version": t.from_version, "to_version": t.to_version, "by": t.changed_by,
             "at": t.changed_at, "reason": t.reason, "approvals": t.approvals, "source": t.source,
             "recorded_at": t.recorded_at}
            for t in transitions
        ],
    }
