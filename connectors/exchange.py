"""The administration zone's side of the exchange database (交换库): unpacking inbound
bundles, validating and handing over applications, and building the outbound status feed.

Every path here is set-based: one statement per batch and table, never one per record.
"""

from __future__ import annotations

import base64
import gc
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    and_,
    bindparam,
    func,
    or_,
    select,
    tuple_,
    update,
)

from connectors.channel_sender import BuiltBundle, ChannelSender, Rebuild, resumed_of
from connectors.clock import iso, now
from connectors.collector import collector_paused
from connectors.db import (
    applications,
    case_materials,
    case_registrations,
    case_results,
    case_sequences,
    cases,
    inbound_records,
    insert_rows,
    penalty_cases,
    publish_held,
    publish_withheld,
    query_passwords,
    rejections,
    select_chunks,
    select_rows,
    status_outbox,
    transaction,
)
from connectors.ferry_ledger import (
    DATA,
    PlannedBundle,
    last_acknowledged_key,
    plan_next,
    start_writeback,
)
from connectors.provenance import ProvenanceEvent, record_events
from ferry.bundle import (
    ItemSource,
    ManifestItem,
    VerifiedBundle,
    drained,
    lines_item,
    record_line,
    records_item,
)
from ferry.transport import fsync_dir
from rules.catalogue import Catalogue
from rules.handover import (
    APPLICATION_COLUMNS,
    CASE_COLUMNS,
    LOADED,
    MATERIAL_COLUMNS,
    OUTBOX_COLUMNS,
    REJECTION_COLUMNS,
    STAGED_COLUMNS,
    HandOver,
    OutcomeRun,
    Rejection,
    StagedApplication,
    decode_envelope,
    hand_over,
    material_digests,
    outcome_runs,
    refusal_reasons,
)
from rules.publication import (
    DISCLOSING_STATUSES,
    OFFLINE,
    PUBLISHED,
    TAKEDOWN_STATUSES,
    Held,
    StatusChange,
    Withheld,
    case_part,
    change_of_case,
    decide_publication,
    outbound_records,
)
from rules.query_password import (
    QUERY_KDF,
    QUERY_KDF_ITERATIONS,
    generate_query_passwords,
    status_keys,
)
from rules.status_seal import Sealer
from schemas.exceptions import TerminalError

CASE_SEQUENCE_DIGITS = 10


# --- receive --------------------------------------------------------------------------


def attachment_path(store: Path, digest: str) -> Path:
    """Where an attachment lives in the content-addressed store (named by its SHA-256 only)."""
    return store / digest[:2] / digest


STAGING_FOLDER = ".staging"  # inside the store; store folders are two hex digits
STALE_STAGING_SECONDS = 6 * 3600  # far longer than verifying the largest bundle takes


def stage_attachments(store: Path) -> Callable[[], AttachmentStaging]:
    """The receiver's attachment step, done in the verification pass: a fresh
    :class:`AttachmentStaging` per bundle (see ``receive_channel``)."""
    return lambda: AttachmentStaging(store)


class AttachmentStaging:
    """One bundle's attachments on their way into the content-addressed store.

    While ``open_bundle`` verifies the bundle it writes each attachment's plaintext into a
    file of this staging folder (a private folder inside the store, so a rename places it):
    the bytes are read, hashed, checked and decrypted once. ``commit`` runs only after the
    whole bundle verified and the ledger accepted it; it fsyncs the staged files, renames
    each to its digest and fsyncs the store folders. Until then nothing staged is visible
    in the store. ``discard`` removes what is left: the staged files of a rejected,
    duplicate or conflicting bundle. A folder left by a crash is removed by a later
    receiver once it is older than STALE_STAGING_SECONDS.
    """

    def __init__(self, store: Path) -> None:
        self.store = store
        self.folder: Path | None = None  # made when the first attachment is staged
        self._writing: BinaryIO | None = None
        self._staged: dict[str, Path] = {}

    def begin(self, item: ManifestItem) -> BinaryIO | None:
        if item.kind != "attachment" or attachment_path(self.store, item.sha256).exists():
            return None
        self._close()
        if self.folder is None:
            root = self.store / STAGING_FOLDER
            root.mkdir(parents=True, exist_ok=True)
            _remove_stale_staging(root)
            self.folder = Path(tempfile.mkdtemp(dir=root))
        self._writing = open(self.folder / item.sha256, "xb")  # noqa: SIM115 (closed by end or discard)
        return self._writing

    def end(self, item: ManifestItem) -> None:
        assert self.folder is not None and self._writing is not None
        self._writing.flush()
        start_writeback(self._writing.fileno())  # written while the next item is verified
        self._close()
        self._staged[item.sha256] = self.folder / item.sha256

    def commit(self, bundle: VerifiedBundle) -> None:
        placed: set[Path] = set()
        for item in bundle.manifest.items:
            if item.kind != "attachment":
                continue
            target = attachment_path(self.store, item.sha256)
            if target.exists():
                continue
            staged = self._staged.get(item.sha256)
            if staged is None:  # in the store while verifying, gone since: read it again
                placed.add(_copy_into_store(self.store, bundle, item))
                continue
            with open(staged, "rb") as written:
                os.fsync(written.fileno())
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, target)
            placed.add(target.parent)
        _fsync_dirs(placed)

    def discard(self) -> None:
        self._close()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _close(self) -> None:
        if self._writing is not None:
            self._writing.close()
            self._writing = None


