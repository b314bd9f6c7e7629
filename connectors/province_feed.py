"""The provincial feed (省级平台数据上报): incremental batches of case base records, process
steps, results, penalty cases, alerts and catalogue changes, each row with its sync mark
(pending → sent → accepted | failed, with the province's error text), carried over SFTP
and acknowledged by the province's receipts. The format is in ``docs/province-feed.md``.

Changes are found by scanning the source tables from their own timestamps and comparing
each record's content digest with what was last sent, so a row goes again exactly when it
changed; a failed row goes again once it is fixed at its source. Writers other than the
scans (penalty cases, alerts) hand their records to :func:`enqueue_records`.

One writer at a time (the ``province_report`` DAG runs with ``max_active_runs=1``).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import (
    Connection,
    Engine,
    MetaData,
    Table,
    and_,
    bindparam,
    func,
    inspect,
    or_,
    select,
    update,
)

from connectors.alarms import raise_alarm, resolve_open
from connectors.audit import Witness, store_cosignature, witness_request
from connectors.clock import iso, now
from connectors.db import (
    alarms,
    applications,
    case_corrections,
    case_filings,
    case_registrations,
    case_results,
    case_steps,
    cases,
    penalty_cases,
    province_batches,
    province_scan,
    province_sync,
    transaction,
)
from connectors.files import write_atomic
from connectors.province_sftp import ProvinceSftp, SftpSettings, province_session
from ferry.keys import SigningKey
from ferry.suites import get_suite
from ferry.tlog import SECURITY_CODES as LOG_SECURITY_CODES
from ferry.tlog import CheckpointRefused
from rules.cases import ONLINE_CHANNEL
from rules.opinions import refusal
from schemas import load_schema

FORMAT = "pehub-province-feed/1"
# Record kinds in file order; alerts and penalty cases get a file only when present.
log = logging.getLogger(__name__)
WITNESS_REFUSED = "AUDIT_WITNESS_REFUSED"  # the province did not cosign, or its cosignature is bad

KINDS = ("case", "step", "result", "penalty", "alert", "filing", "correction", "catalogue_change")
ALWAYS_FILED = ("case", "step", "result", "catalogue_change")
MARKS = ("pending", "sent", "accepted", "failed")
# Record kinds that belong to a case: the province takes them only after the case's base
# record, and refuses them as ORPHAN before; such a row goes again once its case is in.
CASE_PARTS = ("step", "result", "penalty", "filing", "correction")
ORPHAN = "ORPHAN"
LAG_ALARM = "PROVINCE_FEED_LAG"
LAG_LIMIT = timedelta(hours=20)  # the rule is 24 hours; the alarm leaves time to act
FEED_DIR = "feed"
RECEIPTS_DIR = "receipts"
MANIFEST = "manifest.json"


def schema_name(kind: str) -> str:
    return f"province_{kind}"


def canonical(value: Any) -> bytes:
    """The canonical JSON bytes that digests and signatures are computed over."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def digest(value: Any) -> str:
    return hashlib.sha256(canonical(value)).hexdigest()


def batch_id_for(agency_code: str, sequence: int) -> str:
    return f"PF{agency_code}-{sequence:08d}"


# --- sources --------------------------------------------------------------------------

SourceRow = tuple[str, dict[str, Any], str]  # record key, record, changed_at


def _case_record(row: Any) -> SourceRow:
    record = {
        "record_key": row.case_number,
        "case_number": row.case_number,
        "net_id": row.net_id,
        "origin": row.origin,
        "power_code": row.power_code,
        "power_version": row.power_version,
        "agency_code": row.agency_code,
        "case_name": row.case_name,
        "channel": row.channel,
        "applicant_type": row.applicant_type,
        "applicant_name": row.applicant_name,
        "applicant_id_type": row.applicant_id_type,
        "applicant_id_number": row.applicant_id_number,
        "state": row.state,
        "submitted_at": row.submitted_at,
        "registered_at": row.registered_at,
        # 第十六条(二): acceptance time, acceptor and time limit, once accepted.
        "accepted_at": row.accepted_at,
        "acceptor_code": row.acceptor_code,
        "acceptor_name": row.acceptor_name,
        "time_limit": row.time_limit,
        "time_limit_unit": row.time_limit_unit,
        "updated_at": row.updated_at,
    }
    return row.case_number, record, row.updated_at


# Every case, whatever its origin: the party of an internet case is in its application, that
# of a counter or ex-officio case in the case-processing system's registration record.
_PARTY = ("case_name", "applicant_type", "applicant_name", "applicant_id_type", "applicant_id_number",
          "submitted_at")


