"""`hub audit verify` and `hub audit prove` on a real data root: every stage run that
appended ends with a signed checkpoint, the proofs printed verify, a changed row is named,
and a key rotation leaves the old checkpoints verifiable."""

from __future__ import annotations

import base64
import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select, update

from connectors.clock import registration_shift, shifted
from connectors.db import audit_checkpoints, provenance, transaction
from ferry.tlog import open_checkpoint, parse_verifier_key, tree_hasher, verify_inclusion
from hub.cli import main
from hub.settings import load_settings
from hub.zones import zone_engine


def _loop(hub_env: Path) -> dict[str, dict[str, str]]:
    assert main(["keys", "init"]) == 0
    assert main(["generate", "--count", "30", "--seed", "5", "--date", str(date(2026, 11, 20)),
                 "--expected", str(hub_env / "truth.json")]) == 0
    with shifted(registration_shift(date(2026, 11, 20))):
        for stage in ("intake", "inbound_receive", "applications_load"):
            assert main(["run", stage]) == 0
    for stage in ("case_processing", "status_publish", "portal_publish"):
        assert main(["run", stage]) == 0
    truth: dict[str, dict[str, str]] = json.loads((hub_env / "truth.json").read_text("utf-8"))
    return truth


def test_verify_prove_tamper_and_rotate(hub_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth = _loop(hub_env)
    settings = load_settings()
    for zone in ("internet", "admin"):
        with zone_engine(settings, zone).connect() as connection:
            assert connection.execute(select(audit_checkpoints.c.size)).scalars().all(), zone
    capsys.readouterr()
    assert main(["audit", "verify"]) == 0
    out = capsys.readouterr().out
    assert "internet: ok" in out and "admin: ok" in out

    accepted = next(n for n, o in sorted(truth.items()) if o["outcome"] == "accepted")
    assert main(["audit", "prove", accepted]) == 0
    proofs = json.loads(capsys.readouterr().out)
    assert {z["zone"] for z in proofs["zones"]} == {"internet", "admin"}
    checked = 0
    for zone in proofs["zones"]:
        verifiers = [parse_verifier_key(k) for k in zone["verifier_keys"]]
        checkpoint = open_checkpoint(zone["checkpoint"], verifiers)
        hasher = tree_hasher(zone["suite"])
        assert zone["leaves"]
        for leaf in zone["leaves"]:
            entry = json.loads(leaf["entry"])
            assert entry["table"] == "provenance" and entry["row"]["record_id"] == accepted
            leaf_hash = hasher.leaf_hash(leaf["entry"].encode("utf-8"))
            assert base64.b64decode(leaf["leaf_hash"]) == leaf_hash
            proof = [base64.b64decode(h) for h in leaf["proof"]]
            assert verify_inclusion(hasher, leaf["seq"], checkpoint.size, leaf_hash, proof, checkpoint.root_hash)
            assert not verify_inclusion(hasher, leaf["seq"], checkpoint.size, hasher.leaf_hash(b"x"), proof,
                                        checkpoint.root_hash)
            checked += 1
    assert checked >= 6

    # An operator rotates the administration zone's keys: the rotation is itself a leaf, the
    # old checkpoints still verify with the rotated-out key.
    assert main(["keys", "rotate", "admin"]) == 0
    capsys.readouterr()
    assert main(["audit", "verify", "--zone", "admin"]) == 0
    engine = zone_engine(settings, "admin")
    with engine.connect() as connection:
        rotated = connection.execute(select(provenance.c.id).where(provenance.c.record_id == "keys:admin")).all()
        notes = connection.execute(select(audit_checkpoints.c.note).order_by(audit_checkpoints.c.size)).scalars().all()
    assert len(rotated) == 1
    def key_id(note: str) -> bytes:
        return base64.b64decode(note.split("\n\u2014 ")[1].split()[1])[:4]

    assert key_id(notes[0]) != key_id(notes[-1])  # signed before and after the rotation

    # Someone rewrites one event of the application in the exchange database.
    with transaction(engine) as connection:
        target = connection.execute(select(provenance.c.id).where(provenance.c.record_id == accepted)
                                    .order_by(provenance.c.id)).scalars().first()
        connection.execute(update(provenance).where(provenance.c.id == target).values(outcome="rejected"))
    capsys.readouterr()
    assert main(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert "internet: ok" in out and "admin: ALTERED" in out
    assert "table provenance field outcome" in out
    assert main(["audit", "verify", "--json", "--zone", "admin"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["admin"]["first"]["code"] == "ROW_CHANGED" and report["admin"]["first"]["field"] == "outcome"

    assert main(["audit", "prove", "net2026-11-21/1"]) == 2
