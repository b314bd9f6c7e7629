"""Sender and receiver ledgers of the ferry, kept in the zone database.

Sending is plan → build → send → mark: the plan (sequence, time, what it carries) is
committed first, and the bundle is built deterministically from it, so a crash at any
point is repaired by building the same bytes again. Receiving applies a bundle's records
and its ledger row in one transaction, so a rerun neither loses nor repeats a record.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.exc import IntegrityError

from connectors.alarms import raise_alarm
from connectors.clock import iso, now
from connectors.db import (
    ferry_applied,
    ferry_receipts,
    ferry_sent,
    quarantine,
    transaction,
)
from connectors.provenance import record_events
from ferry.bundle import (
    BundleHeader,
    BundleRejected,
    ItemSink,
    ItemSource,
    Limits,
    VerifiedBundle,
    bundle_file_name,
    open_bundle,
    records_item,
    write_bundle_and_digest,
)
from ferry.keys import DecryptionKey, Keyring, RecipientKey, SigningKey
from ferry.receipts import RECEIPTS_KIND, REVERSE, Receipt, build_receipt
from ferry.tlog import SECURITY_CODES as LOG_SECURITY_CODES
from ferry.transport import Transport, fsync_dir
from ferry.verdict import (
    NOT_A_REGULAR_FILE,
    SECURITY_CODES,
    Apply,
    Duplicate,
    Link,
    Refuse,
    Verdict,
    carried_receipt,
    judge,
    refusal,
)
from schemas.exceptions import TerminalError

DATA, HEARTBEAT = "data", "heartbeat"
_BUNDLE_NAME = re.compile(r"(inbound|outbound)-([0-9]{12})\.peb")


def sequence_of(name: str) -> int | None:
    """The sequence a bundle file name claims (untrusted: only for gap reports)."""
    found = _BUNDLE_NAME.fullmatch(name)
    return int(found.group(2)) if found else None


@dataclass(frozen=True)
class PlannedBundle:
    """A bundle whose content is fixed in the ledger but which may not be sent yet."""

    channel: str
    sequence: int
    created_at: str
    catalogue_version: str
    record_count: int
    first_key: int | None
    last_key: int | None
    kind: str = DATA
    receipt: dict[str, Any] | None = None

    @property
    def ref(self) -> str:
        return f"{self.channel}#{self.sequence}"

    @property
    def file_name(self) -> str:
        return bundle_file_name(self.channel, self.sequence)


def _plan_from_row(row: Any) -> PlannedBundle:
    return PlannedBundle(
        channel=row.channel,
        sequence=row.sequence,
        created_at=row.created_at,
        catalogue_version=row.catalogue_version,
        record_count=row.record_count,
        first_key=row.first_key,
        last_key=row.last_key,
        kind=row.kind,
        receipt=row.receipt,
    )


def planned_unsent(connection: Connection, channel: str) -> list[PlannedBundle]:
    """The planned-but-unsent bundles of ``channel`` (of any kind), in sequence order: what
    a crash left, to send before planning another."""
    rows = connection.execute(
        select(ferry_sent)
        .where(ferry_sent.c.channel == channel, ferry_sent.c.state == "planned")
        .order_by(ferry_sent.c.sequence)
    )
    return [_plan_from_row(row) for row in rows]


def plan_next(
    connection: Connection,
    channel: str,
    *,
    created_at: str,
    catalogue_version: str,
    record_count: int,
    first_key: int | None = None,
    last_key: int | None = None,
    kind: str = DATA,
) -> PlannedBundle:
    """Reserve the next sequence number of ``channel`` for a bundle with this content.

    The receipt of the reverse channel is fixed in the plan too, so a rebuild after a
    crash gives the same bytes."""
    last = connection.execute(
        select(func.max(ferry_sent.c.sequence)).where(ferry_sent.c.channel == channel)
    ).scalar()
    receipt = current_receipt(connection, REVERSE[channel]).to_record()
    plan = PlannedBundle(
        channel, (last or 0) + 1, created_at, catalogue_version, record_count, first_key,
        last_key, kind, receipt,
    )
    connection.execute(
        ferry_sent.insert().values(
            channel=channel,
            sequence=plan.sequence,
            state="planned",
            created_at=created_at,
            catalogue_version=catalogue_version,
            record_count=record_count,
            first_key=first_key,
            last_key=last_key,
            kind=kind,
            receipt=receipt,
        )
    )
    return plan


def current_receipt(connection: Connection, channel: str) -> Receipt:
    """This zone's receipt for ``channel`` (a channel it receives): applied sequences and
    bundles quarantined under a bundle file name of that channel."""
    applied = connection.execute(
        select(ferry_applied.c.sequence).where(ferry_applied.c.channel == channel)
    ).scalars()
    refused: dict[int, str] = {}
    rows = connection.execute(
        select(quarantine.c.ref, quarantine.c.code)
        .where(quarantine.c.kind == "bundle", quarantine.c.state == "held")
        .order_by(quarantine.c.id)
    )
    for ref, code in rows:
        sequence = sequence_of(ref)
        if sequence is not None and ref.startswith(channel + "-"):
            refused[sequence] = code
    return build_receipt(channel, applied, refused)


def last_acknowledged_key(connection: Connection, channel: str) -> int:
    """The highest outbox key already carried by a planned or sent bundle of ``channel``."""
    value = connection.execute(
        select(func.max(ferry_sent.c.last_key)).where(ferry_sent.c.channel == channel)
    ).scalar()
    return int(value or 0)


WRITEBACK_BYTES = 64 << 20


def start_writeback(fd: int, offset: int = 0, length: int = 0) -> None:
    """Have the kernel start writing this range of a file to disk now, without waiting for
    it (``length`` 0: to the end), so the disk works while the CPU goes on and the fsync
    before the rename finds little left to write. POSIX_FADV_DONTNEED queues the dirty pages
    for write-back and keeps them cached (it drops only clean pages, which a range written
    just now does not have: a later read may hit the disk otherwise, never a wrong byte).
    A no-op where posix_fadvise is missing."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is not None:
        advise(fd, offset, length, os.POSIX_FADV_DONTNEED)


