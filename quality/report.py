"""One quality run: load the frames, run the suites, reconcile per bundle and per day, keep
the run in the history, update the gate, write the steward summary.

Files under the quality root (``HUB_QUALITY_ROOT``)::

    gx/                      Great Expectations project (suites, validation results)
    data-docs/index.html     the Data Docs site
    summary.html             the latest steward summary; summaries/<run_id>.html every run
    history.jsonl            one line per run: counts for the trend
    gate.json                critical failures per scope and record kind (quality.gate)
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from connectors.files import write_atomic
from quality import data
from quality.gate import batch_verdict, record_gate
from quality.reconciliation import (
    Balance,
    ReconciliationMismatch,
    describe,
    mismatches,
    per_day,
    reconcile_inbound_bundles,
    reconcile_provincial,
    reconcile_status_bundles,
)
from quality.summary import render_summary

CST = timezone(timedelta(hours=8), "CST")
HISTORY_FILE = "history.jsonl"
SUMMARY_FILE = "summary.html"
TREND_RUNS = 14
ALL_SUITES = ("catalogue", "applications", "cases", "steps", "results", "penalties")
# The suites whose frames can be limited to what a stage's bundles carried.
BUNDLE_SCOPED_SUITES = frozenset({"catalogue", "applications", "cases", "steps", "results"})
# Records (applications, cases with their steps and result, penalty cases) the daily report
# holds at a time: a bundle's worth, so its memory does not grow with the day.
CHUNK_ROWS = 20_000


@dataclass(frozen=True)
class QualityRun:
    """What one run found and where its pages are."""

    run_id: str
    at: str
    scope: str
    outcomes: list[dict[str, Any]]
    balances: list[Balance]
    summary: Path
    data_docs: Path

    @property
    def mismatches(self) -> list[Balance]:
        return mismatches(self.balances)

    def report(self) -> dict[str, Any]:
        """A small JSON-able report for XCom and the CLI."""
        failing = [o for o in self.outcomes if not o["success"]]
        return {
            "run_id": self.run_id, "scope": self.scope, "summary": str(self.summary),
            "data_docs": str(self.data_docs),
            "critical": {o["rule"]: o["failed"] for o in failing if o["severity"] == "critical"},
            "warnings": {o["rule"]: o["failed"] for o in failing if o["severity"] == "warning"},
            "reconciliation": [describe(b) for b in self.mismatches] or "balanced",
        }


def load_frames(
    suites: Iterable[str], admin: Engine, *, day: date | None,
    catalogue_documents: Sequence[Mapping[str, Any]] | None = None,
    bundles: Sequence[str] | None = None,
) -> dict[str, pd.DataFrame]:
    """The frames the named suites check, through the data-access layer: ``day``'s data, or
    only what ``bundles`` carried (the applications of its inbound bundles, the cases whose
    changes its outbound bundles sent)."""
    wanted = set(suites)
    if bundles is not None and wanted - BUNDLE_SCOPED_SUITES:
        raise ValueError(f"suites {sorted(wanted - BUNDLE_SCOPED_SUITES)} cannot be scoped to bundles")
    frames: dict[str, pd.DataFrame] = {}
    if "catalogue" in wanted and catalogue_documents is not None:
        frames["catalogue"] = data.catalogue_frame(catalogue_documents)
    if "applications" in wanted:
        frames["applications"] = data.load_applications(admin, day, bundles=bundles)
    if wanted & {"cases", "steps", "results"}:
        frames.update({k: v for k, v in data.load_case_frames(admin, day, bundles=bundles).items() if k in wanted})
    if "penalties" in wanted:
        frames["penalties"] = data.load_penalties(admin, day)
    return frames


def frame_chunks(
    suites: Iterable[str], admin: Engine, *, day: date | None,
    catalogue_documents: Sequence[Mapping[str, Any]] | None = None, rows: int = CHUNK_ROWS,
) -> Iterator[dict[str, pd.DataFrame]]:
    """The frames of ``load_frames`` for ``day``, a chunk of at most ``rows`` records of one
    kind at a time (applications by NET_ID, cases by case number with all their steps and
    their result, penalty cases by case number)."""
    wanted = set(suites)
    if "catalogue" in wanted and catalogue_documents is not None:
        yield {"catalogue": data.catalogue_frame(catalogue_documents)}
    if "applications" in wanted:
        for applications in data.application_chunks(admin, day, rows):
            yield {"applications": applications}
    if wanted & {"cases", "steps", "results"}:
        for frames in data.case_frame_chunks(admin, day, rows):
            yield {k: v for k, v in frames.items() if k in wanted}
    if "penalties" in wanted:
        for penalties in data.penalty_chunks(admin, day, rows):
            yield {"penalties": penalties}


def reconcile_all(
    admin: Engine, internet: Engine | None, day: date | None, *, bundles: Sequence[str] | None = None
) -> list[Balance]:
    """Per bundle lines and their per-day sums (only ``day``'s when given); only the lines of
    ``bundles`` (inbound and outbound refs) when given."""
    if bundles is not None:
        lines = reconcile_inbound_bundles(admin, internet, sequences=data.sequences(bundles, "inbound"))
        lines += reconcile_status_bundles(admin, sequences=data.sequences(bundles, "outbound"))
        return lines + per_day(lines)
    lines = reconcile_inbound_bundles(admin, internet, day=day) + reconcile_status_bundles(admin, day=day)
    lines += reconcile_provincial(data.load_provincial_counts(admin, day) or [])
    if day is not None:
        lines = [b for b in lines if b.day == day.isoformat()]
    return lines + per_day(lines)


LOCK_FILE = ".quality.lock"


@contextmanager
def exclusive(root: Path) -> Iterator[None]:
    """One quality run at a time per quality root, across processes (and across the hosts of
    a Celery deployment whose shared file system honours locks): opening the GX file context
    rewrites the project's configuration, and the run history is read, extended and written
    back. Two ``check_quality`` tasks at once otherwise read a half-written
    ``great_expectations.yml`` (a TypeError deep in GX, and a retry minutes later)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def run_quality(
    root: Path,
    admin: Engine,
    *,
    internet: Engine | None = None,
    day: date | None = None,
    suites: Iterable[str] = ALL_SUITES,
    catalogue_documents: Sequence[Mapping[str, Any]] | None = None,
    frames: Mapping[str, pd.DataFrame] | None = None,
    context: Any = None,
    label: str | None = None,
    bundles: Sequence[str] | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> QualityRun:
    """Run the suites and the reconciliation, record the run, write the summary. Raises
    nothing for failed expectations (the gate and the summary carry them); the caller
    decides what a reconciliation mismatch does (``raise_on_mismatch``).

    With ``bundles`` (the refs a stage's run handled), only their data is checked and
    reconciled: a stage's check after each run does not grow with the day (the daily
    report covers the day). A day is read and validated ``chunk_rows`` records at a time
    (``frame_chunks``), each chunk a part of the run in the Data Docs, and the parts'
    outcomes are added up: the report's memory is bounded by the chunk, not by the day."""
    from quality.data_docs_offline import localise_site
    from quality.runner import docs_dir, docs_index, merge_outcomes, quality_context, validate

    with exclusive(root):
        started = time.time() - 1  # file times may be coarser than the clock
        moment = datetime.now(CST).replace(microsecond=0)
        scope = label or (day.isoformat() if day else "all")
        run_id = f"{scope}-{moment.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        context = context if context is not None else quality_context(root)
        if frames is not None:
            checked = validate(context, frames, run_id)
        elif bundles is not None:
            checked = validate(context, load_frames(
                suites, admin, day=day, catalogue_documents=catalogue_documents, bundles=bundles), run_id)
        else:  # a day (or everything): chunk by chunk, each validated as a part of this run
            checked = merge_outcomes(
                outcome
                for part, chunk in enumerate(frame_chunks(
                    suites, admin, day=day, catalogue_documents=catalogue_documents, rows=chunk_rows), 1)
                for outcome in validate(context, chunk, f"{run_id}-part{part:04d}")
            )
        localise_site(docs_dir(root), since=started)
        balances = reconcile_all(admin, internet, day, bundles=bundles)
        record_gate(root, scope, [(_record_kind(o.suite), o.rule) for o in checked
                                  if not o.success and o.severity == "critical"])
        outcomes = [o.as_dict() for o in checked]
        entry = {
            "run_id": run_id, "at": moment.isoformat(), "scope": scope,
            "critical": sum(o["failed"] for o in outcomes if not o["success"] and o["severity"] == "critical"),
            "warnings": sum(o["failed"] for o in outcomes if not o["success"] and o["severity"] == "warning"),
            "mismatches": len(mismatches(balances)),
            "rules": {o["rule"]: o["failed"] for o in outcomes if not o["success"]},
        }
        history = append_history(root, entry)
        docs = docs_index(root)
        page = render_summary(entry, outcomes, balances, history[-TREND_RUNS:],
                              data_docs=os.path.relpath(docs, root), findings=steward_findings(admin))
        pages = root / "summaries"
        pages.mkdir(parents=True, exist_ok=True)
        (pages / f"{run_id}.html").write_text(page, "utf-8")
        write_atomic(root / SUMMARY_FILE, page.encode("utf-8"))
        return QualityRun(run_id, entry["at"], scope, outcomes, balances, root / SUMMARY_FILE, docs)


# Open alarms that a data steward, not an operator, must act on: a year missing from the
# working-day calendar, a legal document refused for want of reasons or items.
STEWARD_ALARMS = ("CALENDAR_GAP", "LEGAL_DOCUMENT_REFUSED")


def steward_findings(admin: Engine) -> list[dict[str, Any]]:
    """Open alarms of the kinds in ``STEWARD_ALARMS``, for the summary's findings."""
    from connectors.alarms import open_alarm_rows

    with admin.connect() as connection:
        rows = [row for kind in STEWARD_ALARMS for row in open_alarm_rows(connection, kind)]
    return [{"kind": r.kind, "at": r.at, "message": (r.detail or {}).get("message", "")} for r in rows]


def raise_on_mismatch(run: QualityRun) -> None:
    """A reconciliation mismatch fails the DAG: records were lost or repeated."""
    wrong = run.mismatches
    if wrong:
        raise ReconciliationMismatch(
            f"{len(wrong)} reconciliation mismatch(es); first: {describe(wrong[0])}; see {run.summary}")


def _record_kind(suite: str) -> str:
    from quality.suites import SUITES

    return SUITES[suite].record_kind


def append_history(root: Path, entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Add a run to the history and return the whole history, oldest first."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / HISTORY_FILE, "a", encoding="utf-8") as stream:
        stream.write(json.dumps(entry, ensure_ascii=False) + "\n")
    return load_history(root)


def load_history(root: Path) -> list[dict[str, Any]]:
    path = root / HISTORY_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def check_provincial_batch(root: Path, admin: Engine, folder: Path, *, mode: str = "critical") -> str | None:
    """The provincial gate for the batch built in ``folder``: its files are checked against
    its manifest (the provincial-batch suite), then ``quality.gate.batch_verdict`` says
    whether it may be sent (None) or why it is held."""
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    batch_id = folder.name
    run_quality(
        root, admin, frames={"provincial_batch": data.provincial_batch_frame(folder, manifest)},
        suites=("provincial_batch",), label=batch_id,
    )
    return batch_verdict(root, batch_id, manifest, mode=mode)
