"""The administration zone's audit log published outward (docs/audit.md §10): each new signed
checkpoint rides out on the outbound ferry in a bundle of its own, with the consistency proof
from the checkpoint sent before it and the C2SP tiles the new tree adds; the internet zone
opens it with the administration zone's keys, checks that it extends the last one it accepted
(a fork or a rollback is quarantined with a security alarm) and publishes
``public/audit/checkpoint`` and ``public/audit/tile/...`` beside the status page.

With the checkpoint go, for every status change published since the last one, the leaf that
recorded its publication (its number and entry), so the applicant's status document can carry
what the status page needs to check it in the browser.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, Engine, delete, func, select

from connectors.audit import hash_reader, log_suite
from connectors.channel_sender import BuiltBundle, ChannelSender, resumed_of
from connectors.clock import iso, now
from connectors.db import (
    audit_checkpoints,
    audit_entries,
    audit_published,
    audit_sent,
    audit_unfiled,
    transaction,
)
from connectors.ferry_ledger import PlannedBundle, plan_next
from connectors.files import write_atomic, write_batch
from connectors.public_feed import LOOKUP, NOT_A_LEAF, Refused, keep_refused
from ferry.bundle import VerifiedBundle, records_item, records_name
from ferry.tlog import (
    Checkpoint,
    CheckpointRefused,
    Extended,
    ExtensionRefused,
    NoteVerifier,
    Tile,
    TileHashReader,
    TlogError,
    TreeHasher,
    new_tiles,
    open_checkpoint,
    parse_tile_path,
    prove_consistency,
    read_tile_data,
    stored_hash_index,
    tree_hash,
    tree_hasher,
    verify_extension,
)
from ferry.verdict import Refuse

if TYPE_CHECKING:
    from connectors.status_store import StatusStore

CHECKPOINT_PLAN = "checkpoint"  # ferry_sent.kind of the audit log's bundles
CHECKPOINT_KIND = "audit_checkpoint"  # one record: the note, the sizes, the consistency proof
TILE_KIND = "audit_tile"  # one record per tile: its C2SP path and bytes
LEAF_KIND = "audit_leaves"  # one record per leaf of published status changes
AUDIT_FOLDER = "audit"
PUBLISH_STAGE = "status_publish"  # the provenance stage whose leaves record publications


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- administration zone: send ----------------------------------------------------------


def _published_leaves(connection: Connection, old_size: int, new_size: int) -> list[dict[str, Any]]:
    """The leaves in [old_size, new_size) that recorded the publication of status changes
    (an application's changes in one bundle; one change each from hubs before that), with
    the lookup name of the case's status document (so the internet zone can file them),
    each entry sealed under that document's key. A leaf is filed under the first change it
    records; the status page reads the others from its entry."""
    from connectors.db import provenance, query_passwords
    from connectors.exchange import document_sealers
    from rules.publication import published_changes
    from rules.status_seal import LEAF_PURPOSE

    rows = connection.execute(
        select(audit_entries.c.seq, audit_entries.c.entry, provenance.c.record_id, provenance.c.outcome,
               provenance.c.detail, query_passwords.c.lookup)
        .join(provenance, provenance.c.id == audit_entries.c.source_key)
        .join(query_passwords, query_passwords.c.net_id == provenance.c.record_id)
        .where(audit_entries.c.seq >= old_size, audit_entries.c.seq < new_size,
               audit_entries.c.source == "provenance", provenance.c.stage == PUBLISH_STAGE,
               provenance.c.bundle.is_not(None))
        .order_by(audit_entries.c.seq)
    )
    found = []
    for seq, entry, net_id, outcome, detail, lookup in rows:
        changes = published_changes(outcome, detail)
        if changes:
            found.append((int(seq), entry, net_id, changes[0][0], lookup))
    sealers = document_sealers(connection, (net_id for _, _, net_id, _, _ in found))
    # The entry names the case (its NET_ID, its statuses): it is sealed like the status record
    # it proves, so the public store reads as nothing without the case's password.
    return [{"lookup": lookup, "event_id": event_id, "seq": seq,
             "sealed": _b64(sealers[net_id].seal(event_id, entry.encode("utf-8"), LEAF_PURPOSE))}
            for seq, entry, net_id, event_id, lookup in found]


def build_checkpoint_bundle(engine: Engine, old_size: int, new_size: int) -> BuiltBundle:
    """The bundle of the checkpoint of ``new_size`` leaves sent after the one of ``old_size``:
    everything from the database, so a rebuild gives the same bytes."""
    with engine.connect() as connection:
        note = connection.execute(
            select(audit_checkpoints.c.note).where(audit_checkpoints.c.size == new_size)).scalar_one()
        previous = connection.execute(
            select(audit_checkpoints.c.note).where(audit_checkpoints.c.size == old_size)).scalar()
        suite = log_suite(connection)
        hasher = tree_hasher(suite)
        reader = hash_reader(connection)
        proof = prove_consistency(old_size, new_size, reader, hasher) if old_size else []
        tiles = [{"path": tile.path, "data": _b64(read_tile_data(tile, reader))} for tile in new_tiles(old_size, new_size)]
        leaves = _published_leaves(connection, old_size, new_size)
    record = {"note": note, "previous": previous, "old_size": old_size, "size": new_size,
              "consistency": [_b64(h) for h in proof], "tree_hash": suite}
    return BuiltBundle(
        items=[records_item(CHECKPOINT_KIND, [record]), records_item(TILE_KIND, tiles),
               records_item(LEAF_KIND, leaves)],
        counts={CHECKPOINT_KIND: 1, TILE_KIND: len(tiles), LEAF_KIND: len(leaves)},
    )


def rebuild_checkpoint(engine: Engine, plan: PlannedBundle) -> BuiltBundle:
    """The rebuilder of checkpoint plans: the sizes its plan recorded give the same bytes."""
    with engine.connect() as connection:
        row = connection.execute(select(audit_sent).where(audit_sent.c.sequence == plan.sequence)).one()
    return build_checkpoint_bundle(engine, int(row.old_size), int(row.size))


def publish_checkpoint(sender: ChannelSender, *, catalogue_version: str) -> dict[str, Any]:
    """Send the administration zone's newest checkpoint when it is newer than the last one sent."""
    report: dict[str, Any] = {"bundles": [], "size": None}
    report["bundles"] += [sent.plan.ref for sent in resumed_of(sender.resume(), CHECKPOINT_PLAN)]
    with sender.engine.connect() as connection:
        newest = connection.execute(select(func.max(audit_checkpoints.c.size))).scalar()
        sent = int(connection.execute(select(func.max(audit_sent.c.size))).scalar() or 0)
    if newest is None or int(newest) <= sent:
        return report
    # Not the plan's first_key/last_key: on the outbound channel those are outbox ids
    # (``last_acknowledged_key``), and a checkpoint bundle carries no status change.
    built = build_checkpoint_bundle(sender.engine, sent, int(newest))
    at = iso(now())
    with transaction(sender.engine) as connection:
        plan = plan_next(connection, sender.channel, created_at=at, catalogue_version=catalogue_version,
                         record_count=sum(built.counts.values()), kind=CHECKPOINT_PLAN)
        connection.execute(audit_sent.insert().values(sequence=plan.sequence, old_size=sent, size=int(newest),
                                                      planned_at=at))
    sender.send(plan, built)
    report["bundles"].append(plan.ref)
    report["size"] = int(newest)
    return report


# --- internet zone: check on receipt ------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """A checkpoint bundle, opened and checked, ready to apply."""

    checkpoint: Checkpoint
    sequence: int
    newest: bool  # it extends the newest accepted tree (else it is an older one arriving late)
    tiles: dict[str, bytes]


def has_checkpoint(bundle: VerifiedBundle) -> bool:
    try:
        bundle.item(records_name(CHECKPOINT_KIND))
    except KeyError:
        return False
    return True


def _record(bundle: VerifiedBundle) -> dict[str, Any]:
    records = [orjson.loads(line) for line in bundle.iter_records(CHECKPOINT_KIND)]
    if len(records) != 1 or not isinstance(records[0], dict):
        raise ValueError("a checkpoint bundle carries exactly one checkpoint record")
    return records[0]


def _tiles(bundle: VerifiedBundle) -> dict[str, bytes]:
    tiles: dict[str, bytes] = {}
    for line in bundle.iter_records(TILE_KIND):
        record = orjson.loads(line)
        tile = parse_tile_path(record["path"])  # refuses anything but a canonical tile path
        data = base64.b64decode(record["data"], validate=True)
        if len(data) != 32 * tile.width:
            raise ValueError(f"{tile.path} holds {len(data)} bytes")
        tiles[tile.path] = data
    return tiles


def _last_accepted(connection: Connection) -> tuple[int, str] | None:
    row = connection.execute(
        select(audit_published.c.sequence, audit_published.c.note).order_by(audit_published.c.size.desc()).limit(1)).first()
    return None if row is None else (int(row.sequence), row.note)


def check_checkpoint(engine: Engine, bundle: VerifiedBundle, verifiers: Sequence[NoteVerifier],
                     public_root: Path) -> Received | Refuse:
    """Open a checkpoint bundle with the administration zone's keys and check it against the
    newest checkpoint this zone accepted: the consistency proof it carries must show that the
    new tree extends that one (``verify_extension``). A checkpoint older than the accepted one
    is a ROLLBACK when it was sent after it, and when it is a late (resent) one its root must
    be the accepted tree's at its size, read from the published tiles, else a FORK."""
    try:
        record = _record(bundle)
        new = open_checkpoint(record["note"], verifiers)
        tiles = _tiles(bundle)
        proof = [base64.b64decode(h, validate=True) for h in record["consistency"]]
        old_size = int(record["old_size"])
        if new.size != int(record["size"]):
            raise ValueError("the record's size is not its note's")
    except CheckpointRefused as refused:
        return Refuse(refused.code, refused.detail)
    except (ValueError, KeyError, TypeError, binascii.Error, TlogError) as error:
        return Refuse("BAD_FORMAT", f"checkpoint record: {error}")
    suite = record.get("tree_hash")
    hasher = tree_hasher(suite if suite in ("intl", "gm") else _suite_of(verifiers, new))
    sequence = bundle.manifest.sequence
    with engine.connect() as connection:
        last = _last_accepted(connection)
    if last is None:
        previous = _previous(record, verifiers) if old_size else None
        if old_size and previous is None:
            return Refuse("BAD_FORMAT", "the checkpoint before this one is not signed by the log")
        if previous is not None:
            verdict = verify_extension(previous, new, proof, hasher=hasher)
            if isinstance(verdict, ExtensionRefused):
                return Refuse(verdict.code, verdict.detail)
        return _within_tiles(new, tiles, public_root, hasher, sequence, newest=True)
    last_sequence, last_note = last
    accepted = open_checkpoint(last_note, verifiers)
    if new.size < accepted.size or (new.size == accepted.size and sequence < last_sequence):
        if sequence > last_sequence:
            verdict = verify_extension(accepted, new, [], hasher=hasher)  # ROLLBACK
            assert isinstance(verdict, ExtensionRefused)
            return Refuse(verdict.code, verdict.detail)
        # A late one (a resend after a gap): its root must be the accepted tree's at its size.
        try:
            reader = TileHashReader(accepted.size, accepted.root_hash, _tile_files(public_root, {}), hasher)
            root = tree_hash(new.size, reader, hasher) if new.size else hasher.empty_root()
        except (TlogError, OSError) as error:
            return Refuse("BAD_FORMAT", f"the published tiles do not give the tree of {new.size}: {error}")
        if root != new.root_hash:
            return Refuse("FORK", f"two root hashes for the tree of {new.size} leaves")
        return Received(new, sequence, newest=False, tiles={})
    if old_size == accepted.size:
        verdict = verify_extension(accepted, new, proof, hasher=hasher)
    else:
        # The bundle sent before this one has not arrived (a gap): check the proof it carries
        # from its own predecessor, and that predecessor against the accepted tree by tiles.
        previous = _previous(record, verifiers)
        if previous is None:
            return Refuse("BAD_FORMAT", "the checkpoint before this one is not signed by the log")
        verdict = verify_extension(previous, new, proof, hasher=hasher)
    if isinstance(verdict, ExtensionRefused):
        return Refuse(verdict.code, verdict.detail)
    assert isinstance(verdict, Extended)
    return _within_tiles(new, tiles, public_root, hasher, sequence, newest=True)


def _suite_of(verifiers: Sequence[NoteVerifier], checkpoint: Checkpoint) -> str:
    for verifier in verifiers:
        if verifier.name in checkpoint.signed_by:
            return verifier.suite
    raise CheckpointRefused("UNKNOWN_KEY", "no known key signed the checkpoint")


def _previous(record: dict[str, Any], verifiers: Sequence[NoteVerifier]) -> Checkpoint | None:
    note = record.get("previous")
    if not isinstance(note, str):
        return None
    try:
        return open_checkpoint(note, verifiers)
    except CheckpointRefused:
        return None


def _tile_files(public_root: Path, fresh: dict[str, bytes]) -> Callable[[Tile], bytes]:
    def read(tile: Tile) -> bytes:
        if tile.path in fresh:
            return fresh[tile.path]
        return (public_root / AUDIT_FOLDER / tile.path).read_bytes()

    return read


def _within_tiles(new: Checkpoint, tiles: dict[str, bytes], public_root: Path, hasher: TreeHasher, sequence: int,
                  *, newest: bool) -> Received | Refuse:
    """Every tile the bundle carries must authenticate against the new tree (with the tiles
    published before): a tile that does not would be published wrong."""
    if new.size == 0:
        return Received(new, sequence, newest, tiles)
    reader = TileHashReader(new.size, new.root_hash, _tile_files(public_root, tiles), hasher)
    try:
        for path in tiles:
            tile = parse_tile_path(path)
            reader.read_hashes([stored_hash_index(8 * tile.level, tile.index * 256 + tile.width - 1)])
    except (TlogError, OSError, ValueError) as error:
        return Refuse("TILE_MISMATCH", f"the tiles do not give the checkpoint's tree: {error}")
    return Received(new, sequence, newest, tiles)


# --- internet zone: apply ---------------------------------------------------------------


def apply_checkpoint(public_root: Path, connection: Connection, bundle: VerifiedBundle, received: Received,
                     ref: str, at: str, verifier_keys: Sequence[str], quarantine_dir: Path) -> int:
    """Publish a checked checkpoint: its tiles, then ``public/audit/checkpoint`` (when it is the
    newest), the log's verifier keys, the leaves of published status changes into their
    status documents, and the row of accepted checkpoints; all files written atomically. A
    leaf record that is not one is kept in ``quarantine_dir`` with its reason
    (``connectors.public_feed.keep_refused``)."""
    folder = public_root / AUDIT_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for parent in sorted({(folder / path).parent for path in received.tiles}):
        parent.mkdir(parents=True, exist_ok=True)
    write_batch(folder, [(folder / path, data) for path, data in sorted(received.tiles.items())])
    if received.newest:
        write_atomic(folder / "checkpoint", received.checkpoint.note.encode("utf-8"))
        write_atomic(folder / "key", ("\n".join(verifier_keys) + "\n").encode("utf-8"))
    refused: list[Refused] = []
    leaves = _file_leaves(public_root, bundle, connection, refused)
    keep_refused(connection, quarantine_dir, ref, refused, at)
    connection.execute(audit_published.insert().values(
        size=received.checkpoint.size, root=received.checkpoint.root_hash, note=received.checkpoint.note,
        sequence=received.sequence, bundle=ref, at=at))
    from connectors.provenance import record_events

    record_events(connection, [(received.checkpoint.origin, "portal_publish", "checkpoint_published", ref,
                                {"size": received.checkpoint.size, "leaves": leaves})], at)
    return 1 + len(received.tiles)


def _file_leaves(public_root: Path, bundle: VerifiedBundle, connection: Connection, refused: list[Refused]) -> int:
    """Put each published status change's leaf, sealed like the change, into the public
    status store beside it (by lookup and event id), so the status page can prove the change.
    A leaf that comes before its change (a status bundle lost and resent after this one) is
    stored all the same and shown once the change is. Leaves that waited in ``audit_unfiled``
    under the file layout before the store (plain entries) move into the store on the way
    once the change they are filed under is published, as that layout filed them; until then
    they keep waiting, so a document taken down meanwhile (a case withheld later) never gets
    its leaf back in plain text. A record that is not a leaf goes to ``refused``."""
    from connectors.status_store import opened

    leaves: list[tuple[str, int, int, bytes | None, str | None]] = []
    for index, line in enumerate(bundle.iter_records(LEAF_KIND)):
        try:
            leaf = orjson.loads(line)
            sealed = base64.b64decode(str(leaf["sealed"]), validate=True)
            if not (LOOKUP.match(str(leaf["lookup"])) and type(leaf["seq"]) is int and type(leaf["event_id"]) is int):
                raise ValueError(leaf)
        except (ValueError, TypeError, KeyError):  # orjson's and base64's errors are ValueErrors
            refused.append(Refused(LEAF_KIND, index, NOT_A_LEAF,
                                   "not {lookup, event_id, seq, sealed} with a lookup name, integers and base64", line))
            continue
        leaves.append((leaf["lookup"], leaf["event_id"], leaf["seq"], sealed, None))
    carried = len(leaves)
    waiting = connection.execute(select(audit_unfiled)).all()
    with opened(public_root) as store:
        assert store is not None
        shown = {lookup: _shown_events(public_root, store, lookup) for lookup in {row.lookup for row in waiting}}
        filed = [row for row in waiting if row.event_id in shown[row.lookup]]
        leaves += [(row.lookup, row.event_id, row.seq, None, row.entry) for row in filed]
        store.put(bundle.manifest.sequence, (), leaves)
    for row in filed:
        connection.execute(delete(audit_unfiled).where(audit_unfiled.c.lookup == row.lookup,
                                                       audit_unfiled.c.event_id == row.event_id))
    return carried


def _shown_events(public_root: Path, store: StatusStore, lookup: str) -> set[int]:
    """The event ids the lookup of ``lookup`` answers with: in the store and in its document
    of the file layout before it."""
    from connectors.status_store import public_lookup

    found = public_lookup(public_root, store, lookup)
    if found is None:
        return set()
    legacy = (found["legacy"] or {}).get("events", [])
    return {int(e["event_id"]) for e in found["events"]} | {int(e["event_id"]) for e in legacy}


def published_checkpoints(connection: Connection) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in connection.execute(select(audit_published).order_by(audit_published.c.size))]

