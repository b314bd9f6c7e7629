"""The internet zone's public-feed flow: outbound bundles → the public status feed. Each
status record, sealed by the administration zone under its case's key, goes into the public
status store (``connectors.status_store``) under its lookup name (named by case number and
query password, so nobody can list, guess or read them); the daily results disclosure lists
(双公示) are kept by day and bundle, and the static status page is installed beside them.

What arrives here was verified by the ferry and allow-listed by the administration zone; the
allow-lists are applied once more (defence in depth) to what is not sealed.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, select

from connectors.alarms import raise_alarm
from connectors.collector import collector_paused
from connectors.db import bulk_insert, ferry_applied, quarantine
from connectors.files import write_atomic, write_batch
from connectors.provenance import record_events
from connectors.status_store import RawEvent, opened, remove_legacy
from ferry.bundle import VerifiedBundle
from rules.query_password import lookup_bytes
from schemas.exceptions import TerminalError

NET_ID = re.compile(r"^NET[0-9A-Z]{8,24}$")
LOOKUP = re.compile(r"^[a-p]{64}$")
STATUS_PAGE = Path(__file__).parent / "status_page"
# What a status record of an outbound bundle holds outside its seal: enough to store it and
# to record its publication, nothing an applicant's document shows.
SEALED_FIELDS = frozenset({"event_id", "lookup", "net_id", "sealed"})


def install_status_page(public_root: Path) -> None:
    """Copy the public status page (static HTML and JavaScript) into the public folder,
    with what the browser needs (``config.json``): the parameters to derive lookup names and
    keys, and the labels of status and result codes."""
    from rules.query_password import kdf_parameters
    from rules.status_labels import RESULT_LABELS, STATUS_LABELS

    public_root.mkdir(parents=True, exist_ok=True)
    for source in sorted(STATUS_PAGE.iterdir()):
        if source.is_file() and (
            not (public_root / source.name).exists()
            or (public_root / source.name).read_bytes() != source.read_bytes()
        ):
            write_atomic(public_root / source.name, source.read_bytes())
    config = orjson.dumps({"query": kdf_parameters(), "labels": {"status": STATUS_LABELS, "result": RESULT_LABELS}},
                          option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    if not (public_root / "config.json").exists() or (public_root / "config.json").read_bytes() != config:
        write_atomic(public_root / "config.json", config)


def compact_status_store(public_root: Path, engine: Engine) -> int:
    """Merge the public status store's full tiers of segments (``StatusStore.compact``),
    among the bundles this zone has marked applied; returns how many merges it made."""
    with engine.connect() as connection:
        applied = set(connection.execute(
            select(ferry_applied.c.sequence).where(ferry_applied.c.channel == "outbound")).scalars())
    with opened(public_root) as store:
        assert store is not None
        return store.compact(applied)


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


def _sealed_event(record: Any) -> tuple[str, int, bytes] | None:
    """(lookup, event id, sealed bytes) of a status record of an outbound bundle, or None when
    it is not one (defence in depth: the administration side sends nothing else)."""
    if not isinstance(record, dict) or record.keys() != SEALED_FIELDS:
        return None
    lookup, event_id, sealed = record["lookup"], record["event_id"], record["sealed"]
    if not (isinstance(lookup, str) and LOOKUP.match(lookup) and isinstance(event_id, int)
            and isinstance(sealed, str)):
        return None
    if record["net_id"] is not None and not NET_ID.match(str(record["net_id"])):
        return None
    try:
        return lookup, event_id, base64.b64decode(sealed, validate=True)
    except ValueError:
        return None


# What the public side refuses of an applied bundle (defence in depth: the administration
# side sends nothing else, so each is a fault there, kept and raised, never dropped).
NOT_SEALED = "NOT_SEALED"  # a status record that is not a sealed record
NOT_A_RECORD = "NOT_A_RECORD"  # a line that is not a JSON object
NO_DECISION_DAY = "NO_DECISION_DAY"  # a 双公示 record without the day it was decided
NOT_A_LEAF = "NOT_A_LEAF"  # an audit leaf without its lookup name, numbers or sealed entry
RECORD_REFUSED_ALARM = "PUBLIC_RECORD_REFUSED"
_SEALED_SHAPE = ("not {event_id, lookup, net_id, sealed} with an integer event id, a lookup name of 64 letters "
                 "a-p, a NET_ID or null, and base64 sealed bytes")


@dataclass(frozen=True)
class Refused:
    """A record of an applied bundle that the public side did not publish: its kind, its
    line number in that kind (from 0), why, and the line as it came."""

    kind: str
    index: int
    code: str
    detail: str
    line: bytes


def _parsed(line: bytes) -> Any:
    """The line's JSON value, or None when it is not JSON (refused as not a record)."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return None


