"""The audit trail (痕迹管理) of a zone database: the append-only Merkle log of docs/audit.md
kept in the zone's own tables, its signed checkpoints, and the check that recomputes it.

Every audited row version becomes one leaf, appended in the transaction that writes the row
(so a crash leaves neither a gap nor a duplicate leaf). What is audited, and how a row
becomes a leaf entry and is read back, is the one registry :data:`SOURCES`: adding a table to
the trail is one entry there and a call to :func:`log_rows` where the table is written
(provenance, the hub's most frequent insert, has its own fast path in
``connectors.provenance.record_events``). The pure tree arithmetic is ``ferry.tlog``.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, func, select, update

from connectors.db import (
    AUDIT_HASH_PAGE,
    PLACEHOLDER_BY_PARAMSTYLE,
    audit_checkpoints,
    audit_entries,
    audit_hash_pages,
    audit_head,
    insert_values,
    metadata,
    transaction,
)
from ferry.tlog import (
    CheckpointRefused,
    Frontier,
    NoteSigner,
    NoteVerifier,
    TreeHasher,
    append_leaves,
    open_checkpoint,
    prove_consistency,
    prove_inclusion,
    sign_checkpoint,
    stored_hash_count,
    stored_hash_index,
    tree_hasher,
)
from schemas.exceptions import TerminalError

SALT_BYTES = 16
DEFAULT_SUITE = "intl"
# The databases this process appended leaves to since it last asked (``take_appended``): a
# task run signs checkpoints of the logs it grew, not of the other zone's (a "both" deployment
# runs both zones' tasks on one machine, and signing the other zone's log would wait for its
# writer's lock).
_APPENDED: set[str] = set()  # the tree hash of a log started where no zone suite was given
VERIFY_CHUNK = 10_000


def canonical(value: Any) -> str:
    """The canonical JSON of a leaf entry: sorted keys, no spaces, UTF-8 text as is.

    That is ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``;
    a value made only of strings, integers, booleans, None, lists and string-keyed dicts
    (every provenance detail the stages write) is encoded by orjson instead, which gives the
    same text for those types at a tenth of the cost (floats and anything else go to ``json``:
    orjson spells some floats differently)."""
    if plain_json(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")
        except TypeError:  # an integer beyond 64 bits, nesting deeper than orjson allows
            pass
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def plain_json(value: Any) -> bool:
    """Whether ``value`` holds only str, int, bool, None, list, tuple and dicts with str keys
    (exact types: a subclass or a float may encode differently in orjson and ``json``)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is dict:
        return all(type(key) is str and plain_json(item) for key, item in value.items())
    if kind is list or kind is tuple:
        return all(plain_json(item) for item in value)
    return False


@dataclass(frozen=True)
class AuditSource:
    """One audited table: its integer key column and the columns a leaf commits to. A leaf
    entry is ``canonical({"key": K, "row": {column: value}, "salt": S, "table": NAME})``
    with 16 random bytes S (base64) of its own, so a leaf hash that leaves the zone (tiles,
    published checkpoints) is a hiding commitment: it reveals nothing of the row to whoever
    cannot see the entry. A row that changes (an alert escalated, an order answered) gets a
    new leaf each time, and the newest leaf of a key must equal the row as it is."""

    name: str
    key: str
    fields: tuple[str, ...]

    def entry(self, key: int, row: Mapping[str, Any], salt: str) -> str:
        return canonical({"key": key, "row": {f: row[f] for f in self.fields}, "salt": salt, "table": self.name})

    def select_rows(self) -> Any:
        table = metadata.tables[self.name]
        return select(table.c[self.key], *(table.c[f] for f in self.fields))


