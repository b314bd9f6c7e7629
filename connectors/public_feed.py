"""The internet zone's public-feed flow: outbound bundles → the public status feed. Each
status event is merged into the document of its application (named by case number and query
password, so nobody can list or guess them), the daily results disclosure lists (双公示) are
kept by day and bundle, and the static status page is installed beside them.

What arrives here was verified by the ferry and allow-listed by the administration zone; the
allow-lists are applied once more (defence in depth).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, func, select

from connectors.db import audit_unfiled
from connectors.files import write_atomic, write_batch
from connectors.provenance import record_events
from ferry.bundle import VerifiedBundle

NET_ID = re.compile(r"^NET[0-9A-Z]{8,24}$")
LOOKUP = re.compile(r"^[a-p]{64}$")
STATUS_PAGE = Path(__file__).parent / "status_page"
STATUS_FOLDER = "status"
# Documents are spread over 256 folders by the first two letters of their lookup name: a
# province publishes about a million a day, more than one folder should hold.
SHARD_LETTERS = 2
# Documents held in memory before they are written and synced together.
DOCUMENTS_PER_SYNC = 5_000


def status_document_path(public_root: Path, lookup: str) -> Path:
    """Where the public status document named ``lookup`` lives:
    ``status/<first two letters>/<lookup>.json``."""
    return public_root / STATUS_FOLDER / lookup[:SHARD_LETTERS] / f"{lookup}.json"


def status_documents(public_root: Path) -> Iterator[Path]:
    """Every published status document, one folder at a time (never the whole list)."""
    status_dir = public_root / STATUS_FOLDER
    if not status_dir.is_dir():
        return
    for shard in sorted(status_dir.iterdir()):
        if shard.is_dir():
            yield from sorted(shard.glob("*.json"))


def _shard_flat_documents(status_dir: Path) -> None:
    """Move documents of the earlier flat layout (``status/<lookup>.json``) into their
    folders; a no-op once done (the top level then holds only the 256 folders)."""
    with os.scandir(status_dir) as entries:
        flat = [e.name for e in entries if e.is_file() and LOOKUP.match(e.name.removesuffix(".json"))]
    for name in flat:
        shard = status_dir / name[:SHARD_LETTERS]
        shard.mkdir(exist_ok=True)
        os.replace(status_dir / name, shard / name)


def install_status_page(public_root: Path) -> None:
    """Copy the public status page (static HTML and JavaScript) into the public folder,
    with the parameters the browser needs to derive lookup names (``config.json``)."""
    from rules.query_password import kdf_parameters

    public_root.mkdir(parents=True, exist_ok=True)
    for source in sorted(STATUS_PAGE.iterdir()):
        if source.is_file() and (
            not (public_root / source.name).exists()
            or (public_root / source.name).read_bytes() != source.read_bytes()
        ):
            write_atomic(public_root / source.name, source.read_bytes())
    config = orjson.dumps({"query": kdf_parameters()}, option=orjson.OPT_SORT_KEYS)
    if not (public_root / "config.json").exists() or (public_root / "config.json").read_bytes() != config:
        write_atomic(public_root / "config.json", config)


def _allowed(record: Any, kind: str) -> dict[str, Any] | None:
    """The record cut to its kind's allow-list (defence in depth: the administration side
    already sends nothing else), or None when it is not a record at all."""
    from rules.publication import ALLOWED_FIELDS

    if not isinstance(record, dict):
        return None
    allowed = ALLOWED_FIELDS[kind]
    if record.keys() <= allowed:
        return record  # the usual case, checked in C: a copy per record cost more than the rest
    return {k: v for k, v in record.items() if k in allowed}


def apply_status_bundle(public_root: Path) -> Any:
    """The receiver's apply step for outbound bundles: merge each status event into the
    public document of its application, stored under its lookup name (derived from the case
    number and query password, so nobody can list or guess documents), and each results
    disclosure (双公示) into the list of its day; idempotent by event and record id."""

    def apply(connection: Connection, bundle: VerifiedBundle, ref: str, at: str) -> int:
        status_dir = public_root / STATUS_FOLDER
        status_dir.mkdir(parents=True, exist_ok=True)
        _shard_flat_documents(status_dir)
        by_lookup: dict[str, list[dict[str, Any]]] = {}
        for line in bundle.iter_records("status_events"):
            event = _allowed(orjson.loads(line), "status_events")
            if event is None or not LOOKUP.match(str(event.get("lookup", ""))):
                continue
            if not NET_ID.match(str(event.get("net_id", ""))):
                continue
            by_lookup.setdefault(event["lookup"], []).append(event)
        net_ids = []
        documents: list[tuple[str, bytes]] = []
        # Audit leaves that came before these documents (rare: a status bundle resent after
        # the checkpoint bundle that covers it); one look at the table when there are none.
        from connectors.audit_feed import file_waiting_leaves

        waiting_leaves = connection.execute(select(func.count()).select_from(audit_unfiled)).scalar_one() > 0
        shards: set[str] = set()
        for lookup, events in by_lookup.items():
            shard = os.path.join(status_dir, lookup[:SHARD_LETTERS])
            if shard not in shards:
                os.makedirs(shard, exist_ok=True)
                shards.add(shard)
            path = os.path.join(shard, lookup + ".json")
            try:
                with open(path, "rb") as stream:
                    document = orjson.loads(stream.read())
            except FileNotFoundError:
                document = {"events": []}
            seen = {e["event_id"] for e in document["events"]}
            document["events"] += [e for e in events if e["event_id"] not in seen]
            document["events"].sort(key=lambda e: e["event_id"])
            if waiting_leaves:
                file_waiting_leaves(connection, document, lookup)
            latest = document["events"][-1]
            for key in ("net_id", "case_number", "power_code", "power_name", "case_name", "applicant_name"):
                if latest.get(key) is not None:
                    document[key] = latest[key]
            document["status"] = latest["status"]
            document["updated_at"] = latest["at"]
            results = [e["result"] for e in document["events"] if e.get("result")]
            document["result"] = results[-1] if results else None
            documents.append((path, orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)))
            net_ids.append(latest["net_id"])
            if len(documents) >= DOCUMENTS_PER_SYNC:
                write_batch(public_root, documents)
                documents.clear()
        # Durable before the bundle is marked applied, at two syncs per few thousand
        # documents rather than an fsync each (a bundle carries tens of thousands).
        write_batch(public_root, documents)
        disclosed = _merge_disclosures(public_root / "disclosure", bundle)
        retracted: set[int] = set()
        for line in bundle.iter_records("retractions"):
            retraction = _allowed(orjson.loads(line), "retractions")
            if retraction is None:
                continue
            # With a lookup: a withheld case's document comes down. Without: only 双公示
            # records (a revoked, changed or corrected decision; an offline case's).
            if LOOKUP.match(str(retraction.get("lookup") or "")):
                status_document_path(public_root, retraction["lookup"]).unlink(missing_ok=True)
            retracted |= {i for i in retraction.get("record_ids") or () if isinstance(i, int)}
        if retracted:
            _retract_disclosures(public_root / "disclosure", retracted)
        record_events(connection, [(n, "portal_publish", "published", ref, None) for n in net_ids], at)
        return sum(len(e) for e in by_lookup.values()) + disclosed

    return apply


DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _merge_disclosures(folder: Path, bundle: VerifiedBundle) -> int:
    """Write a bundle's 双公示 records as one page per day, ``<date>/b<sequence>.json``,
    and list the page in ``index.json``.

    A page belongs to one bundle, so applying a bundle again rewrites the same pages
    (idempotent) and never reads the rest of the day: the cost and the memory of a bundle
    do not grow with the day's list (a province decides tens of thousands a day)."""
    by_day: dict[str, list[dict[str, Any]]] = {}
    for line in bundle.iter_records("disclosures"):
        record = _allowed(orjson.loads(line), "disclosures")
        if record is None or not isinstance(record.get("decided_at"), str):
            continue
        day = record["decided_at"][:10]
        if DAY.match(day):
            by_day.setdefault(day, []).append(record)
    if not by_day:
        return 0
    index = _disclosure_index(folder)
    page = f"b{bundle.manifest.sequence:08d}.json"
    pages = []
    for day, records in sorted(by_day.items()):
        (folder / day).mkdir(parents=True, exist_ok=True)
        records.sort(key=lambda r: (r["decided_at"], r["record_id"]))
        pages.append((folder / day / page, orjson.dumps(
            {"date": day, "records": records}, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)))
        index["days"].setdefault(day, {"pages": {}})["pages"][page] = _kind_counts(records)
    write_batch(folder, pages)
    _write_disclosure_index(folder, index)
    return sum(len(r) for r in by_day.values())


