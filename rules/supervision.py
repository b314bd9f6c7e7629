"""One case under supervision (电子监察), as pure rules: its clocks (statutory and promised
limits of the case, the promised time of each step), the alert conditions they and the
conduct rules and supervision orders (督办) call for, and the next moment anything about
it can change by the passing of time alone.

Times here are naive local times (the agency's zone); the connector converts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from rules.alerts import AlertKey, AlertPolicy, time_limit_level
from rules.calendar import WorkingTime, working_deadline
from rules.clocks import ClockReading, Pause, read_clock
from rules.conduct import CaseFacts, StepFact, conduct_findings
from rules.discretion import DiscretionStandard, check_decision
from rules.major_cases import filing_deadline

CASE_STATUTORY: Final = "CASE_STATUTORY_LIMIT"
CASE_PROMISED: Final = "CASE_PROMISED_LIMIT"
STEP_PROMISED: Final = "STEP_PROMISED_LIMIT"
ORDER_NOT_STARTED: Final = "ORDER_NOT_STARTED"
ORDER_NOT_FINISHED: Final = "ORDER_NOT_FINISHED"
DISCLOSURE_LATE: Final = "DISCLOSURE_LATE"
TIME_RULES: Final = (CASE_STATUTORY, CASE_PROMISED, STEP_PROMISED)
CALENDAR_DAY: Final = 86_400
ORDER_STATE_NAMES: Final = {"issued": "已下达", "answered": "已回复", "closed": "已办结"}
UNIT_NAMES: Final = {"working_days": "个工作日", "calendar_days": "日", "months": "个月", "years": "年"}
RULE_NAMES: Final = {
    CASE_STATUTORY: "超过法定办理时限",
    CASE_PROMISED: "承诺办理时限",
    STEP_PROMISED: "环节承诺时限",
    "CORRECTION_REPEATED": "多次要求补正",
    "CORRECTION_AFTER_ACCEPTANCE": "受理后要求补正",
    "STEP_BEFORE_REGISTRATION": "环节时间早于登记时间",
    "NEGATIVE_WITHOUT_REASONS": "不予受理/不予许可未说明理由",
    "FEE_DEVIATION": "收费偏离标准超过5%",
    "PENALTY_REGISTERED_LATE": "违法行为发生后超过10个工作日立案",
    "ITEM_NOT_IN_USE": "事项挂起或废止期间仍受理办件",
    ORDER_NOT_STARTED: "督办逾期未反馈",
    ORDER_NOT_FINISHED: "督办逾期未办结",
    "DISCRETION_NO_STANDARD": "处罚事项无自由裁量基准",
    "DISCRETION_UNKNOWN_VIOLATION": "违法行为不在裁量基准中",
    "DISCRETION_LEVEL_NOT_IN_STANDARD": "裁量等级不在基准中",
    "DISCRETION_FINE_OUT_OF_RANGE": "罚款超出裁量幅度",
    "DISCRETION_BASE_MISSING": "按倍数裁量但未记录违法所得",
    "MAJOR_CASE_NOT_FILED": "重大案件逾期未报备",
    DISCLOSURE_LATE: "双公示逾期未公示",
}


@dataclass(frozen=True)
class Step:
    step_no: int
    status: int
    started_at: datetime
    finished_at: datetime | None = None
    time_limit: int | None = None
    time_limit_unit: str | None = None


@dataclass(frozen=True)
class Order:
    """A supervision order (督办): answered = the undertaking office has started on it."""

    order_id: int
    deadline: datetime
    state: str  # issued | answered | closed
    answered_at: datetime | None = None
    closed_at: datetime | None = None


@dataclass(frozen=True)
class SupervisedCase:
    case_number: str
    power_code: str
    department: str
    registered_at: datetime
    accepted_at: datetime | None
    finished_at: datetime | None
    statutory_limit: int
    promised_limit: int
    unit: str
    steps: Sequence[Step] = ()
    pauses: Sequence[Pause] = ()  # the case's own and its item's 挂起 intervals
    orders: Sequence[Order] = ()
    result: int | None = None
    result_note: str = ""
    fee_due: int | None = None
    fee_standard: int | None = None
    occurred_on: datetime | None = None
    item_state: str = "A"
    penalty: PenaltyDecision | None = None
    filing: Filing | None = None
    disclosure: Disclosure | None = None


@dataclass(frozen=True)
class Disclosure:
    """A decision of the 双公示 lists (a granted licence, a penalty): due on the public side
    ``days`` working days after the decision, published there at ``published_at``."""

    decided_at: datetime
    days: int
    published_at: datetime | None = None


@dataclass(frozen=True)
class Filing:
    """A major decision's filing (报备): due ``filing_days`` working days after the
    decision, done at ``filed_at``."""

    authority: str
    decided_at: datetime
    filing_days: int
    filed_at: datetime | None = None


@dataclass(frozen=True)
class PenaltyDecision:
    """A decided penalty with the discretion standard in force on its decision date."""

    standard: DiscretionStandard | None
    violation_code: str | None
    level: str
    fine_fen: int
    illegal_income_fen: int | None
    penalty_kinds: Sequence[str]


@dataclass(frozen=True)
class Clock:
    step_no: int  # 0: the whole case
    basis: str  # statutory | promised
    limit: int
    unit: str
    reading: ClockReading
    level: str | None
    next_check: datetime | None


@dataclass(frozen=True)
class Condition:
    level: str
    detail: str


@dataclass
class Evaluation:
    clocks: list[Clock] = field(default_factory=list)
    conditions: dict[AlertKey, Condition] = field(default_factory=dict)
    finished_on_time: bool = False
    next_check: datetime | None = None


def _day_seconds(time: WorkingTime, unit: str) -> int:
    return time.day_seconds if unit == "working_days" else CALENDAR_DAY


def _moment_at_used(time: WorkingTime, reading: ClockReading, unit: str, used: int) -> datetime:
    """When the clock will have used ``used`` seconds, if no new pause comes."""
    if unit == "working_days":
        return time.advance(reading.start, used + reading.paused_seconds)
    return reading.start + timedelta(seconds=used + reading.paused_seconds)


def _next_check(time: WorkingTime, policy: AlertPolicy, reading: ClockReading, unit: str,
                statutory: bool, now: datetime) -> datetime | None:
    """The first moment after ``now`` at which this clock's level can change by time alone:
    None while it is paused or finished (a resume or a finish is a change of its own)."""
    if reading.state in ("paused", "finished_on_time", "finished_late"):
        return None
    total = reading.used_seconds + reading.remaining_seconds
    day = _day_seconds(time, unit)
    if statutory:
        marks = [total + 1]
    elif policy.scheme == "late":
        marks = [total - day, total + policy.warning_late_days * day + 1, total + policy.alarm_late_days * day + 1]
    else:
        marks = [math.ceil(policy.warning_fraction * total), total + 1]
    ahead = [m for m in marks if m > reading.used_seconds]
    if not ahead:
        return None
    moment = _moment_at_used(time, reading, unit, min(ahead))
    return max(moment, now + timedelta(seconds=1))


def _days(seconds: int, day: int) -> str:
    return f"{seconds / day:.1f}".rstrip("0").rstrip(".")


def _time_detail(basis_name: str, limit: int, unit: str, reading: ClockReading, day: int) -> str:
    text = f"{basis_name}{limit}{UNIT_NAMES[unit]}，已用{_days(reading.used_seconds, day)}天"
    if reading.remaining_seconds < 0:
        return text + f"，超期{_days(-reading.remaining_seconds, day)}天"
    return text + f"，剩余{_days(reading.remaining_seconds, day)}天"


def evaluate(case: SupervisedCase, time: WorkingTime, policy: AlertPolicy, now: datetime) -> Evaluation:
    """Clocks, alert conditions and the next check of one case at ``now``. Raises
    ``CalendarGap`` when a clock needs a year the calendar does not cover."""
    evaluation = Evaluation()
    day = _day_seconds(time, case.unit)
    checks: list[datetime] = []
    if case.accepted_at is not None:
        for basis, limit in (("statutory", case.statutory_limit), ("promised", case.promised_limit)):
            reading = read_clock(time, accepted=case.accepted_at, limit=limit, unit=case.unit,
                                 pauses=case.pauses, now=now, finished=case.finished_at)
            statutory = basis == "statutory"
            level = time_limit_level(policy, reading, day, statutory=statutory)
            upcoming = _next_check(time, policy, reading, case.unit, statutory, now)
            evaluation.clocks.append(Clock(0, basis, limit, case.unit, reading, level, upcoming))
            if upcoming is not None:
                checks.append(upcoming)
            if level is not None:
                rule, name = (CASE_STATUTORY, "法定时限") if statutory else (CASE_PROMISED, "承诺时限")
                evaluation.conditions[(rule, case.case_number, 0)] = Condition(
                    level, _time_detail(name, limit, case.unit, reading, day))
            if basis == "promised" and reading.state == "finished_on_time":
                evaluation.finished_on_time = True
    for step in case.steps:
        if not step.time_limit or not step.time_limit_unit:
            continue
        unit = step.time_limit_unit
        step_pauses = [p for p in case.pauses if (p.end is None or p.end > step.started_at)]
        reading = read_clock(time, accepted=step.started_at, limit=step.time_limit, unit=unit,
                             pauses=step_pauses, now=now, finished=step.finished_at
                             or (case.finished_at if case.finished_at else None), from_next_day=False)
        level = time_limit_level(policy, reading, _day_seconds(time, unit), statutory=False)
        upcoming = _next_check(time, policy, reading, unit, False, now)
        evaluation.clocks.append(Clock(step.step_no, "promised", step.time_limit, unit, reading, level, upcoming))
        if upcoming is not None:
            checks.append(upcoming)
        if level is not None:
            evaluation.conditions[(STEP_PROMISED, case.case_number, step.step_no)] = Condition(
                level, f"第{step.step_no}环节" + _time_detail("承诺时限", step.time_limit, unit, reading,
                                                          _day_seconds(time, unit)))
    facts = CaseFacts(
        case.case_number, case.registered_at, case.accepted_at,
        [StepFact(s.step_no, s.status, s.started_at) for s in case.steps],
        result=case.result, result_note=case.result_note, fee_due=case.fee_due,
        fee_standard=case.fee_standard, occurred_on=case.occurred_on, item_state=case.item_state,
    )
    for rule, step_no in conduct_findings(facts, time.calendar):
        level = policy.conduct_levels.get(rule)
        if level is not None:
            subject = (step_no or 0)
            evaluation.conditions.setdefault((rule, case.case_number, subject), Condition(
                level, RULE_NAMES[rule] + (f"（第{step_no}环节）" if step_no else "")))
    if case.penalty is not None:
        decision = case.penalty
        for finding in check_decision(decision.standard, violation_code=decision.violation_code,
                                      level=decision.level, fine_fen=decision.fine_fen,
                                      bases={"illegal_income": decision.illegal_income_fen},
                                      penalty_kinds=decision.penalty_kinds):
            level = policy.conduct_levels.get(finding.rule)
            if level is not None:
                evaluation.conditions[(finding.rule, case.case_number, 0)] = Condition(level, finding.message)
    if case.filing is not None and case.filing.filed_at is None:
        deadline = filing_deadline(time.calendar, case.filing.decided_at, case.filing.filing_days)
        if now > deadline:
            level = policy.conduct_levels.get("MAJOR_CASE_NOT_FILED")
            if level is not None:
                evaluation.conditions[("MAJOR_CASE_NOT_FILED", case.case_number, 0)] = Condition(
                    level, f"重大案件应于{deadline:%Y-%m-%d %H:%M}前向{case.filing.authority}报备，至今未报备")
        else:
            checks.append(deadline + timedelta(seconds=1))
    if case.disclosure is not None and case.disclosure.published_at is None:
        due = working_deadline(time.calendar, case.disclosure.decided_at, case.disclosure.days)
        if now > due:
            level = policy.conduct_levels.get(DISCLOSURE_LATE)
            if level is not None:
                evaluation.conditions[(DISCLOSURE_LATE, case.case_number, 0)] = Condition(
                    level, f"双公示：决定应于{due:%Y-%m-%d %H:%M}前（{case.disclosure.days}个工作日内）在外网公示，至今未公示")
        else:
            checks.append(due + timedelta(seconds=1))
    for order in case.orders:
        if order.state == "closed":
            continue
        if now <= order.deadline:
            checks.append(order.deadline + timedelta(seconds=1))
            continue
        rule = ORDER_NOT_STARTED if order.state == "issued" else ORDER_NOT_FINISHED
        level = policy.conduct_levels.get(rule)
        if level is not None:
            evaluation.conditions[(rule, case.case_number, order.order_id)] = Condition(
                level, f"督办单{order.order_id}：{RULE_NAMES[rule]}（期限{order.deadline:%Y-%m-%d %H:%M}）")
    evaluation.next_check = min(checks) if checks else None
    return evaluation


def item_pauses(transitions: Sequence[tuple[datetime, str]]) -> list[Pause]:
    """The 挂起 intervals of an item from its state changes (moment, new state) in order:
    from each move into ``T`` to the next move out of it (解挂), open while still ``T``."""
    pauses: list[Pause] = []
    opened: datetime | None = None
    for moment, state in transitions:
        if state == "T" and opened is None:
            opened = moment
        elif state != "T" and opened is not None:
            pauses.append(Pause("item_suspended", opened, moment))
            opened = None
    if opened is not None:
        pauses.append(Pause("item_suspended", opened))
    return pauses


def item_state_at(transitions: Sequence[tuple[datetime, str]], moment: datetime) -> str:
    """The item's state at ``moment`` (in use when no transition precedes it)."""
    state = "A"
    for at, to_state in transitions:
        if at > moment:
            break
        state = to_state
    return state