def _copy_into_store(store: Path, bundle: VerifiedBundle, item: ManifestItem) -> Path:
    """Decrypt ``item`` from the bundle again (re-checked) into the store; its folder."""
    target = attachment_path(store, item.sha256)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    with open(partial, "wb") as stream:
        bundle.copy_item(item.name, stream)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(partial, target)
    return target.parent


def _fsync_dirs(folders: Iterable[Path]) -> None:
    for folder in sorted(folders):
        fsync_dir(folder)


def _remove_stale_staging(root: Path) -> None:
    """Remove staging folders a killed receiver left behind (never one in use)."""
    cutoff = time.time() - STALE_STAGING_SECONDS
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                shutil.rmtree(entry.path, ignore_errors=True)


_INBOUND_COLUMNS = ("channel", "sequence", "idx", "net_id", "payload", "state", "outcome", "received_at")


def apply_inbound(connection: Connection, bundle: VerifiedBundle, ref: str, at: str) -> int:
    """Stage a verified inbound bundle's applications for loading, in the caller's transaction.

    The cyclic garbage collector is paused meanwhile (``collector_paused``): the bundle's
    rows and events stay alive until they are written, and the collections their
    allocations set off would walk them all again for nothing."""
    channel, sequence = bundle.manifest.channel, bundle.manifest.sequence
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    rows: list[tuple[Any, ...]] = []
    events: list[ProvenanceEvent] = []
    with collector_paused():
        for index, line in enumerate(bundle.iter_records("applications")):
            try:
                parsed = loads(line)
                net_id = str(parsed["net_id"]) if isinstance(parsed, dict) and "net_id" in parsed else None
            except decode_error:
                net_id = None
            record_id = (net_id or f"{ref}/{index}")[:64]
            rows.append((channel, sequence, index, record_id, line.decode("utf-8", errors="replace"),
                         "received", None, at))
            events.append((record_id, "inbound_receive", "received", ref, None))
        if rows:
            insert_rows(connection, inbound_records, _INBOUND_COLUMNS, rows)
        record_events(connection, events, at)
    return len(rows)


# --- load -----------------------------------------------------------------------------


@dataclass
class LoadReport:
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    bundles: list[str] = field(default_factory=list)  # the inbound bundles whose records were loaded


def allocate_case_numbers(connection: Connection, agency_code: str, count: int) -> list[str]:
    """Reserve ``count`` consecutive case numbers (agency code + 10-digit sequence); see
    :func:`allocate_case_numbers_of`."""
    return allocate_case_numbers_of(connection, {agency_code: count})[agency_code]


def allocate_case_numbers_of(connection: Connection, counts: Mapping[str, int]) -> dict[str, list[str]]:
    """Reserve, for each agency code of ``counts``, that many consecutive case numbers
    (agency code + 10-digit sequence).

    One multi-row upsert with ``RETURNING`` for every agency of a batch (a statement per
    agency cost more than a hundred applications' validation each; a province has hundreds
    of agencies). Each row stays locked until the transaction ends, so the hub's loads and
    the case-processing system's own registrations (``case_registration``) never draw the
    same number; the rows are taken in agency-code order, so two writers never wait on
    each other in a circle."""
    from sqlalchemy.dialects import postgresql, sqlite

    if not counts:
        return {}
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(case_sequences).values(
        [{"agency_code": agency_code, "last_value": counts[agency_code]} for agency_code in sorted(counts)]
    )
    returned = connection.execute(
        statement.on_conflict_do_update(
            index_elements=[case_sequences.c.agency_code],
            set_={"last_value": case_sequences.c.last_value + statement.excluded.last_value},
        ).returning(case_sequences.c.agency_code, case_sequences.c.last_value)
    ).all()
    numbers: dict[str, list[str]] = {}
    for agency_code, last in returned:
        count = counts[agency_code]
        if last >= 10**CASE_SEQUENCE_DIGITS:
            raise OverflowError(f"case number sequence of agency {agency_code} is exhausted")
        numbers[agency_code] = [
            f"{agency_code}{value:0{CASE_SEQUENCE_DIGITS}d}" for value in range(last - count + 1, last + 1)
        ]
    if len(numbers) != len(counts):
        raise TerminalError(f"case numbers allocated for {len(numbers)} of {len(counts)} agencies")
    return numbers


