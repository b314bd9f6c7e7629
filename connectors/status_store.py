"""The public status store: one SQLite file, beside the public folder and never inside it,
holding every published status change as sealed bytes under its document's lookup name.

    segments(id, tier, records)                      one per bundle applied, or per merge
    events(segment, lookup, event_id, sealed)        a status record, sealed under the case's key
    leaves(segment, lookup, event_id, seq, sealed)   the audit-log leaf of its publication, sealed
                                                     too (``entry``: a leaf filed before sealing)

Lookup names are uniformly random, so a table keyed by name alone takes each bundle's
records at random places: every commit rewrites pages all over a table that grows with the
day (measured: 20 µs per record at 0.5M, 31 µs at 2M). Here each bundle's records form a
segment of their own, keyed (segment, lookup, event_id) without a rowid, written in key
order at the end of the tree: the cost per record does not grow with the store (3.4-4.1 µs
from 0.5M to 2M). A lookup probes each segment (``segment IN segments AND lookup = ?``, one
index search each, 0.06-0.25 ms over 5-30 segments); :meth:`StatusStore.compact`, run
nightly off the data path (the ``public_store_compact`` DAG), merges full tiers of segments
(32 of a tier into one of the next), so a year holds about a hundred segments, not tens of
thousands. The segment of a bundle is its sequence number, so applying a bundle again
inserts nothing twice; only segments of bundles marked applied are merged.

Writes commit with ``synchronous=FULL`` before the bundle is marked applied; the lookup
endpoint (``connectors.status_lookup``) reads the file read-only beside the writer (WAL).
Nothing in it reads without the case number and query password (``rules.status_seal``).

Documents published before the store (one JSON file per lookup under ``public/status/``)
stay where they are and are read beside it; a retraction removes both.
"""

from __future__ import annotations

import base64
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import orjson

from rules.publication import published_changes
from rules.query_password import lookup_bytes, lookup_from_bytes, status_keys
from rules.status_seal import LEAF_PURPOSE, Sealer

STORE_FOLDER = "public-store"
STORE_FILE = "status.sqlite"
LEGACY_FOLDER = "status"  # public/status/<first two letters>/<lookup>.json, before the store
SHARD_LETTERS = 2
_LOOKUP_FILE = re.compile(r"^[a-p]{64}\.json$")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS segments (id INTEGER PRIMARY KEY, tier INTEGER NOT NULL, records INTEGER NOT NULL)",
    ("CREATE TABLE IF NOT EXISTS events (segment INTEGER NOT NULL, lookup BLOB NOT NULL,"
     " event_id INTEGER NOT NULL, sealed BLOB NOT NULL, PRIMARY KEY (segment, lookup, event_id)) WITHOUT ROWID"),
    ("CREATE TABLE IF NOT EXISTS leaves (segment INTEGER NOT NULL, lookup BLOB NOT NULL,"
     " event_id INTEGER NOT NULL, seq INTEGER NOT NULL, sealed BLOB, entry TEXT,"
     " PRIMARY KEY (segment, lookup, event_id)) WITHOUT ROWID"),
)
PAGE_BYTES = 16384
# Segments merged into one of the next tier once a tier holds this many.
MERGE_FAN_IN = 32
_IN_SEGMENTS = "segment IN (SELECT id FROM segments)"


def store_path(public_root: Path) -> Path:
    """Where the store of the public folder ``public_root`` lives: a sibling folder, so a
    web server that serves the public folder as files never serves the store itself."""
    return public_root.parent / STORE_FOLDER / STORE_FILE


def legacy_document_path(public_root: Path, lookup: str) -> Path:
    """Where a status document of the layout before the store lies, if it exists."""
    return public_root / LEGACY_FOLDER / lookup[:SHARD_LETTERS] / f"{lookup}.json"


