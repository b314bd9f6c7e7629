"""The audit trail's operations for a deployment (``hub audit``, and the checkpoint every
task run ends with): each zone's log signed with the zone's signing key under the log's
origin, checked with every key the zone has had (``connectors.audit``, docs/audit.md)."""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from connectors.audit import (
    StoredCheckpoint,
    VerifyReport,
    checkpoint_if_grown,
    inclusion_proof,
    latest_checkpoint,
    leaves_of,
    log_origin,
    log_suite,
    stored_leaf_hash,
    take_appended,
    verify_log,
)
from connectors.audit_feed import Received, apply_checkpoint, check_checkpoint, has_checkpoint
from connectors.catalogue_feed import ApplyBundle
from connectors.clock import iso, now
from connectors.db import engine_for, provenance
from connectors.migrate import ZONE_TABLES
from ferry.bundle import VerifiedBundle
from ferry.keys import load_keyring, load_own_signing_keys, load_signing_key
from ferry.tlog import NoteSigner, NoteVerifier
from ferry.verdict import Refuse
from hub.settings import ZONES, Settings
from hub.zones import zone_engine, zone_url
from schemas.exceptions import TerminalError

log = logging.getLogger(__name__)


def origin(settings: Settings, zone: str) -> str:
    return log_origin(settings.agency_code, zone)


def zone_signer(settings: Settings, zone: str) -> NoteSigner:
    """The zone's current signing key, signing notes under the log's origin."""
    return NoteSigner.from_signing_key(origin(settings, zone), load_signing_key(settings.keys_dir(zone), zone))


def zone_verifiers(settings: Settings, zone: str) -> list[NoteVerifier]:
    """Every signing key the zone has had, as verifiers of its log's checkpoints (a rotated
    key still verifies the checkpoints it signed)."""
    return [NoteVerifier(origin(settings, zone), key.suite, key.public)
            for key in load_own_signing_keys(settings.keys_dir(zone), zone)]


def checkpoint_zones(settings: Settings, *, appended_only: bool = False) -> dict[str, int]:
    """Sign a checkpoint of each loaded zone's log that grew since its newest one (with
    ``appended_only``, only of the logs this process appended to since it last signed: what
    a task run does at its end); returns the new checkpoints' sizes by zone. A zone without
    keys yet (before ``hub keys init``) is skipped with a warning: its leaves are signed by
    the first run after."""
    signed: dict[str, int] = {}
    for zone in ZONES:
        if not settings.loads(zone):
            continue
        if appended_only and not take_appended(engine_for(zone_url(settings, zone))):
            continue  # (engine_for: the cached engine, not opened or migrated for this check)
        try:
            signer = zone_signer(settings, zone)
        except TerminalError as error:
            log.warning("audit log of the %s zone not checkpointed: %s", zone, error)
            continue
        checkpoint = checkpoint_if_grown(zone_engine(settings, zone), signer, iso(now()))
        if checkpoint is not None:
            signed[zone] = checkpoint.size
    return signed


def admin_log_verifiers(settings: Settings) -> list[NoteVerifier]:
    """The internet zone's verifiers of the administration zone's checkpoints: every admin
    signing key it trusts (the current one and those rotated out), under the log's origin."""
    keyring = load_keyring(settings.keys_dir("internet"))
    return [NoteVerifier(origin(settings, "admin"), key.suite, key.public)
            for key in keyring.values() if key.zone == "admin"]


@dataclass
class PublishedLog:
    """The internet zone's side of the published audit log for one ``portal_publish`` pass:
    ``inspect`` checks each checkpoint bundle before it is applied (refusing a fork or a
    rollback into quarantine), ``apply`` wraps the pass's apply step to publish what passed."""

    engine: Engine
    public_root: Path
    quarantine_dir: Path
    verifiers: list[NoteVerifier]
    checked: dict[str, Received] = field(default_factory=dict)

    def inspect(self, bundle: VerifiedBundle) -> Refuse | None:
        if not has_checkpoint(bundle):
            return None
        result = check_checkpoint(self.engine, bundle, self.verifiers, self.public_root)
        if isinstance(result, Refuse):
            return result
        self.checked[bundle.digest] = result
        return None

    def apply(self, inner: ApplyBundle) -> ApplyBundle:
        def apply(connection: Connection, bundle: VerifiedBundle, ref: str, at: str) -> int:
            count = inner(connection, bundle, ref, at)
            received = self.checked.pop(bundle.digest, None)
            if received is not None:
                count += apply_checkpoint(self.public_root, connection, bundle, received, ref, at,
                                          [v.verifier_key() for v in self.verifiers], self.quarantine_dir)
            return count

        return apply


