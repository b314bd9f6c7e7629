"""Cases of every origin (counter, ex officio) through the exchange database: registration
by the case-processing system, processing, the public side (no status document, their
双公示 records published), revoked and changed decisions taken down, approved corrections
(第十九条) and the refusal of direct deletions; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest
from exchange_kit import carry_to_processing
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import DatabaseError

from connectors.case_registration import RegistrationRefused, register_cases
from connectors.clock import CST, iso, now
from connectors.corrections import CorrectionRefused, apply_correction
from connectors.db import (
    applications,
    case_corrections,
    case_registrations,
    case_results,
    case_steps,
    cases,
    penalty_cases,
    provenance,
    province_sync,
    publish_withheld,
    query_passwords,
    rejections,
    status_outbox,
    transaction,
)
from connectors.exchange import _changes_in
from connectors.provenance import trace
from connectors.public_feed import disclosure_pages
from connectors.status_store import published_events
from hub import stages
from hub.simulators.processing import offline_registrations, register_offline_cases
from hub.zones import load_catalogue, zone_engine
from quality.data import load_case_frames, load_penalties
from quality.reconciliation import reconcile
from rules.corrections import CorrectionRequest
from rules.publication import status_change

REGISTERED = now().astimezone(CST) - timedelta(days=40)


def _public_disclosures(settings: Any) -> dict[int, dict[str, Any]]:
    return {r["record_id"]: r for page in disclosure_pages(settings.public_root)
            for r in orjson.loads(page.read_bytes())["records"]}


def _publish(settings: Any) -> None:
    stages.status_publish(settings)
    stages.portal_publish(settings)


@pytest.fixture
def offline(hub_settings: Any) -> tuple[Any, list[str]]:
    """Two counter and six ex-officio cases registered 40 days ago and processed to now."""
    engine = zone_engine(hub_settings, "admin")
    numbers = register_offline_cases(engine, load_catalogue(hub_settings), seed=11, at=REGISTERED, counter=2,
                                     ex_officio=6)
    stages.case_processing(hub_settings, seed=11)
    return hub_settings, numbers


def test_the_case_processing_system_registers_cases_with_numbers_and_no_net_id(offline: tuple[Any, list[str]]) -> None:
    settings, numbers = offline
    engine = zone_engine(settings, "admin")
    with engine.connect() as connection:
        rows = {r.case_number: r for r in connection.execute(select(cases).where(cases.c.case_number.in_(numbers)))}
        registered = connection.execute(
            select(status_outbox.c.net_id, status_outbox.c.case_number)
            .where(status_outbox.c.status == "registered", status_outbox.c.case_number.in_(numbers))).all()
        parties = connection.execute(select(case_registrations.c.case_number)).scalars().all()
    assert [rows[n].origin for n in numbers] == ["counter"] * 2 + ["ex_officio"] * 6
    assert all(rows[n].net_id is None and rows[n].registered_at == iso(REGISTERED) for n in numbers)
    assert sorted(parties) == sorted(numbers) and {net for net, _ in registered} == {None}
    assert len(set(numbers)) == 8 and all(n.startswith(rows[n].agency_code) for n in numbers)
    # 第十六条(二): whoever accepted a case, when, and its time limit.
    accepted = [rows[n] for n in numbers if rows[n].accepted_at]
    assert accepted and all(r.acceptor_name and r.acceptor_code and r.time_limit and r.time_limit_unit
                            for r in accepted)
    # The trail of a case without a NET_ID is found by its case number.
    events = trace([("admin", engine)], numbers[0])
    assert [e["stage"] for e in events][:1] == ["case_register"] and len(events) > 1


def test_a_bad_registration_is_refused_whole_with_every_reason(hub_settings: Any) -> None:
    engine = zone_engine(hub_settings, "admin")
    catalogue = load_catalogue(hub_settings)
    good, bad = offline_registrations(catalogue, seed=3, at=REGISTERED, counter=1, ex_officio=1)
    bad = {**bad, "applicant_id_type": "resident_id", "applicant_id_number": "320102198001010010", "summary": "短"}
    licence = next(i for i in catalogue.in_use() if i.category == "XK")
    wrong_origin = {**good, "origin": "ex_officio", "power_code": licence.code}
    with pytest.raises(RegistrationRefused) as refused, transaction(engine) as connection:
        register_cases(connection, [good, bad, wrong_origin], catalogue, at=REGISTERED)
    assert {(i, p.code) for i, found in refused.value.problems.items() for p in found} == {
        (1, "PARTY_ID"), (1, "SUMMARY"), (2, "NOT_EX_OFFICIO")}
    with engine.connect() as connection:
        assert connection.execute(select(cases)).all() == []  # nothing of the batch written


def test_offline_cases_publish_their_decisions_but_no_status_document(offline: tuple[Any, list[str]]) -> None:
    settings, numbers = offline
    engine = zone_engine(settings, "admin")
    _publish(settings)
    with engine.connect() as connection:
        withheld = connection.execute(select(publish_withheld.c.net_id, publish_withheld.c.reason)).all()
        decided = connection.execute(
            select(status_outbox.c.event_id, penalty_cases.c.fine_amount, status_outbox.c.case_number)
            .join(penalty_cases, penalty_cases.c.case_number == status_outbox.c.case_number)
            .where(status_outbox.c.status == "decided", penalty_cases.c.decision == 1)).all()
    assert {key for key, _ in withheld} == set(numbers) and "offline" in {reason for _, reason in withheld}
    # A case marked secret (the simulator marks a few) publishes nothing at all.
    secret = {key for key, reason in withheld if reason != "offline"}
    assert {reason for key, reason in withheld if key in secret} <= {"offline", "secret", "privacy", "minor"}
    decided = [(event_id, fine) for event_id, fine, number in decided if number not in secret]
    assert list(published_events(settings.public_root)) == []
    disclosed = _public_disclosures(settings)
    penalties = {event_id for event_id, record in disclosed.items() if record["kind"] == "penalty"}
    assert decided and {event_id for event_id, _ in decided} == penalties
    # A counter application's licence (XK), once granted, is on the lists too.
    licences = [code for code, item in load_catalogue(settings).items.items() if item.category == "XK"]
    with engine.connect() as connection:
        granted = set(connection.execute(
            select(status_outbox.c.event_id).join(cases, cases.c.case_number == status_outbox.c.case_number).where(
                status_outbox.c.status == "granted", cases.c.power_code.in_(licences),
                status_outbox.c.case_number.in_(set(numbers) - secret))).scalars())
    assert {event_id for event_id, record in disclosed.items() if record["kind"] == "licence"} == granted
    for event_id, fine in decided:
        assert disclosed[event_id]["kind"] == "penalty"
        assert disclosed[event_id]["fine_amount"] == f"{fine // 100}.{fine % 100:02d}"
    # Reconciliation counts them and still balances.
    counts = reconcile(zone_engine(settings, "internet"), engine, settings.public_root)
    assert counts["cases_by_origin"] == {"internet": 0, "counter": 2, "ex_officio": 6}
    assert counts["balanced"], counts["checks"]
    # The quality suites see every origin.
    frames = load_case_frames(engine)
    assert set(numbers) <= set(frames["cases"]["case_number"])
    assert set(frames["cases"].query("origin != 'internet'")["registration_present"]) == {True}
    assert {event_id for event_id, _ in decided} and len(load_penalties(engine)) >= len(decided)


def _given(first: Any, second: Any) -> Any:
    return second if first is None else first


def _joined_change(connection: Any, event_id: int) -> dict[str, Any]:
    """One outbox row joined with its case's tables, by itself: what ``_changes_in`` must
    give each change of a batch."""
    row = dict(connection.execute(select(status_outbox).where(status_outbox.c.event_id == event_id)).mappings().one())
    by_net_id = {"application": applications, "rejection": rejections, "password": query_passwords}
    by_number = {"case": cases, "registration": case_registrations, "penalty": penalty_cases,
                 "result": case_results}
    found: dict[str, dict[str, Any]] = {}
    for name, table in by_net_id.items():
        hit = connection.execute(select(table).where(table.c.net_id == row["net_id"])).mappings().first()
        found[name] = dict(hit) if hit else {}
    for name, table in by_number.items():
        hit = connection.execute(select(table).where(table.c.case_number == row["case_number"])).mappings().first()
        found[name] = dict(hit) if hit else {}
    application, case, registration, penalty = found["application"], found["case"], found["registration"], found["penalty"]
    # The application's party where it has one (an internet case), else the case's own.
    party = {name: _given(application.get(name), case.get(name)) for name in ("power_code", "agency_code")}
    party |= {name: _given(application.get(name), registration.get(name))
              for name in ("case_name", "applicant_type", "applicant_name", "applicant_id_number")}
    return row | party | {
        "secret": case.get("secret"), "privacy": case.get("privacy"), "origin": case.get("origin"),
        "lookup": found["password"].get("lookup"),
        "penalty_kinds": penalty.get("penalty_kinds"), "fine_amount": penalty.get("fine_amount"),
        "decision": penalty.get("decision"), "penalty_decided_at": penalty.get("decided_at"),
        "case_result": found["result"].get("result"), "rejected_envelope": found["rejection"].get("envelope"),
    }


def test_a_batch_reads_each_change_with_its_own_case(offline: tuple[Any, list[str]]) -> None:
    """status_publish reads a batch's cases once each, not once per change: every change
    must still come with its own case's data, its penalty only on a decision."""
    settings, _ = offline
    carry_to_processing(settings, 40, seed=5)
    catalogue = load_catalogue(settings)
    with zone_engine(settings, "admin").connect() as connection:
        first, last = connection.execute(select(func.min(status_outbox.c.event_id), func.max(status_outbox.c.event_id))).one()
        batch = list(_changes_in(connection, first, last, catalogue))
        expected = [status_change(_joined_change(connection, change.event_id), catalogue) for change in batch]
    assert [change.event_id for change in batch] == list(range(first, last + 1))
    assert batch == expected
    # The batch holds what the grouping could get wrong: cases of every origin, rejected
    # applications (party from the envelope), cases with several changes, penalties.
    assert {change.origin for change in batch} == {"internet", "counter", "ex_officio"}
    assert any(change.case_number is None and change.power_code for change in batch)
    assert len({(change.net_id, change.case_number) for change in batch}) < len(batch) / 2
    penalised = {change.case_number for change in batch if change.penalty is not None}
    assert penalised and any(change.case_number in penalised and change.penalty is None for change in batch)


