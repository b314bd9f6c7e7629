"""A stand-in for the case-processing system (权力运行平台): it advances cases in the
exchange database through realistic steps to results, seeded and deterministic.

It writes exactly what the real system writes under the exchange-database contract
(``docs/exchange-db.md``): steps, results, penalty decisions, the case state (and its
secret flag) and one status-change row per transition. The provincial feed finds the new
rows itself (``connectors/province_feed.py`` scans the source tables).

Timing: each case follows a timeline that starts when the hub registered it (never before
the portal submission) and spaces the steps hours to days apart inside working hours
(Monday to Friday, 09:00-12:00 and 13:30-17:30 China Standard Time). A run applies only the
transitions that are due at ``now``, so no timestamp is ever in the future; a later run
continues where the last one stopped. The timeline is a pure function of the seed, the
case number and the registration time. It also writes what supervision needs: the
acceptance time, a pause (补正 correction, Art. 45 expert review) from the step that
requests it to the step that ends it, and a promised time on the steps that have one.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from connectors.case_registration import register_cases
from connectors.clock import CST, iso, now
from connectors.db import (
    applications,
    bulk_insert,
    bulk_update,
    case_filings,
    case_pauses,
    case_registrations,
    case_results,
    case_steps,
    cases,
    penalty_cases,
    status_outbox,
    transaction,
)
from connectors.provenance import record_events
from connectors.supervision import TERMINAL_STATES as TERMINAL
from hub.simulators.applicants import ORGANISATION_SHARE, _organisation, _person
from rules.cases import APPLICATION_ONLY, EX_OFFICIO_ONLY
from rules.catalogue import Catalogue
from rules.major_cases import is_major

# DOMAIN step statuses.
PASSED, PASSED_WITH_VETO, PAUSED, CORRECTION, IN_PROGRESS, RETURNED, STOPPED = 1, 2, 3, 4, 5, 6, 7
WORKING_PERIODS = ((time(9, 0), time(12, 0)), (time(13, 30), time(17, 30)))


@dataclass(frozen=True)
class Transition:
    """One step of a case: the state it leads to, the step record it leaves, and how many
    working minutes after the previous step it happens (a range)."""

    state: str
    node: str
    step_status: int
    opinion: str
    delay: tuple[int, int]
    result: int | None = None
    penalty: bool = False


HOUR, DAY = 60, 420  # working minutes
ACCEPT = Transition("accepted", "受理", PASSED, "材料齐全，符合法定形式，予以受理", (HOUR // 2, DAY))
REVIEW = Transition("in_progress", "审查", IN_PROGRESS, "正在审查", (HOUR, DAY))
GRANT = Transition("granted", "决定", PASSED, "经审查符合条件，准予许可", (DAY, 4 * DAY), result=2)
SCENARIOS: dict[str, tuple[Transition, ...]] = {
    "granted": (ACCEPT, REVIEW, GRANT),
    "refused": (
        ACCEPT,
        REVIEW,
        Transition("refused", "决定", PASSED, "经审查不符合法定条件：场地条件不达标，不予许可",
                   (DAY, 4 * DAY), result=3),
    ),
    "correction": (
        Transition("correction_requested", "受理", CORRECTION,
                   "请补正：申请书未签章，请一次性补正后重新提交", (HOUR, 2 * DAY)),
        Transition("registered", "补正", PASSED, "已收到补正材料", (DAY, 5 * DAY)),
        ACCEPT,
        REVIEW,
        GRANT,
    ),
    "not_accepted": (
        Transition("not_accepted", "受理", PASSED, "申请事项依法不属于本机关职权范围，不予受理",
                   (HOUR, 2 * DAY), result=1),
    ),
    "expert_review": (
        ACCEPT,
        REVIEW,
        Transition("paused", "专家评审", PAUSED, "需专家评审，评审期间不计入办理时限", (HOUR, DAY)),
        Transition("in_progress", "审查", IN_PROGRESS, "专家评审结束，继续审查", (3 * DAY, 10 * DAY)),
        GRANT,
    ),
    "returned": (
        ACCEPT,
        REVIEW,
        Transition("returned", "复核", RETURNED, "审查意见退回经办人：现场核查记录不完整", (DAY, 2 * DAY)),
        Transition("in_progress", "审查", IN_PROGRESS, "重新审查", (2 * HOUR, DAY)),
        GRANT,
    ),
    "stopped": (
        ACCEPT,
        Transition("stopped", "终止", STOPPED, "申请人撤回申请，终止办理", (DAY, 3 * DAY)),
    ),
    # Countersigning (会签) takes weeks; one signatory passes with a veto note.
    "long": (ACCEPT, Transition("in_progress", "会签", PASSED_WITH_VETO,
                                "会签通过，一名会签人持保留意见：需补充环境影响说明",
                                (5 * DAY, 15 * DAY)), GRANT),
}
WEIGHTS = {
    "granted": 55, "refused": 10, "correction": 10, "not_accepted": 5,
    "expert_review": 5, "returned": 5, "stopped": 3, "long": 7,
}
# Penalty items (行政处罚, CF) follow the penalty procedure instead.
PENALTY_SCENARIOS: dict[str, tuple[Transition, ...]] = {
    "penalty": (
        Transition("accepted", "立案", PASSED, "经初步核实，予以立案", (HOUR, 2 * DAY)),
        Transition("in_progress", "调查取证", IN_PROGRESS, "正在调查取证", (HOUR, DAY)),
        Transition("in_progress", "告知", PASSED, "已告知当事人拟作出的处罚决定及陈述、申辩权利",
                   (2 * DAY, 5 * DAY)),
        Transition("in_progress", "法制审核", PASSED_WITH_VETO, "法制审核通过，对裁量等级有不同意见，已记录",
                   (DAY, 3 * DAY)),
        Transition("decided", "决定", PASSED, "依法作出行政处罚决定", (DAY, 2 * DAY), penalty=True),
    ),
    "penalty_summary": (
        Transition("accepted", "立案", PASSED, "违法事实确凿，适用简易程序", (HOUR, DAY)),
        Transition("decided", "决定", PASSED, "当场作出行政处罚决定", (HOUR // 2, 2 * HOUR), penalty=True),
    ),
    "penalty_stopped": (
        Transition("accepted", "立案", PASSED, "经初步核实，予以立案", (HOUR, 2 * DAY)),
        Transition("stopped", "终止", STOPPED, "违法事实不能成立，终止调查", (2 * DAY, 6 * DAY)),
    ),
}
PENALTY_WEIGHTS = {"penalty": 70, "penalty_summary": 20, "penalty_stopped": 10}
# Discretion levels (自由裁量) with their fine range in yuan.
DISCRETION = {"light": (1_000, 5_000), "ordinary": (5_000, 20_000), "serious": (20_000, 50_000)}
SECRET_SHARE = 0.02
# The promised time of the steps that have one (岗位承诺时限), and the pause a step opens.
STEP_LIMITS = {"审查": (5, "working_days"), "调查取证": (30, "calendar_days"), "法制审核": (3, "working_days"),
               "会签": (10, "working_days")}
PAUSE_OPENED = {CORRECTION: "correction", PAUSED: "art45"}
FORGOTTEN_FILINGS = 1 / 3  # share of major decisions the simulated office does not file
BREACH_YUAN = 10_000  # how far above its level's range a breaching fine is set
OFFICERS = (("0101", "王建国"), ("0102", "李秀英"), ("0103", "陈明"), ("0104", "赵丽"))


def is_working_time(moment: datetime) -> bool:
    local = moment.astimezone(CST)
    return local.weekday() < 5 and any(s <= local.time() < e for s, e in WORKING_PERIODS)


def add_working_minutes(start: datetime, minutes: int, seconds: int = 0) -> datetime:
    """``start`` moved on by ``minutes`` (and ``seconds``) of working time (weekdays,
    office hours); the result is always inside working time: a sum that ends exactly at
    the close of a period lands on the opening of the next one."""
    return _moment_at(_working_position(start) + minutes * 60 + seconds)


# Working time as one number, so that adding a delay is an addition instead of a walk over
# days and periods (this runs for every simulated step): the working seconds from the
# opening of Monday 0001-01-01 (ordinal 1) to a moment.
_ORIGIN = datetime(1, 1, 1, tzinfo=CST)
_PERIODS = tuple(
    (begin.hour * 3600 + begin.minute * 60, (end.hour - begin.hour) * 3600 + (end.minute - begin.minute) * 60)
    for begin, end in WORKING_PERIODS
)  # (opening, length) in seconds after midnight
_WORKING_DAY = sum(length for _, length in _PERIODS)


def _working_position(moment: datetime) -> int:
    """The working seconds before ``moment`` (microseconds dropped); a moment outside
    working time counts as the next opening."""
    local = moment.astimezone(CST)
    weeks, weekday = divmod(local.toordinal() - 1, 7)
    if weekday >= 5:
        return (weeks + 1) * 5 * _WORKING_DAY  # the weekend: Monday's opening
    clock = local.hour * 3600 + local.minute * 60 + local.second
    worked = sum(min(max(clock - opening, 0), length) for opening, length in _PERIODS)
    return (weeks * 5 + weekday) * _WORKING_DAY + worked


def _moment_at(position: int) -> datetime:
    """The moment of a working position: the later one where a period closes and the
    next opens."""
    working_days, into_day = divmod(position, _WORKING_DAY)
    weeks, weekday = divmod(working_days, 5)
    for opening, length in _PERIODS:
        if into_day < length:
            break
        into_day -= length
    return _ORIGIN + timedelta(days=weeks * 7 + weekday, seconds=opening + into_day)


def scenario_for(case_number: str, seed: int, category: str | None = None) -> str:
    """The scenario a case follows: a pure function of the case number, the seed and the
    item's category."""
    rng = random.Random(f"{seed}:{case_number}")
    weights = PENALTY_WEIGHTS if category == "CF" else WEIGHTS
    names = sorted(weights)
    return rng.choices(names, weights=[weights[n] for n in names])[0]


