"""The administration zone's audit checkpoints through the outbound ferry: published with
their tiles, each checked against the last one accepted; a fork and a rollback are
quarantined with a security alarm and leave the published checkpoint as it was; the
leaves of published status changes reach the status documents and prove from the
published tiles alone."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from connectors.alarms import alarm_rows
from connectors.audit import SOURCES, append_entries, checkpoint_if_grown, checkpoints, lock_head
from connectors.audit_feed import AUDIT_FOLDER, CHECKPOINT_PLAN, build_checkpoint_bundle
from connectors.clock import iso, now, registration_shift, shifted
from connectors.db import (
    audit_entries,
    audit_hash_pages,
    audit_head,
    audit_published,
    audit_sent,
    provenance,
    transaction,
)
from connectors.ferry_control import quarantine_rows
from connectors.ferry_ledger import plan_next
from connectors.provenance import record_events
from ferry.tlog import (
    TileHashReader,
    open_checkpoint,
    parse_verifier_key,
    prove_inclusion,
    tree_hasher,
    verify_inclusion,
)
from hub import stages
from hub.audit import summary_text, zone_signer
from hub.cli import main
from hub.settings import load_settings
from hub.zones import zone_engine
from tests.connectors.public_site_kit import published_documents, stored_leaves

OUTBOUND = ("case_processing", "status_publish", "audit_publish", "portal_publish")


def _round(hub_env: Path, count: int, seed: int, day: date, outbound: tuple[str, ...] = OUTBOUND) -> None:
    """A day's applications generated and carried in, then the ``outbound`` stages run."""
    assert main(["generate", "--count", str(count), "--seed", str(seed), "--date", str(day)]) == 0
    with shifted(registration_shift(day)):
        for stage in ("intake", "inbound_receive", "applications_load"):
            assert main(["run", stage]) == 0
    for stage in outbound:
        assert main(["run", stage]) == 0


def _published(public: Path) -> Any:
    note = (public / AUDIT_FOLDER / "checkpoint").read_text("utf-8")
    keys = [parse_verifier_key(k) for k in (public / AUDIT_FOLDER / "key").read_text("utf-8").split()]
    return open_checkpoint(note, keys)


def test_checkpoints_are_published_checked_and_prove_the_status_events(hub_env: Path) -> None:
    assert main(["keys", "init"]) == 0
    _round(hub_env, 20, 7, date(2026, 11, 20))
    settings = load_settings()
    public = settings.public_root
    first = _published(public)
    admin = zone_engine(settings, "admin")
    with admin.connect() as c:
        size = c.execute(select(audit_head.c.size)).scalar()
    assert 0 < first.size <= size
    internet = zone_engine(settings, "internet")

    # A second day extends the tree: checked against the first by its consistency proof.
    _round(hub_env, 15, 8, date(2026, 11, 21))
    second = _published(public)
    assert second.size > first.size
    with internet.connect() as c:
        assert c.execute(select(audit_published.c.size).order_by(audit_published.c.size)).scalars().all() == [
            first.size, second.size]

    # Every status event shown carries its leaf; the leaf proves from the published tiles.
    hasher = tree_hasher("intl")
    tiles = TileHashReader(second.size, second.root_hash,
                           lambda tile: (public / AUDIT_FOLDER / tile.path).read_bytes(), hasher)
    proven = 0
    leaves = set()
    for document in published_documents(load_settings()):
        for event in document["events"]:
            leaf = document.get("audit", {}).get(str(event["event_id"]))
            if leaf is None or leaf["seq"] >= second.size:
                continue
            entry = json.loads(leaf["entry"])
            # One leaf per application and bundle, listing the changes it sent.
            assert entry["row"]["record_id"] == document["net_id"]
            assert entry["row"]["outcome"] == "published"
            assert [event["event_id"], event["status"]] in entry["row"]["detail"]["events"]
            leaves.add(leaf["seq"])
            leaf_hash = hasher.leaf_hash(leaf["entry"].encode("utf-8"))
            proof = prove_inclusion(second.size, leaf["seq"], tiles, hasher)
            assert verify_inclusion(hasher, leaf["seq"], second.size, leaf_hash, proof, second.root_hash)
            proven += 1
    assert proven >= 20
    assert len(leaves) < proven  # an application's changes of one bundle share their leaf

    text = summary_text(settings)
    assert f"published the administration zone's checkpoint of {second.size} leaves" in text
    assert "admin" in text and "not cosigned by the province yet" in text

    # No personal data in what left: the tiles are hashes, the leaves salted commitments.
    for tile in (public / AUDIT_FOLDER / "tile").rglob("*"):
        if tile.is_file():
            assert len(tile.read_bytes()) % 32 == 0


