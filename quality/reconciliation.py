"""Reconciliation: every record that entered the hub ends exactly once as accepted,
rejected (with reasons) or quarantined, and every status change as published or held.

The counts come from the zone databases and the public feed, never from the DAGs'
own reports, so a stage that lost or repeated a record shows up here.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, func, select

from connectors.db import (
    applications,
    catalogue_publications,
    ferry_applied,
    ferry_sent,
    inbound_records,
    intake_claims,
    publish_held,
    publish_withheld,
    quarantine,
    rejections,
    status_outbox,
)


def _count(engine: Engine, query: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(query).scalar() or 0)


def reconcile(internet: Engine, admin: Engine, public_root: Path) -> dict[str, Any]:
    """The loop's counts and whether they balance."""
    carried = _count(internet, select(func.count()).select_from(intake_claims))
    quarantined_at_intake = _count(
        internet, select(func.count()).select_from(quarantine).where(quarantine.c.kind == "submission")
    )
    with admin.connect() as connection:
        quarantined_bundles = [
            row.ref for row in connection.execute(select(quarantine.c.ref).where(quarantine.c.kind == "bundle"))
        ]
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
            quarantined_in_bundles += _count(
                internet, select(func.count()).select_from(intake_claims).where(intake_claims.c.sequence == sequence)
            )
    accepted = _count(admin, select(func.count()).select_from(applications))
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
            # catalogue bundles carry catalogue entries, not status changes
            ferry_sent.c.sequence.not_in(select(catalogue_publications.c.sequence)),
        ),
    )
    last_sent = _count(
        admin,
        select(func.coalesce(func.max(ferry_sent.c.last_key), 0)).where(
            ferry_sent.c.channel == "outbound", ferry_sent.c.state == "sent"
        ),
    )
    unsent = _count(admin, select(func.count()).select_from(status_outbox).where(status_outbox.c.event_id > last_sent))
    # The public feed has no index (documents are found only by case number and query
    # password), so the documents themselves are counted.
    documents = [
        orjson.loads(path.read_bytes()) for path in sorted((public_root / "status").glob("*.json"))
    ]
    public_events = sum(len(d.get("events", ())) for d in documents)
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
            )
        ).all()
    on_the_ferry = sum(count for sequence, count in sent if sequence not in applied)
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
        "public status events = published - on the ferry - retracted": public_events
        == carried_out - on_the_ferry - retracted,
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
        "status_changes": status_changes,
        "status_changes_published": carried_out,
        "status_changes_held": held,
        "status_changes_withheld": withheld,
        "status_changes_unsent": unsent,
        "public_documents": len(documents),
        "public_status_events": public_events,
        "status_changes_on_the_ferry": on_the_ferry,
        "status_changes_retracted": retracted,
        "accepted_with_public_status": sum(1 for d in documents if d.get("case_number")),
        "checks": checks,
        "balanced": all(checks.values()),
    }


def _sequence_of(bundle_name: str) -> int | None:
    stem = bundle_name.split(".", 1)[0]
    _, _, number = stem.rpartition("-")
    return int(number) if number.isdigit() else None