def published_log(settings: Settings, engine: Engine) -> PublishedLog:
    try:
        verifiers = admin_log_verifiers(settings)
    except TerminalError:
        verifiers = []  # no admin key yet: a checkpoint is refused UNKNOWN_KEY
    return PublishedLog(engine, settings.public_root, settings.internet_quarantine, verifiers)


def verify_zone(settings: Settings, zone: str) -> VerifyReport:
    return verify_log(zone_engine(settings, zone), zone_verifiers(settings, zone), ZONE_TABLES[zone])


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def prove(settings: Settings, net_id: str) -> dict[str, Any]:
    """Inclusion proofs of every provenance event of ``net_id`` in each loaded zone's log,
    against the zone's newest checkpoint. A leaf appended after it is listed as not yet
    checkpointed (the next task run signs it)."""
    from sqlalchemy import select

    zones: list[dict[str, Any]] = []
    for zone in ZONES:
        if not settings.loads(zone):
            continue
        engine = zone_engine(settings, zone)
        with engine.connect() as connection:
            ids = list(connection.execute(select(provenance.c.id).where(
                provenance.c.record_id == net_id).order_by(provenance.c.id)).scalars())
            if not ids:
                continue
            checkpoint: StoredCheckpoint | None = latest_checkpoint(connection)
            size = checkpoint.size if checkpoint else 0
            leaves = []
            for leaf in leaves_of(connection, "provenance", ids):
                seq = int(leaf["seq"])
                item: dict[str, Any] = {"seq": seq, "table": leaf["source"], "key": int(leaf["source_key"]),
                                        "entry": leaf["entry"], "leaf_hash": _b64(stored_leaf_hash(connection, seq))}
                if seq < size:
                    item["proof"] = [_b64(h) for h in inclusion_proof(connection, seq, size)]
                else:
                    item["proof"] = None
                    item["note"] = "appended after the newest checkpoint; the next task run signs it"
                leaves.append(item)
            zones.append({"zone": zone, "origin": origin(settings, zone), "suite": log_suite(connection),
                          "tree_size": size, "checkpoint": checkpoint.note if checkpoint else None,
                          "verifier_keys": [v.verifier_key() for v in zone_verifiers(settings, zone)],
                          "leaves": leaves})
    return {"net_id": net_id, "zones": zones}


def summary_text(settings: Settings) -> str:
    """Each zone's log in a few lines (the demo's summary): leaves, checkpoints, what the
    internet zone published and what the province cosigned."""
    from sqlalchemy import func, select

    from connectors.db import audit_checkpoints, audit_head, audit_published

    lines = []
    for zone in ZONES:
        if not settings.loads(zone):
            continue
        with zone_engine(settings, zone).connect() as connection:
            size = connection.execute(select(audit_head.c.size)).scalar() or 0
            signed, newest = connection.execute(
                select(func.count(), func.max(audit_checkpoints.c.size)).select_from(audit_checkpoints)).one()
            cosigned = connection.execute(select(func.max(audit_checkpoints.c.size)).where(
                audit_checkpoints.c.cosigned_note.is_not(None))).scalar()
            published = (connection.execute(select(func.max(audit_published.c.size))).scalar()
                         if zone == "internet" else None)
        line = f"  {zone:<8} {size:>7,} leaves, {signed} signed checkpoints (newest {newest})"
        if zone == "admin":
            line += f", the province cosigned up to {cosigned}" if cosigned else ", not cosigned by the province yet"
        if published is not None:
            line += f"; published the administration zone's checkpoint of {published} leaves"
        lines.append(line)
    lines.append(f"  public: {settings.public_root / 'audit' / 'checkpoint'} and its tiles; "
                 "the status page checks each shown change against it")
    return "\n".join(lines)
