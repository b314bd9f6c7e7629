"""applications_load (administration zone): validate staged applications, hand accepted
ones to case processing with a case number, record every rejection with its reasons."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import dag, task

from hub.airflow_policy import (
    DEFAULT_ARGS,
    EXCHANGE_APPLICATIONS,
    INBOUND_STAGED,
    QUALITY_REPORT,
    loads,
    zone_tags,
)

DOC = """
### applications_load · 受理校验与交换
Validates each staged application (envelope schema, identifier check digits, the
item's state in the catalogue, materials) and writes accepted ones into the exchange
database with a case number (办件流水号); rejected ones keep all their reasons (code,
JSON pointer, Chinese message) and go back to the applicant through the public feed.
Then checks the applications this run loaded (quality suite) and reconciles the inbound
bundles they came in; a reconciliation mismatch fails the run. The check covers the run's
own bundles, not the day so far (the daily `quality_report` covers the day).
"""


@dag(
    dag_id="applications_load",
    schedule=[INBOUND_STAGED],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=zone_tags("admin", "exchange-db"),
    doc_md=DOC,
)
def applications_load() -> None:
    @task(outlets=[EXCHANGE_APPLICATIONS])
    def validate_and_load() -> dict[str, Any]:
        from hub import stages

        return stages.compact(stages.applications_load())

    @task(outlets=[QUALITY_REPORT])
    def check_quality(loaded: dict[str, Any]) -> dict[str, Any]:
        from hub import stages

        return stages.quality_check(suites=("applications",), label="applications_load", bundles=loaded["bundles"])

    check_quality(validate_and_load())  # type: ignore[arg-type]  # an XComArg, its dict at run time


if loads("admin"):
    applications_load()
