"""The whole loop as real Airflow DAG runs (dag.test() on a migrated SQLite metadata
database), checked record by record against the generator's ground truth."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from rules.identifiers import is_valid_resident_id

RESIDENT_ID_RUN = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")


@pytest.fixture(scope="module", params=["intl", "gm"])
def loop(request: pytest.FixtureRequest, airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The loop once per crypto suite (HUB_CRYPTO_SUITE): every check below holds on both."""
    import os

    from hub import demo

    data_root = tmp_path_factory.mktemp(f"e2e-{request.param}") / "data"
    saved = os.environ.get("HUB_DATA_ROOT")
    os.environ["HUB_DATA_ROOT"] = str(data_root)
    os.environ["HUB_CRYPTO_SUITE"] = request.param
    try:
        truth = demo.prepare_batch(data_root, count=150, seed=11)
        with demo.registered_as_submitted():
            states = demo.run_loop(demo.REGISTRATION)
        states.update(demo.run_loop(demo.LOOP[len(demo.REGISTRATION):]))
        states.update(demo.run_loop(("supervision",)))
        counts = demo.summary()
        from hub.settings import load_settings

        settings = load_settings()
        yield {"truth": truth, "states": states, "counts": counts, "settings": settings, "suite": request.param}
    finally:
        os.environ.pop("HUB_CRYPTO_SUITE", None)
        if saved is None:
            os.environ.pop("HUB_DATA_ROOT", None)
        else:
            os.environ["HUB_DATA_ROOT"] = saved


pytestmark = pytest.mark.airflow


def test_every_dag_run_succeeds(loop: dict[str, Any]) -> None:
    assert set(loop["states"].values()) == {"success"}


def test_supervision_counts_every_accepted_case_or_says_why_not(loop: dict[str, Any]) -> None:
    from sqlalchemy import func

    from connectors.alarms import open_alarm_rows
    from connectors.db import case_steps, cases, province_sync, supervision_clocks
    from connectors.supervision import CALENDAR_GAP_ALARM
    from hub.zones import zone_engine

    with zone_engine(loop["settings"], "admin").connect() as admin:
        accepted = admin.execute(select(func.count()).where(cases.c.accepted_at.is_not(None))).scalar_one()
        clocked = admin.execute(select(func.count(func.distinct(supervision_clocks.c.case_number))).where(
            supervision_clocks.c.step_no == 0, supervision_clocks.c.basis == "promised")).scalar_one()
        gaps = open_alarm_rows(admin, CALENDAR_GAP_ALARM)
        uncounted = sum(g.detail["uncounted_cases"] for g in gaps)
        registered = {c: r for c, r in admin.execute(select(cases.c.case_number, cases.c.updated_at))}
        early = admin.execute(select(func.count()).select_from(case_steps)).scalar_one()
        alerts = [r.record for r in admin.execute(select(province_sync).where(province_sync.c.kind == "alert"))]
    assert accepted > 0 and registered and early > 0
    assert clocked + uncounted == accepted  # counted, or named in the CALENDAR_GAP alarm
    assert all(g.detail["year"] > 2026 for g in gaps)
    page = loop["settings"].quality_root / "supervision" / "index.html"  # the DAG's second task
    assert "监察室" in page.read_text("utf-8") and (page.parent / "chart.umd.min.js").exists()
    for record in alerts:
        assert set(record) <= {"record_key", "case_number", "step_no", "rule", "level", "state", "raised_at",
                               "escalated_at", "cleared_at", "detail"}


def test_every_application_ends_exactly_as_expected(loop: dict[str, Any]) -> None:
    from connectors.db import applications, quarantine, rejections
    from hub.zones import zone_engine

    settings = loop["settings"]
    with zone_engine(settings, "admin").connect() as admin:
        accepted = dict(admin.execute(select(applications.c.net_id, applications.c.case_number)).all())
        rejected = {n: sorted({r["code"] for r in rs}) for n, rs in admin.execute(select(rejections.c.net_id, rejections.c.reasons))}
    with zone_engine(settings, "internet").connect() as internet:
        held = dict(internet.execute(select(quarantine.c.ref, quarantine.c.code)).all())
    outcomes: dict[str, Any] = {}
    for net_id in accepted:
        outcomes[net_id] = {"outcome": "accepted"}
    for net_id, codes in rejected.items():
        assert net_id not in outcomes
        outcomes[net_id] = {"outcome": "rejected", "codes": codes}
    for net_id, code in held.items():
        assert net_id not in outcomes
        outcomes[net_id] = {"outcome": "quarantined", "code": code}
    assert outcomes == loop["truth"]
    kinds = {o["outcome"] for o in loop["truth"].values()}
    assert kinds == {"accepted", "rejected", "quarantined"}
    assert len(set(accepted.values())) == len(accepted)
    assert all(re.fullmatch(rf"{settings.agency_code}[0-9]{{10}}", c) for c in accepted.values())


