"""The supervision pass in the exchange database (SQLite and PostgreSQL): clocks across the
2026 Spring Festival, alerts raised, escalated, lifted and closed, incremental work, 挂起
pauses, supervision orders, the 2027 calendar gap, and a crash in the middle of a pass."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update

from connectors import supervision
from connectors.alarms import open_alarm_rows
from connectors.clock import CST
from connectors.db import (
    applications,
    bulk_insert,
    case_pauses,
    case_results,
    cases,
    province_sync,
    status_outbox,
    supervision_alerts,
    supervision_clocks,
    transaction,
)
from hub.zones import load_catalogue
from rules.alerts import PRESETS
from rules.calendar import parse_working_hours
from rules.catalogue import Catalogue, build_catalogue, catalogue_from_versions

HOURS = parse_working_hours("09:00-12:00,13:30-17:30")
CODE = "113201000123456713XK00000000001"


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=CST)  # type: ignore[misc]


def _document(promised: int = 3, statutory: int = 5) -> dict[str, Any]:
    from hub.settings import load_settings

    base = next(dict(i.document) for i in load_catalogue(load_settings()).items.values() if i.code == CODE)
    document = copy.deepcopy(base)
    document.update(promised_limit_days=promised, statutory_limit_days=statutory, limit_unit="working_days")
    return document


@pytest.fixture
def catalogue() -> Catalogue:
    return build_catalogue([_document()])


def add_case(engine: Engine, serial: int, *, registered: datetime, accepted: datetime | None,
             state: str = "accepted", applicant: str = "张三丰") -> str:
    number = f"3201000001{serial:010d}"
    with transaction(engine) as connection:
        connection.execute(applications.insert().values(
            net_id=f"NET20260213{serial:06d}", case_number=number, power_code=CODE, power_version=1,
            agency_code="3201000001", case_name="公路超限运输许可", applicant_type="person",
            applicant_name=applicant, applicant_id_type="resident_id", applicant_id_number="11010519491231002X",
            submitted_at=registered.isoformat(), registered_at=registered.isoformat(), bundle="b", envelope="{}"))
        connection.execute(cases.insert().values(
            case_number=number, net_id=f"NET20260213{serial:06d}", state=state, updated_at=registered.isoformat(),
            accepted_at=accepted.isoformat() if accepted else None, power_code=CODE, power_version=1,
            agency_code="3201000001", registered_at=registered.isoformat()))
        connection.execute(status_outbox.insert().values(
            net_id=f"NET20260213{serial:06d}", case_number=number, status=state, at=registered.isoformat()))
    return number


def change(engine: Engine, number: str, state: str, moment: datetime, **values: Any) -> None:
    """What the case-processing system writes with a transition: the case row and a status change."""
    with transaction(engine) as connection:
        connection.execute(update(cases).where(cases.c.case_number == number).values(
            state=state, updated_at=moment.isoformat(), **values))
        connection.execute(status_outbox.insert().values(
            net_id="NET-" + number, case_number=number, status=state, at=moment.isoformat()))


def run(engine: Engine, catalogue: Catalogue, moment: datetime, policy: str = "JS-2013A") -> supervision.PassReport:
    return supervision.run_pass(engine, catalogue=catalogue, policy=PRESETS[policy], periods=HOURS, at=moment)


def alerts(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(select(supervision_alerts).order_by(supervision_alerts.c.id)))


def test_js_2013a_reminder_warning_alarm_across_the_spring_festival(exchange_engine: Engine, catalogue: Catalogue) -> None:
    # Accepted Fri 13 Feb 2026: Sat 14 is a make-up day, 15-23 the festival. Promised 3
    # working days: due Wed 25 Feb 17:30; statutory 5: due Fri 27 Feb 17:30.
    number = add_case(exchange_engine, 1, registered=at(2026, 2, 12, 10), accepted=at(2026, 2, 13, 10))
    report = run(exchange_engine, catalogue, at(2026, 2, 24, 10))
    assert report.cases == 1 and report.raised == 0
    with exchange_engine.connect() as connection:
        clock = connection.execute(select(supervision_clocks).where(
            supervision_clocks.c.basis == "promised", supervision_clocks.c.step_no == 0)).one()
    assert clock.due_at == at(2026, 2, 25, 17, 30).isoformat()
    assert clock.used_seconds == 7 * 3600 + 3600  # Sat 14 and Tue 24 09:00-10:00
    assert clock.state == "running" and clock.department == "行政审批处"
    # The next check is when the last promised day begins (reminder): Tue 24 17:30 of working time.
    assert clock.next_check_at == at(2026, 2, 24, 17, 30).isoformat()

    run(exchange_engine, catalogue, at(2026, 2, 25, 10))
    [reminder] = alerts(exchange_engine)
    assert (reminder.rule, reminder.level, reminder.state) == ("CASE_PROMISED_LIMIT", "reminder", "open")
    run(exchange_engine, catalogue, at(2026, 2, 27, 10))  # 8 working hours late: > 1 working day
    [warning] = alerts(exchange_engine)
    assert (warning.id, warning.level, warning.escalated_at) == (reminder.id, "warning", at(2026, 2, 27, 10).isoformat())
    run(exchange_engine, catalogue, at(2026, 3, 2, 10))  # 15 working hours late; statutory passed
    found = {(a.rule, a.level, a.state) for a in alerts(exchange_engine)}
    assert found == {("CASE_PROMISED_LIMIT", "alarm", "open"), ("CASE_STATUTORY_LIMIT", "alarm", "open")}
    # Running the same pass again changes nothing and raises nothing twice.
    again = run(exchange_engine, catalogue, at(2026, 3, 2, 10))
    assert (again.raised, again.escalated) == (0, 0) and len(alerts(exchange_engine)) == 2
    # Finished late: the conditions clear, so the alerts are lifted (not closed as on time).
    change(exchange_engine, number, "granted", at(2026, 3, 2, 11))
    with transaction(exchange_engine) as connection:
        connection.execute(case_results.insert().values(
            case_number=number, result=2, finished_at=at(2026, 3, 2, 11).isoformat(), note="准予许可", fee_due=0, fee_paid=0))
    run(exchange_engine, catalogue, at(2026, 3, 2, 11, 5))
    assert {(a.state, a.lifted_at is not None, a.open_key) for a in alerts(exchange_engine)} == {("lifted", True, None)}
    # Every version of every alert went to the province feed, without personal data.
    with exchange_engine.connect() as connection:
        sent = connection.execute(select(province_sync).where(province_sync.c.kind == "alert")).all()
    assert sorted(int(r.record_key) for r in sent) == [a.id for a in alerts(exchange_engine)]
    text = json.dumps([r.record for r in sent], ensure_ascii=False)
    assert "张三丰" not in text and "11010519491231002X" not in text
    assert {r.record["state"] for r in sent} == {"lifted"}


def test_js_2013b_warns_at_four_fifths_and_finishing_on_time_closes(exchange_engine: Engine, catalogue: Catalogue) -> None:
    number = add_case(exchange_engine, 2, registered=at(2026, 3, 2, 9), accepted=at(2026, 3, 2, 10))
    # Promised 3 working days from Tue 3 Mar: 4/5 = 2.4 days used at Thu 5 Mar 11:48.
    run(exchange_engine, catalogue, at(2026, 3, 5, 11, 47), "JS-2013B")
    assert alerts(exchange_engine) == []
    run(exchange_engine, catalogue, at(2026, 3, 5, 11, 49), "JS-2013B")
    [warning] = alerts(exchange_engine)
    assert (warning.rule, warning.level) == ("CASE_PROMISED_LIMIT", "warning")
    change(exchange_engine, number, "granted", at(2026, 3, 5, 15))
    with transaction(exchange_engine) as connection:
        connection.execute(case_results.insert().values(
            case_number=number, result=2, finished_at=at(2026, 3, 5, 15).isoformat(), note="准予许可", fee_due=0, fee_paid=0))
    run(exchange_engine, catalogue, at(2026, 3, 5, 15, 5), "JS-2013B")
    [closed] = alerts(exchange_engine)
    assert (closed.state, closed.closed_at) == ("closed", at(2026, 3, 5, 15, 5).isoformat())


def test_the_pass_is_incremental(exchange_engine: Engine, catalogue: Catalogue) -> None:
    numbers = [add_case(exchange_engine, n, registered=at(2026, 3, 2, 9), accepted=at(2026, 3, 2, 10))
               for n in range(10, 20)]
    assert run(exchange_engine, catalogue, at(2026, 3, 3, 10)).cases == 10
    assert run(exchange_engine, catalogue, at(2026, 3, 3, 10, 15)).cases == 0  # nothing changed, no threshold reached
    change(exchange_engine, numbers[3], "in_progress", at(2026, 3, 3, 10, 20))
    assert run(exchange_engine, catalogue, at(2026, 3, 3, 10, 30)).cases == 1
    # Mon 3 Mar + 3 working days: the last promised day starts Thu 5 Mar 09:00 for all ten.
    report = run(exchange_engine, catalogue, at(2026, 3, 5, 9, 5))
    assert (report.cases, report.raised) == (10, 10)


def test_a_correction_pause_moves_the_due_time(exchange_engine: Engine, catalogue: Catalogue) -> None:
    number = add_case(exchange_engine, 3, registered=at(2026, 3, 2, 9), accepted=at(2026, 3, 2, 10))
    with transaction(exchange_engine) as connection:
        bulk_insert(connection, case_pauses, [{"case_number": number, "pause_no": 1, "kind": "correction",
                                               "started_at": at(2026, 3, 3, 9).isoformat(),
                                               "ended_at": at(2026, 3, 4, 9).isoformat(), "note": "补正"}])
    change(exchange_engine, number, "in_progress", at(2026, 3, 4, 9))
    run(exchange_engine, catalogue, at(2026, 3, 4, 10))
    with exchange_engine.connect() as connection:
        clock = connection.execute(select(supervision_clocks).where(
            supervision_clocks.c.basis == "promised", supervision_clocks.c.step_no == 0)).one()
    assert clock.paused_seconds == 7 * 3600
    assert clock.due_at == at(2026, 3, 6, 17, 30).isoformat()  # Thu 5 Mar without the pause


def test_item_suspension_pauses_open_cases_until_it_is_resumed(exchange_engine: Engine) -> None:
    document = _document(promised=3, statutory=5)
    suspended = {**document, "version": 2, "state": "T"}
    resumed = {**document, "version": 3, "state": "A"}
    history = catalogue_from_versions([(document, at(2026, 1, 1)), (suspended, at(2026, 3, 3, 9)),
                                       (resumed, at(2026, 3, 5, 9))])
    add_case(exchange_engine, 4, registered=at(2026, 3, 2, 9), accepted=at(2026, 3, 2, 10))
    run(exchange_engine, history, at(2026, 3, 6, 10))
    with exchange_engine.connect() as connection:
        clock = connection.execute(select(supervision_clocks).where(
            supervision_clocks.c.basis == "promised", supervision_clocks.c.step_no == 0)).one()
    assert clock.paused_seconds == 2 * 7 * 3600  # Tue 3 and Wed 4 Mar
    assert clock.due_at == at(2026, 3, 9, 17, 30).isoformat()
    # A case registered while the item was suspended is a conduct alarm.
    add_case(exchange_engine, 5, registered=at(2026, 3, 4, 9), accepted=None, state="registered")
    run(exchange_engine, history, at(2026, 3, 6, 10, 15))
    assert [(a.rule, a.level) for a in alerts(exchange_engine) if a.case_number.endswith("5")] == [("ITEM_NOT_IN_USE", "alarm")]


def test_supervision_orders_raise_when_not_started_or_not_finished_by_the_deadline(
    exchange_engine: Engine, catalogue: Catalogue,
) -> None:
    number = add_case(exchange_engine, 6, registered=at(2026, 3, 2, 9), accepted=at(2026, 3, 2, 10))
    order = supervision.issue_order(exchange_engine, case_number=number, issued_by="监察室 李明",
                                    instruction="请于3月4日前说明进度", deadline=at(2026, 3, 4, 17), at=at(2026, 3, 3, 9))
    run(exchange_engine, catalogue, at(2026, 3, 3, 9, 30))
    assert alerts(exchange_engine) == []
    run(exchange_engine, catalogue, at(2026, 3, 4, 17, 15))
    [late] = [a for a in alerts(exchange_engine) if a.rule.startswith("ORDER")]
    assert (late.rule, late.level, late.step_no) == ("ORDER_NOT_STARTED", "alarm", order)
    supervision.answer_order(exchange_engine, order, by="审批处 王芳", answer="已开始核查", at=at(2026, 3, 4, 17, 20))
    run(exchange_engine, catalogue, at(2026, 3, 4, 17, 25))
    rows = {(a.rule, a.state) for a in alerts(exchange_engine) if a.rule.startswith("ORDER")}
    assert rows == {("ORDER_NOT_STARTED", "lifted"), ("ORDER_NOT_FINISHED", "open")}
    supervision.close_order(exchange_engine, order, by="监察室 李明", note="已办结", at=at(2026, 3, 4, 17, 30))
    run(exchange_engine, catalogue, at(2026, 3, 4, 17, 35))
    assert {a.state for a in alerts(exchange_engine) if a.rule.startswith("ORDER")} == {"lifted"}
    with pytest.raises(Exception, match="closed"):
        supervision.close_order(exchange_engine, order, by="x", note="again")


def test_negative_decision_without_reasons_is_an_alarm(exchange_engine: Engine, catalogue: Catalogue) -> None:
    number = add_case(exchange_engine, 7, registered=at(2026, 3, 2, 9), accepted=None, state="registered")
    with transaction(exchange_engine) as connection:
        connection.execute(case_results.insert().values(
            case_number=number, result=1, finished_at=at(2026, 3, 2, 11).isoformat(), note=" ", fee_due=0, fee_paid=0))
    change(exchange_engine, number, "not_accepted", at(2026, 3, 2, 11))
    run(exchange_engine, catalogue, at(2026, 3, 2, 11, 15))
    assert [(a.rule, a.level) for a in alerts(exchange_engine)] == [("NEGATIVE_WITHOUT_REASONS", "alarm")]


def test_a_year_the_calendar_lacks_is_refused_loudly_until_it_is_imported(exchange_engine: Engine, catalogue: Catalogue) -> None:
    add_case(exchange_engine, 8, registered=at(2026, 12, 28, 9), accepted=at(2026, 12, 29, 10))
    report = run(exchange_engine, catalogue, at(2026, 12, 30, 10))  # due in January 2027
    assert report.calendar_gaps == [2027] and report.uncounted_cases == 1 and report.cases == 0
    with exchange_engine.connect() as connection:
        [alarm] = open_alarm_rows(connection, supervision.CALENDAR_GAP_ALARM)
        assert connection.execute(select(func.count()).select_from(supervision_clocks)).scalar_one() == 0
    assert alarm.detail["year"] == 2027 and "2027" in alarm.detail["message"]
    run(exchange_engine, catalogue, at(2026, 12, 30, 10, 15))
    with exchange_engine.connect() as connection:
        assert len(open_alarm_rows(connection, supervision.CALENDAR_GAP_ALARM)) == 1  # not raised twice
    exceptions, years = supervision.parse_calendar_file(
        "date,kind,note\n2027-01-01,休,元旦\n# years: 2027\n", "2027.csv")
    done = supervision.import_calendar(exchange_engine, exceptions, years, source="2027.csv", operator="法制处")
    assert done["cases_to_recount"] == 1
    report = run(exchange_engine, catalogue, at(2026, 12, 30, 10, 30))
    assert (report.cases, report.calendar_gaps) == (1, [])
    with exchange_engine.connect() as connection:
        assert open_alarm_rows(connection, supervision.CALENDAR_GAP_ALARM) == []
        due = connection.execute(select(supervision_clocks.c.due_at).where(
            supervision_clocks.c.basis == "promised")).scalar_one()
    assert due == at(2027, 1, 4, 17, 30).isoformat()  # Wed 30, Thu 31 Dec, (Fri 1 Jan off), Mon 4 Jan


def test_a_crash_in_the_middle_of_a_pass_leaves_no_duplicate_on_the_rerun(
    exchange_engine: Engine, catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for n in range(30, 40):
        add_case(exchange_engine, n, registered=at(2026, 3, 2, 9), accepted=at(2026, 3, 2, 10))
    real = supervision._apply
    calls = {"n": 0}

    def crashing(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker killed")
        real(*args, **kwargs)

    monkeypatch.setattr(supervision, "_apply", crashing)
    with pytest.raises(RuntimeError):
        supervision.run_pass(exchange_engine, catalogue=catalogue, policy=PRESETS["JS-2013A"], periods=HOURS,
                             at=at(2026, 3, 5, 10), chunk_size=4)
    monkeypatch.setattr(supervision, "_apply", real)
    report = supervision.run_pass(exchange_engine, catalogue=catalogue, policy=PRESETS["JS-2013A"], periods=HOURS,
                                  at=at(2026, 3, 5, 10), chunk_size=4)
    assert report.cases == 10  # the positions had not moved: every case again
    found = alerts(exchange_engine)
    assert len(found) == 10 and len({a.case_number for a in found}) == 10
    with exchange_engine.connect() as connection:
        assert connection.execute(select(func.count()).where(province_sync.c.kind == "alert")).scalar_one() == 10


def test_calendar_file_errors_name_the_line() -> None:
    with pytest.raises(Exception, match=r"bad.csv:2: 2026-03-07 is a weekend"):
        supervision.parse_calendar_file("date,kind\n2026-03-07,holiday\n", "bad.csv")
    with pytest.raises(Exception, match=r"bad.csv:1: '2026/01/01' is not a date"):
        supervision.parse_calendar_file("2026/01/01,休\n", "bad.csv")


def add_penalty_case(engine: Engine, serial: int, code: str, decided: datetime, fine_yuan: int, level: str) -> str:
    """A penalty case of item ``code`` decided at ``decided`` with a fine (violation V01)."""
    from connectors.db import penalty_cases

    number = add_case(engine, serial, registered=at(2026, 3, 2, 9), accepted=at(2026, 3, 2, 10))
    with transaction(engine) as connection:
        connection.execute(update(applications).where(applications.c.case_number == number).values(power_code=code))
        connection.execute(update(cases).where(cases.c.case_number == number).values(power_code=code))
        connection.execute(penalty_cases.insert().values(
            case_number=number, occurred_on="2026-02-27", source="日常检查", facts="经查", procedure=2, decision=1,
            penalty_kinds=["fine"], fine_amount=fine_yuan * 100, confiscated_value=0, discretion_level=level,
            decided_at=decided.isoformat(), violation_code="V01", illegal_income=None))
    change(engine, number, "decided", decided)
    return number


def test_a_penalty_is_checked_against_the_discretion_standard_in_force_on_its_decision_date(
    exchange_engine: Engine,
) -> None:
    from hub.settings import load_settings

    penalty = next(dict(i.document) for i in load_catalogue(load_settings()).items.values() if i.category == "CF")
    wider = copy.deepcopy(penalty)
    wider.update(version=2)
    wider["discretion"]["violations"][0]["levels"][0]["fine"]["max_yuan"] = 9000
    history = catalogue_from_versions([(penalty, at(2026, 1, 1)), (wider, at(2026, 3, 10))])
    numbers = []
    for serial, decided, fine in ((40, at(2026, 3, 5, 10), 8_000), (41, at(2026, 3, 11, 10), 8_000),
                                  (42, at(2026, 3, 5, 10), 3_000)):
        numbers.append(add_penalty_case(exchange_engine, serial, penalty["code"], decided, fine, "light"))
    run(exchange_engine, history, at(2026, 3, 12, 10))
    found = {(a.case_number, a.rule, a.level) for a in alerts(exchange_engine) if a.rule.startswith("DISCRETION")}
    # 8,000 yuan for a light case: out of the 1,000-5,000 range of v1 on 5 March, inside v2's on 11 March.
    assert found == {(numbers[0], "DISCRETION_FINE_OUT_OF_RANGE", "alarm")}
    [alert] = [a for a in alerts(exchange_engine) if a.rule.startswith("DISCRETION")]
    assert "8,000.00元" in alert.detail and "1,000至5,000元" in alert.detail


def test_a_major_decision_not_filed_in_time_is_an_alarm_until_it_is_filed(exchange_engine: Engine) -> None:
    from hub.settings import load_settings

    penalty = next(dict(i.document) for i in load_catalogue(load_settings()).items.values() if i.category == "CF")
    penalty = {**penalty, "major_case": {"authority": "南京市司法局", "filing_days": 5, "fine_yuan_at_least": 20000}}
    catalogue = build_catalogue([penalty])
    numbers = []
    for serial, fine in ((50, 30_000), (51, 19_999)):
        numbers.append(add_penalty_case(exchange_engine, serial, penalty["code"], at(2026, 3, 3, 10), fine, "serious"))
    # Decided Tue 3 Mar: five working days, due Tue 10 Mar 17:30.
    run(exchange_engine, catalogue, at(2026, 3, 10, 17, 30))
    assert [a for a in alerts(exchange_engine) if a.rule == "MAJOR_CASE_NOT_FILED"] == []
    assert run(exchange_engine, catalogue, at(2026, 3, 10, 17, 45)).cases == 1  # the next check brought it back
    [late] = [a for a in alerts(exchange_engine) if a.rule == "MAJOR_CASE_NOT_FILED"]
    assert late.case_number == numbers[0] and "2026-03-10 17:30" in late.detail and "南京市司法局" in late.detail
    supervision.record_filing(exchange_engine, case_number=numbers[0], authority="南京市司法局",
                              document_no="宁交罚备〔2026〕3号", filed_at=at(2026, 3, 11, 9), filed_by="法制处 张三",
                              at=at(2026, 3, 11, 9, 5))
    with pytest.raises(Exception, match="was filed with 南京市司法局"):
        supervision.record_filing(exchange_engine, case_number=numbers[0], authority="x", document_no="y",
                                  filed_at=at(2026, 3, 11, 9), filed_by="z")
    run(exchange_engine, catalogue, at(2026, 3, 11, 9, 15))
    [lifted] = [a for a in alerts(exchange_engine) if a.rule == "MAJOR_CASE_NOT_FILED"]
    assert (lifted.state, lifted.raised_at, lifted.lifted_at) == (
        "lifted", at(2026, 3, 10, 17, 45).isoformat(), at(2026, 3, 11, 9, 15).isoformat())


def _step(engine: Engine, number: str, step_no: int, status: int, started: datetime) -> None:
    from connectors.db import case_steps

    with transaction(engine) as connection:
        connection.execute(case_steps.insert().values(
            case_number=number, step_no=step_no, node="受理", department="行政审批处", officer_code="0101",
            officer_name="王建国", status=status, opinion="请补正", started_at=started.isoformat(),
            finished_at=started.isoformat()))


@pytest.mark.parametrize("rule", ["CORRECTION_REPEATED", "CORRECTION_AFTER_ACCEPTANCE", "STEP_BEFORE_REGISTRATION",
                                  "NEGATIVE_WITHOUT_REASONS", "FEE_DEVIATION", "PENALTY_REGISTERED_LATE"])
def test_each_conduct_rule_fires_and_lifts_once_the_data_is_corrected(exchange_engine: Engine, rule: str) -> None:
    from connectors.db import case_results, case_steps, penalty_cases

    document = {**_document(), "fee_standard": 10_000}
    catalogue = build_catalogue([document])
    accepted = None if rule in ("NEGATIVE_WITHOUT_REASONS", "FEE_DEVIATION") else at(2026, 3, 3, 10)
    number = add_case(exchange_engine, 60, registered=at(2026, 3, 2, 9), accepted=accepted)
    if rule == "CORRECTION_REPEATED":
        _step(exchange_engine, number, 1, 4, at(2026, 3, 2, 10))
        _step(exchange_engine, number, 2, 4, at(2026, 3, 2, 11))
        fix: Any = update(case_steps).where(case_steps.c.step_no == 2).values(status=1)
    elif rule == "CORRECTION_AFTER_ACCEPTANCE":
        _step(exchange_engine, number, 1, 4, at(2026, 3, 4, 10))
        fix = update(case_steps).values(status=5)
    elif rule == "STEP_BEFORE_REGISTRATION":
        _step(exchange_engine, number, 1, 1, at(2026, 3, 1, 10))
        fix = update(case_steps).values(started_at=at(2026, 3, 2, 10).isoformat())
    elif rule in ("NEGATIVE_WITHOUT_REASONS", "FEE_DEVIATION"):
        negative = rule == "NEGATIVE_WITHOUT_REASONS"
        with transaction(exchange_engine) as connection:
            connection.execute(case_results.insert().values(
                case_number=number, result=1 if negative else 2, finished_at=at(2026, 3, 2, 11).isoformat(),
                note="" if negative else "准予许可", fee_due=0 if negative else 10_600, fee_paid=0))
        fix = update(case_results).values(note="申请事项不属于本机关职权范围", fee_due=10_400)
    else:
        with transaction(exchange_engine) as connection:
            connection.execute(penalty_cases.insert().values(
                case_number=number, occurred_on="2026-02-09", source="日常检查", facts="经查", procedure=2, decision=2,
                penalty_kinds=[], fine_amount=0, confiscated_value=0, discretion_level="light",
                decided_at=at(2026, 3, 4, 10).isoformat()))
        fix = update(penalty_cases).values(occurred_on="2026-02-27")
    change(exchange_engine, number, "in_progress", at(2026, 3, 4, 11))
    run(exchange_engine, catalogue, at(2026, 3, 4, 11, 15))
    fired = [a for a in alerts(exchange_engine) if a.rule == rule]
    assert [(a.state, a.level) for a in fired] == [("open", "warning" if rule not in (
        "NEGATIVE_WITHOUT_REASONS", "FEE_DEVIATION") else "alarm")]
    # The case-processing system corrects the data and appends a status change with it.
    with transaction(exchange_engine) as connection:
        connection.execute(fix)
    change(exchange_engine, number, "in_progress", at(2026, 3, 4, 12))
    run(exchange_engine, catalogue, at(2026, 3, 4, 12, 15))
    [lifted] = [a for a in alerts(exchange_engine) if a.rule == rule]
    assert (lifted.id, lifted.state, lifted.lifted_at) == (fired[0].id, "lifted", at(2026, 3, 4, 12, 15).isoformat())


def test_a_decision_not_published_within_the_disclosure_days_is_an_alarm_until_the_public_side_has_it(
    exchange_engine: Engine, catalogue: Catalogue,
) -> None:
    from connectors.db import ferry_sent, publish_withheld

    granted, secret = (add_case(exchange_engine, n, registered=at(2026, 3, 2, 9), accepted=at(2026, 3, 2, 10))
                       for n in (70, 71))
    for number in (granted, secret):
        with transaction(exchange_engine) as connection:
            connection.execute(case_results.insert().values(
                case_number=number, result=2, finished_at=at(2026, 3, 3, 10).isoformat(), note="准予许可",
                fee_due=0, fee_paid=0))
        change(exchange_engine, number, "granted", at(2026, 3, 3, 10))
    with exchange_engine.begin() as connection:
        events = dict(connection.execute(select(status_outbox.c.case_number, status_outbox.c.event_id).where(
            status_outbox.c.status == "granted")).all())
        connection.execute(publish_withheld.insert().values(
            event_id=events[secret], net_id="NET-" + secret, reason="secret", withheld_at=at(2026, 3, 3, 10).isoformat()))
    # Decided Tue 3 Mar: seven working days, due Thu 12 Mar 17:30 on the public side.
    run(exchange_engine, catalogue, at(2026, 3, 12, 17, 30))
    assert [a for a in alerts(exchange_engine) if a.rule == "DISCLOSURE_LATE"] == []
    run(exchange_engine, catalogue, at(2026, 3, 12, 17, 45))
    [late] = [a for a in alerts(exchange_engine) if a.rule == "DISCLOSURE_LATE"]
    assert late.case_number == granted and "2026-03-12 17:30" in late.detail  # the secret case is never due
    with transaction(exchange_engine) as connection:  # the bundle carrying it is acknowledged
        connection.execute(ferry_sent.insert().values(
            channel="outbound", sequence=9, state="sent", created_at=at(2026, 3, 13, 9).isoformat(),
            first_key=events[granted], last_key=events[granted], record_count=1, digest="d" * 64,
            file_name="outbound-000000000009.peb", catalogue_version="v", kind="data",
            sent_at=at(2026, 3, 13, 9).isoformat(), acknowledged_at=at(2026, 3, 13, 9, 5).isoformat()))
    run(exchange_engine, catalogue, at(2026, 3, 13, 9, 15))
    [lifted] = [a for a in alerts(exchange_engine) if a.rule == "DISCLOSURE_LATE"]
    assert (lifted.state, lifted.lifted_at) == ("lifted", at(2026, 3, 13, 9, 15).isoformat())


def test_the_due_next_checks_are_read_through_their_index_on_sqlite(tmp_path: Path) -> None:
    # A full walk of supervision_clocks would make every pass cost in proportion to the open
    # cases, not to the cases due (1.2 s at 1,000,000 cases in bench.supervision).
    from connectors.db import engine_for
    from connectors.migrate import upgrade

    engine = engine_for(f"sqlite:///{tmp_path / 'plan.sqlite'}")
    upgrade(engine, "admin")
    statement = supervision.due_checks(at(2026, 11, 16, 10, 15).isoformat()).compile(
        dialect=engine.dialect, compile_kwargs={"literal_binds": True})
    with engine.connect() as connection:
        plan = " | ".join(str(row[-1]) for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}"))
    assert "USING INDEX ix_supervision_clocks_next_check (next_check_at<?)" in plan
    assert "SCAN" not in plan