def _decided_penalty(settings: Any) -> tuple[str, int]:
    """The first decision to penalise of a case not marked secret (whose record is public)."""
    with zone_engine(settings, "admin").connect() as connection:
        number, event_id = connection.execute(
            select(status_outbox.c.case_number, status_outbox.c.event_id)
            .join(penalty_cases, penalty_cases.c.case_number == status_outbox.c.case_number)
            .join(cases, cases.c.case_number == status_outbox.c.case_number)
            .where(status_outbox.c.status == "decided", penalty_cases.c.decision == 1, ~cases.c.secret,
                   ~cases.c.privacy)
            .order_by(status_outbox.c.event_id)).first()
    return number, event_id


def test_a_revoked_decision_is_taken_down_and_a_changed_one_replaced(offline: tuple[Any, list[str]]) -> None:
    settings, _ = offline
    engine = zone_engine(settings, "admin")
    _publish(settings)
    number, decided_event = _decided_penalty(settings)
    assert decided_event in _public_disclosures(settings)
    # The case-processing system changes the fine (行政复议变更) ...
    at = iso(now())
    with transaction(engine) as connection:
        connection.execute(update(penalty_cases).where(penalty_cases.c.case_number == number)
                           .values(fine_amount=123_400))
        changed = connection.execute(insert(status_outbox).values(
            net_id=None, case_number=number, status="decision_changed", at=at, step="复议",
            opinion="经行政复议，变更罚款数额").returning(status_outbox.c.event_id)).scalar_one()
    _publish(settings)
    disclosed = _public_disclosures(settings)
    assert decided_event not in disclosed and disclosed[changed]["fine_amount"] == "1234.00"
    # ... and later revokes it (撤销): nothing of it stays on the lists.
    with transaction(engine) as connection:
        connection.execute(update(cases).where(cases.c.case_number == number).values(state="revoked", updated_at=at))
        connection.execute(insert(status_outbox).values(
            net_id=None, case_number=number, status="revoked", at=at, step="撤销", opinion="经行政诉讼判决撤销"))
    _publish(settings)
    disclosed = _public_disclosures(settings)
    assert decided_event not in disclosed and changed not in disclosed


