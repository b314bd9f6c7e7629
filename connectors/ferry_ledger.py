"""Sender and receiver ledgers of the ferry, kept in the zone database.

Sending is plan → build → send → mark: the plan (sequence, time, what it carries) is
committed first, and the bundle is built deterministically from it, so a crash at any
point is repaired by building the same bytes again. Receiving applies a bundle's records
and its ledger row in one transaction, so a rerun neither loses nor repeats a record.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.exc import IntegrityError

from connectors.clock import iso, now
from connectors.db import alarms, ferry_applied, ferry_sent, quarantine, transaction
from connectors.provenance import record_events
from ferry.bundle import (
    BundleHeader,
    BundleRejected,
    ItemSource,
    Limits,
    VerifiedBundle,
    bundle_file_name,
    open_bundle,
    write_bundle,
)
from ferry.keys import DecryptionKey, Keyring, RecipientKey, SigningKey
from ferry.transport import Transport

SEQUENCE_CONFLICT = "SEQUENCE_CONFLICT"


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
    )


def pending_plan(connection: Connection, channel: str) -> PlannedBundle | None:
    """The planned-but-unsent bundle of ``channel``, to finish before planning another."""
    row = connection.execute(
        select(ferry_sent).where(ferry_sent.c.channel == channel, ferry_sent.c.state == "planned")
    ).first()
    return _plan_from_row(row) if row else None


def plan_next(
    connection: Connection,
    channel: str,
    *,
    created_at: str,
    catalogue_version: str,
    record_count: int,
    first_key: int | None = None,
    last_key: int | None = None,
) -> PlannedBundle:
    """Reserve the next sequence number of ``channel`` for a bundle with this content."""
    last = connection.execute(
        select(func.max(ferry_sent.c.sequence)).where(ferry_sent.c.channel == channel)
    ).scalar()
    plan = PlannedBundle(
        channel, (last or 0) + 1, created_at, catalogue_version, record_count, first_key, last_key
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
        )
    )
    return plan


def last_acknowledged_key(connection: Connection, channel: str) -> int:
    """The highest outbox key already carried by a planned or sent bundle of ``channel``."""
    value = connection.execute(
        select(func.max(ferry_sent.c.last_key)).where(ferry_sent.c.channel == channel)
    ).scalar()
    return int(value or 0)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
) -> str:
    """Build the bundle of ``plan`` into the sender's outbox, hand it to the transport and
    mark it sent. Returns the bundle's digest."""
    with engine.connect() as connection:
        previous = connection.execute(
            select(ferry_sent.c.digest).where(
                ferry_sent.c.channel == plan.channel, ferry_sent.c.sequence == plan.sequence - 1
            )
        ).scalar()
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
    with open(partial, "wb") as stream:
        write_bundle(stream, header, items, key, recipient=recipient)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(partial, final)
    _fsync_dir(outbox)
    digest = _file_digest(final)
    transport.put(plan.file_name, final)
    with transaction(engine) as connection:
        connection.execute(
            update(ferry_sent)
            .where(ferry_sent.c.channel == plan.channel, ferry_sent.c.sequence == plan.sequence)
            .values(state="sent", digest=digest, file_name=plan.file_name)
        )
    return digest


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class ReceiveReport:
    """What one pass over a channel's incoming folder did."""

    applied: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    quarantined: list[dict[str, str]] = field(default_factory=list)
    records: int = 0


ApplyBundle = Callable[[Connection, VerifiedBundle, str, str], int]
PrepareBundle = Callable[[VerifiedBundle], None]


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
        if code == SEQUENCE_CONFLICT:
            connection.execute(alarms.insert().values(kind="security", detail=reason, at=at))
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
    prepare: PrepareBundle | None = None,
    limits: Limits | None = None,
) -> ReceiveReport:
    """Verify and apply every complete bundle waiting on ``channel``, in sequence order."""
    report = ReceiveReport()
    for name in transport.list_complete():
        path = transport.path_of(name)
        if path is None:
            continue
        try:
            bundle = open_bundle(
                path, keyring, limits or Limits(), expected_channel=channel,
                decryption_keys=decryption_keys, at=now(),
            )
        except BundleRejected as rejected:
            report.quarantined.append(
                quarantine_file(
                    engine, path, quarantine_dir / "bundles", kind="bundle", ref=name,
                    code=rejected.code, detail=rejected.detail, record_ids=[], stage="receive",
                )
            )
            continue
        sequence = bundle.manifest.sequence
        ref = f"{channel}#{sequence}"
        with engine.connect() as connection:
            known = connection.execute(
                select(ferry_applied.c.digest).where(
                    ferry_applied.c.channel == channel, ferry_applied.c.sequence == sequence
                )
            ).scalar()
        if known == bundle.digest:
            transport.remove(name)
            report.duplicates.append(ref)
            continue
        if known is not None:
            report.quarantined.append(
                quarantine_file(
                    engine, path, quarantine_dir / "bundles", kind="bundle", ref=name,
                    code=SEQUENCE_CONFLICT,
                    detail=f"sequence {sequence} was applied with digest {known}; "
                    f"this bundle has digest {bundle.digest}",
                    record_ids=[], stage="receive",
                )
            )
            continue
        if prepare is not None:
            prepare(bundle)
        at = iso(now())
        try:
            with transaction(engine) as connection:
                count = apply(connection, bundle, ref, at)
                connection.execute(
                    ferry_applied.insert().values(
                        channel=channel, sequence=sequence, digest=bundle.digest,
                        applied_at=at, record_count=count,
                    )
                )
        except IntegrityError:
            # Another receiver applied this sequence between our check and our commit.
            report.duplicates.append(ref)
        else:
            report.applied.append(ref)
            report.records += count
        transport.remove(name)
    return report