def legacy_documents(public_root: Path) -> Iterator[Path]:
    """Every status document of the layout before the store, one folder at a time."""
    status_dir = public_root / LEGACY_FOLDER
    if not status_dir.is_dir():
        return
    shard_flat_documents(status_dir)
    for shard in sorted(status_dir.iterdir()):
        if shard.is_dir():
            yield from sorted(shard.glob("*.json"))


def shard_flat_documents(status_dir: Path) -> None:
    """Move documents of the earliest layout (``status/<lookup>.json``) into their folders,
    where the lookup finds them; a no-op once done (the top level then holds only folders)."""
    with os.scandir(status_dir) as entries:
        flat = [e.name for e in entries if e.is_file() and _LOOKUP_FILE.match(e.name)]
    for name in flat:
        shard = status_dir / name[:SHARD_LETTERS]
        shard.mkdir(exist_ok=True)
        os.replace(status_dir / name, shard / name)


SealedEvent = tuple[str, int, bytes]  # lookup, event id, sealed record
SealedLeaf = tuple[str, int, int, bytes | None, str | None]  # lookup, event id, seq, sealed, plain entry
RawEvent = tuple[bytes, int, bytes]  # SealedEvent with the lookup name as its 32 bytes
RawLeaf = tuple[bytes, int, int, bytes | None, str | None]  # SealedLeaf likewise