def _known_net_ids(connection: Connection, net_ids: list[str]) -> set[str]:
    known = set(connection.execute(select(applications.c.net_id).where(applications.c.net_id.in_(net_ids))).scalars())
    known |= set(connection.execute(select(rejections.c.net_id).where(rejections.c.net_id.in_(net_ids))).scalars())
    return known


def load_applications(
    engine: Engine,
    *,
    catalogue: Catalogue,
    attachment_store: Path,
    batch_size: int = 5_000,
) -> LoadReport:
    """Validate every staged application and hand accepted ones over with a case number."""
    report = LoadReport()
    order = (inbound_records.c.channel, inbound_records.c.sequence, inbound_records.c.idx)
    key = tuple_(*order)
    with engine.connect() as connection:
        first = connection.execute(
            select(*order).where(inbound_records.c.state == "received").order_by(*order).limit(1)
        ).first()
    if first is None:
        return report
    # Batches walk the primary key from the first staged record (keyset paging), so each
    # batch reads only its own rows: selecting "the first N received" again per batch
    # would read and sort every remaining staged record each time, quadratic over a day.
    # coalesce() keeps the planner off the state index, which cannot give key order.
    # Records staged behind the walk while it runs are picked up by the next run.
    bound = key >= tuple_(*first)
    while True:
        with transaction(engine) as connection:
            staged = connection.execute(
                select(*(inbound_records.c[name] for name in STAGED_COLUMNS))
                .where(func.coalesce(inbound_records.c.state, "") == "received", bound)
                .order_by(*order)
                .limit(batch_size)
            ).all()
            if not staged:
                return report
            with collector_paused():
                _load_batch(connection, staged, catalogue, attachment_store, report)
        for channel, sequence in dict.fromkeys((row.channel, row.sequence) for row in staged):
            ref = f"{channel}#{sequence}"
            if ref not in report.bundles:
                report.bundles.append(ref)
        last = staged[-1]
        bound = key > tuple_(last.channel, last.sequence, last.idx)


def _load_batch(
    connection: Connection,
    staged_rows: Sequence[Any],
    catalogue: Catalogue,
    store: Path,
    report: LoadReport,
) -> None:
    """Judge and hand over one batch of staged records (``rules.handover`` maps each to
    its rows); this only allocates case numbers, looks up attachments and writes.

    The rows go to the driver as tuples (``insert_rows``): a dict per row and table, and
    its keys gathered again by ``bulk_insert``, cost more than validating the record."""
    at = iso(now())
    staged = [StagedApplication(*row) for row in staged_rows]  # rows of STAGED_COLUMNS
    known = _known_net_ids(connection, [record.net_id for record in staged])
    accepted: list[tuple[StagedApplication, dict[str, Any]]] = []
    refused: list[Rejection] = []
    outcomes: list[str] = []  # each staged record's, in order
    events: list[ProvenanceEvent] = []
    reasons_found = report.reasons
    for record in staged:
        net_id = record.net_id
        if net_id in known:
            outcomes.append("duplicate")
            events.append((net_id, "applications_load", "duplicate", record.bundle, None))
            report.duplicates += 1
            continue
        known.add(net_id)
        envelope = decode_envelope(record.payload)
        reasons = refusal_reasons(
            envelope, catalogue, received_at=record.received_at,
            attachments=_present_attachments(envelope, store),
        )
        if reasons:
            rejection = Rejection(record, tuple(reasons), at)
            refused.append(rejection)
            outcomes.append("rejected")
            events.append((net_id, "applications_load", "rejected", record.bundle, {"codes": rejection.codes}))
            for code in rejection.codes:
                reasons_found[code] = reasons_found.get(code, 0) + 1
        else:
            accepted.append((record, envelope))
            outcomes.append("accepted")

    by_agency: dict[str, list[tuple[StagedApplication, dict[str, Any]]]] = {}
    for pair in accepted:
        by_agency.setdefault(pair[1]["agency_code"], []).append(pair)
    handed: list[HandOver] = []
    password_keys: list[tuple[str, str | None]] = []
    items = catalogue.items
    numbers_of = allocate_case_numbers_of(connection, {code: len(pairs) for code, pairs in by_agency.items()})
    for agency_code, pairs in sorted(by_agency.items()):
        for case_number, (record, envelope) in zip(numbers_of[agency_code], pairs, strict=True):
            handed.append(hand_over(record, envelope, items[envelope["power_code"]], case_number, at))
            password_keys.append((record.net_id, case_number))
            events.append((record.net_id, "applications_load", "accepted", record.bundle, {"case_number": case_number}))
    rejection_rows = [rejection.rows() for rejection in refused]
    password_keys += [(rejection.staged.net_id, None) for rejection in refused]
    if handed:
        insert_rows(connection, applications, APPLICATION_COLUMNS, [h.application for h in handed])
        insert_rows(connection, cases, CASE_COLUMNS, [h.case for h in handed])
        material_rows = [material for h in handed if h.materials for material in h.materials]
        if material_rows:
            insert_rows(connection, case_materials, MATERIAL_COLUMNS, material_rows)
    if password_keys:
        insert_rows(connection, query_passwords, _PASSWORD_COLUMNS, _query_passwords(password_keys, at))
    if refused:
        insert_rows(connection, rejections, REJECTION_COLUMNS, [row for row, _ in rejection_rows])
    outbox_rows = [h.outbox for h in handed] + [outbox for _, outbox in rejection_rows]
    if outbox_rows:
        insert_rows(connection, status_outbox, OUTBOX_COLUMNS, outbox_rows)
    _mark_loaded(connection, outcome_runs(zip(staged, outcomes, strict=True)))
    record_events(connection, events, at)
    report.accepted += len(handed)
    report.rejected += len(refused)


