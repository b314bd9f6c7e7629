"""public_store_compact (internet zone): the nightly compaction of the public status store,
off the data path: full tiers of bundle segments merged, so a lookup probes a few dozen
segments however many days the store holds (docs/public-store.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import CronTriggerTimetable, dag, task

from hub.airflow_policy import DEFAULT_ARGS, PUBLIC_STORE, loads, zone_tags

DOC = """
### public_store_compact · 公开办件查询库整理
Each bundle that portal_publish applies adds its records to the public status store as a
segment of their own (cheap, and flat however large the store grows); a lookup probes each
segment. Every night this merges each full tier of segments of applied bundles (32) into
one segment of the next tier, in one transaction per merge, while the site keeps serving
(readers see the store before or after a merge, never between). `hub run
public_store_compact` does the same by hand.
"""


@dag(
    dag_id="public_store_compact",
    schedule=CronTriggerTimetable("40 2 * * *", timezone="Asia/Shanghai"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=zone_tags("internet", "public"),
    doc_md=DOC,
)
def public_store_compact() -> None:
    @task(outlets=[PUBLIC_STORE])
    def compact_store() -> dict[str, Any]:
        from hub import stages

        return stages.public_store_compact()

    compact_store()


if loads("internet"):
    public_store_compact()
