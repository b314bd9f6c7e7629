"""supervision (administration zone): the electronic-supervision pass (电子监察) every 15
minutes in working hours: clocks, alerts and supervision orders, incrementally."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import CronTriggerTimetable, dag, task

from hub.airflow_policy import (
    DEFAULT_ARGS,
    SUPERVISION_ALERTS,
    SUPERVISION_REPORTS,
    loads,
    zone_tags,
)

DOC = """
### supervision · 电子监察
Every 15 minutes from 08:00 to 18:59 (Asia/Shanghai), every day (make-up working days fall
on weekends; on a day off the pass finds little to do). Looks only at the cases that can
have changed since the last pass: a status change in the outbox, an order issued, answered
or closed, an item suspended or resumed (挂起/解挂), a calendar import, or a clock reaching
its next threshold. For each: the statutory and promised clocks of the case and the
promised time of each step (working days, calendar days, months, years; 补正, 暂停, 中止,
Art. 45 and 挂起 pauses), the alerts the deployment's policy calls for (`HUB_ALERT_POLICY`:
JS-2013A or JS-2013B or a policy file), the conduct rules, and overdue supervision orders
(督办). Alerts are raised, escalated (a higher level lifts the lower), lifted, or closed
when the case finishes on time, and go up in the province feed's `alert` kind (codes,
levels, times and durations only; no personal data). A year the working-day calendar does
not cover raises the `CALENDAR_GAP` alarm; the cases it affects are not counted until the
year is imported (`hub calendar import`). Then writes the supervision office's page and
this month's statistics so far under `$HUB_QUALITY_ROOT/supervision/` (`index.html`,
`statistics-YYYY-MM.csv` and `.parquet`). See `docs/supervision.md` and
`docs/supervision-dashboard.md`.
"""


@dag(
    dag_id="supervision",
    schedule=CronTriggerTimetable("*/15 8-18 * * *", timezone="Asia/Shanghai"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=zone_tags("admin", "supervision"),
    doc_md=DOC,
)
def supervision() -> None:
    @task(outlets=[SUPERVISION_ALERTS])
    def supervise() -> dict[str, Any]:
        from hub import stages

        return stages.compact(stages.supervision())

    @task(outlets=[SUPERVISION_REPORTS])
    def write_reports() -> dict[str, Any]:
        from hub import stages

        return stages.supervision_reports()

    supervise() >> write_reports()


if loads("admin"):
    supervision()
