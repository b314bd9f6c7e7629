"""province_report (administration zone): hourly incremental batches to the provincial
platform over SFTP, and the province's receipts back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import CronTriggerTimetable, dag, task

from hub.airflow_policy import DEFAULT_ARGS, PROVINCE_FEED, PROVINCE_RECEIPTS, loads, zone_tags

DOC = """
### province_report · 省级平台数据上报
Every hour: queues the case base records, process steps, results, penalty cases, alerts
and catalogue changes changed since the last scan (each row with its sync mark: pending,
sent, accepted, failed), packs them into a signed batch (JSON Lines and Parquet, manifest
with counts, SHA-256 per file and the watermark range), raises `PROVINCE_FEED_LAG` when the
oldest undelivered change is older than 20 hours, uploads the batches in order over SFTP
(connection `province_sftp`, host key pinned; `.part` then rename), and applies the
province's receipts: accepted rows are done, rejected rows are marked failed with the
province's reasons and listed in the steward report; once fixed at their source they go
again. See `docs/province-feed.md`.
"""


@dag(
    dag_id="province_report",
    schedule=CronTriggerTimetable("0 * * * *", timezone="Asia/Shanghai"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=zone_tags("admin", "province"),
    doc_md=DOC,
)
def province_report() -> None:
    @task(outlets=[PROVINCE_FEED])
    def plan_batches() -> dict[str, Any]:
        from hub import province, stages

        return stages.compact(province.province_plan())

    @task(outlets=[PROVINCE_RECEIPTS])
    def exchange_with_province() -> dict[str, Any]:
        from hub import province, stages

        return stages.compact(province.province_exchange())

    plan_batches() >> exchange_with_province()


if loads("admin"):
    province_report()