# One entry per audited source table (issue 18): provenance events (every stage's record
# events, and the operator actions without a table of their own: resends, key rotations,
# calendar imports), alarms (raised, resolved), quarantine actions (release, discard),
# supervision alerts and orders, catalogue changes, and corrections of case data (第十九条).
SOURCES: dict[str, AuditSource] = {
    source.name: source
    for source in (
        AuditSource("provenance", "id", ("record_id", "stage", "outcome", "bundle", "detail", "at")),
        AuditSource("alarms", "id", ("kind", "detail", "at", "resolved_at", "resolution", "resolved_by")),
        AuditSource("quarantine_actions", "id", ("quarantine_id", "action", "reason", "operator", "at")),
        AuditSource("supervision_alerts", "id", (
            "rule", "level", "case_number", "step_no", "department", "power_code", "state", "raised_at",
            "escalated_at", "lifted_at", "closed_at", "detail")),
        AuditSource("supervision_orders", "id", (
            "case_number", "issued_by", "instruction", "deadline", "issued_at", "state", "answered_by",
            "answer", "answered_at", "closed_by", "close_note", "closed_at")),
        AuditSource("catalogue_transitions", "id", (
            "code", "action", "from_state", "to_state", "from_version", "to_version", "changed_by",
            "changed_at", "reason", "approvals", "source", "recorded_at")),
        AuditSource("case_corrections", "id", (
            "case_number", "target", "record_key", "action", "before", "after", "reason", "requested_by",
            "approved_by", "state", "at")),
    )
}


def zone_sources(zone_tables: Iterable[str]) -> list[AuditSource]:
    """The sources a zone database has (its tables among the registry's)."""
    tables = set(zone_tables)
    return [s for s in SOURCES.values() if s.name in tables]


def salts(count: int) -> list[str]:
    """``count`` fresh leaf salts: 16 random bytes each, base64 (one read of the OS's source)."""
    pool = os.urandom(SALT_BYTES * count)
    encode = binascii.b2a_base64  # what base64.b64encode calls, without its wrapper per salt
    return [encode(pool[i:i + SALT_BYTES], newline=False).decode("ascii") for i in range(0, len(pool), SALT_BYTES)]


def provenance_entry(key: int, record_id: str, stage: str, outcome: str, bundle: str | None,
                     detail: str, at: str, salt: str) -> str:
    """The provenance leaf entry, ``detail`` already canonical JSON: the same text as
    ``SOURCES["provenance"].entry`` gives for the row, built without a dict per event."""
    return (
        f'{{"key":{key},"row":{{"at":{encode_basestring(at)},'
        f'"bundle":{"null" if bundle is None else encode_basestring(bundle)},'
        f'"detail":{detail},"outcome":{encode_basestring(outcome)},'
        f'"record_id":{encode_basestring(record_id)},"stage":{encode_basestring(stage)}}},'
        f'"salt":"{salt}","table":"provenance"}}'
    )


# --- appending -----------------------------------------------------------------------------


@dataclass
class LogHead:
    """The log's head, locked for this transaction."""

    suite: str
    size: int
    root: bytes | None
    hasher: TreeHasher = field(repr=False)


HASH_BYTES = 32  # the tree hash of both suites (SHA-256, SM3)


class _DatabaseHashes:
    """A ``ferry.tlog.HashReader`` over the ``audit_hash_pages`` table."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        pages = _read_pages(self.connection, sorted({i // AUDIT_HASH_PAGE for i in indexes}))
        found = []
        for index in indexes:
            stored = _hash_in(pages, index)
            if stored is None:
                raise TerminalError(f"the audit log lacks stored hash {index}")
            found.append(stored)
        return found


def _hash_in(pages: dict[int, bytes], index: int) -> bytes | None:
    """Stored hash ``index`` from the pages read, or None when its page does not hold it."""
    page = pages.get(index // AUDIT_HASH_PAGE, b"")
    offset = index % AUDIT_HASH_PAGE * HASH_BYTES
    return page[offset:offset + HASH_BYTES] if len(page) >= offset + HASH_BYTES else None


def _read_pages(connection: Connection, numbers: Sequence[int]) -> dict[int, bytes]:
    pages: dict[int, bytes] = {}
    for start in range(0, len(numbers), 500):
        part = list(numbers[start:start + 500])
        pages.update((int(n), bytes(h)) for n, h in connection.execute(
            select(audit_hash_pages.c.page, audit_hash_pages.c.hashes).where(audit_hash_pages.c.page.in_(part))))
    return pages


def _write_hashes(connection: Connection, start: int, hashes: Sequence[bytes]) -> None:
    """Store ``hashes`` at stored-hash indexes ``start``, ``start + 1``, …: the last page
    read, completed and written again with the new pages, in one statement (two statements
    whatever the batch). The stored hashes must end exactly at ``start``: the log's head says
    so, and a page that disagrees is refused."""
    page, offset = divmod(start, AUDIT_HASH_PAGE)
    held = connection.execute(select(audit_hash_pages.c.hashes).where(audit_hash_pages.c.page == page)).scalar()
    held = b"" if held is None else bytes(held)
    if len(held) != offset * HASH_BYTES:
        raise TerminalError(f"the audit log's stored hashes do not end at {start}, where its head says they do")
    blob = held + b"".join(hashes)
    size = AUDIT_HASH_PAGE * HASH_BYTES
    placeholder = PLACEHOLDER_BY_PARAMSTYLE[connection.dialect.paramstyle]
    connection.exec_driver_sql(
        f"INSERT INTO audit_hash_pages (page, hashes) VALUES ({placeholder}, {placeholder}) "
        "ON CONFLICT (page) DO UPDATE SET hashes = excluded.hashes",
        [(page + n, blob[at:at + size]) for n, at in enumerate(range(0, len(blob), size))])


def hash_reader(connection: Connection) -> _DatabaseHashes:
    return _DatabaseHashes(connection)


def _lock_head_row(connection: Connection) -> str | None:
    """Lock the head row (as :func:`lock_head`) and return the log's suite, None before it started."""
    row = connection.execute(update(audit_head).where(audit_head.c.id == 1).values(size=audit_head.c.size)
                             .returning(audit_head.c.suite)).first()
    return None if row is None else row.suite