class _WritingBack:
    """A binary file that starts write-back after every WRITEBACK_BYTES written."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.written = 0
        self.started = 0

    def write(self, data: bytes) -> None:
        self.stream.write(data)
        self.written += len(data)
        if self.written - self.started >= WRITEBACK_BYTES:
            self.stream.flush()
            start_writeback(self.stream.fileno(), self.started, self.written - self.started)
            self.started = self.written


def send_planned(
    engine: Engine,
    plan: PlannedBundle,
    *,
    items: Iterable[ItemSource],
    counts: dict[str, int],
    key: SigningKey,
    recipient: RecipientKey,
    outbox: Path,
    transport: Transport,
    limits: Limits | None = None,
) -> str:
    """Build the bundle of ``plan`` into the sender's outbox, hand it to the transport and
    mark it sent. Returns the bundle's digest."""
    with engine.connect() as connection:
        previous = connection.execute(
            select(ferry_sent.c.digest).where(
                ferry_sent.c.channel == plan.channel, ferry_sent.c.sequence == plan.sequence - 1
            )
        ).scalar()
    if plan.receipt is not None:
        items = itertools.chain(items, [records_item(RECEIPTS_KIND, [plan.receipt])])
        counts = {**counts, RECEIPTS_KIND: 1}
    header = BundleHeader(
        channel=plan.channel,
        sequence=plan.sequence,
        previous_digest=previous,
        created_at=plan.created_at,
        catalogue_version=plan.catalogue_version,
        counts=counts,
    )
    outbox.mkdir(parents=True, exist_ok=True)
    final = outbox / plan.file_name
    partial = final.with_name(final.name + ".part")
    partial.unlink(missing_ok=True)  # left by a crash; read-only, so never reopened
    # Created read-only and never rewritten: the transport may then share its inode
    # instead of writing the bytes again (LocalFolderTransport.put).
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    with os.fdopen(os.open(partial, flags, 0o444), "wb") as stream:
        _, digest = write_bundle_and_digest(
            _WritingBack(stream), header, items, key, recipient=recipient,
            limits=limits or Limits(),
        )
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(partial, final)
    fsync_dir(outbox)
    transport.put(plan.file_name, final)
    with transaction(engine) as connection:
        connection.execute(
            update(ferry_sent)
            .where(ferry_sent.c.channel == plan.channel, ferry_sent.c.sequence == plan.sequence)
            .values(state="sent", digest=digest, file_name=plan.file_name, sent_at=iso(now()))
        )
    return digest


@dataclass
class ReceiveReport:
    """What one pass over a channel's incoming folder did."""

    applied: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    quarantined: list[dict[str, str]] = field(default_factory=list)
    records: int = 0


ApplyBundle = Callable[[Connection, VerifiedBundle, str, str], int]


class BundleStaging(ItemSink, Protocol):
    """What a receiver keeps of a bundle besides its records (attachments), taken in the
    verification pass: ``open_bundle`` hands it the items' plaintext as it verifies them;
    ``commit`` makes them visible once the bundle passed verification and the ledger checks
    (idempotent: a rerun after a crash commits again); ``discard`` drops whatever was not
    committed."""

    def commit(self, bundle: VerifiedBundle) -> None: ...

    def discard(self) -> None: ...