def keep_refused(connection: Connection, folder: Path, ref: str, refused: list[Refused], at: str) -> None:
    """Keep each refused record of bundle ``ref`` with its reason, in the transaction that
    marks the bundle applied: its line and reason as a file under ``folder/records``, a
    ``quarantine`` row (kind ``record``: `hub ferry quarantine list`), and one
    ``PUBLIC_RECORD_REFUSED`` alarm for the bundle. The administration zone's fault: fix it
    there and publish the records again; a refused record is discarded once that is done
    (it cannot be released: nothing here can make it publishable). A crash before the
    commit applies the bundle again, which writes the same files and rows once."""
    if not refused:
        return
    target = folder / "records"
    target.mkdir(parents=True, exist_ok=True)
    files = []
    rows = []
    for item in refused:
        path = target / f"{ref.replace('#', '-')}.{item.kind}.{item.index}.json"
        text = item.line.decode("utf-8", "backslashreplace").rstrip("\n")
        files.append((path, orjson.dumps({"ref": ref, "kind": item.kind, "index": item.index, "code": item.code,
                                          "detail": item.detail, "line": text, "at": at}, option=orjson.OPT_INDENT_2)))
        rows.append({"kind": "record", "ref": ref, "code": item.code,
                     "detail": f"{item.kind} record {item.index}: {item.detail}", "stored_as": str(path),
                     "record_ids": [f"{ref}/{item.kind}/{item.index}"], "at": at, "state": "held"})
    write_batch(target, files)
    bulk_insert(connection, quarantine, rows)
    counts = Counter(item.code for item in refused)
    raise_alarm(connection, RECORD_REFUSED_ALARM, {"bundle": ref, "refused": dict(counts), "folder": str(target)}, at)


# A status record's line as the administration side writes it (``ferry.bundle.record_line``:
# sorted keys, no spaces), every field already of the form _sealed_event requires (a JSON
# string of these characters has no escapes; an event id of at most 18 digits is an int).
_CANONICAL_SEALED = re.compile(
    rb'\{"event_id":(0|[1-9][0-9]{0,17}),"lookup":"([a-p]{64})",'
    rb'"net_id":(?:null|"(NET[0-9A-Z]{8,24})"),"sealed":"([A-Za-z0-9+/]*={0,2})"\}')
_NIBBLE_LETTERS = bytes.maketrans(b"abcdefghijklmnop", b"0123456789abcdef")


def _raw_sealed_event(line: bytes) -> tuple[tuple[bytes, int, bytes] | None, str | None] | None:
    """``(event, net_id)`` of a status record's line in the canonical form, the event with
    its lookup name as the 32 bytes it spells (``rules.query_password.lookup_bytes``) and
    None when its sealed bytes are not base64; None for any other line, which
    :func:`_sealed_event` then judges from the parsed record. The same verdicts for about a
    third less CPU per record (measured): no dict, no text lookup name, base64 checked once;
    a bundle holds a hundred thousand."""
    match = _CANONICAL_SEALED.fullmatch(line)
    if match is None:
        return None
    event_id, lookup, net_id, sealed = match.groups()
    try:
        # What b64decode(validate=True) does once its own pattern (the one above) matched.
        decoded = binascii.a2b_base64(sealed)
    except binascii.Error:
        return None, None
    return ((binascii.a2b_hex(lookup.translate(_NIBBLE_LETTERS)), int(event_id), decoded),
            None if net_id is None else net_id.decode("ascii"))


