"""intake (internet zone): carry new portal submissions into signed inbound bundles."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import dag, task

from hub.airflow_policy import DEFAULT_ARGS, INBOUND_CHANNEL, loads, zone_tags

DOC = """
### intake · 外网受理
Collects every new submission from the public portal's front database (前置库: rows read by
keyset, attachments in its content-addressed store) and/or its drop folder (`HUB_INGRESS`),
quarantines what cannot be carried safely (unreadable JSON, missing or disguised
attachments) with its reason, and packs the rest into a signed inbound bundle on the ferry
(write, fsync, rename). Front-database rows are marked carried in the transaction that
plans their bundle.

Re-runnable: a crash after planning a bundle is repaired by rebuilding the same bytes.

Then keeps the inbound channel up: re-sends (byte-identical, from the outbox) what the
latest receipt from the administration zone reports missing, deletes outbox copies
acknowledged longer than the retention period, sends a heartbeat bundle when idle, and
raises an alarm when the outbound channel has been silent too long.
"""


@dag(
    dag_id="intake",
    schedule="*/5 * * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=zone_tags("internet", "ferry"),
    doc_md=DOC,
)
def intake() -> None:
    @task(outlets=[INBOUND_CHANNEL])
    def collect_submissions() -> dict[str, Any]:
        from hub import stages

        return stages.compact(stages.intake())

    @task(outlets=[INBOUND_CHANNEL])
    def keep_channel() -> dict[str, Any]:
        from hub import stages

        return stages.compact(stages.inbound_upkeep())

    collect_submissions() >> keep_channel()


if loads("internet"):
    intake()