def timeline(
    case_number: str, seed: int, start: datetime, category: str | None = None
) -> list[tuple[Transition, datetime]]:
    """Every transition of a case with the moment it happens."""
    name = scenario_for(case_number, seed, category)
    steps = (PENALTY_SCENARIOS if category == "CF" else SCENARIOS)[name]
    rng = random.Random(f"{seed}:{case_number}:timing")
    position = _working_position(start)
    planned = []
    for transition in steps:
        # Each step is add_working_minutes of the previous one; on working positions the
        # delays simply add up.
        position += rng.randint(*transition.delay) * 60 + rng.randrange(60)
        planned.append((transition, _moment_at(position)))
    return planned


def penalty_decision(case_number: str, seed: int, occurred: datetime, decided: datetime) -> dict[str, object]:
    """The penalty case record of a decided CF case (decision, kinds, fine, discretion)."""
    rng = random.Random(f"{seed}:{case_number}:penalty")
    level = rng.choices(sorted(DISCRETION), weights=[3, 5, 2])[0]
    low, high = DISCRETION[level]
    kinds = ["fine"] + (["confiscation"] if rng.random() < 0.3 else [])
    if level == "serious" and rng.random() < 0.5:
        kinds.append(rng.choice(("licence_suspension", "licence_revocation", "stop_business")))
    if level == "light" and rng.random() < 0.4:
        kinds = ["warning"] + kinds
    fine_yuan = rng.randrange(low, high + 1, 100)
    return {
        "case_number": case_number,
        "occurred_on": (occurred - timedelta(days=rng.randint(1, 20))).date().isoformat(),
        "source": rng.choice(("日常检查", "投诉举报", "上级交办", "部门移送")),
        "facts": "经查，当事人未按规定取得许可擅自从事经营活动",
        "procedure": 2 if level != "light" else rng.choice((1, 2)),
        "decision": 1,
        "penalty_kinds": kinds,
        "fine_amount": fine_yuan * 100,
        "confiscated_value": rng.randrange(0, 5_000) * 100 if "confiscation" in kinds else 0,
        "discretion_level": level,
        "decided_at": iso(decided),
        # The embedded catalogue's standards name the one violation of each CF item V01.
        "violation_code": "V01",
        "illegal_income": rng.randrange(0, 20_000) * 100,
    }


