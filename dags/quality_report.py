"""quality_report (administration zone): the daily data-quality report for data stewards
over the day's data: every suite, reconciliation per bundle and per day, Data Docs and the
steward summary."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task

from hub.airflow_policy import DEFAULT_ARGS, QUALITY_REPORT, loads, zone_tags

DOC = """
### quality_report · 数据质量日报
Runs every quality suite (catalogue, applications, cases, steps, results, penalty cases)
over the day's data, reconciles every bundle and the day (entered = accepted + rejected +
quarantined; accepted = handed over; status changes = published + held; provincial rows =
accepted + pending + failed), rebuilds the Data Docs site and writes the one-page steward
summary under `HUB_QUALITY_ROOT` (`hub quality report` prints where). Critical failures
close the provincial gate for that day (`hub.stages.gate_allows`); a reconciliation
mismatch fails the run.
"""


@dag(
    dag_id="quality_report",
    schedule=CronTriggerTimetable("30 23 * * *", timezone="Asia/Shanghai"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=zone_tags("admin", "quality"),
    doc_md=DOC,
)
def quality_report() -> None:
    @task(outlets=[QUALITY_REPORT])
    def report_day() -> dict[str, Any]:
        from hub import stages

        logical = get_current_context().get("logical_date")
        return stages.quality_report(day=logical.in_timezone("Asia/Shanghai").date() if logical else None)

    report_day()


if loads("admin"):
    quality_report()
