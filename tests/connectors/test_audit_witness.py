"""The province as the audit log's witness, over the real SFTP simulator: a batch's manifest
carries the newest checkpoint, the province cosigns it when it extends the last one it
cosigned, the hub keeps the cosigned note after checking both signatures; a forked log is
refused by the witness and raises a security alarm; a cosignature by a key the hub did not
pin is not kept."""

from __future__ import annotations

import json

import orjson
from sqlalchemy import select, update

from connectors.alarms import alarm_rows
from connectors.audit import (
    SOURCES,
    append_entries,
    checkpoint_if_grown,
    lock_head,
)
from connectors.clock import iso, now
from connectors.db import (
    audit_checkpoints,
    audit_entries,
    audit_hash_pages,
    audit_head,
    provenance,
    transaction,
)
from connectors.provenance import record_events
from ferry.suites import get_suite
from ferry.tlog import NoteSigner, open_checkpoint, parse_verifier_key
from hub import province as stages
from hub.audit import zone_signer, zone_verifiers
from tests.connectors.province_testkit import Hub, add_case, hours, hub

__all__ = ["hub"]


def _grow(hub: Hub, n: int, prefix: str) -> int:
    with transaction(hub.engine) as c:
        record_events(c, [(f"{prefix}{i:06d}", "test", "done", None, None) for i in range(n)], iso(now()))
    signed = checkpoint_if_grown(hub.engine, zone_signer(hub.settings, "admin"), iso(now()))
    assert signed is not None
    return signed.size


def _cosigned(hub: Hub) -> dict[int, str | None]:
    with hub.engine.connect() as c:
        return {r.size: r.cosigned_note for r in c.execute(select(audit_checkpoints))}


def test_the_province_cosigns_each_checkpoint_that_extends_the_last(hub: Hub) -> None:
    add_case(hub.engine, 1, hours(0))
    first = _grow(hub, 5, "NET20261120")
    stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(1))
    batch = next((hub.province.root / "feed").iterdir())
    request = orjson.loads((batch / "manifest.json").read_bytes())["manifest"]["audit_checkpoint"]
    assert request["proofs"] == [{"old_size": 0, "consistency": []}] and request["tree_hash"] == "intl"
    receipt = hub.province.process_incoming()[0]
    assert "audit_cosignature" in receipt
    stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(2))
    note = _cosigned(hub)[max(_cosigned(hub))]
    assert note is not None
    witness = parse_verifier_key(hub.province.witness_key)
    opened = open_checkpoint(note, [*zone_verifiers(hub.settings, "admin"), witness], require=[witness.name])
    assert opened.size >= first and witness.name in opened.signed_by

    # The next batch carries the proof from the cosigned size: the witness checks it.
    add_case(hub.engine, 2, hours(3))
    second = _grow(hub, 7, "NET20261121")
    stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(4))
    request = orjson.loads((hub.province.root / "feed" / _newest_batch(hub) / "manifest.json").read_bytes())[
        "manifest"]["audit_checkpoint"]
    assert [p["old_size"] for p in request["proofs"]] == [opened.size] and request["proofs"][0]["consistency"]
    assert "audit_cosignature" in hub.province.process_incoming()[0]
    stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(5))
    assert _cosigned(hub)[max(_cosigned(hub))] is not None and max(_cosigned(hub)) >= second


def test_a_batch_built_before_the_last_receipt_came_back_is_cosigned_too(hub: Hub) -> None:
    """The province answers a batch after the hub built the next one: the next one offers a
    proof from that batch's checkpoint too, so the witness never sees a size it cannot
    connect to (no CONFLICT)."""
    add_case(hub.engine, 1, hours(0))
    first = _grow(hub, 5, "NET20261120")
    stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(1))
    assert "audit_cosignature" in hub.province.process_incoming()[0]
    add_case(hub.engine, 2, hours(2))
    second = _grow(hub, 4, "NET20261121")
    stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(3))  # builds batch 2, then takes receipt 1
    request = orjson.loads((hub.province.root / "feed" / _newest_batch(hub) / "manifest.json").read_bytes())[
        "manifest"]["audit_checkpoint"]
    assert [p["old_size"] for p in request["proofs"]] == [0, first]
    assert "audit_cosignature" in hub.province.process_incoming()[0]
    stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(4))
    assert {size for size, note in _cosigned(hub).items() if note} >= {first, second}
    assert not [a for a in alarm_rows(hub.engine) if a["kind"] in ("AUDIT_WITNESS_REFUSED", "security")]


def _newest_batch(hub: Hub) -> str:
    return max(p.name for p in (hub.province.root / "feed").iterdir())


def test_a_forked_log_is_refused_by_the_witness_with_a_security_alarm(hub: Hub) -> None:
    add_case(hub.engine, 1, hours(0))
    _grow(hub, 5, "NET20261120")
    stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(1))
    hub.province.process_incoming()
    stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(2))
    # Rewrite a cosigned event and rebuild the log to match; sign the new tree.
    with transaction(hub.engine) as c:
        c.execute(update(provenance).where(provenance.c.id == 1).values(outcome="undone"))
        rows = list(c.execute(select(audit_entries).order_by(audit_entries.c.seq)))
        row = c.execute(SOURCES["provenance"].select_rows().where(provenance.c.id == 1)).one()
        c.execute(audit_entries.delete())
        c.execute(audit_hash_pages.delete())
        c.execute(update(audit_head).values(size=0, root=None))
        head = lock_head(c)
        for r in rows:
            entry = r.entry
            if r.source == "provenance" and r.source_key == 1:
                entry = SOURCES["provenance"].entry(1, row._mapping, json.loads(r.entry)["salt"])
            append_entries(c, head, r.source, [(r.source_key, entry)], r.at)
    add_case(hub.engine, 2, hours(3))
    _grow(hub, 3, "NET20261121")
    stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(4))
    receipt = hub.province.process_incoming()[0]
    assert receipt["audit_witness_refused"]["code"] == "FORK"
    stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(5))
    security = [a for a in alarm_rows(hub.engine) if a["kind"] == "security"]
    assert security and security[0]["detail"]["code"] == "FORK" and security[0]["detail"]["witness"] == "province"


def test_a_cosignature_by_a_key_not_pinned_is_not_kept(hub: Hub) -> None:
    add_case(hub.engine, 1, hours(0))
    _grow(hub, 4, "NET20261120")
    other = NoteSigner("province.example/witness", "intl", get_suite("intl").generate_signing_key())
    sftp = hub.sftp(witness_key=other.verifier().verifier_key())
    stages.province_report(hub.settings, sftp=sftp, at=hours(1))
    hub.province.process_incoming()
    stages.province_report(hub.settings, sftp=sftp, at=hours(2))
    assert set(_cosigned(hub).values()) == {None}
    assert any(a["kind"] == "AUDIT_WITNESS_REFUSED" for a in alarm_rows(hub.engine))