@dataclass
class ProcessingReport:
    advanced: int = 0
    transitions: int = 0
    finished: int = 0
    penalties: int = 0


def advance_cases(
    engine: Engine, *, seed: int = 7, batch_size: int = 5_000, at: datetime | None = None,
    categories: dict[str, str] | None = None,
    major_rules: Mapping[str, Mapping[str, Any]] | None = None,
    time_limits: Mapping[str, tuple[int, str]] | None = None,
    discretion_breaches: Collection[str] = (),
) -> ProcessingReport:
    """Apply every transition of every open case that is due at ``at`` (default: now);
    one transaction per batch. Cases of every origin: internet applications the hub handed
    over, counter and ex-officio cases registered here (``register_offline_cases``).

    ``categories`` maps power codes to their category (CF items follow the penalty
    procedure). ``major_rules`` maps power codes to their major-case rule: a major penalty
    decision is filed (报备) with it, except about a third that the office forgets (the
    supervision pass raises those). ``time_limits`` maps power codes to the promised limit
    and unit a case runs under, recorded at acceptance with the acceptor (第十六条(二)).
    ``discretion_breaches``: case numbers whose fine the simulated office sets above its
    discretion level's range (the discretion check raises those)."""
    report = ProcessingReport()
    current = (at or now()).astimezone(CST)
    categories = categories or {}
    major_rules = major_rules or {}
    time_limits = time_limits or {}
    after = ""
    while True:
        with transaction(engine) as connection:
            open_cases = connection.execute(
                select(cases.c.case_number, cases.c.net_id, cases.c.state, cases.c.power_code,
                       func.coalesce(applications.c.submitted_at, case_registrations.c.submitted_at)
                       .label("submitted_at"), cases.c.registered_at)
                .select_from(cases.outerjoin(applications, applications.c.case_number == cases.c.case_number)
                             .outerjoin(case_registrations, case_registrations.c.case_number == cases.c.case_number))
                .where(cases.c.state.not_in(TERMINAL), cases.c.case_number > after)
                .order_by(cases.c.case_number)
                .limit(batch_size)
            ).all()
            if not open_cases:
                return report
            after = open_cases[-1].case_number
            numbers = [c.case_number for c in open_cases]
            done: dict[str, int] = dict(
                connection.execute(
                    select(case_steps.c.case_number, func.count())
                    .where(case_steps.c.case_number.in_(numbers))
                    .group_by(case_steps.c.case_number)
                ).all()
            )
            steps, results, penalties, outbox, states, events = [], [], [], [], [], []
            accepted: list[dict[str, object]] = []
            filings: list[dict[str, object]] = []
            pauses_opened: list[dict[str, object]] = []
            pauses_ended: list[dict[str, object]] = []
            for case in open_cases:
                category = categories.get(case.power_code)
                start = max(datetime.fromisoformat(case.submitted_at), datetime.fromisoformat(case.registered_at))
                position = done.get(case.case_number, 0)
                planned = timeline(case.case_number, seed, start, category)
                due = [(t, m) for t, m in planned[position:] if m <= current]
                if not due:
                    continue
                rng = random.Random(f"{seed}:{case.case_number}:officers")
                officers = [OFFICERS[rng.randrange(len(OFFICERS))] for _ in planned]
                previous = planned[position - 1][1] if position else start
                for offset, (transition, moment) in enumerate(due, start=position + 1):
                    at_text = iso(moment)
                    officer = officers[offset - 1]
                    limit = STEP_LIMITS.get(transition.node)
                    steps.append({
                        "case_number": case.case_number, "step_no": offset, "node": transition.node,
                        "department": "行政审批处" if category != "CF" else "执法监督处",
                        "officer_code": officer[0], "officer_name": officer[1],
                        "status": transition.step_status, "opinion": transition.opinion,
                        "started_at": iso(previous), "finished_at": at_text,
                        "time_limit": limit[0] if limit else None, "time_limit_unit": limit[1] if limit else None,
                    })
                    if transition.state == "accepted":
                        limit_value, limit_unit = time_limits.get(case.power_code, (None, None))
                        accepted.append({"case_number": case.case_number, "accepted_at": at_text,
                                         "acceptor_code": officer[0], "acceptor_name": officer[1],
                                         "time_limit": limit_value, "time_limit_unit": limit_unit})
                    if transition.step_status in PAUSE_OPENED:
                        pauses_opened.append({"case_number": case.case_number, "pause_no": offset,
                                              "kind": PAUSE_OPENED[transition.step_status], "started_at": at_text,
                                              "ended_at": None, "note": transition.opinion})
                    if offset > 1 and planned[offset - 2][0].step_status in PAUSE_OPENED:
                        pauses_ended.append({"case_number": case.case_number, "pause_no": offset - 1,
                                             "ended_at": at_text})
                    previous = moment
                    result = None
                    if transition.result is not None:
                        result = {"code": transition.result, "finished_at": at_text, "note": transition.opinion}
                        results.append({
                            "case_number": case.case_number, "result": transition.result,
                            "finished_at": at_text, "note": transition.opinion, "fee_due": 0, "fee_paid": 0,
                        })
                    if transition.penalty:
                        decision = penalty_decision(case.case_number, seed, start, moment)
                        if case.case_number in discretion_breaches:
                            high = DISCRETION[str(decision["discretion_level"])][1]
                            decision["fine_amount"] = (high + BREACH_YUAN) * 100
                        penalties.append(decision)
                        if (is_major(major_rules.get(case.power_code), result=None, penalty_decided=True,
                                     fine_fen=int(str(decision["fine_amount"])),
                                     penalty_kinds=list(decision["penalty_kinds"]))  # type: ignore[call-overload]
                                and random.Random(f"{seed}:{case.case_number}:filing").random() >= FORGOTTEN_FILINGS):
                            rule = major_rules[case.power_code]
                            filings.append({"case_number": case.case_number, "authority": rule["authority"],
                                            "document_no": f"备〔{moment.year}〕{case.case_number[-6:]}号",
                                            "filed_at": at_text, "filed_by": officer[1], "recorded_at": at_text})
                    outbox.append({
                        "net_id": case.net_id, "case_number": case.case_number,
                        "status": transition.state, "at": at_text, "step": transition.node,
                        "opinion": transition.opinion, "reasons": None, "result": result,
                    })
                    events.append((case.net_id or case.case_number, "processing", transition.state, None,
                                   {"step": offset}))
                final = due[-1][0].state
                secret = random.Random(f"{seed}:{case.case_number}:secret").random() < SECRET_SHARE
                states.append({"case_number": case.case_number, "state": final,
                               "updated_at": iso(due[-1][1]), "secret": secret})
                report.advanced += 1
                report.transitions += len(due)
                report.finished += final in TERMINAL
            changed_at = iso(current)
            if steps:
                bulk_insert(connection, case_steps, steps)
            if results:
                bulk_insert(connection, case_results, results)
            if penalties:
                bulk_insert(connection, penalty_cases, penalties)
                report.penalties += len(penalties)
            if states:
                bulk_update(connection, cases, states, keys=("case_number",))
            if accepted:
                bulk_update(connection, cases, accepted, keys=("case_number",))
            if filings:
                bulk_insert(connection, case_filings, filings)
            if pauses_opened:
                bulk_insert(connection, case_pauses, pauses_opened)
            if pauses_ended:
                bulk_update(connection, case_pauses, pauses_ended, keys=("case_number", "pause_no"))
            if outbox:
                # Last, so the outbox lock (PostgreSQL) is held for as short a time as possible.
                bulk_insert(connection, status_outbox, outbox)
            record_events(connection, events, changed_at)



