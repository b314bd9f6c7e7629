"""legal_documents (administration zone): render the legal documents (法律文书) of new
status changes: 受理通知书, 不予受理决定书, 补正告知书."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from hub.airflow_policy import DEFAULT_ARGS, EXCHANGE_STATUS, LEGAL_DOCUMENTS, loads, zone_tags

DOC = """
### legal_documents · 法律文书
Reads the status-change outbox after the last change it handled (position
`legal_documents`) and renders, for each change to `accepted`, `not_accepted` or
`correction_requested` of an item applied for, the document addressed to the applicant:
受理通知书, 不予受理决定书 (with the reasons and the applicant's remedies) or 补正告知书 (every
item to correct, at once). PDF in the CJK font the set-up installs, stored under
`documents/` of the administration zone's data root; the file first, then its
`case_documents` row and the new position in one transaction, so a rerun after a crash
never records a document twice. A document the rules refuse (no reasons, no items to
correct) becomes a `LEGAL_DOCUMENT_REFUSED` finding on the steward summary. Operators:
`hub documents list CASE`, `hub documents render --case CASE`. See
`docs/legal-documents.md`.
"""


@dag(
    dag_id="legal_documents",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("*/5 * * * *", timezone="Asia/Shanghai"),
        assets=[EXCHANGE_STATUS],
    ),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=zone_tags("admin", "documents"),
    doc_md=DOC,
)
def legal_documents() -> None:
    @task(outlets=[LEGAL_DOCUMENTS])
    def render_documents() -> dict[str, Any]:
        from hub import stages

        return stages.compact(stages.legal_documents())

    render_documents()


if loads("admin"):
    legal_documents()