def lock_head(connection: Connection) -> LogHead:
    """Lock the log's head for the rest of the transaction (one appender at a time, so leaf
    numbers follow commit order) and read it."""
    # A write, not a read: on SQLite it takes the database's one write lock before anything
    # is read (a read alone would start no transaction there), on PostgreSQL it locks the row.
    row = connection.execute(update(audit_head).where(audit_head.c.id == 1).values(size=audit_head.c.size)
                             .returning(audit_head.c.suite, audit_head.c.size, audit_head.c.root)).first()
    if row is None:
        raise TerminalError("the audit log has no head row; run `hub db upgrade`")
    suite = row.suite or DEFAULT_SUITE
    return LogHead(suite, int(row.size), bytes(row.root) if row.root is not None else None, tree_hasher(suite))


def start_log(engine: Engine, suite: str, zone_tables: Iterable[str] = ()) -> str:
    """Start a log that has no leaf yet: fix its tree hash to ``suite`` (the zone's crypto
    suite; a log keeps the hash it started with) and record the highest key of each audited
    table of the zone (``zone_tables``) as it is now, so that rows written before the log
    existed (a deployment upgraded to it) are told from rows written without a leaf.
    Returns the log's suite."""
    tree_hasher(suite)
    with transaction(engine) as connection:
        started = _lock_head_row(connection)
        if started is None:
            before = {}
            for source in zone_sources(zone_tables):
                table = metadata.tables[source.name]
                before[source.name] = int(connection.execute(select(func.max(table.c[source.key]))).scalar() or 0)
            connection.execute(update(audit_head).where(
                audit_head.c.id == 1, audit_head.c.suite.is_(None), audit_head.c.size == 0).values(
                suite=suite, started_after=before))
        chosen = connection.execute(select(audit_head.c.suite).where(audit_head.c.id == 1)).scalar()
    return str(chosen or DEFAULT_SUITE)


