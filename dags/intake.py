"""intake (internet zone): carry new portal submissions into signed inbound bundles."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from hub.airflow_policy import DEFAULT_ARGS, INBOUND_CHANNEL, loads, zone_tags

DOC = """
### intake · 外网受理
Collects every complete submission from the public portal's drop folder, quarantines
what cannot be carried safely (unreadable JSON, missing or disguised attachments), and
packs the rest into a signed inbound bundle on the ferry (write, fsync, rename).

Re-runnable: a crash after planning a bundle is repaired by rebuilding the same bytes.
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
    def collect_submissions() -> dict:
        from hub import stages

        return stages.compact(stages.intake())

    collect_submissions()


if loads("internet"):
    intake()
