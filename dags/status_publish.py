"""status_publish (administration zone): pack new status changes, masked, allow-listed
and scanned, into signed outbound bundles."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from hub.airflow_policy import (
    DEFAULT_ARGS,
    EXCHANGE_STATUS,
    OUTBOUND_CHANNEL,
    QUALITY_REPORT,
    loads,
    zone_tags,
)

DOC = """
### status_publish · 外网反馈
Reads the status-change outbox after the last change already carried, builds the
public record of each change (allow-listed fields only, personal data masked), runs the
final scanner (fail closed: a record that still holds an identifier or phone number is
held for review), and sends the rest as a signed outbound bundle. Then checks today's
cases, steps and results (quality suites) and reconciles each bundle; a reconciliation
mismatch fails the run.
"""


@dag(
    dag_id="status_publish",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("*/5 * * * *", timezone="Asia/Shanghai"),
        assets=[EXCHANGE_STATUS],
    ),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=zone_tags("admin", "ferry", "publication"),
    doc_md=DOC,
)
def status_publish() -> None:
    @task(outlets=[OUTBOUND_CHANNEL])
    def publish_changes() -> dict:
        from hub import stages

        return stages.compact(stages.status_publish())

    @task(outlets=[QUALITY_REPORT])
    def check_quality() -> dict:
        from hub import stages

        return stages.quality_check(suites=("cases", "steps", "results"), label="status_publish")

    publish_changes() >> check_quality()


if loads("admin"):
    status_publish()