def disclosure_pages(public_root: Path) -> Iterator[Path]:
    """Every page of the daily 双公示 lists, day by day, as the index lists them."""
    folder = public_root / "disclosure"
    index = _disclosure_index(folder) if folder.is_dir() else {"days": {}}
    for day, entry in sorted(index["days"].items()):
        for page in sorted(entry["pages"]):
            yield folder / day / page


def _kind_counts(records: list[dict[str, Any]]) -> dict[str, int]:
    return {
        "licence": sum(r["kind"] == "licence" for r in records),
        "penalty": sum(r["kind"] == "penalty" for r in records),
    }


def _disclosure_index(folder: Path) -> dict[str, Any]:
    """The index of the daily lists; lists of the earlier layout (one ``<date>.json`` per
    day) become that day's first page on the way."""
    folder.mkdir(parents=True, exist_ok=True)
    index_path = folder / "index.json"
    index: dict[str, Any] = orjson.loads(index_path.read_bytes()) if index_path.exists() else {"days": {}}
    flat = sorted(p for p in folder.glob("????-??-??.json") if DAY.match(p.stem))
    for path in flat:
        (folder / path.stem).mkdir(exist_ok=True)
        records = orjson.loads(path.read_bytes())["records"]
        os.replace(path, folder / path.stem / "b00000000.json")
        index["days"][path.stem] = {"pages": {"b00000000.json": _kind_counts(records)}}
    if flat:
        _write_disclosure_index(folder, index)
    return index


def _write_disclosure_index(folder: Path, index: dict[str, Any]) -> None:
    for entry in index["days"].values():
        entry.update({
            kind: sum(page[kind] for page in entry["pages"].values()) for kind in ("licence", "penalty")
        })
    write_atomic(folder / "index.json", orjson.dumps(index, option=orjson.OPT_SORT_KEYS))


def _retract_disclosures(folder: Path, record_ids: set[int]) -> None:
    """Take the 双公示 records of withheld cases out of every page (one page in memory at
    a time; retractions are rare)."""
    if not (folder / "index.json").exists():
        return
    index = _disclosure_index(folder)
    for day, entry in sorted(index["days"].items()):
        for page in sorted(entry["pages"]):
            path = folder / day / page
            document = orjson.loads(path.read_bytes())
            kept = [r for r in document["records"] if r["record_id"] not in record_ids]
            if len(kept) == len(document["records"]):
                continue
            document["records"] = kept
            write_atomic(path, orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
            entry["pages"][page] = _kind_counts(kept)
    _write_disclosure_index(folder, index)