def test_an_approved_correction_is_recorded_sent_and_published(offline: tuple[Any, list[str]]) -> None:
    settings, _ = offline
    engine = zone_engine(settings, "admin")
    _publish(settings)
    number, decided_event = _decided_penalty(settings)
    request = CorrectionRequest(
        target="penalty_cases", key={"case_number": number}, action="set", changes={"fine_amount": 250_000},
        reason="罚款数额录入错误，按处罚决定书更正", requested_by="王建国", approved_by="李秀英")
    applied = apply_correction(engine, request)
    assert applied.after == {"fine_amount": 250_000} and applied.public_change is not None
    with engine.connect() as connection:
        row = connection.execute(select(case_corrections)).one()
        marks = dict(connection.execute(select(province_sync.c.kind, province_sync.c.mark).where(
            province_sync.c.record_key.in_([number, f"{number}/c{row.id}"]))).all())
        events = connection.execute(select(provenance.c.stage, provenance.c.detail)
                                    .where(provenance.c.stage == "correction")).all()
    assert (row.state, row.reason, row.requested_by, row.approved_by) == (
        "applied", request.reason, "王建国", "李秀英")
    assert row.before["fine_amount"] != 250_000 and row.after == {"fine_amount": 250_000}
    assert marks == {"penalty": "pending"}  # the corrected row goes again; the scan adds the correction
    assert events[0].detail["correction_id"] == row.id and events[0].detail["approved_by"] == "李秀英"
    _publish(settings)
    disclosed = _public_disclosures(settings)
    assert decided_event not in disclosed and disclosed[applied.public_change]["fine_amount"] == "2500.00"


