"""Catalogue down (目录下发): the provincial platform's approved catalogue files are pulled
from its SFTP outbox, kept under their content hash, and applied with the catalogue
store's import (``connectors.catalogue_store``), after which the public catalogue is sent
out again.

A file is pulled once per content (SHA-256): the same file offered again is not applied
twice, a changed file under the same name is a new file. Names from the province never
become local paths.

Each file comes with a detached signature ``NAME.sig`` made with the province's
catalogue key, which the hub pins in the connection's ``catalogue_key`` extra
(``SUITE:BASE64``). The signature is checked before anything applies: a file without a
valid one is kept, marked refused with its reason code, and raises an alarm. Every file
the hub decided on gets a receipt back in the province's ``inbox/catalogue-receipts/``:
applied and refused rows with their reasons, or why the whole file was refused. A receipt
is made from what was recorded, so a re-send after a crash is byte-identical.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, select, update

from connectors.alarms import raise_alarm
from connectors.catalogue_store import import_file
from connectors.clock import iso, now
from connectors.db import province_catalogue_files, transaction
from connectors.province_sftp import ProvinceSftp
from ferry.suites import SUITES, get_suite

CATALOGUE_OUTBOX = "outbox/catalogue"
CATALOGUE_RECEIPTS = "inbox/catalogue-receipts"
SUFFIXES = (".jsonl", ".ndjson", ".xlsx")
SIGNATURE_SUFFIX = ".sig"
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_SIGNATURE_BYTES = 64 * 1024
SIGNATURE_ALARM = "CATALOGUE_SIGNATURE"
# Reason codes of a refused catalogue file.
KEY_NOT_PINNED = "CATALOGUE_KEY_NOT_PINNED"
SIGNATURE_MISSING = "CATALOGUE_SIGNATURE_MISSING"
SIGNATURE_INVALID = "CATALOGUE_SIGNATURE_INVALID"
UNREADABLE = "CATALOGUE_UNREADABLE"


def sign_catalogue_file(suite: str, private_key: bytes, public_key: bytes, data: bytes) -> bytes:
    """The detached signature document of a catalogue file (what the province writes as
    ``NAME.sig``): suite, key id and the signature over the file's bytes."""
    crypto = get_suite(suite)
    return orjson.dumps({
        "suite": suite, "key_id": crypto.key_id(public_key),
        "signature": base64.b64encode(crypto.sign(private_key, data)).decode("ascii"),
    })


def pinned_catalogue_key(suite: str, public_key: bytes) -> str:
    """The ``catalogue_key`` extra that pins ``public_key``."""
    return f"{suite}:{base64.b64encode(public_key).decode('ascii')}"


def signature_problem(pinned: str | None, data: bytes, signature: bytes | None) -> tuple[str, str] | None:
    """Why a catalogue file may not apply (reason code, message), or None when its signature
    verifies with the pinned key."""
    if not pinned:
        return KEY_NOT_PINNED, "the province connection pins no catalogue_key: catalogue files cannot be verified"
    suite, _, encoded = pinned.partition(":")
    try:
        public = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        return KEY_NOT_PINNED, "the catalogue_key extra is not SUITE:BASE64"
    if suite not in SUITES:
        return KEY_NOT_PINNED, f"the catalogue_key extra names an unknown suite {suite!r}"
    if signature is None:
        return SIGNATURE_MISSING, "no detached signature (NAME.sig) next to the file"
    try:
        document = orjson.loads(signature)
        raw = base64.b64decode(str(document["signature"]), validate=True)
        claimed = str(document["suite"])
    except (orjson.JSONDecodeError, KeyError, TypeError, binascii.Error):
        return SIGNATURE_INVALID, "the signature file is not a signature document"
    if claimed != suite:
        return SIGNATURE_INVALID, f"signed with suite {claimed!r}, the pinned key is {suite!r}"
    if not get_suite(suite).verify(public, raw, data):
        return SIGNATURE_INVALID, "the signature does not verify with the pinned catalogue key"
    return None


@dataclass
class PullReport:
    pulled: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


