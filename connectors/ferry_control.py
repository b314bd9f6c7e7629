"""Keeping a ferry channel healthy from both ends: heartbeats, resends from the outbox,
pruning acknowledged copies, silence alarms, the channel status, and the operator's
quarantine actions (release, discard) with their audit trail.

The sender of a channel learns what the receiver holds only from receipts that ride on the
reverse channel (``ferry_receipts``); it never talks to the receiver directly.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from connectors.alarms import alarm_rows, raise_alarm, resolve_open
from connectors.audit import log_rows
from connectors.channel_sender import ChannelSender
from connectors.clock import iso, now
from connectors.db import (
    alarms,
    ferry_applied,
    ferry_receipts,
    ferry_sent,
    quarantine,
    quarantine_actions,
    transaction,
)
from connectors.ferry_ledger import HEARTBEAT, current_receipt, sequence_of
from connectors.front_db import discard_row, release_row, row_id_of
from connectors.provenance import record_events
from ferry.receipts import Receipt
from ferry.transport import check_name
from schemas.exceptions import TerminalError

CHANNEL_SILENT = "channel_silent"
RESEND_IMPOSSIBLE = "resend_impossible"


@dataclass(frozen=True)
class ChannelPolicy:
    """Timing of one channel's upkeep (from the settings)."""

    heartbeat_after: timedelta = timedelta(minutes=15)
    silence_alarm_after: timedelta = timedelta(minutes=60)
    retention: timedelta = timedelta(hours=24)


@dataclass
class UpkeepReport:
    """What one upkeep pass did on the channel a zone sends and the one it receives."""

    resent: list[str] = field(default_factory=list)
    heartbeat: str | None = None
    pruned: list[str] = field(default_factory=list)
    alarms: list[dict[str, Any]] = field(default_factory=list)


def latest_receipt(connection: Connection, channel: str) -> tuple[Receipt, str, str] | None:
    """The newest receipt received for ``channel``: (receipt, carrier ref, received at)."""
    row = connection.execute(select(ferry_receipts).where(ferry_receipts.c.channel == channel)).first()
    if row is None:
        return None
    return Receipt.from_record(row.receipt), row.carrier, row.received_at


def resend(sender: ChannelSender, sequences: list[int], *, reason: str) -> list[str]:
    """Hand the outbox copies of ``sequences`` to the transport again, byte-identical (the
    copy must still have the digest recorded when it was sent). Returns the refs resent."""
    at = iso(now())
    resent = []
    with sender.engine.connect() as connection:
        rows = connection.execute(
            select(ferry_sent).where(
                ferry_sent.c.channel == sender.channel,
                ferry_sent.c.sequence.in_(sequences),
                ferry_sent.c.state == "sent",
            )
        ).all()
    found = {row.sequence: row for row in rows}
    for sequence in sorted(sequences):
        row = found.get(sequence)
        ref = f"{sender.channel}#{sequence}"
        copy = sender.outbox / check_name(row.file_name) if row is not None else None
        if row is None or copy is None or not copy.is_file() or _digest(copy) != row.digest:
            detail = {"channel": sender.channel, "sequence": sequence, "reason": reason,
                      "why": "never sent" if row is None else "outbox copy gone or changed"}
            with transaction(sender.engine) as connection:
                raise_alarm(connection, RESEND_IMPOSSIBLE, detail, at)
            if row is None:
                raise TerminalError(f"{ref} was never sent; nothing to resend")
            continue
        sender.transport.put(row.file_name, copy)
        with transaction(sender.engine) as connection:
            connection.execute(
                update(ferry_sent)
                .where(ferry_sent.c.channel == sender.channel, ferry_sent.c.sequence == sequence)
                .values(resent_count=ferry_sent.c.resent_count + 1, last_resent_at=at)
            )
            # A resend is an operator action (or a receipt's request): in the audit trail.
            record_events(connection, [(f"{sender.channel}#{sequence}", "ferry", "resent", row.file_name,
                                        {"reason": reason})], at)
        resent.append(ref)
    return resent


def upkeep_sender(sender: ChannelSender, policy: ChannelPolicy, *, catalogue_version: str) -> UpkeepReport:
    """Send what a crash left planned, resend what the latest receipt asks for (once per
    receipt), delete outbox copies acknowledged longer than the retention period, and send
    a heartbeat when nothing has left for ``heartbeat_after``."""
    report = UpkeepReport()
    sender.resume()
    moment = now()
    with sender.engine.connect() as connection:
        found = latest_receipt(connection, sender.channel)
        sent = connection.execute(
            select(ferry_sent.c.sequence, ferry_sent.c.last_resent_at).where(
                ferry_sent.c.channel == sender.channel, ferry_sent.c.state == "sent"
            )
        ).all()
    if found is not None:
        receipt, _carrier, received_at = found
        due = [s for s, last in sent if last is None or last < received_at]
        wanted = receipt.wanted(due)
        if wanted:
            report.resent = resend(sender, wanted, reason="receipt")
    report.pruned = prune_outbox(sender, moment - policy.retention)
    with sender.engine.connect() as connection:
        last_sent = connection.execute(
            select(func.max(ferry_sent.c.sent_at)).where(
                ferry_sent.c.channel == sender.channel, ferry_sent.c.state == "sent"
            )
        ).scalar()
    if last_sent is None or datetime.fromisoformat(last_sent) <= moment - policy.heartbeat_after:
        report.heartbeat = sender.send_heartbeat(catalogue_version=catalogue_version).plan.ref
    return report


