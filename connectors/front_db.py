"""Intake from the portal's front database (前置库): the public portal inserts one row per
submission into ``portal_submissions`` of the internet zone's database, its attachments
already in a content-addressed store (``<sha256[:2]>/<sha256>``); intake reads the new rows
a batch at a time by keyset, checks what it must vouch for (the same checks as the drop
folder's), and in ONE transaction plans the batch's inbound bundle, marks its rows carried
and quarantines the bad ones with their reasons. The ``ChannelSender`` then sends the bundle,
or rebuilds it byte-identical from the rows after a crash. The contract is
docs/front-database.md.

Everything the portal wrote is untrusted: a row that cannot be carried safely stays in the
table, marked ``quarantined`` with its reason code, and a ``quarantine`` row lets an operator
release (back to ``new``) or discard it.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection, Engine, select, update

from connectors.audit import log_rows
from connectors.channel_sender import BuiltBundle, ChannelSender, Rebuild, resumed_of
from connectors.clock import iso, now
from connectors.collector import collector_paused
from connectors.db import (
    bulk_insert,
    portal_submissions,
    quarantine,
    quarantine_actions,
    transaction,
)
from connectors.ferry_ledger import PlannedBundle, plan_next
from connectors.intake import (
    ATTACHMENT_HASH,
    ATTACHMENT_MISSING,
    ATTACHMENT_TOO_LARGE,
    ATTACHMENT_TYPE,
    MAX_ATTACHMENT_BYTES,
    MAX_SUBMISSION_BYTES,
    SAFE_NAME,
    SNIFF_BYTES,
    SUBMISSION_UNREADABLE,
    UNSAFE_NAME,
    IntakeReport,
    Refusal,
    Submission,
    bundle_items,
    record_collected,
)
from connectors.provenance import record_events
from ferry.bundle import record_line
from ferry.content_types import content_matches
from schemas.exceptions import TerminalError, TransientError

FRONT_DB_PLAN = "front_db"  # ferry_sent.kind of inbound bundles carrying front-database rows
NEW, CARRIED, QUARANTINED, DISCARDED = "new", "carried", "quarantined", "discarded"
STORED_AS_PREFIX = "portal_submissions#"  # quarantine.stored_as of a held row
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
# Ids per ``IN (...)`` list: under SQLite's oldest limit on bound parameters (999).
_ID_CHUNK = 900


class PortalRow(NamedTuple):
    """One row of ``portal_submissions`` as intake reads it (a tuple: built 20,000 at a time)."""

    id: int
    net_id: str
    envelope: str


def attachment_path(store: Path, digest: str) -> Path:
    """Where the content-addressed store keeps the attachment of ``digest`` (a checked hex
    SHA-256: the only portal-supplied text that ever becomes part of a path)."""
    if not SHA256_HEX.match(digest):
        raise ValueError(f"not a SHA-256 in hex: {digest!r:.80}")
    return store / digest[:2] / digest


def stored_as(row_id: int) -> str:
    """The ``quarantine.stored_as`` of a held front-database row."""
    return f"{STORED_AS_PREFIX}{row_id}"


def row_id_of(location: str) -> int | None:
    """The front-database row a ``quarantine.stored_as`` names, or None for a file path."""
    if not location.startswith(STORED_AS_PREFIX):
        return None
    number = location.removeprefix(STORED_AS_PREFIX)
    return int(number) if number.isdigit() else None


# --- checking a row ---------------------------------------------------------------------


class AttachmentCache:
    """Each attachment of the store checked (read, hashed, sniffed) once per pass for each
    media type declared for it, however many rows reference it. Only the verdicts are kept
    (a pass may see tens of thousands of attachments), never the contents."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self._verdicts: dict[tuple[str, str], Refusal | None] = {}

    def check(self, digest: str, declared: str) -> Refusal | None:
        """None when the store holds a regular file of at most MAX_ATTACHMENT_BYTES whose
        SHA-256 is ``digest`` and whose content is of the ``declared`` type."""
        key = (digest, declared)
        if key not in self._verdicts:
            self._verdicts[key] = _check_stored(attachment_path(self.store, digest), digest, declared)
        return self._verdicts[key]


