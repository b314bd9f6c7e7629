"""inbound_receive (administration zone): verify inbound bundles and stage their records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from hub.airflow_policy import DEFAULT_ARGS, INBOUND_CHANNEL, INBOUND_STAGED, loads, zone_tags

DOC = """
### inbound_receive · 内网接收
Verifies each inbound bundle before parsing anything (signature, then sizes, then
hashes), quarantines what fails with a reason code, stores attachments by their hash and
stages the applications in the exchange database together with the ledger row
(exactly once). Runs every five minutes, and at once when the ferry asset is updated.
"""


@dag(
    dag_id="inbound_receive",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("*/5 * * * *", timezone="Asia/Shanghai"),
        assets=[INBOUND_CHANNEL],
    ),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=zone_tags("admin", "ferry"),
    doc_md=DOC,
)
def inbound_receive() -> None:
    @task(outlets=[INBOUND_STAGED])
    def receive_bundles() -> dict[str, Any]:
        from hub import stages

        return stages.compact(stages.inbound_receive())

    receive_bundles()


if loads("admin"):
    inbound_receive()