def _mark_loaded(connection: Connection, runs: list[OutcomeRun]) -> None:
    """Mark the staged records of ``runs`` loaded, with their outcome: one statement per run
    of records (``rules.handover.outcome_runs``), not per record; on PostgreSQL each
    statement of an executemany is a round trip."""
    run = inbound_records.c
    statement = (
        update(inbound_records)
        .where(run.channel == bindparam("run_channel"), run.sequence == bindparam("run_sequence"),
               run.idx.between(bindparam("run_first"), bindparam("run_last")))
        .values(state=LOADED, outcome=bindparam("run_outcome"))
    )
    connection.execute(statement, [
        {"run_channel": channel, "run_sequence": sequence, "run_first": first, "run_last": last,
         "run_outcome": outcome}
        for channel, sequence, first, last, outcome in runs
    ])


_PASSWORD_COLUMNS = ("net_id", "case_number", "password", "kdf", "iterations", "lookup", "seal_key", "created_at")


def _query_passwords(keys: list[tuple[str, str | None]], at: str) -> list[tuple[Any, ...]]:
    """A fresh query password per application, with the public lookup name it gives: keyed
    by the case number, or by the NET_ID of an application that got none (rejected). Rows
    of ``_PASSWORD_COLUMNS``."""
    rows = []
    for (net_id, case_number), password in zip(keys, generate_query_passwords(len(keys)), strict=True):
        lookup, seal_key = status_keys(case_number or net_id, password)
        rows.append((net_id, case_number, password, QUERY_KDF, QUERY_KDF_ITERATIONS, lookup, seal_key.hex(), at))
    return rows


def document_sealers(connection: Connection, net_ids: Iterable[str]) -> dict[str, Sealer]:
    """The sealer of the public status document of each of ``net_ids`` (its case's key and
    lookup name): the stored key, or, for a password stored before keys were (0014), the key
    derived from it again."""
    sealers: dict[str, Sealer] = {}
    wanted = sorted(set(net_ids))
    for start in range(0, len(wanted), 10_000):
        chunk = wanted[start:start + 10_000]
        rows = connection.execute(_SEALER_COLUMNS.where(query_passwords.c.net_id.in_(chunk)))
        for row in rows:
            sealers[row[0]] = _sealer_of(*row)
    return sealers


_SEALER_COLUMNS = select(query_passwords.c.net_id, query_passwords.c.case_number, query_passwords.c.password,
                         query_passwords.c.lookup, query_passwords.c.seal_key)


def _sealer_of(net_id: str, case_number: str | None, password: str, lookup: str, seal_key: str | None) -> Sealer:
    if seal_key is None:
        derived, key = status_keys(case_number or net_id, password)
        if derived != lookup:
            raise TerminalError(f"the query password of {net_id} no longer gives its lookup name")
    else:
        key = bytes.fromhex(seal_key)
    return Sealer(key, lookup)


class _RangeSealers(Mapping[str, Sealer]):
    """The sealers of the status documents of an outbox id range's changes, read in one
    statement; each made (``_sealer_of``) when first asked for, so a withheld case's key is
    never touched, as with ``document_sealers`` of the published changes alone."""

    def __init__(self, connection: Connection, first: int, last: int) -> None:
        in_range = select(status_outbox.c.net_id).where(status_outbox.c.event_id.between(first, last))
        self._rows = {row[0]: tuple(row) for row in connection.execute(
            _SEALER_COLUMNS.where(query_passwords.c.net_id.in_(in_range)))}
        self._made: dict[str, Sealer] = {}

    def __getitem__(self, net_id: str) -> Sealer:
        sealer: Sealer | None = self.get(net_id)
        if sealer is None:
            raise KeyError(net_id)
        return sealer

    def get(self, net_id: str, default: Any = None) -> Any:
        # Mapping's own ``get`` goes through ``__getitem__`` and a KeyError: a sixth of the
        # time of sealing a record.
        sealer = self._made.get(net_id)
        if sealer is None:
            row = self._rows.get(net_id)
            if row is None:
                return default
            sealer = self._made[net_id] = _sealer_of(*row)
        return sealer

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