def _check_stored(path: Path, digest: str, declared: str) -> Refusal | None:
    try:
        # O_NOFOLLOW: a symbolic link planted in the store is refused, never followed.
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return Refusal(ATTACHMENT_MISSING, f"{digest} is not in the portal's attachment store")
    except OSError as error:
        return Refusal(ATTACHMENT_MISSING, f"{digest} cannot be read from the store: {error.strerror}")
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            return Refusal(ATTACHMENT_MISSING, f"{digest} in the store is not a regular file")
        if status.st_size > MAX_ATTACHMENT_BYTES:
            return Refusal(ATTACHMENT_TOO_LARGE, f"{digest} is over {MAX_ATTACHMENT_BYTES} bytes")
        hashed = hashlib.sha256()
        head = b""
        size = 0
        while chunk := os.read(descriptor, 1 << 20):
            if not head:
                head = chunk[:SNIFF_BYTES]
            size += len(chunk)
            if size > MAX_ATTACHMENT_BYTES:  # grew after the fstat
                return Refusal(ATTACHMENT_TOO_LARGE, f"{digest} is over {MAX_ATTACHMENT_BYTES} bytes")
            hashed.update(chunk)
    finally:
        os.close(descriptor)
    if hashed.hexdigest() != digest:
        return Refusal(ATTACHMENT_HASH, f"the stored {digest} does not hash to its name")
    if not content_matches(declared, head):
        return Refusal(ATTACHMENT_TYPE, f"content of {digest} is not the declared {declared!r}")
    return None


def inspect_row(row: PortalRow, attachments: AttachmentCache) -> Submission | Refusal:
    """Check one row as intake checks a drop folder: size and JSON of the envelope, its
    NET_ID, and every referenced attachment (present, not too large, its content hashing to
    its name, its content of the declared type on the allow-list)."""
    text = row.envelope
    # A character is at most 4 bytes in UTF-8: only a long text needs encoding to be measured.
    if len(text) * 4 > MAX_SUBMISSION_BYTES and len(text.encode("utf-8", "surrogatepass")) > MAX_SUBMISSION_BYTES:
        return Refusal(SUBMISSION_UNREADABLE, f"envelope exceeds {MAX_SUBMISSION_BYTES} bytes")
    if not SAFE_NAME.match(row.net_id):
        return Refusal(UNSAFE_NAME, "net_id is not a plain name")
    try:
        envelope = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        return Refusal(SUBMISSION_UNREADABLE, f"envelope is not valid JSON: {error}")
    if not isinstance(envelope, dict) or envelope.get("net_id") != row.net_id:
        return Refusal(SUBMISSION_UNREADABLE, "net_id missing from the envelope or not the row's net_id")
    carried: dict[str, tuple[str, Path]] = {}
    materials = envelope.get("materials")
    for index, material in enumerate(materials if isinstance(materials, list) else []):
        digest = material.get("sha256") if isinstance(material, dict) else None
        if not isinstance(digest, str) or not SHA256_HEX.match(digest):
            continue  # nothing to carry; validation in the administration zone reports it
        declared = material.get("media_type")
        if not isinstance(declared, str):
            return Refusal(ATTACHMENT_TYPE, f"materials/{index}: no declared media type for {digest}")
        refused = attachments.check(digest, declared)
        if refused is not None:
            return Refusal(refused.code, f"materials/{index}: {refused.detail}")
        carried.setdefault(digest, (declared, attachment_path(attachments.store, digest)))
    return Submission(row.net_id, record_line(envelope), carried)


# --- intake -------------------------------------------------------------------------------


def _new_rows(connection: Connection, after: int, limit: int) -> list[PortalRow]:
    """The next ``limit`` new rows after id ``after``, in id order (the keyset)."""
    table = portal_submissions
    rows = connection.execute(
        select(table.c.id, table.c.net_id, table.c.envelope)
        .where(table.c.state == NEW, table.c.id > after)
        .order_by(table.c.id)
        .limit(limit)
    ).all()  # one fetchall, not a fetch per row
    return [PortalRow._make(row) for row in rows]


def _chunks(values: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), _ID_CHUNK):
        yield values[start : start + _ID_CHUNK]


