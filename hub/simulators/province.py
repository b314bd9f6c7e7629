"""A stand-in for the provincial platform (省级平台): a real OpenSSH sshd serving a chrooted
folder on a loopback port, and the province's side of the feed: it checks each complete
batch (signed manifest, file sizes and hashes, every record against its JSON Schema,
Parquet row counts), writes ``receipts/<batch>.receipt.json`` (accepted count, per-row
errors), rejects a configurable share of valid rows as if its own review refused them,
and offers approved catalogue files in ``outbox/catalogue/``. As the audit log's witness it
cosigns the checkpoint a batch's manifest carries when it extends the last one it cosigned
(``audit_cosignature`` in the receipt; a fork or a rollback is refused: docs/audit.md §11).

Folder layout (the SFTP root the hub sees)::

    feed/<batch_id>/{<kind>.jsonl, <kind>.parquet, manifest.json}   uploaded by the hub
    receipts/<batch_id>.receipt.json                                written here
    outbox/catalogue/*.jsonl | *.xlsx                               approved catalogue files
"""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

import schemas
from connectors.clock import iso, now
from connectors.province_catalogue import (
    CATALOGUE_RECEIPTS,
    SIGNATURE_SUFFIX,
    pinned_catalogue_key,
    sign_catalogue_file,
)
from connectors.province_feed import (
    CASE_PARTS,
    FEED_DIR,
    KINDS,
    MANIFEST,
    ORPHAN,
    RECEIPTS_DIR,
    schema_name,
    verify_manifest,
)
from ferry.keys import Keyring, load_keyring
from ferry.suites import get_suite
from ferry.tlog import (
    CheckpointRefused,
    ExtensionRefused,
    NoteSigner,
    NoteVerifier,
    cosign_checkpoint,
    open_checkpoint,
    tree_hasher,
    verify_extension,
)
from hub.simulators.sshd import SftpServer
from schemas.exceptions import TerminalError

CATALOGUE_OUTBOX = "outbox/catalogue"
WITNESS_NAME = "province.example/witness"  # the witness key's name in its cosignature lines
WITNESS_STATE = "witness-state.json"  # the last checkpoint it cosigned, per log origin
CATALOGUE_SUITE = "intl"  # the suite of the province's catalogue signing key
REVIEW_CODE = "PROVINCE_REVIEW"


def reviewed_out(kind: str, key: str, record: Any, share: float) -> bool:
    """The province's own review refuses this row: a deterministic share of the rows,
    chosen by content (so a corrected row gets a fresh chance)."""
    if share <= 0:
        return False
    digest = hashlib.sha256(f"{kind}:{key}:".encode() + orjson.dumps(record, option=orjson.OPT_SORT_KEYS)).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


def _receipt(batch_id: str, accepted: int, rejected: int, errors: list[dict[str, Any]], status: str = "processed",
             detail: str | None = None) -> dict[str, Any]:
    receipt: dict[str, Any] = {"batch_id": batch_id, "received_at": iso(now()), "status": status,
                               "accepted": accepted, "rejected": rejected, "errors": errors}
    if detail:
        receipt["detail"] = detail
    return receipt


KNOWN_CASES = "known_cases.txt"


