"""catalogue_sync (administration zone): daily, the provincial platform's approved
catalogue comes down over SFTP and is applied and re-published."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import CronTriggerTimetable, dag, task

from hub.airflow_policy import DEFAULT_ARGS, EXCHANGE_CATALOGUE, loads, zone_tags

DOC = """
### catalogue_sync · 事项目录下发
Every day: pulls the approved catalogue files (`.jsonl`, `.xlsx`) from the province's
SFTP outbox (`outbox/catalogue/`, connection `province_sftp`, host key pinned), keeps
each under its SHA-256 (a file is applied once per content), applies it with the
catalogue import (good rows applied, bad rows reported row by row) and re-publishes the
public catalogue when anything changed.
"""


@dag(
    dag_id="catalogue_sync",
    schedule=CronTriggerTimetable("30 2 * * *", timezone="Asia/Shanghai"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=zone_tags("admin", "province", "catalogue"),
    doc_md=DOC,
)
def catalogue_sync() -> None:
    @task(outlets=[EXCHANGE_CATALOGUE])
    def pull_and_apply_catalogue() -> dict[str, Any]:
        from hub import province, stages

        return stages.compact(province.catalogue_sync())

    pull_and_apply_catalogue()


if loads("admin"):
    catalogue_sync()
