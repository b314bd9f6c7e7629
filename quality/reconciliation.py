"""Reconciliation: every record that entered the hub ends exactly once as accepted,
rejected (with reasons) or quarantined, and every status change as published or held.

The counts come from the zone databases and the public feed, never from the DAGs'
own reports, so a stage that lost or repeated a record shows up here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, func, select, true

from connectors.audit_feed import CHECKPOINT_PLAN
from connectors.db import (
    applications,
    case_registrations,
    cases,
    catalogue_publications,
    ferry_applied,
    ferry_sent,
    inbound_records,
    intake_claims,
    portal_submissions,
    publish_held,
    publish_withheld,
    quarantine,
    rejections,
    status_outbox,
)
from connectors.status_store import legacy_documents
from connectors.status_store import opened as opened_store
from rules.cases import CASE_ORIGINS, INTERNET
from schemas.exceptions import TerminalError


def _count(engine: Engine, query: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(query).scalar() or 0)


def _carried_query(sequence: int | None = None) -> Any:
    """The NET_IDs intake put into inbound bundles (of bundle ``sequence`` when given): the
    drop folder's claims and the front database's carried rows."""
    claims = select(intake_claims.c.net_id)
    rows = select(portal_submissions.c.net_id).where(portal_submissions.c.state == "carried")
    if sequence is not None:
        claims = claims.where(intake_claims.c.sequence == sequence)
        rows = rows.where(portal_submissions.c.sequence == sequence)
    return claims.union_all(rows)


def _carried_count(internet: Engine, sequence: int | None = None) -> int:
    return _count(internet, select(func.count()).select_from(_carried_query(sequence).subquery()))


def reconcile(internet: Engine, admin: Engine, public_root: Path) -> dict[str, Any]:
    """The loop's counts and whether they balance."""
    carried = _carried_count(internet)
    quarantined_at_intake = _count(
        internet, select(func.count()).select_from(quarantine).where(quarantine.c.kind == "submission")
    )
    with admin.connect() as connection:
        quarantined_bundles = [ref for ref, _ in _lasting_quarantine(connection)]
        received = int(connection.execute(select(func.count()).select_from(inbound_records)).scalar() or 0)
        staged = int(
            connection.execute(
                select(func.count()).select_from(inbound_records).where(inbound_records.c.state == "received")
            ).scalar()
            or 0
        )
        reasons: Counter[str] = Counter()
        for (found,) in connection.execute(select(rejections.c.reasons)):
            reasons.update({r["code"] for r in found})
    quarantined_in_bundles = 0
    for name in quarantined_bundles:
        sequence = _sequence_of(name)
        if sequence is not None:
            quarantined_in_bundles += _carried_count(internet, sequence)
    accepted = _count(admin, select(func.count()).select_from(applications))
    with admin.connect() as connection:
        by_origin: dict[str, int] = dict(connection.execute(select(cases.c.origin, func.count()).group_by(cases.c.origin)).all())
        registered = int(connection.execute(select(func.count()).select_from(case_registrations)).scalar() or 0)
    rejected = _count(admin, select(func.count()).select_from(rejections))
    duplicates = _count(
        admin, select(func.count()).select_from(inbound_records).where(inbound_records.c.outcome == "duplicate")
    )
    status_changes = _count(admin, select(func.count()).select_from(status_outbox))
    held = _count(admin, select(func.count()).select_from(publish_held))
    withheld = _count(admin, select(func.count()).select_from(publish_withheld))
    carried_out = _count(
        admin,
        select(func.coalesce(func.sum(ferry_sent.c.record_count), 0)).where(
            ferry_sent.c.channel == "outbound", ferry_sent.c.state == "sent",
            # catalogue bundles carry catalogue entries, audit checkpoint bundles the audit
            # log's checkpoint and tiles: neither carries status changes
            ferry_sent.c.sequence.not_in(select(catalogue_publications.c.sequence)),
            ferry_sent.c.kind != CHECKPOINT_PLAN,
        ),
    )
    last_sent = _count(
        admin,
        select(func.coalesce(func.max(ferry_sent.c.last_key), 0)).where(
            ferry_sent.c.channel == "outbound", ferry_sent.c.state == "sent"
        ),
    )
    unsent = _count(admin, select(func.count()).select_from(status_outbox).where(status_outbox.c.event_id > last_sent))
    # The public store holds sealed events by lookup name: it can count them, not read them.
    # Documents published before the store are files of their own, one at a time.
    with opened_store(public_root, readonly=True) as store:
        public_documents, public_events = store.counts() if store is not None else (0, 0)
    for path in legacy_documents(public_root):
        public_documents += 1
        public_events += len(orjson.loads(path.read_bytes()).get("events", ()))
    with internet.connect() as connection:
        applied = set(
            connection.execute(
                select(ferry_applied.c.sequence).where(ferry_applied.c.channel == "outbound")
            ).scalars()
        )
    with admin.connect() as connection:
        sent = connection.execute(
            select(ferry_sent.c.sequence, ferry_sent.c.record_count).where(
                ferry_sent.c.channel == "outbound", ferry_sent.c.state == "sent",
                ferry_sent.c.sequence.not_in(select(catalogue_publications.c.sequence)),
                ferry_sent.c.kind != CHECKPOINT_PLAN,
            )
        ).all()
    on_the_ferry = sum(count for sequence, count in sent if sequence not in applied)
    refused = _refused_status_records(internet)
    # Changes published before their case was withheld; their document was taken down.
    retracted = _count(
        admin,
        select(func.count()).select_from(status_outbox).where(
            status_outbox.c.net_id.in_(select(publish_withheld.c.net_id)),
            status_outbox.c.event_id.not_in(select(publish_withheld.c.event_id)),
            status_outbox.c.event_id.not_in(select(publish_held.c.event_id)),
            status_outbox.c.event_id <= last_sent,
        ),
    )
    submitted = carried + quarantined_at_intake
    quarantined = quarantined_at_intake + quarantined_in_bundles
    in_transit = carried - received - quarantined_in_bundles
    checks = {
        "entered = accepted + rejected + quarantined + in flight": submitted
        == accepted + rejected + quarantined + in_transit + staged,
        "received = accepted + rejected + duplicates + staged": received
        == accepted + rejected + duplicates + staged,
        "status changes = published + held + withheld + unsent": status_changes
        == carried_out + held + withheld + unsent,
        "public status events = published - on the ferry - retracted - refused": public_events
        == carried_out - on_the_ferry - retracted - refused,
        # Every accepted application is a case, and every other case has its registration.
        "internet cases = accepted applications": by_origin.get(INTERNET, 0) == accepted,
        "counter + ex-officio cases = their registrations": sum(
            n for origin, n in by_origin.items() if origin != INTERNET) == registered,
    }
    return {
        "submitted": submitted,
        "accepted": accepted,
        "rejected": rejected,
        "rejected_by_reason": dict(sorted(reasons.items())),
        "quarantined": quarantined,
        "quarantined_at_intake": quarantined_at_intake,
        "quarantined_bundles": len(quarantined_bundles),
        "duplicates": duplicates,
        "in_flight": in_transit + staged,
        "cases_by_origin": {origin: by_origin.get(origin, 0) for origin in CASE_ORIGINS},
        "status_changes": status_changes,
        "status_changes_published": carried_out,
        "status_changes_held": held,
        "status_changes_withheld": withheld,
        "status_changes_unsent": unsent,
        "public_documents": public_documents,
        "public_status_events": public_events,
        "status_changes_on_the_ferry": on_the_ferry,
        "status_changes_retracted": retracted,
        "status_changes_refused_by_public_side": refused,
        "checks": checks,
        "balanced": all(checks.values()),
    }


