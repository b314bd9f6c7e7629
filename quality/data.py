"""The data-access layer of the quality suites: one function per suite that loads its
DataFrame from the zone database (or the catalogue), plus the derived columns the suites
check (check digits, working days, fee deviation), computed with ``rules``.

Table names live only here, so a schema change (Alembic migrations, the penalty-case and
provincial-sync tables) is adapted in one place. Tables that a deployment's schema does
not have yet (``penalty_cases``, ``province_sync``) give empty frames or no counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from typing import Any

import orjson
import pandas as pd
from sqlalchemy import Engine, false, func, inspect, or_, select

from connectors.db import (
    applications,
    case_registrations,
    case_results,
    case_steps,
    cases,
    ferry_sent,
    inbound_records,
    penalty_cases,
    province_sync,
    status_outbox,
)
from quality.reconciliation import ProvincialCounts, on_day
from rules.cases import CASE_ORIGINS
from rules.catalogue import CATEGORIES, DISCLOSURE_FIELDS, STATES
from rules.identifiers import identifier_valid
from rules.workdays import working_days_between

PENALTY_TABLE = "penalty_cases"
PROVINCE_SYNC_TABLE = "province_sync"
CORRECTION_STEP = 4  # DOMAIN step status: correction requested (补正)
FEE_TOLERANCE = 0.05
PENALTY_REGISTRATION_WORKING_DAYS = 10


def _frame(engine: Engine, query: Any) -> pd.DataFrame:
    with engine.connect() as connection:
        result = connection.execute(query)
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def _ts(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True, format="ISO8601", errors="coerce")


# --- catalogue ------------------------------------------------------------------------


def catalogue_frame(documents: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per item document, with its missing disclosure fields."""
    rows = []
    for doc in documents:
        disclosure = doc.get("disclosure") or {}
        required = DISCLOSURE_FIELDS.get(str(doc.get("category")), ())
        missing = [f for f in required if not str(disclosure.get(f) or "").strip()]
        rows.append({
            "code": doc.get("code"),
            "version": doc.get("version"),
            "name": doc.get("name"),
            "category": doc.get("category"),
            "state": doc.get("state"),
            "statutory_limit_days": doc.get("statutory_limit_days"),
            "promised_limit_days": doc.get("promised_limit_days"),
            "missing_disclosure": ",".join(missing),
            "disclosure_complete": not missing,
        })
    return pd.DataFrame(rows, columns=[
        "code", "version", "name", "category", "state", "statutory_limit_days",
        "promised_limit_days", "missing_disclosure", "disclosure_complete",
    ])


VALID_CATEGORIES = tuple(CATEGORIES)
VALID_STATES = tuple(STATES)


# --- applications ---------------------------------------------------------------------


def applications_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """Applications with their summary and the derived check columns."""
    frame = raw.copy()
    frame["summary"] = [orjson.loads(e).get("summary") if e else None for e in frame["envelope"]]
    frame["identifier_valid"] = [
        identifier_valid(t, n) for t, n in zip(frame["applicant_id_type"], frame["applicant_id_number"])
    ]
    submitted, registered = _ts(frame["submitted_at"]), _ts(frame["registered_at"])
    frame["dates_plausible"] = (
        submitted.notna() & registered.notna() & (submitted <= registered)
        & (registered - submitted <= pd.Timedelta(days=366))
    )
    return frame.drop(columns=["envelope"])


def sequences(bundles: Iterable[str], channel: str) -> list[int]:
    """The sequence numbers of ``channel``'s bundle refs (``<channel>#<sequence>``, as the
    stages report them) among ``bundles``."""
    prefix = f"{channel}#"
    return [int(ref.removeprefix(prefix)) for ref in bundles if ref.startswith(prefix)]


