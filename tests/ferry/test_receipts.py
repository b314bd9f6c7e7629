"""Receipts: contiguity, gaps and coverage computed from applied and refused sequences."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ferry.bundle import BundleRejected
from ferry.receipts import Receipt, build_receipt


def test_gaps_refusals_and_what_to_resend() -> None:
    receipt = build_receipt("inbound", [1, 2, 5, 7], {9: "HASH_MISMATCH", 5: "TRUNCATED"})
    assert receipt.highest_contiguous == 2 and receipt.highest_received == 7
    assert receipt.missing == ((3, 4), (6, 6), (8, 9))
    assert receipt.quarantined == ((9, "HASH_MISMATCH"),)  # #5 was applied after all
    assert receipt.wanted(range(1, 11)) == [3, 4, 6, 8, 9]  # #10: not seen yet, not asked
    assert Receipt.from_record(receipt.to_record()) == receipt


@given(st.sets(st.integers(1, 60)), st.dictionaries(st.integers(1, 60), st.just("TRUNCATED")))
def test_covers_exactly_the_applied_sequences(applied: set[int], refused: dict[int, str]) -> None:
    receipt = build_receipt("outbound", applied, refused)
    seen = max([*applied, *refused, 0])
    for sequence in range(1, 70):
        assert receipt.covers(sequence) == (sequence in applied), sequence
    wanted = set(receipt.wanted(range(1, 70)))
    assert wanted == {s for s in range(1, seen + 1) if s not in applied}
    assert Receipt.from_record(receipt.to_record()) == receipt


@pytest.mark.parametrize(
    "record",
    [
        {"channel": "x", "highest_contiguous": 0, "highest_received": 0, "missing": [], "quarantined": []},
        {"channel": "inbound", "highest_contiguous": 3, "highest_received": 2, "missing": [], "quarantined": []},
        {"channel": "inbound", "highest_contiguous": 1, "highest_received": 9, "missing": [[5, 6], [4, 4]], "quarantined": []},
        {"channel": "inbound", "highest_contiguous": 1, "highest_received": 9, "missing": [[1, 2]], "quarantined": []},
        {"channel": "inbound", "highest_contiguous": 0, "highest_received": 0, "missing": [], "quarantined": [{"sequence": 1, "code": "../x"}]},
        {"channel": "inbound", "highest_contiguous": True, "highest_received": 1, "missing": [], "quarantined": []},
        {"channel": "inbound", "highest_contiguous": 0, "highest_received": 0, "missing": [], "quarantined": [], "extra": 1},
    ],
)
def test_malformed_receipts_are_refused(record: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(BundleRejected) as raised:
        Receipt.from_record(record)
    assert raised.value.code == "RECEIPT_INVALID"
