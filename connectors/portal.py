"""The internet zone's edges: collecting submissions from the public portal's drop folder
into inbound bundles (intake), and writing the public status feed from outbound bundles.

Everything in the drop folder is untrusted: a submission that cannot be carried safely is
quarantined with its reason, never dropped and never passed on.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, select

from connectors.clock import iso, now
from connectors.db import bulk_insert, intake_claims, quarantine, transaction
from connectors.ferry_ledger import (
    PlannedBundle,
    finish_pending_heartbeat,
    pending_plan,
    plan_next,
    quarantine_file,
    send_planned,
)
from connectors.files import write_atomic, write_batch
from connectors.provenance import record_events
from ferry.bundle import ItemSource, VerifiedBundle, drained, records_item
from ferry.content_types import content_matches
from ferry.keys import RecipientKey, SigningKey
from ferry.transport import Transport
from schemas.exceptions import TerminalError

SUBMISSION_FILE = "submission.json"
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
NET_ID = re.compile(r"^NET[0-9A-Z]{8,24}$")
MAX_SUBMISSION_BYTES = 1 << 20
MAX_ATTACHMENT_BYTES = 50 << 20
SNIFF_BYTES = 64 << 10

SUBMISSION_UNREADABLE = "SUBMISSION_UNREADABLE"
ATTACHMENT_MISSING = "ATTACHMENT_MISSING"
ATTACHMENT_HASH = "ATTACHMENT_HASH_MISMATCH"
ATTACHMENT_TYPE = "ATTACHMENT_TYPE"
ATTACHMENT_TOO_LARGE = "ATTACHMENT_TOO_LARGE"
UNSAFE_NAME = "UNSAFE_NAME"


@dataclass(frozen=True)
class Sender:
    """What a zone needs to send on one channel."""

    engine: Engine
    channel: str
    key: SigningKey
    recipient: RecipientKey
    outbox: Path
    transport: Transport


@dataclass(frozen=True)
class Submission:
    """A submission that intake can carry: its envelope and its attachment files by hash."""

    net_id: str
    envelope: dict[str, Any]
    attachments: dict[str, tuple[str, Path]]  # sha256 -> (media type, file)


@dataclass(frozen=True)
class Refusal:
    """Why a submission cannot be carried across the ferry."""

    code: str
    detail: str


@dataclass
class IntakeReport:
    bundles: list[str] = field(default_factory=list)
    carried: int = 0
    quarantined: list[dict[str, str]] = field(default_factory=list)


def inspect_submission(folder: str | Path) -> Submission | Refusal | None:
    """Read one submission folder and check everything intake must vouch for; None while
    it is incomplete (the portal renames ``submission.json`` into place last)."""
    # One open, one fstat, one read on plain string paths: a day's intake does this a
    # million times, and a pathlib object per submission costs as much as the read.
    folder = os.fspath(folder)
    net_id = os.path.basename(folder)
    try:
        descriptor = os.open(os.path.join(folder, SUBMISSION_FILE), os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        if os.fstat(descriptor).st_size > MAX_SUBMISSION_BYTES:
            return Refusal(SUBMISSION_UNREADABLE, f"{SUBMISSION_FILE} exceeds {MAX_SUBMISSION_BYTES} bytes")
        # Read one byte past the limit: a file that grew after the fstat is still refused.
        content = os.read(descriptor, MAX_SUBMISSION_BYTES + 1)
    finally:
        os.close(descriptor)
    if len(content) > MAX_SUBMISSION_BYTES:
        return Refusal(SUBMISSION_UNREADABLE, f"{SUBMISSION_FILE} exceeds {MAX_SUBMISSION_BYTES} bytes")
    try:
        envelope = orjson.loads(content)
    except orjson.JSONDecodeError as error:
        return Refusal(SUBMISSION_UNREADABLE, f"{SUBMISSION_FILE} is not valid JSON: {error}")
    if not isinstance(envelope, dict) or envelope.get("net_id") != net_id:
        return Refusal(SUBMISSION_UNREADABLE, "net_id missing or not equal to the folder name")
    attachments: dict[str, tuple[str, Path]] = {}
    materials = envelope.get("materials")
    for index, material in enumerate(materials if isinstance(materials, list) else []):
        if not isinstance(material, dict) or "file" not in material:
            continue  # nothing to carry; validation in the administration zone reports it
        name, declared = material.get("file"), material.get("media_type")
        if not isinstance(name, str) or not SAFE_NAME.match(name) or name == SUBMISSION_FILE:
            return Refusal(UNSAFE_NAME, f"materials/{index}: file name {name!r} is not a plain name")
        path = Path(folder, name)
        if not path.is_file():
            return Refusal(ATTACHMENT_MISSING, f"materials/{index}: file {name} is not in the drop")
        if path.stat().st_size > MAX_ATTACHMENT_BYTES:
            return Refusal(ATTACHMENT_TOO_LARGE, f"materials/{index}: {name} is over {MAX_ATTACHMENT_BYTES} bytes")
        digest, head = _hash_file(path)
        if digest != material.get("sha256"):
            return Refusal(ATTACHMENT_HASH, f"materials/{index}: {name} does not match its declared SHA-256")
        if not isinstance(declared, str) or not content_matches(declared, head):
            return Refusal(
                ATTACHMENT_TYPE, f"materials/{index}: content of {name} is not the declared {declared!r}"
            )
        attachments.setdefault(digest, (declared, path))
    return Submission(net_id, envelope, attachments)


def _hash_file(path: Path) -> tuple[str, bytes]:
    digest = hashlib.sha256()
    head = b""
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            if not head:
                head = chunk[:SNIFF_BYTES]
            digest.update(chunk)
    return digest.hexdigest(), head


def _submission_batches(drop: Path, size: int) -> Iterator[list[str]]:
    """The names of the submission folders, ``size`` at a time, each batch sorted, from one
    scan of the drop. Only a batch of names is held, not a day's million: the caller moves
    a batch's folders out of the drop while the scan goes on, which leaves the entries not
    yet listed to be listed once (POSIX ``readdir``); one listed again after it was moved is
    found gone when it is read. Whether a folder is complete is found when it is read (no
    stat per folder here)."""
    if not drop.is_dir():
        return
    batch: list[str] = []
    with os.scandir(drop) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                batch.append(entry.name)
                if len(batch) == size:
                    batch.sort()
                    yield batch
                    batch = []
    if batch:
        batch.sort()
        yield batch


def _claimed(connection: Connection, names: list[str]) -> dict[str, int | None]:
    """The names already claimed, with the inbound sequence that carried each (None for a
    submission held in quarantine)."""
    claimed: dict[str, int | None] = dict(
        connection.execute(
            select(intake_claims.c.net_id, intake_claims.c.sequence).where(intake_claims.c.net_id.in_(names))
        ).all()
    )
    held = connection.execute(
        select(quarantine.c.ref).where(
            quarantine.c.kind == "submission",
            quarantine.c.state == "held",  # a released submission is collected again
            quarantine.c.ref.in_(names),
        )
    ).scalars()
    for name in held:
        claimed.setdefault(name, None)
    return claimed


def collected_folder(collected: Path, sequence: int | None) -> Path:
    """Where intake keeps the submissions one inbound bundle carried: a folder per bundle,
    so no folder holds a whole day's million submissions."""
    return collected if sequence is None else collected / f"inbound-{sequence:08d}"


