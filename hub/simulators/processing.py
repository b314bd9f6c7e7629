"""A stand-in for the case-processing system (权力运行平台): it advances cases in the
exchange database through realistic steps to results, seeded and deterministic.

It writes exactly what the real system writes under the exchange-database contract:
steps, results, the case state and one status-change row per transition.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, bindparam, func, select, update

from connectors.clock import iso, now
from connectors.db import applications, case_results, case_steps, cases, status_outbox, transaction
from connectors.provenance import record_events

TERMINAL = frozenset({"not_accepted", "granted", "refused", "stopped"})
# DOMAIN step statuses: 1 passed, 2 passed with veto, 3 paused, 4 correction requested,
# 5 in progress, 6 returned, 7 stopped.


@dataclass(frozen=True)
class Transition:
    """One step of a case: the state it leads to and the step record it leaves."""

    state: str
    node: str
    step_status: int
    opinion: str
    result: int | None = None


ACCEPT = Transition("accepted", "受理", 1, "材料齐全，符合法定形式，予以受理")
REVIEW = Transition("in_progress", "审查", 5, "正在审查")
GRANT = Transition("granted", "决定", 1, "经审查符合条件，准予许可", result=2)
SCENARIOS: dict[str, tuple[Transition, ...]] = {
    "granted": (ACCEPT, REVIEW, GRANT),
    "refused": (
        ACCEPT,
        REVIEW,
        Transition("refused", "决定", 1, "经审查不符合法定条件：场地条件不达标，不予许可", result=3),
    ),
    "correction": (
        Transition("correction_requested", "受理", 4, "请补正：申请书未签章，请一次性补正后重新提交"),
        Transition("registered", "补正", 1, "已收到补正材料"),
        ACCEPT,
        REVIEW,
        GRANT,
    ),
    "not_accepted": (
        Transition("not_accepted", "受理", 1, "申请事项依法不属于本机关职权范围，不予受理", result=1),
    ),
    "expert_review": (
        ACCEPT,
        REVIEW,
        Transition("paused", "专家评审", 3, "需专家评审，评审期间不计入办理时限"),
        Transition("in_progress", "审查", 5, "专家评审结束，继续审查"),
        GRANT,
    ),
    "returned": (
        ACCEPT,
        REVIEW,
        Transition("returned", "复核", 6, "审查意见退回经办人：现场核查记录不完整"),
        Transition("in_progress", "审查", 5, "重新审查"),
        GRANT,
    ),
    "stopped": (
        ACCEPT,
        Transition("stopped", "终止", 7, "申请人撤回申请，终止办理"),
    ),
    "long": (ACCEPT, REVIEW, GRANT),
}
WEIGHTS = {
    "granted": 55, "refused": 10, "correction": 10, "not_accepted": 5,
    "expert_review": 5, "returned": 5, "stopped": 3, "long": 7,
}
LONG_STEPS_PER_RUN = 2  # a "long" case makes at most this much progress per run
OFFICERS = (("0101", "王建国"), ("0102", "李秀英"), ("0103", "陈明"), ("0104", "赵丽"))


def scenario_for(case_number: str, seed: int) -> str:
    """The scenario a case follows: a pure function of the case number and the seed."""
    rng = random.Random(f"{seed}:{case_number}")
    names = sorted(WEIGHTS)
    return rng.choices(names, weights=[WEIGHTS[n] for n in names])[0]


@dataclass
class ProcessingReport:
    advanced: int = 0
    transitions: int = 0
    finished: int = 0


def advance_cases(engine: Engine, *, seed: int = 7, batch_size: int = 5_000) -> ProcessingReport:
    """Move every open case forward along its scenario; one transaction per batch."""
    report = ProcessingReport()
    after = ""
    while True:
        with transaction(engine) as connection:
            open_cases = connection.execute(
                select(cases.c.case_number, cases.c.net_id, cases.c.state, applications.c.power_code)
                .join(applications, applications.c.net_id == cases.c.net_id)
                .where(cases.c.state.not_in(TERMINAL), cases.c.case_number > after)
                .order_by(cases.c.case_number)
                .limit(batch_size)
            ).all()
            if not open_cases:
                return report
            after = open_cases[-1].case_number
            numbers = [c.case_number for c in open_cases]
            done = dict(
                connection.execute(
                    select(case_steps.c.case_number, func.count())
                    .where(case_steps.c.case_number.in_(numbers))
                    .group_by(case_steps.c.case_number)
                ).all()
            )
            start = now()
            steps, results, outbox, states, events = [], [], [], [], []
            for case in open_cases:
                name = scenario_for(case.case_number, seed)
                position = done.get(case.case_number, 0)
                remaining = SCENARIOS[name][position:]
                if name == "long":
                    remaining = remaining[:LONG_STEPS_PER_RUN]
                if not remaining:
                    continue
                rng = random.Random(f"{seed}:{case.case_number}:{position}")
                moment = start
                for offset, transition in enumerate(remaining, start=position + 1):
                    moment += timedelta(seconds=rng.randint(1, 5))
                    at = iso(moment)
                    officer = OFFICERS[rng.randrange(len(OFFICERS))]
                    steps.append({
                        "case_number": case.case_number, "step_no": offset, "node": transition.node,
                        "department": "行政审批处", "officer_code": officer[0], "officer_name": officer[1],
                        "status": transition.step_status, "opinion": transition.opinion,
                        "started_at": at, "finished_at": at,
                    })
                    result = None
                    if transition.result is not None:
                        result = {"code": transition.result, "finished_at": at, "note": transition.opinion}
                        results.append({
                            "case_number": case.case_number, "result": transition.result,
                            "finished_at": at, "note": transition.opinion, "fee_due": 0, "fee_paid": 0,
                        })
                    outbox.append({
                        "net_id": case.net_id, "case_number": case.case_number,
                        "status": transition.state, "at": at, "step": transition.node,
                        "opinion": transition.opinion, "reasons": None, "result": result,
                    })
                    events.append((case.net_id, "processing", transition.state, None, {"step": offset}))
                final = remaining[-1].state
                states.append({"k_case": case.case_number, "state": final, "updated_at": iso(moment)})
                report.advanced += 1
                report.transitions += len(remaining)
                report.finished += final in TERMINAL
            if steps:
                connection.execute(case_steps.insert(), steps)
                connection.execute(status_outbox.insert(), outbox)
            if results:
                connection.execute(case_results.insert(), results)
            if states:
                connection.execute(
                    update(cases)
                    .where(cases.c.case_number == bindparam("k_case"))
                    .values(state=bindparam("state"), updated_at=bindparam("updated_at")),
                    states,
                )
            record_events(connection, events, iso(start))
