"""Intake from the portal's front database (前置库): rows read by keyset, checked like drop
folders, bad ones quarantined with their reasons in the table, the rest marked carried in
the transaction that plans their bundle; on SQLite and PostgreSQL (the internet zone's
database on the backend under test)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from loopkit import applied_records, assert_exactly, ferry_file, outbox_file
from sqlalchemy import Engine, func, select, update

from connectors import front_db
from connectors.db import (
    ferry_sent,
    portal_submissions,
    provenance,
    quarantine,
    quarantine_actions,
    transaction,
)
from connectors.front_db import (
    CARRIED,
    DISCARDED,
    FRONT_DB_PLAN,
    NEW,
    QUARANTINED,
    attachment_path,
    insert_submissions,
    store_attachment,
)
from hub import stages, zones
from hub.keys import init_keys
from hub.settings import Settings, load_settings
from hub.simulators.applicants import FrontDbPortal, generate_batch
from schemas.exceptions import TransientError

DAY = date(2026, 3, 2)
CHILD = Path(__file__).with_name("crash_child.py")
ROOT = Path(__file__).parents[2]
PDF = b"%PDF-1.7\n" + b"0" * 200 + b"\n%%EOF\n"


@pytest.fixture
def front(exchange_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Both zones on this machine, the internet zone's database (with the front database) on
    the backend under test, intake reading only the front database."""
    monkeypatch.setenv("HUB_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("HUB_ZONE", "both")
    monkeypatch.setenv("HUB_INGRESS", "front_db")
    monkeypatch.setenv("HUB_INTERNET_DB_URL", exchange_url)
    monkeypatch.delenv("HUB_EXCHANGE_DB_URL", raising=False)
    zones._prepared_engine.cache_clear()
    settings = load_settings()
    init_keys(settings)
    yield settings
    zones._prepared_engine.cache_clear()


def internet(settings: Settings) -> Engine:
    return zones.zone_engine(settings, "internet")


def generate(settings: Settings, count: int, first_serial: int = 1, seed: int = 5) -> dict[str, dict[str, Any]]:
    catalogue = zones.load_catalogue(settings)
    return generate_batch(
        FrontDbPortal(internet(settings), settings.portal_store), count, seed,
        [dict(i.document) for i in catalogue.items.values()], settings.agency_code, DAY,
        first_serial=first_serial,
    )


def rows(settings: Settings) -> dict[str, tuple[str, int | None, str | None]]:
    """NET_ID → (state, sequence, reason code) of every front-database row."""
    t = portal_submissions
    with internet(settings).connect() as connection:
        return {r[0]: tuple(r[1:]) for r in connection.execute(select(t.c.net_id, t.c.state, t.c.sequence, t.c.reason_code))}


def carried(settings: Settings) -> set[str]:
    return {net_id for net_id, (state, _, _) in rows(settings).items() if state == CARRIED}


def put_row(settings: Settings, net_id: str, envelope: dict[str, Any] | str) -> None:
    text = envelope if isinstance(envelope, str) else orjson.dumps(envelope).decode()
    with transaction(internet(settings)) as connection:
        insert_submissions(connection, [{"net_id": net_id, "submitted_at": "2026-03-02T09:00:00+08:00", "envelope": text}])


def with_material(net_id: str, digest: str, media_type: str = "application/pdf") -> dict[str, Any]:
    return {"net_id": net_id, "materials": [
        {"material_code": "APP_FORM", "name": "申请书", "sha256": digest, "media_type": media_type, "size": 10},
    ]}


def test_intake_carries_good_rows_and_quarantines_bad_ones_with_reasons(front: Settings) -> None:
    truth = generate(front, 60)
    report = stages.intake(front)
    expected_quarantine = {n: t["code"] for n, t in truth.items() if t["outcome"] == "quarantined"}
    assert expected_quarantine  # the generator's SUBMISSION_UNREADABLE and ATTACHMENT_TYPE defects
    found = rows(front)
    assert {n: code for n, (state, _, code) in found.items() if state == QUARANTINED} == expected_quarantine
    assert carried(front) == set(truth) - set(expected_quarantine)
    assert report["bundles"] == ["inbound#1"] and report["carried"] == len(truth) - len(expected_quarantine)
    assert {q["ref"]: q["code"] for q in report["quarantined"]} == expected_quarantine
    with internet(front).connect() as connection:
        held = connection.execute(select(quarantine.c.ref, quarantine.c.code, quarantine.c.stored_as)).all()
        plan = connection.execute(select(ferry_sent.c.kind, ferry_sent.c.state, ferry_sent.c.record_count)).one()
        events = connection.execute(select(provenance.c.record_id, provenance.c.stage, provenance.c.outcome,
                                           provenance.c.bundle)).all()
    assert {ref: code for ref, code, _ in held} == expected_quarantine
    # One intake event per row: a carried row's names the bundle it left in.
    assert sorted(events) == sorted(
        [(n, "intake", "collected", "inbound#1") for n in carried(front)]
        + [(n, "intake", "quarantined", n) for n in expected_quarantine])
    assert all(front_db.row_id_of(stored) is not None for _, _, stored in held)
    assert tuple(plan) == (FRONT_DB_PLAN, "sent", report["carried"])
    # Nothing left: a second pass carries nothing and plans no bundle.
    assert stages.intake(front)["bundles"] == []
    assert stages.inbound_receive(front)["applied"] == ["inbound#1"]
    assert_exactly(front, carried(front))
    # Rows written later go in the next bundle, by keyset.
    later = generate(front, 10, first_serial=1001, seed=6)
    assert stages.intake(front)["bundles"] == ["inbound#2"]
    assert {n for n, (_, sequence, _) in rows(front).items() if sequence == 2} == {
        n for n, t in later.items() if t["outcome"] != "quarantined"
    }


def test_the_loop_from_the_front_database_reconciles(front: Settings) -> None:
    from quality.reconciliation import reconcile, reconcile_inbound_bundles

    truth = generate(front, 60)
    stages.intake(front)
    stages.inbound_receive(front)
    load = stages.applications_load(front)
    assert load["accepted"] == sum(t["outcome"] == "accepted" for t in truth.values())
    admin = zones.zone_engine(front, "admin")
    counts = reconcile(internet(front), admin, front.public_root)
    assert counts["submitted"] == len(truth)
    assert counts["quarantined"] == sum(t["outcome"] == "quarantined" for t in truth.values())
    assert counts["checks"]["entered = accepted + rejected + quarantined + in flight"]
    assert counts["checks"]["received = accepted + rejected + duplicates + staged"]
    assert all(b.balanced for b in reconcile_inbound_bundles(admin, internet(front)))


@pytest.mark.parametrize("case", ["missing", "hash", "type", "too_large", "symlink", "not_json", "net_id", "unsafe", "oversized"])
def test_each_bad_row_is_quarantined_with_its_reason_and_kept(front: Settings, case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = front.portal_store
    digest = store_attachment(store, PDF)
    net_id = "NET20260302000001"
    envelope: dict[str, Any] | str = with_material(net_id, digest)
    code = {"missing": "ATTACHMENT_MISSING", "hash": "ATTACHMENT_HASH_MISMATCH", "type": "ATTACHMENT_TYPE",
            "too_large": "ATTACHMENT_TOO_LARGE", "symlink": "ATTACHMENT_MISSING", "not_json": "SUBMISSION_UNREADABLE",
            "net_id": "SUBMISSION_UNREADABLE", "unsafe": "UNSAFE_NAME", "oversized": "SUBMISSION_UNREADABLE"}[case]
    if case == "missing":
        envelope = with_material(net_id, "ab" * 32)
    elif case == "hash":
        attachment_path(store, digest).chmod(0o644)
        attachment_path(store, digest).write_bytes(PDF + b"tampered")
    elif case == "type":
        envelope = with_material(net_id, digest, "image/png")
    elif case == "too_large":
        monkeypatch.setattr(front_db, "MAX_ATTACHMENT_BYTES", len(PDF) - 1)
    elif case == "symlink":
        target = front.data_root / "secret.pdf"
        target.write_bytes(PDF)
        fake = hashlib.sha256(b"elsewhere").hexdigest()
        attachment_path(store, fake).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, attachment_path(store, fake))
        envelope = with_material(net_id, fake)
    elif case == "not_json":
        envelope = '{"net_id": "NET20260302000001", "materials": ['
    elif case == "net_id":
        envelope = with_material("NET20260302000002", digest)
    elif case == "unsafe":
        net_id = "../NET1"
        envelope = with_material(net_id, digest)
    elif case == "oversized":
        envelope = {"net_id": net_id, "summary": "字" * (front_db.MAX_SUBMISSION_BYTES // 3 + 1)}
    put_row(front, net_id, envelope)
    put_row(front, "NET20260302000009", with_material("NET20260302000009", store_attachment(store, b"%PDF-1.4\n%%EOF\n")))
    report = stages.intake(front)
    assert [(q["ref"], q["code"]) for q in report["quarantined"]] == [(net_id, code)]
    assert report["bundles"] == ["inbound#1"] and report["carried"] == 1  # the good row still goes
    state, sequence, reason = rows(front)[net_id]
    assert (state, sequence, reason) == (QUARANTINED, None, code)
    with internet(front).connect() as connection:
        kept = connection.execute(select(portal_submissions.c.envelope).where(portal_submissions.c.net_id == net_id)).scalar_one()
        events = connection.execute(select(provenance.c.outcome).where(provenance.c.record_id == net_id)).scalars().all()
    assert kept == (envelope if isinstance(envelope, str) else orjson.dumps(envelope).decode())  # kept as written
    assert events == ["quarantined"]


def test_an_operator_releases_or_discards_a_held_row(front: Settings) -> None:
    from hub import ferry_ops

    store = front.portal_store
    put_row(front, "NET20260302000001", with_material("NET20260302000001", "cd" * 32))  # not in the store yet
    put_row(front, "NET20260302000002", "not json")
    assert len(stages.intake(front)["quarantined"]) == 2
    with internet(front).connect() as connection:
        ids = dict(connection.execute(select(quarantine.c.ref, quarantine.c.id)).all())
    # The portal stores the missing file after all; the operator releases the row.
    missing = "cd" * 32
    attachment_path(store, missing).parent.mkdir(parents=True, exist_ok=True)
    # A file whose name is not its hash would be refused: store real content under a real name.
    digest = store_attachment(store, PDF)
    with transaction(internet(front)) as connection:
        connection.execute(update(portal_submissions).where(portal_submissions.c.net_id == "NET20260302000001")
                           .values(envelope=orjson.dumps(with_material("NET20260302000001", digest)).decode()))
    ferry_ops.quarantine_release(front, f"internet:{ids['NET20260302000001']}")
    assert rows(front)["NET20260302000001"] == (NEW, None, None)
    with pytest.raises(Exception, match="already released"):
        ferry_ops.quarantine_release(front, f"internet:{ids['NET20260302000001']}")
    ferry_ops.quarantine_discard(front, f"internet:{ids['NET20260302000002']}", "not an application")
    assert rows(front)["NET20260302000002"][0] == DISCARDED
    report = stages.intake(front)
    assert report["bundles"] == ["inbound#1"] and report["carried"] == 1 and report["quarantined"] == []
    assert carried(front) == {"NET20260302000001"}
    with internet(front).connect() as connection:
        actions = connection.execute(select(quarantine_actions.c.action, quarantine_actions.c.reason)).all()
        states = dict(connection.execute(select(quarantine.c.ref, quarantine.c.state)).all())
    assert sorted(actions) == [("discard", "not an application"), ("release", "released for a new attempt")]
    assert states == {"NET20260302000001": "released", "NET20260302000002": "discarded"}


def test_rows_taken_by_another_intake_meanwhile_roll_the_batch_back(front: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    digest = store_attachment(front.portal_store, PDF)
    for serial in (1, 2, 3):
        net_id = f"NET2026030200000{serial}"
        put_row(front, net_id, with_material(net_id, digest))
    real = front_db._new_rows

    def read_then_lose_one(connection: Any, after: int, limit: int) -> list[front_db.PortalRow]:
        found = real(connection, after, limit)
        if found:
            with transaction(internet(front)) as other:  # another intake marks one of them
                other.execute(update(portal_submissions).where(portal_submissions.c.id == found[1].id)
                              .values(state=CARRIED, sequence=99))
        return found

    monkeypatch.setattr(front_db, "_new_rows", read_then_lose_one)
    with pytest.raises(TransientError, match="taken by another intake"):
        stages.intake(front)
    with internet(front).connect() as connection:
        assert connection.execute(select(func.count()).select_from(ferry_sent)).scalar_one() == 0
    states = rows(front)
    assert [states[f"NET2026030200000{s}"][0] for s in (1, 2, 3)] == [NEW, CARRIED, NEW]


def run_child(data_root: Path, point: str) -> None:
    done = subprocess.run(
        [sys.executable, str(CHILD), str(data_root), point],
        env={**os.environ, "PYTHONPATH": str(ROOT), "HUB_INGRESS": "front_db"},
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == -signal.SIGKILL, (done.returncode, done.stderr[-2000:])


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Both zones on SQLite under one data root (what the crash child opens)."""
    for name in ("HUB_INTERNET_DB_URL", "HUB_EXCHANGE_DB_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HUB_INGRESS", "front_db")
    zones._prepared_engine.cache_clear()
    settings = load_settings({"HUB_DATA_ROOT": str(tmp_path / "data"), "HUB_ZONE": "both", "HUB_INGRESS": "front_db"})
    init_keys(settings)
    yield settings
    zones._prepared_engine.cache_clear()


@pytest.mark.parametrize("point", ["front_in_transaction", "send_after_plan", "send_after_build", "send_after_put"])
def test_intake_killed_then_rerun_carries_every_row_once_in_the_same_bytes(local: Settings, point: str) -> None:
    truth = generate(local, 40)
    good = {n for n, t in truth.items() if t["outcome"] != "quarantined"}
    run_child(local.data_root, point)
    in_ferry = ferry_file(local, "inbound", 1)
    before = in_ferry.read_bytes() if in_ferry.exists() else None
    assert (before is not None) == (point == "send_after_put")
    if point == "front_in_transaction":  # rolled back: no plan, no row marked, nothing quarantined
        assert set(rows(local).values()) == {(NEW, None, None)}
        with internet(local).connect() as connection:
            assert connection.execute(select(func.count()).select_from(ferry_sent)).scalar_one() == 0
    else:  # committed with the plan: carried rows fixed, bad ones held
        assert carried(local) == good
    built = outbox_file(local, "inbound", 1)
    outbox_before = built.read_bytes() if built.exists() else None
    report = stages.intake(local)
    assert report["bundles"] == ["inbound#1"]  # the planned bundle (or the first), never a second one
    after = in_ferry.read_bytes()
    assert after == built.read_bytes()
    if before is not None:
        assert after == before
    if outbox_before is not None:
        assert after == outbox_before
    assert stages.intake(local)["bundles"] == []
    assert stages.inbound_receive(local)["applied"] == ["inbound#1"]
    assert_exactly(local, good)
    assert sum(applied_records(local).values()) == len(good)
    assert {n for n, (state, _, _) in rows(local).items() if state == QUARANTINED} == set(truth) - good


def test_a_rebuilt_bundle_equals_the_one_built_first(local: Settings, tmp_path: Path) -> None:
    """The same plan built twice (as after a crash) gives the same bytes, attachments shared by
    rows included."""
    from connectors.ferry_ledger import planned_unsent

    generate(local, 40)
    stages.intake(local)
    first = outbox_file(local, "inbound", 1).read_bytes()
    # Forget that it was sent: the sender finds it planned and rebuilds it from the rows.
    with transaction(internet(local)) as connection:
        connection.execute(update(ferry_sent).values(state="planned", digest=None))
        assert [p.kind for p in planned_unsent(connection, "inbound")] == [FRONT_DB_PLAN]
    outbox_file(local, "inbound", 1).chmod(0o644)
    outbox_file(local, "inbound", 1).unlink()
    ferry_file(local, "inbound", 1).unlink()
    assert stages.intake(local)["bundles"] == ["inbound#1"]
    assert outbox_file(local, "inbound", 1).read_bytes() == first


def test_hub_generate_writes_where_intake_reads(local: Settings, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from hub.cli import main

    monkeypatch.setenv("HUB_DATA_ROOT", str(local.data_root))
    monkeypatch.setenv("HUB_INGRESS", "both")
    assert main(["generate", "--count", "20", "--seed", "3", "--date", "2026-03-02"]) == 0
    assert "front database" in capsys.readouterr().out
    assert len(rows(local)) == 20 and not local.portal_drop.exists()
    assert main(["generate", "--count", "10", "--seed", "4", "--date", "2026-03-03", "--to", "drop"]) == 0
    assert len(list(local.portal_drop.iterdir())) == 10
    report = stages.intake(load_settings())
    assert report["carried"] + len(report["quarantined"]) == 30 and len(report["bundles"]) == 2
    monkeypatch.setenv("HUB_INGRESS", "drop")
    assert main(["generate", "--count", "5", "--to", "front_db"]) == 1  # intake would never read it
    assert "HUB_INGRESS=drop" in capsys.readouterr().err