def _send_checkpoint(settings: Any, old_size: int, new_size: int) -> None:
    sender = stages.channel_sender(settings, "outbound")
    with transaction(sender.engine) as connection:
        plan = plan_next(connection, "outbound", created_at=iso(now()), catalogue_version="v", record_count=1,
                         kind=CHECKPOINT_PLAN)
        connection.execute(audit_sent.insert().values(sequence=plan.sequence, old_size=old_size, size=new_size,
                                                      planned_at=iso(now())))
    sender.send(plan, build_checkpoint_bundle(sender.engine, old_size, new_size))


def _security_refusals(settings: Any) -> tuple[list[str], list[Any]]:
    internet = zone_engine(settings, "internet")
    codes = [row["code"] for row in quarantine_rows(internet)]
    alarms = [a for a in alarm_rows(internet) if a["kind"] == "security"]
    return codes, alarms


def test_a_rollback_is_quarantined_with_a_security_alarm(hub_env: Path) -> None:
    assert main(["keys", "init"]) == 0
    _round(hub_env, 12, 9, date(2026, 11, 20))
    settings = load_settings()
    _round(hub_env, 6, 10, date(2026, 11, 21))
    newest = _published(settings.public_root)
    admin = zone_engine(settings, "admin")
    with admin.connect() as c:
        older = [cp.size for cp in checkpoints(c) if cp.size < newest.size]
    assert older
    _send_checkpoint(settings, 0, older[0])  # sent after the newest: the log went back
    stages.portal_publish(settings)
    codes, alarms = _security_refusals(settings)
    assert "ROLLBACK" in codes and alarms
    assert _published(settings.public_root).size == newest.size


def test_a_forked_log_is_quarantined_with_a_security_alarm(hub_env: Path) -> None:
    assert main(["keys", "init"]) == 0
    _round(hub_env, 12, 11, date(2026, 11, 20))
    settings = load_settings()
    published = _published(settings.public_root)
    admin = zone_engine(settings, "admin")
    # An insider rewrites an event already covered by the published checkpoint, rebuilds the
    # whole log to match, appends, and has the zone sign the new tree.
    with transaction(admin) as c:
        c.execute(update(provenance).where(provenance.c.id == 1).values(outcome="rejected"))
        rows = list(c.execute(select(audit_entries).order_by(audit_entries.c.seq)))
        source = SOURCES["provenance"]
        row = c.execute(source.select_rows().where(provenance.c.id == 1)).one()
        c.execute(delete(audit_entries))
        c.execute(delete(audit_hash_pages))
        c.execute(update(audit_head).values(size=0, root=None))
        head = lock_head(c)
        for r in rows:
            entry = r.entry
            if r.source == "provenance" and r.source_key == 1:
                entry = source.entry(1, row._mapping, json.loads(r.entry)["salt"])
            append_entries(c, head, r.source, [(r.source_key, entry)], r.at)
    with transaction(admin) as c:
        record_events(c, [("NET20261120999999", "keys", "noise", None, None)], iso(now()))
    assert checkpoint_if_grown(admin, zone_signer(settings, "admin"), iso(now())) is not None
    assert main(["run", "audit_publish"]) == 0
    stages.portal_publish(settings)
    codes, alarms = _security_refusals(settings)
    assert "FORK" in codes and alarms
    assert _published(settings.public_root).size == published.size
    # and the administration zone's own check finds the rewritten tree against its checkpoints
    assert main(["audit", "verify", "--zone", "admin"]) == 1