def load_applications(
    engine: Engine, day: date | None = None, *, bundles: Iterable[str] | None = None
) -> pd.DataFrame:
    """The applications registered on ``day`` (all when None), or, when ``bundles`` is
    given, those that came in its inbound bundles (a load run's own, whatever the day)."""
    if bundles is None:
        scope = on_day(applications.c.registered_at, day)
    else:  # through the bundles' staged NET_IDs (primary keys; the bundle column has no index)
        numbers = sequences(bundles, "inbound")
        scope = applications.c.net_id.in_(
            select(inbound_records.c.net_id).where(
                inbound_records.c.channel == "inbound", inbound_records.c.sequence.in_(numbers))
        ) & applications.c.bundle.in_([f"inbound#{n}" for n in numbers])
    return applications_frame(_frame(engine, _APPLICATION_ROWS.where(scope)))


_APPLICATION_ROWS = select(
    applications.c.net_id, applications.c.case_number, applications.c.power_code,
    applications.c.agency_code, applications.c.case_name, applications.c.applicant_type,
    applications.c.applicant_name, applications.c.applicant_id_type,
    applications.c.applicant_id_number, applications.c.applicant_mobile,
    applications.c.submitted_at, applications.c.registered_at, applications.c.bundle,
    applications.c.envelope,
)


def _windows(engine: Engine, key: Any, scope: Any, rows: int) -> Iterator[Any]:
    """Filters that cut ``scope`` into pieces of at most ``rows`` rows in the order of the
    primary key ``key`` (keyset paging: each piece read from where the last one ended)."""
    after: str | None = None
    while True:
        piece = scope if after is None else scope & (key > after)
        with engine.connect() as connection:
            keys = list(connection.execute(select(key).where(piece).order_by(key).limit(rows)).scalars())
        if not keys:
            return
        yield piece & (key <= keys[-1])
        after = keys[-1]


def application_chunks(engine: Engine, day: date | None, rows: int) -> Iterator[pd.DataFrame]:
    """The applications of ``day`` (all when None), ``rows`` at a time in NET_ID order
    (keyset paging on the primary key), so the daily report holds one chunk, not the day.
    Every NET_ID falls in exactly one chunk: uniqueness checked per chunk holds for the day."""
    for window in _windows(engine, applications.c.net_id, on_day(applications.c.registered_at, day), rows):
        yield applications_frame(_frame(engine, _APPLICATION_ROWS.where(window)))


# --- cases, steps, results ------------------------------------------------------------