def sealed_status_line(record: dict[str, Any], sealers: Mapping[str, Sealer]) -> bytes:
    """A public status record as it leaves for the public store, as its bundle line
    (``ferry.bundle.record_line``): sealed under its document's key, with only its event id,
    lookup name and NET_ID outside the seal."""
    sealer = sealers.get(record["net_id"])
    if sealer is None or sealer.lookup != record["lookup"]:
        raise TerminalError(f"no sealing key for the status document of {record['net_id']}")
    sealed = sealer.seal(record["event_id"], orjson.dumps(record, option=orjson.OPT_SORT_KEYS))
    # The keys in sorted order already: the bytes ``record_line`` gives, without its copy
    # and sort of each line.
    return orjson.dumps({"event_id": record["event_id"], "lookup": record["lookup"], "net_id": record["net_id"],
                         "sealed": base64.b64encode(sealed).decode("ascii")}) + b"\n"


def _present_attachments(envelope: Any, store: Path) -> set[str]:
    if not (isinstance(envelope, dict) and envelope.get("materials")):
        return set()  # most applications carry no materials: no digest to look up
    return {digest for digest in material_digests(envelope) if attachment_path(store, digest).is_file()}


# --- status publish -------------------------------------------------------------------


@dataclass
class PublishReport:
    bundles: list[str] = field(default_factory=list)
    published: int = 0
    held: int = 0
    withheld: int = 0
    disclosures: int = 0


def _changes_in(connection: Connection, first: int, last: int, catalogue: Catalogue) -> Iterator[StatusChange]:
    """The internal status changes of an outbox id range, in id order, typed, with the party data needed
    to build public records (``rules.publication.case_part``): an internet case's party
    from its application, any other's from its registration record."""
    in_range = status_outbox.c.event_id.between(bindparam("first"), bindparam("last"))
    params = {"first": first, "last": last}
    # What a change is joined with depends only on its (net id, case number), and every
    # table joined has one row per key: read once per case of the batch, not once per change
    # (a case has several changes in a burst or a catch-up). The same values as joining
    # each change, in the same transaction; each case's texts are then the same objects in
    # each of its changes (their hashes computed once for the scanner's clean texts).
    party_columns, party_rows = select_rows(connection, _parties_query(in_range), params)
    cases_of = {(row[0], row[1]): case_part(dict(zip(party_columns[2:], row[2:])), catalogue) for row in party_rows}
    del party_rows
    # Plain tuples from the driver, each zipped with the column names read once: SQLAlchemy's
    # row objects and per-row result processing cost more than the read itself. A chunk at
    # a time, each change made as the caller reaches it: only a chunk of the batch's rows is
    # alive at once.
    columns, chunks = select_chunks(
        connection, select(status_outbox).where(in_range).order_by(status_outbox.c.event_id), params,
    )
    net_id, case_number = columns.index("net_id"), columns.index("case_number")
    for rows in chunks:
        for row in rows:
            yield change_of_case(dict(zip(columns, row)), cases_of[(row[net_id], row[case_number])])


def _parties_query(in_range: ColumnElement[bool]) -> Select[Any]:
    """Each (net id, case number) of the outbox rows ``in_range`` with its application or
    registration record, case, query password, penalty case, result and rejected envelope."""
    keys = select(status_outbox.c.net_id, status_outbox.c.case_number).where(in_range).distinct().subquery()
    party = ("case_name", "applicant_type", "applicant_name", "applicant_id_number")
    return (
        select(
            keys.c.net_id,
            keys.c.case_number,
            func.coalesce(applications.c.power_code, cases.c.power_code).label("power_code"),
            func.coalesce(applications.c.agency_code, cases.c.agency_code).label("agency_code"),
            *(func.coalesce(applications.c[name], case_registrations.c[name]).label(name) for name in party),
            cases.c.secret,
            cases.c.privacy,
            cases.c.origin,
            query_passwords.c.lookup,
            penalty_cases.c.penalty_kinds,
            penalty_cases.c.fine_amount,
            penalty_cases.c.decision,
            penalty_cases.c.decided_at.label("penalty_decided_at"),
            case_results.c.result.label("case_result"),
            rejections.c.envelope.label("rejected_envelope"),
        )
        .select_from(
            keys.outerjoin(applications, applications.c.net_id == keys.c.net_id)
            .outerjoin(rejections, rejections.c.net_id == keys.c.net_id)
            .outerjoin(cases, cases.c.case_number == keys.c.case_number)
            .outerjoin(case_registrations, case_registrations.c.case_number == keys.c.case_number)
            .outerjoin(query_passwords, query_passwords.c.net_id == keys.c.net_id)
            .outerjoin(penalty_cases, penalty_cases.c.case_number == keys.c.case_number)
            .outerjoin(case_results, case_results.c.case_number == keys.c.case_number)
        )
    )