def check_batch(folder: Path, keyring: Keyring, reject_share: float,
                known_cases: set[str] | None = None) -> dict[str, Any]:
    """The receipt for one complete batch folder. ``known_cases``: the case numbers whose
    base records the province has received so far; this batch's are added to it."""
    known = known_cases if known_cases is not None else set()
    batch_id = folder.name
    try:
        document = orjson.loads((folder / MANIFEST).read_bytes())
    except orjson.JSONDecodeError:
        return _receipt(batch_id, 0, 0, [], "refused", "manifest.json is not JSON")
    if not schemas.validator("province_manifest").is_valid(document):
        return _receipt(batch_id, 0, 0, [], "refused", "manifest.json does not match its schema")
    manifest = document["manifest"]
    total = sum(manifest["counts"].values())
    trusted = keyring.get(document["signature"]["key_id"])
    if trusted is None or not verify_manifest(document, trusted.public, trusted.suite):
        return _receipt(batch_id, 0, total, [], "refused", "manifest signature is not valid")
    if manifest["batch_id"] != batch_id:
        return _receipt(batch_id, 0, total, [], "refused", "manifest names another batch")
    for item in manifest["files"]:
        path = folder / item["name"]
        data = path.read_bytes() if path.is_file() else b""
        if len(data) != item["size"] or hashlib.sha256(data).hexdigest() != item["sha256"]:
            return _receipt(batch_id, 0, total, [], "refused", f"{item['name']}: size or SHA-256 differs from the manifest")
        if item["format"] == "parquet":
            import pyarrow.parquet as pq

            if pq.read_metadata(path).num_rows != item["records"]:
                return _receipt(batch_id, 0, total, [], "refused", f"{item['name']}: row count differs from the manifest")
    accepted, errors = 0, []
    for item in manifest["files"]:
        if item["format"] != "jsonl" or item["kind"] not in KINDS:
            continue
        kind = item["kind"]
        for number, line in enumerate((folder / item["name"]).read_bytes().splitlines(), start=1):
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                errors.append({"kind": kind, "record_key": f"line {number}", "code": "NOT_JSON", "message": "行不是合法的 JSON"})
                continue
            key = str(record.get("record_key", f"line {number}")) if isinstance(record, dict) else f"line {number}"
            problems = list(schemas.errors(schema_name(kind), record))
            if kind == "case" and not problems:
                known.add(key)
            if problems:
                errors.extend(
                    {"kind": kind, "record_key": key, "code": f"SCHEMA_{p.keyword.upper()}", "path": p.path,
                     "message": f"数据校验不通过：{p.message}"}
                    for p in problems
                )
            elif kind in CASE_PARTS and record.get("case_number") not in known:
                errors.append({"kind": kind, "record_key": key, "code": ORPHAN,
                               "message": "办件基本信息未报送，不能接收其环节、结果或处罚信息"})
            elif reviewed_out(kind, key, record, reject_share):
                errors.append({"kind": kind, "record_key": key, "code": REVIEW_CODE, "message": "省级平台审核未通过，请核实后重报"})
            else:
                accepted += 1
    rejected = len({(e["kind"], e["record_key"]) for e in errors})
    return _receipt(batch_id, accepted, rejected, errors)


