"""The receiver's verdict on one verified bundle, from facts alone (no files, no database)."""

from __future__ import annotations

from typing import Any

import pytest

from ferry.bundle import BundleRejected, attachment_name, records_name
from ferry.receipts import RECEIPT_INVALID, RECEIPTS_KIND, build_receipt
from ferry.verdict import (
    CHAIN_BROKEN,
    NAME_MISMATCH,
    SECURITY_CODES,
    SEQUENCE_CONFLICT,
    Apply,
    Duplicate,
    Link,
    Refuse,
    Verdict,
    judge,
    refusal,
)

RECEIPT = build_receipt("outbound", [1, 2], {})
DATA_ITEMS = [records_name("applications"), attachment_name("ab" * 32), records_name(RECEIPTS_KIND)]


def _judge(
    arrived: Link, applied: dict[int, Link] | None = None, *, name: str | None = None, **facts: Any
) -> Verdict:
    return judge(
        name=name or f"inbound-{arrived.sequence:012d}.peb", channel="inbound", arrived=arrived,
        applied=applied or {}, receipt=facts.get("receipt", RECEIPT),
        item_names=facts.get("item_names", DATA_ITEMS),
    )


def test_a_bundle_that_links_to_its_neighbours_is_applied_with_its_receipt() -> None:
    applied = {4: Link(4, "d4", "d3"), 6: Link(6, "d6", "d5")}
    assert _judge(Link(5, "d5", "d4"), applied) == Apply(heartbeat=False, receipt=RECEIPT)
    assert _judge(Link(1, "d1", None)) == Apply(heartbeat=False, receipt=RECEIPT)
    assert _judge(Link(9, "d9", "d8"), receipt=None) == Apply(heartbeat=False, receipt=None)


def test_a_bundle_holding_only_its_receipt_is_a_heartbeat() -> None:
    verdict = _judge(Link(2, "d2", "d1"), item_names=[records_name(RECEIPTS_KIND)])
    assert verdict == Apply(heartbeat=True, receipt=RECEIPT)


def test_the_same_sequence_and_digest_again_is_a_duplicate() -> None:
    assert _judge(Link(3, "d3", "d2"), {3: Link(3, "d3", "d2")}) == Duplicate()


def test_the_same_sequence_with_another_digest_is_a_security_refusal() -> None:
    verdict = _judge(Link(3, "forged", "d2"), {3: Link(3, "d3", "d2")})
    assert isinstance(verdict, Refuse) and verdict.code == SEQUENCE_CONFLICT
    assert "d3" in verdict.detail and "forged" in verdict.detail
    assert verdict.code in SECURITY_CODES


@pytest.mark.parametrize(
    ("arrived", "applied", "why"),
    [
        (Link(1, "d1", "d0"), {}, "sequence 1 names a previous bundle"),
        (Link(5, "d5", "other"), {4: Link(4, "d4", "d3")}, "previous_digest other is not the digest d4 of #4"),
        (Link(5, "d5", "d4"), {6: Link(6, "d6", "not-d5")}, "#6 names previous digest not-d5, not d5"),
    ],
)
def test_a_bundle_off_the_digest_chain_is_a_security_refusal(
    arrived: Link, applied: dict[int, Link], why: str
) -> None:
    assert _judge(arrived, applied) == Refuse(CHAIN_BROKEN, why)
    assert CHAIN_BROKEN in SECURITY_CODES


def test_a_file_name_that_is_not_the_manifests_own_is_refused_before_anything_else() -> None:
    # Even a would-be duplicate: the name is checked first.
    verdict = _judge(Link(3, "d3", "d2"), {3: Link(3, "d3", "d2")}, name="inbound-000000000007.peb")
    assert verdict == Refuse(NAME_MISMATCH, "file inbound-000000000007.peb holds inbound#3")
    assert NAME_MISMATCH not in SECURITY_CODES
    # The channel is part of the name.
    assert isinstance(_judge(Link(3, "d3", "d2"), name="outbound-000000000003.peb"), Refuse)


def test_an_invalid_receipt_refuses_the_bundle_after_the_ledger_checks() -> None:
    invalid = refusal(BundleRejected(RECEIPT_INVALID, "records/receipts.jsonl is not JSON"))
    assert _judge(Link(2, "d2", "d1"), receipt=invalid) == invalid
    # A sequence conflict still wins: it must raise the security alarm.
    conflict = _judge(Link(2, "x", "d1"), {2: Link(2, "d2", "d1")}, receipt=invalid)
    assert isinstance(conflict, Refuse) and conflict.code == SEQUENCE_CONFLICT
    assert _judge(Link(2, "d2", "d1"), {2: Link(2, "d2", "d1")}, receipt=invalid) == Duplicate()