# Published status records sealed at a time (``_BundleLines``).
SEAL_CHUNK = 512


class _BundleLines:
    """The record lines of one outbound status bundle, encoded as the records are made: the
    public status records sealed (``sealed_status_line``) SEAL_CHUNK at a time and the 双公示
    records encoded (``record_line``) at once; and what the bundle publishes of each
    application, its changes as ``[event id, status]`` in event order. Only the lines are
    kept, not the records: the stage's peak RSS over 448,000 changes fell from 290 to 271 MB
    (docs/benchmarks.md). Encoding a record while it is still in the processor's caches
    halved its cost in a microbenchmark; the stage's CPU did not measurably change.

    The sealing keys of the outbox id range ``first``-``last`` are read in ``connection``'s
    transaction, at once; a published record without one is a TerminalError."""

    def __init__(self, connection: Connection, first: int, last: int) -> None:
        self.sealers = _RangeSealers(connection, first, last)
        self.status_lines: list[bytes] = []
        self.disclosure_lines: list[bytes] = []
        self.sent: dict[str, list[list[Any]]] = {}
        self._unsealed: list[dict[str, Any]] = []

    def status(self, record: dict[str, Any]) -> None:
        self._unsealed.append(record)
        if len(self._unsealed) >= SEAL_CHUNK:
            self._seal()

    def disclosure(self, record: dict[str, Any]) -> None:
        self.disclosure_lines.append(record_line(record))

    def finished(self) -> _BundleLines:
        self._seal()
        return self

    def _seal(self) -> None:
        if not self._unsealed:
            return
        sealers = self.sealers
        for r in self._unsealed:
            self.status_lines.append(sealed_status_line(r, sealers))
            self.sent.setdefault(r["net_id"] or r["case_number"], []).append([r["event_id"], r["status"]])
        self._unsealed.clear()


def _build_items(lines: _BundleLines, changes: Iterable[StatusChange], skipped: dict[int, str]) -> _BundleLines:
    """The status and 双公示 record lines of ``changes``; ``skipped``: the changes recorded
    as held or withheld, with the reason (an ``offline`` case's 双公示 record still goes)."""
    for change in changes:
        reason = skipped.get(change.event_id)
        if reason is not None and reason != OFFLINE:
            continue
        records = outbound_records(change)
        if reason is None:
            lines.status(records["status_events"])
        if "disclosures" in records:
            lines.disclosure(records["disclosures"])
    return lines.finished()


def status_rebuilder(catalogue: Catalogue) -> Rebuild:
    """The rebuilder of outbound data plans: the status and disclosure records made again
    from the plan's outbox id range, without what was recorded as held or withheld in the
    plan's transaction, give the same bytes."""

    def rebuild(engine: Engine, plan: PlannedBundle) -> BuiltBundle:
        with collector_paused():
            return _rebuilt(engine, plan)

    def _rebuilt(engine: Engine, plan: PlannedBundle) -> BuiltBundle:
        assert plan.first_key is not None and plan.last_key is not None
        with engine.connect() as connection:
            skipped = {
                event_id: "held" for event_id in connection.execute(
                    select(publish_held.c.event_id).where(
                        publish_held.c.event_id.between(plan.first_key, plan.last_key)
                    )
                ).scalars()
            } | dict(
                connection.execute(
                    select(publish_withheld.c.event_id, publish_withheld.c.reason).where(
                        publish_withheld.c.event_id.between(plan.first_key, plan.last_key)
                    )
                ).all()
            )
            retractions = _retractions(connection, plan.first_key, plan.last_key)
            lines = _build_items(
                _BundleLines(connection, plan.first_key, plan.last_key),
                _changes_in(connection, plan.first_key, plan.last_key, catalogue), skipped)
        return _built_status(engine, plan, lines, retractions)

    return rebuild


