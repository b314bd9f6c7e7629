"""The public catalogue (权力事项公开) across the gap: the administration zone sends the
in-use items, with exactly their category's disclosure fields, in an outbound bundle
(``records/catalogue.jsonl``) whenever the catalogue version changes; the internet zone
writes them next to the public status feed as ``public/catalogue/``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, select

import schemas
from connectors.channel_sender import BuiltBundle, ChannelSender, resumed_of
from connectors.clock import iso, now
from connectors.db import catalogue_publications, transaction
from connectors.ferry_ledger import PlannedBundle, plan_next
from connectors.files import write_atomic
from connectors.provenance import record_events
from ferry.bundle import VerifiedBundle, records_item, records_name
from rules.catalogue import CATEGORIES, Catalogue, public_catalogue

CATALOGUE_KIND = "catalogue"
CATALOGUE_PLAN = "catalogue"  # ferry_sent.kind of catalogue bundles, apart from status ones
SAFE_CODE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_-]{0,99}$")

ApplyBundle = Callable[[Connection, VerifiedBundle, str, str], int]


# --- administration zone: send ----------------------------------------------------------


def _built(records: list[dict[str, Any]]) -> BuiltBundle:
    return BuiltBundle(items=[records_item(CATALOGUE_KIND, records)], counts={CATALOGUE_KIND: len(records)})


def rebuild_catalogue(engine: Engine, plan: PlannedBundle) -> BuiltBundle:
    """The rebuilder of catalogue plans: the records the plan stored give the same bytes."""
    with engine.connect() as connection:
        stored = connection.execute(
            select(catalogue_publications.c.records).where(catalogue_publications.c.sequence == plan.sequence)
        ).scalar_one()
    return _built(list(stored))


def publish_catalogue(sender: ChannelSender, *, catalogue: Catalogue) -> dict[str, Any]:
    """Send the public catalogue if its version has not been sent yet."""
    report: dict[str, Any] = {"catalogue_version": catalogue.version, "bundles": [], "items": 0}
    report["bundles"] += [sent.plan.ref for sent in resumed_of(sender.resume(), CATALOGUE_PLAN)]
    with sender.engine.connect() as connection:
        last = connection.execute(
            select(catalogue_publications.c.catalogue_version)
            .order_by(catalogue_publications.c.sequence.desc())
            .limit(1)
        ).scalar()
    if last == catalogue.version:
        return report
    records = public_catalogue(catalogue)
    at = iso(now())
    with transaction(sender.engine) as connection:
        plan = plan_next(
            connection, sender.channel, created_at=at, catalogue_version=catalogue.version,
            record_count=len(records), kind=CATALOGUE_PLAN,
        )
        connection.execute(
            catalogue_publications.insert().values(
                sequence=plan.sequence, catalogue_version=catalogue.version, records=records, planned_at=at
            )
        )
    sender.send(plan, _built(records))
    report["bundles"].append(plan.ref)
    report["items"] = len(records)
    return report


# --- internet zone: apply ---------------------------------------------------------------


def _has_records(bundle: VerifiedBundle, kind: str) -> bool:
    try:
        bundle.item(records_name(kind))
    except KeyError:
        return False
    return True


def apply_catalogue_records(public_root: Path, connection: Connection, bundle: VerifiedBundle, ref: str, at: str) -> int:
    """Replace the public catalogue with the one in ``bundle``: an index and one JSON
    document per item. Entries that do not fit the public schema are left out."""
    folder = public_root / "catalogue"
    items_dir = folder / "items"
    items_dir.mkdir(parents=True, exist_ok=True)
    check = schemas.validator("public_catalogue_item")
    entries = []
    for line in bundle.iter_records(CATALOGUE_KIND):
        entry = orjson.loads(line)
        if check.is_valid(entry) and SAFE_CODE.match(entry["code"]):
            entries.append(entry)
    entries.sort(key=lambda e: e["code"])
    for entry in entries:
        write_atomic(
            items_dir / f"{entry['code']}.json",
            orjson.dumps(entry, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS),
        )
    published = {f"{e['code']}.json" for e in entries}
    for stale in items_dir.glob("*.json"):
        if stale.name not in published:
            stale.unlink()
    index = {
        "catalogue_version": bundle.manifest.catalogue_version,
        "published_at": at,
        "items": [
            {"code": e["code"], "name": e["name"], "category": e["category"],
             "category_name": CATEGORIES[e["category"]], "version": e["version"]}
            for e in entries
        ],
    }
    write_atomic(folder / "index.json", orjson.dumps(index, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    record_events(connection, [(bundle.manifest.catalogue_version, "portal_publish", "catalogue_published", ref, {"items": len(entries)})], at)
    return len(entries)


def with_catalogue(apply_status: ApplyBundle, public_root: Path) -> ApplyBundle:
    """The internet zone's apply step for outbound bundles: status events go to
    ``apply_status``, a catalogue to ``public/catalogue/``."""

    def apply(connection: Connection, bundle: VerifiedBundle, ref: str, at: str) -> int:
        count = 0
        if _has_records(bundle, "status_events"):
            count += apply_status(connection, bundle, ref, at)
        if _has_records(bundle, CATALOGUE_KIND):
            count += apply_catalogue_records(public_root, connection, bundle, ref, at)
        return count

    return apply