def _case_query() -> Any:
    return select(
        cases.c.case_number, cases.c.net_id, cases.c.origin, cases.c.power_code, cases.c.power_version,
        cases.c.agency_code, cases.c.registered_at, cases.c.state, cases.c.updated_at, cases.c.accepted_at,
        cases.c.acceptor_code, cases.c.acceptor_name, cases.c.time_limit, cases.c.time_limit_unit,
        *(func.coalesce(applications.c[name], case_registrations.c[name]).label(name) for name in _PARTY),
        func.coalesce(case_registrations.c.channel, ONLINE_CHANNEL).label("channel"),
    ).select_from(
        cases.outerjoin(applications, applications.c.case_number == cases.c.case_number)
        .outerjoin(case_registrations, case_registrations.c.case_number == cases.c.case_number)
    )


def _cases_since(connection: Connection, since: str) -> Iterator[SourceRow]:
    for row in connection.execute(_case_query().where(cases.c.updated_at >= since)):
        yield _case_record(row)


def _cases_by_key(connection: Connection, keys: list[str]) -> Iterator[SourceRow]:
    for row in connection.execute(_case_query().where(cases.c.case_number.in_(keys))):
        yield _case_record(row)


def _step_record(row: Any) -> SourceRow:
    key = f"{row.case_number}/{row.step_no}"
    record = {"record_key": key, **{str(c.name): getattr(row, c.name) for c in case_steps.columns}}
    return key, record, row.finished_at or row.started_at


def _steps_since(connection: Connection, since: str) -> Iterator[SourceRow]:
    query = select(case_steps).where(or_(case_steps.c.started_at >= since, case_steps.c.finished_at >= since))
    for row in connection.execute(query):
        yield _step_record(row)


def _steps_by_key(connection: Connection, keys: list[str]) -> Iterator[SourceRow]:
    wanted = set(keys)
    numbers = sorted({key.split("/", 1)[0] for key in keys})
    for row in connection.execute(select(case_steps).where(case_steps.c.case_number.in_(numbers))):
        found = _step_record(row)
        if found[0] in wanted:
            yield found


def _result_record(row: Any) -> SourceRow:
    record = {"record_key": row.case_number, **{str(c.name): getattr(row, c.name) for c in case_results.columns}}
    return row.case_number, record, row.finished_at


def _results_since(connection: Connection, since: str) -> Iterator[SourceRow]:
    for row in connection.execute(select(case_results).where(case_results.c.finished_at >= since)):
        yield _result_record(row)


def _results_by_key(connection: Connection, keys: list[str]) -> Iterator[SourceRow]:
    for row in connection.execute(select(case_results).where(case_results.c.case_number.in_(keys))):
        yield _result_record(row)


def _penalty_record(row: Any) -> SourceRow:
    record = {
        "record_key": row.case_number,
        **{str(c.name): getattr(row, c.name) for c in penalty_cases.columns if c.name != "decided_at"},
    }
    return row.case_number, record, row.decided_at


def _penalties_since(connection: Connection, since: str) -> Iterator[SourceRow]:
    for row in connection.execute(select(penalty_cases).where(penalty_cases.c.decided_at >= since)):
        yield _penalty_record(row)


def _penalties_by_key(connection: Connection, keys: list[str]) -> Iterator[SourceRow]:
    for row in connection.execute(select(penalty_cases).where(penalty_cases.c.case_number.in_(keys))):
        yield _penalty_record(row)


def _filing_record(row: Any) -> SourceRow:
    record = {"record_key": row.case_number, **{str(c.name): getattr(row, c.name) for c in case_filings.columns
                                                 if c.name != "filed_by"}}
    return row.case_number, record, row.recorded_at


def _filings_since(connection: Connection, since: str) -> Iterator[SourceRow]:
    for row in connection.execute(select(case_filings).where(case_filings.c.recorded_at >= since)):
        yield _filing_record(row)


def _filings_by_key(connection: Connection, keys: list[str]) -> Iterator[SourceRow]:
    for row in connection.execute(select(case_filings).where(case_filings.c.case_number.in_(keys))):
        yield _filing_record(row)


def _correction_record(row: Any) -> SourceRow:
    key = f"{row.case_number}/c{row.id}"
    changed = sorted(row.after) if isinstance(row.after, dict) else []
    record = {
        "record_key": key, "correction_id": row.id, "case_number": row.case_number, "target": row.target,
        "row_key": row.record_key, "action": row.action, "fields": changed, "reason": row.reason,
        "requested_by": row.requested_by, "approved_by": row.approved_by, "corrected_at": row.at,
    }
    return key, record, row.at


