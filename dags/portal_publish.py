"""portal_publish (internet zone): verify outbound bundles and write the public status feed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from hub.airflow_policy import DEFAULT_ARGS, OUTBOUND_CHANNEL, PUBLIC_FEED, loads, zone_tags

DOC = """
### portal_publish · 外网公开
Verifies each outbound bundle (signature, sizes, hashes) and merges its status events
into the public feed: one JSON document per application under a name derived from its
case number and query password (no index), and the daily results disclosure (双公示)
lists; written atomically and idempotently by event id. Keeps the static status page
(`index.html`, `status.js`, `config.json`) in the public folder. Checks each audit checkpoint
of the administration zone against the last one accepted (a fork or a rollback is quarantined
with a security alarm) and publishes it with its tiles under `audit/`.
"""


@dag(
    dag_id="portal_publish",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("*/5 * * * *", timezone="Asia/Shanghai"),
        assets=[OUTBOUND_CHANNEL],
    ),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=zone_tags("internet", "ferry", "publication"),
    doc_md=DOC,
)
def portal_publish() -> None:
    @task(outlets=[PUBLIC_FEED])
    def write_public_feed() -> dict[str, Any]:
        from hub import stages

        return stages.compact(stages.portal_publish())

    write_public_feed()


if loads("internet"):
    portal_publish()
