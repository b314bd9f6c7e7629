"""What the ``hub ferry`` and ``hub alarms`` commands do, on the settings of this deployment:
channel status, verifying a bundle file, quarantine list/release/discard, resends, alarms."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from connectors import ferry_control
from connectors.alarms import alarm_rows, resolve_by_operator
from connectors.db import ferry_applied
from connectors.ferry_ledger import sequence_of
from ferry.bundle import BundleRejected, open_bundle
from hub.settings import ZONES, Settings
from hub.stages import channel_sender
from hub.zones import (
    CHANNEL_RECEIVER,
    CHANNEL_SENDER,
    decryption_keys,
    receiver_keyring,
    zone_engine,
)
from schemas.exceptions import TerminalError


def channel_status(settings: Settings) -> dict[str, Any]:
    """Per channel: the sending end (if this deployment runs it) and the receiving end."""
    status: dict[str, Any] = {}
    for channel in ("inbound", "outbound"):
        entry: dict[str, Any] = {}
        if settings.loads(CHANNEL_SENDER[channel]):
            entry["sender"] = ferry_control.sender_status(
                zone_engine(settings, CHANNEL_SENDER[channel]), channel
            )
        if settings.loads(CHANNEL_RECEIVER[channel]):
            entry["receiver"] = ferry_control.receiver_status(
                zone_engine(settings, CHANNEL_RECEIVER[channel]), channel
            )
        status[channel] = entry
    status["alarms"] = {
        zone: ferry_control.zone_alarms(zone_engine(settings, zone))
        for zone in ZONES
        if settings.loads(zone)
    }
    return status


def format_status(status: dict[str, Any]) -> str:
    """The status as an operator reads it."""
    lines = []
    for channel in ("inbound", "outbound"):
        entry = status[channel]
        lines.append(f"{channel} ({CHANNEL_SENDER[channel]} → {CHANNEL_RECEIVER[channel]})")
        sender, receiver = entry.get("sender"), entry.get("receiver")
        if sender is not None:
            last = sender["last_sent"]
            lines.append(f"  last sent            {_seq(last)}")
            lines.append(f"  unacknowledged       {_ranges_of(sender['unacknowledged'])}")
            lines.append(f"  resent (times)       {sender['resent'] or '-'}")
            lines.append(f"  last heartbeat sent  {sender['last_heartbeat_sent'] or '-'}")
            receipt = sender["receipt"]
            lines.append(
                "  latest receipt       "
                + (
                    f"contiguous to {receipt['highest_contiguous']}, missing "
                    f"{_ranges(receipt['missing'])} (via {receipt['carrier']})"
                    if receipt
                    else "-"
                )
            )
        if receiver is not None:
            lines.append(f"  last applied         {_seq(receiver['last_applied'])}")
            lines.append(f"  highest contiguous   {receiver['highest_contiguous']}")
            lines.append(f"  missing ranges       {_ranges(receiver['missing'])}")
            refused = ", ".join(f"#{q['sequence']} {q['code']}" for q in receiver["quarantined"])
            lines.append(f"  quarantined          {refused or '-'}")
            lines.append(f"  last heartbeat recv  {receiver['last_heartbeat_received'] or '-'}")
    for zone, found in status["alarms"].items():
        lines.append(f"alarms ({zone}): {len(found)}")
        for alarm in found[:5]:
            lines.append(f"  #{alarm['id']} {alarm['at']} {alarm['kind']} {alarm['detail']}")
    return "\n".join(lines)


def _seq(found: dict[str, Any] | None) -> str:
    return f"#{found['sequence']} at {found['at']}" if found else "-"


def _ranges(ranges: list[list[int]]) -> str:
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in ranges) or "-"


def _ranges_of(sequences: list[int]) -> str:
    ranges: list[list[int]] = []
    for s in sorted(sequences):
        if ranges and s == ranges[-1][1] + 1:
            ranges[-1][1] = s
        else:
            ranges.append([s, s])
    return _ranges(ranges)


def verify_file(settings: Settings, path: Path, channel: str | None = None) -> dict[str, Any]:
    """Verify a bundle file with the receiving zone's keyring, without applying it."""
    channels = [channel] if channel else [c for c in ("inbound", "outbound") if path.name.startswith(c)]
    if not channels:
        channels = ["inbound", "outbound"]
    result: dict[str, Any] = {"file": str(path), "ok": False}
    for candidate in channels:
        try:
            bundle = open_bundle(
                path, receiver_keyring(settings, candidate), expected_channel=candidate,
                decryption_keys=decryption_keys(settings, candidate),
            )
        except BundleRejected as rejected:
            result.update(code=rejected.code, detail=rejected.detail, channel=candidate)
            continue
        m = bundle.manifest
        with zone_engine(settings, CHANNEL_RECEIVER[candidate]).connect() as connection:
            known = connection.execute(
                select(ferry_applied.c.digest).where(
                    ferry_applied.c.channel == candidate, ferry_applied.c.sequence == m.sequence
                )
            ).scalar()
        ledger = "not applied" if known is None else "applied" if known == bundle.digest else "CONFLICT"
        return {
            "file": str(path), "ok": True, "channel": m.channel, "sequence": m.sequence,
            "digest": bundle.digest, "previous_digest": m.previous_digest,
            "created_at": m.created_at, "sender_key_id": m.sender_key_id,
            "counts": m.counts, "items": len(m.items), "ledger": ledger,
        }
    return result