def _bundle_items(submissions: list[Submission]) -> tuple[list[ItemSource], dict[str, int]]:
    """The bundle's items; empties ``submissions``, letting each envelope go as it is
    encoded (a batch's envelopes and its encoded lines are never all in memory together)."""
    attachments: dict[str, tuple[str, Path]] = {}
    for submission in submissions:
        for digest, found in submission.attachments.items():
            attachments.setdefault(digest, found)
    counts = {"applications": len(submissions)}
    submissions.sort(key=lambda s: s.net_id)
    items = [records_item("applications", (s.envelope for s in drained(submissions)))]
    for digest in sorted(attachments):
        media_type, path = attachments[digest]
        items.append(ItemSource.from_path(f"att/{digest}", "attachment", media_type, path))
    return items, counts


def _send(
    sender: Sender, plan: PlannedBundle, submissions: list[Submission], drop: Path, collected: Path
) -> None:
    """Send ``submissions`` in the planned bundle and move their folders out of the drop;
    empties the list."""
    net_ids = [s.net_id for s in submissions]
    items, counts = _bundle_items(submissions)
    send_planned(
        sender.engine, plan, items=items, counts=counts, key=sender.key,
        recipient=sender.recipient, outbox=sender.outbox, transport=sender.transport,
    )
    with transaction(sender.engine) as connection:
        record_events(
            connection, [(net_id, "intake", "sent", plan.ref, None) for net_id in net_ids], iso(now())
        )
    folder = collected_folder(collected, plan.sequence)
    folder.mkdir(parents=True, exist_ok=True)
    drop_path = os.fspath(drop)
    for net_id in net_ids:
        _move_into(folder, net_id, os.path.join(drop_path, net_id))