def _corrections_since(connection: Connection, since: str) -> Iterator[SourceRow]:
    query = select(case_corrections).where(case_corrections.c.at >= since, case_corrections.c.state == "applied")
    for row in connection.execute(query):
        yield _correction_record(row)


def _corrections_by_key(connection: Connection, keys: list[str]) -> Iterator[SourceRow]:
    ids = [int(key.rsplit("/c", 1)[1]) for key in keys]
    for row in connection.execute(select(case_corrections).where(case_corrections.c.id.in_(ids))):
        yield _correction_record(row)


def _catalogue_transitions(connection: Connection) -> Table | None:
    """The catalogue store's change history, when this database has one (reflected, so the
    feed does not depend on the catalogue store's module)."""
    if not inspect(connection).has_table("catalogue_transitions"):
        return None
    return Table("catalogue_transitions", MetaData(), autoload_with=connection)


def _change_record(row: Any) -> SourceRow:
    key = str(row.id)
    record = {
        "record_key": key,
        "code": row.code,
        "action": row.action,
        "from_state": row.from_state,
        "to_state": row.to_state,
        "from_version": row.from_version,
        "to_version": row.to_version,
        "changed_by": row.changed_by,
        "changed_at": row.changed_at,
        "reason": row.reason,
        "approvals": row.approvals if isinstance(row.approvals, list) else [],
    }
    return key, record, row.recorded_at


def _changes_since(connection: Connection, since: str) -> Iterator[SourceRow]:
    table = _catalogue_transitions(connection)
    if table is not None:
        for row in connection.execute(select(table).where(table.c.recorded_at >= since)):
            yield _change_record(row)


def _changes_by_key(connection: Connection, keys: list[str]) -> Iterator[SourceRow]:
    table = _catalogue_transitions(connection)
    if table is not None:
        for row in connection.execute(select(table).where(table.c.id.in_([int(k) for k in keys]))):
            yield _change_record(row)


@dataclass(frozen=True)
class Source:
    """How the feed finds one kind's changed rows: since a source timestamp, or by key."""

    since: Callable[[Connection, str], Iterator[SourceRow]]
    by_key: Callable[[Connection, list[str]], Iterator[SourceRow]]


SOURCES: dict[str, Source] = {
    "case": Source(_cases_since, _cases_by_key),
    "step": Source(_steps_since, _steps_by_key),
    "result": Source(_results_since, _results_by_key),
    "penalty": Source(_penalties_since, _penalties_by_key),
    "filing": Source(_filings_since, _filings_by_key),
    "correction": Source(_corrections_since, _corrections_by_key),
    "catalogue_change": Source(_changes_since, _changes_by_key),
}


# --- sync marks -----------------------------------------------------------------------


def _chunks(items: list[Any], size: int = 500) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def enqueue_records(connection: Connection, kind: str, rows: Iterable[SourceRow], at: str) -> int:
    """Mark each record pending if it is new or its content changed since it was last
    queued; returns how many were marked. Unchanged records keep their mark."""
    if kind not in KINDS:
        raise ValueError(f"unknown provincial feed kind {kind!r}")
    latest: dict[str, SourceRow] = {}
    for row in rows:
        latest[row[0]] = row
    if not latest:
        return 0
    known: dict[str, str] = {}
    for keys in _chunks(sorted(latest)):
        query = select(province_sync.c.record_key, province_sync.c.digest).where(
            province_sync.c.kind == kind, province_sync.c.record_key.in_(keys)
        )
        known.update({r.record_key: r.digest for r in connection.execute(query)})
    seq = connection.execute(select(func.coalesce(func.max(province_sync.c.change_seq), 0))).scalar_one()
    inserts, updates = [], []
    for key in sorted(latest, key=lambda k: (latest[k][2], k)):
        _, record, changed_at = latest[key]
        content = digest(record)
        if known.get(key) == content:
            continue
        seq += 1
        # Bad data the hub itself refuses to send: failed at once, with the reason, in the
        # steward report; fixed at its source, it is checked again and goes (scan_changes).
        refused = refusal(kind, record)
        values = {"mark": "failed" if refused else "pending", "change_seq": seq, "digest": content,
                  "record": record, "changed_at": changed_at, "batch_id": None, "updated_at": at,
                  "error": refused}
        if key in known:
            updates.append({"k_kind": kind, "k_key": key, **values})
        else:
            inserts.append({"kind": kind, "record_key": key, **values})
    if inserts:
        connection.execute(province_sync.insert(), inserts)
    if updates:
        connection.execute(
            update(province_sync)
            .where(and_(province_sync.c.kind == bindparam("k_kind"), province_sync.c.record_key == bindparam("k_key")))
            .values({name: bindparam(name) for name in ("mark", "change_seq", "digest", "record", "changed_at", "batch_id", "updated_at", "error")}),
            updates,
        )
    return len(inserts) + len(updates)