def _insert(connection: Connection, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    insert_values(connection, metadata.tables[table], columns, rows)  # COPY on PostgreSQL


def append_entries(connection: Connection, head: LogHead, source: str, entries: Sequence[tuple[int, str]],
                   at: str) -> int:
    """Append ``(source key, entry)`` leaves to the log whose head this transaction locked:
    one read of the frontier, then the entries, their stored hashes and the new head. Returns
    the new size."""
    if not entries:
        return head.size
    leaves = head.hasher.leaf_hashes([entry.encode("utf-8") for _, entry in entries])
    appended = append_leaves(head.size, leaves, _DatabaseHashes(connection), head.hasher)
    _insert(connection, "audit_entries", ("seq", "source", "source_key", "entry", "at"),
            [(seq, source, key, entry, at) for seq, (key, entry) in enumerate(entries, head.size)])
    _write_hashes(connection, appended.start, appended.hashes)
    connection.execute(update(audit_head).where(audit_head.c.id == 1).values(
        size=appended.size, root=appended.root, suite=head.suite))
    head.size, head.root = appended.size, appended.root
    _APPENDED.add(_key(connection.engine))
    return appended.size


def _key(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def take_appended(engine: Engine) -> bool:
    """Whether this process appended to ``engine``'s log since it last asked (and forget it)."""
    key = _key(engine)
    found = key in _APPENDED
    _APPENDED.discard(key)
    return found


def log_rows(connection: Connection, source_name: str, keys: Iterable[int], at: str) -> int:
    """Append the current version of the rows ``keys`` of an audited table, in the
    transaction that wrote them (call it after the write)."""
    source = SOURCES[source_name]
    wanted = sorted({int(k) for k in keys})
    if not wanted:
        return 0
    head = lock_head(connection)
    table = metadata.tables[source.name]
    rows: list[Any] = []
    for start in range(0, len(wanted), 500):
        part = wanted[start:start + 500]
        rows.extend(connection.execute(source.select_rows().where(table.c[source.key].in_(part))))
    by_key = {int(row[0]): row._mapping for row in rows}
    missing = [k for k in wanted if k not in by_key]
    if missing:
        raise TerminalError(f"no {source.name} row {missing[0]} to audit")
    append_entries(connection, head, source.name,
                   [(k, source.entry(k, by_key[k], salt)) for k, salt in zip(wanted, salts(len(wanted)), strict=True)],
                   at)
    return len(wanted)


# --- checkpoints ---------------------------------------------------------------------------


def log_origin(agency_code: str, zone: str) -> str:
    """The log's origin line and the checkpoint key's name (C2SP: schema-less, unique)."""
    return f"power-exchange-hub/{agency_code}/{zone}"


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: str
    at: str
    cosigned_note: str | None = None


def checkpoint_if_grown(engine: Engine, signer: NoteSigner, at: str) -> StoredCheckpoint | None:
    """Sign and keep a checkpoint of the log when it has grown since the newest one (every
    task run that appended ends with one); None when nothing was appended."""
    with transaction(engine) as connection:
        head = lock_head(connection)
        newest = connection.execute(select(func.max(audit_checkpoints.c.size))).scalar()
        if head.size == 0 or head.root is None or (newest is not None and int(newest) >= head.size):
            return None
        note = sign_checkpoint(signer.name, head.size, head.root, signer)
        connection.execute(audit_checkpoints.insert().values(size=head.size, root=head.root, note=note, at=at))
    return StoredCheckpoint(head.size, head.root, note, at)


def checkpoints(connection: Connection, *, after: int | None = None) -> list[StoredCheckpoint]:
    query = select(audit_checkpoints).order_by(audit_checkpoints.c.size)
    if after is not None:
        query = query.where(audit_checkpoints.c.size > after)
    return [StoredCheckpoint(int(r.size), bytes(r.root), r.note, r.at, r.cosigned_note)
            for r in connection.execute(query)]


def latest_checkpoint(connection: Connection) -> StoredCheckpoint | None:
    row = connection.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.size.desc()).limit(1)).first()
    return None if row is None else StoredCheckpoint(int(row.size), bytes(row.root), row.note, row.at, row.cosigned_note)


def log_suite(connection: Connection) -> str:
    suite = connection.execute(select(audit_head.c.suite).where(audit_head.c.id == 1)).scalar()
    return str(suite or DEFAULT_SUITE)


# --- the witness (the province cosigns checkpoints) ------------------------------------


@dataclass(frozen=True)
class Witness:
    """The keys that check a witness's cosignature: the log's own (every key the zone has
    had) and the witness's pinned key."""

    log: tuple[NoteVerifier, ...]
    witness: NoteVerifier


def witness_request(connection: Connection, pending: Iterable[int] = ()) -> dict[str, Any] | None:
    """What the witness needs to cosign the newest checkpoint: its note, the tree hash, and a
    consistency proof from every size the witness may have cosigned last: the largest one
    this zone holds its cosignature of (0: none) and ``pending``, the checkpoint sizes sent
    in batches whose receipts have not come back yet (the witness may have cosigned them
    already). The witness uses the proof from the size it last cosigned."""
    newest = latest_checkpoint(connection)
    if newest is None:
        return None
    witnessed = connection.execute(select(func.max(audit_checkpoints.c.size)).where(
        audit_checkpoints.c.cosigned_note.is_not(None))).scalar()
    known = int(witnessed or 0)
    hasher = tree_hasher(log_suite(connection))
    reader = _DatabaseHashes(connection)
    proofs = []
    for old in sorted({known, *(size for size in pending if known < size <= newest.size)}):
        proof = prove_consistency(old, newest.size, reader, hasher) if old else []
        proofs.append({"old_size": old, "consistency": [base64.b64encode(h).decode("ascii") for h in proof]})
    return {"note": newest.note, "proofs": proofs, "tree_hash": log_suite(connection)}