def steps_frame(steps: pd.DataFrame, registered: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """Each step with its case's registration and finish: was it dated inside the case?"""
    frame = steps.merge(registered[["case_number", "net_id", "registered_at"]], on="case_number", how="left")
    frame = frame.merge(
        results[["case_number", "finished_at"]].rename(columns={"finished_at": "case_finished_at"}),
        on="case_number", how="left",
    )
    started, finished = _ts(frame["started_at"]), _ts(frame["finished_at"])
    last = finished.fillna(started)
    registered_at, case_finished = _ts(frame["registered_at"]), _ts(frame["case_finished_at"])
    frame["not_before_registration"] = registered_at.isna() | (started >= registered_at)
    frame["not_after_finish"] = case_finished.isna() | (last <= case_finished)
    return frame


def results_frame(results: pd.DataFrame, steps: pd.DataFrame, registered: pd.DataFrame) -> pd.DataFrame:
    """Each result with its number of steps and whether the fee paid matches the fee due."""
    counts = steps.groupby("case_number").size().rename("step_count").reset_index()
    frame = results.merge(counts, on="case_number", how="left")
    frame = frame.merge(registered[["case_number", "net_id"]], on="case_number", how="left")
    frame["step_count"] = frame["step_count"].fillna(0).astype(int)
    due, paid = frame["fee_due"].astype(float), frame["fee_paid"].astype(float)
    frame["fee_within_tolerance"] = (paid - due).abs() <= due * FEE_TOLERANCE
    return frame


def cases_frame(
    case_rows: pd.DataFrame, registered: pd.DataFrame, steps: pd.DataFrame, accepted_at: pd.DataFrame,
) -> pd.DataFrame:
    """Each case with its summary, its correction requests and whether one came after
    the case was accepted."""
    frame = case_rows.merge(registered.drop(columns=["net_id"]), on="case_number", how="left")
    frame = frame.merge(accepted_at, on="case_number", how="left")
    # A case registered by nobody (no application, no registration record) is an orphan.
    frame["registration_present"] = frame["registered_at"].notna()
    # Unknown without a registration record: ``registration_present`` reports that case.
    frame["party_identifier_valid"] = frame["party_identifier_valid"].fillna(True).astype(bool)
    frame["origin_valid"] = frame["origin"].isin(CASE_ORIGINS)
    corrections = steps[steps["status"] == CORRECTION_STEP]
    frame["correction_requests"] = (
        frame["case_number"].map(corrections.groupby("case_number").size()).fillna(0).astype(int)
    )
    accepted = _ts(frame["accepted_at"])
    late = (
        corrections.assign(last_correction=_ts(corrections["started_at"]))
        .groupby("case_number", as_index=False)["last_correction"].max()
    )
    # A merge keeps the datetime type even when no case had a correction (a map would not).
    last_correction = frame[["case_number"]].merge(late, on="case_number", how="left")["last_correction"]
    last_correction.index = frame.index
    frame["no_correction_after_acceptance"] = accepted.isna() | last_correction.isna() | (
        last_correction <= accepted
    )
    return frame


def load_case_frames(
    engine: Engine, day: date | None = None, *, bundles: Iterable[str] | None = None
) -> dict[str, pd.DataFrame]:
    """Cases, steps and results of the cases updated on ``day`` (all when None), or, when
    ``bundles`` is given, of the cases whose changes its outbound bundles carried (a
    publishing run's own). The case numbers stay in the database (a subquery): a day's
    cases are more than a statement may bind."""
    if bundles is None:
        return _case_frames(engine, on_day(cases.c.updated_at, day))
    ranges = select(ferry_sent.c.first_key, ferry_sent.c.last_key).where(
        ferry_sent.c.channel == "outbound", ferry_sent.c.sequence.in_(sequences(bundles, "outbound")),
        ferry_sent.c.first_key.is_not(None),
    )
    with engine.connect() as connection:
        spans = connection.execute(ranges).all()
    return _case_frames(engine, cases.c.case_number.in_(
        select(status_outbox.c.case_number).where(
            or_(false(), *(status_outbox.c.event_id.between(first, last) for first, last in spans))
        )
    ))


def case_frame_chunks(engine: Engine, day: date | None, rows: int) -> Iterator[dict[str, pd.DataFrame]]:
    """The frames of ``load_case_frames`` for ``day``, ``rows`` cases at a time in case-number
    order (keyset paging), each case with all its steps and its result in one chunk."""
    for window in _windows(engine, cases.c.case_number, on_day(cases.c.updated_at, day), rows):
        yield _case_frames(engine, window)


def _case_frames(engine: Engine, scope: Any) -> dict[str, pd.DataFrame]:
    """Cases, steps and results of the cases in ``scope`` (a filter on ``cases``), of every
    origin: an internet case's registration comes from its application, any other's from
    the case-processing system's ``case_registrations`` row."""
    numbers = select(cases.c.case_number).where(scope)
    case_rows = _frame(engine, select(cases.c.case_number, cases.c.net_id, cases.c.state, cases.c.origin)
                       .where(scope))
    online = _frame(engine, select(
        applications.c.case_number, applications.c.net_id, applications.c.registered_at,
        applications.c.envelope,
    ).where(applications.c.case_number.in_(numbers)))
    online["summary"] = [orjson.loads(e).get("summary") for e in online["envelope"]]
    online["party_identifier_valid"] = True  # checked by the applications suite
    offline = _frame(engine, select(
        case_registrations.c.case_number, cases.c.net_id, cases.c.registered_at, case_registrations.c.summary,
        case_registrations.c.applicant_id_type, case_registrations.c.applicant_id_number,
    ).join(cases, cases.c.case_number == case_registrations.c.case_number)
        .where(case_registrations.c.case_number.in_(numbers)))
    offline["party_identifier_valid"] = [
        identifier_valid(t, n) for t, n in zip(offline["applicant_id_type"], offline["applicant_id_number"])
    ]
    columns = ["case_number", "net_id", "registered_at", "summary", "party_identifier_valid"]
    registered = pd.concat([frame[columns] for frame in (online, offline) if len(frame)]) if (
        len(online) or len(offline)) else online.reindex(columns=columns)
    steps = _frame(engine, select(
        case_steps.c.case_number, case_steps.c.step_no, case_steps.c.node, case_steps.c.status,
        case_steps.c.officer_name, case_steps.c.started_at, case_steps.c.finished_at,
    ).where(case_steps.c.case_number.in_(numbers)))
    results = _frame(engine, select(
        case_results.c.case_number, case_results.c.result, case_results.c.finished_at,
        case_results.c.fee_due, case_results.c.fee_paid,
    ).where(case_results.c.case_number.in_(numbers)))
    # By case number, which the outbox has an index on (migration 0010).
    accepted_at = _frame(engine, select(status_outbox.c.case_number, status_outbox.c.at).where(
        status_outbox.c.case_number.in_(numbers), status_outbox.c.status == "accepted"))
    accepted_at = accepted_at.groupby("case_number", as_index=False)["at"].min().rename(
        columns={"at": "accepted_at"})
    return {
        "cases": cases_frame(case_rows, registered, steps, accepted_at),
        "steps": steps_frame(steps, registered, results),
        "results": results_frame(results, steps, registered),
    }


# --- penalty cases --------------------------------------------------------------------


def penalties_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """Penalty cases (行政处罚) with the working days from the offence to registration and
    whether a fine carries an amount. ``raw``: case_number, net_id, occurred_on,
    registered_at, penalty_kinds (list or JSON text), fine_amount."""
    frame = raw.copy()
    late: list[int] = []
    guessed: list[str] = []
    for occurred, registered in zip(frame["occurred_on"], frame["registered_at"]):
        count = working_days_between(date.fromisoformat(str(occurred)[:10]),
                                     datetime.fromisoformat(str(registered)).date())
        late.append(count.days)
        guessed.append(",".join(str(y) for y in sorted(count.fallback_years)))
    frame["working_days_to_registration"] = pd.Series(late, index=frame.index, dtype="int64")
    frame["calendar_fallback_years"] = guessed
    frame["registered_in_time"] = frame["working_days_to_registration"] <= PENALTY_REGISTRATION_WORKING_DAYS
    kinds = [k if isinstance(k, list) else orjson.loads(k or "[]") for k in frame["penalty_kinds"]]
    frame["penalty_kinds"] = [",".join(map(str, k)) for k in kinds]
    amounts = pd.to_numeric(frame["fine_amount"], errors="coerce").fillna(0)
    frame["fine_has_amount"] = [("fine" not in k) or a > 0 for k, a in zip(kinds, amounts)]
    return frame


_PENALTY_ROWS = select(
    penalty_cases.c.case_number, cases.c.net_id, penalty_cases.c.occurred_on,
    cases.c.registered_at, penalty_cases.c.penalty_kinds, penalty_cases.c.fine_amount,
)
# Spelled as a condition, so a scope built on it can also be paged by ``_windows``. Every
# origin: most penalty cases are opened ex officio, without an application.
_PENALTY_JOIN = cases.c.case_number == penalty_cases.c.case_number


def load_penalties(engine: Engine, day: date | None = None) -> pd.DataFrame:
    """Penalty cases from the ``penalty_cases`` table; empty where the schema has none yet."""
    if not inspect(engine).has_table(PENALTY_TABLE):
        return penalties_frame(pd.DataFrame(columns=[c.name for c in _PENALTY_ROWS.selected_columns]))
    return penalties_frame(_frame(engine, _PENALTY_ROWS.where(_PENALTY_JOIN, on_day(cases.c.registered_at, day))))


def penalty_chunks(engine: Engine, day: date | None, rows: int) -> Iterator[pd.DataFrame]:
    """The penalty cases of ``day`` (registered that day; all when None), ``rows`` at a time
    in case-number order; nothing where the schema has no ``penalty_cases`` table yet."""
    if not inspect(engine).has_table(PENALTY_TABLE):
        return
    scope = _PENALTY_JOIN & on_day(cases.c.registered_at, day)
    for window in _windows(engine, penalty_cases.c.case_number, scope, rows):
        yield penalties_frame(_frame(engine, _PENALTY_ROWS.where(window)))


# --- provincial feed ------------------------------------------------------------------


def load_provincial_counts(engine: Engine, day: date | None = None) -> list[ProvincialCounts] | None:
    """Rows of the provincial feed per record kind and day by sync mark, from the
    ``province_sync`` table (``sent`` rows await the province's receipt: pending).
    None where the database has no provincial feed table."""
    if not inspect(engine).has_table(PROVINCE_SYNC_TABLE):
        return None
    changed_on = func.substr(province_sync.c.changed_at, 1, 10)
    query = select(province_sync.c.kind, changed_on, province_sync.c.mark, func.count()).group_by(
        province_sync.c.kind, changed_on, province_sync.c.mark
    )
    totals: dict[tuple[str, str], dict[str, int]] = {}
    with engine.connect() as connection:
        for kind, on, state, n in connection.execute(query):
            if day is not None and on != day.isoformat():
                continue
            totals.setdefault((kind, on), {}).setdefault(state, 0)
            totals[(kind, on)][state] += int(n)
    return [
        ProvincialCounts(
            scope=f"province:{kind}", day=on, rows=sum(states.values()),
            accepted=states.get("accepted", 0),
            pending=states.get("pending", 0) + states.get("sent", 0),
            failed=states.get("failed", 0),
        )
        for (kind, on), states in sorted(totals.items())
    ]


# --- provincial batches ---------------------------------------------------------------


def _count_records(path: Any) -> int:
    """Records in a batch file: rows of a Parquet file (from its footer), else JSON lines,
    one record per non-empty line."""
    if str(path).endswith(".parquet"):
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    with open(path, "rb") as stream:
        return sum(1 for line in stream if line.strip())


def provincial_batch_frame(batch_dir: Any, manifest: Mapping[str, Any]) -> pd.DataFrame:
    """One row per file the manifest lists (``docs/province-feed.md``: ``{"manifest":
    {"files": [{"name", "sha256", "records"}]}}``; a bare ``{"files": [...]}`` with
    ``count`` is read too): is it there, and do its record count and SHA-256 match?"""
    manifest = manifest.get("manifest", manifest)
    import hashlib
    from pathlib import Path

    folder = Path(batch_dir)
    rows = []
    for entry in manifest.get("files", []):
        name = str(entry["name"])
        # A manifest name never becomes a path outside the batch folder.
        path = folder / Path(name).name
        present = path.is_file() and Path(name).name == name
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if present else None
        count = _count_records(path) if present else None
        expected = int(entry["records"] if "records" in entry else entry["count"])
        rows.append({
            "name": name, "present": present,
            "expected_count": expected, "actual_count": count,
            "expected_sha256": str(entry["sha256"]), "actual_sha256": digest,
            "count_matches": present and count == expected,
            "hash_matches": present and digest == str(entry["sha256"]).lower(),
        })
    return pd.DataFrame(rows, columns=[
        "name", "present", "expected_count", "actual_count", "expected_sha256", "actual_sha256",
        "count_matches", "hash_matches",
    ])