class StatusStore:
    """The store opened for writing (the internet zone's portal_publish) or reading."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        if readonly:
            self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None,
                                       check_same_thread=False)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None)
            # A new store gets pages of 16 KiB (an existing one keeps its own): four times
            # fewer pages, page splits and WAL frames per sealed event (about 400 bytes each)
            # than the default 4 KiB; measured, a quarter less CPU per event stored.
            self._db.execute(f"PRAGMA page_size={PAGE_BYTES}")
            self._db.execute("PRAGMA journal_mode=WAL")
            # Each commit reaches the disk before the bundle it came from is marked applied.
            self._db.execute("PRAGMA synchronous=FULL")
            for statement in _SCHEMA:
                self._db.execute(statement)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def put(self, segment: int, events: Iterable[SealedEvent], leaves: Iterable[SealedLeaf] = (),
            removed: Iterable[str] = ()) -> None:
        """Add a bundle's sealed events and leaves as segment ``segment`` (its sequence
        number; applying the bundle again adds nothing) and remove the documents ``removed``
        from every segment, in one durable transaction."""
        self.put_raw(
            segment,
            [(lookup_bytes(lookup), event_id, sealed) for lookup, event_id, sealed in events],
            [(lookup_bytes(lookup), event_id, seq, sealed, entry) for lookup, event_id, seq, sealed, entry in leaves],
            removed,
        )

    def put_raw(self, segment: int, events: Iterable[RawEvent], leaves: Iterable[RawLeaf] = (),
                removed: Iterable[str] = ()) -> None:
        """:meth:`put` of events and leaves whose lookup names are already the 32 bytes they
        spell (``lookup_bytes``): the public feed reads them so from a bundle's lines, a
        hundred thousand a bundle, without a text name in between."""
        rows = sorted(events)
        leaf_rows = sorted(leaves)
        # The segment is an int written into the statement: one tuple fewer per row.
        segment = int(segment)
        with self._transaction() as db:
            if rows or leaf_rows:
                db.execute("INSERT OR IGNORE INTO segments VALUES (?, 0, ?)", (segment, len(rows) + len(leaf_rows)))
            db.executemany(f"INSERT OR IGNORE INTO events VALUES ({segment}, ?, ?, ?)", rows)
            db.executemany(f"INSERT OR IGNORE INTO leaves VALUES ({segment}, ?, ?, ?, ?, ?)", leaf_rows)
            for lookup in removed:
                raw = lookup_bytes(lookup)
                db.execute(f"DELETE FROM events WHERE {_IN_SEGMENTS} AND lookup = ?", (raw,))
                db.execute(f"DELETE FROM leaves WHERE {_IN_SEGMENTS} AND lookup = ?", (raw,))

    def compact(self, applied: set[int]) -> int:
        """Merge every full tier (``MERGE_FAN_IN`` segments of one tier) into one segment of
        the next, among the segments of applied bundles and earlier merges; returns how many
        merges it made. Each merge is one transaction: its rows written in key order under a
        new segment (negative ids, apart from bundle sequences), the merged segments deleted."""
        merges = 0
        while True:
            # A few dozen rows: the tiers are grouped here, not in SQL.
            by_tier: dict[int, list[int]] = {}
            lowest = 0  # merged segments take ids below every earlier one
            for segment, tier in self._db.execute("SELECT id, tier FROM segments ORDER BY id"):
                lowest = min(lowest, segment)
                if segment < 0 or segment in applied:
                    by_tier.setdefault(int(tier), []).append(int(segment))
            full = [(tier, ids) for tier, ids in sorted(by_tier.items()) if len(ids) >= MERGE_FAN_IN]
            if not full:
                return merges
            tier, ids = full[0]
            chosen = ids[:MERGE_FAN_IN]
            merged = lowest - 1
            marks = ",".join("?" * len(chosen))
            with self._transaction() as db:
                records = db.execute(f"INSERT OR IGNORE INTO events SELECT ?, lookup, event_id, sealed FROM events "
                                     f"WHERE segment IN ({marks}) ORDER BY lookup, event_id", (merged, *chosen)).rowcount
                records += db.execute(f"INSERT OR IGNORE INTO leaves SELECT ?, lookup, event_id, seq, sealed, entry "
                                      f"FROM leaves WHERE segment IN ({marks}) ORDER BY lookup, event_id",
                                      (merged, *chosen)).rowcount
                for table in ("events", "leaves"):
                    db.execute(f"DELETE FROM {table} WHERE segment IN ({marks})", chosen)
                db.execute(f"DELETE FROM segments WHERE id IN ({marks})", chosen)
                db.execute("INSERT INTO segments VALUES (?, ?, ?)", (merged, tier + 1, records))
            merges += 1

    def segment_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM segments").fetchone()[0])

    def sealed(self, lookup: str) -> dict[str, Any] | None:
        """The store's part of one document as the lookup endpoint serves it (base64), or
        None when it holds nothing under ``lookup``."""
        raw = lookup_bytes(lookup)
        events = self._db.execute(
            f"SELECT DISTINCT event_id, sealed FROM events WHERE {_IN_SEGMENTS} AND lookup = ? ORDER BY event_id",
            (raw,)).fetchall()
        leaves = self._db.execute(
            f"SELECT DISTINCT event_id, seq, sealed, entry FROM leaves WHERE {_IN_SEGMENTS} AND lookup = ? "
            "ORDER BY event_id", (raw,)).fetchall()
        if not events and not leaves:
            return None
        return {
            "events": [{"event_id": e, "sealed": _b64(s)} for e, s in events],
            "audit": [{"event_id": e, "seq": q, **({"sealed": _b64(s)} if s is not None else {"entry": t})}
                      for e, q, s, t in leaves],
        }

    def counts(self) -> tuple[int, int]:
        """(documents, events): the lookups that hold at least one event, and the events."""
        documents, events = self._db.execute(
            "SELECT count(DISTINCT lookup), count(*) FROM events").fetchone()
        return int(documents), int(events)

    def event_ids(self) -> Iterator[tuple[str, int]]:
        """(lookup, event id) of every sealed event, in order: what is published, unreadable."""
        for raw, event_id in self._db.execute("SELECT lookup, event_id FROM events ORDER BY lookup, event_id"):
            yield lookup_from_bytes(raw), int(event_id)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@contextmanager
def opened(public_root: Path, *, readonly: bool = False) -> Iterator[StatusStore | None]:
    """The store of ``public_root``; for reading, None while nothing was ever published."""
    path = store_path(public_root)
    if readonly and not path.exists():
        yield None
        return
    with closing(StatusStore(path, readonly=readonly)) as store:
        yield store


def published_events(public_root: Path) -> Iterator[tuple[str, int]]:
    """(lookup, event id) of every published status change, in the store and in documents of
    the layout before it: what reconciliation counts and crash tests compare."""
    with opened(public_root, readonly=True) as store:
        if store is not None:
            yield from store.event_ids()
    for path in legacy_documents(public_root):
        for event in orjson.loads(path.read_bytes()).get("events", ()):
            yield path.stem, int(event["event_id"])


def public_lookup(public_root: Path, store: StatusStore | None, lookup: str) -> dict[str, Any] | None:
    """What the lookup endpoint answers for ``lookup``: the store's sealed events and leaves,
    and the document published before the store (``legacy``, plain) if there is one."""
    found = store.sealed(lookup) if store is not None else None
    legacy_path = legacy_document_path(public_root, lookup)
    if not legacy_path.is_file() and (public_root / LEGACY_FOLDER / f"{lookup}.json").is_file():
        shard_flat_documents(public_root / LEGACY_FOLDER)
    legacy = orjson.loads(legacy_path.read_bytes()) if legacy_path.is_file() else None
    if found is None and legacy is None:
        return None
    return {"lookup": lookup, "events": [], "audit": [], **(found or {}), "legacy": legacy}


_CARRIED = ("net_id", "case_number", "power_code", "power_name", "case_name", "applicant_name")


def document_of(events: list[dict[str, Any]], audit: dict[str, Any]) -> dict[str, Any]:
    """The status document an applicant sees, from the opened events (the status page builds
    the same in JavaScript): events in order, the case's latest names, status and result,
    and the audit leaves by event id."""
    events = sorted({e["event_id"]: e for e in events}.values(), key=lambda e: e["event_id"])
    document: dict[str, Any] = {"events": events}
    if not events:
        return document
    latest = events[-1]
    for key in _CARRIED:
        if latest.get(key) is not None:
            document[key] = latest[key]
    document["status"] = latest["status"]
    document["updated_at"] = latest["at"]
    results = [e["result"] for e in events if e.get("result")]
    document["result"] = results[-1] if results else None
    if audit:
        document["audit"] = audit
    return document


def read_status(public_root: Path, key: str, password: str) -> dict[str, Any] | None:
    """The status document of case ``key`` (case number, or NET_ID of an application without
    one) as its applicant would see it with ``password``, or None when there is none: what
    the status page shows, for an operator answering the applicant (``hub public lookup``)
    and for tests. Raises ``rules.status_seal.SealBroken`` when a record does not open."""
    lookup, key_bytes = status_keys(key, password)
    with opened(public_root, readonly=True) as store:
        found = public_lookup(public_root, store, lookup)
    if found is None:
        return None
    sealer = Sealer(key_bytes, lookup)
    legacy = found["legacy"] or {}
    events = list(legacy.get("events", []))
    events += [orjson.loads(sealer.open(e["event_id"], base64.b64decode(e["sealed"]))) for e in found["events"]]
    audit: dict[str, Any] = dict(legacy.get("audit", {}))
    for leaf in found["audit"]:
        entry = leaf.get("entry")
        if entry is None:
            entry = sealer.open(leaf["event_id"], base64.b64decode(leaf["sealed"]), LEAF_PURPOSE).decode("utf-8")
        for event_id in leaf_event_ids(entry, leaf["event_id"]):
            audit[str(event_id)] = {"seq": leaf["seq"], "entry": entry}
    return document_of(events, audit)


def leaf_event_ids(entry: str, filed_under: int) -> list[int]:
    """The status changes a published leaf proves: those its entry records
    (``rules.publication.published_changes``), or the change it is filed under when the
    entry records none (a leaf that will not match, shown as failing its check)."""
    try:
        row = orjson.loads(entry)["row"]
        changes = published_changes(row["outcome"], row["detail"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        changes = []
    return [event_id for event_id, _ in changes] or [filed_under]


def remove_legacy(public_root: Path, lookup: str) -> None:
    path = legacy_document_path(public_root, lookup)
    if path.exists():
        os.unlink(path)