StageBundle = Callable[[], BundleStaging]
# A last look at a bundle the verdict would apply: a refusal quarantines it instead.
InspectBundle = Callable[[VerifiedBundle], Refuse | None]


@contextmanager
def _staging(stage: StageBundle | None) -> Iterator[BundleStaging | None]:
    staging = stage() if stage is not None else None
    try:
        yield staging
    finally:
        if staging is not None:
            staging.discard()


def quarantine_file(
    engine: Engine,
    source: Path,
    folder: Path,
    *,
    kind: str,
    ref: str,
    code: str,
    detail: str,
    record_ids: list[str],
    stage: str,
) -> dict[str, str]:
    """Keep a rejected bundle or submission with a machine-readable reason; never delete it."""
    at = iso(now())
    folder.mkdir(parents=True, exist_ok=True)
    stamp = hashlib.sha256(f"{ref}|{code}|{at}".encode()).hexdigest()[:12]
    target = folder / f"{ref}.{stamp}"
    reason = {"kind": kind, "ref": ref, "code": code, "detail": detail, "at": at}
    target.with_name(target.name + ".reason.json").write_text(
        json.dumps(reason, ensure_ascii=False, indent=1), "utf-8"
    )
    shutil.move(source, target)
    with transaction(engine) as connection:
        connection.execute(
            quarantine.insert().values(
                kind=kind,
                ref=ref,
                code=code,
                detail=detail,
                stored_as=str(target),
                record_ids=record_ids,
                at=at,
                state="held",
            )
        )
        record_events(connection, [(r, stage, "quarantined", ref, {"code": code}) for r in record_ids], at)
        if code in SECURITY_CODES or code in LOG_SECURITY_CODES:
            raise_alarm(connection, "security", reason, at)
    return reason


def receive_channel(
    engine: Engine,
    *,
    channel: str,
    transport: Transport,
    keyring: Keyring,
    decryption_keys: Mapping[str, DecryptionKey],
    quarantine_dir: Path,
    apply: ApplyBundle,
    stage: StageBundle | None = None,
    limits: Limits | None = None,
    staging_dir: Path | None = None,
    inspect: InspectBundle | None = None,
) -> ReceiveReport:
    """Verify and apply every complete bundle waiting on ``channel``, in sequence order.

    Per bundle: verify (signature, sizes, hashes; items ``stage`` asks for are staged in
    the same pass) → the verdict (``ferry.verdict.judge``: file name, sequence and digest
    chain against the ledger, receipt check) → refuse into quarantine, drop a duplicate,
    or apply: commit what was staged (attachments, idempotent) → one transaction
    holding the records, the ``ferry_applied`` row and the receipt → remove the file.
    Staged items of a bundle that is refused or a duplicate are discarded. A crash between
    any two steps is repaired by the next pass. A transport without local paths (SFTP) is
    first copied into ``staging_dir``. ``inspect`` may still refuse a bundle the verdict
    would apply, on its content (an audit checkpoint that does not extend the last one)."""
    report = ReceiveReport()
    held = quarantine_dir / "bundles"
    staging = staging_dir or quarantine_dir.parent / "incoming" / channel
    for name in transport.list_complete():
        with _staging(stage) as staged:
            path = transport.path_of(name) or _fetch(transport, name, staging)
            verdict: Verdict
            try:
                bundle = open_bundle(
                    path, keyring, limits or Limits(), expected_channel=channel,
                    decryption_keys=decryption_keys, at=now(), sink=staged,
                )
            except BundleRejected as rejected:
                verdict = refusal(rejected)
            except TerminalError as error:  # a symlink, FIFO or device planted under a bundle name
                if not path.is_symlink() and path.exists() and path.is_file():
                    raise
                verdict = Refuse(NOT_A_REGULAR_FILE, str(error))
            else:
                verdict = judge(
                    name=name, channel=channel, arrived=_link(bundle),
                    applied=_applied_beside(engine, channel, bundle.manifest.sequence),
                    receipt=carried_receipt(bundle),
                    item_names=[item.name for item in bundle.manifest.items],
                )
                if inspect is not None and isinstance(verdict, Apply) and not verdict.heartbeat:
                    verdict = inspect(bundle) or verdict
            if isinstance(verdict, Refuse):
                report.quarantined.append(
                    quarantine_file(
                        engine, path, held, kind="bundle", ref=name, code=verdict.code,
                        detail=verdict.detail, record_ids=[], stage="receive",
                    )
                )
                _forget_remote(transport, name, path)
                continue
            ref = f"{channel}#{bundle.manifest.sequence}"
            if isinstance(verdict, Duplicate):
                _remove(transport, name, path)
                report.duplicates.append(ref)
                continue
            count = _apply(engine, bundle, verdict, apply, staged, ref)
            if count is None:
                report.duplicates.append(ref)  # another receiver applied it meanwhile
            else:
                report.applied.append(ref)
                report.records += count
            _remove(transport, name, path)
    return report