def parse_id(text: str, what: str = "quarantine id") -> tuple[str, int]:
    """An id as listed (quarantine entries, alarms): ``ZONE:N``."""
    zone, _, number = text.rpartition(":")
    if not number.isdigit():
        raise TerminalError(f"{what} {text!r} is not ZONE:NUMBER")
    if not zone:
        raise TerminalError(f"{what} {text!r}: name the zone, e.g. admin:{number}")
    if zone not in ZONES:
        raise TerminalError(f"unknown zone {zone!r} in {what} {text!r}")
    return zone, int(number)


def alarm_list(settings: Settings, *, include_resolved: bool = False) -> list[dict[str, Any]]:
    """Every configured zone's alarms (open ones unless ``include_resolved``), ids ``ZONE:N``."""
    rows = []
    for zone in ZONES:
        if settings.loads(zone):
            for row in alarm_rows(zone_engine(settings, zone), include_resolved=include_resolved):
                rows.append({**row, "id": f"{zone}:{row['id']}", "zone": zone})
    return sorted(rows, key=lambda row: row["at"], reverse=True)


def alarm_resolve(settings: Settings, text: str, reason: str) -> None:
    zone, number = parse_id(text, "alarm id")
    if not settings.loads(zone):
        raise TerminalError(f"this deployment does not run the {zone} zone")
    resolve_by_operator(zone_engine(settings, zone), number, reason=reason, operator=_operator())


def quarantine_list(settings: Settings, state: str | None = "held") -> list[dict[str, Any]]:
    rows = []
    for zone in ZONES:
        if settings.loads(zone):
            for row in ferry_control.quarantine_rows(zone_engine(settings, zone), state=state):
                rows.append({**row, "id": f"{zone}:{row['id']}", "zone": zone})
    return rows


def quarantine_release(settings: Settings, text: str) -> Path:
    zone, number = parse_id(text)
    engine = zone_engine(settings, zone)
    rows = {r["id"]: r for r in ferry_control.quarantine_rows(engine)}
    row = rows.get(number)
    if row is None:
        raise TerminalError(f"no quarantine entry {text}")
    if row["kind"] == "bundle":
        channel = "inbound" if zone == "admin" else "outbound"
        if sequence_of(row["ref"]) is None:
            raise TerminalError(f"{row['ref']} is not a bundle file name; discard it instead")
        target = settings.channel_dir(channel)
    else:
        target = settings.portal_drop
    return ferry_control.release(engine, number, target=target, operator=_operator())


def quarantine_discard(settings: Settings, text: str, reason: str) -> None:
    zone, number = parse_id(text)
    ferry_control.discard(zone_engine(settings, zone), number, reason=reason, operator=_operator())


def resend(settings: Settings, sequences: list[int], channel: str | None = None) -> list[str]:
    """Operator resend of sent bundles, byte-identical from the outbox."""
    if channel is None:
        sends = [c for c in ("inbound", "outbound") if settings.loads(CHANNEL_SENDER[c])]
        if len(sends) != 1:
            raise TerminalError("this deployment sends on both channels: name one with --channel")
        channel = sends[0]
    if not settings.loads(CHANNEL_SENDER[channel]):
        raise TerminalError(f"this deployment does not send on the {channel} channel")
    return ferry_control.resend(channel_sender(settings, channel), sequences, reason="operator")


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