def prune_outbox(sender: ChannelSender, acknowledged_before: datetime) -> list[str]:
    """Delete outbox copies acknowledged before ``acknowledged_before``; the ledger keeps
    their digests."""
    with sender.engine.connect() as connection:
        rows = connection.execute(
            select(ferry_sent.c.sequence, ferry_sent.c.file_name).where(
                ferry_sent.c.channel == sender.channel,
                ferry_sent.c.acknowledged_at.is_not(None),
                ferry_sent.c.acknowledged_at <= iso(acknowledged_before),
                ferry_sent.c.pruned_at.is_(None),
            )
        ).all()
    pruned = []
    for sequence, file_name in rows:
        (sender.outbox / check_name(file_name)).unlink(missing_ok=True)
        with transaction(sender.engine) as connection:
            connection.execute(
                update(ferry_sent)
                .where(ferry_sent.c.channel == sender.channel, ferry_sent.c.sequence == sequence)
                .values(pruned_at=iso(now()))
            )
        pruned.append(f"{sender.channel}#{sequence}")
    return pruned


def check_silence(engine: Engine, channel: str, policy: ChannelPolicy) -> dict[str, Any] | None:
    """An alarm when nothing (not even a heartbeat) has arrived on ``channel`` for longer
    than the threshold; one alarm per silent period, resolved once the channel speaks
    again. Returns the alarm raised, if any."""
    moment = now()

    def of_channel(detail: Any) -> bool:
        return isinstance(detail, dict) and detail.get("channel") == channel

    with transaction(engine) as connection:
        last = connection.execute(
            select(func.max(ferry_applied.c.applied_at)).where(ferry_applied.c.channel == channel)
        ).scalar()
        if last is None:
            return None
        if datetime.fromisoformat(last) > moment - policy.silence_alarm_after:
            resolve_open(connection, CHANNEL_SILENT, f"通道恢复：{last} 收到数据 · the channel spoke again at {last}",
                         moment, matching=of_channel)
            return None
        raised = connection.execute(
            select(alarms.c.detail).where(alarms.c.kind == CHANNEL_SILENT, alarms.c.at >= last)
        ).scalars()
        if any(of_channel(d) for d in raised):
            return None
        detail = {
            "channel": channel, "last_received_at": last,
            "silent_minutes": int((moment - datetime.fromisoformat(last)).total_seconds() // 60),
        }
        raise_alarm(connection, CHANNEL_SILENT, detail, moment)
    return detail


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# --- status -----------------------------------------------------------------------------


def sender_status(engine: Engine, channel: str) -> dict[str, Any]:
    """The sending end of ``channel``: last sent, unacknowledged bundles, latest receipt."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(ferry_sent).where(ferry_sent.c.channel == channel).order_by(ferry_sent.c.sequence)
        ).all()
        found = latest_receipt(connection, channel)
    sent = [r for r in rows if r.state == "sent"]
    heartbeats = [r for r in sent if r.kind == HEARTBEAT]
    receipt = found[0] if found else None
    return {
        "last_sent": {"sequence": sent[-1].sequence, "at": sent[-1].sent_at} if sent else None,
        "planned_unsent": [r.sequence for r in rows if r.state == "planned"],
        "unacknowledged": [r.sequence for r in sent if r.acknowledged_at is None],
        "resent": {r.sequence: r.resent_count for r in sent if r.resent_count},
        "last_heartbeat_sent": heartbeats[-1].sent_at if heartbeats else None,
        "receipt": (
            {**receipt.to_record(), "carrier": found[1], "received_at": found[2]}
            if receipt is not None and found is not None
            else None
        ),
        "wanted_by_receiver": receipt.wanted(r.sequence for r in sent) if receipt else [],
    }


def receiver_status(engine: Engine, channel: str) -> dict[str, Any]:
    """The receiving end of ``channel``: last applied, contiguity, gaps, refused bundles."""
    with engine.connect() as connection:
        receipt = current_receipt(connection, channel)
        last = connection.execute(
            select(ferry_applied)
            .where(ferry_applied.c.channel == channel)
            .order_by(ferry_applied.c.applied_at.desc(), ferry_applied.c.sequence.desc())
            .limit(1)
        ).first()
        heartbeat = connection.execute(
            select(func.max(ferry_applied.c.applied_at)).where(
                ferry_applied.c.channel == channel, ferry_applied.c.kind == HEARTBEAT
            )
        ).scalar()
    return {
        "last_applied": {"sequence": last.sequence, "at": last.applied_at} if last else None,
        "highest_contiguous": receipt.highest_contiguous,
        "highest_received": receipt.highest_received,
        "missing": [list(r) for r in receipt.missing],
        "quarantined": [{"sequence": s, "code": c} for s, c in receipt.quarantined],
        "last_heartbeat_received": heartbeat,
    }


def zone_alarms(engine: Engine, limit: int = 20) -> list[dict[str, Any]]:
    """The zone's open alarms, newest first (``hub alarms --all`` shows resolved ones too)."""
    return alarm_rows(engine, limit=limit)


# --- quarantine -------------------------------------------------------------------------


def quarantine_rows(engine: Engine, *, state: str | None = None) -> list[dict[str, Any]]:
    query = select(quarantine).order_by(quarantine.c.id)
    if state is not None:
        query = query.where(quarantine.c.state == state)
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def _held(connection: Connection, quarantine_id: int) -> Any:
    row = connection.execute(select(quarantine).where(quarantine.c.id == quarantine_id)).first()
    if row is None:
        raise TerminalError(f"no quarantine entry {quarantine_id}")
    if row.state != "held":
        raise TerminalError(f"quarantine entry {quarantine_id} is already {row.state}")
    return row


def release(engine: Engine, quarantine_id: int, *, target: Path, operator: str) -> Path:
    """Put a held item back where it came from for a new attempt: a bundle file into the
    channel's incoming folder, a submission folder into the portal drop, a front-database
    row back to ``new`` (``target`` unused). Audited. A refused record of an applied bundle
    (kind ``record``) cannot be released."""
    with engine.connect() as connection:
        row = _held(connection, quarantine_id)
    if row.kind == "record":
        raise TerminalError(
            f"quarantine entry {quarantine_id} is a record of the applied bundle {row.ref} that the public side "
            "refused: nothing here can make it publishable. Fix it in the administration zone and publish it "
            "again, then discard this entry with the reason")
    row_id = row_id_of(row.stored_as)
    if row.kind == "submission" and row_id is not None:
        with transaction(engine) as connection:
            _held(connection, quarantine_id)
            release_row(connection, quarantine_id, row_id, operator=operator, at=iso(now()))
        return Path(row.stored_as)
    source = Path(row.stored_as)
    name = check_name(row.ref) if row.kind == "bundle" else _plain(row.ref)
    if row.kind == "bundle" and sequence_of(name) is None:
        raise TerminalError(f"{name} is not a bundle file name; discard it instead")
    destination = target / name
    if destination.exists():
        raise TerminalError(f"{destination} exists; refusing to overwrite it")
    if not source.exists():
        raise TerminalError(f"the quarantined copy {source} is gone")
    target.mkdir(parents=True, exist_ok=True)
    at = iso(now())
    with transaction(engine) as connection:
        _held(connection, quarantine_id)
        action = connection.execute(
            quarantine_actions.insert().values(
                quarantine_id=quarantine_id, action="release", reason="released for a new attempt",
                operator=operator, at=at,
            )
        ).inserted_primary_key
        assert action is not None
        log_rows(connection, "quarantine_actions", [int(action[0])], at)
        connection.execute(
            update(quarantine).where(quarantine.c.id == quarantine_id).values(state="released")
        )
        # Moved inside the transaction: if the move fails, the row stays held.
        if row.kind == "bundle":
            partial = target / (name + ".part")
            shutil.copyfile(source, partial)
            partial.rename(destination)
            source.unlink()
        else:
            shutil.move(source, destination)
    return destination


def discard(engine: Engine, quarantine_id: int, *, reason: str, operator: str) -> None:
    """Delete a held item for good; the reason and operator are recorded first."""
    if not reason.strip():
        raise TerminalError("a discard needs a reason")
    at = iso(now())
    with transaction(engine) as connection:
        row = _held(connection, quarantine_id)
        row_id = row_id_of(row.stored_as)
        if row.kind == "submission" and row_id is not None:
            # A front-database row: marked discarded, never a path to delete.
            discard_row(connection, quarantine_id, row_id, reason=reason, operator=operator, at=at)
            return
        action = connection.execute(
            quarantine_actions.insert().values(
                quarantine_id=quarantine_id, action="discard", reason=reason,
                operator=operator, at=at,
            )
        ).inserted_primary_key
        assert action is not None
        log_rows(connection, "quarantine_actions", [int(action[0])], at)
        connection.execute(
            update(quarantine).where(quarantine.c.id == quarantine_id).values(state="discarded")
        )
    stored = Path(row.stored_as)
    if stored.is_dir() and not stored.is_symlink():
        shutil.rmtree(stored)
    else:
        stored.unlink(missing_ok=True)
    reason_file = stored.with_name(stored.name + ".reason.json")
    if reason_file.exists():
        kept = json.loads(reason_file.read_text("utf-8"))
        kept["discarded"] = {"reason": reason, "operator": operator, "at": at}
        reason_file.write_text(json.dumps(kept, ensure_ascii=False, indent=1), "utf-8")


def _plain(name: str) -> str:
    if not name or "/" in name or name in (".", "..") or not name.isprintable():
        raise TerminalError(f"refused name {name!r:.100}")
    return name


def actions(engine: Engine, quarantine_id: int) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(quarantine_actions).where(quarantine_actions.c.quarantine_id == quarantine_id)
        ).all()
    return [dict(r._mapping) for r in rows]