def scan_changes(engine: Engine, *, at: datetime | None = None) -> dict[str, int]:
    """Queue every source row changed since the last scan, and re-check every failed row
    against its source (fixed rows go again). Returns rows marked pending per kind."""
    stamp = iso(at or now())
    marked: dict[str, int] = {}
    with transaction(engine) as connection:
        positions = {r.kind: r.scanned_to for r in connection.execute(select(province_scan))}
        for kind, source in SOURCES.items():
            since = positions.get(kind, "")
            rows = list(source.since(connection, since))
            failed = list(
                connection.execute(
                    select(province_sync.c.record_key).where(
                        province_sync.c.kind == kind, province_sync.c.mark == "failed"
                    )
                ).scalars()
            )
            for keys in _chunks(failed):
                rows.extend(source.by_key(connection, keys))
            marked[kind] = enqueue_records(connection, kind, rows, stamp)
            if kind in CASE_PARTS:
                marked[kind] += _requeue_orphans(connection, kind, stamp)
            newest = max((r[2] for r in rows if r[2] >= since), default=None)
            if newest and newest > since:
                if kind in positions:
                    connection.execute(update(province_scan).where(province_scan.c.kind == kind).values(scanned_to=newest))
                else:
                    connection.execute(province_scan.insert().values(kind=kind, scanned_to=newest))
    return marked


def _requeue_orphans(connection: Connection, kind: str, stamp: str) -> int:
    """Mark pending again the rows of ``kind`` the province refused as orphans whose case
    record it has accepted since."""
    case = province_sync.alias("case_mark")
    keys = connection.execute(
        select(province_sync.c.record_key).where(
            province_sync.c.kind == kind, province_sync.c.mark == "failed",
            province_sync.c.error.like(f"{ORPHAN}:%"),
            select(case.c.record_key).where(
                case.c.kind == "case", case.c.mark == "accepted",
                case.c.record_key == func.substr(province_sync.c.record_key, 1, 20),
            ).exists(),
        )
    ).scalars().all()
    for chunk in _chunks(list(keys)):
        connection.execute(
            update(province_sync)
            .where(province_sync.c.kind == kind, province_sync.c.record_key.in_(chunk))
            .values(mark="pending", batch_id=None, error=None, updated_at=stamp)
        )
    return len(keys)


# --- batches --------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedPaths:
    """The administration zone's local copies: built batches, receipts, steward reports."""

    root: Path

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def receipts(self) -> Path:
        return self.root / "receipts"

    @property
    def steward_report(self) -> Path:
        return self.root / "steward" / "rejected-rows.csv"

    def batch_dir(self, batch_id: str) -> Path:
        return self.outbox / batch_id


def plan_batches(engine: Engine, *, agency_code: str, at: datetime | None = None, batch_size: int = 50_000) -> list[str]:
    """Put every pending row not yet in a batch into new batches, oldest change first."""
    stamp = iso(at or now())
    planned: list[str] = []
    while True:
        with transaction(engine) as connection:
            rows = connection.execute(
                select(province_sync.c.kind, province_sync.c.record_key, province_sync.c.change_seq)
                .where(province_sync.c.mark == "pending", province_sync.c.batch_id.is_(None))
                .order_by(province_sync.c.change_seq)
                .limit(batch_size)
            ).all()
            if not rows:
                return planned
            sequence = connection.execute(select(func.coalesce(func.max(province_batches.c.sequence), 0))).scalar_one() + 1
            batch_id = batch_id_for(agency_code, sequence)
            counts = {kind: 0 for kind in KINDS}
            for row in rows:
                counts[row.kind] += 1
            connection.execute(
                province_batches.insert().values(
                    batch_id=batch_id, sequence=sequence, state="planned", created_at=stamp,
                    watermark_from=rows[0].change_seq, watermark_to=rows[-1].change_seq, counts=counts,
                )
            )
            for kind in KINDS:
                keys = [r.record_key for r in rows if r.kind == kind]
                for chunk in _chunks(keys):
                    connection.execute(
                        update(province_sync)
                        .where(province_sync.c.kind == kind, province_sync.c.record_key.in_(chunk))
                        .values(batch_id=batch_id)
                    )
        planned.append(batch_id)


