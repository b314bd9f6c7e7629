"""Fault injection on the ferry between the two zones (local-folder transport, real
databases, real keys). After every scenario the exact set of applied records is checked:
every carried application staged once in the exchange database, nothing else."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from loopkit import (
    alarm_kinds,
    applied_sequences,
    assert_exactly,
    carried,
    carried_in,
    deliver,
    ferry_file,
    make_loop,
    outbox_file,
    quarantined,
    submit,
)

from connectors.alarms import alarm_rows
from connectors.exchange import STAGING_FOLDER, apply_inbound, stage_attachments
from connectors.ferry_control import ChannelPolicy, check_silence, upkeep_sender
from connectors.ferry_ledger import receive_channel
from ferry import content_types as ct
from ferry.bundle import BundleHeader, ItemSource, Limits, open_bundle, records_item, write_bundle
from ferry.keys import generate_zone_key, load_signing_key
from ferry.verdict import CHAIN_BROKEN, SEQUENCE_CONFLICT
from hub import stages
from hub.ferry_ops import channel_status
from hub.settings import Settings
from hub.zones import (
    decryption_keys,
    load_catalogue,
    receiver_keyring,
    recipient_key,
    signing_key,
    transport_for,
    zone_engine,
)
from quality.reconciliation import reconcile, reconcile_inbound_bundles

QUIET = ChannelPolicy(heartbeat_after=timedelta(days=1))


@pytest.fixture
def loop(tmp_path: Path) -> Settings:
    settings = make_loop(tmp_path / "data")
    transport_for(settings, "inbound")  # creates the channel folder
    return settings


def send_batch(settings: Settings, first_serial: int, count: int = 8) -> int:
    """Submit a batch and run intake; returns the inbound sequence it was carried in."""
    submit(settings, count, first_serial)
    report = stages.intake(settings)
    assert len(report["bundles"]) == 1, report
    return int(report["bundles"][0].split("#")[1])


def receive(settings: Settings, **kwargs: object) -> dict:
    if not kwargs:
        return stages.inbound_receive(settings)
    report = receive_channel(
        zone_engine(settings, "admin"), channel="inbound",
        transport=transport_for(settings, "inbound"),
        keyring=receiver_keyring(settings, "inbound"),
        decryption_keys=decryption_keys(settings, "inbound"),
        quarantine_dir=settings.admin_quarantine,
        stage=stage_attachments(settings.attachment_store), apply=apply_inbound,
        **kwargs,  # type: ignore[arg-type]
    )
    return {"applied": report.applied, "quarantined": report.quarantined}


def round_trip_receipts(settings: Settings) -> None:
    """Status goes out (carrying the inbound receipt), the internet zone applies it, and the
    internet zone's upkeep acts on the receipt (resend, prune)."""
    stages.applications_load(settings)
    if not stages.status_publish(settings)["bundles"]:  # nothing to say: a heartbeat carries it
        upkeep_sender(
            stages.channel_sender(settings, "outbound"), ChannelPolicy(heartbeat_after=timedelta(0)),
            catalogue_version=load_catalogue(settings).version,
        )
    stages.portal_publish(settings)


def test_duplicate_delivery_is_applied_once(loop: Settings) -> None:
    send_batch(loop, 1)
    copy = ferry_file(loop, "inbound", 1).read_bytes()
    assert receive(loop)["applied"] == ["inbound#1"]
    ferry_file(loop, "inbound", 1).write_bytes(copy)
    report = receive(loop)
    assert report["applied"] == [] and report["duplicates"] == ["inbound#1"]
    assert not ferry_file(loop, "inbound", 1).exists()
    assert_exactly(loop, carried(loop))


def test_reordered_bundles_are_all_applied_and_the_gap_closes(loop: Settings) -> None:
    send_batch(loop, 1)
    send_batch(loop, 101)
    first = ferry_file(loop, "inbound", 1)
    held = first.read_bytes()
    first.unlink()
    assert receive(loop)["applied"] == ["inbound#2"]
    assert channel_status(loop)["inbound"]["receiver"]["missing"] == [[1, 1]]
    first.write_bytes(held)
    assert receive(loop)["applied"] == ["inbound#1"]
    status = channel_status(loop)["inbound"]["receiver"]
    assert status["missing"] == [] and status["highest_contiguous"] == 2
    assert quarantined(loop) == [] and alarm_kinds(loop) == []
    assert_exactly(loop, carried(loop))


