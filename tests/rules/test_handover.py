"""The pure hand-over mapping (``rules.handover``): a staged record becomes a rejection
with reasons or an accepted application's rows, with nothing read or written."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from rules.catalogue import Catalogue
from rules.handover import (
    APPLICATION_COLUMNS,
    CASE_COLUMNS,
    MATERIAL_COLUMNS,
    OUTBOX_COLUMNS,
    REJECTION_COLUMNS,
    UNREADABLE,
    OutcomeRun,
    Rejection,
    StagedApplication,
    decode_envelope,
    hand_over,
    material_digests,
    outcome_runs,
    refusal_reasons,
)
from tests.rules.test_applications import JPG_SHA, PDF_SHA, catalogue, envelope  # noqa: F401 (fixtures)

AT = "2026-11-23T12:00:05+08:00"


def staged(payload: str) -> StagedApplication:
    return StagedApplication("inbound", 4, 2, "NET20261123000001", payload, "2026-11-23T12:00:00+08:00")


def test_unreadable_payloads_are_refused_as_unreadable(catalogue: Catalogue) -> None:  # noqa: F811
    for payload in ("{not json", "null"):
        parsed = decode_envelope(payload)
        assert parsed is None
        assert refusal_reasons(parsed, catalogue, received_at=AT, attachments=set()) == [UNREADABLE]


def test_a_refusal_keeps_every_reason_and_the_envelope(envelope: dict[str, Any], catalogue: Catalogue) -> None:  # noqa: F811
    record = staged(json.dumps(envelope, ensure_ascii=False))
    reasons = refusal_reasons(decode_envelope(record.payload), catalogue, received_at=record.received_at,
                              attachments=set())
    assert {r.code for r in reasons} == {"MATERIAL_FILE_ABSENT"}
    rejection_row, outbox_row = Rejection(record, tuple(reasons), AT).rows()
    rejection, outbox = dict(zip(REJECTION_COLUMNS, rejection_row)), dict(zip(OUTBOX_COLUMNS, outbox_row))
    assert rejection == {"net_id": record.net_id, "reasons": [r.as_dict() for r in reasons],
                         "rejected_at": AT, "bundle": "inbound#4", "envelope": record.payload}
    assert outbox == {"step": None, "opinion": None, "reasons": rejection["reasons"], "result": None,
                      "net_id": record.net_id, "case_number": None, "status": "rejected", "at": AT}
    assert outcome_runs([(record, "rejected")]) == [OutcomeRun("inbound", 4, 2, 2, "rejected")]


def test_an_accepted_application_is_handed_over_with_its_case_number(
    envelope: dict[str, Any], catalogue: Catalogue  # noqa: F811
) -> None:
    record = staged(orjson.dumps(envelope).decode())
    parsed = decode_envelope(record.payload)
    assert material_digests(parsed) == [PDF_SHA, JPG_SHA]
    assert refusal_reasons(parsed, catalogue, received_at=record.received_at,
                           attachments={PDF_SHA, JPG_SHA}) == []
    item = catalogue.items[parsed["power_code"]]
    handed = hand_over(record, parsed, item, "32010000010000000007", AT)
    application, case = dict(zip(APPLICATION_COLUMNS, handed.application)), dict(zip(CASE_COLUMNS, handed.case))
    materials = [dict(zip(MATERIAL_COLUMNS, material)) for material in handed.materials]
    outbox = dict(zip(OUTBOX_COLUMNS, handed.outbox))
    assert application["case_number"] == "32010000010000000007"
    assert application["power_version"] == item.version
    assert application["applicant_id_number"] == envelope["applicant"]["id_number"]
    assert application["applicant_address"] is None
    assert application["bundle"] == "inbound#4" and application["envelope"] == record.payload
    assert case == {"case_number": "32010000010000000007", "net_id": record.net_id,
                    "state": "registered", "updated_at": AT, "origin": "internet",
                    "power_code": item.code, "power_version": item.version,
                    "agency_code": envelope["agency_code"], "registered_at": AT,
                    "secret": False, "privacy": False}
    assert [(m["idx"], m["material_code"], m["sha256"]) for m in materials] == [
        (0, "APP_FORM", PDF_SHA), (1, "ID_COPY", JPG_SHA)
    ]
    assert outbox["status"] == "registered" and outbox["reasons"] is None


def test_material_digests_skip_malformed_entries() -> None:
    assert material_digests({"materials": [{"sha256": "ab"}, "x", {"sha256": "c" * 64}]}) == ["c" * 64]
    assert material_digests([1, 2]) == [] and material_digests({"materials": "none"}) == []


OUTCOMES = st.sampled_from(["accepted", "rejected", "duplicate"])


@given(st.lists(st.tuples(st.sampled_from(["inbound", "other"]), st.integers(1, 3), st.integers(0, 12), OUTCOMES),
                unique_by=lambda t: t[:3], max_size=40), st.booleans())
def test_outcome_runs_cover_exactly_the_judged_records(judged: list[tuple[str, int, int, str]], ordered: bool) -> None:
    """Each run, expanded to its idx range, gives back exactly the records it was made of
    with their outcomes (the per-record marks it replaces); in key order, two neighbouring
    runs of one bundle could not have been one."""
    if ordered:
        judged.sort()
    records = [(StagedApplication(c, s, i, f"NET{c}{s}{i}", "{}", AT), o) for c, s, i, o in judged]
    runs = outcome_runs(records)
    expanded = [((r.channel, r.sequence, idx), r.outcome) for r in runs for idx in range(r.first, r.last + 1)]
    assert expanded == [((c, s, i), o) for c, s, i, o in judged]
    if ordered:
        for before, after in pairwise(runs):
            assert (before.channel, before.sequence, before.outcome, before.last + 1) != (
                after.channel, after.sequence, after.outcome, after.first)
