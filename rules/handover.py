"""The hand-over of staged applications to case processing (交换库): what each staged
record becomes (a duplicate, a rejection with reasons, or an accepted application with a
case number) and the exchange-database rows that says, as plain values.

Pure: ``connectors.exchange`` reads the staged records, allocates case numbers, checks
which attachments are in the store, and writes the rows this module maps.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson

from rules.applications import validate_application
from rules.catalogue import Catalogue, PowerItem
from rules.reasons import Reason

UNREADABLE: Final = Reason("SCHEMA_TYPE", "", "申请数据无法解析")
LOADED: Final = "loaded"


@dataclass(frozen=True)
class StagedApplication:
    """One staged inbound record (``inbound_records``): where it came from and its text."""

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

    def outcome_row(self, outcome: str) -> dict[str, Any]:
        """The staged record marked loaded with ``outcome`` (accepted, rejected, duplicate)."""
        return {"state": LOADED, "outcome": outcome,
                "channel": self.channel, "sequence": self.sequence, "idx": self.idx}


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
    return validate_application(
        envelope, catalogue, received_at=datetime.fromisoformat(received_at), attachments=attachments,
    )


def material_digests(envelope: Any) -> list[str]:
    """The SHA-256 digests an envelope's materials name (well-formed ones only)."""
    materials = envelope.get("materials") if isinstance(envelope, dict) else None
    found = []
    for material in materials if isinstance(materials, list) else []:
        digest = material.get("sha256") if isinstance(material, dict) else None
        if isinstance(digest, str) and len(digest) == 64:
            found.append(digest)
    return found


def _outbox_row(**values: Any) -> dict[str, Any]:
    return {"step": None, "opinion": None, "reasons": None, "result": None, **values}


@dataclass(frozen=True)
class Rejection:
    """A refused application: its ``rejections`` row and its first status change."""

    staged: StagedApplication
    reasons: tuple[Reason, ...]
    at: str

    @property
    def codes(self) -> list[str]:
        return sorted({reason.code for reason in self.reasons})

    def rows(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The ``rejections`` row and the ``status_outbox`` row."""
        reasons = [reason.as_dict() for reason in self.reasons]
        rejection = {"net_id": self.staged.net_id, "reasons": reasons, "rejected_at": self.at,
                     "bundle": self.staged.bundle, "envelope": self.staged.payload}
        outbox = _outbox_row(net_id=self.staged.net_id, case_number=None, status="rejected",
                             at=self.at, reasons=reasons)
        return rejection, outbox


@dataclass(frozen=True)
class HandOver:
    """An accepted application with its case number: the rows that register the case."""

    application: dict[str, Any]
    case: dict[str, Any]
    materials: list[dict[str, Any]]
    outbox: dict[str, Any]


def hand_over(
    staged: StagedApplication, envelope: dict[str, Any], item: PowerItem, case_number: str, at: str
) -> HandOver:
    """The ``applications``, ``cases``, ``case_materials`` and ``status_outbox`` rows of an
    accepted (validated) envelope."""
    applicant = envelope["applicant"]
    application = {
        "net_id": staged.net_id,
        "case_number": case_number,
        "power_code": item.code,
        "power_version": item.version,
        "agency_code": envelope["agency_code"],
        "case_name": envelope["case_name"],
        "applicant_type": applicant["type"],
        "applicant_name": applicant["name"],
        "applicant_id_type": applicant["id_type"],
        "applicant_id_number": applicant["id_number"],
        "applicant_mobile": applicant.get("mobile"),
        "applicant_address": applicant.get("address"),
        "submitted_at": envelope["submitted_at"],
        "registered_at": at,
        "bundle": staged.bundle,
        "envelope": staged.payload,
    }
    materials = [
        {
            "case_number": case_number, "idx": index,
            "material_code": material.get("material_code"), "name": material.get("name") or "",
            "sha256": material.get("sha256"), "media_type": material.get("media_type"),
            "size": material.get("size"),
        }
        for index, material in enumerate(envelope.get("materials") or ())
    ]
    return HandOver(
        application=application,
        case={
            "case_number": case_number, "net_id": staged.net_id, "state": "registered", "updated_at": at,
            "origin": "internet", "power_code": item.code, "power_version": item.version,
            "agency_code": envelope["agency_code"], "registered_at": at,
        },
        materials=materials,
        outbox=_outbox_row(net_id=staged.net_id, case_number=case_number, status="registered", at=at),
    )