COUNTER_CHANNELS = (0, 0, 0, 5, 7)  # mostly in person at the window
OFFICE_SOURCES = ("日常检查", "投诉举报", "上级交办", "部门移送")


def offline_registrations(
    catalogue: Catalogue, *, seed: int, at: datetime, counter: int = 0, ex_officio: int = 0,
) -> list[dict[str, Any]]:
    """Seeded registrations of cases that never came through the internet: ``counter``
    applications made at the window (网下申请) for items in use that take applications, and
    ``ex_officio`` penalty cases opened by the office (依职权立案)."""
    rng = random.Random(f"{seed}:offline:{at.isoformat()}")
    in_use = catalogue.in_use()
    applied = [item for item in in_use if item.category in APPLICATION_ONLY] or [
        item for item in in_use if item.category not in EX_OFFICIO_ONLY]
    penalties = [item for item in in_use if item.category == "CF"]
    day = at.astimezone(CST).date()
    records: list[dict[str, Any]] = []
    for origin, count, items in (("counter", counter, applied), ("ex_officio", ex_officio, penalties)):
        if count and not items:
            raise ValueError(f"the catalogue has no item in use for {origin} cases")
        for _ in range(count):
            item = items[rng.randrange(len(items))]
            party = _organisation(rng) if rng.random() < ORGANISATION_SHARE else _person(rng, day)
            name = f"{party['name']}{item.name}" if origin == "counter" else f"{party['name']}涉嫌违法案"
            summary = (f"{party['name']}到窗口申请{item.name}，材料已当场核对" if origin == "counter"
                       else f"{rng.choice(OFFICE_SOURCES)}发现{party['name']}涉嫌违反{item.name}相关规定")
            records.append({
                "origin": origin, "power_code": item.code, "agency_code": item.agency_code,
                "case_name": name[:200], "summary": summary,
                "channel": rng.choice(COUNTER_CHANNELS) if origin == "counter" else 7,
                "applicant_type": party["type"], "applicant_name": party["name"],
                "applicant_id_type": party["id_type"], "applicant_id_number": party["id_number"],
                "applicant_mobile": party.get("mobile"), "applicant_address": party.get("address"),
                "submitted_at": iso(at - timedelta(minutes=rng.randint(5, 90))),
            })
    return records


def register_offline_cases(
    engine: Engine, catalogue: Catalogue, *, seed: int = 7, at: datetime | None = None, counter: int = 0,
    ex_officio: int = 0,
) -> list[str]:
    """Register seeded counter and ex-officio cases (``offline_registrations``) the way the
    case-processing system does; returns their case numbers."""
    moment = (at or now()).astimezone(CST)
    records = offline_registrations(catalogue, seed=seed, at=moment, counter=counter, ex_officio=ex_officio)
    with transaction(engine) as connection:
        return register_cases(connection, records, catalogue, at=moment)