def test_the_gm_suite_publishes_and_checks_too(hub_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_CRYPTO_SUITE", "gm")
    from hub import zones

    zones._prepared_engine.cache_clear()
    assert main(["keys", "init"]) == 0
    _round(hub_env, 8, 12, date(2026, 11, 20))
    _round(hub_env, 5, 13, date(2026, 11, 21))
    settings = load_settings()
    published = _published(settings.public_root)
    assert published.size > 0
    with zone_engine(settings, "internet").connect() as c:
        assert len(c.execute(select(audit_published.c.size)).all()) == 2
    assert "\u2014 power-exchange-hub/" in published.note and published.signed_by
    with zone_engine(settings, "admin").connect() as c:
        assert c.execute(select(audit_head.c.suite)).scalar() == "gm"


def test_leaves_that_come_before_their_status_documents_are_filed_when_these_arrive(hub_env: Path) -> None:
    from connectors.db import audit_unfiled
    from ferry.bundle import bundle_file_name

    assert main(["keys", "init"]) == 0
    _round(hub_env, 12, 5, date(2026, 11, 20), OUTBOUND[:-1])  # not applied on the internet side yet
    settings = load_settings()
    # The status bundle is lost in the gap; the checkpoint bundle after it arrives first.
    status_bundle = settings.channel_dir("outbound") / bundle_file_name("outbound", 1)
    held = status_bundle.with_name("held-back")
    status_bundle.rename(held)
    assert main(["run", "portal_publish"]) == 0
    internet = zone_engine(settings, "internet")
    waiting = stored_leaves(settings.public_root)
    assert waiting and list(published_documents(settings)) == []
    # The status bundle comes (resent): each document shows its changes with their leaves.
    held.rename(status_bundle)
    assert main(["run", "portal_publish"]) == 0
    with internet.connect() as c:
        assert c.execute(select(audit_unfiled)).all() == []
    filed = set()
    for document in published_documents(settings):
        filed |= {leaf["seq"] for leaf in document.get("audit", {}).values()}
        assert set(document.get("audit", {})) == {str(e["event_id"]) for e in document["events"]}
    assert len(filed) == waiting == stored_leaves(settings.public_root)  # a leaf per application


def _waiting(settings: Any) -> set[tuple[str, int, int, str]]:
    from connectors.db import audit_unfiled

    with zone_engine(settings, "internet").connect() as c:
        return {(r.lookup, r.event_id, r.seq, r.entry) for r in c.execute(select(audit_unfiled))}


def test_leaves_an_earlier_hub_left_unfiled_move_into_the_store_with_the_next_checkpoint(
        hub_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors.audit_feed import LEAF_KIND
    from connectors.db import query_passwords
    from connectors.status_store import opened, public_lookup, read_status
    from hub import audit as hub_audit
    from tests.connectors.public_site_kit import unfile_leaves

    assert main(["keys", "init"]) == 0
    _round(hub_env, 16, 14, date(2026, 11, 20))
    settings = load_settings()
    public = settings.public_root
    first = _published(public)
    with zone_engine(settings, "admin").connect() as c:
        passwords = c.execute(select(query_passwords.c.net_id, query_passwords.c.case_number,
                                     query_passwords.c.password).order_by(query_passwords.c.net_id)).all()
        older = [cp.size for cp in checkpoints(c) if cp.size < first.size]
    cases = [(number or net_id, password) for net_id, number, password in passwords]
    shown = {case: read_status(public, *case) for case in cases}
    cases = [case for case in cases if (shown[case] or {}).get("audit")][:2]
    assert len(cases) == 2 and older
    # The hub before the store applied the checkpoint bundle before these cases' status
    # bundle: their leaves waited in audit_unfiled, and the status page could not prove them.
    waiting = {(w["lookup"], w["event_id"], w["seq"], w["entry"]) for case in cases
               for w in unfile_leaves(settings, *case)}
    assert waiting and _waiting(settings) == waiting
    assert all("audit" not in (read_status(public, *case) or {}) for case in cases)
    before = stored_leaves(public)

    # A refused checkpoint bundle (a rollback) moves nothing.
    _send_checkpoint(settings, 0, older[0])
    stages.portal_publish(settings)
    assert "ROLLBACK" in _security_refusals(settings)[0]
    assert _waiting(settings) == waiting and stored_leaves(public) == before

    # The next day's checkpoint bundle: a crash after its leaves are stored, before the bundle
    # is marked applied, rolls the deletion back with the rest; the next pass applies it again.
    _round(hub_env, 6, 15, date(2026, 11, 21), OUTBOUND[:-1])
    admin = zone_engine(settings, "admin")
    with admin.connect() as c:
        sent = c.execute(select(audit_sent).order_by(audit_sent.c.sequence.desc()).limit(1)).one()
    carried = build_checkpoint_bundle(admin, int(sent.old_size), int(sent.size)).counts[LEAF_KIND]
    assert carried > 0
    apply_checkpoint = hub_audit.apply_checkpoint

    def crashing(*args: Any, **kwargs: Any) -> int:
        apply_checkpoint(*args, **kwargs)
        raise RuntimeError("crash before the bundle is marked applied")

    with monkeypatch.context() as patched:
        patched.setattr(hub_audit, "apply_checkpoint", crashing)
        with pytest.raises(RuntimeError, match="crash before"):
            stages.portal_publish(settings)
    assert _waiting(settings) == waiting
    assert stored_leaves(public) == before + len(waiting) + carried  # the store commits first
    stages.portal_publish(settings)
    assert _published(public).size == int(sent.size)
    assert _waiting(settings) == set()
    assert stored_leaves(public) == before + len(waiting) + carried  # nothing stored twice
    stages.portal_publish(settings)  # nothing left to apply
    assert stored_leaves(public) == before + len(waiting) + carried

    # What the lookup serves: the moved leaves, plain; what the applicant reads: each change
    # of the first day with the leaf it had, proven from the published tiles by that entry.
    hasher = tree_hasher("intl")
    newest = _published(public)
    tiles = TileHashReader(newest.size, newest.root_hash,
                           lambda tile: (public / AUDIT_FOLDER / tile.path).read_bytes(), hasher)
    with opened(public, readonly=True) as store:
        served = [leaf for lookup in {w[0] for w in waiting}
                  for leaf in (public_lookup(public, store, lookup) or {})["audit"] if leaf["seq"] < first.size]
    assert sorted((leaf["event_id"], leaf["seq"], leaf.get("entry"), leaf.get("sealed")) for leaf in served) == sorted(
        (*w[1:], None) for w in waiting)
    for case in cases:
        document = read_status(public, *case)
        assert document is not None
        earlier = shown[case]
        assert earlier is not None
        for event in earlier["events"]:
            leaf = document["audit"][str(event["event_id"])]
            assert leaf == earlier["audit"][str(event["event_id"])]
            proof = prove_inclusion(newest.size, leaf["seq"], tiles, hasher)
            assert verify_inclusion(hasher, leaf["seq"], newest.size, hasher.leaf_hash(leaf["entry"].encode("utf-8")),
                                    proof, newest.root_hash)


def test_a_leaf_left_unfiled_moves_once_its_change_is_shown_and_never_for_a_case_taken_down(hub_env: Path) -> None:
    import sqlite3
    from contextlib import closing

    from sqlalchemy import insert

    from connectors.db import cases, query_passwords, status_outbox
    from connectors.status_store import legacy_document_path, opened, read_status, store_path
    from rules.query_password import lookup_bytes
    from tests.connectors.public_site_kit import unfile_leaves

    assert main(["keys", "init"]) == 0
    _round(hub_env, 16, 16, date(2026, 11, 20))
    settings = load_settings()
    admin = zone_engine(settings, "admin")
    with admin.connect() as c:
        rows = c.execute(select(cases.c.net_id, cases.c.case_number, query_passwords.c.password,
                                query_passwords.c.lookup)
                         .join(query_passwords, query_passwords.c.net_id == cases.c.net_id)
                         .where(cases.c.case_number.is_not(None)).order_by(cases.c.case_number)).all()
    kept, secret = [r for r in rows if (read_status(settings.public_root, r.case_number, r.password) or {}).get("audit")][:2]
    moved = {(w["lookup"], w["event_id"], w["seq"], w["entry"])
             for w in unfile_leaves(settings, kept.case_number, kept.password)}
    # The first one's document is still of the file layout before the store (its events
    # there, none in the store).
    document = read_status(settings.public_root, kept.case_number, kept.password)
    assert document is not None and "audit" not in document
    legacy = legacy_document_path(settings.public_root, kept.lookup)
    legacy.parent.mkdir(parents=True, exist_ok=True)
    legacy.write_text(json.dumps(document, ensure_ascii=False), "utf-8")
    with closing(sqlite3.connect(store_path(settings.public_root))) as store, store:
        store.execute("DELETE FROM events WHERE lookup = ?", (lookup_bytes(kept.lookup),))
    withheld = {(w["lookup"], w["event_id"], w["seq"], w["entry"])
                for w in unfile_leaves(settings, secret.case_number, secret.password)}
    # The case-processing system marks one of them secret: its document comes down before
    # the next checkpoint bundle, which must not publish its waiting leaf (its entry names
    # the case, in plain text) under the lookup taken down.
    with admin.begin() as c:
        c.execute(update(cases).where(cases.c.case_number == secret.case_number).values(secret=True))
        c.execute(insert(status_outbox).values(
            net_id=secret.net_id, case_number=secret.case_number, status="in_progress",
            at="2026-11-20T10:00:00+08:00", step="审查", opinion="涉及国家秘密，转入保密程序"))
    published = _published(settings.public_root).size
    for stage in ("status_publish", "audit_publish", "portal_publish"):
        assert main(["run", stage]) == 0
    assert _published(settings.public_root).size > published
    with opened(settings.public_root, readonly=True) as store:
        assert store is not None and store.sealed(secret.lookup) is None
        assert {(leaf["event_id"], leaf["seq"], leaf.get("entry"))
                for leaf in (store.sealed(kept.lookup) or {})["audit"]} >= {m[1:] for m in moved}
    shown = read_status(settings.public_root, kept.case_number, kept.password)
    assert shown is not None and shown["events"] == document["events"]
    assert {(shown["audit"][str(e)]["seq"], shown["audit"][str(e)]["entry"]) for _, e, _, _ in moved} == {
        m[2:] for m in moved}
    assert _waiting(settings) == withheld  # kept in the internet zone's database, unpublished