def _mark_carried(connection: Connection, ids: list[int], sequence: int, at: str) -> None:
    """Mark rows carried by bundle ``sequence`` (in the plan's transaction). A row no longer
    new means another intake took it meanwhile: the whole transaction is rolled back."""
    table = portal_submissions
    marked = 0
    for chunk in _chunks(ids):
        marked += connection.execute(
            update(table)
            .where(table.c.state == NEW, table.c.id.in_(chunk))
            .values(state=CARRIED, sequence=sequence, handled_at=at)
        ).rowcount
    if marked != len(ids):
        raise TransientError(f"{len(ids) - marked} front-database rows were taken by another intake meanwhile")


def _quarantine_rows(connection: Connection, refused: list[tuple[PortalRow, Refusal]], at: str) -> list[dict[str, str]]:
    """Mark refused rows quarantined with their reasons, and hold each in ``quarantine``
    (in the caller's transaction)."""
    table = portal_submissions
    for row, refusal in refused:
        done = connection.execute(
            update(table)
            .where(table.c.id == row.id, table.c.state == NEW)
            .values(state=QUARANTINED, handled_at=at, reason_code=refusal.code, reason_detail=refusal.detail)
        ).rowcount
        if done != 1:
            raise TransientError(f"front-database row {row.id} was taken by another intake meanwhile")
    bulk_insert(connection, quarantine, [
        {"kind": "submission", "ref": row.net_id, "code": refusal.code, "detail": refusal.detail,
         "stored_as": stored_as(row.id), "record_ids": [row.net_id], "at": at, "state": "held"}
        for row, refusal in refused
    ])
    record_events(
        connection,
        [(row.net_id, "intake", "quarantined", row.net_id, {"code": refusal.code}) for row, refusal in refused],
        at,
    )
    return [{"kind": "submission", "ref": row.net_id, "code": refusal.code, "detail": refusal.detail, "at": at}
            for row, refusal in refused]


def _built(submissions: list[Submission]) -> BuiltBundle:
    """The planned bundle of ``submissions`` (empties the list; rows in id order, so the
    media type kept for an attachment two rows share is the same on a rebuild)."""
    items, counts = bundle_items(submissions)
    return BuiltBundle(items, counts)


def front_db_rebuilder(store: Path) -> Rebuild:
    """The rebuilder of front-database plans: the rows the plan marked carried, read and
    checked again, give the same bytes (the portal never changes a row it inserted; a row
    that no longer passes stops the channel rather than send other content)."""

    def rebuild(engine: Engine, plan: PlannedBundle) -> BuiltBundle:
        table = portal_submissions
        with engine.connect() as connection:
            rows = [
                PortalRow._make(row) for row in connection.execute(
                    select(table.c.id, table.c.net_id, table.c.envelope)
                    .where(table.c.sequence == plan.sequence, table.c.state == CARRIED)
                    .order_by(table.c.id)
                )
            ]
        if len(rows) != plan.record_count:
            raise TerminalError(
                f"{plan.ref} was planned over {plan.record_count} front-database rows, {len(rows)} are marked carried by it"
            )
        attachments = AttachmentCache(store)
        submissions = []
        for row in rows:
            found = inspect_row(row, attachments)
            if not isinstance(found, Submission):
                raise TerminalError(
                    f"front-database row {row.id} ({row.net_id}) changed since {plan.ref} was planned: {found}"
                )
            submissions.append(found)
        return _built(submissions)

    return rebuild


def collect_front_db(
    sender: ChannelSender,
    *,
    store: Path,
    catalogue_version: str,
    max_records: int = 20_000,
) -> IntakeReport:
    """Carry every new row of the front database into inbound bundles, ``max_records`` at
    a time in id order; quarantine the rows that cannot be carried."""
    report = IntakeReport()
    for resumed in resumed_of(sender.resume(), FRONT_DB_PLAN):
        report.bundles.append(resumed.plan.ref)
        report.carried += resumed.plan.record_count
    after = 0
    attachments = AttachmentCache(store)
    while True:
        with collector_paused():
            with sender.engine.connect() as connection:
                rows = _new_rows(connection, after, max_records)
            if not rows:
                return report
            after = rows[-1].id
            _carry_batch(sender, rows, attachments, catalogue_version=catalogue_version, report=report)