def _passwords(settings: Any) -> dict[str, tuple[str, str]]:
    """NET_ID → (lookup key, query password) as the administration side handed them out."""
    from connectors.db import query_passwords
    from hub.zones import zone_engine

    with zone_engine(settings, "admin").connect() as admin:
        rows = admin.execute(
            select(query_passwords.c.net_id, query_passwords.c.case_number, query_passwords.c.password)
        ).all()
    return {n: (c or n, p) for n, c, p in rows}


def _withheld(settings: Any) -> dict[str, set[str]]:
    """NET_ID → the reasons its status changes were withheld from publication."""
    from connectors.db import publish_withheld
    from hub.zones import zone_engine

    found: dict[str, set[str]] = {}
    with zone_engine(settings, "admin").connect() as admin:
        for net_id, reason in admin.execute(select(publish_withheld.c.net_id, publish_withheld.c.reason)):
            found.setdefault(net_id, set()).add(reason)
    return found


def _minors(settings: Any) -> dict[str, str]:
    """NET_ID → case number of every accepted application whose applicant is a minor."""
    from connectors.db import applications
    from hub.zones import zone_engine
    from rules.publication import is_minor_at

    with zone_engine(settings, "admin").connect() as admin:
        rows = admin.execute(
            select(applications.c.net_id, applications.c.case_number, applications.c.applicant_type,
                   applications.c.applicant_id_number, applications.c.registered_at)
        ).all()
    return {
        r.net_id: r.case_number
        for r in rows
        if r.applicant_type == "person" and is_minor_at(r.applicant_id_number, r.registered_at)
    }


def test_every_published_application_is_found_only_with_its_password(loop: dict[str, Any]) -> None:
    from connectors.status_store import legacy_documents, opened, read_status
    from rules.query_password import lookup_name

    settings = loop["settings"]
    assert list(legacy_documents(settings.public_root)) == []  # every document is in the store
    passwords = _passwords(settings)
    minors = _minors(settings)
    withheld = _withheld(settings)
    assert set(minors) <= set(withheld)
    assert all(withheld[n] == {"minor"} for n in minors)
    with opened(settings.public_root, readonly=True) as store:
        assert store is not None
        for net_id, expected in loop["truth"].items():
            if expected["outcome"] == "quarantined":
                assert net_id not in passwords
                continue
            key, password = passwords[net_id]
            if net_id in withheld:  # minors and cases marked secret
                assert store.sealed(lookup_name(key, password)) is None
                continue
            document = read_status(settings.public_root, key, password)
            assert document is not None and document["net_id"] == net_id and document["events"], net_id
            if expected["outcome"] == "accepted":
                assert document["case_number"] == key and document["events"][0]["status"] == "registered"
            else:
                assert document["status"] == "rejected"
                assert sorted({r["code"] for r in document["events"][0]["reasons"]}) == expected["codes"]
            wrong = "3467ACDE" if password != "3467ACDE" else "9YXWVUTR"
            assert read_status(settings.public_root, key, wrong) is None


def _public_text(path: Path) -> str:
    """A public file as text; the audit log's tiles (public/audit/tile/) are binary and hold
    nothing but 32-byte hashes of salted leaf entries (docs/audit.md §10), checked as such."""
    parts = path.parts
    if any(parts[i:i + 2] == ("audit", "tile") for i in range(len(parts) - 1)):
        data = path.read_bytes()
        assert data and len(data) % 32 == 0, path
        return ""
    return path.read_text("utf-8")


