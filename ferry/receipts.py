"""Receipts: what a receiver tells the sender of the other channel, riding on its own bundles.

A receipt travels as the single record of ``records/receipts.jsonl`` (record kind
``receipts``) in every bundle of the reverse channel; a heartbeat bundle carries nothing
else. The record is an object with exactly these keys::

    channel             the channel the receipt reports on ("inbound" | "outbound")
    highest_contiguous  every sequence 1..highest_contiguous has been applied (0: none)
    highest_received    the highest sequence applied (0: none)
    missing             [[first, last], ...] sorted, disjoint ranges of sequences not
                        applied although a later sequence was seen (applied or quarantined)
    quarantined         [{"sequence": n, "code": REASON}] bundles refused and not applied

A sequence is *covered* (the sender may drop its copy) when it is at most
``highest_received`` and in no missing range. Everything here is pure: the zone databases
feed it sets of numbers and get plain values back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ferry.bundle import CHANNELS, BundleRejected

RECEIPTS_KIND = "receipts"
RECEIPT_INVALID = "RECEIPT_INVALID"
MAX_RANGES = 10_000
_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,39}")
_MAX_SEQUENCE = 2**63 - 1
_KEYS = frozenset({"channel", "highest_contiguous", "highest_received", "missing", "quarantined"})

REVERSE = {"inbound": "outbound", "outbound": "inbound"}


@dataclass(frozen=True)
class Receipt:
    """The receiver's state of one channel, as reported to its sender."""

    channel: str
    highest_contiguous: int
    highest_received: int
    missing: tuple[tuple[int, int], ...]
    quarantined: tuple[tuple[int, str], ...]

    def covers(self, sequence: int) -> bool:
        """True when the receiver has applied ``sequence`` (the sender may forget it)."""
        if sequence <= self.highest_contiguous:
            return True
        if sequence > self.highest_received:
            return False
        return not any(first <= sequence <= last for first, last in self.missing)

    def wanted(self, sent: Iterable[int]) -> list[int]:
        """Which of the ``sent`` sequences the sender should send again: the missing ones and
        the refused ones (ranges from a receiver are never expanded, only tested)."""
        refused = {sequence for sequence, _ in self.quarantined}
        return sorted(
            s
            for s in set(sent)
            if not self.covers(s)
            and (s in refused or any(first <= s <= last for first, last in self.missing))
        )

    def to_record(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "highest_contiguous": self.highest_contiguous,
            "highest_received": self.highest_received,
            "missing": [[first, last] for first, last in self.missing],
            "quarantined": [{"sequence": s, "code": c} for s, c in self.quarantined],
        }

    @classmethod
    def from_record(cls, obj: object) -> Receipt:
        """Check a decoded receipt record strictly; BundleRejected(RECEIPT_INVALID) if wrong."""
        if not isinstance(obj, dict) or set(obj) != _KEYS:
            raise BundleRejected(RECEIPT_INVALID, "a receipt must be an object with the receipt keys")
        channel = obj["channel"]
        if channel not in CHANNELS:
            raise BundleRejected(RECEIPT_INVALID, f"receipt channel {channel!r:.40}")
        contiguous, received = obj["highest_contiguous"], obj["highest_received"]
        if not (_is_sequence(contiguous, 0) and _is_sequence(received, 0)) or contiguous > received:
            raise BundleRejected(RECEIPT_INVALID, "highest_contiguous/highest_received out of range")
        raw_missing, raw_quarantined = obj["missing"], obj["quarantined"]
        if not isinstance(raw_missing, list) or len(raw_missing) > MAX_RANGES:
            raise BundleRejected(RECEIPT_INVALID, "missing must be a list of ranges")
        if not isinstance(raw_quarantined, list) or len(raw_quarantined) > MAX_RANGES:
            raise BundleRejected(RECEIPT_INVALID, "quarantined must be a list")
        missing: list[tuple[int, int]] = []
        floor = contiguous + 1
        for pair in raw_missing:
            if (
                not isinstance(pair, list)
                or len(pair) != 2
                or not _is_sequence(pair[0], floor)
                or not _is_sequence(pair[1], pair[0])
            ):
                raise BundleRejected(RECEIPT_INVALID, "missing ranges must be sorted and disjoint")
            missing.append((pair[0], pair[1]))
            floor = pair[1] + 2
        quarantined: list[tuple[int, str]] = []
        for entry in raw_quarantined:
            if (
                not isinstance(entry, dict)
                or set(entry) != {"sequence", "code"}
                or not _is_sequence(entry["sequence"], 1)
                or not isinstance(entry["code"], str)
                or not _CODE.fullmatch(entry["code"])
            ):
                raise BundleRejected(RECEIPT_INVALID, "quarantined entries need sequence and code")
            quarantined.append((entry["sequence"], entry["code"]))
        return cls(channel, contiguous, received, tuple(missing), tuple(quarantined))


def build_receipt(
    channel: str, applied: Iterable[int], quarantined: Mapping[int, str]
) -> Receipt:
    """The receipt of ``channel`` from the applied sequences and the refused ones (by code).

    Gaps are every sequence below the highest one seen (applied or refused) that is not
    applied; a refused sequence that was later applied (resent intact) is not listed.
    """
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    done = sorted(set(applied))
    refused = {s: c for s, c in quarantined.items() if s >= 1}
    done_set = set(done)
    contiguous = 0
    for sequence in done:
        if sequence != contiguous + 1:
            break
        contiguous = sequence
    highest_seen = max([*done, *refused, 0])
    missing: list[tuple[int, int]] = []
    expected = contiguous + 1
    for sequence in [s for s in done if s > contiguous] + [highest_seen + 1]:
        if sequence > expected:
            missing.append((expected, sequence - 1))
        expected = max(expected, sequence + 1)
    # A refused sequence beyond everything applied is missing too (up to the highest seen).
    missing = _merge(missing)
    return Receipt(
        channel=channel,
        highest_contiguous=contiguous,
        highest_received=done[-1] if done else 0,
        missing=tuple(r for r in missing if r[0] <= highest_seen),
        quarantined=tuple(sorted((s, c) for s, c in refused.items() if s not in done_set)),
    )


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(last, merged[-1][1]))
        else:
            merged.append((first, last))
    return merged


def _is_sequence(value: object, low: int) -> bool:
    return (
        isinstance(value, int) and not isinstance(value, bool) and low <= value <= _MAX_SEQUENCE
    )
