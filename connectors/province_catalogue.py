"""Catalogue down (目录下发): the provincial platform's approved catalogue files are pulled
from its SFTP outbox, kept under their content hash, and applied with the catalogue
store's import (``connectors.catalogue_store``), after which the public catalogue is sent
out again.

A file is pulled once per content (SHA-256): the same file offered again is not applied
twice, a changed file under the same name is a new file. Names from the province never
become local paths.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update

from connectors.catalogue_store import import_file
from connectors.clock import iso, now
from connectors.db import province_catalogue_files, transaction
from connectors.province_sftp import ProvinceSftp

CATALOGUE_OUTBOX = "outbox/catalogue"
SUFFIXES = (".jsonl", ".ndjson", ".xlsx")
MAX_FILE_BYTES = 64 * 1024 * 1024


@dataclass
class PullReport:
    pulled: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


def pull_catalogue_files(engine: Engine, session: ProvinceSftp, inbox: Path) -> PullReport:
    """Download every catalogue file in the province's outbox not pulled before."""
    report = PullReport()
    inbox.mkdir(parents=True, exist_ok=True)
    for name in session.listdir(CATALOGUE_OUTBOX):
        suffix = Path(name).suffix.lower()
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
        local = inbox / f"{sha}{suffix}"
        partial = local.with_name(local.name + ".part")
        partial.write_bytes(data)
        partial.replace(local)
        with transaction(engine) as connection:
            connection.execute(
                province_catalogue_files.insert().values(
                    sha256=sha, remote_name=name[:255], stored_as=str(local), state="pulled", pulled_at=iso(now())
                )
            )
        report.pulled.append(name)
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
            outcome: dict[str, Any] = {"file": path.name, "state": "refused", "error": str(error)}
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