def _arrow_schema(kind: str) -> Any:
    """Parquet columns from the kind's JSON Schema: one source of truth for both formats."""
    import pyarrow as pa

    columns = []
    for name, spec in load_schema(schema_name(kind))["properties"].items():
        types = spec.get("type", "string")
        types = [t for t in (types if isinstance(types, list) else [types]) if t != "null"]
        base = types[0] if types else "string"
        if base == "integer":
            arrow_type = pa.int64()
        elif base == "array" and spec.get("items", {}).get("type") == "string":
            arrow_type = pa.list_(pa.string())
        else:
            arrow_type = pa.string()  # strings, and nested objects as JSON text
        columns.append(pa.field(name, arrow_type))
    return pa.schema(columns)


def _parquet_rows(kind: str, records: list[dict[str, Any]], schema: Any) -> list[dict[str, Any]]:
    nested = {f.name for f in schema if str(f.type) == "string"}
    rows = []
    for record in records:
        row = {}
        for name in schema.names:
            value = record.get(name)
            if name in nested and isinstance(value, (list, dict)):
                value = orjson.dumps(value).decode("utf-8")
            row[name] = value
        rows.append(row)
    return rows


def build_batch(engine: Engine, batch_id: str, *, paths: FeedPaths, key: SigningKey, agency_code: str) -> Path:
    """Write the batch's record files and its signed manifest into the local outbox (once:
    a built batch is never rewritten, so a resend is byte-identical)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = paths.batch_dir(batch_id)
    if (folder / MANIFEST).is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    with engine.connect() as connection:
        batch = connection.execute(select(province_batches).where(province_batches.c.batch_id == batch_id)).one()
        rows = connection.execute(
            select(province_sync.c.kind, province_sync.c.record)
            .where(province_sync.c.batch_id == batch_id)
            .order_by(province_sync.c.change_seq)
        ).all()
    files, counts = [], {kind: 0 for kind in KINDS}
    for kind in KINDS:
        records = [r.record for r in rows if r.kind == kind]
        counts[kind] = len(records)
        if not records and kind not in ALWAYS_FILED:
            continue
        jsonl = b"".join(orjson.dumps(r) + b"\n" for r in records)
        write_atomic(folder / f"{kind}.jsonl", jsonl)
        schema = _arrow_schema(kind)
        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pylist(_parquet_rows(kind, records, schema), schema=schema), sink, compression="zstd")
        parquet = sink.getvalue().to_pybytes()
        write_atomic(folder / f"{kind}.parquet", parquet)
        for name, fmt, data in ((f"{kind}.jsonl", "jsonl", jsonl), (f"{kind}.parquet", "parquet", parquet)):
            files.append({"name": name, "kind": kind, "format": fmt, "records": len(records),
                          "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    manifest = {
        "format": FORMAT,
        "batch_id": batch_id,
        "sequence": batch.sequence,
        "agency_code": agency_code,
        "created_at": batch.created_at,
        "watermark": {"from": batch.watermark_from, "to": batch.watermark_to},
        "counts": counts,
        "files": files,
    }
    with engine.connect() as connection:
        witnessed = witness_request(connection, _pending_checkpoints(engine, paths, batch.sequence))
    if witnessed is not None:
        manifest["audit_checkpoint"] = witnessed  # for the province to cosign (docs/audit.md §11)
    signature = get_suite(key.suite).sign(key.private, canonical(manifest))
    document = {
        "manifest": manifest,
        "signature": {"key_id": key.key_id, "suite": key.suite, "value": base64.b64encode(signature).decode("ascii")},
    }
    data = orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    write_atomic(folder / MANIFEST, data)
    with transaction(engine) as connection:
        connection.execute(
            update(province_batches).where(province_batches.c.batch_id == batch_id)
            .values(manifest_sha256=hashlib.sha256(data).hexdigest(), counts=counts)
        )
    return folder


def _pending_checkpoints(engine: Engine, paths: FeedPaths, sequence: int) -> list[int]:
    """The audit checkpoint sizes in the manifests of the batches before ``sequence`` whose
    receipts have not been applied: the province may have cosigned them already."""
    with engine.connect() as connection:
        unacknowledged = connection.execute(select(province_batches.c.batch_id).where(
            province_batches.c.sequence < sequence, province_batches.c.state != "acknowledged")).scalars().all()
    sizes = []
    for batch_id in unacknowledged:
        manifest = paths.batch_dir(batch_id) / MANIFEST
        if manifest.is_file():
            request = orjson.loads(manifest.read_bytes())["manifest"].get("audit_checkpoint")
            if request is not None:
                sizes.append(int(request["note"].split("\n", 2)[1]))
    return sizes


def verify_manifest(document: Any, public_key: bytes, suite: str) -> bool:
    """True when ``document`` (a parsed manifest.json) is signed by ``public_key``."""
    try:
        signature = base64.b64decode(document["signature"]["value"], validate=True)
        return get_suite(suite).verify(public_key, signature, canonical(document["manifest"]))
    except (KeyError, TypeError, ValueError):
        return False


# --- exchange with the province -------------------------------------------------------


def upload_batch(session: ProvinceSftp, folder: Path, *, force: bool = False) -> bool:
    """Upload one built batch: record files first, the manifest last (its presence tells
    the province the batch is complete). Returns False when the province already holds
    this very manifest (a duplicate delivery is skipped; ``force`` sends it anyway)."""
    batch_id = folder.name
    remote = f"{FEED_DIR}/{batch_id}"
    local_manifest = (folder / MANIFEST).read_bytes()
    if (
        not force
        and session.exists(f"{remote}/{MANIFEST}")
        and session.read_bytes(f"{remote}/{MANIFEST}") == local_manifest
    ):
        return False
    session.makedirs(remote)
    manifest = orjson.loads(local_manifest)["manifest"]
    for item in manifest["files"]:
        session.upload(folder / item["name"], f"{remote}/{item['name']}")
    session.upload(folder / MANIFEST, f"{remote}/{MANIFEST}")
    return True


@dataclass
class ExchangeReport:
    uploaded: list[str] = field(default_factory=list)
    already_there: list[str] = field(default_factory=list)
    receipts: list[dict[str, Any]] = field(default_factory=list)
    held: dict[str, str] = field(default_factory=dict)  # batch id -> why the quality gate holds it
    steward_report: str | None = None


BatchGate = Callable[[str], "str | None"]  # batch id -> reason to hold it, or None to send


def _batches_in_state(engine: Engine, state: str) -> list[str]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(province_batches.c.batch_id).where(province_batches.c.state == state).order_by(province_batches.c.sequence)
            ).scalars()
        )


def send_batches(
    engine: Engine, session: ProvinceSftp, *, paths: FeedPaths, report: ExchangeReport,
    at: datetime | None = None, gate: BatchGate | None = None,
) -> None:
    """Upload every planned batch in sequence order, marking each batch and its rows sent
    as soon as it is delivered; the first failure stops the run, so order is kept. A batch
    the quality ``gate`` holds stops the run too (it and the batches after it wait)."""
    for batch_id in _batches_in_state(engine, "planned"):
        held = gate(batch_id) if gate is not None else None
        if held is not None:
            report.held[batch_id] = held
            return
        folder = paths.batch_dir(batch_id)
        if upload_batch(session, folder):
            report.uploaded.append(batch_id)
        else:
            report.already_there.append(batch_id)
        stamp = iso(at or now())
        with transaction(engine) as connection:
            connection.execute(
                update(province_batches).where(province_batches.c.batch_id == batch_id).values(state="sent", sent_at=stamp)
            )
            connection.execute(
                update(province_sync)
                .where(province_sync.c.batch_id == batch_id, province_sync.c.mark == "pending")
                .values(mark="sent", updated_at=stamp)
            )


def apply_receipt(engine: Engine, receipt: dict[str, Any], *, at: datetime | None = None) -> dict[str, Any] | None:
    """Mark the rows of the receipt's batch accepted or failed (with the error text); a
    receipt for a batch already acknowledged changes nothing and returns None."""
    import schemas

    problems = list(schemas.errors("province_receipt", receipt))
    if problems:
        raise ValueError(f"receipt does not match its schema: {problems[0].path} {problems[0].message}")
    batch_id = receipt["batch_id"]
    stamp = iso(at or now())
    errors: dict[tuple[str, str], list[str]] = {}
    for error in receipt["errors"]:
        errors.setdefault((error["kind"], error["record_key"]), []).append(
            f"{error['code']}: {error['message']}" + (f" ({error['path']})" if error.get("path") else "")
        )
    refused = receipt.get("status") == "refused"
    with transaction(engine) as connection:
        state = connection.execute(select(province_batches.c.state).where(province_batches.c.batch_id == batch_id)).scalar()
        if state != "sent":
            return None
        rows = connection.execute(
            select(province_sync.c.kind, province_sync.c.record_key)
            .where(province_sync.c.batch_id == batch_id, province_sync.c.mark == "sent")
        ).all()
        marks = []
        for row in rows:
            reasons = errors.get((row.kind, row.record_key))
            if refused and not reasons:
                reasons = [f"BATCH_REFUSED: {receipt.get('detail', 'the province refused the whole batch')}"]
            marks.append({"k_kind": row.kind, "k_key": row.record_key, "mark": "failed" if reasons else "accepted",
                          "error": "; ".join(reasons) if reasons else None})
        if marks:
            connection.execute(
                update(province_sync)
                .where(and_(province_sync.c.kind == bindparam("k_kind"), province_sync.c.record_key == bindparam("k_key"),
                            province_sync.c.batch_id == batch_id))
                .values(mark=bindparam("mark"), error=bindparam("error"), updated_at=stamp),
                marks,
            )
        failed = sum(1 for m in marks if m["mark"] == "failed")
        connection.execute(
            update(province_batches).where(province_batches.c.batch_id == batch_id)
            .values(state="acknowledged", receipt_at=stamp, accepted=receipt["accepted"], rejected=receipt["rejected"])
        )
    return {"batch_id": batch_id, "accepted": receipt["accepted"], "rejected": receipt["rejected"], "rows_failed": failed}


def collect_receipts(engine: Engine, session: ProvinceSftp, *, paths: FeedPaths, report: ExchangeReport,
                     at: datetime | None = None, witness: Witness | None = None) -> None:
    """Fetch the receipt of every sent batch the province has answered and apply it; keep
    the province's cosignature of the audit checkpoint it carried (checked with ``witness``),
    and raise an alarm when the province refused to cosign or its cosignature is bad."""
    for batch_id in _batches_in_state(engine, "sent"):
        name = f"{batch_id}.receipt.json"
        if not session.exists(f"{RECEIPTS_DIR}/{name}"):
            continue
        data = session.read_bytes(f"{RECEIPTS_DIR}/{name}", limit=256 * 1024 * 1024)
        paths.receipts.mkdir(parents=True, exist_ok=True)
        write_atomic(paths.receipts / name, data)
        try:
            receipt = orjson.loads(data)
            if not isinstance(receipt, dict) or receipt.get("batch_id") != batch_id:
                raise ValueError("receipt names another batch")
            applied = apply_receipt(engine, receipt, at=at)
        except (orjson.JSONDecodeError, ValueError) as error:
            with transaction(engine) as connection:
                raise_alarm(connection, "PROVINCE_RECEIPT_INVALID", {"batch_id": batch_id, "error": str(error)},
                            iso(at or now()))
            continue
        if applied is not None:
            report.receipts.append(applied)
            _witnessed(engine, receipt, witness, iso(at or now()))


def _witnessed(engine: Engine, receipt: dict[str, Any], witness: Witness | None, at: str) -> None:
    refused = receipt.get("audit_witness_refused")
    note = receipt.get("audit_cosignature")
    if refused is None and note is None:
        return
    batch = receipt["batch_id"]
    if refused is not None:
        kind = "security" if refused["code"] in LOG_SECURITY_CODES else WITNESS_REFUSED
        with transaction(engine) as connection:
            raise_alarm(connection, kind, {"batch_id": batch, "witness": "province", **refused}, at)
        return
    if witness is None:
        log.warning("the province cosigned the audit checkpoint of %s, but no witness_key is pinned: not kept", batch)
        return
    try:
        store_cosignature(engine, str(note), witness, at)
    except CheckpointRefused as error:
        with transaction(engine) as connection:
            raise_alarm(connection, WITNESS_REFUSED, {"batch_id": batch, "code": error.code, "detail": error.detail}, at)


def exchange(
    engine: Engine, sftp: SftpSettings, *, paths: FeedPaths, at: datetime | None = None,
    gate: BatchGate | None = None, witness: Witness | None = None,
) -> ExchangeReport:
    """Upload planned batches, collect receipts (and the province's cosignatures of the audit
    checkpoints, checked with ``witness``), rewrite the steward report. A transient SFTP
    failure is raised as ``ProvinceUnreachable``: the batches not yet delivered stay
    planned, and the task's Airflow retry sends them again (a batch whose manifest the
    province already holds is skipped, see ``upload_batch``)."""
    report = ExchangeReport()
    with province_session(sftp) as session:
        send_batches(engine, session, paths=paths, report=report, at=at, gate=gate)
        collect_receipts(engine, session, paths=paths, report=report, at=at, witness=witness)
    report.steward_report = str(write_steward_report(engine, paths.steward_report))
    return report


# --- monitoring -----------------------------------------------------------------------


def check_lag(engine: Engine, *, at: datetime | None = None, limit: timedelta = LAG_LIMIT) -> dict[str, Any] | None:
    """Raise an alarm when the oldest change not yet delivered is older than ``limit``
    (once per oldest change); returns the alarm's detail, or None when in time."""
    moment = at or now()
    with transaction(engine) as connection:
        oldest = connection.execute(
            select(province_sync.c.kind, province_sync.c.record_key, province_sync.c.changed_at)
            .where(province_sync.c.mark == "pending")
            .order_by(province_sync.c.changed_at, province_sync.c.change_seq)
            .limit(1)
        ).first()
        if oldest is None:
            resolve_open(connection, LAG_ALARM, "已追上：没有未上报的变更 · caught up, nothing undelivered", moment)
            return None
        age = moment - datetime.fromisoformat(oldest.changed_at)
        if age <= limit:
            resolve_open(connection, LAG_ALARM, "已追上：最早未上报的变更在时限内 · caught up, the oldest undelivered "
                         "change is within the limit", moment)
            return None
        pending = connection.execute(select(func.count()).where(province_sync.c.mark == "pending")).scalar_one()
        detail = {
            "oldest_kind": oldest.kind, "oldest_key": oldest.record_key, "oldest_changed_at": oldest.changed_at,
            "age_hours": round(age.total_seconds() / 3600, 1), "pending": pending,
            "message": f"省级平台上报滞后：最早未上报的变更已超过 {int(limit.total_seconds() // 3600)} 小时（规定 24 小时内）",
        }
        for previous in connection.execute(select(alarms.c.detail).where(alarms.c.kind == LAG_ALARM)).scalars():
            if previous.get("oldest_key") == oldest.record_key and previous.get("oldest_changed_at") == oldest.changed_at:
                return detail
        # Still late, but on a newer change: that alarm replaces the earlier ones.
        resolve_open(connection, LAG_ALARM, "被更新的滞后告警取代 · superseded by a later lag alarm", moment)
        raise_alarm(connection, LAG_ALARM, detail, moment)
    return detail