def test_a_minors_case_never_appears_in_any_public_file(loop: dict[str, Any]) -> None:
    from rules.query_password import lookup_name

    settings = loop["settings"]
    minors = _minors(settings)
    assert minors, "the generator plans minors among the accepted applications"
    passwords = _passwords(settings)
    needles = set()
    for net_id, case_number in minors.items():
        needles |= {net_id, case_number, lookup_name(*passwords[net_id])}
    for path in (p for p in settings.public_root.rglob("*") if p.is_file()):
        text = _public_text(path)
        assert not [n for n in needles if n in text or n in path.name], path
    # Nor in the store beside the public folder: not as a name, not as a readable byte.
    from connectors.status_store import store_path
    from rules.query_password import lookup_bytes

    stored = store_path(settings.public_root).read_bytes()
    assert not [n for n in needles if n.encode("utf-8") in stored]
    assert not [n for n in minors if lookup_bytes(lookup_name(*passwords[n])) in stored]
    assert loop["counts"]["status_changes_withheld"] >= len(minors)


def test_every_field_of_every_published_record_is_allow_listed(loop: dict[str, Any]) -> None:
    import schemas
    from connectors.public_feed import disclosure_pages
    from rules.publication import DISCLOSURE_FIELDS, STATUS_EVENT_FIELDS
    from tests.connectors.public_site_kit import published_documents

    public = loop["settings"].public_root
    events = [e for document in published_documents(loop["settings"]) for e in document["events"]]
    assert events
    for event in events:
        assert set(event) <= STATUS_EVENT_FIELDS, set(event) - STATUS_EVENT_FIELDS
        assert list(schemas.errors("status_event", event)) == [], event
    disclosures = [
        r for p in disclosure_pages(public) for r in json.loads(p.read_text("utf-8"))["records"]
    ]
    assert {r["kind"] for r in disclosures} == {"licence", "penalty"}
    for record in disclosures:
        assert set(record) <= DISCLOSURE_FIELDS, set(record) - DISCLOSURE_FIELDS
        assert list(schemas.errors("disclosure_record", record)) == [], record


def test_no_public_index_maps_ids_to_documents(loop: dict[str, Any]) -> None:
    public = loop["settings"].public_root
    assert {"index.html", "status.js", "config.json"} <= {p.name for p in public.iterdir()}
    status = public / "status"
    for path in (p for p in public.rglob("*") if p.is_file() and status not in p.parents):
        assert not re.search(r"NET[0-9]{8}", _public_text(path)), path


def test_no_public_file_contains_an_unmasked_resident_id(loop: dict[str, Any]) -> None:
    files = [p for p in loop["settings"].public_root.rglob("*") if p.is_file()]
    assert files
    for path in files:
        text = _public_text(path)
        found = [m for m in RESIDENT_ID_RUN.findall(text) if is_valid_resident_id(m.upper())]
        assert not found, f"{path.name} publishes resident IDs"


def test_counts_balance(loop: dict[str, Any]) -> None:
    counts = loop["counts"]
    truth = loop["truth"]
    assert counts["balanced"], counts["checks"]
    assert counts["submitted"] == len(truth)
    assert counts["accepted"] == sum(o["outcome"] == "accepted" for o in truth.values())
    assert counts["quarantined"] == sum(o["outcome"] == "quarantined" for o in truth.values())
    assert counts["in_flight"] == 0


def test_trace_shows_the_whole_path(loop: dict[str, Any]) -> None:
    from connectors.provenance import trace
    from hub.zones import zone_engine

    settings = loop["settings"]
    net_id = next(n for n, o in sorted(loop["truth"].items()) if o["outcome"] == "accepted")
    events = trace([(z, zone_engine(settings, z)) for z in ("internet", "admin")], net_id)
    stages = [e["stage"] for e in events]
    for stage in ("intake", "inbound_receive", "applications_load", "processing", "status_publish", "portal_publish"):
        assert stage in stages, (stage, stages)
    assert stages.index("intake") < stages.index("inbound_receive") < stages.index("applications_load")


def test_every_bundle_on_both_channels_is_signed_and_sealed_with_the_selected_suite(loop: dict[str, Any]) -> None:
    from hub.ferry_ops import verify_file

    settings, suite = loop["settings"], loop["suite"]
    verified = [
        verify_file(settings, path, channel)
        for channel in ("inbound", "outbound")
        for path in sorted(settings.outbox_dir(channel).glob("*.peb"))
    ]
    assert len(verified) >= 2 and all(v["ok"] for v in verified), verified
    assert {v["sender_key_id"].split(":")[0] for v in verified} == {suite}
    assert {v["channel"] for v in verified} == {"inbound", "outbound"}
    for zone in ("internet", "admin"):
        names = [f.name for f in (settings.keys_dir(zone) / "public").iterdir()]
        assert names and all(name.split(".")[1].startswith(f"{suite}_") for name in names), names