@pytest.mark.parametrize(("change", "problem"), [
    ({"approved_by": "王建国"}, "审批人不能是申请人本人"),
    ({"reason": "错了"}, "须写明更正理由"),
    ({"action": "delete", "changes": {}}, "只能更正"),
    ({"changes": {"case_number": "X"}}, "不可更正的字段"),
])
def test_a_correction_without_reason_approver_or_right_is_refused(
    offline: tuple[Any, list[str]], change: dict[str, Any], problem: str,
) -> None:
    settings, numbers = offline
    engine = zone_engine(settings, "admin")
    values: dict[str, Any] = {
        "target": "penalty_cases", "key": {"case_number": numbers[-1]}, "action": "set",
        "changes": {"facts": "经查，当事人超范围经营"}, "reason": "事实认定表述有误，依法更正",
        "requested_by": "王建国", "approved_by": "李秀英", **change}
    with pytest.raises(CorrectionRefused, match=problem):
        apply_correction(engine, CorrectionRequest(**values))
    with engine.connect() as connection:
        assert connection.execute(select(case_corrections)).all() == []


def test_case_data_is_deleted_only_through_a_correction(offline: tuple[Any, list[str]]) -> None:
    settings, numbers = offline
    engine = zone_engine(settings, "admin")
    number = numbers[0]
    for statement in (delete(case_steps).where(case_steps.c.case_number == number),
                      delete(cases).where(cases.c.case_number == number),
                      delete(status_outbox).where(status_outbox.c.case_number == number),
                      update(status_outbox).where(status_outbox.c.case_number == number).values(opinion="x")):
        with pytest.raises(DatabaseError, match="hub correct|append-only"), engine.begin() as connection:
            connection.execute(statement)
    with engine.connect() as connection:
        steps = connection.execute(select(case_steps.c.step_no).where(case_steps.c.case_number == number)
                                   .order_by(case_steps.c.step_no)).scalars().all()
    applied = apply_correction(engine, CorrectionRequest(
        target="case_steps", key={"case_number": number, "step_no": steps[-1]}, action="delete",
        reason="重复录入的环节，经核实删除", requested_by="王建国", approved_by="李秀英"))
    with engine.connect() as connection:
        left = connection.execute(select(case_steps.c.step_no).where(case_steps.c.case_number == number)
                                  .order_by(case_steps.c.step_no)).scalars().all()
    assert left == steps[:-1] and applied.before["step_no"] == steps[-1] and applied.after is None


def test_a_crash_after_the_put_rebuilds_offline_disclosures_byte_for_byte(offline: tuple[Any, list[str]]) -> None:
    from dataclasses import replace

    from connectors.exchange import publish_status
    from ferry.transport import LocalFolderTransport

    settings, _ = offline

    class CrashAfterPut(LocalFolderTransport):
        def put(self, name: str, source: Any) -> None:
            super().put(name, source)
            raise RuntimeError("crash after put")

    sender = replace(stages.channel_sender(settings, "outbound"),
                     transport=CrashAfterPut(settings.channel_dir("outbound")))
    with pytest.raises(RuntimeError, match="crash after put"):
        publish_status(sender, catalogue=load_catalogue(settings))
    assert stages.portal_publish(settings)["applied"] == ["outbound#1"]
    disclosed = _public_disclosures(settings)
    assert disclosed  # the ex-officio decisions' records went in the crashed bundle
    # Rebuilt from the ledger with the offline cases' 双公示 records: the same bytes.
    assert stages.status_publish(settings)["bundles"] == ["outbound#1"]
    assert stages.portal_publish(settings)["duplicates"] == ["outbound#1"]
    assert _public_disclosures(settings) == disclosed


def test_a_correction_is_in_the_audit_trail_and_a_rewritten_one_is_named(offline: tuple[Any, list[str]]) -> None:
    from connectors import audit as audit_log
    from hub.audit import checkpoint_zones, verify_zone

    settings, numbers = offline
    engine = zone_engine(settings, "admin")
    apply_correction(engine, CorrectionRequest(
        target="case_registrations", key={"case_number": numbers[0]}, action="set",
        changes={"summary": "窗口申请，材料当场核对齐全"}, reason="摘要录入不完整，经核实更正",
        requested_by="王建国", approved_by="李秀英"))
    checkpoint_zones(settings)
    assert verify_zone(settings, "admin").findings == []
    # Someone with database access makes the correction look approved by another person.
    with transaction(engine) as connection:
        connection.execute(update(case_corrections).values(approved_by="赵丽"))
    first = verify_zone(settings, "admin").first
    assert first is not None
    assert (first.code, first.table, first.field) == (audit_log.ROW_CHANGED, "case_corrections", "approved_by")