def store_cosignature(engine: Engine, note: str, witness: Witness, at: str) -> int:
    """Keep a witness's cosigned note beside the checkpoint it cosigned, once both the log's
    signature and the witness's verify and the checkpoint is the one this log signed at its
    size. Raises ``CheckpointRefused`` otherwise. Returns the size."""
    checkpoint = open_checkpoint(note, [*witness.log, witness.witness], require=[witness.witness.name])
    if checkpoint.origin not in checkpoint.signed_by:
        raise CheckpointRefused("MISSING_SIGNATURE", "the cosigned note lacks the log's own signature")
    with transaction(engine) as connection:
        root = connection.execute(select(audit_checkpoints.c.root).where(
            audit_checkpoints.c.size == checkpoint.size)).scalar()
        if root is None or bytes(root) != checkpoint.root_hash:
            raise CheckpointRefused("FORK", f"the witness cosigned another tree of {checkpoint.size} leaves")
        connection.execute(update(audit_checkpoints).where(audit_checkpoints.c.size == checkpoint.size).values(
            cosigned_note=note, cosigned_at=at))
    return checkpoint.size


# --- proofs --------------------------------------------------------------------------------


def leaves_of(connection: Connection, source: str, keys: Sequence[int]) -> list[dict[str, Any]]:
    """Every leaf of the given rows of ``source``, in log order."""
    found: list[dict[str, Any]] = []
    for start in range(0, len(keys), 500):
        part = list(keys[start:start + 500])
        found.extend(dict(r._mapping) for r in connection.execute(select(audit_entries).where(
            audit_entries.c.source == source, audit_entries.c.source_key.in_(part))))
    return sorted(found, key=lambda r: r["seq"])


def inclusion_proof(connection: Connection, seq: int, size: int) -> list[bytes]:
    """The audit path of leaf ``seq`` in the stored tree of ``size`` leaves."""
    return prove_inclusion(size, seq, _DatabaseHashes(connection), tree_hasher(log_suite(connection)))


# --- verification --------------------------------------------------------------------------

ENTRY_MISSING = "ENTRY_MISSING"  # a leaf number is absent (an entry deleted)
ENTRY_CHANGED = "ENTRY_CHANGED"  # an entry's bytes no longer give its stored leaf hash
HASH_CHANGED = "HASH_CHANGED"  # a stored subtree hash differs from the one the entries give
TRUNCATED = "TRUNCATED"  # the log is shorter than its head or a signed checkpoint
HEAD_MISMATCH = "HEAD_MISMATCH"  # the head's size or root is not the entries' tree
CHECKPOINT_MISMATCH = "CHECKPOINT_MISMATCH"  # a signed checkpoint's root is not the entries' tree
CHECKPOINT_REFUSED = "CHECKPOINT_REFUSED"  # a checkpoint's signature does not verify
ROW_CHANGED = "ROW_CHANGED"  # a source row differs from its newest leaf (field named)
ROW_DELETED = "ROW_DELETED"  # a logged source row is gone
ROW_NOT_LOGGED = "ROW_NOT_LOGGED"  # a source row has no leaf


_PRECISION = (ENTRY_MISSING, ENTRY_CHANGED, ROW_CHANGED, ROW_DELETED, HASH_CHANGED, CHECKPOINT_MISMATCH, TRUNCATED,
              ROW_NOT_LOGGED, HEAD_MISMATCH, CHECKPOINT_REFUSED)


@dataclass(frozen=True)
class Finding:
    """One way the log or its sources differ from what was appended and signed."""

    code: str
    seq: int | None
    table: str | None
    field: str | None
    detail: str

    def sort_key(self) -> tuple[int, int]:
        """Log order; at one leaf, what names the change most precisely first."""
        return (self.seq if self.seq is not None else 1 << 62, _PRECISION.index(self.code))