def write_steward_report(engine: Engine, path: Path) -> Path:
    """Every row the province rejected and not yet fixed, for the data stewards: CSV with a
    BOM so spreadsheet programs read the Chinese text."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(province_sync).where(province_sync.c.mark == "failed").order_by(province_sync.c.kind, province_sync.c.record_key)
        ).all()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    with open(partial, "w", encoding="utf-8-sig", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["kind", "record_key", "case_number", "batch_id", "changed_at", "error"])
        for row in rows:
            writer.writerow([row.kind, row.record_key, row.record.get("case_number", ""), row.batch_id, row.changed_at, row.error])
    os.replace(partial, path)
    return path


def feed_status(engine: Engine) -> dict[str, Any]:
    """Marks per kind, batches per state, the acknowledged watermark and the oldest pending change."""
    with engine.connect() as connection:
        marks: dict[str, dict[str, int]] = {}
        for row in connection.execute(
            select(province_sync.c.kind, province_sync.c.mark, func.count()).group_by(province_sync.c.kind, province_sync.c.mark)
        ):
            marks.setdefault(row[0], {m: 0 for m in MARKS})[row[1]] = row[2]
        batches = {row[0]: row[1] for row in connection.execute(
            select(province_batches.c.state, func.count()).group_by(province_batches.c.state)
        )}
        watermark = connection.execute(
            select(func.max(province_batches.c.watermark_to)).where(province_batches.c.state == "acknowledged")
        ).scalar()
        oldest = connection.execute(
            select(func.min(province_sync.c.changed_at)).where(province_sync.c.mark == "pending")
        ).scalar()
        last = connection.execute(
            select(province_batches).where(province_batches.c.state == "acknowledged")
            .order_by(province_batches.c.sequence.desc()).limit(1)
        ).first()
        lag_alarms = connection.execute(select(func.count()).where(alarms.c.kind == LAG_ALARM)).scalar_one()
    return {
        "marks": marks,
        "batches": batches,
        "acknowledged_watermark": watermark or 0,
        "oldest_pending_change": oldest,
        "last_receipt": None if last is None else {
            "batch_id": last.batch_id, "accepted": last.accepted, "rejected": last.rejected, "at": last.receipt_at,
        },
        "lag_alarms": lag_alarms,
    }
