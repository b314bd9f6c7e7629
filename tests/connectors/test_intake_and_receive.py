"""Intake and receive survive crashes and hostile input without losing or repeating a record."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from connectors.db import alarms, applications, ferry_sent, inbound_records, provenance, quarantine
from ferry.transport import LocalFolderTransport
from hub import stages
from hub.keys import init_keys
from hub.settings import load_settings
from hub.simulators.applicants import generate_batch
from hub.zones import load_catalogue, zone_engine
from schemas.exceptions import TransientError


@pytest.fixture
def batch(hub_env: Path) -> dict[str, dict[str, object]]:
    settings = load_settings()
    init_keys(settings)
    documents = [dict(i.document) for i in load_catalogue(settings).items.values()]
    return generate_batch(settings.portal_drop, 60, 5, documents, settings.agency_code, date(2026, 11, 20))


def count(engine, table, *where) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table).where(*where)).scalar() or 0)


def test_crash_between_plan_and_send_resends_the_same_bytes(
    batch: dict[str, dict[str, object]], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings()
    real_put = LocalFolderTransport.put

    def broken_put(self: LocalFolderTransport, name: str, source: Path) -> None:
        raise TransientError("gap appliance unreachable")

    monkeypatch.setattr(LocalFolderTransport, "put", broken_put)
    with pytest.raises(TransientError):
        stages.intake()
    outbox = settings.outbox_dir("inbound") / "inbound-000000000001.peb"
    first_bytes = outbox.read_bytes()
    internet = zone_engine(settings, "internet")
    assert count(internet, ferry_sent, ferry_sent.c.state == "planned") == 1

    monkeypatch.setattr(LocalFolderTransport, "put", real_put)
    report = stages.intake()
    assert report["bundles"] == ["inbound#1"]
    assert outbox.read_bytes() == first_bytes
    assert (settings.channel_dir("inbound") / outbox.name).read_bytes() == first_bytes
    assert count(internet, ferry_sent) == 1
    # The carried submissions left the drop for the folder of the bundle that carried them.
    carried_folder = settings.portal_collected / "inbound-00000001"
    assert sorted(p.name for p in carried_folder.iterdir()) == sorted(
        n for n, o in batch.items() if o["outcome"] != "quarantined")
    assert not [p for p in settings.portal_drop.iterdir() if p.name in batch and batch[p.name]["outcome"] != "quarantined"]
    # One intake event per carried submission, recorded with the plan, none again on the resend.
    with internet.connect() as connection:
        events = connection.execute(select(provenance.c.record_id, provenance.c.outcome, provenance.c.bundle)
                                    .where(provenance.c.stage == "intake", provenance.c.outcome != "quarantined")).all()
    assert sorted(events) == sorted(
        (n, "collected", "inbound#1") for n, o in batch.items() if o["outcome"] != "quarantined")

    stages.inbound_receive()
    stages.applications_load()
    admin = zone_engine(settings, "admin")
    carried = [n for n, o in batch.items() if o["outcome"] != "quarantined"]
    assert count(admin, inbound_records) == len(carried)
    assert count(admin, applications) == sum(o["outcome"] == "accepted" for o in batch.values())


def test_duplicate_delivery_is_applied_once(batch: dict[str, dict[str, object]]) -> None:
    settings = load_settings()
    stages.intake()
    bundle = settings.outbox_dir("inbound") / "inbound-000000000001.peb"
    assert stages.inbound_receive()["applied"] == ["inbound#1"]
    shutil.copy(bundle, settings.channel_dir("inbound") / bundle.name)  # the gap appliance delivers it again
    report = stages.inbound_receive()
    assert report["applied"] == [] and report["duplicates"] == ["inbound#1"]
    carried = sum(o["outcome"] != "quarantined" for o in batch.values())
    assert count(zone_engine(settings, "admin"), inbound_records) == carried


def test_tampered_bundle_is_quarantined_with_its_reason(batch: dict[str, dict[str, object]]) -> None:
    settings = load_settings()
    stages.intake()
    delivered = settings.channel_dir("inbound") / "inbound-000000000001.peb"
    data = bytearray(delivered.read_bytes())
    data[200] ^= 0x01
    delivered.write_bytes(bytes(data))
    report = stages.inbound_receive()
    assert report["applied"] == []
    assert [q["code"] for q in report["quarantined"]] == ["HASH_MISMATCH"]
    admin = zone_engine(settings, "admin")
    assert count(admin, inbound_records) == 0
    assert count(admin, quarantine, quarantine.c.kind == "bundle") == 1
    kept = list((settings.admin_quarantine / "bundles").glob("inbound-000000000001.peb.*.reason.json"))
    assert json.loads(kept[0].read_text("utf-8"))["code"] == "HASH_MISMATCH"
    assert not delivered.exists()


def test_same_sequence_with_other_content_is_a_security_event(batch: dict[str, dict[str, object]]) -> None:
    settings = load_settings()
    stages.intake()
    first = (settings.outbox_dir("inbound") / "inbound-000000000001.peb").read_bytes()
    stages.inbound_receive()
    # Forge: rewind the sender's ledger and send different content under sequence 1.
    internet = zone_engine(settings, "internet")
    with internet.begin() as connection:
        connection.execute(ferry_sent.delete())
    generate_batch(settings.portal_drop, 5, 99, [dict(i.document) for i in load_catalogue(settings).items.values()],
                   settings.agency_code, date(2026, 11, 20), first_serial=500)
    stages.intake()
    second = settings.channel_dir("inbound") / "inbound-000000000001.peb"
    assert second.read_bytes() != first
    report = stages.inbound_receive()
    assert [q["code"] for q in report["quarantined"]] == ["SEQUENCE_CONFLICT"]
    assert count(zone_engine(settings, "admin"), alarms, alarms.c.kind == "security") == 1


def test_a_submission_that_cannot_be_carried_is_kept_with_its_reason(batch: dict[str, dict[str, object]]) -> None:
    settings = load_settings()
    report = stages.intake()
    expected = {n: o["code"] for n, o in batch.items() if o["outcome"] == "quarantined"}
    assert {q["ref"]: q["code"] for q in report["quarantined"]} == expected
    for net_id in expected:
        assert not (settings.portal_drop / net_id).exists()
        kept = list((settings.internet_quarantine / "submissions").glob(f"{net_id}.*"))
        assert len(kept) == 2  # the submission folder and its reason file


def test_folders_still_being_written_are_left_alone_until_complete(
    batch: dict[str, dict[str, object]]
) -> None:
    settings = load_settings()
    drop = settings.portal_drop
    writing = drop / "NET20261120999999"  # the portal has put its attachment, not yet submission.json
    writing.mkdir()
    (writing / "scan.pdf").write_bytes(b"%PDF-1.7\n")
    odd = drop / "name with spaces"  # an unsafe name, but not complete either: not ours yet
    odd.mkdir()

    report = stages.intake()  # returns although the two folders stay in the drop

    carried_or_kept = {n for n, o in batch.items() if o["outcome"] != "quarantined"}
    assert report["carried"] == len(carried_or_kept)
    assert {q["ref"] for q in report["quarantined"]} == {
        n for n, o in batch.items() if o["outcome"] == "quarantined"
    }
    assert sorted(p.name for p in drop.iterdir()) == ["NET20261120999999", "name with spaces"]
    assert sorted(p.name for p in writing.iterdir()) == ["scan.pdf"]

    (odd / "submission.json").write_bytes(b"{}")  # complete now: refused for its name
    again = stages.intake()
    assert [(q["ref"], q["code"]) for q in again["quarantined"]] == [("name with spaces", "UNSAFE_NAME")]
    assert again["carried"] == 0
    assert [p.name for p in drop.iterdir()] == ["NET20261120999999"]


def test_a_drop_larger_than_a_bundle_is_carried_in_several_once_each(
    batch: dict[str, dict[str, object]]
) -> None:
    """Intake lists the drop a bundle's worth of names at a time while it moves folders out
    of it: every submission is still carried exactly once, and the drop ends empty."""
    from connectors.intake import collect_submissions

    settings = load_settings()
    report = collect_submissions(
        stages.channel_sender(settings, "inbound"), drop=settings.portal_drop,
        collected=settings.portal_collected, quarantine_dir=settings.internet_quarantine,
        catalogue_version=load_catalogue(settings).version, max_records=7,
    )
    carried = {n for n, o in batch.items() if o["outcome"] != "quarantined"}
    assert report.carried == len(carried) and len(report.bundles) >= len(carried) // 7
    assert list(settings.portal_drop.iterdir()) == []
    in_bundles = [p.name for folder in sorted(settings.portal_collected.iterdir()) for p in sorted(folder.iterdir())]
    assert sorted(in_bundles) == sorted(carried)  # each once
    assert all(len(list(folder.iterdir())) <= 7 for folder in settings.portal_collected.iterdir())
    internet = zone_engine(settings, "internet")
    assert count(internet, ferry_sent, ferry_sent.c.channel == "inbound") == len(report.bundles)