def pull_catalogue_files(engine: Engine, session: ProvinceSftp, inbox: Path, *, pinned_key: str | None) -> PullReport:
    """Download every catalogue file in the province's outbox not pulled before, with its
    signature; a file whose signature does not verify with ``pinned_key`` is kept but
    marked refused (with its reason code) and raises an alarm."""
    report = PullReport()
    inbox.mkdir(parents=True, exist_ok=True)
    names = session.listdir(CATALOGUE_OUTBOX)
    present = set(names)
    for name in names:
        suffix = Path(name).suffix.lower()
        if suffix == SIGNATURE_SUFFIX and name[: -len(SIGNATURE_SUFFIX)] in present:
            continue  # read with its file
        if suffix not in SUFFIXES:
            report.skipped.append({"name": name, "reason": f"not a catalogue file ({', '.join(SUFFIXES)})"})
            continue
        data = session.read_bytes(f"{CATALOGUE_OUTBOX}/{name}", limit=MAX_FILE_BYTES)
        sha = hashlib.sha256(data).hexdigest()
        with engine.connect() as connection:
            known = connection.execute(
                select(province_catalogue_files.c.sha256).where(province_catalogue_files.c.sha256 == sha)
            ).first()
        if known is not None:
            continue
        signature_name = name + SIGNATURE_SUFFIX
        signature = (session.read_bytes(f"{CATALOGUE_OUTBOX}/{signature_name}", limit=MAX_SIGNATURE_BYTES)
                     if signature_name in present else None)
        problem = signature_problem(pinned_key, data, signature)
        local = inbox / f"{sha}{suffix}"
        for target, content in ((local, data), (local.with_name(local.name + SIGNATURE_SUFFIX), signature)):
            if content is not None:
                partial = target.with_name(target.name + ".part")
                partial.write_bytes(content)
                partial.replace(target)
        moment = iso(now())
        with transaction(engine) as connection:
            if problem is None:
                connection.execute(province_catalogue_files.insert().values(
                    sha256=sha, remote_name=name[:255], stored_as=str(local), state="pulled", pulled_at=moment))
            else:
                code, message = problem
                connection.execute(province_catalogue_files.insert().values(
                    sha256=sha, remote_name=name[:255], stored_as=str(local), state="refused", pulled_at=moment,
                    applied_at=moment, report={"file": name, "state": "refused", "code": code, "error": message}))
                raise_alarm(connection, SIGNATURE_ALARM, {
                    "file": name, "sha256": sha, "code": code,
                    "message": f"省级目录文件签名校验未通过，未应用 · catalogue file not applied: {message}"}, moment)
        report.pulled.append(name)
        if problem is not None:
            report.skipped.append({"name": name, "reason": f"{problem[0]}: {problem[1]}"})
    return report


def pending_files(engine: Engine) -> list[Path]:
    """Pulled catalogue files not yet applied, in the order they were pulled."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(province_catalogue_files.c.stored_as)
            .where(province_catalogue_files.c.state == "pulled")
            .order_by(province_catalogue_files.c.pulled_at, province_catalogue_files.c.remote_name)
        ).scalars()
        return [Path(p) for p in rows]


def apply_province_catalogue(engine: Engine, files: list[Path]) -> list[dict[str, Any]]:
    """Validate and apply each pulled file with the catalogue import (row by row: good rows
    applied, bad rows reported); mark it applied, or refused when it cannot be read."""
    results = []
    for path in files:
        sha = path.name.split(".", 1)[0]
        try:
            report = import_file(engine, path)
        except (ValueError, OSError) as error:  # CatalogueError is a ValueError: unreadable file
            outcome: dict[str, Any] = {"file": path.name, "state": "refused", "code": UNREADABLE, "error": str(error)}
        else:
            outcome = {
                "file": path.name, "state": "applied", "rows": report.rows, "applied": len(report.applied),
                "unchanged": report.unchanged, "errors": report.errors, "catalogue_version": report.catalogue_version,
            }
        with transaction(engine) as connection:
            connection.execute(
                update(province_catalogue_files)
                .where(province_catalogue_files.c.sha256 == sha)
                .values(state=outcome["state"], applied_at=iso(now()), report=outcome)
            )
        results.append(outcome)
    return results


def catalogue_receipt(row: Any) -> dict[str, Any]:
    """The receipt of one decided file, made only from what was recorded (a re-send is the
    same document): applied and refused rows with their reasons, or why the file was refused."""
    report = dict(row.report or {})
    receipt: dict[str, Any] = {
        "file": row.remote_name, "sha256": row.sha256, "state": row.state, "decided_at": row.applied_at,
    }
    if row.state == "refused":
        receipt.update(code=report.get("code", UNREADABLE), reason=report.get("error", ""))
    else:
        receipt.update(rows=report.get("rows", 0), applied=report.get("applied", 0),
                       unchanged=report.get("unchanged", 0), catalogue_version=report.get("catalogue_version"),
                       rejected_rows=[{"row": e.get("row"), "code": e.get("code"), "reason": e.get("reason")}
                                      for e in report.get("errors", [])])
    return receipt


def receipt_name(sha256: str) -> str:
    return f"{CATALOGUE_RECEIPTS}/{sha256}.receipt.json"


def send_receipts(engine: Engine, session: ProvinceSftp) -> list[str]:
    """Upload the receipt of every decided file that has none yet, then record it; a crash
    between the two re-sends the same bytes on the next run."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(province_catalogue_files)
            .where(province_catalogue_files.c.state.in_(("applied", "refused")),
                   province_catalogue_files.c.receipt_sent_at.is_(None))
            .order_by(province_catalogue_files.c.pulled_at, province_catalogue_files.c.remote_name)
        ).all()
    if not rows:
        return []
    session.makedirs(CATALOGUE_RECEIPTS)
    sent = []
    for row in rows:
        body = orjson.dumps(catalogue_receipt(row), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        with tempfile.TemporaryDirectory() as folder:
            local = Path(folder) / "receipt.json"
            local.write_bytes(body)
            session.upload(local, receipt_name(row.sha256))
        with transaction(engine) as connection:
            connection.execute(update(province_catalogue_files)
                               .where(province_catalogue_files.c.sha256 == row.sha256)
                               .values(receipt_sent_at=iso(now())))
        sent.append(row.remote_name)
    return sent
