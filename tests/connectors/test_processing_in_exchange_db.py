"""The processing simulator: realistic, working-hour, never-future, deterministic steps;
penalty decisions for CF items; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import Any

from exchange_kit import generate
from sqlalchemy import select

from connectors.clock import CST, now, registration_shift, shifted
from connectors.db import applications, case_steps, cases, penalty_cases, status_outbox
from hub import stages
from hub.simulators.processing import (
    DISCRETION,
    OFFICERS,
    PENALTY_SCENARIOS,
    SCENARIOS,
    TERMINAL,
    add_working_minutes,
    advance_cases,
    is_working_time,
    scenario_for,
    timeline,
)
from hub.zones import load_catalogue, zone_engine


def test_scenarios_use_every_domain_step_status() -> None:
    statuses = {t.step_status for s in (*SCENARIOS.values(), *PENALTY_SCENARIOS.values()) for t in s}
    assert statuses == {1, 2, 3, 4, 5, 6, 7}
    mix = Counter(scenario_for(f"3201000001{n:010d}", 7) for n in range(2000))
    assert set(mix) == set(SCENARIOS) and mix["granted"] > mix["refused"] > mix["stopped"]
    assert set(Counter(scenario_for(f"3201000001{n:010d}", 7, "CF") for n in range(500))) == set(
        PENALTY_SCENARIOS
    )


def test_working_minutes_skip_nights_lunch_and_weekends() -> None:
    friday_late = datetime(2026, 11, 20, 17, 0, tzinfo=CST)
    assert add_working_minutes(friday_late, 60) == datetime(2026, 11, 23, 9, 30, tzinfo=CST)
    morning = datetime(2026, 11, 23, 11, 30, tzinfo=CST)
    assert add_working_minutes(morning, 60) == datetime(2026, 11, 23, 14, 0, tzinfo=CST)
    start = datetime(2026, 11, 18, 10, 12, tzinfo=CST)
    for number in range(50):
        planned = timeline(f"3201000001{number:010d}", 7, start)
        moments = [start] + [m for _, m in planned]
        assert all(is_working_time(m) for m in moments[1:])
        assert all(b - a >= timedelta(minutes=30) for a, b in pairwise(moments))
        assert timeline(f"3201000001{number:010d}", 7, start) == planned


def _advance(settings: Any, at: datetime) -> dict[str, Any]:
    categories = {c: i.category for c, i in load_catalogue(settings).items.items()}
    return vars(advance_cases(zone_engine(settings, "admin"), seed=7, at=at, categories=categories))


def _steps(settings: Any) -> list[Any]:
    with zone_engine(settings, "admin").connect() as connection:
        return connection.execute(
            select(case_steps, applications.c.submitted_at, applications.c.registered_at, applications.c.power_code)
            .join(cases, cases.c.case_number == case_steps.c.case_number)
            .join(applications, applications.c.net_id == cases.c.net_id)
            .order_by(case_steps.c.case_number, case_steps.c.step_no)
        ).all()


def test_cases_advance_in_working_hours_up_to_now_and_no_further(hub_settings: Any) -> None:
    generate(hub_settings, 80, seed=8, days_back=20)
    with shifted(registration_shift(date.today() - timedelta(days=20))):
        for stage in ("intake", "inbound_receive", "applications_load"):
            stages.STAGES[stage](hub_settings)
    catalogue = load_catalogue(hub_settings)
    halfway = now() - timedelta(days=10)
    first = _advance(hub_settings, halfway)
    partial = _steps(hub_settings)
    assert first["transitions"] == len(partial) > 0
    assert all(datetime.fromisoformat(s.finished_at) <= halfway for s in partial)
    final = now()
    _advance(hub_settings, final)
    steps = _steps(hub_settings)
    assert steps[: len(partial)] == partial or set(partial) <= set(steps)
    by_case: dict[str, list[Any]] = {}
    for step in steps:
        by_case.setdefault(step.case_number, []).append(step)
        finished = datetime.fromisoformat(step.finished_at)
        assert is_working_time(finished) and finished <= final
        assert step.status in range(1, 8) and (step.officer_code, step.officer_name) in OFFICERS
    for number, case_steps_ in by_case.items():
        start = max(datetime.fromisoformat(case_steps_[0].submitted_at),
                    datetime.fromisoformat(case_steps_[0].registered_at))
        assert datetime.fromisoformat(case_steps_[0].started_at) >= datetime.fromisoformat(case_steps_[0].registered_at)
        category = catalogue.items[case_steps_[0].power_code].category
        planned = timeline(number, 7, start, category)
        due = [(t, m) for t, m in planned if m <= final]
        assert [(s.node, s.status, s.finished_at) for s in case_steps_] == [
            (t.node, t.step_status, m.isoformat()) for t, m in due
        ]
    with zone_engine(hub_settings, "admin").connect() as connection:
        penalties = connection.execute(
            select(penalty_cases, applications.c.power_code)
            .join(cases, cases.c.case_number == penalty_cases.c.case_number)
            .join(applications, applications.c.net_id == cases.c.net_id)
        ).all()
        decided = connection.execute(
            select(status_outbox.c.case_number).where(status_outbox.c.status == "decided")
        ).scalars().all()
        states = Counter(connection.execute(select(cases.c.state)).scalars())
    assert penalties and sorted(p.case_number for p in penalties) == sorted(decided)
    for penalty in penalties:
        assert catalogue.items[penalty.power_code].category == "CF"
        low, high = DISCRETION[penalty.discretion_level]
        assert low * 100 <= penalty.fine_amount <= high * 100 and "fine" in penalty.penalty_kinds
        assert penalty.decision == 1 and penalty.procedure in (1, 2)
    assert {"granted", "decided"} <= set(states) and set(states) & TERMINAL


def test_penalty_decisions_use_the_one_code_list_the_feed_and_the_disclosure_use() -> None:
    from datetime import datetime

    import schemas
    from connectors.clock import CST
    from hub.simulators.processing import penalty_decision
    from rules.penalties import PENALTY_KINDS, penalty_kind_names

    feed_kinds = set(schemas.load_schema("province_penalty")["properties"]["penalty_kinds"]["items"]["enum"])
    assert set(PENALTY_KINDS) == feed_kinds
    seen: set[str] = set()
    for serial in range(400):
        decision = penalty_decision(f"3201000001{serial:010d}", 7, datetime(2026, 11, 2, 9, tzinfo=CST),
                                    datetime(2026, 11, 9, 15, tzinfo=CST))
        seen.update(decision["penalty_kinds"])  # type: ignore[arg-type]
        penalty_kind_names(decision["penalty_kinds"])  # type: ignore[arg-type]  # raises on an unknown code
    assert {"fine", "warning", "confiscation"} <= seen <= set(PENALTY_KINDS)


def test_every_case_state_the_simulator_reaches_fits_the_public_and_provincial_schemas() -> None:
    import schemas
    from hub.simulators.processing import SCENARIOS, TERMINAL

    reached = {t.state for steps in SCENARIOS.values() for t in steps} | set(TERMINAL) | {"registered"}
    provincial = set(schemas.load_schema("province_case")["properties"]["state"]["enum"])
    public = set(schemas.load_schema("status_event")["properties"]["status"]["enum"])
    assert reached <= provincial, reached - provincial
    assert reached <= public, reached - public