def _link(bundle: VerifiedBundle) -> Link:
    return Link(bundle.manifest.sequence, bundle.digest, bundle.manifest.previous_digest)


def _applied_beside(engine: Engine, channel: str, sequence: int) -> dict[int, Link]:
    """The applied bundles of ``channel`` at ``sequence`` and beside it."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(ferry_applied).where(
                ferry_applied.c.channel == channel,
                ferry_applied.c.sequence.between(sequence - 1, sequence + 1),
            )
        )
        return {row.sequence: Link(row.sequence, row.digest, row.previous_digest) for row in rows}


def _apply(
    engine: Engine, bundle: VerifiedBundle, verdict: Apply, apply: ApplyBundle,
    staged: BundleStaging | None, ref: str,
) -> int | None:
    """Carry out an apply verdict: commit what was staged, then the records, the ledger row
    and the receipt in one transaction. The record count, or None when another receiver
    applied the sequence between the verdict and the commit."""
    if staged is not None and not verdict.heartbeat:
        staged.commit(bundle)
    at = iso(now())
    sequence = bundle.manifest.sequence
    try:
        with transaction(engine) as connection:
            count = 0 if verdict.heartbeat else apply(connection, bundle, ref, at)
            connection.execute(
                ferry_applied.insert().values(
                    channel=bundle.manifest.channel, sequence=sequence, digest=bundle.digest,
                    applied_at=at, record_count=count,
                    previous_digest=bundle.manifest.previous_digest,
                    kind=HEARTBEAT if verdict.heartbeat else DATA,
                )
            )
            if verdict.receipt is not None:
                store_receipt(connection, verdict.receipt, carrier=ref, carrier_sequence=sequence, at=at)
    except IntegrityError:
        return None
    return count


def store_receipt(
    connection: Connection, receipt: Receipt, *, carrier: str, carrier_sequence: int, at: str
) -> None:
    """Keep the newest receipt of a channel this zone sends on and acknowledge what it covers
    (in the caller's transaction). An older receipt arriving late still acknowledges."""
    stored = connection.execute(
        select(ferry_receipts.c.carrier_sequence).where(ferry_receipts.c.channel == receipt.channel)
    ).scalar()
    values = {
        "carrier": carrier, "carrier_sequence": carrier_sequence,
        "receipt": receipt.to_record(), "received_at": at,
    }
    if stored is None:
        connection.execute(ferry_receipts.insert().values(channel=receipt.channel, **values))
    elif carrier_sequence > stored:
        connection.execute(
            update(ferry_receipts).where(ferry_receipts.c.channel == receipt.channel).values(**values)
        )
    open_sequences = connection.execute(
        select(ferry_sent.c.sequence).where(
            ferry_sent.c.channel == receipt.channel,
            ferry_sent.c.state == "sent",
            ferry_sent.c.acknowledged_at.is_(None),
        )
    ).scalars()
    covered = [s for s in open_sequences if receipt.covers(s)]
    if covered:
        connection.execute(
            update(ferry_sent)
            .where(ferry_sent.c.channel == receipt.channel, ferry_sent.c.sequence.in_(covered))
            .values(acknowledged_at=at)
        )


def _fetch(transport: Transport, name: str, staging: Path) -> Path:
    """Copy a remote bundle into a local staging file (fsynced) to verify and apply it."""
    staging.mkdir(parents=True, exist_ok=True)
    target = staging / name
    partial = staging / (name + ".part")
    with transport.open(name) as source, open(partial, "wb") as dest:
        shutil.copyfileobj(source, dest, 1 << 20)
        dest.flush()
        os.fsync(dest.fileno())
    os.replace(partial, target)
    return target


def _remove(transport: Transport, name: str, path: Path) -> None:
    """Done with a bundle: remove it from the transport (and its local staging copy)."""
    transport.remove(name)
    if transport.path_of(name) is None:
        path.unlink(missing_ok=True)


def _forget_remote(transport: Transport, name: str, path: Path) -> None:
    """After quarantining a staged copy, the remote original goes (the copy is kept)."""
    if transport.path_of(name) is None:
        transport.remove(name)