def test_dropped_bundle_gap_receipt_resend_complete(loop: Settings) -> None:
    send_batch(loop, 1)
    lost = ferry_file(loop, "inbound", 1)
    original = lost.read_bytes()
    lost.unlink()  # lost in the gap
    send_batch(loop, 101)
    receive(loop)
    assert_exactly(loop, carried_in(loop, 2))
    round_trip_receipts(loop)  # outbound#1 carries "inbound: missing [1]"
    report = stages.inbound_upkeep(loop)
    assert report["resent"] == ["inbound#1"]
    assert lost.read_bytes() == original  # byte-identical resend
    # The same receipt does not trigger a second resend.
    assert stages.inbound_upkeep(loop)["resent"] == []
    assert receive(loop)["applied"] == ["inbound#1"]
    assert_exactly(loop, carried(loop))
    round_trip_receipts(loop)  # outbound#2 acknowledges both
    sender = channel_status(loop)["inbound"]["sender"]
    assert sender["unacknowledged"] == [] and sender["resent"] == {1: 1}
    assert sender["receipt"]["highest_contiguous"] == 2


@pytest.mark.parametrize(
    ("damage", "code"),
    [
        (lambda b: b[:100] + bytes([b[100] ^ 0x01]) + b[101:], "HASH_MISMATCH"),
        (lambda b: b[: len(b) // 2], "TRUNCATED"),
    ],
    ids=["bit-flip", "truncation"],
)
def test_damaged_bundle_is_quarantined_reported_and_resent(loop: Settings, damage, code) -> None:  # type: ignore[no-untyped-def]
    send_batch(loop, 1)
    path = ferry_file(loop, "inbound", 1)
    deliver(path, damage(path.read_bytes()))  # damaged in the gap
    report = receive(loop)
    assert [q["code"] for q in report["quarantined"]] == [code]
    assert_exactly(loop, set())
    round_trip_receipts(loop)
    receipt = channel_status(loop)["inbound"]["sender"]["receipt"]
    assert receipt["quarantined"] == [{"sequence": 1, "code": code}]
    assert stages.inbound_upkeep(loop)["resent"] == ["inbound#1"]
    assert receive(loop)["applied"] == ["inbound#1"]
    assert_exactly(loop, carried(loop))
    # The quarantined copy's records were applied from the resend: none is counted twice.
    stages.applications_load(loop)
    internet, admin = zone_engine(loop, "internet"), zone_engine(loop, "admin")
    counts = reconcile(internet, admin, loop.public_root)
    at_intake = counts["submitted"] - len(carried(loop))  # the generator's unsafe submissions
    assert counts["quarantined_bundles"] == 0 and counts["quarantined"] == at_intake, counts
    assert counts["accepted"] + counts["rejected"] + counts["quarantined"] == counts["submitted"]
    assert counts["balanced"], counts["checks"]
    assert not [b for b in reconcile_inbound_bundles(admin, internet) if b.scope.startswith("quarantined:")]


def test_a_bundle_rewritten_in_place_on_the_sending_side_is_not_resent(loop: Settings) -> None:
    """The ferry file is a hard link to the sender's outbox copy (same file system): both
    are read-only, but whoever may still write it in place (its owner, root) changes the
    retained copy too. Resend then checks the copy's digest and raises an alarm instead of
    sending other bytes."""
    send_batch(loop, 1)
    path, kept = ferry_file(loop, "inbound", 1), outbox_file(loop, "inbound", 1)
    assert path.stat().st_ino == kept.stat().st_ino and kept.stat().st_nlink == 2
    assert kept.stat().st_mode & 0o222 == 0
    data = path.read_bytes()
    path.write_bytes(data[:100] + bytes([data[100] ^ 0x01]) + data[101:])  # root may
    assert [q["code"] for q in receive(loop)["quarantined"]] == ["HASH_MISMATCH"]
    round_trip_receipts(loop)
    assert stages.inbound_upkeep(loop)["resent"] == []
    assert "resend_impossible" in alarm_kinds(loop, "internet")
    assert_exactly(loop, set())


def visible_attachments(settings: Settings) -> list[Path]:
    """Files in the attachment store outside its staging folder."""
    store = settings.attachment_store
    staging = store / STAGING_FOLDER
    return [p for p in store.rglob("*") if p.is_file() and staging not in p.parents]


def staging_leftovers(settings: Settings) -> list[Path]:
    staging = settings.attachment_store / STAGING_FOLDER
    return list(staging.iterdir()) if staging.is_dir() else []


def test_a_damaged_last_attachment_leaves_no_attachment_of_the_bundle_in_the_store(
    loop: Settings,
) -> None:
    """The receiver stages attachments while it verifies; the earlier ones verified and were
    staged, but none may become visible when a later one fails."""
    send_batch(loop, 1)
    path = ferry_file(loop, "inbound", 1)
    bundle = open_bundle(path, receiver_keyring(loop, "inbound"), expected_channel="inbound",
                         decryption_keys=decryption_keys(loop, "inbound"))
    items = bundle.manifest.items
    assert sum(item.kind == "attachment" for item in items) >= 2
    last_attachment = max(i for i, item in enumerate(items) if item.kind == "attachment")
    offset = 8 + sum(item.stored_size for item in items[:last_attachment]) + 40
    data = path.read_bytes()
    deliver(path, data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :])
    report = receive(loop)
    assert [q["code"] for q in report["quarantined"]] == ["HASH_MISMATCH"]
    assert visible_attachments(loop) == [] and staging_leftovers(loop) == []
    assert_exactly(loop, set())


def test_attachments_of_a_bundle_refused_after_verification_never_reach_the_store(
    loop: Settings,
) -> None:
    """A bundle that verifies (real keys) but conflicts with the ledger is quarantined; what
    it staged is discarded."""
    from ferry_testkit import PDF_BYTES, sha

    send_batch(loop, 1)
    receive(loop)
    before = sorted(visible_attachments(loop))
    pdf = PDF_BYTES + b"% only in the forged bundle\n"
    forged = loop.data_root / "forged.peb"
    header = BundleHeader("inbound", 1, None, "2026-03-02T10:00:00+08:00", "x", {"applications": 1})
    items = [
        records_item("applications", [{"net_id": "NET20260302999999"}]),
        ItemSource.from_bytes(f"att/{sha(pdf)}", "attachment", ct.PDF, pdf),
    ]
    with forged.open("wb") as out:
        write_bundle(out, header, items, signing_key(loop, "inbound"),
                     recipient=recipient_key(loop, "inbound"))
    deliver(ferry_file(loop, "inbound", 1), forged.read_bytes())
    report = receive(loop)
    assert [q["code"] for q in report["quarantined"]] == [SEQUENCE_CONFLICT]
    assert sorted(visible_attachments(loop)) == before
    assert sha(pdf) not in {p.name for p in visible_attachments(loop)}
    assert staging_leftovers(loop) == []
    assert_exactly(loop, carried(loop))


def test_replayed_old_sequence_is_a_harmless_duplicate(loop: Settings) -> None:
    send_batch(loop, 1)
    old = ferry_file(loop, "inbound", 1).read_bytes()
    receive(loop)
    send_batch(loop, 101)
    receive(loop)
    ferry_file(loop, "inbound", 1).write_bytes(old)  # an attacker (or a loop) replays #1
    report = receive(loop)
    assert report["applied"] == [] and report["duplicates"] == ["inbound#1"]
    assert quarantined(loop) == []
    assert_exactly(loop, carried(loop))


def _forged(settings: Settings, sequence: int, previous: str | None, net_id: str, key=None) -> bytes:  # type: ignore[no-untyped-def]
    """A well-formed bundle signed with ``key`` (default: the internet zone's real key)."""
    scratch = settings.data_root / f"forged-{sequence}.peb"
    header = BundleHeader("inbound", sequence, previous, "2026-03-02T10:00:00+08:00", "x", {"applications": 1})
    with scratch.open("wb") as out:
        write_bundle(out, header, [records_item("applications", [{"net_id": net_id}])],
                     key or signing_key(settings, "inbound"), recipient=recipient_key(settings, "inbound"))
    return scratch.read_bytes()


def test_same_sequence_with_other_content_is_quarantined_with_a_security_alarm(loop: Settings) -> None:
    send_batch(loop, 1)
    receive(loop)
    ferry_file(loop, "inbound", 1).write_bytes(_forged(loop, 1, None, "NET20260302999999"))
    report = receive(loop)
    assert [q["code"] for q in report["quarantined"]] == [SEQUENCE_CONFLICT]
    assert alarm_kinds(loop) == ["security"]
    assert_exactly(loop, carried(loop))


def test_broken_digest_chain_is_quarantined_with_a_security_alarm(loop: Settings) -> None:
    send_batch(loop, 1)
    receive(loop)
    ferry_file(loop, "inbound", 2).write_bytes(_forged(loop, 2, "ab" * 32, "NET20260302999999"))
    report = receive(loop)
    assert [q["code"] for q in report["quarantined"]] == [CHAIN_BROKEN]
    assert alarm_kinds(loop) == ["security"]
    assert_exactly(loop, carried(loop))


def test_bundle_signed_by_an_unknown_key_is_refused(loop: Settings, tmp_path: Path) -> None:
    generate_zone_key(tmp_path / "rogue", "internet")
    rogue = load_signing_key(tmp_path / "rogue", "internet")
    ferry_file(loop, "inbound", 1).write_bytes(_forged(loop, 1, None, "NET20260302999999", rogue))
    report = receive(loop)
    assert [q["code"] for q in report["quarantined"]] == ["UNKNOWN_KEY"]
    assert_exactly(loop, set())


def test_oversized_bundle_and_record_are_refused(loop: Settings) -> None:
    # The codec does not compress (records are plain JSON Lines), so there is no
    # decompression ratio to bound: the limits that apply are the bundle, item and
    # record sizes, checked against the file itself before anything is parsed.
    send_batch(loop, 1)
    size = ferry_file(loop, "inbound", 1).stat().st_size
    report = receive(loop, limits=Limits(max_bundle_bytes=size - 1))
    assert [q["code"] for q in report["quarantined"]] == ["LIMIT_EXCEEDED"]
    assert "exceeds" in report["quarantined"][0]["detail"]
    send_batch(loop, 101)
    report = receive(loop, limits=Limits(max_record_bytes=64))
    assert [q["code"] for q in report["quarantined"]] == ["LIMIT_EXCEEDED"]
    assert_exactly(loop, set())


@pytest.mark.parametrize(
    "name",
    ["records/../../etc/passwd.jsonl", "records/a\x00b.jsonl", "att/../../x", "records/\nx.jsonl", "C:\\x"],
)
def test_path_like_and_control_character_item_names_are_refused(loop: Settings, name: str) -> None:
    from ferry_testkit import forge_bundle as forge

    content = b'{"net_id":"NET20260302999999"}\n'
    kind = "attachment" if name.startswith("att/") else "records"
    media = ct.PDF if kind == "attachment" else "application/x-ndjson"
    forge(ferry_file(loop, "inbound", 1), signing_key(loop, "inbound"), recipient_key(loop, "inbound"),
          [({"name": name, "kind": kind, "media_type": media}, content)])
    report = receive(loop)
    assert [q["code"] for q in report["quarantined"]] == ["BAD_ITEM_NAME"]
    assert_exactly(loop, set())
    assert not any(p.name == "passwd.jsonl" for p in loop.data_root.rglob("*"))


def test_transport_file_names_with_control_characters_are_never_read(loop: Settings) -> None:
    send_batch(loop, 1)
    good = ferry_file(loop, "inbound", 1)
    for odd in ("inbound-000000000002.peb\n", "inbound-000000000003.peb.part", ".inbound-4.peb", "x y.peb"):
        shutil.copyfile(good, good.with_name(odd))
    assert receive(loop)["applied"] == ["inbound#1"]
    assert_exactly(loop, carried(loop))


def test_bundle_under_another_sequence_name_is_refused(loop: Settings) -> None:
    send_batch(loop, 1)
    ferry_file(loop, "inbound", 1).rename(ferry_file(loop, "inbound", 5))
    report = receive(loop)
    assert [q["code"] for q in report["quarantined"]] == ["NAME_MISMATCH"]
    assert_exactly(loop, set())


def test_attachment_whose_content_is_not_its_declared_type_is_refused(loop: Settings) -> None:
    from ferry_testkit import PNG_BYTES, sha
    from ferry_testkit import forge_bundle as forge

    forge(ferry_file(loop, "inbound", 1), signing_key(loop, "inbound"), recipient_key(loop, "inbound"),
          [({"name": f"att/{sha(PNG_BYTES)}", "kind": "attachment", "media_type": ct.PDF}, PNG_BYTES)])
    report = receive(loop)
    assert [q["code"] for q in report["quarantined"]] == ["ATTACHMENT_TYPE"]
    # Nothing in the store but the (empty) staging folder: the attachment was staged while
    # verifying and discarded with the bundle.
    store = loop.attachment_store
    assert [p for p in store.rglob("*") if p != store / STAGING_FOLDER] == []
    assert_exactly(loop, set())


def test_heartbeat_reveals_a_lost_last_bundle_and_silence_raises_one_alarm(loop: Settings) -> None:
    send_batch(loop, 1)
    ferry_file(loop, "inbound", 1).unlink()  # the last bundle is lost: nothing after it
    assert receive(loop)["applied"] == []
    beat = upkeep_sender(
        stages.channel_sender(loop, "inbound"), ChannelPolicy(heartbeat_after=timedelta(0)), catalogue_version=load_catalogue(loop).version
    )
    assert beat.heartbeat == "inbound#2"
    assert receive(loop)["applied"] == ["inbound#2"]
    receiver = channel_status(loop)["inbound"]["receiver"]
    assert receiver["missing"] == [[1, 1]] and receiver["last_heartbeat_received"]
    assert_exactly(loop, set())
    silent = ChannelPolicy(silence_alarm_after=timedelta(0))
    assert check_silence(zone_engine(loop, "admin"), "inbound", silent) is not None
    assert check_silence(zone_engine(loop, "admin"), "inbound", silent) is None  # once
    assert alarm_kinds(loop) == ["channel_silent"]
    # Recovery: the receipt rides out, the sender resends #1.
    round_trip_receipts(loop)
    assert upkeep_sender(stages.channel_sender(loop, "inbound"), QUIET, catalogue_version=load_catalogue(loop).version).resent == ["inbound#1"]
    assert receive(loop)["applied"] == ["inbound#1"]
    assert_exactly(loop, carried(loop))
    # The channel spoke again: the silence alarm is resolved (kept, with when and why).
    assert check_silence(zone_engine(loop, "admin"), "inbound", ChannelPolicy()) is None
    (resolved,) = alarm_rows(zone_engine(loop, "admin"), include_resolved=True)
    assert resolved["state"] == "resolved" and "spoke again" in resolved["resolution"]
    assert alarm_rows(zone_engine(loop, "admin")) == []


def test_acknowledged_outbox_copies_are_pruned_after_retention_only(loop: Settings) -> None:
    send_batch(loop, 1)
    receive(loop)
    round_trip_receipts(loop)
    end = stages.channel_sender(loop, "inbound")
    assert upkeep_sender(end, QUIET, catalogue_version=load_catalogue(loop).version).pruned == []  # within the 24 h retention
    assert outbox_file(loop, "inbound", 1).exists()
    report = upkeep_sender(
        end, ChannelPolicy(heartbeat_after=timedelta(days=1), retention=timedelta(0)), catalogue_version=load_catalogue(loop).version
    )
    assert report.pruned == ["inbound#1"]
    assert not outbox_file(loop, "inbound", 1).exists()
    assert applied_sequences(loop)  # the ledger keeps what was applied
