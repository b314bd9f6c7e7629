"""The internet zone's intake flow: submissions in the public portal's drop folder →
inbound bundles. Intake plans a bundle over the submissions it claims and builds its items;
the ``ChannelSender`` sends it (and rebuilds it from the claims after a crash).

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

from connectors.channel_sender import BuiltBundle, ChannelSender, Rebuild, resumed_of
from connectors.clock import iso, now
from connectors.collector import collector_paused
from connectors.db import bulk_insert, intake_claims, quarantine, transaction
from connectors.ferry_ledger import DATA, PlannedBundle, plan_next, quarantine_file
from connectors.provenance import record_events
from ferry.bundle import ItemSource, drained, lines_item, record_line
from ferry.content_types import content_matches
from schemas.exceptions import TerminalError

SUBMISSION_FILE = "submission.json"
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
MAX_SUBMISSION_BYTES = 1 << 20
MAX_ATTACHMENT_BYTES = 50 << 20
SNIFF_BYTES = 64 << 10

SUBMISSION_UNREADABLE = "SUBMISSION_UNREADABLE"
ATTACHMENT_MISSING = "ATTACHMENT_MISSING"
ATTACHMENT_HASH = "ATTACHMENT_HASH_MISMATCH"
ATTACHMENT_TYPE = "ATTACHMENT_TYPE"
ATTACHMENT_TOO_LARGE = "ATTACHMENT_TOO_LARGE"
UNSAFE_NAME = "UNSAFE_NAME"


@dataclass(frozen=True, slots=True)
class Submission:
    """A submission that intake can carry: its envelope, already encoded as its bundle record
    line, and its attachment files by hash. Only the line is kept, not the parsed envelope:
    a batch of 20,000 parsed envelopes is millions of live objects, which the garbage
    collector scanned again and again (half the cost of parsing them)."""

    net_id: str
    line: bytes  # ferry.bundle.record_line(envelope)
    attachments: dict[str, tuple[str, Path]]  # sha256 -> (media type, file)

    @property
    def envelope(self) -> dict[str, Any]:
        parsed: dict[str, Any] = orjson.loads(self.line)
        return parsed


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
    return Submission(net_id, record_line(envelope), attachments)


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


def bundle_items(submissions: list[Submission]) -> tuple[list[ItemSource], dict[str, int]]:
    """The bundle's items; empties ``submissions``, letting each submission go as its line
    is joined."""
    attachments: dict[str, tuple[str, Path]] = {}
    for submission in submissions:
        for digest, found in submission.attachments.items():
            attachments.setdefault(digest, found)
    counts = {"applications": len(submissions)}
    submissions.sort(key=lambda s: s.net_id)
    items = [lines_item("applications", (s.line for s in drained(submissions)))]
    for digest in sorted(attachments):
        media_type, path = attachments[digest]
        items.append(ItemSource.from_path(f"att/{digest}", "attachment", media_type, path))
    return items, counts


def record_collected(connection: Connection, plan: PlannedBundle, net_ids: list[str], at: str) -> None:
    """The provenance of carried submissions, whichever ingress they came from: one
    ``intake``/``collected`` event each, naming the bundle, in the transaction that plans the
    bundle. It is the only intake event of a carried submission (``hub trace`` shows the
    bundle it left in): the plan is sent, or resent after a crash, before anything newer, so
    a second event once it was sent would say nothing more for twice the cost."""
    record_events(connection, [(net_id, "intake", "collected", plan.ref, None) for net_id in net_ids], at)


def _built(plan: PlannedBundle, submissions: list[Submission], drop: Path, collected: Path) -> BuiltBundle:
    """The planned bundle of ``submissions`` (empties the list); once sent, their folders
    move out of the drop."""
    net_ids = [s.net_id for s in submissions]
    items, counts = bundle_items(submissions)

    def after_send() -> None:
        folder = collected_folder(collected, plan.sequence)
        folder.mkdir(parents=True, exist_ok=True)
        drop_path = os.fspath(drop)
        for net_id in net_ids:
            _move_into(folder, net_id, os.path.join(drop_path, net_id))

    return BuiltBundle(items, counts, after_send)


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


def intake_rebuilder(drop: Path, collected: Path) -> Rebuild:
    """The rebuilder of inbound data plans: the claimed submissions, read again from the
    drop (they leave it only after the bundle was sent), give the same bytes."""

    def rebuild(engine: Engine, plan: PlannedBundle) -> BuiltBundle:
        with engine.connect() as connection:
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
        return _built(plan, submissions, drop, collected)

    return rebuild


def collect_submissions(
    sender: ChannelSender,
    *,
    drop: Path,
    quarantine_dir: Path,
    collected: Path,
    catalogue_version: str,
    max_records: int = 20_000,
) -> IntakeReport:
    """Carry every complete, unclaimed submission in ``drop`` into inbound bundles."""
    report = IntakeReport()
    for resumed in resumed_of(sender.resume(), DATA):
        report.bundles.append(resumed.plan.ref)
        report.carried += resumed.plan.record_count
    while True:
        # One scan of the drop per pass, taken a batch at a time (a rescan per batch would
        # make a day's intake quadratic, and one query for a whole day's names would pass
        # the database's limit on bound parameters); the next pass picks up late arrivals.
        moved = 0
        for candidates in _submission_batches(drop, max_records):
            with collector_paused():
                moved += _collect_batch(
                    sender, candidates, drop=drop, collected=collected,
                    quarantine_dir=quarantine_dir, catalogue_version=catalogue_version, report=report,
                )
        if not moved:  # the drop is empty, or holds only folders still being written
            return report


def _collect_batch(
    sender: ChannelSender,
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
        record_collected(connection, plan, [s.net_id for s in submissions], at)
    carried = len(submissions)
    sender.send(plan, _built(plan, submissions, drop, collected))
    report.bundles.append(plan.ref)
    report.carried += carried
    return moved + carried
