"""The hand-over of staged applications to case processing (交换库): what each staged
record becomes (a duplicate, a rejection with reasons, or an accepted application with a
case number) and the exchange-database rows that says, as plain values.

Pure: ``connectors.exchange`` reads the staged records, allocates case numbers, checks
which attachments are in the store, and writes the rows this module maps.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Final, NamedTuple

import orjson

from rules.applications import validate_application
from rules.catalogue import Catalogue, PowerItem
from rules.reasons import Reason

UNREADABLE: Final = Reason("SCHEMA_TYPE", "", "申请数据无法解析")
LOADED: Final = "loaded"


class StagedApplication(NamedTuple):
    """One staged inbound record (``inbound_records``): where it came from and its text.

    A named tuple, not a dataclass: the load makes one per staged record, straight from
    the row of these columns (``STAGED_COLUMNS``)."""

    channel: str
    sequence: int
    idx: int
    net_id: str
    payload: str
    received_at: str

    @property
    def bundle(self) -> str:
        """The inbound bundle that carried it, ``channel#sequence``."""
        return f"{self.channel}#{self.sequence}"


STAGED_COLUMNS: Final = StagedApplication._fields


class OutcomeRun(NamedTuple):
    """Staged records ``first`` to ``last`` (``idx``, both included) of one bundle, every
    one of them loaded with ``outcome`` (accepted, rejected, duplicate)."""

    channel: str
    sequence: int
    first: int
    last: int
    outcome: str


def outcome_runs(judged: Iterable[tuple[StagedApplication, str]]) -> list[OutcomeRun]:
    """The outcomes of staged records (in key order) as runs: records of one bundle whose
    ``idx`` follow one another with the same outcome share one run, so a batch's outcomes
    are written by one statement per run instead of one per record. A run covers exactly
    the records it was made of: a record left out breaks the run."""
    runs: list[OutcomeRun] = []
    current: tuple[str, int, str] | None = None  # (channel, sequence, outcome) of the open run
    first = last = 0
    for record, outcome in judged:
        key = (record.channel, record.sequence, outcome)
        if key == current and record.idx == last + 1:
            last = record.idx
            continue
        if current is not None:
            runs.append(OutcomeRun(current[0], current[1], first, last, current[2]))
        current, first, last = key, record.idx, record.idx
    if current is not None:
        runs.append(OutcomeRun(current[0], current[1], first, last, current[2]))
    return runs


def decode_envelope(payload: str) -> Any:
    """The envelope a staged record holds; None when it is not JSON (or is JSON null)."""
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None


def refusal_reasons(
    envelope: Any, catalogue: Catalogue, *, received_at: str, attachments: Collection[str]
) -> list[Reason]:
    """Every reason to refuse ``envelope`` (empty: accepted); ``attachments``: the digests
    of its materials that are in the attachment store."""
    if envelope is None:
        return [UNREADABLE]
    return validate_application(envelope, catalogue, received_at=_moment(received_at), attachments=attachments)


@lru_cache(maxsize=64)
def _moment(text: str) -> datetime:
    """``datetime.fromisoformat`` for the receive times of staged records: every record of
    a bundle has its bundle's, so a batch parses a few, not one per record."""
    return datetime.fromisoformat(text)


def material_digests(envelope: Any) -> list[str]:
    """The SHA-256 digests an envelope's materials name (well-formed ones only)."""
    materials = envelope.get("materials") if isinstance(envelope, dict) else None
    found = []
    for material in materials if isinstance(materials, list) else []:
        digest = material.get("sha256") if isinstance(material, dict) else None
        if isinstance(digest, str) and len(digest) == 64:
            found.append(digest)
    return found


# The columns of the rows below, in the order of their values: the load inserts the rows
# as tuples (``connectors.db.insert_rows``), with no dict per row and table.
APPLICATION_COLUMNS: Final = (
    "net_id", "case_number", "power_code", "power_version", "agency_code", "case_name",
    "applicant_type", "applicant_name", "applicant_id_type", "applicant_id_number",
    "applicant_mobile", "applicant_address", "submitted_at", "registered_at", "bundle", "envelope",
)
CASE_COLUMNS: Final = (
    "case_number", "net_id", "state", "updated_at", "origin", "power_code", "power_version",
    "agency_code", "registered_at", "secret", "privacy",
)
MATERIAL_COLUMNS: Final = ("case_number", "idx", "material_code", "name", "sha256", "media_type", "size")
REJECTION_COLUMNS: Final = ("net_id", "reasons", "rejected_at", "bundle", "envelope")
OUTBOX_COLUMNS: Final = ("step", "opinion", "reasons", "result", "net_id", "case_number", "status", "at")


@dataclass(frozen=True)
class Rejection:
    """A refused application: its ``rejections`` row and its first status change."""

    staged: StagedApplication
    reasons: tuple[Reason, ...]
    at: str

    @property
    def codes(self) -> list[str]:
        return sorted({reason.code for reason in self.reasons})

    def rows(self) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """The ``rejections`` row (``REJECTION_COLUMNS``) and the ``status_outbox`` row
        (``OUTBOX_COLUMNS``)."""
        staged = self.staged
        reasons = [reason.as_dict() for reason in self.reasons]
        rejection = (staged.net_id, reasons, self.at, staged.bundle, staged.payload)
        outbox = (None, None, reasons, None, staged.net_id, None, "rejected", self.at)
        return rejection, outbox


class HandOver(NamedTuple):
    """An accepted application with its case number: the rows that register the case, as
    values in the order of ``APPLICATION_COLUMNS``, ``CASE_COLUMNS``, ``MATERIAL_COLUMNS``
    and ``OUTBOX_COLUMNS``."""

    application: tuple[Any, ...]
    case: tuple[Any, ...]
    materials: list[tuple[Any, ...]]
    outbox: tuple[Any, ...]


def hand_over(
    staged: StagedApplication, envelope: dict[str, Any], item: PowerItem, case_number: str, at: str
) -> HandOver:
    """The ``applications``, ``cases``, ``case_materials`` and ``status_outbox`` rows of an
    accepted (validated) envelope."""
    applicant = envelope["applicant"]
    net_id, agency_code, code, version = staged.net_id, envelope["agency_code"], item.code, item.version
    application = (
        net_id, case_number, code, version, agency_code, envelope["case_name"],
        applicant["type"], applicant["name"], applicant["id_type"], applicant["id_number"],
        applicant.get("mobile"), applicant.get("address"), envelope["submitted_at"], at,
        staged.bundle, staged.payload,
    )
    given = envelope.get("materials")
    materials = [
        (case_number, index, material.get("material_code"), material.get("name") or "",
         material.get("sha256"), material.get("media_type"), material.get("size"))
        for index, material in enumerate(given)
    ] if given else []
    return HandOver(
        application,
        (case_number, net_id, "registered", at, "internet", code, version, agency_code, at, False, False),
        materials,
        (None, None, None, None, net_id, case_number, "registered", at),
    )