def _refused_status_records(internet: Engine) -> int:
    """Status records of applied outbound bundles that the public side refused and kept in
    its quarantine (``connectors.public_feed.keep_refused``; record ids
    ``<bundle>/status_events/<line>``): sent, never published. A handful at most, read here."""
    with internet.connect() as connection:
        ids = connection.execute(select(quarantine.c.record_ids).where(quarantine.c.kind == "record")).scalars()
        return sum(1 for record_ids in ids for record_id in record_ids or () if "/status_events/" in str(record_id))


def _lasting_quarantine(connection: Connection) -> list[tuple[str, str]]:
    """The quarantined inbound bundles whose records are still quarantined, with when:
    one per sequence (a forged and a corrupt copy of one bundle hold the same records),
    and none whose sequence was applied after all (the sender re-sent it intact)."""
    applied = set(
        connection.execute(
            select(ferry_applied.c.sequence).where(ferry_applied.c.channel == "inbound")
        ).scalars()
    )
    lasting: dict[int | str, tuple[str, str]] = {}
    rows = connection.execute(
        select(quarantine.c.ref, quarantine.c.at).where(quarantine.c.kind == "bundle").order_by(quarantine.c.id)
    )
    for ref, at in rows:
        sequence = _sequence_of(ref)
        if sequence in applied:
            continue
        lasting.setdefault(ref if sequence is None else sequence, (ref, at))
    return list(lasting.values())


def _sequence_of(bundle_name: str) -> int | None:
    stem = bundle_name.split(".", 1)[0]
    _, _, number = stem.rpartition("-")
    return int(number) if number.isdigit() else None


# --- per bundle and per day -----------------------------------------------------------

INBOUND_ENTERED = "entered = accepted + rejected + quarantined"
INBOUND_HANDED_OVER = "accepted = handed over"
STATUS_PUBLISHED = "status changes = published + held for review + withheld"
PROVINCIAL_ROWS = "provincial rows = accepted + pending + failed"


