"""status_publish (administration zone): pack new status changes, masked, allow-listed
and scanned, into signed outbound bundles."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from hub.airflow_policy import DEFAULT_ARGS, EXCHANGE_STATUS, OUTBOUND_CHANNEL, loads, zone_tags

DOC = """
### status_publish · 外网反馈
Reads the status-change outbox after the last change already carried, withholds every
change of a case that must never be published (minors, secrets, privacy), builds the
public records of each change (status event, and the 双公示 record of a granted licence or
penalty decision: allow-listed fields only, personal data masked, plain text, named by the
query-password lookup), runs the final scanner on every record (fail closed: flagged
changes are held for review with the reason), and sends the rest as a signed outbound
bundle. A crash after sending is repaired by rebuilding the same bundle.
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

    publish_changes()


if loads("admin"):
    status_publish()