@dataclass
class VerifyReport:
    size: int = 0
    checkpoints: int = 0
    newest_checkpoint: int | None = None
    rows_checked: int = 0
    rows_before_log: int = 0  # rows older than the log (an upgraded deployment): not covered
    findings: list[Finding] = field(default_factory=list)

    @property
    def first(self) -> Finding | None:
        return min(self.findings, key=Finding.sort_key) if self.findings else None


def _entry_chunks(connection: Connection) -> Iterator[Sequence[Any]]:
    last = -1
    while True:
        rows = connection.execute(
            select(audit_entries.c.seq, audit_entries.c.source, audit_entries.c.entry)
            .where(audit_entries.c.seq > last).order_by(audit_entries.c.seq).limit(VERIFY_CHUNK)).all()
        if not rows:
            return
        yield rows
        last = int(rows[-1].seq)


def _stored_range(connection: Connection, lo: int, hi: int) -> dict[int, bytes]:
    """The stored hashes of indexes ``lo`` to ``hi`` (exclusive) that the pages hold."""
    if hi <= lo:
        return {}
    pages = _read_pages(connection, range(lo // AUDIT_HASH_PAGE, (hi - 1) // AUDIT_HASH_PAGE + 1))
    return {index: stored for index in range(lo, hi) if (stored := _hash_in(pages, index)) is not None}


def verify_log(engine: Engine, verifiers: Sequence[NoteVerifier], zone_tables: Iterable[str]) -> VerifyReport:
    """Recompute the zone's log from its entries and compare everything with it: the stored
    hashes, the head, every signed checkpoint (its signature with ``verifiers``, the zone's
    current and rotated keys, and its root), and every audited source row with its newest
    leaf. A finding names the leaf (seq), the table and, for a changed row, the field."""
    report = VerifyReport()
    with engine.connect() as connection:
        head = connection.execute(select(audit_head).where(audit_head.c.id == 1)).first()
        if head is None:
            report.findings.append(Finding(HEAD_MISMATCH, None, None, None, "the log has no head row"))
            return report
        hasher = tree_hasher(head.suite or DEFAULT_SUITE)
        signed = checkpoints(connection)
        report.checkpoints = len(signed)
        report.newest_checkpoint = signed[-1].size if signed else None
        for checkpoint in signed:
            try:
                opened = open_checkpoint(checkpoint.note, verifiers)
            except CheckpointRefused as refused:
                report.findings.append(Finding(CHECKPOINT_REFUSED, None, None, None,
                                               f"checkpoint {checkpoint.size}: {refused.code} {refused.detail}"))
                continue
            if opened.size != checkpoint.size or opened.root_hash != checkpoint.root:
                report.findings.append(Finding(CHECKPOINT_MISMATCH, None, None, None,
                                               f"checkpoint {checkpoint.size}: its row differs from its signed note"))
        roots = {c.size: c.root for c in signed}
        frontier = Frontier(0, [], hasher)
        broken = False
        for chunk in _entry_chunks(connection):
            if broken:
                break
            first_seq = frontier.size
            stored = _stored_range(connection, stored_hash_count(first_seq),
                                   stored_hash_count(first_seq + len(chunk)))
            for row in chunk:
                seq = int(row.seq)
                if seq != frontier.size:
                    report.findings.append(Finding(ENTRY_MISSING, frontier.size, None, None,
                                                   f"leaf {frontier.size} is missing (next is {seq})"))
                    broken = True
                    break
                start = stored_hash_count(seq)
                new = frontier.append(hasher.leaf_hash(row.entry.encode("utf-8")))
                if stored.get(start) != new[0]:
                    report.findings.append(Finding(ENTRY_CHANGED, seq, row.source, None,
                                                   f"leaf {seq}'s entry does not give its stored leaf hash"))
                else:
                    for offset, node in enumerate(new[1:], start=1):
                        if stored.get(start + offset) != node:
                            report.findings.append(Finding(
                                HASH_CHANGED, seq, row.source, None,
                                f"stored hash {start + offset} (completed by leaf {seq}) was changed"))
                            break
                if frontier.size in roots and frontier.root() != roots[frontier.size]:
                    report.findings.append(Finding(
                        CHECKPOINT_MISMATCH, seq, row.source, None,
                        f"the entries up to leaf {seq} do not give the root signed at size {frontier.size}"))
        size = frontier.size
        report.size = size
        if not broken:
            if size < int(head.size):
                report.findings.append(Finding(TRUNCATED, size, None, None,
                                               f"the log holds {size} leaves; its head says {head.size}"))
            elif size > int(head.size) or (size and bytes(head.root or b"") != frontier.root()):
                report.findings.append(Finding(HEAD_MISMATCH, None, None, None,
                                               f"the head ({head.size} leaves) is not the entries' tree ({size})"))
        if signed and signed[-1].size > size:
            report.findings.append(Finding(TRUNCATED, size, None, None,
                                           f"a checkpoint signed {signed[-1].size} leaves; the log holds {size}"))
        before = head.started_after if isinstance(head.started_after, dict) else {}
        for source in zone_sources(zone_tables):
            checked, older = _verify_source(connection, source, report.findings, int(before.get(source.name, 0)))
            report.rows_checked += checked
            report.rows_before_log += older
    # An altered entry no longer matches its row either: name the field on the entry's finding.
    fields = {f.seq: f.field for f in report.findings if f.code == ROW_CHANGED}
    report.findings = [
        Finding(f.code, f.seq, f.table, fields[f.seq], f.detail) if f.code == ENTRY_CHANGED and f.seq in fields else f
        for f in report.findings
    ]
    return report


def _latest_leaves(connection: Connection, source: AuditSource) -> Iterator[tuple[int, int, str]]:
    """(source key, seq, entry) of the newest leaf of every key of ``source``, by key."""
    newest = (select(audit_entries.c.source_key, func.max(audit_entries.c.seq).label("seq"))
              .where(audit_entries.c.source == source.name).group_by(audit_entries.c.source_key).subquery())
    query = (select(newest.c.source_key, newest.c.seq, audit_entries.c.entry)
             .join(audit_entries, audit_entries.c.seq == newest.c.seq).order_by(newest.c.source_key))
    for key, seq, entry in connection.execution_options(yield_per=VERIFY_CHUNK).execute(query):
        yield int(key), int(seq), entry


def _verify_source(connection: Connection, source: AuditSource, findings: list[Finding],
                   before: int) -> tuple[int, int]:
    """Merge the source's rows (by key) with its newest leaves (by key); a row without a
    leaf whose key is at most ``before`` predates the log. Returns (compared, older)."""
    table = metadata.tables[source.name]
    rows = connection.execution_options(yield_per=VERIFY_CHUNK).execute(
        source.select_rows().order_by(table.c[source.key]))
    leaves = _latest_leaves(connection, source)
    row = next(rows, None)
    leaf = next(leaves, None)
    checked = older = 0
    while row is not None or leaf is not None:
        row_key = int(row[0]) if row is not None else None
        if leaf is not None and (row_key is None or leaf[0] < row_key):
            findings.append(Finding(ROW_DELETED, leaf[1], source.name, None,
                                    f"{source.name} row {leaf[0]} (leaf {leaf[1]}) is gone"))
            leaf = next(leaves, None)
            continue
        assert row is not None and row_key is not None
        if leaf is None or row_key < leaf[0]:
            if row_key <= before:
                older += 1
            else:
                findings.append(Finding(ROW_NOT_LOGGED, None, source.name, None,
                                        f"{source.name} row {row_key} has no leaf in the log"))
            row = next(rows, None)
            continue
        checked += 1
        _compare(source, row._mapping, leaf, findings)
        row, leaf = next(rows, None), next(leaves, None)
    return checked, older


def _compare(source: AuditSource, row: Any, leaf: tuple[int, int, str], findings: list[Finding]) -> None:
    key, seq, entry = leaf
    try:
        logged = json.loads(entry)
        fields = logged["row"]
        if logged.get("table") != source.name or logged.get("key") != key or not isinstance(fields, dict):
            raise ValueError("entry names another row")
    except (ValueError, KeyError, TypeError):
        findings.append(Finding(ENTRY_CHANGED, seq, source.name, None, f"leaf {seq} is not an entry of {source.name} {key}"))
        return
    for name in source.fields:
        if name not in fields or canonical(fields[name]) != canonical(row[name]):
            findings.append(Finding(ROW_CHANGED, seq, source.name, name,
                                    f"{source.name} row {key}: {name} differs from leaf {seq}"))
            return


def stored_leaf_hash(connection: Connection, seq: int) -> bytes:
    return _DatabaseHashes(connection).read_hashes([stored_hash_index(0, seq)])[0]