def _built_status(
    engine: Engine,
    plan: PlannedBundle,
    lines: _BundleLines,
    retractions: list[dict[str, Any]],
) -> BuiltBundle:
    counts = {
        "status_events": len(lines.status_lines), "disclosures": len(lines.disclosure_lines),
        "retractions": len(retractions),
    }
    sent = lines.sent
    items: list[ItemSource] = [
        lines_item("status_events", drained(lines.status_lines)),
        lines_item("disclosures", drained(lines.disclosure_lines)),
        records_item("retractions", retractions),
    ]

    def after_send() -> None:
        # One event per application and bundle, listing the changes it published: its audit
        # leaf proves each of them on the status page (docs/audit.md §11). An event per change
        # cost a provenance row and a leaf each, about a sixth of this stage.
        with transaction(engine) as connection:
            # A generator: each detail dict is encoded and dropped at once, not kept alive
            # with the batch (fewer full garbage collections).
            record_events(
                connection,
                ((key, "status_publish", PUBLISHED, plan.ref, {"events": changes}) for key, changes in sent.items()),
                iso(now()),
            )

    return BuiltBundle(items, counts, after_send)


def _retractions(connection: Connection, first: int, last: int) -> list[dict[str, Any]]:
    """Public records to take down, derived from append-only tables only, so a rebuilt
    bundle carries the same retractions:

    - a case withheld (minor, secret, privacy) for the first time in this range after some
      of its changes were published: its status document (``lookup``) and its 双公示
      records (``record_ids``: the published changes);
    - a decision revoked, changed or corrected in this range (``TAKEDOWN_STATUSES``): the
      双公示 records of the case's earlier changes (``record_ids`` only; the status
      document stays and shows the new status)."""
    earlier = publish_withheld.alias("earlier")
    first_withheld = (
        select(publish_withheld.c.net_id)
        .where(publish_withheld.c.event_id.between(first, last), publish_withheld.c.reason != OFFLINE)
        .where(
            ~select(earlier.c.event_id)
            .where(earlier.c.net_id == publish_withheld.c.net_id, earlier.c.event_id < first,
                   earlier.c.reason != OFFLINE)
            .exists()
        )
        .distinct()
    )
    # Published: carried out, or withheld only as an offline case (its 双公示 record went).
    published = and_(
        status_outbox.c.event_id.not_in(select(publish_held.c.event_id)),
        status_outbox.c.event_id.not_in(
            select(publish_withheld.c.event_id).where(publish_withheld.c.reason != OFFLINE)),
    )
    keyed = func.coalesce(status_outbox.c.net_id, status_outbox.c.case_number)
    withdrawn = (
        select(keyed.label("key"), query_passwords.c.lookup, status_outbox.c.event_id)
        .select_from(status_outbox.outerjoin(query_passwords, query_passwords.c.net_id == status_outbox.c.net_id))
        .where(or_(status_outbox.c.net_id.in_(first_withheld),
                   and_(status_outbox.c.net_id.is_(None), status_outbox.c.case_number.in_(first_withheld))))
        .where(status_outbox.c.event_id < first, published)
        .order_by(status_outbox.c.event_id)
    )
    by_key: dict[str, tuple[str | None, list[int]]] = {}
    for key, lookup, event_id in connection.execute(withdrawn).all():
        by_key.setdefault(key, (lookup, []))[1].append(event_id)
    retractions = [{"lookup": lookup, "record_ids": ids} for lookup, ids in by_key.values()]
    # Taken down: the decision records published before a revocation, change or correction.
    later = status_outbox.alias("later")
    taken_down = connection.execute(
        select(status_outbox.c.event_id)
        .where(status_outbox.c.case_number.in_(
            select(later.c.case_number).where(later.c.event_id.between(first, last),
                                              later.c.status.in_(TAKEDOWN_STATUSES))))
        .where(status_outbox.c.status.in_(DISCLOSING_STATUSES), published)
        .where(status_outbox.c.event_id < select(func.max(later.c.event_id)).where(
            later.c.case_number == status_outbox.c.case_number, later.c.event_id.between(first, last),
            later.c.status.in_(TAKEDOWN_STATUSES)).scalar_subquery())
        .order_by(status_outbox.c.event_id)
    ).scalars().all()
    if taken_down:
        retractions.append({"lookup": None, "record_ids": list(taken_down)})
    return retractions


def _withheld_cases(connection: Connection, first: int, last: int) -> dict[str, str]:
    """The cases of the changes in an outbox id range (by NET_ID, or by case number for
    other origins: ``StatusChange.record_key``) already withheld, with the reason: a minor,
    secret or privacy mark over ``offline``."""
    # The keys as a subquery, not bound one by one: a batch has tens of thousands of cases.
    keys = select(func.coalesce(status_outbox.c.net_id, status_outbox.c.case_number)).where(
        status_outbox.c.event_id.between(first, last))
    found: dict[str, str] = {}
    for key, reason in connection.execute(
        # In id order, as SQLite read them by the (net_id, event_id) index before: the
        # earliest of two marks of a case is its reason.
        select(publish_withheld.c.net_id, publish_withheld.c.reason).where(publish_withheld.c.net_id.in_(keys))
        .order_by(publish_withheld.c.event_id)
    ).all():
        if found.get(key) in (None, OFFLINE):
            found[key] = reason
    return found