def _move_into(folder: Path, name: str, source: str | Path) -> None:
    target = os.path.join(folder, name)
    try:
        os.rename(source, target)  # the common case: one call, same file system
        return
    except OSError:
        pass  # moved already, target left over from an earlier run, or another file system
    if os.path.lexists(source):
        os.makedirs(folder, exist_ok=True)
        if os.path.lexists(target):
            shutil.rmtree(target)  # an earlier run copied it before crashing
        shutil.move(source, target)


def _resume(sender: Sender, drop: Path, collected: Path, report: IntakeReport) -> None:
    """Finish a bundle that was planned before a crash, rebuilding the same bytes."""
    with sender.engine.connect() as connection:
        plan = pending_plan(connection, sender.channel)
        if plan is None:
            return
        net_ids = list(
            connection.execute(
                select(intake_claims.c.net_id).where(intake_claims.c.sequence == plan.sequence)
            ).scalars()
        )
    submissions = []
    for net_id in net_ids:
        found = inspect_submission(drop / net_id)
        if not isinstance(found, Submission):
            raise TerminalError(
                f"claimed submission {net_id} changed in the drop folder since it was planned: {found}"
            )
        submissions.append(found)
    _send(sender, plan, submissions, drop, collected)
    report.bundles.append(plan.ref)
    report.carried += len(net_ids)


def collect_submissions(
    sender: Sender,
    *,
    drop: Path,
    quarantine_dir: Path,
    collected: Path,
    catalogue_version: str,
    max_records: int = 20_000,
) -> IntakeReport:
    """Carry every complete, unclaimed submission in ``drop`` into inbound bundles."""
    report = IntakeReport()
    finish_pending_heartbeat(
        sender.engine, sender.channel, key=sender.key, recipient=sender.recipient,
        outbox=sender.outbox, transport=sender.transport,
    )
    _resume(sender, drop, collected, report)
    while True:
        # One scan of the drop per pass, taken a batch at a time (a rescan per batch would
        # make a day's intake quadratic, and one query for a whole day's names would pass
        # the database's limit on bound parameters); the next pass picks up late arrivals.
        moved = 0
        for candidates in _submission_batches(drop, max_records):
            moved += _collect_batch(
                sender, candidates, drop=drop, collected=collected,
                quarantine_dir=quarantine_dir, catalogue_version=catalogue_version, report=report,
            )
        if not moved:  # the drop is empty, or holds only folders still being written
            return report


def _collect_batch(
    sender: Sender,
    candidates: list[str],
    *,
    drop: Path,
    collected: Path,
    quarantine_dir: Path,
    catalogue_version: str,
    report: IntakeReport,
) -> int:
    """Carry the complete, unclaimed ones of the folders named ``candidates`` in one bundle,
    quarantining the bad ones; returns how many folders left the drop."""
    with sender.engine.connect() as connection:
        done = _claimed(connection, candidates)
    drop_path = os.fspath(drop)
    for leftover in (name for name in candidates if name in done):
        # Sent before a crash (moved into its bundle's folder), or held in quarantine.
        _move_into(collected_folder(collected, done[leftover]), leftover, os.path.join(drop_path, leftover))
    fresh = [name for name in candidates if name not in done]
    moved = len(candidates) - len(fresh)
    submissions: list[Submission] = []
    for name in fresh:
        folder = os.path.join(drop_path, name)
        found: Submission | Refusal | None
        if SAFE_NAME.match(name):
            found = inspect_submission(folder)
        elif os.path.isfile(os.path.join(folder, SUBMISSION_FILE)):  # complete, so the portal is done with it
            found = Refusal(UNSAFE_NAME, "folder name is not a plain name")
        else:
            found = None
        if isinstance(found, Submission):
            submissions.append(found)
            continue
        if found is None:
            continue  # still being written: a later pass takes it
        report.quarantined.append(
            quarantine_file(
                sender.engine, drop / name, quarantine_dir / "submissions", kind="submission",
                ref=name, code=found.code, detail=found.detail,
                record_ids=[name], stage="intake",
            )
        )
        moved += 1
    if not submissions:
        return moved
    at = iso(now())
    with transaction(sender.engine) as connection:
        plan = plan_next(
            connection, sender.channel, created_at=at,
            catalogue_version=catalogue_version, record_count=len(submissions),
        )
        bulk_insert(
            connection, intake_claims,
            [{"net_id": s.net_id, "sequence": plan.sequence, "claimed_at": at} for s in submissions],
        )
        record_events(
            connection, [(s.net_id, "intake", "collected", plan.ref, None) for s in submissions], at
        )
    carried = len(submissions)
    _send(sender, plan, submissions, drop, collected)
    report.bundles.append(plan.ref)
    report.carried += carried
    return moved + carried


# --- public status feed ---------------------------------------------------------------

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
            if retraction is not None and LOOKUP.match(str(retraction.get("lookup", ""))):
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