@dataclass(frozen=True)
class Balance:
    """One reconciliation line: a scope (bundle ref or day), the identity it checks, the
    counts on each side, and the record ids that explain a mismatch."""

    scope: str
    day: str
    identity: str
    counts: dict[str, int]
    left: int
    right: int
    missing: tuple[str, ...] = ()
    duplicated: tuple[str, ...] = ()

    @property
    def balanced(self) -> bool:
        return self.left == self.right and not self.missing and not self.duplicated

    def as_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope, "day": self.day, "identity": self.identity,
            "counts": self.counts, "left": self.left, "right": self.right,
            "missing": list(self.missing), "duplicated": list(self.duplicated),
            "balanced": self.balanced,
        }


@dataclass(frozen=True)
class ProvincialCounts:
    """Rows of the provincial feed for one batch or day, by sync mark (同步标志)."""

    scope: str
    day: str
    rows: int
    accepted: int
    pending: int
    failed: int


def _day(timestamp: str | None) -> str:
    return (timestamp or "")[:10]


def on_day(column: Any, day: date | None) -> Any:
    """A filter on an ISO timestamp column for ``day`` (all days when None): the rows whose
    timestamp starts with the day, the day ``_day`` gives."""
    return true() if day is None else column.startswith(day.isoformat(), autoescape=True)


def reconcile_inbound_bundles(
    admin: Engine, internet: Engine | None = None, *, day: date | None = None,
    sequences: list[int] | None = None,
) -> list[Balance]:
    """Per inbound bundle (``inbound#<sequence>``): every record the manifest counted ends
    exactly once as accepted, rejected, duplicate or still staged, and every accepted one is
    handed over as a case. Quarantined bundles count all their records as quarantined
    (their NET_IDs come from the internet zone's intake claims when that database is given).

    Only the bundles applied (or quarantined) on ``day`` when one is given, only the applied
    bundles numbered ``sequences`` when those are given. The records are
    read a bundle at a time: memory is bounded by the bundle size, not by the day's or the
    database's number of applications."""
    balances: list[Balance] = []
    with admin.connect() as connection:
        applied = connection.execute(
            select(ferry_applied.c.sequence, ferry_applied.c.record_count, ferry_applied.c.applied_at)
            .where(ferry_applied.c.channel == "inbound", on_day(ferry_applied.c.applied_at, day),
                   true() if sequences is None else ferry_applied.c.sequence.in_(sequences))
            .order_by(ferry_applied.c.sequence)
        ).all()
        for sequence, record_count, applied_at in applied:
            balances += _inbound_bundle(connection, int(sequence), int(record_count), _day(applied_at))
        quarantined_bundles = [] if sequences is not None else [
            (name, at) for name, at in _lasting_quarantine(connection) if day is None or _day(at) == day.isoformat()
        ]
    for name, at in quarantined_bundles:
        sequence = _sequence_of(name)
        ids: list[str] = []
        if internet is not None and sequence is not None:
            with internet.connect() as connection:
                ids = [n for (n,) in connection.execute(_carried_query(sequence))]
        counts = {"entered": len(ids), "accepted": 0, "rejected": 0, "quarantined": len(ids)}
        balances.append(Balance(f"quarantined:{name}", _day(at), INBOUND_ENTERED, counts, len(ids), len(ids)))
    return balances


def _inbound_bundle(connection: Connection, sequence: int, record_count: int, day: str) -> list[Balance]:
    """The two lines of one applied inbound bundle."""
    ref = f"inbound#{sequence}"
    staged = (inbound_records.c.channel == "inbound", inbound_records.c.sequence == sequence)
    rows = connection.execute(
        select(inbound_records.c.net_id, inbound_records.c.state, inbound_records.c.outcome).where(*staged)
    ).all()
    # Found through the bundle's staged NET_IDs (primary keys; staged rows are never
    # deleted): an index on the bundle column would cost every load more than it saves here.
    staged_ids = select(inbound_records.c.net_id).where(*staged)
    # The bundle's applications, each with whether it was handed over as a case: one read.
    accepted = connection.execute(
        select(applications.c.net_id, cases.c.net_id.is_not(None))
        .outerjoin(cases, cases.c.net_id == applications.c.net_id)
        .where(applications.c.net_id.in_(staged_ids), applications.c.bundle == ref)
        .order_by(applications.c.net_id)
    ).all()
    ok = [net_id for net_id, _ in accepted]
    not_handed = [net_id for net_id, handed_over in accepted if not handed_over]
    no = list(connection.execute(
        select(rejections.c.net_id).where(rejections.c.net_id.in_(staged_ids), rejections.c.bundle == ref)
    ).scalars())
    duplicates = [r.net_id for r in rows if r.outcome == "duplicate"]
    waiting = [r.net_id for r in rows if r.state == "received"]
    endings = Counter([*ok, *no, *duplicates, *waiting])
    entered_ids = {r.net_id for r in rows}
    missing = sorted(entered_ids - set(endings))
    duplicated = sorted(n for n, times in endings.items() if times > 1)
    counts = {
        "entered": record_count, "staged_rows": len(rows), "accepted": len(ok),
        "rejected": len(no), "duplicates": len(duplicates), "in_flight": len(waiting),
        "quarantined": 0,
    }
    return [
        Balance(
            ref, day, INBOUND_ENTERED, counts, record_count,
            len(ok) + len(no) + len(duplicates) + len(waiting), tuple(missing), tuple(duplicated),
        ),
        Balance(
            ref, day, INBOUND_HANDED_OVER, {"accepted": len(ok), "handed_over": len(ok) - len(not_handed)},
            len(ok), len(ok) - len(not_handed), tuple(not_handed),
        ),
    ]


