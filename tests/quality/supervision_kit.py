"""Hand-made supervision rows for the dashboard and statistics tests: clocks, alerts,
orders, applications, rejections and results, with the figures they must give worked out
by hand in the tests."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine

from connectors.db import (
    applications,
    case_results,
    cases,
    rejections,
    supervision_alerts,
    supervision_clocks,
    supervision_orders,
)

AGENCY = "3201000001"
NOW_TEXT = "2026-12-06T14:10:00+08:00"
# Personal data an application row carries: it must never reach the page or the statistics.
APPLICANT_NAME = "张三丰"
APPLICANT_ID = "320102199001011237"
APPLICANT_MOBILE = "13812345678"


def case_number(n: int) -> str:
    return f"{AGENCY}{n:010d}"


def clock(n: int, department: str, power_code: str, state: str, *, finished_at: str | None = None,
          used: int = 0, limit: int = 100, step_no: int = 0, basis: str = "promised",
          paused: int = 0) -> dict[str, Any]:
    return {
        "case_number": case_number(n), "step_no": step_no, "basis": basis, "limit_value": 5,
        "unit": "working_days", "department": department, "power_code": power_code,
        "started_at": "2026-10-01T09:00:00+08:00", "due_at": "2026-10-08T17:00:00+08:00",
        "finished_at": finished_at, "used_seconds": used, "paused_seconds": paused,
        "remaining_seconds": limit - used, "limit_seconds": limit, "state": state, "level": None,
        "next_check_at": None, "read_at": "2026-12-06T14:00:00+08:00",
    }


def alert(ident: int, n: int, level: str, department: str, raised_at: str, *, state: str = "open",
          escalated_at: str | None = None, power_code: str = "P1", rule: str = "promised_time",
          step_no: int = 0) -> dict[str, Any]:
    return {
        "id": ident, "rule": rule, "level": level, "case_number": case_number(n), "step_no": step_no,
        "department": department, "power_code": power_code, "state": state, "raised_at": raised_at,
        "escalated_at": escalated_at, "lifted_at": None, "closed_at": None, "detail": "{}",
        "open_key": f"{rule}/{case_number(n)}/{step_no}" if state == "open" else None,
    }


def order(ident: int, n: int, state: str, deadline: str, issued_at: str = "2026-12-01T10:00:00+08:00") -> dict[str, Any]:
    return {
        "id": ident, "case_number": case_number(n), "issued_by": "监察室王五", "instruction": "请加快办理",
        "deadline": deadline, "issued_at": issued_at, "state": state,
    }


def application(n: int, power_code: str, registered_at: str) -> dict[str, Any]:
    net_id = f"NET20261001{n:06d}"
    envelope = {"net_id": net_id, "power_code": power_code, "applicant": {
        "name": APPLICANT_NAME, "id_number": APPLICANT_ID, "mobile": APPLICANT_MOBILE}}
    return {
        "net_id": net_id, "case_number": case_number(n), "power_code": power_code, "power_version": 1,
        "agency_code": AGENCY, "case_name": f"{APPLICANT_NAME}的申请", "applicant_type": "person",
        "applicant_name": APPLICANT_NAME, "applicant_id_type": "resident_id",
        "applicant_id_number": APPLICANT_ID, "applicant_mobile": APPLICANT_MOBILE,
        "submitted_at": registered_at, "registered_at": registered_at, "bundle": "inbound#1",
        "envelope": json.dumps(envelope, ensure_ascii=False),
    }


def case(n: int) -> dict[str, Any]:
    return {"case_number": case_number(n), "net_id": f"NET20261001{n:06d}", "state": "finished",
            "updated_at": "2026-12-01T10:00:00+08:00"}


def registered_case(n: int, power_code: str, registered_at: str, origin: str = "internet") -> dict[str, Any]:
    """The ``cases`` row of a case of any origin (an internet one has its ``application``)."""
    return {"case_number": case_number(n), "net_id": f"NET20261001{n:06d}" if origin == "internet" else None,
            "state": "in_progress", "updated_at": registered_at, "origin": origin, "power_code": power_code,
            "power_version": 1, "agency_code": AGENCY, "registered_at": registered_at}


def result(n: int, finished_at: str) -> dict[str, Any]:
    return {"case_number": case_number(n), "result": 2, "finished_at": finished_at, "note": "准予许可"}


def rejection(n: int, rejected_at: str, envelope: str) -> dict[str, Any]:
    return {"net_id": f"NET20261001R{n:05d}", "reasons": [{"code": "MATERIAL_MISSING"}],
            "rejected_at": rejected_at, "bundle": "inbound#1", "envelope": envelope}


def rejected_envelope(power_code: str) -> str:
    return json.dumps({"power_code": power_code, "applicant": {"name": APPLICANT_NAME}}, ensure_ascii=False)


def insert(engine: Engine, **tables: list[dict[str, Any]]) -> None:
    known = {t.name: t for t in (applications, cases, case_results, rejections, supervision_clocks,
                                  supervision_alerts, supervision_orders)}
    with engine.begin() as connection:
        for name, rows in tables.items():
            if rows:
                connection.execute(known[name].insert(), rows)


# The dashboard's data set, read at NOW_TEXT with a 30-day window (2026-11-07 .. 2026-12-06).
FINISHED_IN_WINDOW = [
    # (case, department, item, state, finished at, used seconds, limit seconds): used/limit in %
    (1, "审批一处", "P1", "finished_on_time", "2026-11-06T16:30:00+00:00", 20, 200),  # 10 %, 11-07 00:30 local
    (2, "审批一处", "P1", "finished_on_time", "2026-11-20T10:00:00+08:00", 40, 200),  # 20 %
    (3, "审批一处", "P1", "finished_on_time", "2026-11-20T11:00:00+08:00", 30, 100),  # 30 %
    (4, "审批二处", "P2", "finished_on_time", "2026-11-25T09:00:00+08:00", 40, 100),  # 40 %
    (5, "审批二处", "P2", "finished_on_time", "2026-12-01T09:00:00+08:00", 50, 100),  # 50 %
    (6, "审批二处", "P2", "finished_on_time", "2026-12-01T10:00:00+08:00", 60, 100),  # 60 %
    (7, "执法支队", "P3", "finished_on_time", "2026-12-02T10:00:00+08:00", 700, 1000),  # 70 %
    (8, "执法支队", "P3", "finished_on_time", "2026-12-03T10:00:00+08:00", 80, 100),  # 80 %
    (9, "执法支队", "P3", "finished_on_time", "2026-12-05T10:00:00+08:00", 90, 100),  # 90 %
    (10, "审批一处", "P1", "finished_late", "2026-12-05T11:00:00+08:00", 150, 100),  # 150 %
]


def dashboard_rows() -> dict[str, list[dict[str, Any]]]:
    clocks = [clock(n, d, p, s, finished_at=f, used=u, limit=lim) for n, d, p, s, f, u, lim in FINISHED_IN_WINDOW]
    clocks += [
        # Finished late the day before the window (23:30 local): not counted.
        clock(11, "审批一处", "P1", "finished_late", finished_at="2026-11-06T15:30:00Z", used=500, limit=100),
        # Open: 4 running, 1 paused, 2 overdue.
        clock(12, "审批一处", "P1", "running", used=10),
        clock(13, "审批一处", "P1", "running", used=20),
        clock(14, "审批二处", "P2", "running", used=30),
        clock(15, "执法支队", "P3", "running", used=40),
        clock(16, "审批二处", "P2", "paused", used=50, paused=2 * 7 * 3600 + 3 * 3600 + 1800),  # 2.5 working days
        clock(17, "审批一处", "P1", "overdue", used=130),
        clock(18, "审批二处", "P2", "overdue", used=140),
        # Not case-level promised clocks: never counted.
        clock(17, "审批一处", "P1", "overdue", basis="statutory", used=300),
        clock(12, "审批一处", "P1", "overdue", step_no=1, used=300),
        clock(1, "审批一处", "P1", "finished_late", step_no=1, finished_at="2026-11-06T16:30:00+00:00",
              used=300),
    ]
    alerts = [
        alert(1, 17, "alarm", "审批一处", "2026-12-05T09:00:00+08:00", escalated_at="2026-12-06T01:00:00Z"),
        alert(2, 18, "alarm", "审批二处", "2026-12-04T10:00:00+08:00", power_code="P2"),
        alert(3, 12, "warning", "审批一处", "2026-12-06T08:00:00+08:00"),
        alert(4, 13, "warning", "审批一处", "2026-11-30T10:00:00+08:00", rule="repeated_correction"),
        alert(5, 15, "reminder", "执法支队", "2026-12-06T13:00:00+08:00", power_code="P3"),
        alert(6, 14, "warning", "执法支队", "2026-12-03T10:00:00+08:00", state="lifted"),
        alert(7, 11, "alarm", "审批一处", "2026-11-01T10:00:00+08:00", state="closed"),
    ]
    results = [result(n, f) for n, _, _, _, f, _, _ in FINISHED_IN_WINDOW]
    results.append(result(11, "2026-11-06T15:30:00Z"))
    # A case finished on 12-04 that the supervision pass has not read yet (no clock).
    results.append(result(19, "2026-12-04T16:00:00+08:00"))
    orders = [
        order(1, 17, "issued", "2026-12-05T17:00:00+08:00"),
        # By text 09:00Z comes before 10:00+08:00; in time it is 17:00 local, after order 4.
        order(2, 18, "answered", "2026-12-10T09:00:00Z", issued_at="2026-12-02T09:30:00+08:00"),
        order(4, 12, "issued", "2026-12-10T10:00:00+08:00"),
        order(3, 11, "closed", "2026-11-20T17:00:00+08:00"),
    ]
    apps = [application(n, "P1", "2026-10-01T09:00:00+08:00") for n in (12, 17)]
    return {"supervision_clocks": clocks, "supervision_alerts": alerts, "case_results": results,
            "supervision_orders": orders, "applications": apps}