@dataclass
class ProvinceSimulator:
    """The province: its SFTP server and the process that answers batches with receipts."""

    folder: Path
    reject_share: float = 0.0
    port: int = 0
    server: SftpServer = field(init=False)

    def __post_init__(self) -> None:
        self.server = SftpServer(self.folder / "sshd", port=self.port)
        for sub in (FEED_DIR, RECEIPTS_DIR, CATALOGUE_OUTBOX, CATALOGUE_RECEIPTS):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.folder / "trusted").mkdir(parents=True, exist_ok=True)
        self._catalogue_private, self.catalogue_public = self._catalogue_key()

    def _catalogue_key(self) -> tuple[bytes, bytes]:
        """The province's catalogue signing key (intl suite), made once and kept 0600."""
        crypto = get_suite(CATALOGUE_SUITE)
        path = self.folder / "catalogue-signing.key"
        if not path.exists():
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as stream:
                stream.write(crypto.generate_signing_key())
        private = path.read_bytes()
        return private, crypto.public_key(private)

    @property
    def witness_signer(self) -> NoteSigner:
        """The province's witness key: the catalogue key's bytes would do, but a key does one job."""
        crypto = get_suite(CATALOGUE_SUITE)
        path = self.folder / "witness-signing.key"
        if not path.exists():
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as stream:
                stream.write(crypto.generate_signing_key())
        return NoteSigner(WITNESS_NAME, CATALOGUE_SUITE, path.read_bytes())

    @property
    def witness_key(self) -> str:
        """The ``witness_key`` extra a hub pins to check this province's cosignatures."""
        return self.witness_signer.verifier().verifier_key()

    def witness(self, request: dict[str, Any], keyring: Keyring) -> dict[str, Any]:
        """Cosign the checkpoint of ``request`` (a manifest's ``audit_checkpoint``) when it is
        signed by the hub's administration zone and extends the last checkpoint of its log
        this witness cosigned (the consistency proof from ``old_size``); else say why not."""
        note = str(request["note"])
        origin = note.split("\n", 1)[0]
        try:
            verifiers = [NoteVerifier(origin, k.suite, k.public) for k in keyring.values() if k.zone == "admin"]
            new = open_checkpoint(note, verifiers)
        except (CheckpointRefused, TerminalError) as refused:
            return {"audit_witness_refused": {"code": getattr(refused, "code", "UNKNOWN_KEY"), "detail": str(refused)}}
        state_file = self.folder / WITNESS_STATE
        state = orjson.loads(state_file.read_bytes()) if state_file.is_file() else {}
        known = state.get(origin)
        last = open_checkpoint(known, verifiers) if known is not None else None
        last_size = last.size if last is not None else 0
        offered = {int(p["old_size"]): p["consistency"] for p in request["proofs"]}
        if last_size not in offered:
            return {"audit_witness_refused": {"code": "CONFLICT", "detail": f"the last cosigned size is {last_size}; "
                                              f"proofs offered from {sorted(offered)}"}}
        if last is not None:
            proof = [base64.b64decode(h) for h in offered[last_size]]
            verdict = verify_extension(last, new, proof, hasher=tree_hasher(str(request["tree_hash"])))
            if isinstance(verdict, ExtensionRefused):
                return {"audit_witness_refused": {"code": verdict.code, "detail": verdict.detail}}
        cosigned = cosign_checkpoint(new, self.witness_signer)
        state[origin] = cosigned
        partial = state_file.with_name(state_file.name + ".part")
        partial.write_bytes(orjson.dumps(state))
        os.replace(partial, state_file)
        return {"audit_cosignature": cosigned}

    @property
    def catalogue_key(self) -> str:
        """The ``catalogue_key`` extra a hub pins to verify this province's catalogue files."""
        return pinned_catalogue_key(CATALOGUE_SUITE, self.catalogue_public)

    def catalogue_receipts(self) -> dict[str, Any]:
        """The receipts hubs sent back for catalogue files, by file sha256."""
        folder = self.root / CATALOGUE_RECEIPTS
        return {path.name.split(".", 1)[0]: orjson.loads(path.read_bytes()) for path in sorted(folder.glob("*.receipt.json"))}

    @property
    def root(self) -> Path:
        """The folder the hub sees as its SFTP root."""
        return self.server.chroot

    @property
    def trusted_keys(self) -> Path:
        """Put the hub's public key file here (``ferry.keys.export_public_key``)."""
        return self.folder

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def remove(self) -> None:
        self.server.remove()

    def connection_uri(self, **kwargs: Any) -> str:
        return (self.server.connection_uri(**kwargs) + "&catalogue_key=" + quote(self.catalogue_key, safe="")
                + "&witness_key=" + quote(self.witness_key, safe=""))

    def process_incoming(self) -> list[dict[str, Any]]:
        """One pass: answer every complete batch that has no receipt yet, oldest first."""
        keyring = load_keyring(self.trusted_keys)
        known_path = self.folder / KNOWN_CASES
        known = set(known_path.read_text().split()) if known_path.exists() else set()
        written = []
        feed = self.root / FEED_DIR
        for folder in sorted(p for p in feed.iterdir() if p.is_dir()):
            target = self.root / RECEIPTS_DIR / f"{folder.name}.receipt.json"
            if target.exists() or not (folder / MANIFEST).is_file():
                continue  # answered already (a duplicate upload changes nothing), or not complete
            receipt = check_batch(folder, keyring, self.reject_share, known)
            known_path.write_text("\n".join(sorted(known)))
            if receipt["status"] == "processed":
                request = orjson.loads((folder / MANIFEST).read_bytes())["manifest"].get("audit_checkpoint")
                if request is not None:
                    receipt.update(self.witness(request, keyring))
            partial = target.with_name(target.name + ".part")
            partial.write_bytes(orjson.dumps(receipt, option=orjson.OPT_INDENT_2))
            os.replace(partial, target)
            written.append(receipt)
        return written

    def offer_catalogue(self, source: Path, name: str | None = None, *, signed: bool = True) -> Path:
        """Put an approved catalogue file into the province's outbox (complete, then renamed),
        its detached signature ``NAME.sig`` first (``signed=False`` offers it without one)."""
        target = self.root / CATALOGUE_OUTBOX / (name or source.name)
        data = source.read_bytes()
        pieces = [(target, data)]
        if signed:
            signature = sign_catalogue_file(CATALOGUE_SUITE, self._catalogue_private, self.catalogue_public, data)
            pieces.insert(0, (target.with_name(target.name + SIGNATURE_SUFFIX), signature))
        for path, content in pieces:
            partial = path.with_name(path.name + ".part")
            partial.write_bytes(content)
            os.replace(partial, path)
        return target

    def serve_forever(self, poll_seconds: float = 1.0) -> None:
        """Run until SIGTERM or Ctrl-C, answering batches as they arrive."""
        stopping = False

        def stop(*_: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        self.start()
        try:
            while not stopping:
                for receipt in self.process_incoming():
                    print(f"[province] receipt {receipt['batch_id']}: accepted {receipt['accepted']}, "
                          f"rejected {receipt['rejected']}", flush=True)
                time.sleep(poll_seconds)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