def reconcile_status_bundles(
    admin: Engine, *, day: date | None = None, sequences: list[int] | None = None
) -> list[Balance]:
    """Per outbound bundle (``outbound#<sequence>``): the status changes it covers (its
    outbox id range) are the ones it published, the ones held for review and the ones
    withheld from publication (minors, secret or private cases).

    Only the bundles sent on ``day`` when one is given, only those numbered ``sequences``
    when those are given; each range is counted by the
    database (a day carries millions of changes, never read into memory)."""

    def in_range(column: Any, first: int, last: int) -> Any:
        return select(func.count()).where(column.between(first, last))

    balances: list[Balance] = []
    with admin.connect() as connection:
        sent = connection.execute(
            select(ferry_sent.c.sequence, ferry_sent.c.first_key, ferry_sent.c.last_key,
                   ferry_sent.c.record_count, ferry_sent.c.created_at)
            .where(ferry_sent.c.channel == "outbound", ferry_sent.c.state == "sent",
                   ferry_sent.c.first_key.is_not(None), ferry_sent.c.last_key.is_not(None),
                   on_day(ferry_sent.c.created_at, day),
                   true() if sequences is None else ferry_sent.c.sequence.in_(sequences))
            .order_by(ferry_sent.c.sequence)
        ).all()
        for sequence, first, last, published, created_at in sent:
            covered = connection.execute(in_range(status_outbox.c.event_id, first, last)).scalar_one()
            held_here = connection.execute(in_range(publish_held.c.event_id, first, last)).scalar_one()
            withheld_here = connection.execute(in_range(publish_withheld.c.event_id, first, last)).scalar_one()
            balances.append(Balance(
                f"outbound#{sequence}", _day(created_at), STATUS_PUBLISHED,
                {"status_changes": covered, "published": int(published), "held": held_here,
                 "withheld": withheld_here},
                covered, int(published) + held_here + withheld_here,
            ))
    return balances


def reconcile_provincial(counts: list[ProvincialCounts]) -> list[Balance]:
    """Per provincial batch or day: every feed row is accepted by the province, pending or
    failed (to be sent again), never lost between them."""
    return [
        Balance(c.scope, c.day, PROVINCIAL_ROWS,
                {"rows": c.rows, "accepted": c.accepted, "pending": c.pending, "failed": c.failed},
                c.rows, c.accepted + c.pending + c.failed)
        for c in counts
    ]


def per_day(balances: list[Balance]) -> list[Balance]:
    """The per-scope lines summed per day and identity; ids of mismatches carried along."""
    grouped: dict[tuple[str, str], list[Balance]] = {}
    for balance in balances:
        grouped.setdefault((balance.day, balance.identity), []).append(balance)
    result: list[Balance] = []
    for (day, identity), lines in sorted(grouped.items()):
        counts: Counter[str] = Counter()
        for line in lines:
            counts.update(line.counts)
        result.append(Balance(
            f"day:{day}", day, identity, dict(counts),
            sum(line.left for line in lines), sum(line.right for line in lines),
            tuple(i for line in lines for i in line.missing),
            tuple(i for line in lines for i in line.duplicated),
        ))
    return result


class ReconciliationMismatch(TerminalError):
    """Records were lost or repeated between stages: an operator must find them (terminal)."""


def mismatches(balances: list[Balance]) -> list[Balance]:
    return [b for b in balances if not b.balanced]


def describe(balance: Balance) -> str:
    """One line for the summary's head and the task log."""
    parts = [f"{balance.scope}: {balance.identity} does not balance ({balance.left} ≠ {balance.right})"]
    if balance.missing:
        parts.append("missing " + ", ".join(balance.missing[:5]))
    if balance.duplicated:
        parts.append("more than once " + ", ".join(balance.duplicated[:5]))
    return "; ".join(parts)