# Status changes per outbound bundle. A batch's encoded lines, its keys and the bundle built
# from them are in memory together, about 5.6 KB a change: one publish_status of 448,000
# changes peaked at 271 MB of RSS with 10,000 a bundle, 497 MB with 50,000 (290 and 558 MB
# before the records were encoded as they were made; docs/benchmarks.md).
PUBLISH_BATCH = 10_000


def publish_status(
    sender: ChannelSender,
    *,
    catalogue: Catalogue,
    batch_size: int = PUBLISH_BATCH,
) -> PublishReport:
    """Carry every status change after the last one sent into outbound bundles: masked,
    allow-listed and scanned. A case that must not be published (minor, secret, privacy)
    is withheld entirely; anything the scanner flags is held for review instead.

    What is withheld or held is decided and recorded in the same transaction as the plan,
    so a rebuild after a crash carries exactly the same records."""
    with collector_paused():
        return _publish_batches(sender, catalogue, batch_size)


def _publish_batches(sender: ChannelSender, catalogue: Catalogue, batch_size: int) -> PublishReport:
    report = PublishReport()
    # Planned before a crash: rebuilt with the same bytes and sent before anything new.
    for resumed in resumed_of(sender.resume(), DATA):
        report.published += resumed.counts["status_events"]
        report.disclosures += resumed.counts["disclosures"]
        report.bundles.append(resumed.plan.ref)
    while True:
        at = iso(now())
        with transaction(sender.engine) as connection:
            after = last_acknowledged_key(connection, sender.channel)
            batch = (
                select(status_outbox.c.event_id)
                .where(status_outbox.c.event_id > after)
                .order_by(status_outbox.c.event_id)
                .limit(batch_size)
                .subquery()
            )
            first_key, last_key = connection.execute(
                select(func.min(batch.c.event_id), func.max(batch.c.event_id))
            ).one()
            if first_key is None:
                return report
            withheld_cases = _withheld_cases(connection, first_key, last_key)
            held_rows: list[dict[str, Any]] = []
            withheld_rows: list[dict[str, Any]] = []
            lines = _BundleLines(connection, first_key, last_key)
            event_count = 0
            # Each change is decided and its records encoded as it is read (``_changes_in``,
            # ``_BundleLines``): neither the batch's changes nor its records are ever all in
            # memory, only the encoded lines.
            for change in _changes_in(connection, first_key, last_key, catalogue):
                event_count += 1
                key = change.record_key
                decision = decide_publication(change, case_withheld=withheld_cases.get(key))
                if isinstance(decision, Withheld):
                    if withheld_cases.get(key) in (None, OFFLINE):
                        withheld_cases[key] = decision.reason
                    withheld_rows.append(
                        {"event_id": change.event_id, "net_id": key, "reason": decision.reason, "withheld_at": at}
                    )
                    if "disclosures" in decision.records:
                        lines.disclosure(decision.records["disclosures"])
                elif isinstance(decision, Held):
                    held_rows.append(
                        {"event_id": change.event_id, "net_id": key, "held_at": at,
                         "reason": decision.reason,
                         "findings": [vars(f) for f in decision.findings]}
                    )
                else:
                    lines.status(decision.records["status_events"])
                    if "disclosures" in decision.records:
                        lines.disclosure(decision.records["disclosures"])
            lines.finished()
            if held_rows:
                connection.execute(publish_held.insert(), held_rows)
                record_events(
                    connection,
                    [(h["net_id"], "status_publish", "held_for_review", None, {"event_id": h["event_id"]}) for h in held_rows],
                    at,
                )
            if withheld_rows:
                connection.execute(publish_withheld.insert(), withheld_rows)
                record_events(
                    connection,
                    [(w["net_id"], "status_publish", "withheld", None, {"event_id": w["event_id"], "reason": w["reason"]}) for w in withheld_rows],
                    at,
                )
            plan = plan_next(
                connection, sender.channel, created_at=at, catalogue_version=catalogue.version,
                record_count=event_count - len(held_rows) - len(withheld_rows),
                first_key=first_key, last_key=last_key,
            )
        report.held += len(held_rows)
        report.withheld += len(withheld_rows)
        with sender.engine.connect() as connection:
            retractions = _retractions(connection, first_key, last_key)
        sent = sender.send(plan, _built_status(sender.engine, plan, lines, retractions))
        report.published += sent.counts["status_events"]
        report.disclosures += sent.counts["disclosures"]
        report.bundles.append(plan.ref)
        gc.collect(0)  # the collector is paused (``collector_paused``): what this batch left