def apply_status_bundle(public_root: Path, quarantine_dir: Path) -> Any:
    """The receiver's apply step for outbound bundles: put each sealed status record into the
    public status store under its lookup name (derived from the case number and query
    password, so nobody can list or guess documents, and sealed under a key only they give),
    take down what the bundle retracts, and merge each results disclosure (双公示) into the
    list of its day; idempotent by event and record id. A record that is not what its kind
    must be is kept in ``quarantine_dir`` with its reason (:func:`keep_refused`); the rest
    of the bundle is published.

    The store's transaction is durable before the bundle is marked applied: a crash between
    the two applies the bundle again, which inserts nothing twice."""

    @collector_paused()  # a bundle's events (a hundred thousand) are all kept until they are stored
    def apply(connection: Connection, bundle: VerifiedBundle, ref: str, at: str) -> int:
        events: list[RawEvent] = []
        net_ids: list[str] = []
        refused: list[Refused] = []
        for index, line in enumerate(bundle.iter_records("status_events")):
            fast = _raw_sealed_event(line)
            if fast is not None:
                event, net_id = fast
                if event is None:
                    refused.append(Refused("status_events", index, NOT_SEALED, "its sealed bytes are not base64", line))
                    continue
                events.append(event)
                if net_id is not None:
                    net_ids.append(net_id)
                continue
            record = _parsed(line)
            if isinstance(record, dict) and "sealed" not in record and "status" in record:
                raise TerminalError(
                    f"{ref} carries unsealed status records, from a hub before the sealed public store: "
                    "upgrade both zones with the outbound ferry drained (docs/public-store.md)")
            sealed = _sealed_event(record)
            if sealed is None:
                refused.append(Refused("status_events", index, NOT_SEALED, _SEALED_SHAPE, line))
                continue
            name, event_id, data = sealed
            events.append((lookup_bytes(name), event_id, data))
            if record["net_id"] is not None:
                net_ids.append(record["net_id"])
        removed: list[str] = []
        retracted: set[int] = set()
        for index, line in enumerate(bundle.iter_records("retractions")):
            retraction = _allowed(_parsed(line), "retractions")
            if retraction is None:
                refused.append(Refused("retractions", index, NOT_A_RECORD, "not a JSON object", line))
                continue
            # With a lookup: a withheld case's document comes down. Without: only 双公示
            # records (a revoked, changed or corrected decision; an offline case's).
            if LOOKUP.match(str(retraction.get("lookup") or "")):
                removed.append(retraction["lookup"])
            retracted |= {i for i in retraction.get("record_ids") or () if isinstance(i, int)}
        with opened(public_root) as store:
            assert store is not None
            store.put_raw(bundle.manifest.sequence, events, removed=removed)
        for lookup in removed:
            remove_legacy(public_root, lookup)
        disclosed = _merge_disclosures(public_root / "disclosure", bundle, refused)
        if retracted:
            _retract_disclosures(public_root / "disclosure", retracted)
        # One event per application and bundle (a bundle often carries several changes of one
        # application): the trace says which bundles updated its document.
        record_events(connection, [(n, "portal_publish", "published", ref, None) for n in dict.fromkeys(net_ids)], at)
        keep_refused(connection, quarantine_dir, ref, refused, at)
        return len(events) + disclosed

    return apply


DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _merge_disclosures(folder: Path, bundle: VerifiedBundle, refused: list[Refused]) -> int:
    """Write a bundle's 双公示 records as one page per day, ``<date>/b<sequence>.json``,
    and list the page in ``index.json``; a record that is not one, or has no decision day,
    goes to ``refused``.

    A page belongs to one bundle, so applying a bundle again rewrites the same pages
    (idempotent) and never reads the rest of the day: the cost and the memory of a bundle
    do not grow with the day's list (a province decides tens of thousands a day)."""
    by_day: dict[str, list[dict[str, Any]]] = {}
    for number, line in enumerate(bundle.iter_records("disclosures")):
        record = _allowed(_parsed(line), "disclosures")
        if record is None:
            refused.append(Refused("disclosures", number, NOT_A_RECORD, "not a JSON object", line))
            continue
        day = record["decided_at"][:10] if isinstance(record.get("decided_at"), str) else ""
        if not DAY.match(day):
            refused.append(Refused("disclosures", number, NO_DECISION_DAY,
                                   "decided_at does not start with a date (YYYY-MM-DD)", line))
            continue
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

