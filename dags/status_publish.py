"""status_publish (administration zone): pack new status changes, masked, allow-listed
and scanned, into signed outbound bundles."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from hub.airflow_policy import (
    DEFAULT_ARGS,
    EXCHANGE_STATUS,
    OUTBOUND_CHANNEL,
    PUBLIC_CATALOGUE,
    QUALITY_REPORT,
    loads,
    zone_tags,
)

DOC = """
### status_publish · 外网反馈
Reads the status-change outbox after the last change already carried, withholds every
change of a case that must never be published (minors, secrets, privacy), builds the
public records of each change (status event, and the 双公示 record of a granted licence or
penalty decision: allow-listed fields only, personal data masked, plain text, named by the
query-password lookup), runs the final scanner on every record (fail closed: flagged
changes are held for review with the reason), and sends the rest as a signed outbound
bundle. A crash after sending is repaired by rebuilding the same bundle. Then, when the
power catalogue has changed, sends the public catalogue (in-use items with their
category's disclosure fields) in its own outbound bundle. Then sends the audit log's newest
signed checkpoint (痕迹管理), with the consistency proof from the one sent before and the new
tiles, in its own outbound bundle (`docs/audit.md`).

Then keeps the outbound channel up: re-sends what the internet zone's latest receipt
reports missing, prunes acknowledged outbox copies, sends a heartbeat bundle when idle,
and raises an alarm when the inbound channel has been silent too long.

Beside that, checks the cases whose changes this run sent, with their steps and results
(quality suites), and reconciles the run's bundles; a reconciliation mismatch fails the
run. The check covers the run's own bundles, not the day so far (the daily
`quality_report` covers the day).
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
    def publish_changes() -> dict[str, Any]:
        from hub import stages

        return stages.compact(stages.status_publish())

    @task(outlets=[OUTBOUND_CHANNEL, PUBLIC_CATALOGUE])
    def publish_catalogue() -> dict[str, Any]:
        from hub import stages

        return stages.compact(stages.catalogue_publish())

    @task(outlets=[OUTBOUND_CHANNEL])
    def publish_audit_checkpoint() -> dict[str, Any]:
        from hub import stages

        return stages.compact(stages.audit_publish())

    @task(outlets=[OUTBOUND_CHANNEL])
    def keep_channel() -> dict[str, Any]:
        from hub import stages

        return stages.compact(stages.outbound_upkeep())

    @task(outlets=[QUALITY_REPORT])
    def check_quality(published: dict[str, Any]) -> dict[str, Any]:
        from hub import stages

        return stages.quality_check(
            suites=("cases", "steps", "results"), label="status_publish", bundles=published["bundles"]
        )

    published = publish_changes()
    published >> publish_catalogue() >> publish_audit_checkpoint() >> keep_channel()
    check_quality(published)  # type: ignore[arg-type]  # an XComArg, its dict at run time


if loads("admin"):
    status_publish()