def _carry_batch(
    sender: ChannelSender, rows: list[PortalRow], attachments: AttachmentCache, *,
    catalogue_version: str, report: IntakeReport,
) -> None:
    carried: list[Submission] = []
    ids: list[int] = []
    refused: list[tuple[PortalRow, Refusal]] = []
    for row in rows:
        found = inspect_row(row, attachments)
        if isinstance(found, Submission):
            carried.append(found)
            ids.append(row.id)
        else:
            refused.append((row, found))
    rows.clear()
    at = iso(now())
    plan = None
    with transaction(sender.engine) as connection:
        if carried:
            plan = plan_next(
                connection, sender.channel, created_at=at, catalogue_version=catalogue_version,
                record_count=len(carried), first_key=ids[0], last_key=ids[-1], kind=FRONT_DB_PLAN,
            )
            _mark_carried(connection, ids, plan.sequence, at)
            record_collected(connection, plan, [s.net_id for s in carried], at)
        if refused:
            report.quarantined += _quarantine_rows(connection, refused, at)
    if plan is not None:
        report.carried += len(carried)
        sender.send(plan, _built(carried))
        report.bundles.append(plan.ref)


# --- operators: release and discard a held row -----------------------------------------------


def release_row(connection: Connection, quarantine_id: int, row_id: int, *, operator: str, at: str) -> None:
    """Put a quarantined row back to ``new`` for a new attempt (in the caller's transaction,
    which has checked the quarantine entry is held)."""
    table = portal_submissions
    done = connection.execute(
        update(table).where(table.c.id == row_id, table.c.state == QUARANTINED)
        .values(state=NEW, handled_at=None, reason_code=None, reason_detail=None)
    ).rowcount
    if done != 1:
        raise TerminalError(f"front-database row {row_id} is not quarantined; nothing to release")
    _audit(connection, quarantine_id, "release", "released for a new attempt", operator, at)
    connection.execute(update(quarantine).where(quarantine.c.id == quarantine_id).values(state="released"))


def discard_row(connection: Connection, quarantine_id: int, row_id: int, *, reason: str, operator: str, at: str) -> None:
    """Mark a quarantined row discarded for good (the row stays, with its reason, as the
    portal's record; intake never reads it again)."""
    table = portal_submissions
    connection.execute(
        update(table).where(table.c.id == row_id, table.c.state == QUARANTINED).values(state=DISCARDED, handled_at=at)
    )
    _audit(connection, quarantine_id, "discard", reason, operator, at)
    connection.execute(update(quarantine).where(quarantine.c.id == quarantine_id).values(state="discarded"))


def _audit(connection: Connection, quarantine_id: int, action: str, reason: str, operator: str, at: str) -> None:
    """The operator's action, recorded and appended to the zone's audit log (its own row)."""
    key = connection.execute(quarantine_actions.insert().values(
        quarantine_id=quarantine_id, action=action, reason=reason, operator=operator, at=at,
    ).returning(quarantine_actions.c.id)).scalar_one()
    log_rows(connection, "quarantine_actions", [int(key)], at)


# --- the portal's side of the contract (reference writer) -----------------------------------


def store_attachment(store: Path, content: bytes, *, durable: bool = True) -> str:
    """Write ``content`` into the content-addressed store as the portal must: under its
    SHA-256, written beside it as ``.part`` (fsync'd when ``durable``) and renamed; a file
    already there is left alone. Returns the digest."""
    digest = hashlib.sha256(content).hexdigest()
    target = attachment_path(store, digest)
    if target.exists():
        return digest
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{digest}.{os.getpid()}.part")
    with open(partial, "wb") as stream:
        stream.write(content)
        if durable:
            stream.flush()
            os.fsync(stream.fileno())
    os.replace(partial, target)
    return digest


def insert_submissions(connection: Connection, rows: Iterable[dict[str, Any]]) -> int:
    """Insert the portal's rows (``net_id``, ``submitted_at``, ``envelope`` text) in the
    caller's transaction, after their attachments are in the store."""
    return bulk_insert(connection, portal_submissions, [
        {"net_id": row["net_id"], "submitted_at": row["submitted_at"], "envelope": row["envelope"], "state": NEW}
        for row in rows
    ])
