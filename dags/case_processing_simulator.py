"""case_processing_simulator (administration zone, demo only): plays the case-processing
system, advancing cases in the exchange database through steps to results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import dag, task

from hub.airflow_policy import (
    DEFAULT_ARGS,
    EXCHANGE_APPLICATIONS,
    EXCHANGE_STATUS,
    loads,
    zone_tags,
)
from hub.settings import load_settings

DOC = """
### case_processing_simulator · 办件模拟
Stands in for the case-processing system (权力运行平台) in the demo, tests and
benchmarks: seeded, deterministic step sequences (受理, 审查, 补正, 专家评审, 退回,
决定) written under the exchange-database contract. Loaded only with `HUB_SIMULATE=1`.
"""


@dag(
    dag_id="case_processing_simulator",
    schedule=[EXCHANGE_APPLICATIONS],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=zone_tags("admin", "simulator"),
    doc_md=DOC,
)
def case_processing_simulator() -> None:
    @task(outlets=[EXCHANGE_STATUS])
    def advance_cases() -> dict[str, Any]:
        from hub import stages

        return stages.compact(stages.case_processing())

    advance_cases()


if loads("admin") and load_settings().simulate:
    case_processing_simulator()
